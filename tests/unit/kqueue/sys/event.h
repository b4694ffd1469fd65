/*
 * A stand-in for BSD's <sys/event.h>: just what poll_kqueue.c uses, with the
 * types and signatures of FreeBSD's, so that the kqueue backend is compiled
 * (never run) on Linux by the kqueue_builds test and cannot rot unseen.
 */
#ifndef VKD_TEST_SYS_EVENT_H
#define VKD_TEST_SYS_EVENT_H
#include <stdint.h>
#include <time.h>

struct kevent {
        uintptr_t ident;
        short filter;
        unsigned short flags;
        unsigned int fflags;
        intptr_t data;
        void *udata;
};

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_CLEAR 0x0020
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

#define EV_SET(kevp, a, b, c, d, e, f)         \
        do {                                   \
                struct kevent *kevp_ = (kevp); \
                kevp_->ident = (a);            \
                kevp_->filter = (b);           \
                kevp_->flags = (c);            \
                kevp_->fflags = (d);           \
                kevp_->data = (e);             \
                kevp_->udata = (f);            \
        } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);
#endif

/*
 * Poller backend on BSD/macOS kqueue: EV_CLEAR gives edge-triggered reports
 * like epoll's, so a descriptor is registered once for both directions.
 */
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__) || \
        defined(VKD_KQUEUE_BUILD_TEST)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include "kern.h"

struct poller {
        struct kzone *z; /* where it lives: kernel memory */
        int kq;
        int nmask;
        uint8_t *mask;
        struct kevent evs[256];
};

static int kq_open(struct poller **ret, struct kzone *z)
{
        struct poller *pl = kz_calloc(z, sizeof *pl);
        if (!pl)
                return -ENOMEM;
        pl->z = z;
        pl->kq = kqueue();
        if (pl->kq < 0) {
                int r = -errno;
                kz_free(z, pl);
                return r;
        }
        *ret = pl;
        return 0;
}

static void kq_close(struct poller *pl)
{
        close(pl->kq);
        kz_free(pl->z, pl->mask);
        kz_free(pl->z, pl);
}

static int kq_fileno(const struct poller *pl)
{
        return pl->kq;
}

static int kq_arm(struct poller *pl, int fd, uint32_t events)
{
        uint8_t have = fd < pl->nmask ? pl->mask[fd] : 0;
        uint8_t add = (uint8_t)(events & (POLLER_IN | POLLER_OUT)) & (uint8_t)~have;
        struct kevent ch[2];
        int n = 0;
        if (!add)
                return 0;
        if (fd >= pl->nmask) {
                int sz = pl->nmask ? pl->nmask : 1024;
                while (sz <= fd)
                        sz *= 2;
                uint8_t *m = kz_realloc(pl->z, pl->mask, (size_t)sz);
                if (!m)
                        return -ENOMEM;
                memset(m + pl->nmask, 0, (size_t)(sz - pl->nmask));
                pl->mask = m;
                pl->nmask = sz;
        }
        if (add & POLLER_IN)
                EV_SET(&ch[n++], fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, NULL);
        if (add & POLLER_OUT)
                EV_SET(&ch[n++], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, NULL);
        if (kevent(pl->kq, ch, n, NULL, 0, NULL) < 0)
                return -errno;
        pl->mask[fd] = have | add;
        return 0;
}

static void kq_forget(struct poller *pl, int fd, int closing)
{
        if (fd >= pl->nmask || !pl->mask[fd])
                return;
        if (!closing) {
                struct kevent ch[2];
                int n = 0;
                if (pl->mask[fd] & POLLER_IN)
                        EV_SET(&ch[n++], fd, EVFILT_READ, EV_DELETE, 0, 0, NULL);
                if (pl->mask[fd] & POLLER_OUT)
                        EV_SET(&ch[n++], fd, EVFILT_WRITE, EV_DELETE, 0, 0, NULL);
                kevent(pl->kq, ch, n, NULL, 0, NULL);
        }
        pl->mask[fd] = 0;
}

static int kq_wait(struct poller *pl, int timeout_ms, struct poller_event *ev, int max)
{
        struct timespec ts, *tp = NULL;
        if (timeout_ms >= 0) {
                ts.tv_sec = timeout_ms / 1000;
                ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
                tp = &ts;
        }
        if (max > 256)
                max = 256;
        int n = kevent(pl->kq, NULL, 0, pl->evs, max, tp);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                const struct kevent *e = &pl->evs[i];
                uint32_t out = e->filter == EVFILT_READ ? POLLER_IN : POLLER_OUT;
                if (e->flags & EV_EOF)
                        out |= POLLER_HUP;
                if (e->flags & EV_ERROR)
                        out |= POLLER_ERR;
                ev[i].fd = (int)e->ident;
                ev[i].events = out;
        }
        return n;
}

const struct poller_backend poller_kqueue = {
        .name = "kqueue",
        .oneshot = 0,
        .open = kq_open,
        .close = kq_close,
        .fileno = kq_fileno,
        .arm = kq_arm,
        .forget = kq_forget,
        .wait = kq_wait,
};
#endif

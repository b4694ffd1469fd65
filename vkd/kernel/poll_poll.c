/*
 * Portable poller backend on poll(2). Level-triggered, so interest is
 * one-shot: a descriptor is watched only for the directions a thread is
 * blocked on, and each reported direction is dropped until armed again.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"

#ifndef POLLRDHUP
#define POLLRDHUP 0
#endif

struct poller {
        struct kzone *z; /* where it lives: kernel memory */
        struct pollfd *pfds;
        int n, cap;
        int *slot; /* descriptor -> index + 1 in pfds, 0 if not watched */
        int nslot;
};

static int pp_open(struct poller **ret, struct kzone *z)
{
        struct poller *pl = kz_calloc(z, sizeof *pl);
        if (!pl)
                return -ENOMEM;
        pl->z = z;
        *ret = pl;
        return 0;
}

static void pp_close(struct poller *pl)
{
        kz_free(pl->z, pl->pfds);
        kz_free(pl->z, pl->slot);
        kz_free(pl->z, pl);
}

static void pp_drop(struct poller *pl, int i)
{
        int fd = pl->pfds[i].fd;
        pl->slot[fd] = 0;
        if (i != --pl->n) {
                pl->pfds[i] = pl->pfds[pl->n];
                pl->slot[pl->pfds[i].fd] = i + 1;
        }
}

static int pp_fileno(const struct poller *pl)
{
        return -1;
}

static int pp_arm(struct poller *pl, int fd, uint32_t events)
{
        short want = (short)((events & POLLER_IN ? POLLIN | POLLRDHUP : 0) |
                             (events & POLLER_OUT ? POLLOUT : 0));
        if (fd >= pl->nslot) {
                int n = pl->nslot ? pl->nslot : 1024;
                while (n <= fd)
                        n *= 2;
                int *s = kz_realloc(pl->z, pl->slot, (size_t)n * sizeof *s);
                if (!s)
                        return -ENOMEM;
                memset(s + pl->nslot, 0, (size_t)(n - pl->nslot) * sizeof *s);
                pl->slot = s;
                pl->nslot = n;
        }
        if (pl->slot[fd]) {
                pl->pfds[pl->slot[fd] - 1].events |= want;
                return 0;
        }
        if (pl->n == pl->cap) {
                int cap = pl->cap ? 2 * pl->cap : 256;
                struct pollfd *p = kz_realloc(pl->z, pl->pfds, (size_t)cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                pl->pfds = p;
                pl->cap = cap;
        }
        pl->pfds[pl->n] = (struct pollfd){.fd = fd, .events = want};
        pl->slot[fd] = ++pl->n;
        return 0;
}

static void pp_forget(struct poller *pl, int fd, int closing)
{
        if (fd < pl->nslot && pl->slot[fd])
                pp_drop(pl, pl->slot[fd] - 1);
}

static int pp_wait(struct poller *pl, int timeout_ms, struct poller_event *ev, int max)
{
        int n = poll(pl->pfds, (nfds_t)pl->n, timeout_ms);
        if (n < 0)
                return -errno;
        int k = 0;
        for (int i = pl->n - 1; i >= 0 && k < max; i--) {
                struct pollfd *p = &pl->pfds[i];
                short re = p->revents;
                if (!re)
                        continue;
                uint32_t out = 0;
                if (re & POLLIN)
                        out |= POLLER_IN;
                if (re & POLLOUT)
                        out |= POLLER_OUT;
                if (re & (POLLHUP | POLLRDHUP))
                        out |= POLLER_HUP;
                if (re & (POLLERR | POLLNVAL))
                        out |= POLLER_ERR;
                ev[k].fd = p->fd;
                ev[k].events = out;
                k++;
                p->revents = 0;
                /* One-shot: hang-ups and errors end every interest. */
                if (re & (POLLHUP | POLLERR | POLLNVAL))
                        p->events = 0;
                p->events &= (short)~(re & (POLLIN | POLLOUT | POLLRDHUP));
                if (re & POLLIN)
                        p->events &= (short)~POLLRDHUP;
                if (!(p->events & (POLLIN | POLLOUT)))
                        pp_drop(pl, i);
        }
        return k;
}

const struct poller_backend poller_poll = {
        .name = "poll",
        .oneshot = 1,
        .open = pp_open,
        .close = pp_close,
        .fileno = pp_fileno,
        .arm = pp_arm,
        .forget = pp_forget,
        .wait = pp_wait,
};

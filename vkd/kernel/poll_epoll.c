/*
 * Poller backend on Linux epoll, edge-triggered: each descriptor is
 * registered once, for both directions, the first time a thread blocks on
 * it, and is never modified afterwards; closing it removes it.
 */
#ifdef __linux__
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "kern.h"

struct poller {
        struct kzone *z; /* where it lives: kernel memory */
        int epfd;
        int nmask;
        uint8_t *mask; /* POLLER_IN|OUT registered per descriptor */
        struct epoll_event evs[256];
};

static int ep_open(struct poller **ret, struct kzone *z)
{
        struct poller *pl = kz_calloc(z, sizeof *pl);
        if (!pl)
                return -ENOMEM;
        pl->z = z;
        pl->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (pl->epfd < 0) {
                int r = -errno;
                kz_free(z, pl);
                return r;
        }
        *ret = pl;
        return 0;
}

static void ep_close(struct poller *pl)
{
        close(pl->epfd);
        kz_free(pl->z, pl->mask);
        kz_free(pl->z, pl);
}

static int ep_fileno(const struct poller *pl)
{
        return pl->epfd;
}

static int ep_arm(struct poller *pl, int fd, uint32_t events)
{
        uint8_t have = fd < pl->nmask ? pl->mask[fd] : 0;
        uint8_t want = have | (events & (POLLER_IN | POLLER_OUT));
        if (have == want)
                return 0;
        if (fd >= pl->nmask) {
                int n = pl->nmask ? pl->nmask : 1024;
                while (n <= fd)
                        n *= 2;
                uint8_t *m = kz_realloc(pl->z, pl->mask, (size_t)n);
                if (!m)
                        return -ENOMEM;
                memset(m + pl->nmask, 0, (size_t)(n - pl->nmask));
                pl->mask = m;
                pl->nmask = n;
        }
        struct epoll_event e = {.data.fd = fd, .events = EPOLLET};
        /* EPOLLEXCLUSIVE (a listener shared by workers) admits no RDHUP. */
        if (want & POLLER_IN)
                e.events |= EPOLLIN | (events & POLLER_EXCLUSIVE ? 0 : EPOLLRDHUP);
        if (want & POLLER_OUT)
                e.events |= EPOLLOUT;
        if (events & POLLER_EXCLUSIVE)
                e.events |= EPOLLEXCLUSIVE;
        if (epoll_ctl(pl->epfd, have ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e) < 0)
                return -errno;
        pl->mask[fd] = want;
        return 0;
}

static void ep_forget(struct poller *pl, int fd, int closing)
{
        if (fd >= pl->nmask || !pl->mask[fd])
                return;
        if (!closing)
                epoll_ctl(pl->epfd, EPOLL_CTL_DEL, fd, NULL);
        pl->mask[fd] = 0;
}

static int ep_wait(struct poller *pl, int timeout_ms, struct poller_event *ev, int max)
{
        if (max > 256)
                max = 256;
        int n = epoll_wait(pl->epfd, pl->evs, max, timeout_ms);
        if (n < 0)
                return -errno;
        for (int i = 0; i < n; i++) {
                uint32_t e = pl->evs[i].events, out = 0;
                if (e & EPOLLIN)
                        out |= POLLER_IN;
                if (e & EPOLLOUT)
                        out |= POLLER_OUT;
                if (e & (EPOLLRDHUP | EPOLLHUP))
                        out |= POLLER_HUP;
                if (e & EPOLLERR)
                        out |= POLLER_ERR;
                ev[i].fd = pl->evs[i].data.fd;
                ev[i].events = out;
        }
        return n;
}

const struct poller_backend poller_epoll = {
        .name = "epoll",
        .oneshot = 0,
        .open = ep_open,
        .close = ep_close,
        .fileno = ep_fileno,
        .arm = ep_arm,
        .forget = ep_forget,
        .wait = ep_wait,
};
#endif

/*
 * Listeners: the sockets a kernel accepts on, each connection becoming a
 * process that runs the listener's function.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kern.h"

#define LISTEN_BATCH 64 /* connections accepted per listener per loop */

/* Listeners. */

int vk_kernel_listen(struct vk_kernel *k, int fd, vk_thread_fn *fn, const void *arg, size_t arglen)
{
        return vk_kernel_listen_with(k, fd, fn, arg, arglen, k->cfg.isolation);
}

int vk_kernel_listen_with(struct vk_kernel *k, int fd, vk_thread_fn *fn, const void *arg,
                          size_t arglen, enum vk_isolation isolation)
{
        /* In kernel memory: a listener's function and argument are what
         * every new connection runs. */
        struct kserver *s = kz_calloc(&k->zone, sizeof *s);
        if (!s)
                return -ENOMEM;
        vk_kernel_module_code(k, (const void *)fn);
        if (arglen) {
                s->arg = kz_calloc(&k->zone, arglen);
                if (!s->arg) {
                        kz_free(&k->zone, s);
                        return -ENOMEM;
                }
                memcpy(s->arg, arg, arglen);
        }
        int r = kfd_reserve(k, fd);
        if (r == 0)
                r = k->pb->arm(k->pl, fd, POLLER_IN | POLLER_EXCLUSIVE);
        if (r < 0) {
                kz_free(&k->zone, s->arg);
                kz_free(&k->zone, s);
                return r;
        }
        s->fd = fd;
        s->isolation = (uint8_t)isolation;
        s->fn = fn;
        s->arglen = arglen;
        s->ready = 1; /* connections may already be waiting */
        s->next = k->servers;
        k->servers = s;
        memset(&k->fds[fd], 0, sizeof k->fds[fd]);
        k->fds[fd].server = s;
        k->fds[fd].next_pending = -1;
        return 0;
}

void listen_accept(struct vk_kernel *k)
{
        static const int one = 1;
        for (struct kserver *s = k->servers; s; s = s->next) {
                for (int n = 0; s->ready && n < LISTEN_BATCH; n++) {
                        if (k->stats.active >= k->cfg.max_procs)
                                return; /* stays ready: retried when a process ends */
                        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (fd < 0) {
                                if (errno == EINTR || errno == ECONNABORTED)
                                        continue;
                                /* EAGAIN, or out of descriptors/memory: wait for
                                 * the next edge rather than spin. */
                                s->ready = 0;
                                if (k->pb->oneshot)
                                        k->pb->arm(k->pl, s->fd, POLLER_IN);
                                break;
                        }
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        if (tls_accept(k, fd) < 0) {
                                close(fd); /* out of memory: this one connection is refused */
                                continue;
                        }
                        proc_spawn(k, s->fn, s->arg, s->arglen, fd, fd, s->isolation);
                }
        }
}

void listen_try_all(struct vk_kernel *k)
{
        /* A new client must not wait behind a storm of closes: the poller
         * reports in arrival order, and at 256 events a round 10,000 of them
         * queued before its edge would keep it out for 40 rounds. An accept
         * that finds nothing costs one EAGAIN a full round. */
        for (struct kserver *s = k->servers; s; s = s->next)
                s->ready = 1;
}

void listen_stop_all(struct vk_kernel *k)
{
        /* The queues' last connections are taken (up to max_procs), as if they
         * had arrived a moment earlier; after the close none can be queued
         * here any more. */
        bool more = k->cfg.close_listeners_on_stop;
        for (struct kserver *s = k->servers; s; s = s->next)
                s->ready = 1;
        while (more && k->stats.active < k->cfg.max_procs) {
                listen_accept(k);
                more = false;
                for (struct kserver *s = k->servers; s; s = s->next)
                        more |= s->ready;
        }
        int close_fds = k->cfg.close_listeners_on_stop;
        struct kserver *s;
        while ((s = k->servers)) {
                k->servers = s->next;
                k->pb->forget(k->pl, s->fd, 0);
                memset(&k->fds[s->fd], 0, sizeof k->fds[s->fd]);
                if (close_fds)
                        close(s->fd);
                kz_free(&k->zone, s->arg);
                kz_free(&k->zone, s);
        }
}

void listen_close_all(struct vk_kernel *k)
{
        struct kserver *s;
        while ((s = k->servers)) {
                k->servers = s->next;
                k->pb->forget(k->pl, s->fd, 0);
                memset(&k->fds[s->fd], 0, sizeof k->fds[s->fd]);
                kz_free(&k->zone, s->arg);
                kz_free(&k->zone, s);
        }
}

/*
 * The connection engine behind echo_stress and echo_bench (see loadgen.h).
 * Connections are started in id order, at most max_connecting at a time;
 * a refused, reset or timed-out handshake goes to back-off and is retried
 * later, doubling the wait each time, so a server with a full backlog slows
 * the tool down instead of failing it. Only errors that say the address is
 * wrong, or running out of descriptors, stop the run.
 */
#include "loadgen.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 512
#define CONN_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define BACKOFF_FIRST_NS 10000000ll /* 10 ms, doubled per failed attempt */
#define BACKOFF_MAX_NS 1000000000ll /* 1 s */

/* Failures that a busy or restarting server causes, and that a retry can cure. */
static bool retriable(int err)
{
        return err == ECONNREFUSED || err == EAGAIN || err == ETIMEDOUT || err == ECONNRESET ||
               err == EADDRNOTAVAIL || err == EINTR;
}

/* Applies what a callback returned to the connection. */
static int settle(struct load *l, struct load_conn *c, int r)
{
        if (r < 0)
                return r;
        if (r == LOAD_CLOSE) {
                close(c->fd);
                c->fd = -1;
                c->state = LOAD_CLOSED;
                l->busy--;
        } else if (r == LOAD_PARK) {
                c->state = LOAD_PARKED;
                l->busy--;
        }
        return 0;
}

static int established(struct load *l, struct load_conn *c)
{
        int r = LOAD_CONTINUE;

        c->state = LOAD_OPEN;
        if (l->ops->connected)
                r = l->ops->connected(l, c);
        if (r == LOAD_CONTINUE)
                r = l->ops->io(l, c, EPOLLIN | EPOLLOUT);
        return settle(l, c, r);
}

/* The attempt failed with err: schedule a retry, or give up loudly. */
static int failed(struct load *l, struct load_conn *c, int err)
{
        close(c->fd);
        c->fd = -1;
        if (retriable(err) && c->attempts < l->max_attempts) {
                int shift = c->attempts - 1 < 20 ? c->attempts - 1 : 20;
                int64_t wait = BACKOFF_FIRST_NS << shift;
                c->retry_at = bench_now_ns() + (wait < BACKOFF_MAX_NS ? wait : BACKOFF_MAX_NS);
                c->state = LOAD_BACKOFF;
                if (l->backoff++ == 0 || c->retry_at < l->next_retry)
                        l->next_retry = c->retry_at;
                l->retries++;
                return 0;
        }
        char text[BENCH_ADDR_MAX];
        bench_addr_format(&l->addr, text, sizeof(text));
        fprintf(stderr, "%s: connection %u: connect to %s: %s (attempt %u)\n",
                program_invocation_short_name, c->id, text, strerror(err), c->attempts);
        c->state = LOAD_CLOSED;
        return -err;
}

static int start(struct load *l, struct load_conn *c)
{
        int one = 1;

        c->attempts++;
        c->fd = socket(l->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
                int err = errno;
                fprintf(stderr, "%s: connection %u: socket: %s\n", program_invocation_short_name,
                        c->id, strerror(err));
                return -err;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int r = connect(c->fd, (const struct sockaddr *)&l->addr.ss, l->addr.len);
        if (r < 0 && errno != EINPROGRESS)
                return failed(l, c, errno);
        /* Added after connect: the ADD polls the socket, so no edge is missed. */
        struct epoll_event ev = {.events = CONN_EVENTS, .data.u32 = c->id};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
                int err = errno;
                fprintf(stderr, "%s: connection %u: epoll_ctl: %s\n", program_invocation_short_name,
                        c->id, strerror(err));
                return -err;
        }
        if (r == 0)
                return established(l, c);
        c->state = LOAD_CONNECTING;
        l->connecting++;
        return 0;
}

/* Restarts the connections whose back-off is over, while there is room. */
static int retry_due(struct load *l, int64_t now)
{
        int64_t next = INT64_MAX;

        for (uint32_t i = 0; i < l->next; i++) {
                struct load_conn *c = &l->conns[i];
                if (c->state != LOAD_BACKOFF)
                        continue;
                if (c->retry_at <= now && l->connecting < l->max_connecting) {
                        l->backoff--;
                        int r = start(l, c);
                        if (r < 0)
                                return r;
                        if (c->state != LOAD_BACKOFF)
                                continue;
                }
                if (c->retry_at < next)
                        next = c->retry_at;
        }
        l->next_retry = next;
        return 0;
}

static int dispatch(struct load *l, struct load_conn *c, uint32_t events)
{
        switch (c->state) {
        case LOAD_CONNECTING: {
                int err = 0;
                socklen_t len = sizeof(err);
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                if (!err && (events & EPOLLHUP))
                        err = ECONNRESET;
                if (!err && !(events & EPOLLOUT))
                        return 0; /* not settled yet */
                l->connecting--;
                return err ? failed(l, c, err) : established(l, c);
        }
        case LOAD_OPEN:
                return settle(l, c, l->ops->io(l, c, events));
        case LOAD_PARKED:
                if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                        c->hup = true;
                return 0;
        default:
                return 0;
        }
}

int load_init(struct load *l, const struct bench_addr *addr, uint32_t nconns,
              const struct load_ops *ops, void *user)
{
        memset(l, 0, sizeof(*l));
        l->addr = *addr;
        l->ops = ops;
        l->user = user;
        l->nconns = nconns;
        l->busy = nconns;
        l->max_connecting = 256;
        l->max_attempts = 10;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0)
                return -errno;
        l->conns = calloc(nconns ? nconns : 1, sizeof(*l->conns));
        if (!l->conns)
                return -ENOMEM;
        for (uint32_t i = 0; i < nconns; i++) {
                l->conns[i].fd = -1;
                l->conns[i].id = i;
        }
        return 0;
}

int load_run(struct load *l, int64_t deadline_ns)
{
        struct epoll_event evs[MAX_EVENTS];

        for (;;) {
                int64_t now = bench_now_ns();
                int r;

                if (l->backoff && now >= l->next_retry) {
                        r = retry_due(l, now);
                        if (r < 0)
                                return r;
                }
                while (l->connecting < l->max_connecting && l->next < l->nconns) {
                        r = start(l, &l->conns[l->next++]);
                        if (r < 0)
                                return r;
                }
                if (l->busy == 0)
                        return 0;
                if (now >= deadline_ns)
                        return -ETIMEDOUT;

                int64_t until = deadline_ns;
                if (l->backoff && l->next_retry < until)
                        until = l->next_retry;
                int64_t ms = until > now ? (until - now + 999999) / 1000000 : 0;
                int n = epoll_wait(l->epfd, evs, MAX_EVENTS, ms < INT_MAX ? (int)ms : INT_MAX);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int err = errno;
                        fprintf(stderr, "%s: epoll_wait: %s\n", program_invocation_short_name,
                                strerror(err));
                        return -err;
                }
                for (int i = 0; i < n; i++) {
                        r = dispatch(l, &l->conns[evs[i].data.u32], evs[i].events);
                        if (r < 0)
                                return r;
                }
        }
}

void load_rearm(struct load *l, const struct load_conn *c)
{
        struct epoll_event ev = {.events = CONN_EVENTS, .data.u32 = c->id};

        epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

int load_unpark(struct load *l, struct load_conn *c)
{
        c->state = LOAD_OPEN;
        l->busy++;
        return settle(l, c, l->ops->io(l, c, EPOLLIN | EPOLLOUT));
}

void load_fini(struct load *l)
{
        if (l->conns) {
                for (uint32_t i = 0; i < l->nconns; i++)
                        if (l->conns[i].fd >= 0)
                                close(l->conns[i].fd);
                free(l->conns);
                l->conns = NULL;
        }
        if (l->epfd > 0)
                close(l->epfd);
        l->epfd = -1;
}

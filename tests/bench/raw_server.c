/*
 * The event loop of the raw epoll peers (see raw_server.h). It is meant to be
 * the fastest plain way to serve many connections from one thread, so that
 * vkd's figures have an honest floor to be compared with: no timers, no
 * allocation after accept, no copies beyond the one buffer per connection.
 * Connections live in a table indexed by descriptor (epoll hands back the fd),
 * so nothing outlives the loop and a sanitizer build sees no leak at exit.
 */
#include "raw_server.h"
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

/*
 * Work done for one connection per wake-up, in reads plus writes, before it
 * must let the others run. A connection that still had work is re-armed and
 * comes back in the next epoll_wait.
 */
#define PUMP_BUDGET 32
#define ACCEPT_BUDGET 256
#define MAX_EVENTS 512

struct rawsrv {
        const struct rawsrv_proto *proto;
        int epfd;
        int lfd;
        int sigfd;
        struct rawsrv_conn **conns; /* indexed by fd */
        size_t nconns;              /* size of conns */
        bool warned_full;           /* said once that accept ran out of fds */
};

static void usage(const char *prog)
{
        fprintf(stderr, "usage: %s --listen HOST:PORT\n", prog);
}

/* Re-queues fd in epoll if it is ready now (an edge-triggered MOD re-polls it). */
static void rearm(struct rawsrv *s, int fd, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.fd = fd};

        epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void conn_close(struct rawsrv *s, int fd)
{
        free(s->conns[fd]);
        s->conns[fd] = NULL;
        close(fd); /* also takes fd out of the epoll set */
}

/*
 * Moves bytes for one connection until the socket would block, the peer is
 * gone, or the budget is spent. Returns false when the connection must close.
 */
static bool conn_pump(struct rawsrv *s, int fd, uint32_t events)
{
        const struct rawsrv_proto *p = s->proto;
        struct rawsrv_conn *c = s->conns[fd];
        /*
         * After a short read the socket is empty, and under edge triggering
         * any later byte raises a new event: skip the read that would only
         * say EAGAIN. Not when the peer has hung up, though: its EOF is then
         * already reported and no new edge would come for it.
         */
        bool hup = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
        bool readable = true;

        for (int i = 0; i < PUMP_BUDGET; i++) {
                if (c->off < c->len) {
                        ssize_t w = send(fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
                        if (w < 0) {
                                if (errno == EINTR)
                                        continue;
                                return errno == EAGAIN;
                        }
                        c->off += (uint32_t)w;
                        if (c->off < c->len)
                                return true; /* send buffer full: wait for EPOLLOUT */
                        continue;
                }
                if (p->drained && p->drained(c))
                        continue;
                if (c->eof)
                        return false;
                if (!readable)
                        return true;
                ssize_t r = recv(fd, c->buf, p->bufsize, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN;
                }
                if (r == 0) {
                        c->eof = true;
                        continue;
                }
                if ((size_t)r < p->bufsize && !hup)
                        readable = false;
                c->off = c->len = 0;
                p->input(c, (uint32_t)r);
        }
        rearm(s, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
        return true;
}

static void accept_some(struct rawsrv *s)
{
        for (int i = 0; i < ACCEPT_BUDGET; i++) {
                int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno != EAGAIN && !s->warned_full) {
                                /*
                                 * EMFILE and friends: the connection waits in the
                                 * backlog; the next arrival raises a new edge.
                                 */
                                fprintf(stderr, "%s: accept: %s\n", s->proto->name,
                                        strerror(errno));
                                s->warned_full = true;
                        }
                        return;
                }
                if ((size_t)fd >= s->nconns) {
                        close(fd);
                        continue;
                }
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                /*
                 * malloc, not calloc: pages of an idle connection's buffer are
                 * never touched, so they cost address space but no memory.
                 */
                struct rawsrv_conn *c = malloc(sizeof(*c) + s->proto->bufsize);
                if (!c) {
                        close(fd);
                        continue;
                }
                c->off = c->len = c->state = c->owed = 0;
                c->eof = false;
                s->conns[fd] = c;
                struct epoll_event ev = {
                        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                        .data.fd = fd,
                };
                if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
                        conn_close(s, fd);
        }
        rearm(s, s->lfd, EPOLLIN | EPOLLET);
}

/* Binds and listens; prints nothing. Returns 0 or -errno. */
static int listen_on(struct rawsrv *s, const struct bench_addr *addr)
{
        int one = 1;

        s->lfd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->lfd < 0)
                return -errno;
        setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* The kernel caps the backlog at net.core.somaxconn: ask for the most. */
        if (bind(s->lfd, (const struct sockaddr *)&addr->ss, addr->len) < 0 ||
            listen(s->lfd, 65535) < 0)
                return -errno;
        return 0;
}

static int serve(struct rawsrv *s)
{
        struct epoll_event evs[MAX_EVENTS];

        for (;;) {
                int n = epoll_wait(s->epfd, evs, MAX_EVENTS, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        int fd = evs[i].data.fd;
                        if (fd == s->lfd) {
                                accept_some(s);
                        } else if (fd == s->sigfd) {
                                return 0;
                        } else if (s->conns[fd] && !conn_pump(s, fd, evs[i].events)) {
                                conn_close(s, fd);
                        }
                }
        }
}

int rawsrv_main(int argc, char **argv, const struct rawsrv_proto *proto)
{
        static const struct option opts[] = {
                {"listen", required_argument, NULL, 'l'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct rawsrv s = {.proto = proto, .epfd = -1, .lfd = -1, .sigfd = -1};
        const char *listen_text = NULL;
        struct bench_addr addr;
        uint64_t nofile;
        int opt, r, status = 1;

        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                if (opt != 'l') {
                        usage(argv[0]);
                        return opt == 'h' ? 0 : 2;
                }
                listen_text = optarg;
        }
        if (!listen_text || optind != argc) {
                usage(argv[0]);
                return 2;
        }
        if (bench_addr_parse(listen_text, true, &addr) < 0) {
                fprintf(stderr, "%s: bad address '%s' (want HOST:PORT)\n", proto->name,
                        listen_text);
                return 2;
        }
        r = bench_raise_nofile(&nofile);
        if (r < 0) {
                fprintf(stderr, "%s: RLIMIT_NOFILE: %s\n", proto->name, strerror(-r));
                return 1;
        }
        s.nconns = nofile;
        s.conns = calloc(s.nconns, sizeof(*s.conns));
        if (!s.conns) {
                fprintf(stderr, "%s: out of memory\n", proto->name);
                return 1;
        }

        /* SIGTERM and SIGINT arrive as readable events, never mid-syscall. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        s.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (s.sigfd < 0 || s.epfd < 0) {
                fprintf(stderr, "%s: setup: %s\n", proto->name, strerror(errno));
                goto out;
        }
        r = listen_on(&s, &addr);
        if (r < 0) {
                fprintf(stderr, "%s: listen on %s: %s\n", proto->name, listen_text, strerror(-r));
                goto out;
        }
        struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.fd = s.lfd};
        struct epoll_event sev = {.events = EPOLLIN, .data.fd = s.sigfd};
        if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.lfd, &lev) < 0 ||
            epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.sigfd, &sev) < 0) {
                fprintf(stderr, "%s: epoll_ctl: %s\n", proto->name, strerror(errno));
                goto out;
        }

        struct bench_addr bound = {.len = sizeof(bound.ss)};
        char text[BENCH_ADDR_MAX];
        getsockname(s.lfd, (struct sockaddr *)&bound.ss, &bound.len);
        bench_addr_format(&bound, text, sizeof(text));
        printf("listening %s\n", text);
        fflush(stdout);

        r = serve(&s);
        if (r < 0) {
                fprintf(stderr, "%s: epoll_wait: %s\n", proto->name, strerror(-r));
                goto out;
        }
        status = 0;
out:
        for (size_t fd = 0; fd < s.nconns; fd++)
                if (s.conns[fd])
                        conn_close(&s, (int)fd);
        free(s.conns);
        if (s.lfd >= 0)
                close(s.lfd);
        if (s.sigfd >= 0)
                close(s.sigfd);
        if (s.epfd >= 0)
                close(s.epfd);
        return status;
}

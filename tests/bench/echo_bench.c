/*
 * echo_bench: measures an echo server, in one of two modes.
 *
 *     echo_bench --mode throughput --connect HOST:PORT [--conns 100] [--size 64]
 *                [--seconds 10]
 *     echo_bench --mode idle --connect HOST:PORT --pid PID [--conns 10000]
 *                [--no-exchange] [--settle 2] [--seconds 60]
 *
 * throughput: opens --conns connections, then (all connected) each plays
 * request/response ping-pong with --size byte messages for --seconds, checking
 * every echo. Reports completed round trips per second, the payload rate in
 * MB/s (10^6 bytes, one direction) and the fewest round trips any connection
 * made (a server that starves some connections shows there). Fails if no
 * round trip completes.
 *
 * idle: reads the server's VmRSS (summed over PID and its descendants), opens
 * --conns connections and, on each, sends one line ("\n") and waits for its
 * echo, which proves the server has accepted, read and answered it; then reads
 * VmRSS again and reports the growth per connection. --no-exchange sends
 * nothing and instead waits (bounded by --seconds) until the server's
 * descriptor count shows it holds every connection. All connections stay open
 * until after the second reading. "Idle" means idle for a while: the second
 * reading is taken --settle seconds (default 2) after the last byte, since a
 * server may give memory back from idle connections (vkd hibernates a process
 * idle for 1 s); the reading right after the exchange is reported as
 * rss_busy_per_conn_bytes.
 *
 * Output is one line of key=value fields for scripts (see tests/bench/echo.sh).
 * Exit 0 on success, 1 on any failure or missed deadline, 2 on bad usage.
 */
#include "bench.h"
#include "loadgen.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#define CONNECT_TIMEOUT_NS (30 * 1000000000ll)
#define SIZE_MAX_BYTES (1u << 20)

enum mode { MODE_NONE, MODE_THROUGHPUT, MODE_IDLE };

struct pingpong {
        uint32_t out;   /* bytes of the current message sent */
        uint32_t in;    /* bytes of its echo received */
        uint64_t count; /* round trips completed */
};

struct bench {
        enum mode mode;
        uint32_t size;
        uint8_t *msg; /* the message every connection sends */
        uint8_t *rx;
        struct pingpong *pp;
        uint64_t messages;
        bool exchange;
        unsigned settle; /* idle: seconds between the exchange and the reading */
};

static void usage(void)
{
        fprintf(stderr,
                "usage: echo_bench --mode throughput --connect HOST:PORT [--conns N] [--size N]\n"
                "                  [--seconds N]\n"
                "       echo_bench --mode idle --connect HOST:PORT --pid PID [--conns N]\n"
                "                  [--no-exchange] [--settle SECONDS] [--seconds N]\n");
}

/*
 * Throughput: send the message, read its echo, count, repeat. The client must
 * not cost more than the server it measures, so it makes no call that would
 * only say EAGAIN: once a message is out its echo will raise an edge, and a
 * short read means the rest of the echo will raise another. The exception is
 * a hang-up, which is reported once: then read on until EOF or the end.
 */
static int pingpong_io(struct load *l, struct load_conn *c, uint32_t events)
{
        struct bench *b = l->user;
        struct pingpong *p = &b->pp[c->id];
        bool hup = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);

        while (p->out == b->size) {
                ssize_t r = recv(c->fd, b->rx, b->size - p->in, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && errno == EAGAIN)
                        return LOAD_CONTINUE;
                if (r <= 0) {
                        fprintf(stderr, "echo_bench: connection %u: read: %s\n", c->id,
                                r == 0 ? "server closed the connection" : strerror(errno));
                        return -EPROTO;
                }
                if (memcmp(b->rx, b->msg + p->in, (size_t)r) != 0) {
                        fprintf(stderr, "echo_bench: connection %u: echo differs from message\n",
                                c->id);
                        return -EPROTO;
                }
                p->in += (uint32_t)r;
                if (p->in == b->size) {
                        b->messages++;
                        p->count++;
                        p->in = p->out = 0;
                } else if (!hup) {
                        return LOAD_CONTINUE;
                }
        }
        for (;;) {
                ssize_t w = send(c->fd, b->msg + p->out, b->size - p->out, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN)
                        return LOAD_CONTINUE;
                if (w < 0) {
                        fprintf(stderr, "echo_bench: connection %u: write: %s\n", c->id,
                                strerror(errno));
                        return -EPROTO;
                }
                /* All out: the echo comes with an edge. Part: EPOLLOUT comes. */
                p->out += (uint32_t)w;
                return LOAD_CONTINUE;
        }
}

/* Throughput, first phase: just get connected, then wait for the others. */
static int park_connected(struct load *l, struct load_conn *c)
{
        return LOAD_PARK;
}

static int idle_connected(struct load *l, struct load_conn *c)
{
        const struct bench *b = l->user;

        if (!b->exchange)
                return LOAD_PARK;
        if (send(c->fd, "\n", 1, MSG_NOSIGNAL) != 1) {
                fprintf(stderr, "echo_bench: connection %u: write: %s\n", c->id, strerror(errno));
                return -EPROTO;
        }
        return LOAD_CONTINUE;
}

static int idle_io(struct load *l, struct load_conn *c, uint32_t events)
{
        char buf[16];
        ssize_t r;

        do
                r = recv(c->fd, buf, sizeof(buf), 0);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == EAGAIN)
                return LOAD_CONTINUE;
        if (r == 1 && buf[0] == '\n')
                return LOAD_PARK;
        fprintf(stderr, "echo_bench: connection %u: %s\n", c->id,
                r < 0    ? strerror(errno)
                : r == 0 ? "server closed the connection"
                         : "echo differs from the line sent");
        return -EPROTO;
}

static int run_throughput(struct bench *b, const struct bench_addr *addr, uint32_t conns,
                          uint64_t seconds)
{
        static const struct load_ops ops = {.connected = park_connected, .io = pingpong_io};
        struct load l;
        int r, status = 1;

        b->msg = malloc(b->size);
        b->rx = malloc(b->size);
        b->pp = calloc(conns, sizeof(*b->pp));
        if (!b->msg || !b->rx || !b->pp) {
                fprintf(stderr, "echo_bench: out of memory\n");
                goto out_free;
        }
        bench_stream_fill(42, 0, b->msg, b->size);
        r = load_init(&l, addr, conns, &ops, b);
        if (r < 0) {
                fprintf(stderr, "echo_bench: setup: %s\n", strerror(-r));
                goto out;
        }
        r = load_run(&l, bench_now_ns() + CONNECT_TIMEOUT_NS);
        if (r == -ETIMEDOUT)
                fprintf(stderr, "echo_bench: connections not all established in %lld s\n",
                        CONNECT_TIMEOUT_NS / 1000000000);
        if (r < 0)
                goto out;

        int64_t t0 = bench_now_ns();
        for (uint32_t i = 0; i < conns; i++) {
                r = load_unpark(&l, &l.conns[i]);
                if (r < 0)
                        goto out;
        }
        r = load_run(&l, t0 + (int64_t)seconds * 1000000000);
        if (r != -ETIMEDOUT) {
                if (r == 0)
                        fprintf(stderr, "echo_bench: every connection stopped early\n");
                goto out;
        }
        double elapsed = (double)(bench_now_ns() - t0) / 1e9;
        if (b->messages == 0) {
                fprintf(stderr, "echo_bench: no echo came back in %" PRIu64 " s\n", seconds);
                goto out;
        }
        /* The slowest connection shows whether the server starves some. */
        uint64_t least = UINT64_MAX;
        for (uint32_t i = 0; i < conns; i++)
                if (b->pp[i].count < least)
                        least = b->pp[i].count;
        printf("echo_bench: mode=throughput conns=%u size=%u seconds=%.2f messages=%" PRIu64
               " msg_per_s=%.0f mb_per_s=%.2f min_per_conn=%" PRIu64 "\n",
               conns, b->size, elapsed, b->messages, (double)b->messages / elapsed,
               (double)b->messages * b->size / elapsed / 1e6, least);
        status = 0;
out:
        load_fini(&l);
out_free:
        free(b->msg);
        free(b->rx);
        free(b->pp);
        return status;
}

/* Waits, polling /proc, until pid's tree holds at least want descriptors. */
static int wait_nfds(pid_t pid, uint64_t want, int64_t deadline)
{
        const struct timespec tick = {.tv_nsec = 10000000};
        uint64_t n = 0;

        while (bench_now_ns() < deadline) {
                int r = bench_proc_nfds(pid, &n);
                if (r < 0)
                        return r;
                if (n >= want)
                        return 0;
                nanosleep(&tick, NULL);
        }
        fprintf(stderr,
                "echo_bench: server holds %" PRIu64 " descriptors, expected %" PRIu64
                " by the deadline\n",
                n, want);
        return -ETIMEDOUT;
}

static int run_idle(struct bench *b, const struct bench_addr *addr, uint32_t conns,
                    uint64_t seconds, pid_t pid)
{
        static const struct load_ops ops = {.connected = idle_connected, .io = idle_io};
        int64_t deadline = bench_now_ns() + (int64_t)seconds * 1000000000;
        uint64_t before, after, fds = 0;
        struct load l;
        int r, status = 1;

        r = bench_proc_rss_kb(pid, &before);
        if (r == 0 && !b->exchange)
                r = bench_proc_nfds(pid, &fds);
        if (r < 0) {
                fprintf(stderr, "echo_bench: reading /proc/%d: %s\n", (int)pid, strerror(-r));
                return 1;
        }
        r = load_init(&l, addr, conns, &ops, b);
        if (r < 0) {
                fprintf(stderr, "echo_bench: setup: %s\n", strerror(-r));
                goto out;
        }
        r = load_run(&l, deadline);
        if (r == -ETIMEDOUT)
                fprintf(stderr, "echo_bench: connections not all %s within %" PRIu64 " s\n",
                        b->exchange ? "echoed" : "established", seconds);
        if (r == 0 && !b->exchange)
                r = wait_nfds(pid, fds + conns, deadline);
        if (r < 0)
                goto out;
        uint64_t busy;
        r = bench_proc_rss_kb(pid, &busy);
        if (r == 0) {
                /* a definition of idle, not a wait for an event */
                struct timespec ts = {.tv_sec = (time_t)b->settle};
                nanosleep(&ts, NULL);
                r = bench_proc_rss_kb(pid, &after);
        }
        if (r < 0) {
                fprintf(stderr, "echo_bench: reading /proc/%d: %s\n", (int)pid, strerror(-r));
                goto out;
        }
        uint32_t hups = 0;
        for (uint32_t i = 0; i < conns; i++)
                hups += l.conns[i].hup;
        if (hups) {
                fprintf(stderr, "echo_bench: the server dropped %u idle connections\n", hups);
                goto out;
        }
        printf("echo_bench: mode=idle conns=%u pid=%d rss_before_kb=%" PRIu64
               " rss_after_kb=%" PRIu64 " rss_per_conn_bytes=%.0f rss_busy_per_conn_bytes=%.0f"
               " settle_s=%u\n",
               conns, (int)pid, before, after, ((double)after - (double)before) * 1024.0 / conns,
               ((double)busy - (double)before) * 1024.0 / conns, b->settle);
        status = 0;
out:
        load_fini(&l);
        return status;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"mode", required_argument, NULL, 'm'},
                {"connect", required_argument, NULL, 'c'},
                {"conns", required_argument, NULL, 'n'},
                {"size", required_argument, NULL, 'z'},
                {"seconds", required_argument, NULL, 't'},
                {"pid", required_argument, NULL, 'p'},
                {"no-exchange", no_argument, NULL, 'x'},
                {"settle", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct bench b = {.size = 64, .exchange = true, .settle = 2};
        uint64_t settle = 2;
        const char *target = NULL;
        uint64_t conns = 0, size = 64, seconds = 0, pid = 0, nofile;
        struct bench_addr addr;
        int opt, r = 0;

        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (opt) {
                case 'm':
                        if (strcmp(optarg, "throughput") == 0)
                                b.mode = MODE_THROUGHPUT;
                        else if (strcmp(optarg, "idle") == 0)
                                b.mode = MODE_IDLE;
                        else
                                r = -EINVAL;
                        break;
                case 'c':
                        target = optarg;
                        break;
                case 'n':
                        r = bench_parse_u64(optarg, 1, 1000000, &conns);
                        break;
                case 'z':
                        r = bench_parse_u64(optarg, 1, SIZE_MAX_BYTES, &size);
                        break;
                case 't':
                        r = bench_parse_u64(optarg, 1, 86400, &seconds);
                        break;
                case 'p':
                        r = bench_parse_u64(optarg, 1, INT32_MAX, &pid);
                        break;
                case 'x':
                        b.exchange = false;
                        break;
                case 's':
                        r = bench_parse_u64(optarg, 0, 3600, &settle);
                        b.settle = (unsigned)settle;
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        usage();
                        return 2;
                }
                if (r < 0) {
                        fprintf(stderr, "echo_bench: bad value '%s' for %s\n", optarg,
                                argv[optind - 1]);
                        return 2;
                }
        }
        if (b.mode == MODE_NONE || !target || optind != argc || (b.mode == MODE_IDLE && !pid)) {
                usage();
                return 2;
        }
        if (bench_addr_parse(target, false, &addr) < 0) {
                fprintf(stderr, "echo_bench: bad address '%s' (want HOST:PORT)\n", target);
                return 2;
        }
        if (!conns)
                conns = b.mode == MODE_THROUGHPUT ? 100 : 10000;
        if (!seconds)
                seconds = b.mode == MODE_THROUGHPUT ? 10 : 60;
        r = bench_raise_nofile(&nofile);
        if (r < 0 || nofile < conns + 16) {
                fprintf(stderr,
                        "echo_bench: need %" PRIu64 " descriptors, the limit is %" PRIu64 "\n",
                        conns + 16, r < 0 ? 0 : nofile);
                return 1;
        }
        b.size = (uint32_t)size;
        if (b.mode == MODE_THROUGHPUT)
                return run_throughput(&b, &addr, (uint32_t)conns, seconds);
        return run_idle(&b, &addr, (uint32_t)conns, seconds, (pid_t)pid);
}

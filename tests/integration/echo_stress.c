/*
 * echo_stress: a load client that proves an echo server returns every byte,
 * unchanged and in order, under many concurrent connections.
 *
 *     echo_stress --connect HOST:PORT [--conns 1000] [--bytes 65536]
 *                 [--seconds 60] [--seed 1]
 *
 * Each connection sends its own seeded pseudo-random stream of --bytes bytes,
 * in writes of random size (1 byte to 16 KiB), while reading the echo back at
 * the same time, and checks each byte against the stream regenerated at that
 * offset (nothing sent is stored). A connection closes once all its bytes have
 * come back. Exit 0 and one summary line when every connection has finished;
 * exit 1 naming the connection, offset and bytes on the first mismatch, or
 * when the --seconds deadline passes first; exit 2 on bad usage.
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

#define PIECE_MAX 16384
#define RXBUF 65536
/*
 * Bytes one connection may move per direction per wake-up. Socket buffers hold
 * megabytes: without a cap one connection could write for a long time while
 * the others, and the deadline, wait.
 */
#define IO_BUDGET (256 * 1024)

struct stress_conn {
        uint64_t key;       /* names this connection's byte stream */
        uint64_t sent;      /* bytes of the stream written */
        uint64_t piece_end; /* end of the current write piece */
        uint64_t received;  /* bytes echoed back and verified */
        struct bench_rng rng;
};

struct stress {
        uint64_t bytes; /* per connection */
        struct stress_conn *sc;
        uint64_t verified;
        uint32_t finished;
        uint8_t tx[PIECE_MAX];
        uint8_t rx[RXBUF];
        uint8_t expect[RXBUF];
};

static void usage(void)
{
        fprintf(stderr, "usage: echo_stress --connect HOST:PORT [--conns N] [--bytes N]\n"
                        "                   [--seconds N] [--seed N]\n");
}

/* Checks n freshly received bytes; prints the first difference and fails. */
static int verify(struct stress *st, const struct load_conn *c, struct stress_conn *s, size_t n)
{
        if (s->received + n > s->sent) {
                fprintf(stderr,
                        "echo_stress: connection %u: got %zu bytes at offset %" PRIu64
                        " but only %" PRIu64 " were sent\n",
                        c->id, n, s->received, s->sent);
                return -EPROTO;
        }
        bench_stream_fill(s->key, s->received, st->expect, n);
        if (memcmp(st->rx, st->expect, n) != 0) {
                size_t i = 0;
                while (st->rx[i] == st->expect[i])
                        i++;
                fprintf(stderr,
                        "echo_stress: connection %u: mismatch at offset %" PRIu64
                        ": expected 0x%02x, got 0x%02x\n",
                        c->id, s->received + i, st->expect[i], st->rx[i]);
                return -EPROTO;
        }
        s->received += n;
        st->verified += n;
        return 0;
}

/* Reads until EAGAIN or the budget; returns 1 if it stopped for the budget. */
static int stress_read(struct stress *st, const struct load_conn *c, struct stress_conn *s)
{
        for (uint64_t moved = 0; s->received < st->bytes;) {
                if (moved >= IO_BUDGET)
                        return 1;
                ssize_t r = recv(c->fd, st->rx, sizeof(st->rx), 0);
                if (r < 0) {
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr,
                                "echo_stress: connection %u: read at offset %" PRIu64 ": %s\n",
                                c->id, s->received, strerror(errno));
                        return -EPROTO;
                }
                if (r == 0) {
                        fprintf(stderr,
                                "echo_stress: connection %u: server closed after %" PRIu64
                                " of %" PRIu64 " bytes echoed\n",
                                c->id, s->received, st->bytes);
                        return -EPROTO;
                }
                int v = verify(st, c, s, (size_t)r);
                if (v < 0)
                        return v;
                moved += (uint64_t)r;
        }
        return 0;
}

/*
 * Writes pieces until the socket is full, the stream is all sent or the budget
 * is spent; returns 1 if it stopped for the budget.
 */
static int stress_write(struct stress *st, const struct load_conn *c, struct stress_conn *s)
{
        for (uint64_t moved = 0; s->sent < st->bytes;) {
                if (moved >= IO_BUDGET)
                        return 1;
                if (s->sent == s->piece_end) {
                        uint64_t size = 1 + bench_rng_below(&s->rng, PIECE_MAX);
                        uint64_t left = st->bytes - s->sent;
                        s->piece_end = s->sent + (size < left ? size : left);
                }
                size_t len = (size_t)(s->piece_end - s->sent);
                bench_stream_fill(s->key, s->sent, st->tx, len);
                ssize_t w = send(c->fd, st->tx, len, MSG_NOSIGNAL);
                if (w < 0) {
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr,
                                "echo_stress: connection %u: write at offset %" PRIu64 ": %s\n",
                                c->id, s->sent, strerror(errno));
                        return -EPROTO;
                }
                s->sent += (uint64_t)w;
                moved += (uint64_t)w;
                if ((size_t)w < len)
                        return 0; /* the socket is full: EPOLLOUT will come */
        }
        return 0;
}

static int stress_io(struct load *l, struct load_conn *c, uint32_t events)
{
        struct stress *st = l->user;
        struct stress_conn *s = &st->sc[c->id];
        int r = stress_read(st, c, s);
        if (r < 0)
                return r;
        int w = stress_write(st, c, s);
        if (w < 0)
                return w;
        if (s->received < st->bytes) {
                if (r > 0 || w > 0)
                        load_rearm(l, c);
                return LOAD_CONTINUE;
        }
        st->finished++;
        return LOAD_CLOSE;
}

/* After a missed deadline, says how far the stragglers got (a few of them). */
static void report_stragglers(const struct load *l, const struct stress *st)
{
        static const char *const names[] = {
                [LOAD_NEW] = "not started",       [LOAD_BACKOFF] = "backing off",
                [LOAD_CONNECTING] = "connecting", [LOAD_OPEN] = "open",
                [LOAD_PARKED] = "parked",         [LOAD_CLOSED] = "closed",
        };
        unsigned shown = 0;

        for (uint32_t i = 0; i < l->nconns && shown < 5; i++) {
                const struct load_conn *c = &l->conns[i];
                const struct stress_conn *s = &st->sc[i];
                if (c->state == LOAD_CLOSED)
                        continue;
                fprintf(stderr,
                        "echo_stress:   connection %u: %s, %" PRIu64 " bytes sent, %" PRIu64
                        " echoed\n",
                        i, names[c->state], s->sent, s->received);
                shown++;
        }
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"connect", required_argument, NULL, 'c'},
                {"conns", required_argument, NULL, 'n'},
                {"bytes", required_argument, NULL, 'b'},
                {"seconds", required_argument, NULL, 't'},
                {"seed", required_argument, NULL, 's'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        static const struct load_ops ops = {.io = stress_io};
        const char *target = NULL;
        uint64_t conns = 1000, bytes = 65536, seconds = 60, seed = 1, nofile;
        struct bench_addr addr;
        struct load l = {.epfd = -1};
        int opt, r = 0, status = 1;

        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        target = optarg;
                        break;
                case 'n':
                        r = bench_parse_u64(optarg, 1, 1000000, &conns);
                        break;
                case 'b':
                        r = bench_parse_u64(optarg, 0, UINT64_C(1) << 40, &bytes);
                        break;
                case 't':
                        r = bench_parse_u64(optarg, 1, 86400, &seconds);
                        break;
                case 's':
                        r = bench_parse_u64(optarg, 0, UINT64_MAX, &seed);
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        usage();
                        return 2;
                }
                if (r < 0) {
                        fprintf(stderr, "echo_stress: bad value '%s' for %s\n", optarg,
                                argv[optind - 1]);
                        return 2;
                }
        }
        if (!target || optind != argc) {
                usage();
                return 2;
        }
        if (bench_addr_parse(target, false, &addr) < 0) {
                fprintf(stderr, "echo_stress: bad address '%s' (want HOST:PORT)\n", target);
                return 2;
        }
        r = bench_raise_nofile(&nofile);
        if (r < 0 || nofile < conns + 16) {
                fprintf(stderr,
                        "echo_stress: need %" PRIu64 " descriptors, the limit is %" PRIu64 "\n",
                        conns + 16, r < 0 ? 0 : nofile);
                return 1;
        }

        struct stress *st = calloc(1, sizeof(*st));
        if (st)
                st->sc = calloc(conns, sizeof(*st->sc));
        if (!st || !st->sc) {
                fprintf(stderr, "echo_stress: out of memory\n");
                goto out;
        }
        st->bytes = bytes;
        for (uint64_t i = 0; i < conns; i++) {
                st->sc[i].key = bench_mix64(bench_mix64(seed) ^ i);
                bench_rng_seed(&st->sc[i].rng, st->sc[i].key ^ 0x5851f42d4c957f2dull);
        }
        r = load_init(&l, &addr, (uint32_t)conns, &ops, st);
        if (r < 0) {
                fprintf(stderr, "echo_stress: setup: %s\n", strerror(-r));
                goto out;
        }

        int64_t t0 = bench_now_ns();
        r = load_run(&l, t0 + (int64_t)seconds * 1000000000);
        double elapsed = (double)(bench_now_ns() - t0) / 1e9;
        if (r == -ETIMEDOUT) {
                fprintf(stderr,
                        "echo_stress: deadline of %" PRIu64 " s passed: %u of %" PRIu64
                        " connections finished, %" PRIu64 " bytes verified\n",
                        seconds, st->finished, conns, st->verified);
                report_stragglers(&l, st);
                goto out;
        }
        if (r < 0)
                goto out; /* load_run or a callback has said why */
        printf("echo_stress: %" PRIu64 " connections, %" PRIu64 " bytes verified, %.2f s", conns,
               st->verified, elapsed);
        if (l.retries)
                printf(", %" PRIu64 " connects retried", l.retries);
        printf("\n");
        status = 0;
out:
        load_fini(&l);
        if (st)
                free(st->sc);
        free(st);
        return status;
}

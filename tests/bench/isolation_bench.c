/*
 * isolation_bench: the two measurements tests/bench/isolation.sh needs to put
 * a price on process isolation, in two modes.
 *
 *     isolation_bench --connect HOST:PORT [--conns 100] [--depth 16] [--size 64]
 *                     [--seconds 5] [--warmup 1]
 *     isolation_bench --switch N [--procs 64] [--isolation MODE]
 *     isolation_bench --primitive N [--procs 64] [--pages 1] [--heap-size 65536]
 *                     [--rings BYTES [--split]]
 *
 * --connect: pipelined load on an echo server. Each of --conns connections
 * keeps --depth requests of --size bytes in flight (it sends a new one as soon
 * as a whole one has come back) and checks every byte echoed. After --warmup
 * seconds, requests are counted for --seconds. Prints one line of key=value
 * fields: req_per_s (the figure), mb_per_s, and requests_total / seconds_total
 * since the first connection (to divide a server's counters by).
 *
 * --switch: process switches inside one kernel, no I/O. --procs processes
 * each wait N times for a deadline already due (vk_sleep(0)), so each wait
 * is one dispatch of its own, with the protection changes of MODE (isolated,
 * unprivileged or privileged) around it; one poll serves a whole pass over the
 * processes. Prints the nanoseconds and the protection changes (system calls,
 * when the kernel protects with mprotect) per dispatch.
 *
 * --primitive: the protection an isolated switch needs, with nothing of vkd
 * around it: --procs heap-sized mappings, each its own (a guard page apart, as
 * the kernel's heap pool lays them out) with --pages pages resident, and N
 * switches that close one (PROT_NONE) and open the next (read-write) and
 * touch its pages. Prints the nanoseconds per switch, and per bare system
 * call (getppid) for scale: the floor any mprotect-based switch pays here.
 * With --rings, a connection's layout: --pages at the bottom (the
 * allocator's front) and the first page of two rings of that size at the
 * top of the heap (where the kernel puts a socket's rings; an empty ring
 * starts over at its first page); --split closes it as the kernel does
 * (isolate.c), one call for the front, one for the gap, one for the rings,
 * instead of one call over the heap.
 *
 * Exit 0 on success, 1 on failure (named on stderr), 2 on bad usage.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vk/vk.h>

#include "vk_kernel.h"

#define CONNECT_TIMEOUT_NS (30 * 1000000000ll)
#define RXBUF 65536
#define SIZE_MAX_BYTES 65536
#define DEPTH_MAX 4096

/* ------------------------------------------------------------------ */
/* Pipelined echo load. */

struct pconn {
        uint64_t sent; /* bytes of the repeated request written */
        uint64_t recv; /* bytes echoed back and checked */
};

struct pipebench {
        uint32_t size;   /* bytes per request */
        uint64_t window; /* depth * size: bytes in flight at most */
        uint8_t *tx;     /* the request repeated: any window from any offset fits */
        struct pconn *pc;
        uint8_t rx[RXBUF];
};

static int pipe_io(struct load *l, struct load_conn *c, uint32_t events)
{
        struct pipebench *b = l->user;
        struct pconn *p = &b->pc[c->id];

        /* Everything that came back, until the socket is drained (edge
         * triggered) or nothing is outstanding. */
        while (p->recv < p->sent) {
                ssize_t r = recv(c->fd, b->rx, sizeof b->rx, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0 && errno == EAGAIN)
                        break;
                if (r <= 0) {
                        fprintf(stderr, "isolation_bench: connection %u: read: %s\n", c->id,
                                r == 0 ? "server closed the connection" : strerror(errno));
                        return -EPROTO;
                }
                if (p->recv + (uint64_t)r > p->sent ||
                    memcmp(b->rx, b->tx + p->recv % b->size, (size_t)r)) {
                        fprintf(stderr,
                                "isolation_bench: connection %u: echo differs at byte %" PRIu64
                                "\n",
                                c->id, p->recv);
                        return -EPROTO;
                }
                p->recv += (uint64_t)r;
        }
        /* Refill the window: each request that came back makes room for one. */
        while (p->sent - p->recv < b->window) {
                size_t n = (size_t)(b->window - (p->sent - p->recv));
                ssize_t w = send(c->fd, b->tx + p->sent % b->size, n, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && errno == EAGAIN)
                        break; /* EPOLLOUT comes */
                if (w < 0) {
                        fprintf(stderr, "isolation_bench: connection %u: write: %s\n", c->id,
                                strerror(errno));
                        return -EPROTO;
                }
                p->sent += (uint64_t)w;
        }
        return LOAD_CONTINUE;
}

static int park_connected(struct load *l, struct load_conn *c)
{
        return LOAD_PARK;
}

static uint64_t requests_done(const struct pipebench *b, uint32_t conns)
{
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < conns; i++)
                bytes += b->pc[i].recv;
        return bytes / b->size;
}

static int run_pipelined(const struct bench_addr *addr, uint32_t conns, uint32_t depth,
                         uint32_t size, uint64_t seconds, uint64_t warmup)
{
        static const struct load_ops ops = {.connected = park_connected, .io = pipe_io};
        struct pipebench *b = calloc(1, sizeof *b);
        struct load l = {0};
        int r, status = 1;

        if (!b) {
                fprintf(stderr, "isolation_bench: out of memory\n");
                return 1;
        }
        b->size = size;
        b->window = (uint64_t)depth * size;
        /* A compare of up to RXBUF bytes or a send of a window, from any
         * offset below size, stays inside tx. */
        size_t txlen = (b->window > RXBUF ? b->window : RXBUF) + size;
        b->tx = malloc(txlen);
        b->pc = calloc(conns, sizeof *b->pc);
        if (!b->tx || !b->pc) {
                fprintf(stderr, "isolation_bench: out of memory\n");
                goto out_free;
        }
        bench_stream_fill(7, 0, b->tx, size);
        for (size_t i = size; i < txlen; i++)
                b->tx[i] = b->tx[i % size];

        r = load_init(&l, addr, conns, &ops, b);
        if (r < 0) {
                fprintf(stderr, "isolation_bench: setup: %s\n", strerror(-r));
                goto out;
        }
        r = load_run(&l, bench_now_ns() + CONNECT_TIMEOUT_NS);
        if (r < 0)
                goto out;
        int64_t t0 = bench_now_ns();
        for (uint32_t i = 0; i < conns; i++) {
                r = load_unpark(&l, &l.conns[i]);
                if (r < 0)
                        goto out;
        }
        r = load_run(&l, t0 + (int64_t)warmup * 1000000000);
        if (r != -ETIMEDOUT)
                goto stopped;
        int64_t t1 = bench_now_ns();
        uint64_t before = requests_done(b, conns);
        r = load_run(&l, t1 + (int64_t)seconds * 1000000000);
        if (r != -ETIMEDOUT)
                goto stopped;
        int64_t t2 = bench_now_ns();
        uint64_t total = requests_done(b, conns), measured = total - before;
        double dt = (double)(t2 - t1) / 1e9;
        if (!measured) {
                fprintf(stderr, "isolation_bench: no request came back\n");
                goto out;
        }
        printf("isolation_bench: mode=pipelined conns=%u depth=%u size=%u seconds=%.2f "
               "requests=%" PRIu64 " req_per_s=%.0f mb_per_s=%.2f requests_total=%" PRIu64
               " seconds_total=%.2f\n",
               conns, depth, size, dt, measured, (double)measured / dt,
               (double)measured * size / dt / 1e6, total, (double)(t2 - t0) / 1e9);
        status = 0;
        goto out;
stopped:
        if (r == 0)
                fprintf(stderr, "isolation_bench: every connection stopped early\n");
out:
        load_fini(&l);
out_free:
        free(b->tx);
        free(b->pc);
        free(b);
        return status;
}

/* ------------------------------------------------------------------ */
/* Process switches. */

static long switch_iters;

static void waiter(struct vk_thread *that)
{
        struct {
                long i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < switch_iters; self->i++)
                vk_sleep(0);
        vk_end();
}

static int run_switch(long iters, unsigned procs, enum vk_isolation mode, const char *name)
{
        struct vk_kernel_config cfg = {.heap_size = 16384, .ring_size = 4096, .isolation = mode};
        struct vk_kernel_stats st;
        struct vk_kernel *k;
        int r = vk_kernel_new(&cfg, &k);

        if (r < 0) {
                fprintf(stderr, "isolation_bench: vk_kernel_new: %s\n", strerror(-r));
                return 1;
        }
        switch_iters = iters;
        for (unsigned i = 0; i < procs; i++) {
                if (vk_kernel_spawn(k, waiter, NULL, 0, -1, -1) < 0) {
                        fprintf(stderr, "isolation_bench: cannot spawn\n");
                        return 1;
                }
        }
        int64_t t0 = bench_now_ns();
        r = vk_kernel_run(k);
        int64_t dt = bench_now_ns() - t0;
        vk_kernel_stats(k, &st);
        if (r < 0 || st.failed) {
                fprintf(stderr, "isolation_bench: the switch run failed\n");
                return 1;
        }
        printf("isolation_bench: mode=switch isolation=%s protection=%s procs=%u "
               "dispatches=%" PRIu64 " polls=%" PRIu64 " ns_per_dispatch=%.1f"
               " protects_per_dispatch=%.2f\n",
               name, vk_kernel_protection(k), procs, st.dispatches, st.polls,
               (double)dt / (double)st.dispatches, (double)st.protects / (double)st.dispatches);
        vk_kernel_free(k);
        return 0;
}

/* The protection primitive alone. */

/* The pages of a heap a switch touches: the front, then each ring's first. */
static unsigned hot_pages(size_t *at, unsigned pages, size_t rings, size_t heap, size_t page)
{
        unsigned n = 0;
        for (unsigned p = 0; p < pages; p++)
                at[n++] = p * page;
        if (rings) {
                at[n++] = heap - 2 * rings;
                at[n++] = heap - rings;
        }
        return n;
}

/* Closes one heap: one call, or split at the front's end and the rings. */
static int close_heap(char *h, size_t heap, size_t front, size_t rings, int split)
{
        if (!split)
                return mprotect(h, heap, PROT_NONE);
        size_t lo = heap - 2 * rings;
        return mprotect(h, front, PROT_NONE) | mprotect(h + front, lo - front, PROT_NONE) |
               mprotect(h + lo, 2 * rings, PROT_NONE);
}

static int run_primitive(long iters, unsigned procs, unsigned pages, size_t heap, size_t rings,
                         int split)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE), stride = heap + page, at[4096 + 2];
        char *base = mmap(NULL, stride * procs, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        unsigned nhot = hot_pages(at, pages, rings, heap, page);

        if (base == MAP_FAILED || heap % page || rings % page || pages * page + 2 * rings > heap ||
            (split && (!rings || !pages))) {
                fprintf(stderr, "isolation_bench: cannot map %u heaps of %zu bytes\n", procs, heap);
                return 1;
        }
        for (unsigned i = 0; i < procs; i++) {
                char *h = base + i * stride;
                munmap(h + heap, page); /* the guard: no two heaps share a mapping */
                mprotect(h, heap, PROT_READ | PROT_WRITE);
                for (unsigned p = 0; p < nhot; p++)
                        h[at[p]] = 1;
                mprotect(h, heap, PROT_NONE);
        }
        unsigned open = 0;
        mprotect(base, heap, PROT_READ | PROT_WRITE);
        int64_t t0 = bench_now_ns();
        for (long n = 0; n < iters; n++) {
                unsigned next = (open + 1) % procs;
                char *h = base + next * stride;
                if (close_heap(base + open * stride, heap, pages * page, rings, split) < 0 ||
                    mprotect(h, heap, PROT_READ | PROT_WRITE) < 0) {
                        fprintf(stderr, "isolation_bench: mprotect: %s\n", strerror(errno));
                        return 1;
                }
                for (unsigned p = 0; p < nhot; p++)
                        h[at[p]]++;
                open = next;
        }
        int64_t t1 = bench_now_ns();
        for (long n = 0; n < iters; n++)
                syscall(SYS_getppid);
        int64_t t2 = bench_now_ns();
        printf("isolation_bench: mode=primitive procs=%u pages=%u heap=%zu rings=%zu"
               " ns_per_switch=%.1f calls_per_switch=%d ns_per_syscall=%.1f\n",
               procs, pages, heap, rings, (double)(t1 - t0) / (double)iters, split ? 4 : 2,
               (double)(t2 - t1) / (double)iters);
        munmap(base, stride * procs);
        return 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
        fprintf(stderr,
                "usage: isolation_bench --connect HOST:PORT [--conns N] [--depth N] [--size N]\n"
                "                       [--seconds N] [--warmup N]\n"
                "       isolation_bench --switch N [--procs N]\n"
                "                       [--isolation isolated|unprivileged|privileged]\n"
                "       isolation_bench --primitive N [--procs N] [--pages N] [--heap-size BYTES]\n"
                "                       [--rings BYTES [--split]]\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"connect", required_argument, NULL, 'c'},
                {"conns", required_argument, NULL, 'n'},
                {"depth", required_argument, NULL, 'd'},
                {"size", required_argument, NULL, 'z'},
                {"seconds", required_argument, NULL, 't'},
                {"warmup", required_argument, NULL, 'w'},
                {"switch", required_argument, NULL, 's'},
                {"procs", required_argument, NULL, 'p'},
                {"isolation", required_argument, NULL, 'i'},
                {"primitive", required_argument, NULL, 'P'},
                {"pages", required_argument, NULL, 'g'},
                {"heap-size", required_argument, NULL, 'H'},
                {"rings", required_argument, NULL, 'R'},
                {"split", no_argument, NULL, 'S'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        uint64_t conns = 100, depth = 16, size = 64, seconds = 5, warmup = 1, iters = 0, procs = 64,
                 prims = 0, pages = 1, heap = 65536, rings = 0, nofile;
        int split = 0;
        const char *target = NULL, *isolation = "isolated";
        enum vk_isolation mode = VK_ISOLATION_ISOLATED;
        int opt, r = 0;

        while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        target = optarg;
                        break;
                case 'n':
                        r = bench_parse_u64(optarg, 1, 100000, &conns);
                        break;
                case 'd':
                        r = bench_parse_u64(optarg, 1, DEPTH_MAX, &depth);
                        break;
                case 'z':
                        r = bench_parse_u64(optarg, 1, SIZE_MAX_BYTES, &size);
                        break;
                case 't':
                        r = bench_parse_u64(optarg, 1, 3600, &seconds);
                        break;
                case 'w':
                        r = bench_parse_u64(optarg, 0, 3600, &warmup);
                        break;
                case 's':
                        r = bench_parse_u64(optarg, 1, 1000000000, &iters);
                        break;
                case 'p':
                        r = bench_parse_u64(optarg, 1, 4096, &procs);
                        break;
                case 'P':
                        r = bench_parse_u64(optarg, 1, 1000000000, &prims);
                        break;
                case 'g':
                        r = bench_parse_u64(optarg, 0, 4096, &pages);
                        break;
                case 'H':
                        r = bench_parse_u64(optarg, 4096, 1 << 26, &heap);
                        break;
                case 'R':
                        r = bench_parse_u64(optarg, 0, 1 << 24, &rings);
                        break;
                case 'S':
                        split = 1;
                        break;
                case 'i':
                        isolation = optarg;
                        r = vk_isolation_parse(optarg);
                        if (r >= 0) {
                                mode = (enum vk_isolation)r;
                                r = 0;
                        }
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        usage();
                        return 2;
                }
                if (r < 0) {
                        fprintf(stderr, "isolation_bench: bad value '%s' for %s\n", optarg,
                                argv[optind - 1]);
                        return 2;
                }
        }
        if (optind != argc || !!target + !!iters + !!prims != 1) {
                usage();
                return 2;
        }
        if (prims)
                return run_primitive((long)prims, (unsigned)procs, (unsigned)pages, (size_t)heap,
                                     (size_t)rings, split);
        if (iters)
                return run_switch((long)iters, (unsigned)procs, mode, isolation);

        struct bench_addr addr;
        if (bench_addr_parse(target, false, &addr) < 0) {
                fprintf(stderr, "isolation_bench: bad address '%s' (want HOST:PORT)\n", target);
                return 2;
        }
        r = bench_raise_nofile(&nofile);
        if (r < 0 || nofile < conns + 16) {
                fprintf(stderr, "isolation_bench: need %" PRIu64 " descriptors\n", conns + 16);
                return 1;
        }
        return run_pipelined(&addr, (uint32_t)conns, (uint32_t)depth, (uint32_t)size, seconds,
                             warmup);
}

/*
 * scribble: random stray writes into live connections' own heaps while
 * traffic flows; the kernel must never fault. In each isolation mode, one
 * kernel runs GOOD pairs of processes that ping-pong checked patterns, and
 * HOSTILE echo processes, each driven by a peer process, that after every
 * read overwrite a few random bytes of their own micro-heap (mostly its
 * front, where the kernel's records for them live: the process header,
 * threads, pipes, ring control words, frames) with random bytes, small
 * numbers or pointer-like values, then echo. A hostile process may end in
 * any way (a contained fault, a corrupt record the kernel refused, a wild
 * error, a runaway loop cut by the CPU budget); as each pair ends, the exit
 * hook starts another. A fault in kernel code kills this program, which is
 * the failure this test exists to find; every good ping must come back
 * intact.
 *
 *     scribble [SECONDS [SEED]]      (default 21 s: a third per mode)
 *
 * Prints per mode the hostile processes started and how they ended. Exit 0
 * on success, 1 on a failed check.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"

#define GOOD 4
#define HOSTILE 16
#define MAX_SLOTS 4096

static struct vk_kernel *k;
static enum vk_isolation mode;
static uint64_t deadline_ns;
static uint64_t rng;
static int failed;
static unsigned long started, ended_clean, ended_fault, ended_other, good_ok, good_bad;
/* Each hostile process's heap base, taken by the kernel's record at spawn. */
static char *base_of[MAX_SLOTS];

static uint64_t next_rand(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A few stray writes into the heap at base (slot bytes). */
static void scribble(char *base, size_t slot)
{
        unsigned n = 1 + (unsigned)(next_rand() % 3);
        for (unsigned i = 0; i < n; i++) {
                uint64_t r = next_rand();
                /* 7 in 8 into the first 2 KiB: the records; else anywhere */
                size_t off = (r & 7) ? (r >> 8) % 2048 : (r >> 8) % (slot - 8);
                uint64_t v;
                switch ((r >> 3) & 3) {
                case 0:
                        v = next_rand();
                        break;
                case 1:
                        v = next_rand() % 70000; /* descriptor-, size- or offset-like */
                        break;
                case 2:
                        v = (uint64_t)(uintptr_t)(base + next_rand() % slot); /* in its heap */
                        break;
                default:
                        /* Kernel memory: only where the kernel is out of a
                         * running process's reach (unprivileged). Elsewhere
                         * module code may write it through such a pointer,
                         * by design (docs/security.md); what this test holds
                         * is that the kernel itself never does. */
                        if (mode == VK_ISOLATION_UNPRIVILEGED)
                                v = (uint64_t)(uintptr_t)k + next_rand() % 4096;
                        else
                                v = next_rand() % 70000;
                        break;
                }
                size_t w = 1u << (next_rand() % 4); /* 1, 2, 4 or 8 bytes */
                memcpy(base + off, &v, w);
        }
}

static void hostile(struct vk_thread *that)
{
        struct {
                char buf[256];
                ssize_t n;
        } * self;
        vk_begin();
        vk_set_timeout(that, 500);
        for (;;) {
                vk_readsome(self->n, self->buf, sizeof self->buf);
                if (self->n <= 0)
                        break;
                char *base = base_of[vk_pid(that) & (MAX_SLOTS - 1)];
                if (base)
                        scribble(base, k->pool.slot_size);
                vk_write(self->buf, (size_t)self->n);
                vk_flush();
        }
        vk_end();
}

/* The hostile process's peer: random chunks out, whatever comes back. */
static void driver(struct vk_thread *that)
{
        struct {
                char buf[256];
                unsigned i;
                ssize_t n;
        } * self;
        vk_begin();
        vk_set_timeout(that, 500);
        for (self->i = 0; self->i < 200; self->i++) {
                memset(self->buf, 'a' + (int)(self->i % 26), sizeof self->buf);
                vk_write(self->buf, 1 + next_rand() % sizeof self->buf);
                vk_flush();
                vk_readsome(self->n, self->buf, sizeof self->buf);
                if (self->n == 0)
                        break;
        }
        vk_end();
}

static void pinger(struct vk_thread *that)
{
        struct {
                char want[64], got[64];
                unsigned long i;
                ssize_t n;
        } * self;
        vk_begin();
        vk_set_timeout(that, 5000);
        for (self->i = 0; now_ns() < deadline_ns; self->i++) {
                for (int j = 0; j < 64; j++)
                        self->want[j] = (char)(self->i * 31 + (unsigned long)j);
                vk_write(self->want, 64);
                vk_flush();
                vk_read(self->n, self->got, 64);
                if (self->n == 64 && !memcmp(self->want, self->got, 64))
                        good_ok++;
                else
                        good_bad++;
                vk_sleep(1);
        }
        vk_close_write();
        vk_end();
}

static void echo(struct vk_thread *that)
{
        struct {
                ssize_t n;
        } * self;
        vk_begin();
        vk_forward(self->n, 0);
        vk_close_write();
        vk_end();
}

static int pair(int sv[2])
{
        return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

static void start_hostile(void)
{
        int sv[2];
        if (pair(sv) < 0) {
                perror("socketpair");
                failed = 1;
                return;
        }
        int64_t pid = vk_kernel_spawn(k, hostile, NULL, 0, sv[0], sv[0]);
        if (pid < 0) {
                close(sv[1]);
                return;
        }
        uint32_t slot = (uint32_t)pid & 0xffffff;
        base_of[slot & (MAX_SLOTS - 1)] = heap_pool_slot(&k->pool, slot);
        vk_kernel_spawn(k, driver, NULL, 0, sv[1], sv[1]);
        started++;
}

static void on_exit_hook(void *ctx, uint64_t pid, const struct vk_error *err)
{
        (void)ctx;
        uint32_t slot = (uint32_t)pid & 0xffffff;
        char **base = &base_of[slot & (MAX_SLOTS - 1)];
        if (!*base || *base != heap_pool_slot(&k->pool, slot))
                return; /* a driver, a pinger or an echo */
        *base = NULL;
        if (!err)
                ended_clean++;
        else if (err->code == EFAULT || err->code == ETIME)
                ended_fault++;
        else
                ended_other++;
        if (now_ns() < deadline_ns)
                start_hostile();
}

static int run_mode(enum vk_isolation m, const char *name, double seconds)
{
        mode = m;
        struct vk_kernel_config cfg = {
                .isolation = mode, .cpu_budget_ms = 50, .max_procs = 256, .idle_limit_ms = 1000};
        int r = vk_kernel_new(&cfg, &k);
        if (r < 0) {
                fprintf(stderr, "vk_kernel_new: %s\n", strerror(-r));
                return 1;
        }
        started = ended_clean = ended_fault = ended_other = good_ok = good_bad = 0;
        memset(base_of, 0, sizeof base_of);
        vk_kernel_on_exit(k, on_exit_hook, NULL);
        deadline_ns = now_ns() + (uint64_t)(seconds * 1e9);
        for (int i = 0; i < GOOD; i++) {
                int sv[2];
                if (pair(sv) < 0)
                        return 1;
                vk_kernel_spawn(k, echo, NULL, 0, sv[0], sv[0]);
                vk_kernel_spawn(k, pinger, NULL, 0, sv[1], sv[1]);
        }
        for (int i = 0; i < HOSTILE; i++)
                start_hostile();
        r = vk_kernel_run(k);
        struct vk_kernel_stats st;
        vk_kernel_stats(k, &st);
        k = vk_kernel_free(k);
        printf("%-12s hostile %lu: clean %lu, contained fault %lu, other error %lu; "
               "good pings %lu ok, %lu bad; dispatches %" PRIu64 "\n",
               name, started, ended_clean, ended_fault, ended_other, good_ok, good_bad,
               st.dispatches);
        if (r < 0 || good_bad || !good_ok || started < HOSTILE || failed) {
                fprintf(stderr, "scribble: FAIL in %s mode\n", name);
                return 1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        double seconds = argc > 1 ? atof(argv[1]) : 21;
        rng = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)now_ns();
        if (!rng)
                rng = 1;
        printf("scribble: %.0f s, seed %" PRIu64 "\n", seconds, rng);
        fflush(stdout);
        int rc = run_mode(VK_ISOLATION_ISOLATED, "isolated", seconds / 3);
        rc |= run_mode(VK_ISOLATION_UNPRIVILEGED, "unprivileged", seconds / 3);
        rc |= run_mode(VK_ISOLATION_PRIVILEGED, "privileged", seconds / 3);
        return rc;
}

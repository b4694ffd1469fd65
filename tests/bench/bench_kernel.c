/*
 * Micro-benchmarks of the virtual kernel, for tests/bench/kernel.sh:
 *   switch N   two threads of one process yield to each other N times each
 *   thread N   a thread spawns and joins a child N times
 *   proc N     N processes (no stdio) are spawned, run and torn down
 * The optional last argument picks the processes' isolation (default
 * isolated). Prints one line: "<what> <mode> <ops> ops <seconds> s <ns> ns/op ...".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vk/vk.h>

#include "vk_kernel.h"

static long iters;

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void yielder(struct vk_thread *that)
{
        struct {
                long i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < iters; self->i++)
                vk_yield();
        vk_end();
}

static void switch_main(struct vk_thread *that)
{
        struct {
                long i;
                struct vk_thread *child;
        } * self;
        vk_begin();
        self->child = vk_spawn(yielder, NULL, 0);
        for (self->i = 0; self->i < iters; self->i++)
                vk_yield();
        vk_join(self->child);
        vk_end();
}

static void nothing(struct vk_thread *that)
{
        struct {
                char unused;
        } * self;
        vk_begin();
        vk_end();
}

static void thread_main(struct vk_thread *that)
{
        struct {
                long i;
                struct vk_thread *child;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < iters; self->i++) {
                self->child = vk_spawn(nothing, NULL, 0);
                vk_join(self->child);
        }
        vk_end();
}

int main(int argc, char **argv)
{
        if (argc != 3 && argc != 4) {
                fprintf(stderr, "usage: bench_kernel switch|thread|proc N "
                                "[isolated|unprivileged|privileged]\n");
                return 2;
        }
        iters = atol(argv[2]);
        struct vk_kernel *k;
        struct vk_kernel_config cfg = {.heap_size = 16384, .ring_size = 4096, .max_procs = 4096};
        const char *mode = argc == 4 ? argv[3] : "isolated";
        int iso = vk_isolation_parse(mode);
        if (iso < 0) {
                fprintf(stderr, "bench_kernel: unknown isolation %s\n", mode);
                return 2;
        }
        cfg.isolation = (enum vk_isolation)iso;
        if (vk_kernel_new(&cfg, &k) < 0)
                return 1;
        double t0 = now();
        long ops = iters;
        if (!strcmp(argv[1], "switch")) {
                vk_kernel_spawn(k, switch_main, NULL, 0, -1, -1);
                vk_kernel_run(k);
                ops = 2 * iters;
        } else if (!strcmp(argv[1], "thread")) {
                vk_kernel_spawn(k, thread_main, NULL, 0, -1, -1);
                vk_kernel_run(k);
        } else if (!strcmp(argv[1], "proc")) {
                /* In batches, as a busy listener would spawn them. */
                for (long done = 0; done < iters;) {
                        long batch = iters - done < 1024 ? iters - done : 1024;
                        for (long i = 0; i < batch; i++)
                                if (vk_kernel_spawn(k, nothing, NULL, 0, -1, -1) < 0)
                                        return 1;
                        vk_kernel_run(k);
                        done += batch;
                }
        } else {
                return 2;
        }
        double dt = now() - t0;
        struct vk_kernel_stats st;
        vk_kernel_stats(k, &st);
        vk_kernel_free(k);
        printf("%s %s %ld ops %.3f s %.1f ns/op (%llu polls, %llu protection changes)\n", argv[1],
               mode, ops, dt, dt * 1e9 / ops, (unsigned long long)st.polls,
               (unsigned long long)st.protects);
        return 0;
}

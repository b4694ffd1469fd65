/*
 * Shared helpers of the kernel's unit suites (check_coro, check_heap,
 * check_ring, check_sched, check_poller): a kernel wired to an exit-hook
 * recorder, non-blocking socketpairs, an event log that coroutines append to
 * and tests compare afterwards, a few stock coroutines (a paced source, a
 * sink, an echo) and a main() running a suite in forking mode with a timeout
 * per case. Each suite includes it once, so everything here is static; a
 * checked fixture resets the state before every case.
 */
#ifndef VKD_TESTS_KERNEL_TEST_H
#define VKD_TESTS_KERNEL_TEST_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"

#define KT_TIMEOUT 20    /* seconds per case */
#define KT_MAX_EXITS 512 /* exits recorded in detail; more are only counted */

#define KT_UNUSED __attribute__((unused))

struct kt_exit {
        uint64_t pid;
        int code; /* 0: clean end */
        char msg[64];
};

struct kt_state {
        struct vk_kernel *k;
        unsigned nexits;
        struct kt_exit exits[KT_MAX_EXITS];
        unsigned stop_after; /* the exit hook stops the kernel after this many; 0 never */
        vk_exit_fn *chain;   /* called by the exit hook after recording */
        char log[16384];
        size_t loglen;
};

static struct kt_state kt KT_UNUSED;

static inline uint64_t kt_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t kt_ms_since(uint64_t t0)
{
        return (kt_now_ns() - t0) / 1000000ull;
}

/* Appends one space-separated entry to the event log. */
static inline __attribute__((format(printf, 1, 2))) void kt_log(const char *fmt, ...)
{
        va_list ap;
        size_t room = sizeof kt.log - kt.loglen;
        if (kt.loglen && room > 1) {
                kt.log[kt.loglen++] = ' ';
                kt.log[kt.loglen] = 0;
                room--;
        }
        va_start(ap, fmt);
        int n = vsnprintf(kt.log + kt.loglen, room, fmt, ap);
        va_end(ap);
        ck_assert_msg(n >= 0 && (size_t)n < room, "event log overflow");
        kt.loglen += (size_t)n;
}

/* s without its first newline and what follows. */
static inline const char *kt_chomp(char *s)
{
        s[strcspn(s, "\n")] = 0;
        return s;
}

static inline void kt_log_is(const char *want)
{
        ck_assert_str_eq(kt.log, want);
}

static inline void kt_on_exit(void *ctx, uint64_t pid, const struct vk_error *err)
{
        if (kt.nexits < KT_MAX_EXITS) {
                struct kt_exit *e = &kt.exits[kt.nexits];
                e->pid = pid;
                e->code = err ? err->code : 0;
                snprintf(e->msg, sizeof e->msg, "%s", err ? err->msg : "");
        }
        kt.nexits++;
        if (kt.stop_after && kt.nexits == kt.stop_after)
                vk_kernel_stop(kt.k);
        if (kt.chain)
                kt.chain(ctx, pid, err);
}

/* The recorded exit of process pid; fails the test if there is none. */
static inline const struct kt_exit *kt_exit_of(int64_t pid)
{
        for (unsigned i = 0; i < kt.nexits && i < KT_MAX_EXITS; i++)
                if (kt.exits[i].pid == (uint64_t)pid)
                        return &kt.exits[i];
        ck_abort_msg("process %lld did not end", (long long)pid);
        return NULL;
}

/* A kernel of the given configuration with the exit hook recording into kt. */
static inline struct vk_kernel *kt_kernel_with(const struct vk_kernel_config *cfg)
{
        int r = vk_kernel_new(cfg, &kt.k);
        ck_assert_msg(r == 0, "vk_kernel_new(%s): %s", cfg->poller ? cfg->poller : "default",
                      strerror(-r));
        vk_kernel_on_exit(kt.k, kt_on_exit, NULL);
        return kt.k;
}

/* The same, for the common settings; 0 takes the default. */
static inline struct vk_kernel *kt_kernel(const char *poller, size_t heap, size_t ring,
                                          unsigned max_procs)
{
        struct vk_kernel_config cfg = {
                .heap_size = heap, .ring_size = ring, .max_procs = max_procs, .poller = poller};
        return kt_kernel_with(&cfg);
}

static inline void kt_nonblock(int fd)
{
        int fl = fcntl(fd, F_GETFL);
        ck_assert_int_ge(fl, 0);
        ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A socketpair: *kside non-blocking for the kernel, *tside blocking for the
 * test (or for another kernel process, then made non-blocking by the caller). */
static inline void kt_pair_type(int type, int *kside, int *tside)
{
        int sv[2];
        ck_assert_int_eq(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
        kt_nonblock(sv[0]);
        *kside = sv[0];
        *tside = sv[1];
}

static inline void kt_pair(int *kside, int *tside)
{
        kt_pair_type(SOCK_STREAM, kside, tside);
}

/* Two non-blocking ends, both for kernel processes. */
static inline void kt_pair_kk(int *a, int *b)
{
        kt_pair(a, b);
        kt_nonblock(*b);
}

static inline void kt_bufsize(int fd, int snd, int rcv)
{
        if (snd)
                ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd), 0);
        if (rcv)
                ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv), 0);
}

static inline int64_t kt_spawn2(vk_thread_fn *fn, const void *arg, size_t arglen, int in, int out)
{
        int64_t pid = vk_kernel_spawn(kt.k, fn, arg, arglen, in, out);
        ck_assert_msg(pid > 0, "vk_kernel_spawn: %s", strerror((int)-pid));
        return pid;
}

static inline int64_t kt_spawn(vk_thread_fn *fn, const void *arg, size_t arglen, int fd)
{
        return kt_spawn2(fn, arg, arglen, fd, fd);
}

static inline void kt_run(void)
{
        int r = vk_kernel_run(kt.k);
        ck_assert_msg(r == 0, "vk_kernel_run: %s", strerror(-r));
}

static inline void kt_write_all(int fd, const void *buf, size_t len)
{
        size_t done = 0;
        while (done < len) {
                ssize_t w = write(fd, (const char *)buf + done, len - done);
                if (w < 0 && errno == EINTR)
                        continue;
                ck_assert_msg(w > 0, "write: %s", strerror(errno));
                done += (size_t)w;
        }
}

/* Reads until end of stream; fails if more than cap bytes come. Only for
 * descriptors whose peer is closed or will close (bounded by the case's
 * timeout otherwise). Returns the count; buf is NUL-terminated if room. */
static inline size_t kt_read_all(int fd, void *buf, size_t cap)
{
        size_t got = 0;
        for (;;) {
                ssize_t r = read(fd, (char *)buf + got, cap - got);
                if (r < 0 && errno == EINTR)
                        continue;
                ck_assert_msg(r >= 0, "read: %s", strerror(errno));
                if (r == 0)
                        break;
                got += (size_t)r;
                ck_assert_msg(got < cap, "more than %zu bytes to read", cap);
        }
        ((char *)buf)[got] = 0;
        return got;
}

/* 1 if fd is an open descriptor. */
static inline int kt_fd_open(int fd)
{
        return fcntl(fd, F_GETFD) >= 0;
}

/* The number of open descriptors below 1024. */
static inline int kt_count_fds(void)
{
        int n = 0;
        for (int fd = 0; fd < 1024; fd++)
                n += kt_fd_open(fd);
        return n;
}

/* The byte at offset i of the test pattern used by the transfer tests. */
static inline char kt_pattern(size_t i)
{
        return (char)((i * 7 + (i >> 8) * 13 + (i >> 16)) & 0xff);
}

static inline void kt_fill_pattern(char *buf, size_t off, size_t len)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = kt_pattern(off + i);
}

/* ------------------------------------------------------------------ */
/* Stock coroutines. */

/* Writes data in steps of `step` bytes; with `pace`, flushes after each step
 * and lets the next poll deliver them before going on (vk_sleep(0): due at
 * once, but timers expire after the poll's I/O is routed), so its reader gets
 * the bytes in pieces. Shuts its output down at the end. */
struct kt_source_arg {
        const char *data;
        size_t len;
        size_t step;
        int pace;
};

static KT_UNUSED void kt_source(struct vk_thread *that)
{
        struct {
                struct kt_source_arg a;
                size_t off, n;
        } * self;
        vk_begin();
        for (self->off = 0; self->off < self->a.len; self->off += self->n) {
                self->n = self->a.len - self->off;
                if (self->n > self->a.step)
                        self->n = self->a.step;
                vk_write(self->a.data + self->off, self->n);
                if (self->a.pace) {
                        vk_flush();
                        vk_sleep(0);
                }
        }
        vk_close_write();
        vk_end();
}

/* Reads everything until end of stream into buf (at most cap bytes) and
 * stores the count in *got. */
struct kt_sink_arg {
        char *buf;
        size_t cap;
        size_t *got;
};

static KT_UNUSED void kt_sink(struct vk_thread *that)
{
        struct {
                struct kt_sink_arg a;
                ssize_t n;
        } * self;
        vk_begin();
        while (*self->a.got < self->a.cap) {
                vk_readsome(self->n, self->a.buf + *self->a.got, self->a.cap - *self->a.got);
                if (self->n == 0)
                        break;
                *self->a.got += (size_t)self->n;
        }
        vk_end();
}

/* Copies input to output until end of stream, then shuts its output. */
static KT_UNUSED void kt_echo(struct vk_thread *that)
{
        struct {
                ssize_t n;
        } * self;
        vk_begin();
        vk_forward(self->n, 0);
        vk_close_write();
        vk_end();
}

/* ------------------------------------------------------------------ */
/* Suite plumbing. */

static inline void kt_reset(void)
{
        memset(&kt, 0, sizeof kt);
}

static inline void kt_teardown(void)
{
        kt.k = vk_kernel_free(kt.k);
}

static inline TCase *kt_tcase(Suite *s, const char *name)
{
        TCase *tc = tcase_create(name);
        tcase_set_timeout(tc, KT_TIMEOUT);
        tcase_add_checked_fixture(tc, kt_reset, kt_teardown);
        suite_add_tcase(s, tc);
        return tc;
}

#define KT_MAIN(suite_fn)                                                    \
        int main(void)                                                       \
        {                                                                    \
                SRunner *sr = srunner_create(suite_fn());                    \
                if (!getenv("CK_FORK")) /* CK_FORK=no still works for gdb */ \
                        srunner_set_fork_status(sr, CK_FORK);                \
                srunner_run_all(sr, CK_NORMAL);                              \
                int failed = srunner_ntests_failed(sr);                      \
                srunner_free(sr);                                            \
                return failed ? EXIT_FAILURE : EXIT_SUCCESS;                 \
        }

#endif

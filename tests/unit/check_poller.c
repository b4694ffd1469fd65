/*
 * Check suite for the poller backends (vkd/kernel/poll_epoll.c, poll_poll.c)
 * and the I/O paths of io.c they drive. The same behavioural cases run once
 * per backend (one TCase each): 1 MiB echoed through small socket buffers
 * with a threaded peer and with both ends in the kernel (ring wraparound,
 * partial writes, output the kernel flushes lazily while the writer waits for
 * input), end of stream travelling both ways, pipelined answers leaving in
 * one writev (counted on a SOCK_SEQPACKET peer, where each writev is one
 * record), regular files and /dev/null as stdio. Then the backend choice:
 * unknown names are -EINVAL, known ones are reported.
 */
#include <ctype.h>
#include <pthread.h>

#include "kernel_test.h"

#define MIB (1u << 20)

static const char *backend;

static void use_epoll(void)
{
        backend = "epoll";
}

static void use_poll(void)
{
        backend = "poll";
}

static char pattern[MIB];

static void fill_pattern(void)
{
        kt_fill_pattern(pattern, 0, MIB);
}

/* ------------------------------------------------------------------ */
/* 1 MiB against a threaded peer. */

struct peer {
        int fd;
        size_t got;
        long bad_at; /* first differing offset, -1 none */
};

static void *peer_writer(void *arg)
{
        struct peer *pr = arg;
        size_t off = 0, step = 1;
        while (off < MIB) {
                /* Odd sizes so writes and reads never line up with the ring. */
                size_t n = step % 7919 + 1;
                if (n > MIB - off)
                        n = MIB - off;
                ssize_t w = write(pr->fd, pattern + off, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break;
                off += (size_t)w;
                step = step * 31 + 17;
        }
        shutdown(pr->fd, SHUT_WR);
        return NULL;
}

static void *peer_reader(void *arg)
{
        struct peer *pr = arg;
        char buf[5000];
        pr->bad_at = -1;
        while (pr->got <= MIB) {
                ssize_t r = read(pr->fd, buf, sizeof buf);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                for (ssize_t i = 0; i < r && pr->bad_at < 0; i++)
                        if (pr->got + (size_t)i >= MIB || buf[i] != pattern[pr->got + (size_t)i])
                                pr->bad_at = (long)(pr->got + (size_t)i);
                pr->got += (size_t)r;
        }
        return NULL;
}

START_TEST(test_echo_1mib_threaded_peer)
{
        int kfd, tfd;
        pthread_t w, r;
        struct peer pr = {0};
        fill_pattern();
        kt_kernel(backend, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        kt_bufsize(kfd, 4096, 4096);
        kt_bufsize(tfd, 4096, 4096);
        int64_t pid = kt_spawn(kt_echo, NULL, 0, kfd);
        pr.fd = tfd;
        ck_assert_int_eq(pthread_create(&w, NULL, peer_writer, &pr), 0);
        ck_assert_int_eq(pthread_create(&r, NULL, peer_reader, &pr), 0);
        kt_run();
        pthread_join(w, NULL);
        pthread_join(r, NULL);
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
        ck_assert_uint_eq(pr.got, MIB);
        ck_assert_int_eq(pr.bad_at, -1);
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.bytes_in, MIB);
        ck_assert_uint_eq(st.bytes_out, MIB);
        ck_assert_uint_gt(st.polls, 4); /* it really had to wait */
}
END_TEST

/* ------------------------------------------------------------------ */
/* 1 MiB with both ends in the kernel. */

static size_t client_got;
static long client_bad = -1;

static void bulk_writer(struct vk_thread *that)
{
        struct {
                size_t off, n;
        } * self;
        vk_begin();
        for (self->off = 0; self->off < MIB; self->off += self->n) {
                self->n = MIB - self->off < 10007 ? MIB - self->off : 10007;
                vk_write(pattern + self->off, self->n);
        }
        vk_close_write();
        vk_end();
}

static void bulk_client(struct vk_thread *that)
{
        struct {
                ssize_t n;
                struct vk_thread *w;
                char buf[3001];
        } * self;
        vk_begin();
        self->w = vk_spawn(bulk_writer, NULL, 0);
        ck_assert_ptr_nonnull(self->w);
        while (client_got <= MIB) {
                vk_readsome(self->n, self->buf, sizeof self->buf);
                if (self->n == 0)
                        break;
                if (client_bad < 0 && (client_got + (size_t)self->n > MIB ||
                                       memcmp(self->buf, pattern + client_got, (size_t)self->n)))
                        client_bad = (long)client_got;
                client_got += (size_t)self->n;
        }
        vk_join(self->w);
        vk_end();
}

START_TEST(test_echo_1mib_in_kernel)
{
        int a, b;
        fill_pattern();
        kt_kernel(backend, 0, 0, 0);
        kt_pair_kk(&a, &b);
        kt_bufsize(a, 4096, 4096);
        kt_bufsize(b, 4096, 4096);
        int64_t client = kt_spawn(bulk_client, NULL, 0, a);
        int64_t echo = kt_spawn(kt_echo, NULL, 0, b);
        kt_run();
        ck_assert_int_eq(kt_exit_of(client)->code, 0);
        ck_assert_int_eq(kt_exit_of(echo)->code, 0);
        ck_assert_uint_eq(client_got, MIB);
        ck_assert_int_eq(client_bad, -1);
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.bytes_in, 2 * MIB);
        ck_assert_uint_eq(st.bytes_out, 2 * MIB);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lazy flush. */

#define BIG (48 * 1024)

static char peer_buf[BIG];

/* Writes more than the socket holds, then waits for input: the rest of its
 * output has to leave while it waits, flushed by the kernel. */
static void big_then_wait(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[8];
        } * self;
        vk_begin();
        vk_write(pattern, BIG);
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("got:%s", kt_chomp(self->line));
        vk_puts("ok\n");
        vk_end();
}

static void big_reader(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[8];
        } * self;
        vk_begin();
        vk_set_timeout(that, 5000); /* fail rather than hang */
        vk_read(self->n, peer_buf, BIG);
        kt_log("peer-read:%zd same=%d", self->n, !memcmp(peer_buf, pattern, BIG));
        vk_puts("go\n");
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("peer-got:%s", kt_chomp(self->line));
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("peer-eof=%d", self->n == 0);
        vk_finally();
        if (vk_error())
                kt_log("peer-error:%d", vk_error()->code);
        vk_end();
}

START_TEST(test_lazy_flush_while_waiting_for_input)
{
        int a, b;
        fill_pattern();
        kt_kernel(backend, 256 * 1024, 64 * 1024, 0);
        kt_pair_kk(&a, &b);
        kt_bufsize(a, 4096, 4096);
        kt_bufsize(b, 4096, 4096);
        kt_spawn(big_then_wait, NULL, 0, a);
        kt_spawn(big_reader, NULL, 0, b);
        kt_run();
        kt_log_is("peer-read:49152 same=1 got:go peer-got:ok peer-eof=1");
}
END_TEST

/* ------------------------------------------------------------------ */
/* End of stream. */

static void eof_server(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("srv-got:%zd", self->n);
        vk_puts("got abc\n");
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("srv-eof=%d at_eof=%d", self->n == 0, vk_at_eof(that));
        vk_close_write();
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("srv-eof-again=%d", self->n == 0);
        vk_end();
}

static void eof_client(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        vk_puts("abc\n");
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("cli-got:%zd", self->n);
        vk_close_write();
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("cli-eof=%d", self->n == 0);
        vk_end();
}

START_TEST(test_eof_both_ways)
{
        /* Each side waits (polls) before the other shuts its output. */
        int a, b;
        kt_kernel(backend, 0, 0, 0);
        kt_pair_kk(&a, &b);
        kt_spawn(eof_server, NULL, 0, a);
        kt_spawn(eof_client, NULL, 0, b);
        kt_run();
        kt_log_is("srv-got:4 cli-got:8 srv-eof=1 at_eof=1 srv-eof-again=1 cli-eof=1");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Pipelining. */

static void upcase_lines(struct vk_thread *that)
{
        struct {
                ssize_t n;
                int i;
                char line[16];
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 100; self->i++) {
                vk_readline(self->n, self->line, sizeof self->line);
                if (self->n == 0)
                        break;
                for (ssize_t i = 0; i < self->n; i++)
                        self->line[i] = (char)toupper((unsigned char)self->line[i]);
                vk_write(self->line, (size_t)self->n);
        }
        vk_end();
}

START_TEST(test_pipelined_answers_in_one_writev)
{
        int in_k, in_t, out_k, out_t;
        char req[400], want[400], rec[1024];
        size_t len = 0;
        kt_kernel(backend, 0, 0, 0);
        kt_pair(&in_k, &in_t);
        kt_pair_type(SOCK_SEQPACKET, &out_k, &out_t);
        for (int i = 0; i < 40; i++)
                len += (size_t)snprintf(req + len, sizeof req - len, "r%d\n", i);
        for (size_t i = 0; i <= len; i++)
                want[i] = (char)toupper((unsigned char)req[i]);
        kt_write_all(in_t, req, len);
        ck_assert_int_eq(shutdown(in_t, SHUT_WR), 0);
        int64_t pid = kt_spawn2(upcase_lines, NULL, 0, in_k, out_k);
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
        /* One record: the 40 answers left in a single writev. */
        ssize_t n = recv(out_t, rec, sizeof rec, 0);
        ck_assert_int_eq(n, (ssize_t)len);
        ck_assert_mem_eq(rec, want, len);
        ck_assert_int_eq(recv(out_t, rec, sizeof rec, 0), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Descriptors that cannot be polled. */

static int temp_file(const char *data, size_t len)
{
        char path[] = "/tmp/check_poller.XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        unlink(path);
        kt_write_all(fd, data, len);
        ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
        return fd;
}

START_TEST(test_regular_file_stdin)
{
        /* 100 KB through a 16 KiB ring: many reads of a descriptor the poller
         * refuses, into a socket that does block. */
        static char got[MIB];
        static size_t ngot;
        const size_t len = 100 * 1000;
        int a, b;
        fill_pattern();
        kt_kernel(backend, 0, 0, 0);
        int file = temp_file(pattern, len);
        kt_pair_kk(&a, &b);
        kt_bufsize(a, 4096, 4096);
        struct kt_sink_arg sink = {got, sizeof got, &ngot};
        int64_t echo = kt_spawn2(kt_echo, NULL, 0, file, a);
        kt_spawn(kt_sink, &sink, sizeof sink, b);
        kt_run();
        ck_assert_int_eq(kt_exit_of(echo)->code, 0);
        ck_assert_uint_eq(ngot, len);
        ck_assert_mem_eq(got, pattern, len);
        ck_assert(!kt_fd_open(file));
}
END_TEST

START_TEST(test_regular_files_both_ways)
{
        static char got[MIB];
        const size_t len = 100 * 1000;
        char path[] = "/tmp/check_poller.out.XXXXXX";
        fill_pattern();
        kt_kernel(backend, 0, 0, 0);
        int in = temp_file(pattern, len);
        int out = mkstemp(path);
        ck_assert_int_ge(out, 0);
        int check = open(path, O_RDONLY | O_CLOEXEC);
        unlink(path);
        int64_t pid = kt_spawn2(kt_echo, NULL, 0, in, out);
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
        ck_assert_uint_eq(kt_read_all(check, got, sizeof got), len);
        ck_assert_mem_eq(got, pattern, len);
}
END_TEST

static void count_input(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char buf[64];
        } * self;
        vk_begin();
        vk_read(self->n, self->buf, sizeof self->buf);
        kt_log("read:%zd eof=%d", self->n, vk_at_eof(that));
        vk_puts("done\n");
        vk_end();
}

START_TEST(test_dev_null_stdin)
{
        int kfd, tfd;
        char out[16];
        kt_kernel(backend, 0, 0, 0);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        ck_assert_int_ge(null, 0);
        kt_pair(&kfd, &tfd);
        kt_spawn2(count_input, NULL, 0, null, kfd);
        kt_run();
        kt_log_is("read:0 eof=1");
        kt_read_all(tfd, out, sizeof out);
        ck_assert_str_eq(out, "done\n");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Choosing a backend. */

START_TEST(test_backend_reported)
{
        kt_kernel(backend, 0, 0, 0);
        ck_assert_str_eq(vk_kernel_poller(kt.k), backend);
}
END_TEST

START_TEST(test_unknown_poller)
{
        static const char *const bad[] = {"nope", "EPOLL", "epoll ", "select", "kqueue"};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
                if (!strcmp(bad[i], "kqueue"))
                        continue;
#endif
                struct vk_kernel *k = (struct vk_kernel *)&k;
                struct vk_kernel_config cfg = {.poller = bad[i]};
                ck_assert_int_eq(vk_kernel_new(&cfg, &k), -EINVAL);
                /* Left alone on failure. */
                ck_assert_ptr_eq(k, (struct vk_kernel *)&k);
        }
}
END_TEST

START_TEST(test_poller_from_environment)
{
        ck_assert_int_eq(setenv("VKD_POLLER", "poll", 1), 0);
        kt_kernel(NULL, 0, 0, 0);
        ck_assert_str_eq(vk_kernel_poller(kt.k), "poll");
        kt.k = vk_kernel_free(kt.k);
        ck_assert_int_eq(setenv("VKD_POLLER", "bogus", 1), 0);
        struct vk_kernel *k = NULL;
        ck_assert_int_eq(vk_kernel_new(NULL, &k), -EINVAL);
        /* The configuration wins over the environment. */
        kt_kernel("epoll", 0, 0, 0);
        ck_assert_str_eq(vk_kernel_poller(kt.k), "epoll");
}
END_TEST

static void add_io_cases(TCase *tc)
{
        tcase_add_test(tc, test_echo_1mib_threaded_peer);
        tcase_add_test(tc, test_echo_1mib_in_kernel);
        tcase_add_test(tc, test_lazy_flush_while_waiting_for_input);
        tcase_add_test(tc, test_eof_both_ways);
        tcase_add_test(tc, test_pipelined_answers_in_one_writev);
        tcase_add_test(tc, test_regular_file_stdin);
        tcase_add_test(tc, test_regular_files_both_ways);
        tcase_add_test(tc, test_dev_null_stdin);
        tcase_add_test(tc, test_backend_reported);
}

static Suite *poller_suite(void)
{
        Suite *s = suite_create("poller");
#ifdef __linux__
        TCase *ep = kt_tcase(s, "epoll");
        tcase_add_checked_fixture(ep, use_epoll, NULL);
        add_io_cases(ep);
#endif
        TCase *pl = kt_tcase(s, "poll");
        tcase_add_checked_fixture(pl, use_poll, NULL);
        add_io_cases(pl);

        TCase *cfg = kt_tcase(s, "choice");
        tcase_add_test(cfg, test_unknown_poller);
#ifdef __linux__
        tcase_add_test(cfg, test_poller_from_environment);
#endif
        return s;
}

KT_MAIN(poller_suite)

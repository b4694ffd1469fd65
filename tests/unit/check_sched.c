/*
 * Check suite for the scheduler of vkd/kernel/sched.c: fairness between
 * processes that never block (none runs more than the dispatch budget in a
 * row), dispatch aggregation (the ready threads of one process run back to
 * back before the next process), a process that ends closing its descriptors
 * (socket, separate pipes, those given with vk_own_fd(), on error too, and on
 * vk_kernel_free), vk_kernel_stop() from a thread and before run() letting
 * run() return once the processes ended, and the accept loop of
 * vk_kernel_listen() keeping to max_procs while the connections beyond it
 * wait in the backlog; spawning writes no heap (no protection change before
 * the first dispatch, however the argument is kept) and an argument too big
 * for the heap is refused or ends the process with ENOMEM; a new client is
 * taken within a poll round of its arrival, however many closes were queued
 * before it. Only socketpairs, pipes and loopback TCP.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>

#include "kernel_test.h"

/* SCHED_BUDGET in sched.c: thread resumptions per dispatch. */
#define BUDGET 64

/* ------------------------------------------------------------------ */
/* Fairness and aggregation. */

#define ROUNDS 200
#define SLICE_ROUNDS 1000 /* rounds of SPIN_US each: past any one slice */
#define SPIN_US 5

static char order[SLICE_ROUNDS * 2 + 1];
static size_t norder;

/* Logs its name, optionally busy for SPIN_US (by the clock, so a slower
 * machine never makes a round shorter), and yields, `rounds` times. */
static void busy_yielder(struct vk_thread *that)
{
        struct {
                char name;
                char spin;
                int rounds;
                int i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < self->rounds; self->i++) {
                order[norder++] = self->name;
                if (self->spin) {
                        uint64_t t0 = kt_now_ns();
                        while (kt_now_ns() - t0 < SPIN_US * 1000ull)
                                ;
                }
                vk_yield();
        }
        vk_end();
}

/* Runs A and B, busy yielders of `rounds` rounds, in a kernel of cfg; returns
 * the longest run of one name in the order they ran, and how many runs. */
static size_t run_yielders(struct vk_kernel_config *cfg, int rounds, int spin, size_t *runs)
{
        struct {
                char name;
                char spin;
                int rounds;
        } arg[2] = {{'A', (char)spin, rounds}, {'B', (char)spin, rounds}};
        int kfd[2], tfd[2];
        norder = 0;
        memset(order, 0, sizeof order);
        kt_kernel_with(cfg);
        for (int i = 0; i < 2; i++) {
                kt_pair(&kfd[i], &tfd[i]);
                kt_spawn(busy_yielder, &arg[i], sizeof arg[i], kfd[i]);
        }
        kt_run();
        ck_assert_uint_eq(norder, 2 * (size_t)rounds);
        size_t run = 1, longest = 1;
        *runs = 1;
        for (size_t i = 1; i < norder; i++) {
                if (order[i] == order[i - 1]) {
                        run++;
                } else {
                        (*runs)++;
                        run = 1;
                }
                if (run > longest)
                        longest = run;
        }
        return longest;
}

/* Privileged: a process yields the CPU after a budget of resumptions. */
START_TEST(test_fairness)
{
        struct vk_kernel_config cfg = {.isolation = VK_ISOLATION_PRIVILEGED};
        size_t runs, longest = run_yielders(&cfg, ROUNDS, 0, &runs);
        ck_assert_msg(longest <= BUDGET, "a process ran %zu times in a row: %s", longest, order);
        /* Aggregated (not one resumption per switch) yet interleaved. */
        ck_assert_uint_ge(longest, 8);
        ck_assert_uint_ge(runs, 2 * ROUNDS / BUDGET);
        /* B got its first turn before A was done. */
        ck_assert(strchr(order, 'B') < strrchr(order, 'A'));
}
END_TEST

/* Protected: a process keeps the CPU while its slice lasts, so its
 * protection changes are paid once for all its ready work. */
START_TEST(test_slice_aggregates)
{
        struct vk_kernel_config cfg = {.isolation = VK_ISOLATION_ISOLATED,
                                       .slice_us = 10 * 1000 * 1000};
        size_t runs, longest = run_yielders(&cfg, ROUNDS, 0, &runs);
        ck_assert_msg(longest == ROUNDS, "A ran %zu of its %d rounds in one go: %s", longest,
                      ROUNDS, order);
        ck_assert_uint_eq(runs, 2);
}
END_TEST

/* ... and not longer: at the first budget's end after the slice, it yields. */
START_TEST(test_slice_ends)
{
        struct vk_kernel_config cfg = {.isolation = VK_ISOLATION_ISOLATED, .slice_us = 1000};
        size_t runs, longest = run_yielders(&cfg, SLICE_ROUNDS, 1, &runs);
        ck_assert_uint_ge(longest, BUDGET);
        ck_assert_msg(longest < SLICE_ROUNDS, "A ran all its rounds in one slice");
        ck_assert(strchr(order, 'B') < strrchr(order, 'A'));
        ck_assert_uint_ge(runs, 3);
}
END_TEST

static void agg_child(struct vk_thread *that)
{
        struct {
                char name[4];
                int i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 3; self->i++) {
                kt_log("%s", self->name);
                vk_yield();
        }
        vk_end();
}

static void agg_main(struct vk_thread *that)
{
        struct {
                char proc;
                int i;
                char name[4];
                struct vk_thread *t[3];
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 3; self->i++) {
                self->name[0] = self->proc;
                self->name[1] = (char)('0' + self->i);
                self->t[self->i] = vk_spawn(agg_child, self->name, sizeof self->name);
        }
        for (self->i = 0; self->i < 3; self->i++)
                vk_join(self->t[self->i]);
        kt_log("%cdone", self->proc);
        vk_end();
}

START_TEST(test_dispatch_aggregation)
{
        int k1, t1, k2, t2;
        char p = 'P', q = 'Q';
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&k1, &t1);
        kt_pair(&k2, &t2);
        kt_spawn(agg_main, &p, 1, k1);
        kt_spawn(agg_main, &q, 1, k2);
        kt_run();
        kt_log_is("P0 P1 P2 P0 P1 P2 P0 P1 P2 Pdone Q0 Q1 Q2 Q0 Q1 Q2 Q0 Q1 Q2 Qdone");
}
END_TEST

/* Woken by input, the main thread plays two paused children: all three run
 * in the same dispatch, before the other process woken by the same poll. */
static void paused_child(struct vk_thread *that)
{
        struct {
                char name;
        } * self;
        vk_begin();
        vk_pause();
        kt_log("%cc", self->name);
        vk_end();
}

static void io_agg_main(struct vk_thread *that)
{
        struct {
                char name;
                ssize_t n;
                char line[16];
                struct vk_thread *a, *b;
        } * self;
        vk_begin();
        self->a = vk_spawn(paused_child, &self->name, 1);
        self->b = vk_spawn(paused_child, &self->name, 1);
        vk_readline(self->n, self->line, sizeof self->line);
        kt_log("%cm", self->name);
        vk_play(self->a);
        vk_play(self->b);
        vk_join(self->a);
        vk_join(self->b);
        vk_end();
}

/* Host-side writes into both sockets; spawned last, it runs after both
 * readers blocked in the same pass. */
static void feed_two(struct vk_thread *that)
{
        struct {
                int fds[2];
        } * self;
        vk_begin();
        ck_assert_int_eq(write(self->fds[0], "x\n", 2), 2);
        ck_assert_int_eq(write(self->fds[1], "x\n", 2), 2);
        vk_end();
}

START_TEST(test_dispatch_aggregation_after_poll)
{
        int k1, t1, k2, t2, k3, t3;
        char p = 'P', q = 'Q';
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&k1, &t1);
        kt_pair(&k2, &t2);
        kt_pair(&k3, &t3);
        kt_spawn(io_agg_main, &p, 1, k1);
        kt_spawn(io_agg_main, &q, 1, k2);
        int fds[2] = {t1, t2};
        kt_spawn(feed_two, fds, sizeof fds, k3);
        kt_run();
        /* Which process the poller names first is its business; that each
         * runs all its ready threads in one go is the scheduler's. */
        ck_assert_msg(!strcmp(kt.log, "Pm Pc Pc Qm Qc Qc") || !strcmp(kt.log, "Qm Qc Qc Pm Pc Pc"),
                      "interleaved: %s", kt.log);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Descriptors. */

static void reply_ok(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        vk_readline(self->n, self->line, sizeof self->line);
        vk_puts("ok\n");
        vk_end();
}

START_TEST(test_end_closes_socket)
{
        int kfd, tfd;
        char out[16];
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        kt_spawn(reply_ok, NULL, 0, kfd);
        kt_write_all(tfd, "hi\n", 3);
        kt_run();
        ck_assert(!kt_fd_open(kfd));
        ck_assert_int_eq(errno, EBADF);
        /* The reply, then end of stream: the peer end saw the close. */
        ck_assert_uint_eq(kt_read_all(tfd, out, sizeof out), 3);
        ck_assert_str_eq(out, "ok\n");
}
END_TEST

START_TEST(test_end_closes_pipes)
{
        int in[2], out[2];
        char buf[16];
        kt_kernel(NULL, 0, 0, 0);
        ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        kt_nonblock(in[0]);
        kt_nonblock(out[1]);
        kt_write_all(in[1], "hi\n", 3);
        kt_spawn2(reply_ok, NULL, 0, in[0], out[1]);
        kt_run();
        ck_assert(!kt_fd_open(in[0]));
        ck_assert(!kt_fd_open(out[1]));
        ck_assert_uint_eq(kt_read_all(out[0], buf, sizeof buf), 3);
        ck_assert_str_eq(buf, "ok\n");
        /* Nobody reads the input pipe any more. */
        ck_assert_int_eq(write(in[1], "x", 1), -1);
        ck_assert_int_eq(errno, EPIPE);
}
END_TEST

static void fails_at_once(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        vk_raise(EBADMSG, "nope");
        vk_end();
}

START_TEST(test_failed_end_closes_socket)
{
        int kfd, tfd;
        char out[4];
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(fails_at_once, NULL, 0, kfd);
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, EBADMSG);
        ck_assert(!kt_fd_open(kfd));
        ck_assert_uint_eq(kt_read_all(tfd, out, sizeof out), 0);
}
END_TEST

START_TEST(test_kernel_free_closes_live_processes)
{
        int kfd[3], tfd[3];
        char out[4];
        kt_kernel(NULL, 0, 0, 0);
        for (int i = 0; i < 3; i++) {
                kt_pair(&kfd[i], &tfd[i]);
                kt_spawn(reply_ok, NULL, 0, kfd[i]);
        }
        kt.k = vk_kernel_free(kt.k);
        ck_assert_ptr_null(kt.k);
        for (int i = 0; i < 3; i++) {
                ck_assert(!kt_fd_open(kfd[i]));
                ck_assert_uint_eq(kt_read_all(tfd[i], out, sizeof out), 0);
        }
        ck_assert_ptr_null(vk_kernel_free(NULL));
}
END_TEST

static int owned[6];

/* Opens and owns descriptors; gives one back early, whose number is then
 * reused by a descriptor it does not own. */
static void owner(struct vk_thread *that)
{
        struct {
                int fail;
                int i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 5; self->i++) {
                owned[self->i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(owned[self->i], 0);
                kt_log("%d", vk_own_fd(that, owned[self->i]));
        }
        close(owned[4]); /* refused: still ours to close */
        vk_close_fd(that, owned[0]);
        owned[5] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(owned[5], owned[0]); /* lowest free number */
        vk_yield();
        if (self->fail)
                vk_raise(EIO, "owner failed");
        vk_end();
}

static void check_owned_closed(int fail)
{
        int kfd, tfd;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(owner, &fail, sizeof fail, kfd);
        kt_run();
        kt_log_is("0 0 0 0 -24");
        ck_assert_int_eq(kt_exit_of(pid)->code, fail ? EIO : 0);
        for (int i = 1; i < 4; i++)
                ck_assert_msg(!kt_fd_open(owned[i]), "owned descriptor %d left open", owned[i]);
        /* Given back with vk_close_fd(): its number now belongs to someone
         * else, which the end of the process must not close. */
        ck_assert(kt_fd_open(owned[5]));
        close(owned[5]);
}

START_TEST(test_end_closes_owned_fds)
{
        check_owned_closed(0);
}
END_TEST

START_TEST(test_failed_end_closes_owned_fds)
{
        check_owned_closed(1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Stopping and listening. */

static int listen_loopback(uint16_t *port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        ck_assert_int_eq(listen(fd, 64), 0);
        ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        *port = ntohs(sa.sin_port);
        return fd;
}

static int connect_loopback(uint16_t port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        return fd;
}

static void stopper(struct vk_thread *that)
{
        struct {
                struct vk_kernel *k;
        } * self;
        vk_begin();
        vk_sleep(10);
        kt_log("stop");
        vk_kernel_stop(self->k);
        vk_sleep(30); /* run() must wait for this */
        kt_log("stopper-end");
        vk_end();
}

static void never_runs(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        kt_log("accepted");
        vk_end();
}

START_TEST(test_stop_from_thread)
{
        int kfd, tfd;
        uint16_t port;
        kt_kernel(NULL, 0, 0, 0);
        int lfd = listen_loopback(&port);
        ck_assert_int_eq(vk_kernel_listen(kt.k, lfd, never_runs, NULL, 0), 0);
        kt_pair(&kfd, &tfd);
        kt_spawn(stopper, &kt.k, sizeof kt.k, kfd);
        kt_run(); /* would never return with a listener, but for the stop */
        kt_log_is("stop stopper-end");
        /* The listener is not the kernel's to close. */
        ck_assert(kt_fd_open(lfd));
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.active, 0);
}
END_TEST

START_TEST(test_stop_before_run)
{
        int kfd, tfd;
        uint16_t port;
        char out[8];
        kt_kernel(NULL, 0, 0, 0);
        int lfd = listen_loopback(&port);
        ck_assert_int_eq(vk_kernel_listen(kt.k, lfd, never_runs, NULL, 0), 0);
        kt_pair(&kfd, &tfd);
        kt_spawn(reply_ok, NULL, 0, kfd);
        kt_write_all(tfd, "hi\n", 3);
        vk_kernel_stop(kt.k);
        kt_run();
        /* The process still ran to its end; no connection was taken. */
        ck_assert_uint_eq(kt_read_all(tfd, out, sizeof out), 3);
        kt_log_is("");
        ck_assert(kt_fd_open(lfd));
}
END_TEST

#define MAXP 2
#define NCLIENTS 6

static uint64_t max_active;
static int running, max_running;

static void counted_server(struct vk_thread *that)
{
        struct {
                struct vk_kernel *k;
                ssize_t n;
                char line[32];
        } * self;
        vk_begin();
        {
                struct vk_kernel_stats st;
                vk_kernel_stats(self->k, &st);
                if (st.active > max_active)
                        max_active = st.active;
        }
        if (++running > max_running)
                max_running = running;
        vk_readline(self->n, self->line, sizeof self->line - 1);
        vk_printf("re:%s", self->line);
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("eof=%d", self->n == 0);
        running--;
        vk_end();
}

START_TEST(test_listen_respects_max_procs)
{
        uint16_t port;
        int cfd[NCLIENTS];
        char out[32], want[32];
        kt_kernel(NULL, 0, 0, MAXP);
        int lfd = listen_loopback(&port);
        ck_assert_int_eq(vk_kernel_listen(kt.k, lfd, counted_server, &kt.k, sizeof kt.k), 0);
        /* All connected before the kernel runs: the ones beyond MAXP wait
         * in the backlog until a process ends. */
        for (int i = 0; i < NCLIENTS; i++) {
                cfd[i] = connect_loopback(port);
                snprintf(out, sizeof out, "hi%d\n", i);
                kt_write_all(cfd[i], out, strlen(out));
                ck_assert_int_eq(shutdown(cfd[i], SHUT_WR), 0);
        }
        kt.stop_after = NCLIENTS;
        kt_run();
        for (int i = 0; i < NCLIENTS; i++) {
                snprintf(want, sizeof want, "re:hi%d\n", i);
                kt_read_all(cfd[i], out, sizeof out);
                ck_assert_str_eq(out, want);
        }
        ck_assert_uint_eq(kt.nexits, NCLIENTS);
        ck_assert_uint_eq(max_active, MAXP);
        ck_assert_int_eq(max_running, MAXP);
        kt_log_is("eof=1 eof=1 eof=1 eof=1 eof=1 eof=1");
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.spawned, NCLIENTS);
        /* Waiting at the limit did not spin the poller. */
        ck_assert_uint_lt(st.polls, 200);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Spawning. */

/* Writes the text it was spawned with (its frame's first member). */
static void says_arg(struct vk_thread *that)
{
        struct {
                char text[128];
        } * self;
        vk_begin();
        vk_puts(self->text);
        vk_end();
}

/* The heap is set up by the first dispatch: spawning changes no protection,
 * and the argument reaches the frame whether kept in the process table
 * (short) or in the kernel zone (longer). */
START_TEST(test_spawn_touches_no_heap)
{
        static const char *const texts[] = {
                "short",
                "a longer argument, past the process table's own room for one, so kept "
                "in the kernel zone",
        };
        int kfd[2], tfd[2];
        char out[128];
        struct vk_kernel_stats st;
        kt_kernel(NULL, 0, 0, 0);
        for (int i = 0; i < 2; i++) {
                kt_pair(&kfd[i], &tfd[i]);
                kt_spawn(says_arg, texts[i], strlen(texts[i]) + 1, kfd[i]);
        }
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.spawned, 2);
        ck_assert_uint_eq(st.protects, 0);
        kt_run();
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_gt(st.protects, 0); /* isolated: the dispatches did */
        for (int i = 0; i < 2; i++) {
                ck_assert_uint_eq(kt_read_all(tfd[i], out, sizeof out - 1), strlen(texts[i]));
                ck_assert_str_eq(out, texts[i]);
        }
}
END_TEST

/* An argument larger than a heap is refused at once; one that fits the
 * slot but not beside the process's rings ends it with ENOMEM, socket closed. */
START_TEST(test_spawn_arg_too_big)
{
        static char big[16384 + 1];
        int kfd, tfd;
        char out[4];
        struct vk_kernel_stats st;
        kt_kernel(NULL, 16384, 4096, 0);
        kt_pair(&kfd, &tfd);
        ck_assert_int_eq(vk_kernel_spawn(kt.k, says_arg, big, sizeof big, -1, -1), -E2BIG);
        int64_t pid = kt_spawn(says_arg, big, 12000, kfd);
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, ENOMEM);
        ck_assert_uint_eq(kt_read_all(tfd, out, sizeof out), 0);
        ck_assert(!kt_fd_open(kfd));
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.nomem, 1);
        ck_assert_uint_eq(st.spawned, 1);
}
END_TEST

/* A process that waits with a deadline far beyond the kernel's idle limit
 * (an hour: or a deadline its heap's corruption made up) is still ended at
 * the limit. The limit was only armed for a process with no timer at all. */
static void waits_an_hour(struct vk_thread *that)
{
        struct {
                char c;
                ssize_t n;
        } * self;
        vk_begin();
        vk_set_timeout(that, 3600 * 1000);
        vk_read(self->n, &self->c, 1); /* nobody writes */
        vk_end();
}

START_TEST(test_idle_limit_beats_a_late_deadline)
{
        int kfd, tfd;
        struct vk_kernel_config cfg = {.heap_size = 16384, .ring_size = 4096, .idle_limit_ms = 100};
        kt_kernel_with(&cfg);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(waits_an_hour, NULL, 0, kfd);
        uint64_t t0 = kt_now_ns();
        kt.stop_after = 1;
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, ETIMEDOUT);
        ck_assert_uint_lt(kt_ms_since(t0), 2000);
        close(tfd);
}
END_TEST

/* A storm of closes queued before a new client: the poller reports events in
 * arrival order, a batch a round, and the listener's edge came after every
 * close, so the new client waited until all of them were processed (5,000
 * closing connections: 200 ms). The accept is tried again after a round
 * that filled its batch. */
#define STORM_CONNS 1500

static void line_echo(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[32];
        } * self;
        vk_begin();
        for (;;) {
                vk_readline(self->n, self->line, sizeof self->line);
                if (self->n <= 0)
                        break;
                vk_write(self->line, self->n);
                vk_flush();
        }
        vk_end();
}

static struct {
        int clients[STORM_CONNS];
        int got, phase, fresh;
        uint16_t port;
        uint64_t base, ended_before;
} storm;

/* Between rounds: once every client was echoed, closes them all and connects
 * a new one before the kernel polls again; then notes how many of the closes
 * were processed before the new client's echo came back. */
static void storm_tick(void *ctx)
{
        struct vk_kernel_stats st;
        char c[2];
        (void)ctx;
        vk_kernel_stats(kt.k, &st);
        if (storm.phase == 0) {
                while (storm.got < STORM_CONNS &&
                       recv(storm.clients[storm.got], c, 2, MSG_DONTWAIT) == 2)
                        storm.got++;
                if (storm.got < STORM_CONNS)
                        return;
                storm.base = st.exited;
                for (int i = 0; i < STORM_CONNS; i++)
                        close(storm.clients[i]);
                storm.fresh = connect_loopback(storm.port);
                ck_assert_int_eq(write(storm.fresh, "y\n", 2), 2);
                storm.phase = 1;
        } else if (storm.phase == 1) {
                if (recv(storm.fresh, c, 2, MSG_DONTWAIT) != 2)
                        return;
                storm.ended_before = st.exited - storm.base;
                storm.phase = 2;
        } else if (storm.fresh >= 0 && st.exited - storm.base >= STORM_CONNS) {
                close(storm.fresh);
                storm.fresh = -1;
                vk_kernel_stop(kt.k);
        }
}

START_TEST(test_accept_beats_a_close_storm)
{
        struct rlimit rl;
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        if (rl.rlim_cur < 2 * STORM_CONNS + 64) {
                ck_assert_msg(rl.rlim_max >= 2 * STORM_CONNS + 64, "open-file limit too low");
                rl.rlim_cur = 2 * STORM_CONNS + 64;
                ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        }
        kt_kernel(NULL, 0, 0, 0);
        int lfd = listen_loopback(&storm.port);
        ck_assert_int_eq(listen(lfd, STORM_CONNS + 16), 0);
        ck_assert_int_eq(vk_kernel_listen(kt.k, lfd, line_echo, NULL, 0), 0);
        for (int i = 0; i < STORM_CONNS; i++) {
                storm.clients[i] = connect_loopback(storm.port);
                ck_assert_int_eq(write(storm.clients[i], "x\n", 2), 2);
        }
        vk_kernel_on_tick(kt.k, storm_tick, NULL, 1);
        alarm(60);
        kt_run();
        alarm(0);
        ck_assert_int_eq(storm.phase, 2);
        /* A round's batch is 256 events (SCHED_EVENTS): the new client is
         * taken after the first, echoed in the next at the latest. */
        ck_assert_msg(storm.ended_before <= 3 * 256,
                      "%llu of %d closes queued before the new client were processed first",
                      (unsigned long long)storm.ended_before, STORM_CONNS);
        close(lfd);
}
END_TEST

static Suite *sched_suite(void)
{
        Suite *s = suite_create("sched");
        TCase *run = kt_tcase(s, "run");
        tcase_add_test(run, test_fairness);
        tcase_add_test(run, test_slice_aggregates);
        tcase_add_test(run, test_slice_ends);
        tcase_add_test(run, test_dispatch_aggregation);
        tcase_add_test(run, test_dispatch_aggregation_after_poll);
        tcase_add_test(run, test_idle_limit_beats_a_late_deadline);

        TCase *fds = kt_tcase(s, "descriptors");
        tcase_add_test(fds, test_end_closes_socket);
        tcase_add_test(fds, test_end_closes_pipes);
        tcase_add_test(fds, test_failed_end_closes_socket);
        tcase_add_test(fds, test_kernel_free_closes_live_processes);
        tcase_add_test(fds, test_end_closes_owned_fds);
        tcase_add_test(fds, test_failed_end_closes_owned_fds);

        TCase *stop = kt_tcase(s, "stop-listen");
        tcase_add_test(stop, test_stop_from_thread);
        tcase_add_test(stop, test_stop_before_run);
        tcase_add_test(stop, test_listen_respects_max_procs);
        tcase_add_test(stop, test_accept_beats_a_close_storm);

        TCase *spawn = kt_tcase(s, "spawn");
        tcase_add_test(spawn, test_spawn_touches_no_heap);
        tcase_add_test(spawn, test_spawn_arg_too_big);
        return s;
}

KT_MAIN(sched_suite)

/*
 * Check suite for virtual threads (vk.h, vkd/kernel/thread.c and the ops of
 * io.c), always driven through a real kernel on socketpairs: coroutines append
 * to an event log that each test compares afterwards. Covers resume points of
 * blocking ops nested in helper macros and loops, spawn/join/call/pause/play,
 * round-robin vk_yield, raising, catching and lowering errors (and raising
 * inside a finally block, which enters it again), errors of children reaching
 * their joiner or parent and never getting lost, vk_raise_at on a blocked
 * thread, an uncaught error ending the process through the exit hook,
 * responder pipes with message boundaries, flushing and EPIPE, and timers
 * (sleep length, per-op timeouts, lowering after a timeout, wake-up order).
 */
#include <ctype.h>

#include "kernel_test.h"

/* A process whose main thread spawns the child given as argument, joins it
 * and logs either "joined" or the error the join raised. */
struct run_arg {
        vk_thread_fn *fn;
};

static void run_and_join(struct vk_thread *that)
{
        struct {
                struct run_arg a;
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(self->a.fn, NULL, 0);
        ck_assert_ptr_nonnull(self->t);
        vk_join(self->t);
        kt_log("joined");
        vk_finally();
        if (vk_error()) {
                kt_log("main-caught:%d:%s", vk_error()->code, vk_error()->msg);
                vk_clear_error();
        }
        vk_end();
}

/* Runs fn as the main thread of a process on a fresh socketpair whose test
 * end stays open (reads block); returns the process id after the run. */
static int64_t run_proc(vk_thread_fn *fn, const void *arg, size_t arglen)
{
        int kfd, tfd;
        if (!kt.k)
                kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(fn, arg, arglen, kfd);
        kt_run();
        return pid;
}

static int64_t run_child(vk_thread_fn *child)
{
        struct run_arg a = {child};
        return run_proc(run_and_join, &a, sizeof a);
}

/* ------------------------------------------------------------------ */
/* Resume points. */

#define READ_TWO_LINES(a, b)                                       \
        do {                                                       \
                vk_readline(self->n, self->a, sizeof self->a - 1); \
                vk_readline(self->n, self->b, sizeof self->b - 1); \
        } while (0)

static unsigned nested_calls;

static void nested_reader(struct vk_thread *that)
{
        struct {
                ssize_t n;
                int i;
                char l1[8], l2[8], l3[8], l4[8], l5[8];
                char chunk[4][4];
        } * self;
        nested_calls++;
        vk_begin();
        READ_TWO_LINES(l1, l2);
        READ_TWO_LINES(l3, l4);
        vk_readline(self->n, self->l5, sizeof self->l5 - 1);
        for (self->i = 0; self->i < 4; self->i++)
                vk_read(self->n, self->chunk[self->i], 3);
        kt_log("%s %s %s %s %s", kt_chomp(self->l1), kt_chomp(self->l2), kt_chomp(self->l3),
               kt_chomp(self->l4), kt_chomp(self->l5));
        kt_log("%s %s %s %s", self->chunk[0], self->chunk[1], self->chunk[2], self->chunk[3]);
        vk_end();
}

START_TEST(test_nested_resume_points)
{
        static const char data[] = "one\ntwo\nthree\nfour\nfive\nAAABBBCCCDDD";
        int a, b;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair_kk(&a, &b);
        /* Two bytes per poll: every op blocks at least once mid-way. */
        struct kt_source_arg src = {data, sizeof data - 1, 2, 1};
        int64_t reader = kt_spawn(nested_reader, NULL, 0, a);
        kt_spawn(kt_source, &src, sizeof src, b);
        kt_run();
        kt_log_is("one two three four five AAA BBB CCC DDD");
        ck_assert_int_eq(kt_exit_of(reader)->code, 0);
        ck_assert_uint_ge(nested_calls, 15);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Spawn, join, call, pause, play, yield. */

static void child_log(struct vk_thread *that)
{
        struct {
                int id;
        } * self;
        vk_begin();
        kt_log("child%d", self->id);
        vk_end();
}

static void spawn_join_main(struct vk_thread *that)
{
        struct {
                int one, two;
                uint32_t top0;
                struct vk_thread *a, *b;
        } * self;
        vk_begin();
        self->one = 1;
        self->two = 2;
        self->top0 = that->proc->top;
        self->a = vk_spawn(child_log, &self->one, sizeof self->one);
        self->b = vk_spawn(child_log, &self->two, sizeof self->two);
        ck_assert_ptr_nonnull(self->a);
        ck_assert_ptr_nonnull(self->b);
        kt_log("spawned");
        vk_join(self->a);
        kt_log("joined1");
        vk_join(self->b);
        kt_log("joined2");
        /* Joining freed both children: the heap is back where it was. */
        kt_log("heap-back=%d", that->proc->top == self->top0);
        vk_end();
}

START_TEST(test_spawn_join)
{
        int64_t pid = run_proc(spawn_join_main, NULL, 0);
        kt_log_is("spawned child1 child2 joined1 joined2 heap-back=1");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

struct square_arg {
        int x;
        int *out;
};

static void square(struct vk_thread *that)
{
        struct {
                struct square_arg a;
        } * self;
        vk_begin();
        kt_log("square-start");
        vk_pause();
        kt_log("square-resumed");
        *self->a.out = self->a.x * self->a.x;
        vk_end();
}

static void call_main(struct vk_thread *that)
{
        struct {
                struct square_arg a;
                int result;
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->a.x = 7;
        self->a.out = &self->result;
        self->t = vk_spawn(square, &self->a, sizeof self->a);
        vk_yield(); /* it starts and pauses */
        kt_log("calling");
        vk_call(self->t);
        kt_log("result=%d", self->result);
        vk_end();
}

START_TEST(test_call)
{
        run_proc(call_main, NULL, 0);
        kt_log_is("square-start calling square-resumed result=49");
}
END_TEST

static void pausing_child(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        kt_log("c0");
        vk_pause();
        kt_log("c1");
        vk_end();
}

static void pause_play_main(struct vk_thread *that)
{
        struct {
                int i;
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(pausing_child, NULL, 0);
        kt_log("m0");
        /* A paused thread stays put however often the others yield. */
        for (self->i = 0; self->i < 3; self->i++)
                vk_yield();
        kt_log("m1 done=%d", vk_is_done(self->t));
        vk_play(self->t);
        kt_log("m2"); /* play does not yield */
        vk_join(self->t);
        kt_log("m3");
        vk_end();
}

START_TEST(test_pause_play)
{
        run_proc(pause_play_main, NULL, 0);
        kt_log_is("m0 c0 m1 done=0 m2 c1 m3");
}
END_TEST

static void yielder(struct vk_thread *that)
{
        struct {
                char name;
                int i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 3; self->i++) {
                kt_log("%c%d", self->name, self->i);
                vk_yield();
        }
        vk_end();
}

static void yield_main(struct vk_thread *that)
{
        struct {
                char a, b;
                int i;
                struct vk_thread *ta, *tb;
        } * self;
        vk_begin();
        self->a = 'A';
        self->b = 'B';
        self->ta = vk_spawn(yielder, &self->a, 1);
        self->tb = vk_spawn(yielder, &self->b, 1);
        for (self->i = 0; self->i < 3; self->i++) {
                kt_log("M%d", self->i);
                vk_yield();
        }
        vk_join(self->ta);
        vk_join(self->tb);
        kt_log("done");
        vk_end();
}

START_TEST(test_yield_round_robin)
{
        run_proc(yield_main, NULL, 0);
        kt_log_is("M0 A0 B0 M1 A1 B1 M2 A2 B2 done");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors. */

static int raise_line;

static void raiser(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        kt_log("before");
        raise_line = __LINE__ + 1;
        vk_raise(EINVAL, "bad thing");
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("caught:%d:%s", vk_error()->code, vk_error()->msg);
                kt_log("line-ok=%d", vk_error()->line == raise_line);
                vk_clear_error();
        } else {
                kt_log("clean");
        }
        vk_end();
}

START_TEST(test_raise_caught_in_own_finally)
{
        int64_t pid = run_child(raiser);
        kt_log_is("before caught:22:bad thing line-ok=1 joined");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void lowerer(struct vk_thread *that)
{
        struct {
                int caught;
        } * self;
        vk_begin();
        kt_log("a");
        vk_raise(EAGAIN, "again");
        kt_log("b");
        vk_raisef(EINTR, "second %d", 2);
        kt_log("c");
        vk_finally();
        if (vk_error() && self->caught++ < 5) {
                kt_log("caught:%d:%s", vk_error()->code, vk_error()->msg);
                vk_lower();
        }
        kt_log("finally-clean=%d", vk_error() == NULL);
        vk_end();
}

START_TEST(test_lower_resumes_after_raise)
{
        run_child(lowerer);
        kt_log_is("a caught:11:again b caught:4:second 2 c finally-clean=1 joined");
}
END_TEST

static void failing_child(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        kt_log("child");
        vk_raise(ENOENT, "child failed");
        vk_end();
}

START_TEST(test_join_raises_child_error)
{
        int64_t pid = run_child(failing_child);
        kt_log_is("child main-caught:2:child failed");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void parent_reading(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(failing_child, NULL, 0);
        kt_log("reading");
        vk_readline(self->n, self->line, sizeof self->line);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("parent-caught:%d:%s", vk_error()->code, vk_error()->msg);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_unjoined_child_error_raised_at_parent)
{
        int64_t pid = run_proc(parent_reading, NULL, 0);
        kt_log_is("reading child parent-caught:2:child failed");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void parent_sleeping(struct vk_thread *that)
{
        struct {
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(failing_child, NULL, 0);
        vk_sleep(10000);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("parent-caught:%d", vk_error()->code);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_child_error_wakes_sleeping_parent)
{
        uint64_t t0 = kt_now_ns();
        run_proc(parent_sleeping, NULL, 0);
        kt_log_is("child parent-caught:2");
        /* The process ended at once; its timer did not hold the kernel. */
        ck_assert_uint_lt(kt_ms_since(t0), 5000);
}
END_TEST

static void slow_failing_child(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        vk_yield();
        vk_yield();
        kt_log("slow-fails");
        vk_raise(EIO, "slow failed");
        vk_end();
}

/* Joins a slow child; a quick sibling's error ends it while it waits. */
static void middle(struct vk_thread *that)
{
        struct {
                struct vk_thread *slow, *quick;
        } * self;
        vk_begin();
        self->slow = vk_spawn(slow_failing_child, NULL, 0);
        self->quick = vk_spawn(failing_child, NULL, 0);
        vk_join(self->slow);
        kt_log("not-reached");
        vk_end();
}

static void top_of_middle(struct vk_thread *that)
{
        struct {
                int caught;
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(middle, NULL, 0);
        vk_join(self->t);
        kt_log("after-join");
        vk_finally();
        if (vk_error() && self->caught++ < 5) {
                kt_log("main-caught:%d:%s", vk_error()->code, vk_error()->msg);
                vk_lower();
        }
        kt_log("clean=%d", vk_error() == NULL);
        vk_end();
}

START_TEST(test_error_of_child_whose_joiner_ended_not_lost)
{
        /* middle waits in vk_join(slow) when quick's error ends it; slow then
         * fails with nobody waiting any more: its error must go up the
         * parent chain, not to the dead joiner. */
        int64_t pid = run_proc(top_of_middle, NULL, 0);
        kt_log_is("child slow-fails main-caught:5:slow failed main-caught:2:child failed "
                  "after-join clean=1");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

/* An error raised inside the finally block enters it again from the top, with
 * the new error (services guard against looping with a frame flag, as here
 * and in services/http11/server.c). */
static void raises_in_finally(struct vk_thread *that)
{
        struct {
                int entered;
        } * self;
        vk_begin();
        kt_log("body");
        vk_raise(EINVAL, "first");
        vk_finally();
        if (self->entered++ == 0) {
                kt_log("finally:%d", vk_error()->code);
                vk_raise(EIO, "in finally");
                kt_log("not-reached");
        } else if (vk_error()) {
                /* Left pending, the error ends the thread: a raise here
                 * would only come back once more. */
                kt_log("again:%d:%s", vk_error()->code, vk_error()->msg);
        }
        vk_end();
}

START_TEST(test_raise_in_finally_reenters_it)
{
        int64_t pid = run_child(raises_in_finally);
        kt_log_is("body finally:22 again:5:in finally main-caught:5:in finally");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void gone_responder(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        vk_end();
}

static void error_reply_to_nobody(struct vk_thread *that)
{
        struct {
                int entered;
                struct vk_thread *r;
        } * self;
        vk_begin();
        self->r = vk_responder(gone_responder, NULL, 0);
        vk_join(self->r);
        vk_raise(EPROTO, "bad request");
        vk_finally();
        if (self->entered++ == 0) {
                kt_log("finally:%d", vk_error()->code);
                vk_puts("error\n"); /* EPIPE: nobody reads any more */
        } else if (vk_error()) {
                kt_log("again:%d", vk_error()->code);
        }
        vk_end();
}

START_TEST(test_failing_write_in_finally)
{
        /* The common case: a finally block answering an error to a peer that
         * is gone. The write's EPIPE comes back into the block, and, left
         * pending, ends the process with it. */
        int64_t pid = run_proc(error_reply_to_nobody, NULL, 0);
        kt_log_is("finally:71 again:32");
        ck_assert_int_eq(kt_exit_of(pid)->code, EPIPE);
}
END_TEST

static void times_out_in_finally(struct vk_thread *that)
{
        struct {
                int entered;
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        vk_set_timeout(that, 20);
        vk_raise(EPROTO, "bad request");
        vk_finally();
        if (self->entered++ == 0) {
                kt_log("finally:%d", vk_error()->code);
                vk_readline(self->n, self->line, sizeof self->line);
                kt_log("not-reached");
        } else if (vk_error()) {
                kt_log("again:%d", vk_error()->code);
        }
        vk_end();
}

START_TEST(test_timeout_in_finally)
{
        /* A deadline raised at a thread blocked inside its finally block
         * enters the block again the same way. */
        int64_t pid = run_proc(times_out_in_finally, NULL, 0);
        kt_log_is("finally:71 again:110");
        ck_assert_int_eq(kt_exit_of(pid)->code, ETIMEDOUT);
}
END_TEST

static void blocked_reader(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        kt_log("reader-blocks");
        vk_readline(self->n, self->line, sizeof self->line);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("reader-caught:%d:%s", vk_error()->code, vk_error()->msg);
                vk_clear_error();
        }
        vk_end();
}

static void canceller(struct vk_thread *that)
{
        struct {
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(blocked_reader, NULL, 0);
        vk_yield();
        kt_log("cancel blocked=%d", self->t->state == VK_THREAD_BLOCKED);
        vk_raise_at(self->t, ECANCELED, "cancelled");
        vk_join(self->t);
        /* The socket no longer names the cancelled reader. */
        kt_log("joined slot-free=%d", that->in->reader == NULL);
        vk_end();
}

START_TEST(test_raise_at_blocked_reader)
{
        int64_t pid = run_proc(canceller, NULL, 0);
        kt_log_is("reader-blocks cancel blocked=1 reader-caught:125:cancelled joined slot-free=1");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void main_raises(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        kt_log("main");
        vk_raise(EPROTO, "protocol boom");
        kt_log("not-reached");
        vk_end();
}

START_TEST(test_main_error_reaches_exit_hook)
{
        int64_t pid = run_proc(main_raises, NULL, 0);
        kt_log_is("main");
        const struct kt_exit *e = kt_exit_of(pid);
        ck_assert_int_eq(e->code, EPROTO);
        ck_assert_str_eq(e->msg, "protocol boom");
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.failed, 1);
        ck_assert_uint_eq(st.active, 0);
}
END_TEST

static void main_pauses(struct vk_thread *that)
{
        struct {
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(failing_child, NULL, 0);
        vk_pause();
        kt_log("not-reached");
        vk_end();
}

START_TEST(test_child_error_through_main_reaches_exit_hook)
{
        int64_t pid = run_proc(main_pauses, NULL, 0);
        kt_log_is("child");
        const struct kt_exit *e = kt_exit_of(pid);
        ck_assert_int_eq(e->code, ENOENT);
        ck_assert_str_eq(e->msg, "child failed");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Responders. */

/* Upper-cases each line of each message and ends every message with a
 * "[lines]" trailer, then says "bye" at end of stream. */
static void upper_responder(struct vk_thread *that)
{
        struct {
                ssize_t n;
                int msgs, lines;
                char line[64];
        } * self;
        vk_begin();
        for (self->msgs = 0; self->msgs < 8; self->msgs++) {
                for (self->lines = 0; self->lines < 8; self->lines++) {
                        vk_readline(self->n, self->line, sizeof self->line - 1);
                        if (self->n == 0)
                                break;
                        for (ssize_t i = 0; i < self->n; i++)
                                self->line[i] = (char)toupper((unsigned char)self->line[i]);
                        vk_write(self->line, (size_t)self->n);
                }
                if (self->lines == 0 && vk_at_eof(that))
                        break;
                ck_assert(vk_at_hup(that));
                vk_printf("[%d]\n", self->lines);
                vk_readhup();
        }
        vk_puts("bye\n");
        vk_end();
}

static void responder_main(struct vk_thread *that)
{
        struct {
                struct vk_thread *r;
        } * self;
        vk_begin();
        self->r = vk_responder(upper_responder, NULL, 0);
        ck_assert_ptr_nonnull(self->r);
        vk_puts("ab\ncd\n");
        vk_hup();
        vk_puts("ef\n");
        vk_hup(); /* waits for the responder to pass the first boundary */
        vk_puts("gh\n");
        vk_close_write(); /* last message ends with the stream, no boundary */
        vk_join(self->r);
        vk_end();
}

START_TEST(test_responder_message_boundaries)
{
        int kfd, tfd;
        char out[256];
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(responder_main, NULL, 0, kfd);
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
        /* All of it, including what the responder wrote last before ending. */
        kt_read_all(tfd, out, sizeof out);
        ck_assert_str_eq(out, "AB\nCD\n[2]\nEF\n[1]\nGH\n[1]\nbye\n");
}
END_TEST

/* The server side: each request line goes to the responder as one message. */
static void rr_server(struct vk_thread *that)
{
        struct {
                ssize_t n;
                int i;
                char line[32];
                struct vk_thread *r;
        } * self;
        vk_begin();
        self->r = vk_responder(upper_responder, NULL, 0);
        for (self->i = 0; self->i < 10; self->i++) {
                vk_readline(self->n, self->line, sizeof self->line - 1);
                if (self->n == 0)
                        break;
                vk_write(self->line, (size_t)self->n);
                vk_hup();
        }
        vk_close_write();
        vk_join(self->r);
        vk_end();
}

/* The client: sends a request only after the previous answer came back. */
static void rr_client(struct vk_thread *that)
{
        struct {
                ssize_t n;
                int i;
                char line[32];
        } * self;
        vk_begin();
        vk_set_timeout(that, 3000); /* fail instead of hanging */
        for (self->i = 0; self->i < 3; self->i++) {
                vk_printf("req%d\n", self->i);
                vk_readline(self->n, self->line, sizeof self->line - 1);
                kt_log("got:%s", kt_chomp(self->line));
                vk_readline(self->n, self->line, sizeof self->line - 1);
                kt_log("%s", kt_chomp(self->line));
        }
        vk_close_write();
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("last:%s", kt_chomp(self->line));
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("eof=%d", self->n == 0);
        vk_finally();
        if (vk_error())
                kt_log("client-error:%d", vk_error()->code);
        vk_end();
}

START_TEST(test_responder_output_flushed_while_it_waits)
{
        /* The responder's answers must leave when it waits for the next
         * message, or client and server wait for each other forever. */
        int a, b;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair_kk(&a, &b);
        kt_spawn(rr_server, NULL, 0, a);
        kt_spawn(rr_client, NULL, 0, b);
        kt_run();
        kt_log_is("got:REQ0 [1] got:REQ1 [1] got:REQ2 [1] last:bye eof=1");
}
END_TEST

static void one_line_responder(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("resp-read:%s", kt_chomp(self->line));
        vk_end();
}

static void epipe_blocked_writer(struct vk_thread *that)
{
        struct {
                struct vk_thread *r;
                char big[8000];
        } * self;
        vk_begin();
        self->r = vk_responder(one_line_responder, NULL, 0);
        memset(self->big, 'x', sizeof self->big);
        memcpy(self->big, "first\n", 6);
        /* More than the pipe holds: blocks until the responder is gone. */
        vk_write(self->big, sizeof self->big);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("main-caught:%d", vk_error()->code);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_responder_gone_blocked_writer_epipe)
{
        int64_t pid = run_proc(epipe_blocked_writer, NULL, 0);
        kt_log_is("resp-read:first main-caught:32");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void epipe_after_join(struct vk_thread *that)
{
        struct {
                int caught;
                struct vk_thread *r;
        } * self;
        vk_begin();
        self->r = vk_responder(one_line_responder, NULL, 0);
        vk_puts("first\n");
        vk_join(self->r);
        vk_puts("second\n");
        kt_log("after-write");
        vk_hup();
        kt_log("after-hup");
        vk_finally();
        if (vk_error() && self->caught++ < 5) {
                kt_log("caught:%d", vk_error()->code);
                vk_lower();
        }
        vk_end();
}

START_TEST(test_responder_gone_epipe)
{
        run_proc(epipe_after_join, NULL, 0);
        kt_log_is("resp-read:first caught:32 after-write caught:32 after-hup");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Timers. */

static uint64_t slept_ms;

static void timed_sleeper(struct vk_thread *that)
{
        struct {
                unsigned ms;
                uint64_t t0;
        } * self;
        vk_begin();
        self->t0 = kt_now_ns();
        vk_sleep(self->ms);
        slept_ms = kt_ms_since(self->t0);
        kt_log("woke");
        vk_end();
}

START_TEST(test_sleep_duration)
{
        unsigned ms = 50;
        run_proc(timed_sleeper, &ms, sizeof ms);
        kt_log_is("woke");
        ck_assert_uint_ge(slept_ms, 50);
        ck_assert_uint_lt(slept_ms, 1000);
}
END_TEST

/* Keeps the worker busy for `ms` in one dispatch, like a slow request. */
static void spinner(struct vk_thread *that)
{
        struct {
                unsigned ms;
        } * self;
        vk_begin();
        {
                uint64_t t0 = kt_now_ns();
                while (kt_ms_since(t0) < self->ms)
                        ;
        }
        vk_end();
}

/* Wakes the poller every few milliseconds. */
static void ticker(struct vk_thread *that)
{
        struct {
                int i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < 30; self->i++)
                vk_sleep(5);
        vk_end();
}

START_TEST(test_sleep_after_slow_dispatch)
{
        /* All three run in the first pass: the sleeper starts after the
         * spinner hogged the worker, and the ticker's timer wakes the poller
         * soon after. The sleep must still last from when it was asked. */
        unsigned spin = 60, ms = 50;
        int k1, t1, k2, t2, k3, t3;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&k1, &t1);
        kt_pair(&k2, &t2);
        kt_pair(&k3, &t3);
        kt_spawn(ticker, NULL, 0, k1);
        kt_spawn(spinner, &spin, sizeof spin, k2);
        kt_spawn(timed_sleeper, &ms, sizeof ms, k3);
        kt_run();
        kt_log_is("woke");
        ck_assert_uint_ge(slept_ms, 50);
        ck_assert_uint_lt(slept_ms, 1000);
}
END_TEST

static void timed_reader(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
                uint64_t t0;
        } * self;
        vk_begin();
        vk_set_timeout(that, 40);
        self->t0 = kt_now_ns();
        vk_readline(self->n, self->line, sizeof self->line);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                slept_ms = kt_ms_since(self->t0);
                kt_log("caught:%d", vk_error()->code);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_timeout_raises_etimedout)
{
        int64_t pid = run_proc(timed_reader, NULL, 0);
        kt_log_is("caught:110");
        ck_assert_uint_ge(slept_ms, 40);
        ck_assert_uint_lt(slept_ms, 1000);
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static unsigned timeouts;

static void patient_reader(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[16];
        } * self;
        vk_begin();
        vk_set_timeout(that, 25);
        vk_readline(self->n, self->line, sizeof self->line - 1);
        kt_log("got:%s", kt_chomp(self->line));
        vk_finally();
        if (vk_error() && vk_error()->code == ETIMEDOUT && timeouts < 100) {
                timeouts++;
                vk_lower(); /* back into the read, which waits again */
        }
        vk_end();
}

static void late_writer(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        vk_sleep(150);
        vk_puts("late\n");
        vk_end();
}

START_TEST(test_lower_after_timeout_retries)
{
        int a, b;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair_kk(&a, &b);
        int64_t pid = kt_spawn(patient_reader, NULL, 0, a);
        kt_spawn(late_writer, NULL, 0, b);
        kt_run();
        kt_log_is("got:late");
        ck_assert_uint_ge(timeouts, 2);
        ck_assert_uint_lt(timeouts, 100);
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void ranked_sleeper(struct vk_thread *that)
{
        struct {
                int rank;
                unsigned ms;
        } * self;
        vk_begin();
        vk_sleep(self->ms);
        kt_log("%d", self->rank);
        vk_end();
}

#define NSLEEPERS 12

static void sleepers_main(struct vk_thread *that)
{
        static const int perm[NSLEEPERS] = {5, 2, 9, 0, 11, 7, 3, 10, 1, 8, 4, 6};
        struct {
                int i;
                struct {
                        int rank;
                        unsigned ms;
                } arg;
                struct vk_thread *t[NSLEEPERS];
        } * self;
        vk_begin();
        for (self->i = 0; self->i < NSLEEPERS; self->i++) {
                self->arg.rank = perm[self->i];
                self->arg.ms = 10 + 8 * (unsigned)perm[self->i];
                self->t[self->i] = vk_spawn(ranked_sleeper, &self->arg, sizeof self->arg);
                ck_assert_ptr_nonnull(self->t[self->i]);
        }
        for (self->i = 0; self->i < NSLEEPERS; self->i++)
                vk_join(self->t[self->i]);
        vk_end();
}

START_TEST(test_sleepers_wake_in_deadline_order)
{
        run_proc(sleepers_main, NULL, 0);
        kt_log_is("0 1 2 3 4 5 6 7 8 9 10 11");
}
END_TEST

static void sleepers_same_wakeup(struct vk_thread *that)
{
        struct {
                int i;
                struct {
                        int rank;
                        unsigned ms;
                } arg;
                struct vk_thread *t[3];
        } * self;
        vk_begin();
        /* Spawned shortest first, so the thread list runs the other way. */
        for (self->i = 0; self->i < 3; self->i++) {
                self->arg.rank = self->i;
                self->arg.ms = 10 * (unsigned)(self->i + 1);
                self->t[self->i] = vk_spawn(ranked_sleeper, &self->arg, sizeof self->arg);
        }
        for (self->i = 0; self->i < 3; self->i++)
                vk_join(self->t[self->i]);
        vk_end();
}

START_TEST(test_sleepers_due_together_wake_in_deadline_order)
{
        /* A spinner holds the worker past all three deadlines, so they fall
         * due in the same wake-up: they must still run shortest first. */
        unsigned spin = 80;
        int k1, t1, k2, t2;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&k1, &t1);
        kt_pair(&k2, &t2);
        kt_spawn(sleepers_same_wakeup, NULL, 0, k1);
        kt_spawn(spinner, &spin, sizeof spin, k2);
        kt_run();
        kt_log_is("0 1 2");
}
END_TEST

static void proc_sleeper(struct vk_thread *that)
{
        struct {
                int rank;
                unsigned ms;
        } * self;
        vk_begin();
        vk_sleep(self->ms);
        kt_log("p%d", self->rank);
        vk_end();
}

START_TEST(test_sleeping_processes_wake_in_deadline_order)
{
        static const int perm[8] = {3, 7, 0, 5, 1, 6, 2, 4};
        kt_kernel(NULL, 0, 0, 0);
        for (int i = 0; i < 8; i++) {
                struct {
                        int rank;
                        unsigned ms;
                } arg = {perm[i], 10 + 10 * (unsigned)perm[i]};
                int kfd, tfd;
                kt_pair(&kfd, &tfd);
                kt_spawn(proc_sleeper, &arg, sizeof arg, kfd);
        }
        kt_run();
        kt_log_is("p0 p1 p2 p3 p4 p5 p6 p7");
}
END_TEST

/* A message to a process that is gone bounces: vk_receive() raises ESRCH
 * like every other op, with the sender field naming the gone process. */
static void receive_bounce(struct vk_thread *that)
{
        struct {
                ssize_t n;
                uint64_t from, to;
                char buf[8];
        } * self;
        vk_begin();
        self->to = vk_pid(that) + 1000;
        vk_send(self->to, "hi", 2);
        vk_receive(self->n, self->from, self->buf, sizeof self->buf);
        kt_log("returned:%zd", self->n);
        vk_finally();
        if (vk_error()) {
                kt_log("raised:%d from-ok=%d", vk_error()->code, self->from == self->to);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_receive_from_gone_raises_esrch)
{
        kt_kernel(NULL, 0, 1024, 0); /* room in the heap for two mailboxes */
        run_child(receive_bounce);
        kt_log_is("raised:3 from-ok=1 joined");
}
END_TEST

/* vk_catch(): an error raised inside (by vk_raise, a timed-out op, a bounced
 * message) lands in the variable and the thread goes on after the catch,
 * without entering its finally block; one raised outside still does. */
static void catcher(struct vk_thread *that)
{
        struct {
                ssize_t n;
                int err, i;
                uint64_t from;
                char buf[8];
        } * self;
        vk_begin();
        vk_catch(self->err, kt_log("in"));
        kt_log("none:%d", self->err);
        for (self->i = 0; self->i < 2; self->i++) {
                vk_catch(self->err, vk_raise(EINVAL, "bad"); kt_log("not-reached"));
                kt_log("caught:%d:%s", self->err, that->err.msg);
        }
        vk_set_timeout(that, 20);
        vk_catch(self->err, vk_readline(self->n, self->buf, sizeof self->buf));
        kt_log("timeout:%d", self->err == ETIMEDOUT);
        vk_set_timeout(that, 0);
        vk_send(vk_pid(that) + 1000, "x", 1);
        vk_catch(self->err, vk_receive(self->n, self->from, self->buf, sizeof self->buf));
        kt_log("gone:%d pending=%d", self->err, vk_error() != NULL);
        vk_raise(ENOENT, "outside");
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("finally:%d", vk_error()->code);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_catch_continues)
{
        kt_kernel(NULL, 0, 1024, 0);
        run_child(catcher);
        kt_log_is("in none:0 caught:22:bad caught:22:bad timeout:1 gone:3 pending=0 finally:2 "
                  "joined");
}
END_TEST

/* An error handled in the finally block but left pending: what the block
 * wrote (an error reply) still reaches the peer, then the error ends the
 * process. */
static void replies_then_fails(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        vk_puts("partial\n");
        vk_raise(EPROTO, "bad request");
        vk_finally();
        if (vk_error())
                vk_printf("ERR %s\n", vk_error()->msg);
        vk_end();
}

START_TEST(test_end_flushes_after_finally_with_error)
{
        int kfd, tfd;
        char buf[64];
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(replies_then_fails, NULL, 0, kfd);
        kt_run();
        ck_assert_int_eq(kt_exit_of(pid)->code, EPROTO);
        ssize_t n = recv(tfd, buf, sizeof buf - 1, MSG_DONTWAIT);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        ck_assert_str_eq(buf, "partial\nERR bad request\n");
}
END_TEST

static Suite *coro_suite(void)
{
        Suite *s = suite_create("coro");
        TCase *flow = kt_tcase(s, "flow");
        tcase_add_test(flow, test_nested_resume_points);
        tcase_add_test(flow, test_spawn_join);
        tcase_add_test(flow, test_call);
        tcase_add_test(flow, test_pause_play);
        tcase_add_test(flow, test_yield_round_robin);

        TCase *err = kt_tcase(s, "errors");
        tcase_add_test(err, test_raise_caught_in_own_finally);
        tcase_add_test(err, test_lower_resumes_after_raise);
        tcase_add_test(err, test_join_raises_child_error);
        tcase_add_test(err, test_unjoined_child_error_raised_at_parent);
        tcase_add_test(err, test_child_error_wakes_sleeping_parent);
        tcase_add_test(err, test_error_of_child_whose_joiner_ended_not_lost);
        tcase_add_test(err, test_raise_in_finally_reenters_it);
        tcase_add_test(err, test_failing_write_in_finally);
        tcase_add_test(err, test_timeout_in_finally);
        tcase_add_test(err, test_raise_at_blocked_reader);
        tcase_add_test(err, test_main_error_reaches_exit_hook);
        tcase_add_test(err, test_child_error_through_main_reaches_exit_hook);
        tcase_add_test(err, test_receive_from_gone_raises_esrch);
        tcase_add_test(err, test_catch_continues);
        tcase_add_test(err, test_end_flushes_after_finally_with_error);

        TCase *resp = kt_tcase(s, "responders");
        tcase_add_test(resp, test_responder_message_boundaries);
        tcase_add_test(resp, test_responder_output_flushed_while_it_waits);
        tcase_add_test(resp, test_responder_gone_blocked_writer_epipe);
        tcase_add_test(resp, test_responder_gone_epipe);

        TCase *tm = kt_tcase(s, "timers");
        tcase_add_test(tm, test_sleep_duration);
        tcase_add_test(tm, test_sleep_after_slow_dispatch);
        tcase_add_test(tm, test_timeout_raises_etimedout);
        tcase_add_test(tm, test_lower_after_timeout_retries);
        tcase_add_test(tm, test_sleepers_wake_in_deadline_order);
        tcase_add_test(tm, test_sleepers_due_together_wake_in_deadline_order);
        tcase_add_test(tm, test_sleeping_processes_wake_in_deadline_order);
        return s;
}

KT_MAIN(coro_suite)

/*
 * Check suite for the process micro-heaps of vkd/kernel/heap.c. The stack
 * allocator is driven directly on a heap laid out in a local page-aligned
 * buffer: space comes back only when the top block is freed (then every free
 * block below it too), blocks are 16-byte aligned, exhaustion and the ring
 * area give NULL, a double free faults. Through a real kernel: a coroutine
 * whose frame outgrows the heap ends its own process with ENOMEM (named size,
 * seen by the exit hook) while another process keeps working,
 * vk_alloc_or_raise() raises ENOMEM, joining frees a child's frame, and heap
 * slots are reused across many more processes than max_procs.
 */
#include <stdint.h>
#include <sys/wait.h>

#include "kernel_test.h"

#define HSIZE (64 * 1024)

static struct vk_proc *heap_new(void)
{
        struct vk_proc *p = aligned_alloc(4096, HSIZE);
        ck_assert_ptr_nonnull(p);
        heap_init(p, HSIZE);
        return p;
}

/* ------------------------------------------------------------------ */
/* The allocator on its own. */

START_TEST(test_free_top_first)
{
        struct vk_proc *p = heap_new();
        uint32_t top0 = p->top;
        char *a = vk_malloc(p, 100), *b = vk_malloc(p, 200), *c = vk_malloc(p, 300);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_nonnull(c);
        ck_assert(a < b && b < c);
        uint32_t top_ab = (uint32_t)(c - (char *)p) - 16; /* c's header */
        vk_free(p, c);
        ck_assert_uint_eq(p->top, top_ab);
        vk_free(p, b);
        vk_free(p, a);
        ck_assert_uint_eq(p->top, top0);
        ck_assert_uint_eq(p->last, 0);
        /* The space is reused from the same place. */
        ck_assert_ptr_eq(vk_malloc(p, 100), a);
        free(p);
}
END_TEST

START_TEST(test_free_out_of_order)
{
        struct vk_proc *p = heap_new();
        uint32_t top0 = p->top;
        char *a = vk_malloc(p, 64), *b = vk_malloc(p, 64), *c = vk_malloc(p, 64);
        uint32_t top_abc = p->top;
        /* Blocks below the top stay reserved until the top goes. */
        vk_free(p, a);
        ck_assert_uint_eq(p->top, top_abc);
        vk_free(p, b);
        ck_assert_uint_eq(p->top, top_abc);
        /* A new block still goes above them. */
        char *d = vk_malloc(p, 32);
        ck_assert(d > c);
        uint32_t top_abcd = p->top;
        vk_free(p, c);
        ck_assert_uint_eq(p->top, top_abcd); /* d is on top */
        /* Freeing the top releases everything free below it at once. */
        vk_free(p, d);
        ck_assert_uint_eq(p->top, top0);
        ck_assert_ptr_eq(vk_malloc(p, 64), a);
        free(p);
}
END_TEST

START_TEST(test_free_partial_release)
{
        struct vk_proc *p = heap_new();
        char *a = vk_malloc(p, 48), *b = vk_malloc(p, 48), *c = vk_malloc(p, 48);
        uint32_t top_a = p->top - 2 * (48 + 16);
        (void)a;
        vk_free(p, b);
        vk_free(p, c);
        /* Pops c and the free b, stops at the live a. */
        ck_assert_uint_eq(p->top, top_a);
        ck_assert_ptr_eq(vk_malloc(p, 48), b);
        free(p);
}
END_TEST

START_TEST(test_alignment)
{
        struct vk_proc *p = heap_new();
        char *blocks[64];
        /* Every size from 0 to 63; fill each and check none overlaps. */
        for (size_t n = 0; n < 64; n++) {
                blocks[n] = vk_malloc(p, n);
                ck_assert_ptr_nonnull(blocks[n]);
                ck_assert_uint_eq((uintptr_t)blocks[n] % 16, 0);
                memset(blocks[n], (int)n, n);
        }
        for (size_t n = 0; n < 64; n++)
                for (size_t i = 0; i < n; i++)
                        ck_assert_int_eq(blocks[n][i], (char)n);
        for (size_t n = 64; n-- > 0;)
                vk_free(p, blocks[n]);
        ck_assert_uint_eq(p->last, 0);
        free(p);
}
END_TEST

START_TEST(test_exhaustion)
{
        struct vk_proc *p = heap_new();
        uint32_t top0 = p->top;
        char *blocks[128];
        int n = 0;
        ck_assert_ptr_null(vk_malloc(p, HSIZE));
        ck_assert_ptr_null(vk_malloc(p, SIZE_MAX));
        ck_assert_ptr_null(vk_malloc(p, (size_t)UINT32_MAX + 32));
        while (n < 128 && (blocks[n] = vk_malloc(p, 1000)))
                n++;
        /* 64 KiB holds 63 blocks of 1000 + 16 rounded to 1024, after the header. */
        ck_assert_int_gt(n, 60);
        ck_assert_int_lt(n, 65);
        ck_assert_ptr_null(vk_malloc(p, 1000));
        /* Whatever is left still serves a block that ends exactly at the end. */
        size_t rem = HSIZE - p->top;
        ck_assert_uint_ge(rem, 16);
        char *tail = vk_malloc(p, rem - 16);
        ck_assert_ptr_nonnull(tail);
        ck_assert_ptr_eq(tail + rem - 16, (char *)p + HSIZE);
        ck_assert_ptr_null(vk_malloc(p, 0));
        vk_free(p, tail);
        while (n > 0)
                vk_free(p, blocks[--n]);
        ck_assert_uint_eq(p->top, top0);
        /* Everything again as one block. */
        char *all = vk_malloc(p, HSIZE - top0 - 16);
        ck_assert_ptr_nonnull(all);
        memset(all, 1, HSIZE - top0 - 16);
        free(p);
}
END_TEST

START_TEST(test_ring_area)
{
        struct vk_proc *p = heap_new();
        long ps = sysconf(_SC_PAGESIZE);
        char *r1 = heap_ring_alloc(p, 16 * 1024);
        ck_assert_ptr_nonnull(r1);
        ck_assert_ptr_eq(r1, (char *)p + HSIZE - 16 * 1024);
        /* Rounded to pages, growing down. */
        char *r2 = heap_ring_alloc(p, 100);
        ck_assert_ptr_eq(r2, r1 - ps);
        /* The allocator stops below the rings. */
        char *big = vk_malloc(p, (size_t)(r2 - (char *)p));
        ck_assert_ptr_null(big);
        big = vk_malloc(p, (size_t)(r2 - (char *)p) - p->top - 16);
        ck_assert_ptr_nonnull(big);
        ck_assert_ptr_null(vk_malloc(p, 1));
        /* And the rings cannot grow into allocated blocks. */
        ck_assert_ptr_null(heap_ring_alloc(p, (size_t)ps));
        free(p);
}
END_TEST

START_TEST(test_double_free_faults)
{
        /* A double free must not pass silently: it kills (outside a dispatch:
         * the whole OS process, so it runs in a child of its own). */
        struct vk_proc *p = heap_new();
        char *a = vk_malloc(p, 10);
        ck_assert_ptr_nonnull(vk_malloc(p, 10));
        vk_free(p, a);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                vk_free(p, a);
                _exit(0);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status), "a double free went unnoticed");
        free(p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Through the kernel. */

static void huge_frame(struct vk_thread *that)
{
        struct {
                char big[128 * 1024];
        } * self;
        vk_begin();
        self->big[0] = 1;
        kt_log("huge-ran");
        vk_end();
}

/* The hibernation store: chunks by size class, reused within their class,
 * contents kept, a full store says so; it is a file mapped nowhere. */
START_TEST(test_store)
{
        static char zmem[64 * 1024] __attribute__((aligned(4096)));
        struct kzone z;
        struct heap_store st;
        char in[HEAP_STORE_MAX + 1], out[HEAP_STORE_MAX];
        for (size_t i = 0; i < sizeof in; i++)
                in[i] = (char)(i * 7 + 1);
        kzone_init(&z, zmem, sizeof zmem);
        ck_assert_int_eq(heap_store_init(&st, 2, &z), 0); /* room for 2 x HEAP_STORE_MAX */
        uint32_t a = heap_store_put(&st, in, 100);
        uint32_t b = heap_store_put(&st, in + 1, HEAP_STORE_MAX);
        ck_assert_uint_ne(a, 0);
        ck_assert_uint_ne(b, 0);
        ck_assert_uint_ne(a, b);
        /* 128 + 3072 of 6144 bytes used: a second largest chunk does not fit */
        ck_assert_uint_eq(heap_store_put(&st, in, HEAP_STORE_MAX), 0);
        memset(out, 0, sizeof out);
        heap_store_take(&st, b, out, HEAP_STORE_MAX);
        ck_assert_mem_eq(out, in + 1, HEAP_STORE_MAX);
        heap_store_take(&st, a, out, 100);
        ck_assert_mem_eq(out, in, 100);
        /* freed chunks come back to their own class */
        ck_assert_uint_eq(heap_store_put(&st, in, 65 + HEAP_STORE_GRAIN - 1), a);
        ck_assert_uint_eq(heap_store_put(&st, in, HEAP_STORE_MAX - 1), b);
        heap_store_take(&st, a, NULL, 65 + HEAP_STORE_GRAIN - 1);
        ck_assert_uint_eq(heap_store_put(&st, in, 100), a); /* and a is reused */
        heap_store_free(&st);
}
END_TEST

/* The mail zone: power-of-two blocks from 4 KiB, reused within their class,
 * none past the zone's end or larger than MSG_STAGE_MAX. */
START_TEST(test_mail_zone)
{
        static char mem[2 * 4096 + 8192] __attribute__((aligned(4096)));
        struct kzone z;
        uint32_t cap_a, cap_b, cap_c, cap;
        kzone_init(&z, mem, sizeof mem);
        char *a = kzone_alloc(&z, 100, &cap_a);
        char *b = kzone_alloc(&z, 4097, &cap_b);
        ck_assert_ptr_eq(a, mem);
        ck_assert_uint_eq(cap_a, 4096);
        ck_assert_ptr_eq(b, mem + 4096);
        ck_assert_uint_eq(cap_b, 8192);
        char *c = kzone_alloc(&z, 4096, &cap_c);
        ck_assert_ptr_eq(c, mem + 3 * 4096);
        ck_assert_ptr_null(kzone_alloc(&z, 1, &cap)); /* full */
        ck_assert_ptr_null(kzone_alloc(&z, MSG_STAGE_MAX + 1, &cap));
        kzone_free(&z, a, cap_a);
        kzone_free(&z, c, cap_c);
        ck_assert_ptr_null(kzone_alloc(&z, 5000, &cap));  /* no 8 KiB block free */
        ck_assert_ptr_eq(kzone_alloc(&z, 4000, &cap), c); /* last freed first */
        ck_assert_ptr_eq(kzone_alloc(&z, 1, &cap), a);
        kzone_free(&z, b, cap_b);
        ck_assert_ptr_eq(kzone_alloc(&z, 8192, &cap), b);
        ck_assert_uint_eq(cap, 8192);
}
END_TEST

START_TEST(test_frame_too_big_ends_only_its_process)
{
        int k1, t1, k2, t2;
        char out[64];
        kt_kernel(NULL, 64 * 1024, 0, 0);
        kt_pair(&k1, &t1);
        kt_pair(&k2, &t2);
        int64_t bad = kt_spawn(huge_frame, NULL, 0, k1);
        int64_t good = kt_spawn(kt_echo, NULL, 0, k2);
        kt_write_all(t2, "ping\n", 5);
        ck_assert_int_eq(shutdown(t2, SHUT_WR), 0);
        kt_run();
        kt_log_is("");
        const struct kt_exit *e = kt_exit_of(bad);
        ck_assert_int_eq(e->code, ENOMEM);
        ck_assert_msg(strstr(e->msg, "131072"), "message does not name the size: %s", e->msg);
        ck_assert_int_eq(kt_exit_of(good)->code, 0);
        ck_assert_uint_eq(kt_read_all(t2, out, sizeof out), 5);
        ck_assert_str_eq(out, "ping\n");
        /* The failed process's socket was closed too. */
        ck_assert_uint_eq(kt_read_all(t1, out, sizeof out), 0);
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.failed, 1);
        ck_assert_uint_eq(st.exited, 2);
}
END_TEST

static void joins_huge_child(struct vk_thread *that)
{
        struct {
                struct vk_thread *t;
        } * self;
        vk_begin();
        self->t = vk_spawn(huge_frame, NULL, 0);
        ck_assert_ptr_nonnull(self->t);
        vk_join(self->t);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("caught:%d", vk_error()->code);
                vk_clear_error();
        }
        vk_end();
}

START_TEST(test_child_frame_too_big_raises_in_joiner)
{
        int kfd, tfd;
        kt_kernel(NULL, 64 * 1024, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(joins_huge_child, NULL, 0, kfd);
        kt_run();
        kt_log_is("caught:12");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void alloc_raiser(struct vk_thread *that)
{
        struct {
                char *small;
                char *big;
        } * self;
        vk_begin();
        vk_alloc_or_raise(self->small, 100);
        kt_log("small-aligned=%d", (uintptr_t)self->small % 16 == 0);
        vk_alloc_or_raise(self->big, 1 << 20);
        kt_log("not-reached");
        vk_finally();
        if (vk_error()) {
                kt_log("caught:%d:%s", vk_error()->code, vk_error()->msg);
                vk_clear_error();
        }
        ck_assert_ptr_null(self->big);
        vk_free(that->proc, self->small);
        vk_end();
}

START_TEST(test_alloc_or_raise)
{
        int kfd, tfd;
        kt_kernel(NULL, 0, 0, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(alloc_raiser, NULL, 0, kfd);
        kt_run();
        kt_log_is("small-aligned=1 caught:12:heap full: 1048576 bytes needed");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

static void small_child(struct vk_thread *that)
{
        struct {
                char data[500];
        } * self;
        vk_begin();
        memset(self->data, 1, sizeof self->data);
        vk_yield();
        vk_end();
}

static void join_frees(struct vk_thread *that)
{
        struct {
                uint32_t top0;
                int i;
                struct vk_thread *t[8];
        } * self;
        vk_begin();
        self->top0 = that->proc->top;
        /* Rounds of 8 children: without freeing at join, 8 * 8 frames of
         * 500+ bytes plus thread structs would not fit twice in the heap. */
        for (self->i = 0; self->i < 64; self->i++) {
                self->t[self->i % 8] = vk_spawn(small_child, NULL, 0);
                ck_assert_ptr_nonnull(self->t[self->i % 8]);
                if (self->i % 8 != 7)
                        continue;
                vk_join(self->t[0]);
                vk_join(self->t[1]);
                vk_join(self->t[2]);
                vk_join(self->t[3]);
                vk_join(self->t[4]);
                vk_join(self->t[5]);
                vk_join(self->t[6]);
                vk_join(self->t[7]);
                ck_assert_uint_eq(that->proc->top, self->top0);
        }
        kt_log("rounds=%d", self->i / 8);
        vk_end();
}

START_TEST(test_join_frees_child)
{
        int kfd, tfd;
        kt_kernel(NULL, 16 * 1024, 4096, 0);
        kt_pair(&kfd, &tfd);
        int64_t pid = kt_spawn(join_frees, NULL, 0, kfd);
        kt_run();
        kt_log_is("rounds=8");
        ck_assert_int_eq(kt_exit_of(pid)->code, 0);
}
END_TEST

/* Processes that dirty their heap and end; the exit hook starts a new one
 * until TOTAL have run, so at most MAXP are alive at once. */
#define MAXP 4
#define TOTAL 200

static uint32_t first_top;
static unsigned started, bad_top;

static void short_lived(struct vk_thread *that)
{
        struct {
                char scratch[1000];
        } * self;
        vk_begin();
        started++;
        if (!first_top)
                first_top = that->proc->top;
        else if (that->proc->top != first_top)
                bad_top++;
        /* Left allocated on purpose: ending the process frees it all. */
        ck_assert_ptr_nonnull(vk_malloc(that->proc, 3000));
        memset(self->scratch, 0xee, sizeof self->scratch);
        vk_yield();
        vk_end();
}

static void respawn(void *ctx, uint64_t pid, const struct vk_error *err)
{
        struct vk_kernel_stats st;
        int kfd, tfd;
        vk_kernel_stats(kt.k, &st);
        if (st.spawned >= TOTAL)
                return;
        kt_pair(&kfd, &tfd);
        close(tfd);
        kt_spawn(short_lived, NULL, 0, kfd);
}

START_TEST(test_slots_reused)
{
        int fds0 = kt_count_fds();
        kt_kernel(NULL, 16 * 1024, 4096, MAXP);
        kt.chain = respawn;
        for (int i = 0; i < MAXP; i++)
                respawn(NULL, 0, NULL);
        kt_run();
        struct vk_kernel_stats st;
        vk_kernel_stats(kt.k, &st);
        ck_assert_uint_eq(st.spawned, TOTAL);
        ck_assert_uint_eq(st.exited, TOTAL);
        ck_assert_uint_eq(st.failed, 0);
        ck_assert_uint_eq(st.active, 0);
        ck_assert_uint_eq(kt.nexits, TOTAL);
        ck_assert_uint_eq(started, TOTAL);
        /* Never more slots than processes alive at once, each starting clean. */
        ck_assert_uint_le(kt.k->pool.used, MAXP);
        ck_assert_uint_eq(kt.k->pool.nfree, kt.k->pool.used);
        ck_assert_uint_eq(bad_top, 0);
        /* No descriptor left behind but the kernel's own (poller, wake pipe, store). */
        ck_assert_int_le(kt_count_fds(), fds0 + 4);
        kt.k = vk_kernel_free(kt.k);
        ck_assert_int_eq(kt_count_fds(), fds0);
}
END_TEST

START_TEST(test_spawn_beyond_max)
{
        int kfd[3], tfd[3];
        static char bufs[3][16];
        static size_t got[3];
        kt_kernel(NULL, 16 * 1024, 4096, 2);
        for (int i = 0; i < 3; i++)
                kt_pair(&kfd[i], &tfd[i]);
        for (int i = 0; i < 2; i++) {
                struct kt_sink_arg a = {bufs[i], sizeof bufs[i], &got[i]};
                kt_spawn(kt_sink, &a, sizeof a, kfd[i]);
        }
        struct kt_sink_arg a = {bufs[2], sizeof bufs[2], &got[2]};
        ck_assert_int_eq(vk_kernel_spawn(kt.k, kt_sink, &a, sizeof a, kfd[2], kfd[2]), -EAGAIN);
        /* The kernel owned the descriptor even though it failed. */
        ck_assert(!kt_fd_open(kfd[2]));
        for (int i = 0; i < 2; i++) {
                kt_write_all(tfd[i], "x", 1);
                close(tfd[i]);
        }
        kt_run();
        ck_assert_uint_eq(got[0], 1);
        ck_assert_uint_eq(got[1], 1);
        /* Slots came back: spawning works again. */
        kt_pair(&kfd[2], &tfd[2]);
        kt_spawn(kt_sink, &a, sizeof a, kfd[2]);
        close(tfd[2]);
        kt_run();
        ck_assert_uint_eq(kt.nexits, 3);
}
END_TEST

static Suite *heap_suite(void)
{
        Suite *s = suite_create("heap");
        TCase *alloc = kt_tcase(s, "allocator");
        tcase_add_test(alloc, test_free_top_first);
        tcase_add_test(alloc, test_free_out_of_order);
        tcase_add_test(alloc, test_free_partial_release);
        tcase_add_test(alloc, test_alignment);
        tcase_add_test(alloc, test_exhaustion);
        tcase_add_test(alloc, test_ring_area);
        tcase_add_test(alloc, test_double_free_faults);
        tcase_add_test(alloc, test_store);
        tcase_add_test(alloc, test_mail_zone);

        TCase *proc = kt_tcase(s, "process");
        tcase_add_test(proc, test_frame_too_big_ends_only_its_process);
        tcase_add_test(proc, test_child_frame_too_big_raises_in_joiner);
        tcase_add_test(proc, test_alloc_or_raise);
        tcase_add_test(proc, test_join_frees_child);
        tcase_add_test(proc, test_slots_reused);
        tcase_add_test(proc, test_spawn_beyond_max);
        return s;
}

KT_MAIN(heap_suite)

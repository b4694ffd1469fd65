/*
 * Check suite for the shared figures (vkd/supervisor/figures.c): the seqlock never hands the
 * reader a torn slot while another process writes it, a child keeps only its own slot mapped,
 * text from a slot is bounded and printable, and the book of exited workers adds up.
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "figures.h"

static void fill(struct fig_values *v, uint64_t x)
{
        for (int i = 0; i < FIG_N_COUNTERS; i++)
                v->c[i] = x;
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++)
                v->latency[i] = x;
}

START_TEST(test_roundtrip)
{
        struct fig_region *r;
        struct fig_values v, got;

        ck_assert_int_eq(fig_region_new(3, &r), 0);
        fill(&v, 7);
        v.c[FIG_BYTES_IN] = 12345;
        fig_publish(fig_region_slot(r, 2), &v);
        ck_assert(fig_read(fig_region_slot(r, 2), &got));
        ck_assert_mem_eq(&got, &v, sizeof(v));
        ck_assert(fig_read(fig_region_slot(r, 0), &got));
        ck_assert_uint_eq(got.c[FIG_ACCEPTED], 0);
        fig_clear(fig_region_slot(r, 2));
        ck_assert(fig_read(fig_region_slot(r, 2), &got));
        ck_assert_uint_eq(got.c[FIG_BYTES_IN], 0);
        ck_assert_ptr_null(fig_region_free(r));
}
END_TEST

START_TEST(test_no_torn_reads)
{
        struct fig_region *r;
        struct fig_slot *s;
        struct fig_values v;
        unsigned consistent = 0;
        int status;
        pid_t pid;

        ck_assert_int_eq(fig_region_new(1, &r), 0);
        s = fig_region_slot(r, 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                for (uint64_t x = 1; x <= 2000000; x++) {
                        fill(&v, x);
                        fig_publish(s, &v);
                }
                _exit(0);
        }
        for (;;) {
                bool done = waitpid(pid, &status, WNOHANG) == pid;

                if (fig_read(s, &v)) {
                        for (int i = 0; i < FIG_N_COUNTERS; i++)
                                ck_assert_uint_eq(v.c[i], v.c[0]);
                        for (int i = 0; i < VK_LATENCY_BUCKETS; i++)
                                ck_assert_uint_eq(v.latency[i], v.c[0]);
                        consistent++;
                }
                if (done)
                        break;
        }
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_uint_gt(consistent, 0);
        ck_assert(fig_read(s, &v));
        ck_assert_uint_eq(v.c[FIG_TIMEOUTS], 2000000);
        fig_region_free(r);
}
END_TEST

/* A writer killed in the middle of a write leaves the counter odd: the reader gives up after
 * its retries instead of spinning, and still returns the values. */
START_TEST(test_abandoned_write)
{
        struct fig_region *r;
        struct fig_slot *s;
        struct fig_values v;

        ck_assert_int_eq(fig_region_new(1, &r), 0);
        s = fig_region_slot(r, 0);
        fill(&v, 5);
        fig_publish(s, &v);
        s->seq++;
        ck_assert(!fig_read(s, &v));
        ck_assert_uint_eq(v.c[FIG_ACCEPTED], 5);
        fig_region_free(r);
}
END_TEST

START_TEST(test_child_keeps_only_its_slot)
{
        struct fig_region *r, *other;
        struct fig_values v;
        int status;
        pid_t pid;

        ck_assert_int_eq(fig_region_new(3, &r), 0);
        ck_assert_int_eq(fig_region_new(2, &other), 0);
        for (int target = 0; target < 4; target++) {
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        fig_child_keep(fig_region_slot(r, 1));
                        fill(&v, 9);
                        fig_publish(fig_region_slot(r, 1), &v); /* its own: fine */
                        if (target == 0)
                                _exit(0);
                        struct fig_slot *bad = target == 1   ? fig_region_slot(r, 0)
                                               : target == 2 ? fig_region_slot(r, 2)
                                                             : fig_region_slot(other, 0);
                        signal(SIGSEGV, SIG_DFL); /* not a sanitizer's report */
                        fig_publish(bad, &v);     /* unmapped: SIGSEGV */
                        _exit(3);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                if (target == 0)
                        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                else
                        ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
        }
        ck_assert(fig_read(fig_region_slot(r, 1), &v));
        ck_assert_uint_eq(v.c[FIG_REQUESTS], 9);
        fig_region_free(other);
        fig_region_free(r);
}
END_TEST

START_TEST(test_module_text)
{
        struct fig_region *r;
        struct fig_slot *s;
        char name[FIG_NAME_MAX], version[FIG_VERSION_MAX];

        ck_assert_int_eq(fig_region_new(1, &r), 0);
        s = fig_region_slot(r, 0);
        fig_read_module(s, name, version);
        ck_assert_str_eq(name, "");
        fig_set_module(s, "echo", "1.0");
        fig_read_module(s, name, version);
        ck_assert_str_eq(name, "echo");
        ck_assert_str_eq(version, "1.0");
        /* what a hostile worker could leave: no terminator, control characters */
        memset(s->module_name, 'a', sizeof(s->module_name));
        s->module_name[3] = '\n';
        memset(s->module_version, '\x1b', sizeof(s->module_version));
        fig_read_module(s, name, version);
        ck_assert_uint_eq(strlen(name), FIG_NAME_MAX - 1);
        ck_assert_int_eq(name[3], '?');
        ck_assert_uint_eq(strlen(version), FIG_VERSION_MAX - 1);
        ck_assert_int_eq(version[0], '?');
        fig_region_free(r);
}
END_TEST

START_TEST(test_book_and_quantiles)
{
        struct fig_book b = {0};
        struct fig_values v = {0};
        const struct fig_values *got;

        v.c[FIG_ACCEPTED] = 10;
        v.c[FIG_ACTIVE] = 4;
        v.latency[3] = 98; /* [4, 8) us */
        v.latency[10] = 2; /* [512, 1024) us */
        v.latency_sum_us = 98 * 5 + 2 * 700;
        ck_assert_int_eq(fig_book_add(&b, "web", &v), 0);
        ck_assert_int_eq(fig_book_add(&b, "web", &v), 0);
        ck_assert_int_eq(fig_book_add(&b, "db", &v), 0);
        got = fig_book_get(&b, "web");
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(got->c[FIG_ACCEPTED], 20);
        ck_assert_uint_eq(got->c[FIG_ACTIVE], 0); /* the gone have no open connections */
        ck_assert_uint_eq(got->latency[3], 196);
        ck_assert_uint_eq(got->latency_sum_us, 2 * (98 * 5 + 2 * 700));
        ck_assert_ptr_null(fig_book_get(&b, "nope"));
        ck_assert_uint_eq(fig_latency_quantile_us(got, 0.5), 8);
        ck_assert_uint_eq(fig_latency_quantile_us(got, 0.98), 1024);
        ck_assert_uint_eq(fig_latency_quantile_us(got, 0.999), 1024);
        v = (struct fig_values){0};
        ck_assert_uint_eq(fig_latency_quantile_us(&v, 0.5), 0);
        fig_book_done(&b);
        fig_book_done(&b);
        fig_book_done(NULL);
}
END_TEST

static Suite *figures_suite(void)
{
        Suite *s = suite_create("figures");
        TCase *tc = tcase_create("figures");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_roundtrip);
        tcase_add_test(tc, test_no_torn_reads);
        tcase_add_test(tc, test_abandoned_write);
        tcase_add_test(tc, test_child_keeps_only_its_slot);
        tcase_add_test(tc, test_module_text);
        tcase_add_test(tc, test_book_and_quantiles);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(figures_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * Check suite for the worker's system call allow-list (vkd/supervisor/sysfilter.c). Each case
 * forks a child that installs the filter and then makes one system call itself; the parent
 * reads the child's fate from its wait status. Nothing is executed or delegated after the
 * filter is in place, so a call the filter wrongly lets through shows as the child carrying
 * on (exit status CARRIED_ON) rather than as some other program dying of the inherited filter.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sysfilter.h"

/* The child got past the call: the filter did not refuse it. */
#define CARRIED_ON 42

typedef void child_fn(void);

/* Forks, installs the filter in the child, runs fn there, and returns the child's wait
 * status. fn must end the child itself or return, which exits CARRIED_ON. */
static int filtered(child_fn *fn)
{
        int status;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char err[256];
                if (sysfilter_install(err, sizeof err) < 0)
                        _exit(3);
                fn();
                _exit(CARRIED_ON);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return status;
}

static void refused(child_fn *fn)
{
        int status = filtered(fn);

        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
                      "want the child killed by SIGSYS, got %s %d",
                      WIFSIGNALED(status) ? "signal" : "exit status",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

static void call_execve(void)
{
        /* A path that does not exist: were execve allowed, it would return ENOENT and the
         * child would carry on; no other program ever runs. */
        char *const argv[] = {"vkd-no-such-program", NULL};
        execve("/nonexistent/vkd-no-such-program", argv, argv + 1);
}

START_TEST(test_execve_refused)
{
        refused(call_execve);
}
END_TEST

static void call_getpid(void)
{
        if (getpid() <= 0)
                _exit(4);
}

START_TEST(test_allowed_call_goes_through)
{
        int status = filtered(call_getpid);

        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == CARRIED_ON,
                      "an allowed call did not go through: status 0x%x", (unsigned)status);
}
END_TEST

static void kill_init(void)
{
        kill(1, 0);
}

static void kill_parent(void)
{
        kill(getppid(), 0);
}

static void kill_group(void)
{
        kill(0, 0);
}

static void kill_everyone(void)
{
        kill(-1, 0);
}

static void tgkill_parent(void)
{
        syscall(SYS_tgkill, (long)getppid(), (long)getppid(), 0L);
}

START_TEST(test_kill_others_refused)
{
        static child_fn *const fns[] = {kill_init, kill_parent, kill_group, kill_everyone,
                                        tgkill_parent};

        refused(fns[_i]);
}
END_TEST

static void call_raise(void)
{
        raise(SIGUSR1);
}

static void kill_self(void)
{
        kill(getpid(), SIGUSR2);
}

static void call_abort(void)
{
        abort();
}

START_TEST(test_raise_on_self_works)
{
        static child_fn *const fns[] = {call_raise, kill_self, call_abort};
        static const int want[] = {SIGUSR1, SIGUSR2, SIGABRT};
        int status = filtered(fns[_i]);

        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == want[_i],
                      "want the child dead of signal %d, got status 0x%x", want[_i],
                      (unsigned)status);
}
END_TEST

static Suite *sysfilter_suite(void)
{
        Suite *s = suite_create("sysfilter");
        TCase *tc = tcase_create("sysfilter");

        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, test_execve_refused);
        tcase_add_test(tc, test_allowed_call_goes_through);
        tcase_add_loop_test(tc, test_kill_others_refused, 0, 5);
        tcase_add_loop_test(tc, test_raise_on_self_works, 0, 3);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(sysfilter_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

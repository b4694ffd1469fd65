/*
 * Worker system call allow-list (see seccomp.h), with libseccomp (Debian's
 * libseccomp-dev): it knows each architecture's numbers and the x32/compat
 * pitfalls, which a hand-written BPF program would have to get right alone.
 *
 * The list is what the virtual kernel, the bundled modules (echo, http11
 * with its static handler's files and sendfile, redis with its append-only
 * file) and libc need once a worker runs; everything before (loading the
 * module, dropping privileges, creating the kernel) happened already.
 */
#include "sysfilter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef VKD_WITH_SECCOMP
#include <seccomp.h>

static const char *const allowed[] = {
        /* I/O on sockets, pipes and files */
        "read",
        "write",
        "readv",
        "writev",
        "pread64",
        "pwrite64",
        "close",
        "shutdown",
        "accept4",
        "accept",
        "connect",
        "socket",
        "setsockopt",
        "getsockopt",
        "getsockname",
        "getpeername",
        "sendfile",
        "sendmsg",
        "recvmsg",
        "sendto",
        "recvfrom",
        "lseek",
        "fcntl",
        "dup",
        "dup3",
        "pipe2",
        /* pollers */
        "epoll_wait",
        "epoll_pwait",
        "epoll_pwait2",
        "epoll_ctl",
        "poll",
        "ppoll",
        /* files a module serves or keeps (static handler, append-only file) */
        "openat",
        "openat2",
        "newfstatat",
        "fstat",
        "statx",
        "fsync",
        "fdatasync",
        "ftruncate",
        "renameat",
        "renameat2",
        "unlinkat",
        "getdents64",
        "readlinkat",
        /* memory: heaps, protection, jemalloc/glibc malloc */
        "mmap",
        "munmap",
        "mprotect",
        "madvise",
        "mremap",
        "brk",
        "pkey_mprotect",
        /* signals, timers and the clock */
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "sigaltstack",
        "setitimer",
        "getitimer",
        "clock_gettime",
        "clock_getres",
        "clock_nanosleep",
        "nanosleep",
        "gettimeofday",
        "time",
        /* process basics (kill and tgkill: see self_only below) */
        "getpid",
        "gettid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "exit",
        "exit_group",
        "futex",
        "sched_yield",
        "getrandom",
        "uname",
        "prlimit64",
        "getrlimit",
        "set_robust_list",
        "rseq",
        "restart_syscall",
        /* the CPU time a process used (redis's INFO cpu) */
        "getrusage",
#ifdef __SANITIZE_ADDRESS__
        /* ASan's siglongjmp interceptor, run by every contained fault, looks up
         * the program's mappings, path and threads (sanitizer builds only) */
        "open",
        "readlink",
        "ioctl",
        "sched_getaffinity",
#endif
};

int sysfilter_install(char *err, size_t errlen)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        int r;
        if (!ctx) {
                snprintf(err, errlen, "seccomp: cannot create a filter");
                return -ENOMEM;
        }
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
                int nr = seccomp_syscall_resolve_name(allowed[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
                if (r < 0) {
                        snprintf(err, errlen, "seccomp: allowing %s: %s", allowed[i], strerror(-r));
                        seccomp_release(ctx);
                        return r;
                }
        }
        /* kill and tgkill only as raise() on oneself for a fatal error (abort(), a
         * contained fault re-raised): never at another process, the process group (0)
         * or everyone (-1). The worker never forks, so its pid stays getpid(). */
        static const char *const self_only[] = {"kill", "tgkill"};
        pid_t self = getpid();
        for (size_t i = 0; i < sizeof self_only / sizeof self_only[0]; i++) {
                int nr = seccomp_syscall_resolve_name(self_only[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self));
                if (r < 0) {
                        snprintf(err, errlen, "seccomp: allowing %s on oneself: %s", self_only[i],
                                 strerror(-r));
                        seccomp_release(ctx);
                        return r;
                }
        }
        r = seccomp_load(ctx);
        if (r < 0)
                snprintf(err, errlen, "seccomp: loading the filter: %s", strerror(-r));
        seccomp_release(ctx);
        return r;
}
#else
int sysfilter_install(char *err, size_t errlen)
{
        snprintf(err, errlen, "built without libseccomp: SystemCallFilter= is not available");
        return -ENOSYS;
}
#endif

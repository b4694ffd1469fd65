/*
 * Fault containment. SIGSEGV, SIGBUS, SIGFPE and SIGILL raised while a
 * process is being dispatched jump back to the dispatch (siglongjmp) and end
 * that process with EFAULT; the worker goes on. A CPU-time timer (ITIMER_PROF,
 * 10 ms ticks, counting only while the worker uses CPU) ends a dispatch that
 * spans more ticks than its budget with ETIME: a runaway loop costs its
 * process, not the worker. Nothing here runs on the hot path: a dispatch only
 * bumps a thread-local counter and sets a flag.
 *
 * A fault outside any dispatch is a kernel bug: it is reported on stderr and
 * the default action (a core dump) follows.
 *
 * What this cannot undo: a runaway loop interrupted inside a libc call that
 * held a lock. Module code runs in the worker's address space; this guards
 * against accidents, not against hostile native code (docs/security.md).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#include "kern.h"

#define FAULT_TICK_MS 10

KERN_TLS sigjmp_buf fault_jmp;
KERN_TLS struct fault_info fault_last;
KERN_TLS volatile unsigned long fault_dispatch_seq;
KERN_TLS struct vk_thread *volatile fault_thread;
KERN_TLS volatile int fault_in_dispatch;
KERN_TLS unsigned fault_pkeys;

static KERN_TLS unsigned long seen_seq;
static KERN_TLS unsigned ticks, budget_ticks;
static KERN_TLS int users;
static KERN_TLS void *altstack;

static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};

/* Async-signal-safe formatting: appends s, or v in hex or decimal. */
static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
        while (*s && at + 1 < cap)
                buf[at++] = *s++;
        buf[at] = 0;
        return at;
}

static size_t put_hex(char *buf, size_t at, size_t cap, uintptr_t v)
{
        char tmp[2 + 2 * sizeof v + 1];
        int n = 0;
        tmp[n++] = '0';
        tmp[n++] = 'x';
        int shift = (int)(8 * sizeof v) - 4;
        while (shift > 0 && !((v >> shift) & 0xf))
                shift -= 4;
        for (; shift >= 0; shift -= 4)
                tmp[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
        tmp[n] = 0;
        return put_str(buf, at, cap, tmp);
}

static size_t put_dec(char *buf, size_t at, size_t cap, unsigned v)
{
        char tmp[3 * sizeof v + 1];
        int n = (int)sizeof tmp - 1;
        tmp[n] = 0;
        do
                tmp[--n] = (char)('0' + v % 10);
        while (v /= 10);
        return put_str(buf, at, cap, tmp + n);
}

/* Full rights to this thread's arenas, for kernel code reached from a
 * signal handler: handlers run with the default PKRU, which denies every key
 * but 0, and siglongjmp does not restore it. Returns the rights it replaced,
 * two bits a key (the PKRU layout), for fault_rights_restore(). */
unsigned long fault_rights_open(void)
{
        unsigned long saved = 0;
#if defined(__linux__) && defined(PKEY_DISABLE_WRITE)
        for (unsigned keys = fault_pkeys; keys; keys &= keys - 1) {
                int key = __builtin_ctz(keys);
                saved |= (unsigned long)(pkey_get(key) & 3) << (2 * key);
                pkey_set(key, 0);
        }
#endif
        return saved;
}

void fault_rights_restore(unsigned long saved)
{
#if defined(__linux__) && defined(PKEY_DISABLE_WRITE)
        for (unsigned keys = fault_pkeys; keys; keys &= keys - 1) {
                int key = __builtin_ctz(keys);
                pkey_set(key, (unsigned)(saved >> (2 * key)) & 3);
        }
#else
        (void)saved;
#endif
}

static const char *signal_name(int sig)
{
        switch (sig) {
        case SIGSEGV:
                return "SIGSEGV";
        case SIGBUS:
                return "SIGBUS";
        case SIGFPE:
                return "SIGFPE";
        case SIGILL:
                return "SIGILL";
        default:
                return "signal";
        }
}

/* The faulting instruction, from the signal's machine context; 0 unknown. */
static uintptr_t fault_pc(const void *ucp)
{
#if defined(__linux__) && defined(__x86_64__)
        return (uintptr_t)((const ucontext_t *)ucp)->uc_mcontext.gregs[REG_RIP];
#elif defined(__linux__) && defined(__aarch64__)
        return (uintptr_t)((const ucontext_t *)ucp)->uc_mcontext.pc;
#else
        (void)ucp;
        return 0;
#endif
}

/* Whether stderr is the journal ($JOURNAL_STREAM names its device and
 * inode): the fatal line carries the "<2>" priority prefix for journald only,
 * as the supervisor's lines do. Known before any fault: the handler cannot
 * call getenv. */
static int fault_to_journal;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
        char *m = fault_last.msg;
        size_t cap = sizeof fault_last.msg, at = 0;
        if (!fault_in_dispatch) {
                char line[128];
                size_t n = put_str(line, 0, sizeof line, fault_to_journal ? "<2>" : "");
                n = put_str(line, n, sizeof line, "vkd: fatal ");
                n = put_str(line, n, sizeof line, signal_name(sig));
                n = put_str(line, n, sizeof line, " in kernel code at ");
                n = put_hex(line, n, sizeof line, (uintptr_t)si->si_addr);
                n = put_str(line, n, sizeof line, "\n");
                if (write(2, line, n) < 0) {
                        /* nothing more to do */
                }
                /* Returning re-runs the faulting instruction, which dies by the
                 * default action (a core) where it faulted; a signal that was
                 * sent (raise, kill: si_code <= 0) has no instruction to re-run
                 * and is sent again. */
                signal(sig, SIG_DFL);
                if (si->si_code <= 0)
                        raise(sig);
                return;
        }
        fault_in_dispatch = 0;
        fault_last.code = EFAULT;
        fault_last.corrupt = 0;
        fault_last.addr = (uintptr_t)si->si_addr;
        fault_last.pc = fault_pc(uc);
        at = put_str(m, at, cap, signal_name(sig));
        at = put_str(m, at, cap, " at ");
        at = put_hex(m, at, cap, (uintptr_t)si->si_addr);
        at = put_str(m, at, cap, " in thread ");
        put_hex(m, at, cap, (uintptr_t)fault_thread);
        fault_rights_open();
        siglongjmp(fault_jmp, 1);
}

static void on_tick(int sig, siginfo_t *si, void *uc)
{
        if (!fault_in_dispatch || !budget_ticks)
                return;
        if (fault_dispatch_seq != seen_seq) {
                seen_seq = fault_dispatch_seq;
                ticks = 1;
                return;
        }
        if (++ticks <= budget_ticks)
                return;
        fault_in_dispatch = 0;
        fault_last.code = ETIME;
        fault_last.corrupt = 0;
        fault_last.addr = 0;
        fault_last.pc = fault_pc(uc);
        char *m = fault_last.msg;
        size_t cap = sizeof fault_last.msg;
        size_t at = put_str(m, 0, cap, "CPU budget of ");
        at = put_dec(m, at, cap, budget_ticks * FAULT_TICK_MS);
        at = put_str(m, at, cap, " ms exceeded in thread ");
        put_hex(m, at, cap, (uintptr_t)fault_thread);
        fault_rights_open();
        siglongjmp(fault_jmp, 1);
}

static int stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        return e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
               st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

int fault_init(struct vk_kernel *k)
{
        unsigned budget = k->cfg.cpu_budget_ms;
        if (users++)
                goto timer;
        fault_to_journal = stderr_is_journal();
        size_t alt = 64 * 1024;
        altstack = mmap(NULL, alt, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (altstack != MAP_FAILED) {
                stack_t ss = {.ss_sp = altstack, .ss_size = alt};
                sigaltstack(&ss, NULL);
        } else {
                altstack = NULL;
        }
        /* SA_NODEFER: the handler leaves by siglongjmp without restoring a
         * mask, so the signal must not stay blocked. */
        struct sigaction sa = {.sa_sigaction = on_fault,
                               .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER};
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++)
                sigaction(fault_signals[i], &sa, NULL);
        sa.sa_sigaction = on_tick;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
        sigaction(SIGPROF, &sa, NULL);
timer:
        if (budget == VK_CPU_BUDGET_OFF) {
                budget_ticks = 0;
                return 0;
        }
        budget_ticks = (budget ? budget : 500) / FAULT_TICK_MS;
        if (!budget_ticks)
                budget_ticks = 1;
        struct itimerval it = {.it_interval = {0, FAULT_TICK_MS * 1000},
                               .it_value = {0, FAULT_TICK_MS * 1000}};
        if (setitimer(ITIMER_PROF, &it, NULL) < 0)
                return -errno;
        return 0;
}

void fault_fini(struct vk_kernel *k)
{
        if (--users)
                return;
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_PROF, &off, NULL);
        for (size_t i = 0; i < sizeof fault_signals / sizeof fault_signals[0]; i++)
                signal(fault_signals[i], SIG_DFL);
        signal(SIGPROF, SIG_DFL);
        if (altstack) {
                stack_t ss = {.ss_flags = SS_DISABLE};
                sigaltstack(&ss, NULL);
                munmap(altstack, 64 * 1024);
                altstack = NULL;
        }
}

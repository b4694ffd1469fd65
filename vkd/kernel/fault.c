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
 * A runaway loop is ended only where it stands in module code: interrupted
 * inside the allocator or another library it may hold a lock that the
 * worker's next call would wait on forever. A tick that lands elsewhere
 * takes execute rights from the module's code, so the library call's return
 * into it faults, and that fault ends the dispatch (the rights come back
 * first). A loop that never returns to module code (a library call that
 * does not end) is ended wherever it is after FAULT_DEFER_MAX budgets. Where
 * modules are linked into the kernel's own object (the stand-alone hosts,
 * tests) their code cannot be told from the kernel's, and a tick anywhere
 * ends the dispatch as before. Module code runs in the worker's address
 * space; this guards against accidents, not against hostile native code
 * (docs/security.md).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__linux__) || defined(__FreeBSD__)
#include <link.h>
#define FAULT_HAVE_PHDR 1
#endif

#include "kern.h"

#define FAULT_TICK_MS 10
/* Budgets a dispatch may overrun while waiting to be ended in module code. */
#define FAULT_DEFER_MAX 8

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

/*
 * The executable segments of the objects that hold module code, where a
 * budget kill may land. Process-wide (code is the same for every thread's
 * kernel); entries are written before the count that publishes them, and
 * never removed (a module's code stays mapped while the worker runs, and a
 * stale range only makes a kill land sooner).
 */
#define FAULT_CODE_MAX 32
static struct {
        uintptr_t lo, hi;
} code_ranges[FAULT_CODE_MAX];
static atomic_uint code_count;
static uintptr_t kernel_lo, kernel_hi;
/* Execute rights taken from module code, in the dispatch of that number. */
static KERN_TLS int code_revoked;
static KERN_TLS unsigned long code_revoked_seq;

static int code_known(uintptr_t pc)
{
        unsigned n = atomic_load_explicit(&code_count, memory_order_acquire);
        for (unsigned i = 0; i < n; i++)
                if (pc >= code_ranges[i].lo && pc < code_ranges[i].hi)
                        return 1;
        return 0;
}

/* Whether a budget kill at pc leaves nothing of the worker's half done: pc
 * is in module code, or no module code is known (unknown pc, modules linked
 * into the kernel's object) and nothing better can be told. */
static int kill_safe_at(uintptr_t pc)
{
        return !pc || !atomic_load_explicit(&code_count, memory_order_relaxed) || code_known(pc);
}

/* Takes (0) or gives back (1) execute rights of every known module's code.
 * Async-signal-safe. */
static void code_exec(int on)
{
        unsigned n = atomic_load_explicit(&code_count, memory_order_acquire);
        for (unsigned i = 0; i < n; i++)
                mprotect((void *)code_ranges[i].lo, code_ranges[i].hi - code_ranges[i].lo,
                         on ? PROT_READ | PROT_EXEC : PROT_READ);
        code_revoked = !on;
}

#ifdef FAULT_HAVE_PHDR
struct code_find {
        uintptr_t pc, lo, hi;
};

/* The span of the executable segments of the object that holds want->pc. */
static int code_find_object(struct dl_phdr_info *info, size_t size, void *data)
{
        struct code_find *want = data;
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        int holds = 0;
        (void)size;
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
                        continue;
                uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
                holds |= want->pc >= a && want->pc < b;
                lo = a < lo ? a : lo;
                hi = b > hi ? b : hi;
        }
        if (!holds)
                return 0;
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        want->lo = lo & ~(page - 1);
        want->hi = (hi + page - 1) & ~(page - 1);
        return 1;
}
#endif

void vk_kernel_module_code(struct vk_kernel *k, const void *fn)
{
        (void)k;
#ifdef FAULT_HAVE_PHDR
        static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
        uintptr_t pc = (uintptr_t)fn;
        if (code_known(pc))
                return;
        pthread_mutex_lock(&lock);
        if (!kernel_hi) {
                struct code_find self = {.pc = (uintptr_t)vk_kernel_module_code};
                if (dl_iterate_phdr(code_find_object, &self)) {
                        kernel_lo = self.lo;
                        kernel_hi = self.hi;
                }
        }
        struct code_find want = {.pc = pc};
        unsigned n = atomic_load_explicit(&code_count, memory_order_relaxed);
        if (!(pc >= kernel_lo && pc < kernel_hi) && !code_known(pc) && n < FAULT_CODE_MAX &&
            dl_iterate_phdr(code_find_object, &want)) {
                code_ranges[n].lo = want.lo;
                code_ranges[n].hi = want.hi;
                atomic_store_explicit(&code_count, n + 1, memory_order_release);
        }
        pthread_mutex_unlock(&lock);
#else
        (void)fn;
#endif
}

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

/* Ends the dispatch that overran its CPU budget. */
static void budget_end(void *uc)
{
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

static void on_fault(int sig, siginfo_t *si, void *uc)
{
        char *m = fault_last.msg;
        size_t cap = sizeof fault_last.msg, at = 0;
        if (code_revoked && sig == SIGSEGV && code_known((uintptr_t)si->si_addr)) {
                /* Module code entered while its rights were taken (on_tick):
                 * past its budget, it ends here, holding no library's lock; a
                 * later dispatch just runs on. */
                int overrun = fault_in_dispatch && code_revoked_seq == fault_dispatch_seq;
                code_exec(1);
                if (!overrun)
                        return;
                budget_end(uc);
        }
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
        if (code_revoked)
                code_exec(1);
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
        (void)sig;
        (void)si;
        if (!fault_in_dispatch || !budget_ticks)
                return;
        if (fault_dispatch_seq != seen_seq) {
                seen_seq = fault_dispatch_seq;
                ticks = 1;
                return;
        }
        if (++ticks <= budget_ticks)
                return;
        if (!kill_safe_at(fault_pc(uc)) && ticks <= budget_ticks * (1 + FAULT_DEFER_MAX)) {
                if (!code_revoked) {
                        code_revoked_seq = fault_dispatch_seq;
                        code_exec(0);
                }
                return;
        }
        if (code_revoked)
                code_exec(1);
        budget_end(uc);
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

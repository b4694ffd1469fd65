/*
 * Check suite for fault containment and memory isolation (vkd/kernel/fault.c,
 * isolate.c, issue 3). Each case runs one kernel in its own forked test
 * process: a misbehaving virtual process (a NULL dereference, a division by
 * zero, an illegal instruction, a bus error, a write past its heap, a read of
 * another process's heap, a write to kernel memory, a loop that never yields,
 * heap exhaustion, a double free, a scribble over its own process header)
 * runs beside a well-behaved pair of processes that echo 64 KiB over a
 * socketpair, in every isolation mode. Each case asserts what reached the exit
 * hook (the error code, and a message naming the signal, the address and the
 * thread), what the stats counted, that the misbehaving process's descriptor
 * was closed, and that the pair finished with every byte right. Where a mode
 * does not contain a fault (privileged processes can read other heaps; only
 * unprivileged ones are kept from writing kernel memory) the case asserts that
 * it is indeed not contained, so the difference is documented and noticed if
 * it changes. vk_kernel_stop() must work from a signal handler that interrupts
 * a process. Last, a fault in kernel code (outside any dispatch) must stay
 * fatal: a child that faults there must die by that signal with a "fatal" line
 * on stderr. The suite runs as is under ASan and UBSan (VKD_SANITIZE): the
 * kernel's handlers replace the sanitizers' and every case checks that its
 * handler saw the fault.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"

#define CASE_TIMEOUT 30        /* seconds per case */
#define ECHO_BYTES (64 * 1024) /* what the well-behaved pair moves */
#define CHUNK 4096             /* the client's write and read size */
#define PRE_YIELDS 256         /* a misbehaving process runs this long first */
#define SPIN_MAX 1000000ul     /* bound of the heap hog's loop */
#define WAIT_MS 10000          /* bound of every wait-by-yielding loop */
#define MAX_EXITS 16

/* ------------------------------------------------------------------------
 * What the processes leave behind. Statics live in the program's own data,
 * outside every heap and the kernel arena, so processes may write them in
 * any mode. Each case runs in a fresh fork, so they start at zero.
 * ------------------------------------------------------------------------ */

struct exit_rec {
        uint64_t pid;
        int code;
        char msg[64];
};

static struct exit_rec exits[MAX_EXITS];
static unsigned nexits;

static uint64_t bad_pid;                      /* the misbehaving process */
static struct vk_thread *volatile bad_thread; /* its thread, as it saw itself */
static struct vk_proc *volatile bad_proc;     /* its heap */
static volatile int bad_finished;             /* it got past the faulting statement */
static volatile uintptr_t bad_addr;           /* the address it is about to touch */

static size_t client_received;   /* bytes echoed back to the client */
static size_t client_mismatches; /* bytes that came back wrong */

/* For the cross-process read. */
static char *volatile victim_addr;
static volatile int reader_done;
static char read_back[32];
static const char secret[32] = "the victim's secret, 31 bytes.";

/* Written through pointers the compiler cannot see through, so the faults
 * below are real instructions, not undefined behaviour it rewrites. */
#define INTENDED_UB __attribute__((no_sanitize("undefined"))) /* UBSan: no report */
static volatile int *volatile null_ptr;
static volatile int zero;
static volatile int sink;
static volatile unsigned long spin;
static volatile char *bus_page;

static uint64_t clock_ms(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A process waiting, by yielding, for another to do something: true while
 * less than WAIT_MS has passed since t0. Time, not a count of yields: a
 * protected process yields many times in one slice (test_slice_ends). */
static int waiting(uint64_t t0)
{
        return clock_ms(CLOCK_MONOTONIC) - t0 < WAIT_MS;
}

static void on_exit_hook(void *ctx, uint64_t pid, const struct vk_error *err)
{
        if (nexits < MAX_EXITS) {
                struct exit_rec *e = &exits[nexits++];
                e->pid = pid;
                e->code = err ? err->code : 0;
                if (err)
                        memcpy(e->msg, err->msg, sizeof e->msg);
        }
        if (pid == bad_pid)
                reader_done = 1; /* a victim waiting for the reader may end now */
}

static const struct exit_rec *exit_of(uint64_t pid)
{
        for (unsigned i = 0; i < nexits; i++)
                if (exits[i].pid == pid)
                        return &exits[i];
        ck_abort_msg("process %" PRIu64 " never reached the exit hook", pid);
        return NULL;
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;
        ck_assert_ptr_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* ------------------------------------------------------------------------
 * The well-behaved pair: an echo process and a client process whose writer
 * thread sends ECHO_BYTES of a pattern while its main thread reads the echo
 * back and checks every byte.
 * ------------------------------------------------------------------------ */

static void pattern(char *buf, size_t off, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                uint64_t x = (off + i) * 0x9e3779b97f4a7c15ull;
                buf[i] = (char)(x >> 56);
        }
}

static void echo_proc(struct vk_thread *that)
{
        struct {
                ssize_t n;
        } * self;
        vk_begin();
        vk_forward(self->n, 0);
        vk_end();
}

static void client_writer(struct vk_thread *that)
{
        struct {
                size_t off;
                char buf[CHUNK];
        } * self;
        vk_begin();
        for (self->off = 0; self->off < ECHO_BYTES; self->off += CHUNK) {
                pattern(self->buf, self->off, CHUNK);
                vk_write(self->buf, CHUNK);
        }
        vk_close_write();
        vk_end();
}

static void client_proc(struct vk_thread *that)
{
        struct {
                struct vk_thread *writer;
                size_t got;
                ssize_t n;
                char buf[CHUNK];
                char want[CHUNK];
        } * self;
        vk_begin();
        self->writer = vk_spawn(client_writer, NULL, 0);
        if (!self->writer)
                vk_raise(ENOMEM, "no room for the writer");
        for (;;) {
                vk_readsome(self->n, self->buf, sizeof self->buf);
                if (self->n == 0)
                        break;
                pattern(self->want, self->got, (size_t)self->n);
                for (ssize_t i = 0; i < self->n; i++)
                        client_mismatches += self->buf[i] != self->want[i];
                self->got += (size_t)self->n;
        }
        vk_join(self->writer);
        client_received = self->got;
        vk_end();
}

/* ------------------------------------------------------------------------
 * Misbehaving processes. Each first yields PRE_YIELDS times (a few dispatches,
 * while the pair's bytes are in flight), then misbehaves once.
 * ------------------------------------------------------------------------ */

#define BAD_BEGIN()                                        \
        vk_begin();                                        \
        bad_thread = that;                                 \
        bad_proc = that->proc;                             \
        for (self->i = 0; self->i < PRE_YIELDS; self->i++) \
        vk_yield()

INTENDED_UB static void null_deref(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        *null_ptr = 1;
        bad_finished = 1;
        vk_end();
}

INTENDED_UB static void div_zero(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        /* 1 / zero would be a branch-free select in gcc's output, no idiv. */
        sink = 1000 / zero;
        bad_finished = 1;
        vk_end();
}

static void illegal(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
#if defined(__x86_64__) || defined(__i386__)
        __asm__ volatile("ud2");
#else
        __builtin_trap();
#endif
        bad_finished = 1;
        vk_end();
}

static void bus_error(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        bad_addr = (uintptr_t)bus_page;
        sink = bus_page[0]; /* a page of an empty file: SIGBUS */
        bad_finished = 1;
        vk_end();
}

static void heap_overrun(struct vk_thread *that)
{
        struct {
                unsigned long i;
                char buf[64];
        } * self;
        BAD_BEGIN();
        /* From the frame to one whole heap size past it: past the heap's end. */
        memset(self->buf, 0x5a, that->proc->size);
        bad_finished = 1;
        vk_end();
}

/* Which kernel memory kernel_write writes: its stats in the kernel struct
 * (0), or the poller's state, allocated from the kernel zone (1). */
static int write_zone;

static void kernel_write(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        {
                struct vk_kernel *k = that->proc->kernel;
                volatile char *x =
                        write_zone ? (volatile char *)k->pl : (volatile char *)&k->stats.dispatches;
                bad_addr = (uintptr_t)x;
                *x = *x; /* harmless where it is allowed */
        }
        bad_finished = 1;
        vk_end();
}

static void runaway(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        for (;;)
                spin++;
        vk_end();
}

static void heap_hog(struct vk_thread *that)
{
        struct {
                unsigned long i;
                void *block;
        } * self;
        BAD_BEGIN();
        for (self->i = 0; self->i < SPIN_MAX; self->i++)
                vk_alloc_or_raise(self->block, 1024);
        bad_finished = 1;
        vk_end();
}

static void double_free(struct vk_thread *that)
{
        struct {
                unsigned long i;
                void *block;
        } * self;
        BAD_BEGIN();
        self->block = vk_malloc(that->proc, 64);
        vk_malloc(that->proc, 64); /* keeps the first block from popping */
        vk_free(that->proc, self->block);
        vk_free(that->proc, self->block);
        bad_finished = 1;
        vk_end();
}

/* Scribbles over its own process header (pid, counters, thread lists), then
 * faults: the kernel must not believe what the header says. */
INTENDED_UB static void scribbler(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        memset(that->proc, 0xff, sizeof *that->proc);
        *null_ptr = 1;
        bad_finished = 1;
        vk_end();
}

/* Publishes the address of a secret in its frame, then yields until the
 * reader is done (or gone). */
static void victim(struct vk_thread *that)
{
        struct {
                unsigned long i;
                char secret[sizeof secret];
        } * self;
        vk_begin();
        memcpy(self->secret, secret, sizeof secret);
        victim_addr = self->secret;
        for (self->i = clock_ms(CLOCK_MONOTONIC); !reader_done && waiting(self->i);)
                vk_yield();
        vk_end();
}

/* Publishes the address of a secret in its frame and ends at once. */
static void dead_victim(struct vk_thread *that)
{
        struct {
                char secret[sizeof secret];
        } * self;
        vk_begin();
        memcpy(self->secret, secret, sizeof secret);
        victim_addr = self->secret;
        vk_end();
}

/* Reads the victim's secret by address while the victim is not running. */
static void reader(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        for (self->i = clock_ms(CLOCK_MONOTONIC); !victim_addr && waiting(self->i);)
                vk_yield();
        bad_addr = (uintptr_t)victim_addr;
        for (size_t i = 0; i < sizeof read_back; i++)
                read_back[i] = ((volatile const char *)victim_addr)[i];
        bad_finished = 1;
        reader_done = 1;
        vk_end();
}

/* For the hibernation case: the sleeper hibernates after HIBERNATE_MS idle
 * and sleeps SLEEPER_MS in all, which bounds how long the prober may look for
 * it in the store. */
#define HIBERNATE_MS 20
#define SLEEPER_MS 1000
static unsigned run_hibernate_ms;         /* the kernel's, for run(); 0: its default */
static char sleeper_after[sizeof secret]; /* its secret once awake again */
static volatile uint64_t sleeper_pid;
static long hibernated_resident = -1; /* heap pages resident while hibernating */

static void sleeper(struct vk_thread *that)
{
        struct {
                char secret[sizeof secret];
        } * self;
        vk_begin();
        memcpy(self->secret, secret, sizeof secret);
        sleeper_pid = that->proc->pid;
        vk_sleep(SLEEPER_MS);
        memcpy(sleeper_after, self->secret, sizeof secret);
        vk_end();
}

static int sleeper_saved(const struct vk_thread *that)
{
        return sleeper_pid && that->proc->kernel->procs[sleeper_pid & 0xffffff].saved;
}

static int store_maps = -1; /* mappings of the hibernation store: none */

/* Counts the hibernating sleeper's resident heap pages, then the mappings of
 * the hibernation store, where its saved front is: a file mapped nowhere,
 * so no pointer of any process reaches it. */
static void probe_store(struct vk_thread *that)
{
        struct vk_kernel *k = that->proc->kernel;
        const struct kproc *kp = &k->procs[sleeper_pid & 0xffffff];
        unsigned char vec[64];
        size_t pages = k->pool.slot_size / (size_t)sysconf(_SC_PAGESIZE);
        ck_assert_uint_le(pages, sizeof vec);
        ck_assert_int_eq(mincore(kp->p, k->pool.slot_size, vec), 0);
        hibernated_resident = 0;
        for (size_t i = 0; i < pages; i++)
                hibernated_resident += vec[i] & 1;
        char line[512];
        FILE *f = fopen("/proc/self/maps", "re");
        ck_assert_ptr_nonnull(f);
        store_maps = 0;
        while (fgets(line, sizeof line, f))
                store_maps += strstr(line, "vkd-hibernation-store") != NULL;
        fclose(f);
}

/* Waits for the sleeper to hibernate, then probes it. */
static void store_reader(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        BAD_BEGIN();
        for (self->i = 0; !sleeper_saved(that) && self->i < SLEEPER_MS; self->i++)
                vk_sleep(1);
        if (!sleeper_saved(that))
                vk_raise(ESRCH, "the sleeper never hibernated");
        probe_store(that);
        bad_finished = 1;
        vk_end();
}

/* For the staged-mail write: a receiver that never reads its mail, so what
 * is sent to it waits in the kernel's mail zone. */
static volatile uint64_t mail_to;

static void mail_victim(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        vk_begin();
        mail_to = that->proc->pid;
        for (self->i = clock_ms(CLOCK_MONOTONIC); !reader_done && waiting(self->i);)
                vk_yield();
        vk_end();
}

static uint32_t staged_len(const struct vk_thread *that)
{
        return mail_to ? that->proc->kernel->procs[mail_to & 0xffffff].mail_len : 0;
}

/* Writes the last byte of what waits for the victim. */
static void scribble(const struct vk_thread *that)
{
        const struct kproc *kp = &that->proc->kernel->procs[mail_to & 0xffffff];
        volatile char *m = kp->mail + kp->mail_len - 1;
        bad_addr = (uintptr_t)m;
        *m = *m; /* harmless where it is allowed */
}

/* Sends the victim `flood` messages of FLOOD_MSG bytes (or one short one),
 * then writes over the last where the kernel keeps them. A flood of 2.5 MiB
 * makes the mail zone commit more than its first step. */
#define FLOOD_MSG 8192
#define FLOOD_N (KZONE_COMMIT * 5 / 4 / FLOOD_MSG)
static unsigned flood;

static void mail_scribbler(struct vk_thread *that)
{
        struct {
                unsigned long i;
                char buf[FLOOD_MSG];
        } * self;
        BAD_BEGIN();
        for (self->i = clock_ms(CLOCK_MONOTONIC); !mail_to && waiting(self->i);)
                vk_yield();
        memset(self->buf, 'm', sizeof self->buf);
        if (!flood)
                vk_send(mail_to, "hello", 5);
        for (self->i = 0; self->i < flood; self->i++)
                vk_send(mail_to, self->buf, FLOOD_MSG);
        for (self->i = clock_ms(CLOCK_MONOTONIC);
             staged_len(that) < (flood ? flood * FLOOD_MSG : 5) && waiting(self->i);)
                vk_yield();
        if (staged_len(that) < (flood ? flood * FLOOD_MSG : 5))
                vk_raise(ESRCH, "the messages were never staged");
        scribble(that);
        bad_finished = 1;
        reader_done = 1;
        vk_end();
}

/* ------------------------------------------------------------------------
 * The harness.
 * ------------------------------------------------------------------------ */

struct outcome {
        const struct exit_rec *bad; /* how the misbehaving process ended */
        struct vk_kernel_stats st;
        int bad_peer_eof; /* its socket's peer saw the end of the stream */
        uint64_t run_ms;  /* wall time of vk_kernel_run */
        uint64_t cpu_ms;  /* CPU time of the test process during it */
};

static void socketpair_nb(int sv[2])
{
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static int64_t spawn_on(struct vk_kernel *k, vk_thread_fn *fn, int fd)
{
        int64_t pid = vk_kernel_spawn(k, fn, NULL, 0, fd, fd);
        ck_assert_int_gt(pid, 0);
        return pid;
}

/*
 * Runs the pair, then (optionally) a victim, then the misbehaving process
 * `bad` on a socketpair of its own, in one kernel of the given mode, until
 * they all end. Asserts what must hold whatever `bad` does: the pair ended
 * cleanly with every byte right, and nothing is left running or open.
 */
static void run(enum vk_isolation mode, unsigned budget_ms, vk_thread_fn *victim_fn,
                vk_thread_fn *bad, struct outcome *out)
{
        struct vk_kernel_config cfg = {
                .isolation = mode, .cpu_budget_ms = budget_ms, .hibernate_ms = run_hibernate_ms};
        struct vk_kernel *k;
        int pair[2], own[2];

        memset(out, 0, sizeof *out);
        int fds_before = count_fds();
        ck_assert_int_eq(vk_kernel_new(&cfg, &k), 0);
        vk_kernel_on_exit(k, on_exit_hook, NULL);
        socketpair_nb(pair);
        socketpair_nb(own);
        int64_t echo_pid = spawn_on(k, echo_proc, pair[0]);
        int64_t client_pid = spawn_on(k, client_proc, pair[1]);
        int64_t victim_pid = victim_fn ? spawn_on(k, victim_fn, -1) : 0;
        bad_pid = (uint64_t)spawn_on(k, bad, own[0]);

        uint64_t t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
        ck_assert_int_eq(vk_kernel_run(k), 0);
        out->run_ms = clock_ms(CLOCK_MONOTONIC) - t0;
        out->cpu_ms = clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
        vk_kernel_stats(k, &out->st);

        /* The pair did not notice. */
        ck_assert_int_eq(exit_of((uint64_t)echo_pid)->code, 0);
        ck_assert_int_eq(exit_of((uint64_t)client_pid)->code, 0);
        ck_assert_uint_eq(client_received, ECHO_BYTES);
        ck_assert_uint_eq(client_mismatches, 0);
        if (victim_pid)
                ck_assert_int_eq(exit_of((uint64_t)victim_pid)->code, 0);
        out->bad = exit_of(bad_pid);
        ck_assert_uint_eq(out->st.active, 0);
        ck_assert_uint_eq(out->st.exited, out->st.spawned);
        /* Only the pair moved bytes: each read ECHO_BYTES and wrote them. */
        ck_assert_uint_eq(out->st.bytes_in, 2 * ECHO_BYTES);
        ck_assert_uint_eq(out->st.bytes_out, 2 * ECHO_BYTES);

        /* The misbehaving process's descriptor was closed with it. */
        char c;
        out->bad_peer_eof = read(own[1], &c, 1) == 0;
        close(own[1]);
        vk_kernel_free(k);
        ck_assert_int_eq(count_fds(), fds_before);
}

/* A contained hardware fault: EFAULT, a message naming the signal, the
 * address when the case knows it and the thread, counted once, and the
 * process never went past the faulting statement. */
static void assert_fault(const struct outcome *o, const char *sig, int check_addr)
{
        char want[64];
        ck_assert_int_eq(o->bad->code, EFAULT);
        ck_assert_msg(!bad_finished, "the process went on after its fault");
        snprintf(want, sizeof want, "%s at 0x", sig);
        ck_assert_msg(!strncmp(o->bad->msg, want, strlen(want)), "message '%s', want '%s...'",
                      o->bad->msg, want);
        if (check_addr) {
                snprintf(want, sizeof want, "%s at 0x%" PRIxPTR " ", sig, bad_addr);
                ck_assert_msg(!strncmp(o->bad->msg, want, strlen(want)),
                              "message '%s', want '%s...'", o->bad->msg, want);
        }
        snprintf(want, sizeof want, " in thread 0x%" PRIxPTR, (uintptr_t)bad_thread);
        ck_assert_msg(strstr(o->bad->msg, want), "message '%s' does not name thread %p",
                      o->bad->msg, (void *)bad_thread);
        ck_assert_uint_eq(o->st.faults, 1);
        ck_assert_uint_eq(o->st.cpu_kills, 0);
        ck_assert_uint_eq(o->st.failed, 1);
        ck_assert_msg(o->bad_peer_eof, "the faulting process's socket was left open");
}

/* A process that misbehaved but was allowed to: it ended cleanly. */
static void assert_not_contained(const struct outcome *o)
{
        ck_assert_int_eq(o->bad->code, 0);
        ck_assert_msg(bad_finished, "the process did not get past the statement");
        ck_assert_uint_eq(o->st.faults, 0);
        ck_assert_uint_eq(o->st.failed, 0);
        ck_assert_msg(o->bad_peer_eof, "the process's socket was left open");
}

/* ------------------------------------------------------------------------
 * Cases. Loop tests run once per isolation mode (_i).
 * ------------------------------------------------------------------------ */

START_TEST(test_null_deref)
{
        struct outcome o;
        bad_addr = 0;
        run((enum vk_isolation)_i, 0, NULL, null_deref, &o);
        assert_fault(&o, "SIGSEGV", 1);
}
END_TEST

START_TEST(test_div_zero)
{
        struct outcome o;
        run((enum vk_isolation)_i, 0, NULL, div_zero, &o);
        assert_fault(&o, "SIGFPE", 0); /* the address is the instruction's */
}
END_TEST

START_TEST(test_illegal_instruction)
{
        struct outcome o;
        run((enum vk_isolation)_i, 0, NULL, illegal, &o);
        assert_fault(&o, "SIGILL", 0);
}
END_TEST

START_TEST(test_bus_error)
{
        struct outcome o;
        int fd = memfd_create("check_fault", MFD_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        bus_page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0); /* the file is empty */
        ck_assert_ptr_ne((void *)bus_page, MAP_FAILED);
        close(fd);
        run((enum vk_isolation)_i, 0, NULL, bus_error, &o);
        assert_fault(&o, "SIGBUS", 1);
}
END_TEST

/* A write that runs off the end of the heap faults at the end of the heap,
 * whoever (if anyone) owns the memory after it. */
START_TEST(test_heap_overrun)
{
        struct outcome o;
        run((enum vk_isolation)_i, 0, NULL, heap_overrun, &o);
        assert_fault(&o, "SIGSEGV", 0);
        uintptr_t addr = strtoull(o.bad->msg + strlen("SIGSEGV at "), NULL, 16);
        uintptr_t end = (uintptr_t)bad_proc + 64 * 1024; /* the default heap size */
        ck_assert_msg(addr >= end && addr < end + 64 * 1024,
                      "fault at %#" PRIxPTR ", the heap ends at %#" PRIxPTR, addr, end);
}
END_TEST

/* Runs the reader against a victim's secret: isolated and unprivileged, the
 * read faults; privileged, nothing is protected and it succeeds. */
static void check_read_secret(int mode, vk_thread_fn *victim_fn)
{
        struct outcome o;
        run((enum vk_isolation)mode, 0, victim_fn, reader, &o);
        if (mode == VK_ISOLATION_PRIVILEGED) {
                assert_not_contained(&o);
                ck_assert_mem_eq(read_back, secret, sizeof secret);
                return;
        }
        assert_fault(&o, "SIGSEGV", 1);
        ck_assert_msg(memcmp(read_back, secret, sizeof secret), "the secret leaked");
}

/* Another process's heap is PROT_NONE while it does not run. */
START_TEST(test_read_other_heap)
{
        check_read_secret(_i, victim);
}
END_TEST

/* The heap of a process that ended (the last one open) is closed before
 * another process runs: its last bytes fault like a live one's. */
START_TEST(test_read_ended_heap)
{
        check_read_secret(_i, dead_victim);
}
END_TEST

/* For the reuse case: a connection that took a secret from its peer (into
 * its input ring), echoed it (output ring) and kept a copy in its frame; and
 * the next process given the same slot, which looks for it everywhere in its
 * heap. */
static char *volatile holder_heap, *volatile finder_heap;
static volatile int finder_found;

static void holder(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[sizeof secret + 1];
        } * self;
        vk_begin();
        holder_heap = (char *)that->proc;
        vk_readline(self->n, self->line, sizeof self->line);
        vk_write(self->line, (size_t)self->n);
        vk_flush();
        vk_end();
}

static void finder(struct vk_thread *that)
{
        struct {
                char unused;
        } * self;
        vk_begin();
        finder_heap = (char *)that->proc;
        for (uint32_t at = 0; at + sizeof secret - 1 <= that->proc->size; at++)
                if (!memcmp(finder_heap + at, secret, sizeof secret - 1)) {
                        finder_found = 1;
                        break;
                }
        vk_end();
}

/* A heap slot's next occupant finds none of its last one's bytes, in the
 * isolated modes. Privileged heaps are left as they were: there the finder
 * sees the secret, which shows it would have found it. */
START_TEST(test_reused_heap_wiped)
{
        struct vk_kernel_config cfg = {.isolation = (enum vk_isolation)_i};
        struct vk_kernel *k;
        int sv[2];
        char back[sizeof secret];

        holder_heap = finder_heap = NULL;
        finder_found = 0;
        ck_assert_int_eq(vk_kernel_new(&cfg, &k), 0);
        vk_kernel_on_exit(k, on_exit_hook, NULL);
        socketpair_nb(sv);
        ck_assert_int_eq(write(sv[1], secret, sizeof secret - 1), (ssize_t)sizeof secret - 1);
        ck_assert_int_eq(write(sv[1], "\n", 1), 1);
        int64_t hpid = spawn_on(k, holder, sv[0]);
        ck_assert_int_eq(vk_kernel_run(k), 0);
        ck_assert_int_eq(exit_of((uint64_t)hpid)->code, 0);
        ck_assert_int_eq(read(sv[1], back, sizeof back), (ssize_t)sizeof secret);
        ck_assert_mem_eq(back, secret, sizeof secret - 1);
        close(sv[1]);

        int64_t fpid = vk_kernel_spawn(k, finder, NULL, 0, -1, -1);
        ck_assert_int_gt(fpid, 0);
        ck_assert_int_eq(vk_kernel_run(k), 0);
        ck_assert_int_eq(exit_of((uint64_t)fpid)->code, 0);
        ck_assert_ptr_eq(finder_heap, holder_heap); /* the same slot */
        if (_i == VK_ISOLATION_PRIVILEGED)
                ck_assert_msg(finder_found, "privileged: the secret was not left behind");
        else
                ck_assert_msg(!finder_found, "the last occupant's secret is still in the heap");
        vk_kernel_free(k);
}
END_TEST

/* Kernel memory is read-only only while an unprivileged process runs: there
 * a write to it faults; the other modes leave it writable and it succeeds. */
static void assert_kernel_write(const struct outcome *o, int mode)
{
        if (mode == VK_ISOLATION_UNPRIVILEGED)
                assert_fault(o, "SIGSEGV", 1);
        else
                assert_not_contained(o);
}

/* A write to the kernel struct, then (the second round of modes) to the
 * poller's state, which lives in the kernel zone like the listeners. */
START_TEST(test_kernel_write)
{
        struct outcome o;
        write_zone = _i > VK_ISOLATION_PRIVILEGED;
        _i %= VK_ISOLATION_PRIVILEGED + 1;
        run((enum vk_isolation)_i, 0, NULL, kernel_write, &o);
        assert_kernel_write(&o, _i);
}
END_TEST

/* Unprivileged: messages waiting for their receiver are kernel memory, as
 * read-only as the rest of it; elsewhere the write succeeds. */
START_TEST(test_mail_write)
{
        struct outcome o;
        flood = _i > VK_ISOLATION_PRIVILEGED ? FLOOD_N : 0;
        _i %= VK_ISOLATION_PRIVILEGED + 1;
        run((enum vk_isolation)_i, 0, mail_victim, mail_scribbler, &o);
        ck_assert_msg(o.bad->code != ESRCH, "%s", o.bad->msg);
        assert_kernel_write(&o, _i);
}
END_TEST

/* A hibernating process's heap pages are given back and its used front waits
 * in the hibernation store, which no process can read (not even a privileged
 * one: it is a file mapped nowhere); the process wakes with its state intact. */
START_TEST(test_hibernated_heap)
{
        struct outcome o;
        run_hibernate_ms = HIBERNATE_MS;
        run((enum vk_isolation)_i, 0, sleeper, store_reader, &o);
        ck_assert_msg(o.bad->code != ESRCH, "%s", o.bad->msg);
        ck_assert_int_eq(bad_finished, 1);
        ck_assert_int_eq(hibernated_resident, 0);
        ck_assert_int_eq(store_maps, 0);
        ck_assert_mem_eq(sleeper_after, secret, sizeof secret);
}
END_TEST

/* The same write with the arena on 4 KiB pages (VKD_HUGE_PAGES=0): the
 * huge-page arena must not be what makes the protection work. */
START_TEST(test_kernel_write_small_pages)
{
        struct outcome o;
        ck_assert_int_eq(setenv("VKD_HUGE_PAGES", "0", 1), 0);
        run(VK_ISOLATION_UNPRIVILEGED, 0, NULL, kernel_write, &o);
        assert_fault(&o, "SIGSEGV", 1);
}
END_TEST

/* Kilobytes of AnonHugePages in the mapping of /proc/self/smaps that holds
 * addr, or -1 if none does. */
static long smaps_huge_kb(const void *addr)
{
        char line[512];
        unsigned long lo, hi, a = (unsigned long)(uintptr_t)addr;
        long kb = -1;
        int in = 0;
        FILE *f = fopen("/proc/self/smaps", "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof line, f)) {
                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
                        in = lo <= a && a < hi;
                else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
                        break;
        }
        fclose(f);
        return kb;
}

/* An unprivileged kernel without protection keys puts its arena on
 * transparent huge pages where the system has them (one page-table entry to
 * flip per 2 MiB); the others, and VKD_HUGE_PAGES=0, keep 4 KiB pages. */
START_TEST(test_arena_huge_pages)
{
        struct vk_kernel_config cfg = {.isolation = (enum vk_isolation)_i};
        struct vk_kernel *k;
        if (_i == VK_ISOLATION_PRIVILEGED + 1) {
                ck_assert_int_eq(setenv("VKD_HUGE_PAGES", "0", 1), 0);
                cfg.isolation = VK_ISOLATION_UNPRIVILEGED;
        }
        ck_assert_int_eq(vk_kernel_new(&cfg, &k), 0);
        const char *how = vk_kernel_protection(k);
        long kb = smaps_huge_kb(k->arena);
        ck_assert_msg(kb >= 0, "no mapping holds the arena %p", (void *)k->arena);
        if (!strcmp(how, "pkeys"))
                ; /* no flips to make cheap: either way is right */
        else if (_i == VK_ISOLATION_UNPRIVILEGED && isolate_thp_available()) {
                ck_assert_str_eq(how, "mprotect-huge");
                ck_assert_uint_eq((uintptr_t)k->arena % (2u << 20), 0);
                ck_assert_msg(kb >= 2048, "arena: AnonHugePages %ld kB", kb);
        } else {
                ck_assert_str_eq(how, "mprotect");
        }
        vk_kernel_free(k);
}
END_TEST

/* Waits PRE_YIELDS * 16 times for a deadline already due: each wait goes
 * back to the kernel, so each is a dispatch of its own, whatever the slice. */
static void due_waiter(struct vk_thread *that)
{
        struct {
                unsigned long i;
        } * self;
        vk_begin();
        for (self->i = 0; self->i < PRE_YIELDS * 16; self->i++)
                vk_sleep(0);
        vk_end();
}

/* Protection changes are paid per process switch, not per dispatch: a process
 * dispatched again with no other in between keeps its heap open (no system
 * call), two taking turns pay one close and one open a switch, and a
 * privileged one never pays. */
START_TEST(test_protection_per_switch)
{
        struct vk_kernel_config cfg = {.isolation = (enum vk_isolation)_i};
        struct vk_kernel_stats one, two;
        struct vk_kernel *k;
        for (int n = 1; n <= 2; n++) {
                ck_assert_int_eq(vk_kernel_new(&cfg, &k), 0);
                for (int i = 0; i < n; i++)
                        ck_assert_int_gt(vk_kernel_spawn(k, due_waiter, NULL, 0, -1, -1), 0);
                ck_assert_int_eq(vk_kernel_run(k), 0);
                vk_kernel_stats(k, n == 1 ? &one : &two);
                vk_kernel_free(k);
        }
        ck_assert_uint_ge(one.dispatches, PRE_YIELDS * 16); /* one a wait */
        ck_assert_uint_ge(two.dispatches, 2 * one.dispatches - 2);
        uint64_t flips = _i == VK_ISOLATION_UNPRIVILEGED ? 2 * one.dispatches : 0;
        switch (_i) {
        case VK_ISOLATION_PRIVILEGED:
                ck_assert_uint_eq(one.protects, 0);
                ck_assert_uint_eq(two.protects, 0);
                break;
        default:
                /* sealed after its spawn, opened by its first dispatch, and
                 * nothing more but the arena's flips if unprivileged */
                ck_assert_uint_le(one.protects, 2 + flips);
                ck_assert_uint_ge(two.protects, 2 * (two.dispatches - 2));
        }
}
END_TEST

/* A loop that never yields ends with ETIME once its dispatch has used the CPU
 * budget (100 ms, counted in 10 ms ticks), and the message names the budget. */
START_TEST(test_runaway_loop)
{
        struct outcome o;
        char want[64];
        run((enum vk_isolation)_i, 100, NULL, runaway, &o);
        ck_assert_int_eq(o.bad->code, ETIME);
        ck_assert_msg(strstr(o.bad->msg, "CPU budget of 100 ms"), "message '%s'", o.bad->msg);
        snprintf(want, sizeof want, " in thread 0x%" PRIxPTR, (uintptr_t)bad_thread);
        ck_assert_msg(strstr(o.bad->msg, want), "message '%s'", o.bad->msg);
        ck_assert_uint_eq(o.st.cpu_kills, 1);
        ck_assert_uint_eq(o.st.faults, 0);
        ck_assert_uint_eq(o.st.failed, 1);
        ck_assert_msg(o.bad_peer_eof, "the looping process's socket was left open");
        /* About the budget: the kernel samples CPU time for ITIMER_PROF at
         * its own ticks (on a busy VM, with steal time, that runs ahead of the
         * exact clock by up to a fifth here), so allow half to ten times. */
        ck_assert_msg(o.cpu_ms >= 50 && o.cpu_ms < 1000, "%" PRIu64 " ms of CPU", o.cpu_ms);
        ck_assert_msg(o.run_ms < 5000, "%" PRIu64 " ms to end the loop", o.run_ms);
}
END_TEST

/* Heap exhaustion is an error of the process (ENOMEM), not a fault. */
START_TEST(test_heap_exhaustion)
{
        struct outcome o;
        run((enum vk_isolation)_i, 0, NULL, heap_hog, &o);
        ck_assert_int_eq(o.bad->code, ENOMEM);
        ck_assert_msg(strstr(o.bad->msg, "heap full"), "message '%s'", o.bad->msg);
        ck_assert_uint_eq(o.st.nomem, 1);
        ck_assert(!bad_finished);
        ck_assert_uint_eq(o.st.faults, 0);
        ck_assert_uint_eq(o.st.cpu_kills, 0);
        ck_assert_uint_eq(o.st.failed, 1);
        ck_assert(o.bad_peer_eof);
}
END_TEST

/* A process that corrupted its own header before faulting is still reported
 * under its own pid (exit_of() finds it), and its garbage counters do not
 * reach the kernel's (run() checks the byte counts). */
START_TEST(test_corrupt_header)
{
        struct outcome o;
        bad_addr = 0;
        run((enum vk_isolation)_i, 0, NULL, scribbler, &o);
        assert_fault(&o, "SIGSEGV", 1);
}
END_TEST

/* vk_free() of a block twice ends the process like a fault. */
START_TEST(test_double_free)
{
        struct outcome o;
        run((enum vk_isolation)_i, 0, NULL, double_free, &o);
        ck_assert_int_eq(o.bad->code, EFAULT);
        ck_assert(!bad_finished);
        ck_assert_uint_eq(o.st.faults, 1);
        ck_assert(o.bad_peer_eof);
}
END_TEST

/* ------------------------------------------------------------------------
 * Host signal handlers run inside dispatches too. vk_kernel_stop() is
 * async-signal-safe: it must work from a handler that interrupts an
 * unprivileged process, while kernel memory is read-only, and must not be
 * taken for that process's fault.
 * ------------------------------------------------------------------------ */

static struct vk_kernel *stop_kernel;
static volatile int stop_returned;

static void on_usr1(int sig)
{
        vk_kernel_stop(stop_kernel);
        stop_returned = 1;
}

static void stopper(struct vk_thread *that)
{
        struct {
                char unused;
        } * self;
        vk_begin();
        raise(SIGUSR1); /* as if SIGTERM came while this process ran */
        bad_finished = stop_returned;
        vk_end();
}

START_TEST(test_stop_from_signal_handler)
{
        struct vk_kernel_config cfg = {.isolation = (enum vk_isolation)_i};
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct sigaction sa = {.sa_handler = on_usr1};
        struct vk_kernel_stats st;

        /* A listener keeps the kernel running until the stop takes effect;
         * if it never does, SIGALRM ends the case. */
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(lfd, 0);
        ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
        ck_assert_int_eq(listen(lfd, 16), 0);
        ck_assert_int_eq(vk_kernel_new(&cfg, &stop_kernel), 0);
        vk_kernel_on_exit(stop_kernel, on_exit_hook, NULL);
        ck_assert_int_eq(vk_kernel_listen(stop_kernel, lfd, echo_proc, NULL, 0), 0);
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
        bad_pid = (uint64_t)vk_kernel_spawn(stop_kernel, stopper, NULL, 0, -1, -1);
        alarm(10);
        ck_assert_int_eq(vk_kernel_run(stop_kernel), 0);
        alarm(0);
        vk_kernel_stats(stop_kernel, &st);
        ck_assert_int_eq(exit_of(bad_pid)->code, 0);
        ck_assert_msg(bad_finished, "the handler did not return into the process");
        ck_assert_uint_eq(st.faults, 0);
        vk_kernel_free(stop_kernel);
        close(lfd);
}
END_TEST

/* Sleeps long enough for the timer below to fire while the kernel waits. */
static void napper(struct vk_thread *that)
{
        struct {
                char unused;
        } * self;
        vk_begin();
        vk_sleep(300);
        vk_end();
}

/* The usual SIGTERM: it comes while the kernel waits in its poller, outside
 * any dispatch. The handler's vk_kernel_stop() reads the kernel's arena with
 * the rights a signal handler gets, which deny a protection key's memory
 * (tests/pkeys runs this with keys). */
START_TEST(test_stop_from_signal_handler_idle)
{
        struct vk_kernel_config cfg = {.isolation = VK_ISOLATION_ISOLATED};
        struct sigaction sa = {.sa_handler = on_usr1};
        struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
        struct itimerspec when = {.it_value = {.tv_nsec = 20 * 1000 * 1000}};
        struct vk_kernel_stats st;
        timer_t timer;

        stop_returned = 0;
        ck_assert_int_eq(vk_kernel_new(&cfg, &stop_kernel), 0);
        vk_kernel_on_exit(stop_kernel, on_exit_hook, NULL);
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
        int64_t pid = vk_kernel_spawn(stop_kernel, napper, NULL, 0, -1, -1);
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
        ck_assert_int_eq(timer_settime(timer, 0, &when, NULL), 0);
        alarm(10);
        ck_assert_int_eq(vk_kernel_run(stop_kernel), 0);
        alarm(0);
        timer_delete(timer);
        vk_kernel_stats(stop_kernel, &st);
        ck_assert_msg(stop_returned, "the stop handler did not run to its end");
        ck_assert_int_eq(exit_of((uint64_t)pid)->code, 0);
        ck_assert_uint_eq(st.faults, 0);
        vk_kernel_free(stop_kernel);
}
END_TEST

/* ------------------------------------------------------------------------
 * Faults in kernel code are fatal.
 * ------------------------------------------------------------------------ */

static void host_raise(struct vk_kernel *k)
{
        raise(SIGSEGV);
}

INTENDED_UB static void host_null(struct vk_kernel *k)
{
        *null_ptr = 1;
}

INTENDED_UB static void host_div(struct vk_kernel *k)
{
        sink = 1000 / zero;
}

INTENDED_UB static void crash_in_hook(void *ctx, uint64_t pid, const struct vk_error *err)
{
        *null_ptr = 1;
}

static void nothing(struct vk_thread *that)
{
        struct {
                char unused;
        } * self;
        vk_begin();
        vk_end();
}

/* An exit hook runs in kernel context, inside vk_kernel_run(). */
static void hook_null(struct vk_kernel *k)
{
        vk_kernel_on_exit(k, crash_in_hook, NULL);
        vk_kernel_spawn(k, nothing, NULL, 0, -1, -1);
        vk_kernel_run(k);
}

/* Forks a child that makes a kernel, then runs `crash`; asserts the child
 * died by `sig` and said "vkd: fatal <SIG> in kernel code" on stderr: a plain
 * line, or with journal (stderr poses as the journal, $JOURNAL_STREAM naming
 * it) the "<2>" priority prefix first. */
static void assert_fatal_to(void (*crash)(struct vk_kernel *k), int sig, const char *name,
                            bool journal)
{
        int err[2];
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit no_core = {0, 0};
                struct vk_kernel *k;
                setrlimit(RLIMIT_CORE, &no_core);
                dup2(err[1], 2);
                unsetenv("JOURNAL_STREAM");
                if (journal) {
                        struct stat st;
                        char v[64];
                        fstat(2, &st);
                        snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev,
                                 (unsigned long long)st.st_ino);
                        setenv("JOURNAL_STREAM", v, 1);
                }
                if (vk_kernel_new(NULL, &k) < 0)
                        _exit(3);
                crash(k);
                _exit(4); /* survived: the fault was swallowed */
        }
        close(err[1]);
        char text[4096];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof text - 1 && (n = read(err[0], text + len, sizeof text - 1 - len)) > 0)
                len += (size_t)n;
        text[len] = 0;
        close(err[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig,
                      "the child %s %d, want death by signal %d; stderr: %s",
                      WIFSIGNALED(status) ? "died by signal" : "exited",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), sig, text);
        char want[64];
        snprintf(want, sizeof want, "%svkd: fatal %s in kernel code", journal ? "<2>" : "", name);
        ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "stderr is not '%s...': %s", want,
                      text);
}

static void assert_fatal(void (*crash)(struct vk_kernel *k), int sig, const char *name)
{
        assert_fatal_to(crash, sig, name, false);
}

/* The priority prefix only for the journal: a container engine shows stderr as is. */
START_TEST(test_kernel_fault_journal_prefix)
{
        assert_fatal_to(host_null, SIGSEGV, "SIGSEGV", true);
}
END_TEST

START_TEST(test_kernel_fault_raise)
{
        assert_fatal(host_raise, SIGSEGV, "SIGSEGV");
}
END_TEST

START_TEST(test_kernel_fault_null)
{
        assert_fatal(host_null, SIGSEGV, "SIGSEGV");
}
END_TEST

START_TEST(test_kernel_fault_div)
{
        assert_fatal(host_div, SIGFPE, "SIGFPE");
}
END_TEST

START_TEST(test_kernel_fault_in_exit_hook)
{
        assert_fatal(hook_null, SIGSEGV, "SIGSEGV");
}
END_TEST

static Suite *fault_suite(void)
{
        Suite *s = suite_create("fault");
        TCase *tc = tcase_create("contained");
        int all = VK_ISOLATION_PRIVILEGED + 1;

        tcase_set_timeout(tc, CASE_TIMEOUT);
        tcase_add_loop_test(tc, test_null_deref, 0, all);
        tcase_add_loop_test(tc, test_div_zero, 0, all);
        tcase_add_loop_test(tc, test_illegal_instruction, 0, all);
        tcase_add_loop_test(tc, test_bus_error, 0, all);
        tcase_add_loop_test(tc, test_heap_overrun, 0, all);
        tcase_add_loop_test(tc, test_read_other_heap, 0, all);
        tcase_add_loop_test(tc, test_read_ended_heap, 0, all);
        tcase_add_loop_test(tc, test_reused_heap_wiped, 0, all);
        tcase_add_loop_test(tc, test_kernel_write, 0, 2 * all); /* kernel struct, then zone */
        tcase_add_test(tc, test_kernel_write_small_pages);
        tcase_add_loop_test(tc, test_hibernated_heap, 0, all);
        tcase_add_loop_test(tc, test_mail_write, 0, 2 * all); /* one short, then a flood */
        tcase_add_loop_test(tc, test_arena_huge_pages, 0, all + 1);
        tcase_add_loop_test(tc, test_protection_per_switch, 0, all);
        tcase_add_loop_test(tc, test_runaway_loop, 0, all);
        tcase_add_loop_test(tc, test_heap_exhaustion, 0, all);
        tcase_add_loop_test(tc, test_double_free, 0, all);
        tcase_add_loop_test(tc, test_corrupt_header, 0, all);
        tcase_add_loop_test(tc, test_stop_from_signal_handler, 0, all);
        tcase_add_test(tc, test_stop_from_signal_handler_idle);
        suite_add_tcase(s, tc);

        tc = tcase_create("fatal");
        tcase_set_timeout(tc, CASE_TIMEOUT);
        tcase_add_test(tc, test_kernel_fault_raise);
        tcase_add_test(tc, test_kernel_fault_null);
        tcase_add_test(tc, test_kernel_fault_journal_prefix);
        tcase_add_test(tc, test_kernel_fault_div);
        tcase_add_test(tc, test_kernel_fault_in_exit_hook);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(fault_suite());
        srunner_set_fork_status(sr, CK_FORK);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

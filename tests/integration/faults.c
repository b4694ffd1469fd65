/*
 * faults: the leak test of fault containment (issue 3). One kernel serves
 * echo over real loopback TCP to echo_stress (100 concurrent connections,
 * seeded random data, every byte checked) while, on the same kernel, a stream
 * of misbehaving processes is spawned 64 at a time: NULL dereferences,
 * divisions by zero, illegal instructions, writes past the heap, reads of
 * another process's heap, writes to kernel memory (unprivileged only), double
 * frees, heap exhaustion and, now and then, a loop that never yields. Each
 * owns a socket, which its teardown must close.
 *
 * Two rounds run back to back in one vk_kernel_run(): a warm-up (1,000
 * faults and one echo_stress run) and the measured round (10,000 faults and
 * another echo_stress run). At the end of each round, with nothing but one
 * long-lived victim process alive, the program reads its VmRSS and counts its
 * open descriptors; the measured round must leave both where the warm-up left
 * them (RSS within RSS_SLACK_KB, descriptors exactly), every fault must have
 * ended its process with the expected error, and echo_stress must have passed
 * both times. The exit hook drives everything: it checks each ending, spawns
 * the next process and starts the next round.
 *
 *     faults ECHO_STRESS [unprivileged|isolated]
 *
 * Exit 0 on success, 1 on a failed check (named on stderr), 2 on bad usage.
 * A watchdog ends the program (exit 1) after WATCHDOG_S seconds.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"

#define WARMUP_FAULTS 1000
#define MEASURED_FAULTS 10000
#define IN_FLIGHT 64   /* misbehaving processes alive at once */
#define LOOP_EVERY 500 /* one in this many is a runaway loop */
#define BUDGET_MS 20   /* CPU budget of a dispatch */
#define CONNS 100      /* echo_stress connections per round */
#define CONN_BYTES "1048576"
#define CLIENT_SECONDS "45"
#define RSS_SLACK_KB 2048 /* what the measured round may add to RSS */
#define WATCHDOG_S 55
#define SPIN_MAX 100000ul

#define STR2(x) #x
#define STR(x) STR2(x)

enum kind {
        K_NULL,
        K_DIV,
        K_ILL,
        K_OVERRUN,
        K_READ_OTHER,
        K_DOUBLE_FREE,
        K_HOG,
        K_KERNEL_WRITE, /* unprivileged only: last of the rotation */
        K_LOOP,         /* not in the rotation: every LOOP_EVERY-th */
        K_COUNT,
        K_NONE = 0xff,
};

static const char *const kind_names[K_COUNT] = {
        "null", "div", "ill", "overrun", "read-other", "double-free", "hog", "kernel-write", "loop",
};

#ifdef __SANITIZE_ADDRESS__
/* ASan's siglongjmp interceptor reads /proc/self/maps (through malloc) each
 * time a fault handler jumps off its signal stack, and ASan's quarantine
 * holds on to the freed buffers (up to 256 MB) to catch uses after free: that
 * would be measured as growth per fault here, so the quarantine is off. The
 * rest of ASan stays on; ASAN_OPTIONS still overrides this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
        return "quarantine_size_mb=0";
}
#endif

/* ------------------------------------------------------------------ */
/* State. The hook runs in kernel context; processes write only statics. */

static struct vk_kernel *k;
static enum vk_isolation mode;
static const char *echo_stress;
static char addr[64];

/* The misbehaving processes alive, by pid (any other pid is an echo
 * connection or the victim). */
static struct {
        uint64_t pid; /* 0: free */
        uint8_t kind;
} flight[IN_FLIGHT];
static unsigned rotation; /* kinds in the rotation: K_KERNEL_WRITE only if unprivileged */

static int round_no; /* 0: warm-up, 1: measured */
static unsigned round_total, spawned, done, echo_done, echo_failed;
static pid_t client;
static int client_ok[2];
static unsigned ended[K_COUNT];
static uint64_t rss_kb[2];
static int nfds[2];
static int failed;
static uint64_t round_t0;
static int finished;  /* stop_all() was called */
static int completed; /* both rounds ran to their end */

static uint64_t victim_pid;
static int victim_peer = -1;
static char *volatile victim_addr;

static volatile int zero, sink;
static volatile int *volatile null_ptr;

/* Ends the run: no more rounds, the victim reads its end of stream, the
 * listener closes; vk_kernel_run() returns once every process has ended. */
static void stop_all(void)
{
        if (finished || !k)
                return;
        finished = 1;
        if (victim_peer >= 0)
                close(victim_peer);
        victim_peer = -1;
        vk_kernel_stop(k);
}

static void fail(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "faults: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        failed = 1;
        stop_all();
}

/* ------------------------------------------------------------------ */
/* Processes. */

static void echo_conn(struct vk_thread *that)
{
        struct {
                ssize_t n;
        } * self;
        vk_begin();
        vk_forward(self->n, 0);
        vk_end();
}

/* Keeps a secret in its heap for the readers, until its socket closes. */
static void victim(struct vk_thread *that)
{
        struct {
                char secret[64];
                ssize_t n;
        } * self;
        vk_begin();
        strcpy(self->secret, "not yours");
        victim_addr = self->secret;
        vk_read(self->n, self->secret, 1);
        vk_end();
}

__attribute__((no_sanitize("undefined"))) static void misbehave(struct vk_thread *that)
{
        struct {
                uint8_t kind;
                unsigned long i;
                void *block;
                char buf[16];
        } * self;
        vk_begin();
        switch (self->kind) {
        case K_NULL:
                *null_ptr = 1;
                break;
        case K_DIV:
                sink = 1000 / zero;
                break;
        case K_ILL:
                __builtin_trap();
                break;
        case K_OVERRUN:
                memset(self->buf, 0x5a, that->proc->size);
                break;
        case K_READ_OTHER:
                sink = victim_addr[0];
                break;
        case K_KERNEL_WRITE: {
                volatile uint64_t *x = &that->proc->kernel->stats.dispatches;
                *x = *x;
                break;
        }
        case K_DOUBLE_FREE:
                self->block = vk_malloc(that->proc, 64);
                vk_malloc(that->proc, 64);
                vk_free(that->proc, self->block);
                vk_free(that->proc, self->block);
                break;
        case K_LOOP:
                for (;;)
                        sink++;
        default:
                break;
        }
        /* K_HOG, and nothing else, gets here (blocking ops stay out of the
         * switch above, as vk.h asks). */
        for (self->i = 0; self->kind == K_HOG && self->i < SPIN_MAX; self->i++)
                vk_alloc_or_raise(self->block, 1024);
        vk_end();
}

/* ------------------------------------------------------------------ */
/* Measurements. */

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t read_rss_kb(void)
{
        FILE *f = fopen("/proc/self/status", "r");
        char line[256];
        uint64_t kb = 0;
        if (!f)
                return 0;
        while (fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* ------------------------------------------------------------------ */
/* Driving. */

static void spawn_one(void)
{
        uint8_t kind = (uint8_t)((spawned + 1) % LOOP_EVERY == 0 ? K_LOOP : spawned % rotation);
        int i = 0, sv[2];
        while (i < IN_FLIGHT && flight[i].pid)
                i++;
        if (i == IN_FLIGHT) {
                fail("more than %d misbehaving processes in flight", IN_FLIGHT);
                return;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
                fail("socketpair: %s", strerror(errno));
                return;
        }
        close(sv[1]); /* the process owns sv[0]; its teardown must close it */
        int64_t pid = vk_kernel_spawn(k, misbehave, &kind, sizeof kind, sv[0], sv[0]);
        if (pid <= 0) {
                fail("spawn: %s", strerror((int)-pid));
                return;
        }
        flight[i].pid = (uint64_t)pid;
        flight[i].kind = kind;
        spawned++;
}

static void start_round(int r)
{
        char *argv[] = {(char *)echo_stress, "--connect", addr,          "--conns",
                        STR(CONNS),          "--bytes",   CONN_BYTES,    "--seconds",
                        CLIENT_SECONDS,      "--seed",    r ? "2" : "1", NULL};
        round_no = r;
        round_t0 = now_ms();
        round_total = r ? MEASURED_FAULTS : WARMUP_FAULTS;
        spawned = done = echo_done = 0;
        int e = posix_spawn(&client, echo_stress, NULL, NULL, argv, environ);
        if (e) {
                fail("cannot start %s: %s", echo_stress, strerror(e));
                vk_kernel_stop(k);
                return;
        }
        for (int i = 0; i < IN_FLIGHT; i++)
                spawn_one();
}

static void end_round(void)
{
        int status;
        if (waitpid(client, &status, 0) != client)
                fail("waitpid: %s", strerror(errno));
        else
                client_ok[round_no] = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!client_ok[round_no])
                fail("round %d: echo_stress failed (status %#x)", round_no, status);
        rss_kb[round_no] = read_rss_kb();
        nfds[round_no] = count_fds();
        printf("faults: round %d (%s): %u faults in %" PRIu64 " ms, RSS %" PRIu64
               " kB, %d descriptors\n",
               round_no, round_no ? "measured" : "warm-up", round_total, now_ms() - round_t0,
               rss_kb[round_no], nfds[round_no]);
        fflush(stdout);
        if (round_no == 0 && !failed) {
                start_round(1);
                return;
        }
        completed = 1;
        stop_all();
}

static int ends_right(uint8_t kind, const struct vk_error *err)
{
        static const char *const sig[K_COUNT] = {
                [K_NULL] = "SIGSEGV at 0x0 ",     [K_DIV] = "SIGFPE at 0x",
                [K_ILL] = "SIGILL at 0x",         [K_OVERRUN] = "SIGSEGV at 0x",
                [K_READ_OTHER] = "SIGSEGV at 0x", [K_KERNEL_WRITE] = "SIGSEGV at 0x",
                [K_DOUBLE_FREE] = "SIGILL at 0x",
        };
        if (!err)
                return 0;
        switch (kind) {
        case K_LOOP:
                return err->code == ETIME && strstr(err->msg, "CPU budget of 20 ms");
        case K_HOG:
                return err->code == ENOMEM && strstr(err->msg, "heap full");
        default:
                return err->code == EFAULT && !strncmp(err->msg, sig[kind], strlen(sig[kind])) &&
                       strstr(err->msg, " in thread 0x");
        }
}

static void on_exit_hook(void *ctx, uint64_t pid, const struct vk_error *err)
{
        uint8_t kind = K_NONE;
        for (int i = 0; i < IN_FLIGHT; i++) {
                if (flight[i].pid == pid) {
                        kind = flight[i].kind;
                        flight[i].pid = 0;
                        break;
                }
        }
        if (pid == victim_pid) {
                if (err || !finished)
                        fail("the victim ended early: %s", err ? err->msg : "cleanly");
                return;
        }
        if (kind == K_NONE) {
                /* an echo connection */
                echo_done++;
                if (err) {
                        echo_failed++;
                        fail("an echo connection failed: %d %s", err->code, err->msg);
                }
        } else {
                done++;
                ended[kind]++;
                if (!ends_right(kind, err))
                        fail("a %s process ended with %d '%s'", kind_names[kind],
                             err ? err->code : 0, err ? err->msg : "");
                if (spawned < round_total && !failed)
                        spawn_one();
        }
        if (!finished && echo_done == CONNS && done == spawned &&
            (spawned == round_total || failed))
                end_round();
}

static void on_alarm(int sig)
{
        static const char msg[] = "faults: watchdog: not done after " STR(WATCHDOG_S) " s\n";
        if (write(2, msg, sizeof msg - 1) < 0) {
                /* exiting anyway */
        }
        _exit(1);
}

static int listen_loopback(void)
{
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sin;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
            listen(fd, SOMAXCONN) < 0 || getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
                return -1;
        snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(sin.sin_port));
        return fd;
}

int main(int argc, char **argv)
{
        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: faults ECHO_STRESS [unprivileged|isolated]\n");
                return 2;
        }
        echo_stress = argv[1];
        mode = VK_ISOLATION_UNPRIVILEGED;
        if (argc == 3 && !strcmp(argv[2], "isolated"))
                mode = VK_ISOLATION_ISOLATED;
        else if (argc == 3 && strcmp(argv[2], "unprivileged"))
                return 2;
        /* Isolated processes may write kernel memory: not a fault there. */
        rotation = mode == VK_ISOLATION_UNPRIVILEGED ? K_KERNEL_WRITE + 1 : K_KERNEL_WRITE;

        struct sigaction sa = {.sa_handler = on_alarm};
        sigaction(SIGALRM, &sa, NULL);
        alarm(WATCHDOG_S);
        uint64_t t0 = now_ms();

        struct vk_kernel_config cfg = {.heap_size = 16384,
                                       .ring_size = 4096,
                                       .isolation = mode,
                                       .cpu_budget_ms = BUDGET_MS};
        int r = vk_kernel_new(&cfg, &k);
        if (r < 0) {
                fprintf(stderr, "faults: vk_kernel_new: %s\n", strerror(-r));
                return 1;
        }
        vk_kernel_on_exit(k, on_exit_hook, NULL);
        int lfd = listen_loopback();
        if (lfd < 0 || vk_kernel_listen(k, lfd, echo_conn, NULL, 0) < 0) {
                fprintf(stderr, "faults: cannot listen on loopback\n");
                return 1;
        }
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
                return 1;
        victim_peer = sv[1];
        victim_pid = (uint64_t)vk_kernel_spawn(k, victim, NULL, 0, sv[0], sv[0]);
        printf("faults: %s, protection by %s, echo_stress on %s\n",
               mode == VK_ISOLATION_UNPRIVILEGED ? "unprivileged" : "isolated",
               vk_kernel_protection(k), addr);
        fflush(stdout);
        start_round(0);
        r = vk_kernel_run(k);
        if (r < 0)
                fail("vk_kernel_run: %s", strerror(-r));
        struct vk_kernel_stats st;
        vk_kernel_stats(k, &st);
        vk_kernel_free(k);
        close(lfd);

        unsigned total = WARMUP_FAULTS + MEASURED_FAULTS, efaults = 0;
        for (int i = 0; i < K_COUNT; i++)
                if (i != K_LOOP && i != K_HOG)
                        efaults += ended[i];
        printf("faults: %u ended:", total);
        for (int i = 0; i < K_COUNT; i++)
                printf(" %s %u", kind_names[i], ended[i]);
        printf("\nfaults: stats: %" PRIu64 " faults, %" PRIu64 " cpu kills, %" PRIu64
               " failed, %" PRIu64 " spawned, %" PRIu64 " dispatches, %" PRIu64
               " protection changes; %" PRIu64 " ms\n",
               st.faults, st.cpu_kills, st.failed, st.spawned, st.dispatches, st.protects,
               now_ms() - t0);
        if (!completed)
                fail("the rounds did not finish");
        if (done + (round_no ? WARMUP_FAULTS : 0) != total)
                fail("%u of %u misbehaving processes ended", done, total);
        if (st.faults != efaults || st.cpu_kills != ended[K_LOOP] ||
            st.failed != efaults + ended[K_LOOP] + ended[K_HOG])
                fail("stats disagree with the exit hook");
        if (ended[K_LOOP] != total / LOOP_EVERY)
                fail("%u loops ended, want %u", ended[K_LOOP], total / LOOP_EVERY);
        if (echo_failed)
                fail("%u echo connections failed", echo_failed);
        if (rss_kb[1] > rss_kb[0] + RSS_SLACK_KB)
                fail("RSS grew from %" PRIu64 " to %" PRIu64 " kB over %u faults", rss_kb[0],
                     rss_kb[1], MEASURED_FAULTS);
        if (nfds[1] != nfds[0])
                fail("descriptors went from %d to %d over %u faults", nfds[0], nfds[1],
                     MEASURED_FAULTS);
        printf("faults: %s\n", failed ? "FAILED" : "ok");
        return failed;
}

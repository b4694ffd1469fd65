/*
 * The virtual kernel as its host sees it: the daemon's workers and the
 * stand-alone service programs create one kernel per OS process, hand it
 * descriptors or listening sockets, and run it. Nothing here knows about
 * configuration files or systemd.
 */
#ifndef VK_KERNEL_H
#define VK_KERNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <vk/vk.h>

struct vk_kernel;

/* How a process is protected from the others and they from it. */
enum vk_isolation {
        /* Its heap is inaccessible (PROT_NONE) whenever it is not running. */
        VK_ISOLATION_ISOLATED = 0,
        /* Isolated, and kernel memory is read-only while it runs. */
        VK_ISOLATION_UNPRIVILEGED,
        /* No protection changes: for trusted services. */
        VK_ISOLATION_PRIVILEGED,
};

struct vk_kernel_config {
        /* An SSL_CTX (OpenSSL 3): connections accepted from listeners are
         * TLS, terminated in the kernel under the rings; NULL: plaintext.
         * The caller keeps it alive as long as the kernel. */
        void *tls_ctx;
        size_t heap_size;   /* bytes per process micro-heap; 0: 64 KiB */
        size_t ring_size;   /* bytes per socket ring; 0: 16 KiB */
        unsigned max_procs; /* live processes at most; 0: 16384 */
        const char *poller; /* "epoll", "poll", "kqueue"; NULL: $VKD_POLLER, else the best */
        enum vk_isolation isolation; /* for vk_kernel_spawn() and vk_kernel_listen() */
        /* CPU time one dispatch may use before its process is ended with
         * ETIME (a runaway loop); 0: 500 ms; VK_CPU_BUDGET_OFF: no limit. */
        unsigned cpu_budget_ms;
        /* A process whose rings stayed empty and whose threads all waited
         * this long hibernates: its heap's pages are given back; 0: 1000. */
        unsigned hibernate_ms;
        /* How long a protected (isolated or unprivileged) process with ready
         * threads keeps the CPU once dispatched, checked every 64 thread
         * resumptions, so its protection changes are paid once for that
         * much work; privileged ones, whose switch is free, yield after 64.
         * 0: 200 us. */
        unsigned slice_us;
        /* A process (but the service's own) that has not been dispatched
         * for this long is ended with ETIMEDOUT by the kernel, whatever its
         * heap says: the backstop for a connection that wedged itself (a
         * stray write over its own deadlines or wake-up records). 0: never. */
        unsigned idle_limit_ms;
        /* At vk_kernel_stop(), accept what the listen queues hold and close
         * the descriptors given to vk_kernel_listen() (they are the
         * kernel's from then on), so that once every holder of a shared
         * listening socket has stopped, new connections are refused rather
         * than queued unserved until the socket goes away. 0: the kernel
         * forgets them at stop and never closes them. */
        unsigned close_listeners_on_stop;
};

#define VK_CPU_BUDGET_OFF (~0u)

/* "isolated", "unprivileged" or "privileged" as its enum vk_isolation value;
 * -EINVAL for anything else. */
int vk_isolation_parse(const char *name);

/* Why a process ended, given to the exit hook. err is NULL on a clean end. */
typedef void vk_exit_fn(void *ctx, uint64_t pid, const struct vk_error *err);

/* Creates a kernel. Returns 0 and *ret, or -errno (-EINVAL for an unknown
 * poller or a heap too small for its rings). */
int vk_kernel_new(const struct vk_kernel_config *cfg, struct vk_kernel **ret);

/* Frees the kernel, ending every process and closing their descriptors (but
 * not listening sockets handed to vk_kernel_listen()). Accepts NULL; returns
 * NULL. */
struct vk_kernel *vk_kernel_free(struct vk_kernel *k);

/* Starts a process whose main thread runs fn with stdin on fd_in and stdout
 * on fd_out (the same descriptor for a socket), or without stdio when both
 * are -1. The process owns the descriptors from now on, even on failure.
 * Descriptors must be non-blocking (a blocking one would stall the worker),
 * unless they are regular files.
 * arg is copied into the frame.
 * Returns the process id (> 0) or -errno. */
int64_t vk_kernel_spawn(struct vk_kernel *k, vk_thread_fn *fn, const void *arg, size_t arglen,
                        int fd_in, int fd_out);

/* Accepts connections on a listening, non-blocking socket: each becomes a
 * process running fn on it. The kernel does not own fd. Returns 0 or -errno. */
int vk_kernel_listen(struct vk_kernel *k, int fd, vk_thread_fn *fn, const void *arg, size_t arglen);

/* The same with the connections' isolation given. */
int vk_kernel_listen_with(struct vk_kernel *k, int fd, vk_thread_fn *fn, const void *arg,
                          size_t arglen, enum vk_isolation isolation);

/* Tells the kernel that fn is module code: a runaway dispatch is ended with
 * ETIME only where it stands in such code (or, after a long wait, anywhere),
 * never inside the allocator or another library that may hold a lock. The
 * functions given to vk_kernel_spawn() and vk_kernel_listen*() are noted
 * already; a host that runs module code through a wrapper of its own names
 * the module's functions here. A function in the kernel's own object is
 * ignored: with no module code known, a dispatch is ended anywhere. */
void vk_kernel_module_code(struct vk_kernel *k, const void *fn);

/* Runs until there is nothing left to run: no process and no listener, or
 * vk_kernel_stop() was called and every process ended. Returns 0 or -errno
 * of a fatal poller error. */
int vk_kernel_run(struct vk_kernel *k);

/* Stops accepting and lets vk_kernel_run() return once the processes have
 * ended. Async-signal-safe. */
void vk_kernel_stop(struct vk_kernel *k);

/* Names pid (from vk_kernel_spawn) the service's own process: every process
 * finds it with vk_service_pid(), e.g. a store that connections message.
 * When the kernel stops and every other process has ended, ECANCELED is
 * raised in its main thread so it can save its state and end. */
void vk_kernel_set_service(struct vk_kernel *k, uint64_t pid);

/* Calls fn(ctx, pid, err) whenever a process ends. */
void vk_kernel_on_exit(struct vk_kernel *k, vk_exit_fn *fn, void *ctx);

/* How a process ended, beyond its error: for the exit hook's log line. */
enum vk_exit_cause {
        VK_EXIT_CLEAN = 0,
        VK_EXIT_ERROR,   /* an uncaught error (vk_raise, a descriptor's error) */
        VK_EXIT_NOMEM,   /* its heap was full */
        VK_EXIT_FAULT,   /* a hardware fault: addr, pc */
        VK_EXIT_CORRUPT, /* the kernel found a record in its heap corrupt */
        VK_EXIT_CPU,     /* a dispatch overran the CPU budget */
        VK_EXIT_IDLE,    /* not scheduled for idle_limit_ms: ended by the kernel */
};
struct vk_exit_detail {
        enum vk_exit_cause cause;
        int is_service;               /* the service's own process (vk_kernel_set_service) */
        int told;                     /* it was told to end (the kernel is stopping): however it
                                       * ends then, it was asked to */
        uintptr_t addr, pc;           /* a fault: the address and the instruction, 0 unknown */
        struct sockaddr_storage peer; /* its connection's peer (abnormal ends only);
                                       * ss_family AF_UNSPEC: none */
};
/* Inside the exit hook only: the detail of the process ending. */
const struct vk_exit_detail *vk_kernel_exit_detail(const struct vk_kernel *k);

/* The name of the poller in use. */
const char *vk_kernel_poller(const struct vk_kernel *k);

/* How kernel memory is write-protected for unprivileged processes: "pkeys"
 * (memory protection keys, no system call per switch), "mprotect-huge"
 * (mprotect on transparent huge pages: kernels whose default isolation is
 * unprivileged) or "mprotect". */
const char *vk_kernel_protection(const struct vk_kernel *k);

struct vk_kernel_stats {
        uint64_t spawned;   /* processes started */
        uint64_t exited;    /* processes ended */
        uint64_t failed;    /* of those, ended by an uncaught error (faults included) */
        uint64_t faults;    /* ended by a hardware fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) */
        uint64_t cpu_kills; /* ended for overrunning the CPU budget of a dispatch */
        uint64_t active;    /* alive now */
        uint64_t polls;     /* poller waits (system calls) */
        uint64_t protects;  /* protection changes (system calls in mprotect mode) */
        uint64_t dispatches;
        uint64_t bytes_in, bytes_out;
        uint64_t requests;     /* vk_request_done() calls */
        uint64_t nomem;        /* processes ended by ENOMEM (heap exhausted) */
        uint64_t timeouts;     /* processes ended by ETIMEDOUT */
        uint64_t msgs_dropped; /* messages refused: a receiver's staging was full */
        /* Requests by latency: bucket 0 under 1 us, bucket i in [2^(i-1), 2^i) us. */
        uint64_t latency[VK_LATENCY_BUCKETS];
        uint64_t latency_sum_us; /* the sum of the latencies counted in latency[] */
};

/* Calls fn(ctx) from the loop about every period_ms while the kernel runs
 * (for a host to publish figures). fn must not call into the kernel but for
 * vk_kernel_stats() and vk_kernel_stop(). */
typedef void vk_tick_fn(void *ctx);
void vk_kernel_on_tick(struct vk_kernel *k, vk_tick_fn *fn, void *ctx, unsigned period_ms);

void vk_kernel_stats(const struct vk_kernel *k, struct vk_kernel_stats *ret);

#endif

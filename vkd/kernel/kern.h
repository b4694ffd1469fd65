/*
 * Internal structures of the virtual kernel, shared by its source files.
 *
 * Memory is split in two on purpose. What a process may write while it runs
 * lives in its micro-heap: `struct vk_proc` at the heap's start, its threads,
 * frames, pipes and rings. What only the kernel writes lives outside any heap:
 * `struct kproc`, the descriptor table, the run queue, the timer heap and the
 * poller. The ops a thread calls touch only the former; the scheduler moves
 * information across (events in, poller and timer requests out) before and
 * after each dispatch, which is what lets a heap be protected while it is not
 * running and kernel memory be read-only while it is.
 */
#ifndef VK_KERN_H
#define VK_KERN_H

#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "vk_kernel.h"

#define VK_PIPE_OUTPUT 0x200 /* the write side of a socket (else the read side) */

#define KERN_NS_PER_MS 1000000ull
#define KERN_NS_PER_US 1000ull

/* ------------------------------------------------------------------ */
/* Heap side. */

struct vk_socket {
        struct vk_pipe rx, tx;
        struct vk_socket *next;
        int alias;          /* vk_accept(): the listener the caller named (this is a dup) */
        uint8_t bound;      /* the kernel has it in its descriptor table */
        uint8_t connecting; /* a non-blocking connect is in flight */
        uint8_t spawned;    /* the connection the process was spawned with */
};

struct vk_proc {
        /* stack-like allocator over [start, low) */
        uint32_t size;    /* whole heap */
        uint32_t top;     /* first free byte */
        uint32_t top_max; /* the highest top has been: what a reuse wipes */
        uint32_t last;    /* offset of the last block, 0 if none */
        uint32_t low;     /* start of the ring area, which grows down from size */
        struct vk_thread *runq_head, *runq_tail;
        struct vk_thread *threads; /* every live thread */
        struct vk_thread *main;
        struct vk_pipe *dirty; /* pipes whose descriptors need the poller */
        struct vk_socket *sockets;
        uint8_t new_sockets;         /* vk_socket_open() or _close() since the kernel looked */
        uint8_t extra_sockets;       /* opened with vk_socket_open() and open now */
        int unbound[VK_SOCKETS_MAX]; /* descriptor + 1 of sockets not yet bound */
        int closing[VK_SOCKETS_MAX]; /* descriptor + 1 of bound ones closed: the kernel's */
        char *free_rings;            /* rings of closed sockets, each holding the next's address */
        uint32_t ring_size;          /* for sockets it opens */
        struct vk_kernel *kernel;    /* read only from process context */
        uint64_t pid;
        uint8_t timers_dirty; /* a thread set a deadline */
        uint8_t exiting;      /* the main thread ended */
        struct vk_error exit_err;
        uint64_t bytes_in, bytes_out;
        int owned[VK_OWNED_FDS];    /* descriptor + 1 of each vk_own_fd(), 0 free */
        struct vk_ring *inbox;      /* messages for it, framed by struct msg_head */
        struct vk_ring *outbox;     /* messages it sent, the kernel takes them out */
        struct vk_thread *receiver; /* blocked in vk_receive() */
        struct vk_thread *sender;   /* blocked in vk_send() on a full outbox */
        uint64_t service_pid;
        uint32_t nreq; /* requests since the kernel last harvested */
        uint16_t lat[VK_LATENCY_BUCKETS];
        uint64_t lat_sum_us; /* the latencies counted in lat[] since the harvest */
};

/* A message in a ring or in the kernel's staging buffer. */
struct msg_head {
        uint32_t len; /* bytes after this header; MSG_BOUNCE: undeliverable */
        uint32_t pad;
        uint64_t peer; /* in an outbox: the receiver; elsewhere: the sender */
};
#define MSG_BOUNCE UINT32_MAX
/* Kernel staging for one process, bounded against floods. */
#define MSG_STAGE_MAX (4u << 20)

/* ------------------------------------------------------------------ */
/* Kernel side. */

struct kfd;

struct kproc {
        struct vk_proc *p;
        int extra[VK_SOCKETS_MAX]; /* sockets opened later: descriptor + 1, 0 free */
        int fd_in, fd_out;         /* its descriptors, -1 none: closed at exit without
                                    * trusting the heap, which a fault may have left corrupt */
        uint8_t isolation;         /* enum vk_isolation */
        uint8_t prot_none;         /* the slot's pages are PROT_NONE now (kept across reuse) */
        uint32_t gen;              /* bumped per occupant: pid = gen << 24 | slot */
        char *mail;                /* messages staged for it (a block of the kernel zone) */
        uint32_t mail_len;         /* bytes staged; the block holds kz_size(mail) */
        uint32_t saved_len;        /* hibernating: bytes of heap kept in the store */
        uint32_t saved;            /* hibernating: their heap_store reference, 0 none */
        struct kproc *next_run;
        int pending;          /* first descriptor with undelivered events, -1 none */
        uint64_t timer_when;  /* 0: not in the timer heap */
        uint64_t thread_when; /* a thread's deadline the entry is for, 0: only the idle limit */
        uint64_t last_run;    /* when it was last dispatched */
        uint32_t timer_idx;   /* 1-based position in the timer heap */
        uint32_t slot;        /* heap pool slot */
        /* Where its heap said its allocator's front ends and its rings
         * start, at the end of its last dispatch: where a revoke splits
         * (isolate.c). Hints, never trusted; 0 for one call. */
        uint32_t front_end, rings_start;
        uint32_t ring_off;   /* where its socket rings start in the heap */
        uint64_t idle_since; /* on the idle list since, 0: not on it */
        struct kproc *idle_prev, *idle_next;
        uint8_t queued;
        uint8_t timer_fired;
        uint8_t alive;
        uint8_t unborn;   /* spawned, heap not set up yet: see proc_birth */
        uint32_t arglen;  /* unborn: its main thread's argument, */
        char *arg;        /* in argbuf, or a kernel zone block when longer */
        vk_thread_fn *fn; /* and function */
        char argbuf[32];
};

struct kserver {
        int fd;
        uint8_t ready;
        uint8_t isolation;
        vk_thread_fn *fn;
        void *arg;
        size_t arglen;
        struct kserver *next;
};

struct kfd {
        struct kproc *proc;      /* owner, or NULL */
        struct kserver *server;  /* a listener, or NULL */
        struct vk_pipe *rx, *tx; /* heap pointers, dereferenced only in dispatch */
        int next_pending;        /* descriptor number, -1 ends the list */
        uint32_t revents;
        uint8_t pending;
        uint8_t kernel; /* the kernel's own (poller, wake pipe): never a process's */
};

/* Poller events. */
#define POLLER_IN 0x1
#define POLLER_OUT 0x2
#define POLLER_HUP 0x4 /* peer closed (its write side, or all of it) */
#define POLLER_ERR 0x8
#define POLLER_EXCLUSIVE 0x10 /* arm only: wake one of the pollers sharing fd */

struct poller_event {
        int fd;
        uint32_t events;
};

struct poller;
struct kzone;

/* One backend per file, chosen at run time. */
struct poller_backend {
        const char *name;
        int oneshot; /* an armed interest is dropped once it is reported */
        /* Returns 0 and *ret, or -errno. */
        int (*open)(struct poller **ret, struct kzone *z); /* its memory from z */
        void (*close)(struct poller *pl);
        /* Its own descriptor, or -1. */
        int (*fileno)(const struct poller *pl);
        /* Asks to be told when fd is ready for events (POLLER_IN|OUT). Level of
         * the report may be edge or level: callers retry the syscall. Returns
         * 0, -EPERM for a descriptor that cannot be polled (a regular file:
         * always ready), or another -errno. */
        int (*arm)(struct poller *pl, int fd, uint32_t events);
        /* Drops fd; `closing`: the caller closes it right away, which removes
         * it from kernel pollers without a system call. */
        void (*forget)(struct poller *pl, int fd, int closing);
        /* Waits up to timeout_ms (-1: forever) and fills at most max events.
         * Returns their number, or -errno (-EINTR is returned too). */
        int (*wait)(struct poller *pl, int timeout_ms, struct poller_event *ev, int max);
};

extern const struct poller_backend poller_epoll;
extern const struct poller_backend poller_poll;
extern const struct poller_backend poller_kqueue;

/* Heap pool: fixed-size page-aligned slots in one reservation. */
struct heap_pool {
        char *base;
        size_t slot_size;
        uint32_t nslots;
        uint32_t used;  /* slots ever handed out (high water mark) */
        uint32_t *free; /* stack of returned slots: [0, ntrimmed) given back to the OS */
        uint32_t nfree;
        uint32_t ntrimmed;
};

/* The hibernation store: the saved heap fronts of idle processes, in one
 * reservation that is PROT_NONE except while the kernel copies in or out. */
#define HEAP_STORE_MAX 3072u /* larger fronts keep their pages instead */
#define HEAP_STORE_GRAIN 64u
#define HEAP_STORE_CLASSES (HEAP_STORE_MAX / HEAP_STORE_GRAIN)
struct kzone;
struct heap_store {
        int fd;             /* a file nobody maps: the fronts are out of every pointer's reach */
        size_t len;         /* its size */
        size_t used;        /* carved into chunks so far */
        struct kzone *zone; /* where the free lists live */
        /* Per size class, the free chunks' references (grain + 1), a stack in
         * kernel memory: freeing one (a hibernated process that ends) touches
         * no page of the store and changes no protection. */
        uint32_t *free[HEAP_STORE_CLASSES];
        uint32_t nfree[HEAP_STORE_CLASSES], capfree[HEAP_STORE_CLASSES];
};

/* The kernel zone: blocks of kernel memory of variable size (staged
 * messages, listeners, the poller's tables), carved from the arena so they
 * are write-protected with it. Power-of-two classes from 4 KiB up. */
#define KZONE_MIN_SHIFT 12
#define KZONE_CLASSES 15               /* 4 KiB << 14 = 64 MiB: a poll table for 2^20 descriptors */
#define KZONE_COMMIT ((size_t)2 << 20) /* made accessible in steps of a huge page */
struct kzone {
        char *base;
        size_t len;                   /* reserved */
        size_t used;                  /* carved so far */
        size_t committed;             /* accessible: [0, committed); the rest is PROT_NONE */
        uint32_t free[KZONE_CLASSES]; /* per class: 4 KiB unit + 1 of a free block */
};

struct vk_kernel {
        uint64_t now;     /* monotonic ns, refreshed after each poll */
        uint64_t idle_ns; /* a process idle this long hibernates */
        /* Kernel memory that processes must not write: this struct, the
         * process table, descriptor table, timer heap and pool free stack
         * are carved from one mapping that can be made read-only. */
        char *arena;
        size_t arena_len;
        int max_fds;
        int pkey;           /* protection key of the arena, -1: use mprotect */
        uint8_t arena_huge; /* the arena asked for transparent huge pages */
        struct kproc *open; /* the protected heap left open, or NULL */
        uint8_t faults_on;  /* fault_init() succeeded */
        struct vk_kernel_config cfg;
        const struct poller_backend *pb;
        struct poller *pl;
        struct heap_pool pool;
        struct heap_store store;
        struct kzone zone;      /* in the arena, after the tables */
        struct kproc *procs;    /* indexed by pool slot */
        uint64_t idle_limit_ns; /* cfg.idle_limit_ms */
        uint64_t seal_key;      /* thread_seal()'s, random per kernel */
        struct kproc *runq_head, *runq_tail;
        struct kproc *idle_head, *idle_tail; /* rings drained, oldest first */
        struct kfd *fds;
        int nfds;
        struct kproc **timers; /* binary min-heap on timer_when */
        uint32_t ntimers, timers_cap;
        struct kserver *servers;
        int wake_pipe[2];
        volatile int stop_requested;
        int stopping;
        uint64_t service_pid; /* the service's own process, 0 none */
        uint8_t service_told; /* it was asked to end (the kernel is stopping) */
        vk_exit_fn *on_exit;
        void *on_exit_ctx;
        struct vk_exit_detail exit_detail; /* of the process ending, for the hook */
        vk_tick_fn *on_tick;
        void *on_tick_ctx;
        uint64_t tick_ns, next_tick;
        struct vk_kernel_stats stats;
        struct ssl_st **tls; /* per descriptor, cfg.tls_ctx set: malloc'd, out of every heap */
};

/* tls.c: TLS under the rings of accepted connections (cfg.tls_ctx). */
struct ssl_st;
int tls_init(struct vk_kernel *k); /* the table; 0 or -ENOMEM */
void tls_fini(struct vk_kernel *k);
int tls_accept(struct vk_kernel *k, int fd); /* a server-side session on fd; 0 or -ENOMEM */
void tls_close(struct vk_kernel *k, int fd); /* close_notify if it can, then frees the session */
/* Bytes moved, 0 at the end of the stream, -EAGAIN (the handshake or a
 * record waits for the socket) or -errno (-EPROTO: a TLS error). */
ssize_t tls_read(struct ssl_st *s, void *buf, size_t len);
ssize_t tls_write(struct ssl_st *s, const void *buf, size_t len);
int tls_shutdown(struct ssl_st *s); /* sends close_notify; 0 or -EAGAIN */
static inline struct ssl_st *tls_of(const struct vk_kernel *k, int fd)
{
        return k->tls && fd >= 0 && fd < k->nfds ? k->tls[fd] : NULL;
}

/* heap.c */
/* free_stack: room for nslots entries, owned by the caller. */
int heap_pool_init(struct heap_pool *hp, size_t slot_size, uint32_t nslots, uint32_t *free_stack);
void heap_pool_free(struct heap_pool *hp);
/* Returns a slot's base, or NULL when all are in use. */
char *heap_pool_get(struct heap_pool *hp, uint32_t *ret_slot);
char *heap_pool_slot(const struct heap_pool *hp, uint32_t slot); /* its address */
size_t heap_page_size(void);                                     /* the system's, cached */
void heap_pool_put(struct heap_pool *hp, uint32_t slot);
/* Gives the memory of all but `keep` returned slots back to the OS. */
void heap_pool_trim(struct heap_pool *hp, uint32_t keep);
void heap_scrub(struct vk_proc *p, size_t slot); /* wipes what an ended process wrote */
/* The hibernation store, for nprocs processes' fronts at most. Put copies
 * len (1..HEAP_STORE_MAX) bytes in and returns a reference, 0 when full (or
 * the copy failed); take copies them out and frees the chunk (dst NULL: only
 * frees; returns -1 if the copy failed). */
int heap_store_init(struct heap_store *st, uint32_t nprocs, struct kzone *zone);
void heap_store_free(struct heap_store *st);
uint32_t heap_store_put(struct heap_store *st, const void *src, uint32_t len);
int heap_store_take(struct heap_store *st, uint32_t ref, void *dst, uint32_t len);
/* The kernel zone over [base, base + len), made PROT_NONE until used. Alloc
 * returns a block of at least n bytes and its size in *cap, or NULL when the
 * zone is full (or n is past the largest class); free gives it back. */
void kzone_init(struct kzone *z, char *base, size_t len);
char *kzone_alloc(struct kzone *z, uint32_t n, uint32_t *cap);
void kzone_free(struct kzone *z, char *block, uint32_t cap);
/* malloc-like, over the zone: the block's size is kept before it; kz_size
 * is how much of it may be used (0 for NULL). */
void *kz_calloc(struct kzone *z, size_t n);
void *kz_realloc(struct kzone *z, void *ptr, size_t n);
void kz_free(struct kzone *z, void *ptr);
size_t kz_size(const void *ptr);
/* Lays out an empty process heap at base. */
void heap_init(struct vk_proc *p, size_t size);
/* Reserves len bytes (page-aligned) from the ring area; NULL when full. */
char *heap_ring_alloc(struct vk_proc *p, size_t len);

/* ring.c */
static inline uint32_t ring_len(const struct vk_ring *r)
{
        return r->tail - r->head;
}
static inline uint32_t ring_space(const struct vk_ring *r)
{
        return r->size - (r->tail - r->head);
}
int ring_data_iov(const struct vk_ring *r, struct iovec iov[2], uint32_t max);
int ring_space_iov(const struct vk_ring *r, struct iovec iov[2]);
void ring_consume(struct vk_ring *r, uint32_t n);
void ring_produce(struct vk_ring *r, uint32_t n);
uint32_t ring_read(struct vk_ring *r, void *dst, uint32_t n);
uint32_t ring_write(struct vk_ring *r, const void *src, uint32_t n);
/* Offset of the first byte c within the first max bytes, or -1. */
int64_t ring_find(const struct vk_ring *r, char c, uint32_t max);
/* Moves up to n bytes from src to dst; returns the count. */
uint32_t ring_move(struct vk_ring *dst, struct vk_ring *src, uint32_t n);
/* Rotates the buffered bytes to the front of the buffer, so they are one
 * contiguous segment. */
void ring_linearize(struct vk_ring *r);

/* thread.c */
struct vk_thread *thread_new(struct vk_proc *p, vk_thread_fn *fn, const void *arg, size_t arglen);
void thread_ready(struct vk_thread *t);
void thread_timeout(struct vk_thread *t);

/* A thread's function, sealed to the thread: a stray write over fn (a
 * partial one makes it another address of the same code) no longer
 * matches, and the kernel refuses to call it. */
static inline uint64_t thread_seal(const struct vk_kernel *k, const struct vk_thread *t)
{
        return (((uint64_t)(uintptr_t)t->fn ^ (uint64_t)(uintptr_t)t) * 0x9e3779b97f4a7c15ull) ^
               k->seal_key;
}

/* io.c */
void pipe_want(struct vk_proc *p, struct vk_pipe *x);
/* Lazy flush of the thread's output before it waits (never blocks). */
void flush_before_wait(struct vk_thread *that);
int pipe_init_fd(struct vk_proc *p, struct vk_pipe *x, int fd, int output, size_t ring_size);
ssize_t pipe_drain(struct vk_proc *p, struct vk_pipe *x);

/* isolate.c: protection changes around a dispatch. */
/* Maps the kernel arena of *len bytes (rounded up); with *huge set, on
 * transparent huge pages if the system has them (*huge says if it asked).
 * NULL and errno on failure. */
char *isolate_arena_map(size_t *len, int *huge);
/* Transparent huge pages are on here (and VKD_HUGE_PAGES is not 0). */
int isolate_thp_available(void);
int isolate_init(struct vk_kernel *k);
/* Before kp's dispatch: its heap accessible, the one open before protected. */
void isolate_switch(struct vk_kernel *k, struct kproc *kp);
void isolate_open(struct vk_kernel *k, struct kproc *kp);  /* a kernel visit: heap accessible */
void isolate_close(struct vk_kernel *k, struct kproc *kp); /* ... and protected again */
void isolate_enter(struct vk_kernel *k, struct kproc *kp); /* kernel read-only if unprivileged */
void isolate_leave(struct vk_kernel *k, struct kproc *kp); /* kernel writable again */

/* fault.c: hardware faults and runaway loops inside a dispatch. */
struct fault_info {
        int code;        /* EFAULT, ETIME */
        uint8_t corrupt; /* a trust check failed (no address) */
        uintptr_t addr;  /* the faulting address, 0 none */
        uintptr_t pc;    /* the faulting instruction, 0 unknown */
        char msg[64];
};
int fault_init(struct vk_kernel *k);
void fault_fini(struct vk_kernel *k);
/*
 * The kernel's per-thread state (one kernel per OS thread). Initial-exec:
 * the library is built position-independent, and the default model for
 * that has every access call __tls_get_addr, which the linker relaxes in an
 * executable but only after the compiler saved registers around the call it
 * assumed: four pushes and pops on each vk_malloc, say.
 */
#define KERN_TLS __thread __attribute__((tls_model("initial-exec")))
/* The jump target a fault returns to: set by dispatch with sigsetjmp. */
#include <setjmp.h>
extern KERN_TLS sigjmp_buf fault_jmp;
extern KERN_TLS struct fault_info fault_last;
extern KERN_TLS volatile unsigned long fault_dispatch_seq;
extern KERN_TLS struct vk_thread *volatile fault_thread;
extern KERN_TLS volatile int fault_in_dispatch;
/* The protection keys of this thread's kernels (bit n: key n). A signal
 * handler runs with the system's default rights, which deny them: kernel code
 * a handler reaches opens them first (fault_rights_open). */
extern KERN_TLS unsigned fault_pkeys;
unsigned long fault_rights_open(void);
void fault_rights_restore(unsigned long saved);

/* A process's id, from kernel memory only. */
static inline uint64_t kproc_pid(const struct kproc *kp)
{
        return ((uint64_t)kp->gen << 24) | kp->slot;
}

/* The monotonic clock in nanoseconds. */
static inline uint64_t kern_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* sched.c */
/* Queues kp to be dispatched (once: a queued process stays where it is). */
void proc_ready(struct vk_kernel *k, struct kproc *kp);

/* proc.c */
/* 0 if fd fits the descriptor table, else -EMFILE. */
int kfd_reserve(struct vk_kernel *k, int fd);
/* Forgets fd in the poller and the table, and closes it (-1: nothing). */
void kfd_close(struct vk_kernel *k, int fd);
void kfd_bind(struct vk_kernel *k, int fd, struct kproc *kp, struct vk_pipe *rx,
              struct vk_pipe *tx);
int64_t proc_spawn(struct vk_kernel *k, vk_thread_fn *fn, const void *arg, size_t arglen, int fd_in,
                   int fd_out, enum vk_isolation isolation);
void proc_birth(struct vk_kernel *k, struct kproc *kp);
/* Ends a process: `fault` says why a fault or runaway ended it, else NULL. */
void proc_exit(struct vk_kernel *k, struct kproc *kp, const struct fault_info *fault);
void proc_bind_sockets(struct vk_kernel *k, struct kproc *kp);
/* Ends a process the kernel's idle limit caught (ETIMEDOUT). */
void proc_reap(struct vk_kernel *k, struct kproc *kp);
/* The live process with this id, or NULL. */
struct kproc *proc_lookup(struct vk_kernel *k, uint64_t pid);

/* timer.c */
void timer_remove(struct vk_kernel *k, struct kproc *kp);
/* After a dispatch in which deadlines changed. */
void timers_update(struct vk_kernel *k, struct kproc *kp);
/* Queues every process whose entry is due; ends those idle past the limit. */
void timers_expire(struct vk_kernel *k);
void timers_limit(struct vk_kernel *k, struct kproc *kp);

/* idle.c */
/* With the heap open: copies a hibernated front back to dst (NULL: the
 * process ends, only the stored copy goes). */
void idle_wake(struct vk_kernel *k, struct kproc *kp, void *dst);
void idle_remove(struct vk_kernel *k, struct kproc *kp);
void idle_note(struct vk_kernel *k, struct kproc *kp);
/* Before the worker sleeps: hibernates what idled long enough. */
void idle_trim(struct vk_kernel *k);

/* mail.c */
void mail_out(struct vk_kernel *k, struct kproc *kp); /* after a dispatch */
void mail_in(struct kproc *kp);                       /* before one */

/* listen.c */
/* After a poll round that filled its batch: the listeners' edges may be
 * queued behind the events not yet reported, so each is tried at once. */
void listen_try_all(struct vk_kernel *k);
void listen_accept(struct vk_kernel *k);
void listen_close_all(struct vk_kernel *k);
/* At stop: with close_listeners_on_stop, accepts what the queues hold and
 * closes the listeners; either way the kernel forgets them. */
void listen_stop_all(struct vk_kernel *k);

/* trust.c: the trust boundary (see there). */
struct kern_for {
        struct vk_kernel *k;
        struct kproc *kp; /* NULL: no process (a unit test's bare heap): trust */
        uintptr_t lo;     /* its heap: [lo, lo + len); with no process, 0 and SIZE_MAX */
        size_t len;
        unsigned max_threads; /* more than its heap can hold: a walk this long has a cycle */
        const char *corrupt;  /* a record the allocator refused: the dispatch ends kp for it */
};
extern KERN_TLS struct kern_for kern_for;
/* Acts for kp from here: set only where a fault_jmp target ends kp. */
void kern_act_for(struct vk_kernel *k, struct kproc *kp);
static inline void kern_act_done(void)
{
        kern_for.kp = NULL;
        kern_for.lo = 0;
        kern_for.len = SIZE_MAX;
}
/* Ends the process the kernel acts for as a contained fault. */
__attribute__((noreturn, cold)) void trust_fail(const char *what);
/* Ends it for a record the allocator refused (heap.c), if there was one. */
static inline void trust_settle(void)
{
        if (__builtin_expect(kern_for.corrupt != NULL, 0))
                trust_fail(kern_for.corrupt);
}
static inline int trust_holds(const void *ptr, size_t n)
{
        uintptr_t off = (uintptr_t)ptr - kern_for.lo;
        return off <= kern_for.len && n <= kern_for.len - off;
}
/* Each returns its argument (NULL passes) or ends the process. Inline: the
 * ops check their pipes on every call, and the checks are a few compares. */
#define TRUST_LIKELY(x) __builtin_expect(!!(x), 1)
static inline void *trust_rec(const void *ptr, size_t n, const char *what)
{
        if (ptr && !TRUST_LIKELY(!((uintptr_t)ptr & 7) && trust_holds(ptr, n)))
                trust_fail(what);
        return (void *)ptr;
}
static inline struct vk_thread *trust_thread(struct vk_thread *t)
{
        return trust_rec(t, sizeof *t, "thread pointer");
}
static inline struct vk_ring *trust_ring(struct vk_ring *r)
{
        if (!r || !kern_for.kp)
                return r;
        uint32_t size = r->size;
        if (!TRUST_LIKELY(!(size & (size - 1)) && r->tail - r->head <= size &&
                          (size ? trust_holds(r->buf, size) : r->tail == r->head)))
                trust_fail("ring");
        return r;
}
/* fd is -1 or the process's (strict), or nobody's (not strict): a socket
 * the process opened in this dispatch, bound after it. */
static inline int trust_fd(int fd, int strict)
{
        const struct vk_kernel *k = kern_for.k;
        if (!kern_for.kp || fd == -1)
                return fd;
        if (!TRUST_LIKELY(fd >= 0 && fd < k->nfds))
                trust_fail("descriptor number");
        const struct kfd *f = &k->fds[fd];
        if (TRUST_LIKELY(f->proc == kern_for.kp))
                return fd;
        if (strict || f->proc || f->server || f->kernel)
                trust_fail("descriptor number");
        return fd;
}
static inline struct vk_pipe *trust_pipe(struct vk_pipe *x)
{
        if (!x || !kern_for.kp)
                return x;
        trust_rec(x, sizeof *x, "pipe pointer");
        trust_ring(&x->ring);
        trust_fd(x->fd, 0);
        return x;
}
static inline struct vk_socket *trust_socket(struct vk_socket *s)
{
        if (!s || !kern_for.kp)
                return s;
        trust_rec(s, sizeof *s, "socket pointer");
        trust_pipe(&s->rx);
        trust_pipe(&s->tx);
        return s;
}
static inline void trust_mailbox(struct vk_ring *r)
{
        trust_rec(r, sizeof *r, "mailbox pointer");
        trust_ring(r);
}
/* A step of a list walk: the record checked, and the walk bounded by what
 * the list can hold (a longer one has a cycle); *n counts the steps, from 0. */
static inline struct vk_socket *trust_next_socket(struct vk_socket *s, unsigned *n)
{
        if (s && kern_for.kp && ++*n > VK_SOCKETS_MAX + 1)
                trust_fail("list of sockets");
        return trust_socket(s);
}
#define TRUST_THREADS "list of threads" /* what a bad walk of p->threads says */
static inline struct vk_thread *trust_next_thread(struct vk_thread *t, unsigned *n,
                                                  const char *what)
{
        if (t && kern_for.kp && ++*n > kern_for.max_threads)
                trust_fail(what);
        return trust_thread(t);
}

/* The process a thread belongs to and its kernel: the kernel's own records
 * while it acts for one, never the heap's copies. */
static inline struct vk_proc *kern_proc(const struct vk_thread *t)
{
        return kern_for.kp ? (struct vk_proc *)kern_for.lo : t->proc;
}
static inline struct vk_kernel *proc_kernel(const struct vk_proc *p)
{
        return kern_for.kp ? kern_for.k : p->kernel;
}

#endif

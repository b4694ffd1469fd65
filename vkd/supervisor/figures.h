/*
 * Live figures of the services, shared between the workers and the supervisor without locks.
 * The supervisor maps one region per configuration generation (MAP_SHARED | MAP_ANONYMOUS)
 * before it forks that generation's workers; each worker owns one slot and is its only writer,
 * publishing a copy of its kernel's counters from the kernel's tick hook. The supervisor only
 * reads, under a per-slot sequence counter (a seqlock: odd while a write is in progress), so it
 * never sums a torn slot and never waits for a worker. Slots are page-aligned so that a worker
 * can unmap everything but its own slot right after fork(): service code cannot touch another
 * worker's figures. What a slot says is still untrusted input to the supervisor (a worker runs
 * module code); readers bound every string they take from it.
 *
 * When a worker exits, its last figures are folded into a per-service book kept by the
 * supervisor (by service name, across restarts and reloads), and its slot is cleared for the
 * next worker, so no count is lost but the ones since its last tick.
 */
#ifndef VKD_SUPERVISOR_FIGURES_H
#define VKD_SUPERVISOR_FIGURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vk/vk.h>

#define FIG_TICK_MS 200 /* how often a worker publishes */
#define FIG_NAME_MAX 64
#define FIG_VERSION_MAX 32

/* Counters, in the order the control protocol lists them. */
enum fig_counter {
        FIG_ACCEPTED,      /* connections accepted (processes spawned) */
        FIG_ACTIVE,        /* connections open now (not summed into the book) */
        FIG_CLOSED,        /* connections ended */
        FIG_REQUESTS,      /* vk_request_done() calls */
        FIG_BYTES_IN,      /* read from connections */
        FIG_BYTES_OUT,     /* written to connections */
        FIG_ERRORS,        /* connections ended by an uncaught error (faults included) */
        FIG_FAULTS,        /* ended by SIGSEGV, SIGBUS, SIGFPE or SIGILL */
        FIG_CPU_KILLS,     /* ended for overrunning their CPU budget */
        FIG_NOMEM,         /* ended because their heap was exhausted */
        FIG_TIMEOUTS,      /* ended by ETIMEDOUT (IdleTimeoutSec= included) */
        FIG_SERVICE_PROCS, /* the module's own service processes running now (not summed) */
        FIG_SERVICE_ENDS,  /* service processes that ended unasked (each restarts its worker) */
        FIG_PROTECTS,      /* memory protection changes (system calls in mprotect mode) */
        FIG_N_COUNTERS,
};

/* The names of the counters as the control protocol spells them. */
extern const char *const fig_counter_names[FIG_N_COUNTERS];

/* A gauge says what is now (open connections, running service processes): the book of a
 * service keeps no gauge of a worker that is gone. */
static inline bool fig_is_gauge(int i)
{
        return i == FIG_ACTIVE || i == FIG_SERVICE_PROCS;
}

struct fig_values {
        uint64_t c[FIG_N_COUNTERS];
        /* Requests by latency: bucket 0 under 1 us, bucket i in [2^(i-1), 2^i) us. */
        uint64_t latency[VK_LATENCY_BUCKETS];
        uint64_t latency_sum_us; /* the sum of the latencies counted in latency[] */
};

/* One worker's figures. Written by the worker only, with fig_publish(). */
struct fig_slot {
        uint32_t seq;       /* odd while a write is in progress */
        uint32_t published; /* set by the first publish */
        struct fig_values v;
        char module_name[FIG_NAME_MAX];
        char module_version[FIG_VERSION_MAX];
};

struct fig_region;

/*
 * Maps a region of n zeroed slots, shared with every process forked afterwards. Returns 0 and
 * *ret, or -errno. Registered so that fig_child_keep() can unmap it in a child.
 */
int fig_region_new(size_t n, struct fig_region **ret);

/* Unmaps a region. Accepts NULL; returns NULL. */
struct fig_region *fig_region_free(struct fig_region *r);

/* Slot i (< n) of r. */
struct fig_slot *fig_region_slot(struct fig_region *r, size_t i);

/*
 * In a child right after fork(): unmaps every region except the page(s) of keep (which may be
 * NULL: unmap everything), so the child can write its own slot and nothing else.
 */
void fig_child_keep(struct fig_slot *keep);

/* Worker side: stores v in s (sequence counter odd, data, even). Never blocks or allocates. */
void fig_publish(struct fig_slot *s, const struct fig_values *v);

/* Worker side: the module's name and version (truncated to fit), once before the first publish. */
void fig_set_module(struct fig_slot *s, const char *name, const char *version);

/*
 * Supervisor side: copies the figures of s into *ret. Returns true for a consistent copy, false
 * when the writer kept the slot busy through every retry (a worker killed while it wrote: the
 * copy is then taken anyway; each counter is still a value it once had).
 */
bool fig_read(const struct fig_slot *s, struct fig_values *ret);

/* Supervisor side: the module name and version, NUL-terminated and printable, into buffers of
 * FIG_NAME_MAX and FIG_VERSION_MAX bytes. Empty when the worker did not set them (yet). */
void fig_read_module(const struct fig_slot *s, char *name, char *version);

/* Clears a slot for the next worker (supervisor side, while no process writes it). */
void fig_clear(struct fig_slot *s);

/* sum += v; with_gauges false leaves sum's gauges alone (a dead worker has none). */
void fig_add(struct fig_values *sum, const struct fig_values *v, bool with_gauges);

/* The latency (microseconds, an upper bound at bucket resolution) below which a fraction q of
 * the requests in v finished; 0 when none was counted. */
uint64_t fig_latency_quantile_us(const struct fig_values *v, double q);

/*
 * The supervisor's book of figures of workers that are gone, by service name. Owned by the
 * caller; zero-initialize.
 */
struct fig_book_entry {
        char *name;
        struct fig_values v;
};

struct fig_book {
        struct fig_book_entry *items;
        size_t n;
};

/* Adds v (without FIG_ACTIVE) to the entry of name, creating it. Returns 0 or -ENOMEM. */
int fig_book_add(struct fig_book *b, const char *name, const struct fig_values *v);

/* The entry of name, or NULL. */
const struct fig_values *fig_book_get(const struct fig_book *b, const char *name);

/* Frees every entry. Accepts NULL. */
void fig_book_done(struct fig_book *b);

#endif

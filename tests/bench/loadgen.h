/*
 * A client-side engine for many concurrent TCP connections, shared by
 * echo_stress and echo_bench. It opens nconns nonblocking connections to one
 * address (at most max_connecting handshakes in flight, so a burst of
 * thousands does not overflow the server's backlog), retries the ones refused
 * or dropped with exponential back-off, and drives every established one
 * through the caller's callbacks from a single edge-triggered epoll loop that
 * never runs past a deadline. The engine knows nothing about what is sent.
 *
 * Each connection is busy (connecting or open) until a callback parks it
 * (kept open, no longer waited for) or closes it; load_run() returns when no
 * connection is busy.
 */
#ifndef VKD_TESTS_LOADGEN_H
#define VKD_TESTS_LOADGEN_H

#include "bench.h"

#include <stdint.h>

enum load_state {
        LOAD_NEW,        /* not started yet */
        LOAD_BACKOFF,    /* refused: waiting for retry_at */
        LOAD_CONNECTING, /* handshake in flight */
        LOAD_OPEN,       /* established; callbacks drive it */
        LOAD_PARKED,     /* established, held open, not waited for */
        LOAD_CLOSED,
};

/* What a callback returns; a negative value instead stops load_run() with it. */
enum {
        LOAD_CONTINUE = 0, /* keep going; events will come */
        LOAD_CLOSE = 1,    /* done: close it */
        LOAD_PARK = 2,     /* done: keep it open but stop waiting for it */
};

struct load_conn {
        int fd;
        uint32_t id; /* index in load.conns, for the caller's own per-connection state */
        uint8_t state;
        bool hup;          /* a parked connection saw its peer hang up or fail */
        uint16_t attempts; /* connect attempts so far */
        int64_t retry_at;  /* LOAD_BACKOFF: when to try again (bench_now_ns) */
};

struct load;

struct load_ops {
        /*
         * The connection is established. May be NULL. Returning LOAD_CONTINUE
         * is followed at once by io(EPOLLIN | EPOLLOUT): the edge that reported
         * the handshake is spent.
         */
        int (*connected)(struct load *l, struct load_conn *c);
        /*
         * Epoll events for an open connection. Under edge triggering it must
         * read until EAGAIN, or stop only when no unread byte can be waiting
         * (e.g. nothing is in flight) or after load_rearm(); likewise for
         * writes.
         */
        int (*io)(struct load *l, struct load_conn *c, uint32_t events);
};

struct load {
        struct bench_addr addr;
        const struct load_ops *ops;
        void *user; /* for the callbacks */
        struct load_conn *conns;
        uint32_t nconns;
        uint32_t max_connecting; /* handshakes in flight at most (default 256) */
        uint32_t max_attempts;   /* per connection (default 10: ~3 s of back-off) */
        uint32_t next;           /* first connection never started */
        uint32_t connecting;     /* in LOAD_CONNECTING */
        uint32_t backoff;        /* in LOAD_BACKOFF */
        uint32_t busy;           /* not parked or closed */
        int64_t next_retry;      /* earliest retry_at, when backoff > 0 */
        uint64_t retries;        /* connect attempts that were refused and retried */
        int epfd;
};

/*
 * Prepares nconns connections to addr; nothing is opened until load_run().
 * Returns 0 or -errno (the caller should still call load_fini()).
 */
int load_init(struct load *l, const struct bench_addr *addr, uint32_t nconns,
              const struct load_ops *ops, void *user);

/*
 * Runs until no connection is busy (returns 0), the deadline (bench_now_ns)
 * passes (-ETIMEDOUT), a callback returns a negative value (that value), or
 * something else fails, such as a connection that cannot be established
 * (-errno, after printing to stderr which connection and why: these are test
 * tools, and the engine is the one that knows).
 */
int load_run(struct load *l, int64_t deadline_ns);

/*
 * Makes a parked connection busy again and calls io(EPOLLIN | EPOLLOUT) on it,
 * so it can start its next exchange. Returns what handling that call gave:
 * 0 or a negative callback value.
 */
int load_unpark(struct load *l, struct load_conn *c);

/*
 * For a callback that stops before EAGAIN to let other connections run:
 * re-polls c so that, if it is still readable or writable, the next wait
 * reports it again (an edge-triggered EPOLL_CTL_MOD does exactly that).
 */
void load_rearm(struct load *l, const struct load_conn *c);

/* Closes every connection and frees everything; safe on a zeroed struct. */
void load_fini(struct load *l);

#endif

/*
 * The redis service's keyspace and the commands that run against it, with no
 * dependency on the vkd kernel: the store process calls rdb_exec() for each
 * command a connection sent, the unit tests call it directly. Memory comes
 * from malloc (jemalloc in the daemon) and is counted, for MaxMemory= and
 * INFO. Everything here is single-threaded: one store owns one rdb.
 */
#ifndef VKD_SERVICES_REDIS_DB_H
#define VKD_SERVICES_REDIS_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resp.h"

/* A growing output buffer (malloc'd). */
struct rbuf {
        char *p;
        size_t len, cap;
        bool failed; /* a reserve failed: something meant for it is missing */
};
/* Makes room for `more` bytes after len. Returns 0, or -ENOMEM and sets
 * `failed`, leaving the buffer as it was. */
int rbuf_reserve(struct rbuf *b, size_t more);
/* Frees the bytes and empties b (failed cleared). */
void rbuf_free(struct rbuf *b);

/* A key (or field, or member) and its value. The key bytes follow. */
struct dent {
        struct dent *next;
        char *val;      /* RT_STRING: the bytes; else the object */
        int64_t expire; /* unix ms; 0: none (keyspace entries only) */
        uint32_t vlen;
        uint32_t klen;
        uint8_t type;
        char key[];
};

enum {
        RT_STRING = 1,
        RT_LIST,
        RT_HASH,
        RT_SET,
        RT_ZSET,
        RT_KEYSPACE /* a flushed one, being freed */
};

/* A hash table with incremental rehashing: each operation moves a bucket
 * from the old table to the new one, so growth never stalls a command. */
struct dict {
        struct dent **t[2];
        size_t size[2]; /* power of two, or 0 */
        size_t used[2];
        long rehash; /* next bucket of t[0] to move; -1: not rehashing */
};

struct rdb_config {
        uint64_t maxmemory; /* 0: no limit */
        long long max_bulk; /* longest string a command may build */
        unsigned databases; /* SELECT accepts [0, databases) but only 0 holds data */
        bool appendonly;
        /* How long a command runs before it pauses (RDB_MORE), so that a
         * dispatch never nears the kernel's CPU budget; 0: 2000 us. */
        unsigned slice_us;
};

/* Slots for INFO commandstats (commands and the subcommands counted apart)
 * and for errorstats (error codes: ERR, WRONGTYPE, ...). */
#define RDB_CMDSTATS 160
#define RDB_ERRSTATS 16

struct rcmdstat {
        uint64_t calls, usec, rejected, failed;
};

struct rerrstat {
        char code[24];
        uint64_t count;
};

struct rdb_stats {
        uint64_t commands, connections, expired, hits, misses, rejected_oom;
        uint64_t net_in, net_out, error_replies;
        struct rcmdstat cmd[RDB_CMDSTATS];
        struct rerrstat err[RDB_ERRSTATS]; /* by code, in order; "" past the last */
};

/* One client as the store sees it. */
struct rclient {
        uint64_t id;
        int proto; /* 2 or 3 */
        char *name;
        uint64_t pid; /* the connection process */
        struct rbuf out;
        struct rclient *next; /* in the store's client table */
        size_t sent_to;       /* bytes of out already sent (the store's) */
        /* a command too large for one message, assembled and parsed here */
        struct rbuf big;
        struct resp_parser *big_parser;
        struct resp_arg *big_argv;
        size_t big_cap, big_argc;
        char *big_scratch;
        uint32_t flags; /* RC_* */
        /* MULTI: the commands queued (multi.c); WATCH: the keys watched, in
         * the watch table of wdb */
        struct rmulti *multi;
        struct rwatchkey **watched;
        size_t nwatched;
        struct rdb *wdb;
};

#define RC_CLOSING 0x1     /* QUIT ran: later commands are dropped */
#define RC_BATCH_DONE 0x2  /* every command of the batch ran */
#define RC_AWAITING 0x4    /* a part of a long reply is out: wait for 'N' */
#define RC_MULTI 0x8       /* in MULTI: commands are queued */
#define RC_DIRTY_EXEC 0x10 /* a command was refused while queueing: EXEC aborts */
#define RC_DIRTY_CAS 0x20  /* a watched key changed: EXEC answers null */

struct rcmd;

/* A command cut into slices: what rdb_resume() needs to go on with it. */
struct rjob {
        bool active;
        struct rclient *c;
        const struct resp_arg *argv;
        size_t argc;
        struct rbuf *out;
        const struct rcmd *cmd;
        size_t out_start; /* where its reply begins in out */
        uint64_t dirty;   /* db->dirty before it ran */
        uint64_t errors;  /* st.error_replies before it ran */
        uint64_t usec;    /* time it ran, slices added up */
        int stat;         /* its st.cmd slot, -1: none */
        int64_t now;      /* its time, the same in every slice */
        /* the command's own progress */
        size_t pos;      /* the argument, bucket or cursor to go on from */
        size_t left;     /* what it may still do (SCAN's visits, LPOP's pops) */
        long long n;     /* what it counted so far */
        int phase;       /* for those that make two passes */
        struct rbuf acc; /* replies held back until their count is known */
        /* what it builds across slices (a zset being stored), freed with
         * scratch_free if it ends without taking it back */
        void *scratch;
        void (*scratch_free)(void *);
};

struct rdb {
        struct dict keys;
        size_t nexpires; /* keys with a time to live */
        struct rdb_config cfg;
        struct rdb_stats st;
        uint64_t dirty; /* changes since start: a write command propagates if it moved */
        uint64_t next_client_id;
        size_t clients;
        int64_t started_ms;
        /* The store's, for INFO persistence. */
        uint64_t aof_size, aof_base_size;
        bool aof_write_failed;
        char run_id[41], replid[41];
        unsigned long scan_cursor; /* active expiry's place in the table */
        /* Filled by a command that must be logged differently from how it was
         * sent (relative expiry times become absolute). */
        struct rbuf prop;
        size_t prop_argc;
        struct rjob job;
        /* Values too large to free inside a command (over 64 elements, or a
         * whole flushed keyspace), linked by next, freed by rdb_lazyfree();
         * garbage_pos is where freeing the first one stands. */
        struct dent *garbage;
        size_t garbage_pos, garbage_len;
        uint64_t lazyfreed;
        /* Set by a command that ran out of memory half-way: only argv[0..log_argc)
         * took effect (0: all of it). */
        size_t log_argc;
        /* Set by EXEC: its writes as AOF records, MULTI ... EXEC, to log instead
         * of the command (failed: they could not all be had, none is logged). */
        struct rbuf txlog;
        /* WATCH: each watched key's clients (multi.c) */
        struct dict watch;
};

/* What a command that runs out of memory answers (Redis's maxmemory refusal). */
#define RDB_E_OOM "-OOM command not allowed when used memory > 'maxmemory'."

/* Flags rdb_exec() returns. */
#define RDB_CLOSE 0x1 /* QUIT: close the connection after the reply */
#define RDB_WRITE 0x2 /* changed the keyspace: log it (prop holds it if prop_argc) */
#define RDB_MORE 0x4  /* paused after a slice: rdb_resume() goes on, nothing else may run */

void rdb_init(struct rdb *db, const struct rdb_config *cfg);
void rdb_free(struct rdb *db);

/* Runs one command for client c, appending the reply (in c->proto) to out.
 * Returns RDB_* flags. Never fails: errors are replies, out of memory
 * included (-OOM; RDB_CLOSE when not even that fits in out). */
int rdb_exec(struct rdb *db, struct rclient *c, const struct resp_arg *argv, size_t argc,
             struct rbuf *out);

/* Runs the next slice of the command that returned RDB_MORE, whose
 * arguments and output must still be where they were. Returns what
 * rdb_exec() would have (RDB_MORE again while it is not done). */
int rdb_resume(struct rdb *db);

/* Whether a command is paused between slices. */
bool rdb_busy(const struct rdb *db);

/* Frees large values that wait (garbage) for about budget_us microseconds.
 * Returns whether some still wait. */
bool rdb_lazyfree(struct rdb *db, unsigned budget_us);

/* Active expiry: examines keys for about budget_us microseconds, deleting
 * those whose time passed. Returns how many it deleted. */
size_t rdb_active_expire(struct rdb *db, unsigned budget_us);

/* Bytes malloc'd for the keyspace and buffers (malloc_usable_size), and
 * the most there ever were. */
uint64_t rdb_used_memory(void);
uint64_t rdb_peak_memory(void);

/* Unix time in milliseconds. */
int64_t rdb_mstime(void);

/* A monotonic clock in microseconds. */
uint64_t rdb_monotonic_us(void);

/* A client's resources (not the struct itself): its name, output, queued
 * commands and watched keys. */
void rclient_release(struct rclient *c);

/* Whether c is in MULTI (its commands are queued, not run). */
bool rclient_in_multi(const struct rclient *c);

/* Appends argv as a RESP multibulk to b (the AOF record format): 0, or
 * -ENOMEM with b unchanged. It never needs more room than
 * rdb_multibulk_size() says. */
int rdb_append_multibulk(struct rbuf *b, const struct resp_arg *argv, size_t argc);
size_t rdb_multibulk_size(const struct resp_arg *argv, size_t argc);

#endif

/*
 * What the command files share (db.c: the keyspace and its commands;
 * reply.c: replies, arguments and slices; commands.c: the command table and
 * the entry points; server_cmds.c; t_string.c, t_list.c, t_hash.c, t_set.c:
 * a file per type, as Redis has them). Not for the kernel side of the service.
 */
#ifndef VKD_SERVICES_REDIS_CMD_INT_H
#define VKD_SERVICES_REDIS_CMD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db_int.h"

#define VERSION "7.0.15"

/* Error replies, as Redis 7.0 words them. */
#define E_WRONGTYPE "-WRONGTYPE Operation against a key holding the wrong kind of value"
#define E_NOTINT "value is not an integer or out of range"
#define E_SYNTAX "syntax error"
#define E_NOFLOAT "value is not a valid float"
#define E_OVERFLOW "increment or decrement would overflow"
#define E_NOKEY "no such key"
#define E_OOM RDB_E_OOM
#define E_TOOBIG "string exceeds maximum allowed size (proto-max-bulk-len)"
#define E_POSITIVE "value is out of range, must be positive"

/* One command being run. */
struct ctx {
        struct rdb *db;
        struct rclient *c;
        const struct resp_arg *argv;
        size_t argc;
        struct rbuf *o;
        int64_t now;
        int flags;
        const struct rcmd *cmd;
        /* An allocation failed: the reply becomes -OOM. A command that takes
         * many elements may have applied argv[0..applied) (then logged as
         * such); otherwise it changed nothing. */
        bool oom;
        size_t applied;
        /* Slices (see slice_pause): where the command stands between them. */
        struct rjob *job;
        bool rejected; /* refused before it ran (a subcommand's arity), for INFO */
        bool resumed;  /* this is a later slice: job holds the progress */
        bool paused;
        unsigned steps;
        uint64_t t0;
};

typedef void cmd_fn(struct ctx *x);

struct rcmd {
        const char *name;
        int arity; /* Redis's: n exactly, -n at least n */
        unsigned flags;
        cmd_fn *fn;
};
#define F_WRITE 0x1
#define F_DENYOOM 0x2
#define F_READONLY 0x4
#define F_FAST 0x8
#define F_SUBCMDS 0x10 /* its subcommands are counted apart (INFO commandstats) */
#define F_NOQUEUE 0x20 /* runs at once in MULTI (MULTI, EXEC, DISCARD, WATCH, QUIT) */

/* Appends a reply of at most maxlen bytes; without room, nothing (the
 * buffer's `failed` tells rdb_exec). */
#define ADD(o, maxlen, call)                               \
        do {                                               \
                if (rbuf_reserve((o), (maxlen)) == 0) {    \
                        char *out_ = (o)->p + (o)->len;    \
                        size_t cap_ = (o)->cap - (o)->len; \
                        (void)out_;                        \
                        (void)cap_;                        \
                        (o)->len += call;                  \
                }                                          \
        } while (0)

struct relem {
        uint32_t len;
        char d[];
};

struct rlist {
        struct relem **a;
        size_t head, len, cap; /* cap a power of two */
};

enum { WANT_KEYS = 1, WANT_VALS = 2 };

/* Replies, arguments and slices (reply.c). */
void r_oom(struct ctx *x);
void r_oom_at(struct ctx *x, size_t applied);
bool slice_pause(struct ctx *x, size_t pos);
size_t slice_resume_at(struct ctx *x, size_t first);
void slice_next_phase(struct ctx *x);
void r_simple(struct ctx *x, const char *s);
void r_ok(struct ctx *x);
void r_error(struct ctx *x, const char *msg, size_t n);
void r_err(struct ctx *x, const char *msg);
void r_errf(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void r_int(struct ctx *x, long long v);
void r_bulk(struct ctx *x, const char *s, size_t n);
void r_bulk_str(struct ctx *x, const char *s);
void r_bulk_ll(struct ctx *x, long long v);
void r_null(struct ctx *x);
void r_null_array(struct ctx *x);
void r_array(struct ctx *x, size_t n);
void r_map(struct ctx *x, size_t n);
void r_set(struct ctx *x, size_t n);
void r_verbatim(struct ctx *x, const char *s, size_t n);
void r_arity(struct ctx *x, const char *name);
bool arg_is(const struct resp_arg *a, const char *s);
int arg_ll(struct ctx *x, const struct resp_arg *a, long long *ret, const char *msg);

/* Objects, the keyspace, propagation and the keyspace commands (db.c). */
struct dent *dent_new(const char *k, size_t n);
char *db_bytes_dup(const char *s, size_t n);
struct relem *relem_new(const char *s, size_t n);
void field_free(struct dent *e, void *arg);
void db_drop_value(struct rdb *db, struct dent *e);
void db_free_key(struct rdb *db, struct dent *e);
void db_free_key_cb(struct dent *e, void *arg);
void db_delete(struct rdb *db, const char *k, size_t n);
struct dent *db_lookup(struct ctx *x, const struct resp_arg *k);
struct dent *db_lookup_read(struct ctx *x, const struct resp_arg *k);
struct dent *db_lookup_type(struct ctx *x, const struct resp_arg *k, int t, bool *bad);
void db_set_expire(struct rdb *db, struct dent *e, int64_t when);
struct dent *db_add(struct rdb *db, struct dent *e);
struct dent *db_new_key(struct ctx *x, const struct resp_arg *k, int type);
void db_drop_if_empty(struct ctx *x, struct dent *e);
void prop_begin(struct ctx *x);
bool prop_failed(struct ctx *x);
void prop_arg(struct ctx *x, const char *s, size_t n);
void prop_ll(struct ctx *x, long long v);
void cmd_del(struct ctx *x);
void cmd_exists(struct ctx *x);
void cmd_type(struct ctx *x);
void cmd_keys(struct ctx *x);
void cmd_scan(struct ctx *x);
void cmd_rename(struct ctx *x);
void cmd_renamenx(struct ctx *x);
void cmd_expiretime(struct ctx *x);
void cmd_pexpiretime(struct ctx *x);
void cmd_hstrlen(struct ctx *x);
void cmd_hsetnx(struct ctx *x);
void cmd_hincrbyfloat(struct ctx *x);
void cmd_smismember(struct ctx *x);
void cmd_smove(struct ctx *x);
void cmd_expire(struct ctx *x);
void cmd_pexpire(struct ctx *x);
void cmd_expireat(struct ctx *x);
void cmd_pexpireat(struct ctx *x);
void cmd_ttl(struct ctx *x);
void cmd_pttl(struct ctx *x);
void cmd_persist(struct ctx *x);
void cmd_dbsize(struct ctx *x);
void cmd_flush(struct ctx *x);

/* The command table (commands.c). */
const char *cmd_stat_name(size_t i);
size_t cmd_stat_slots(void);
const struct rcmd *const *cmd_all(size_t *n);

/* Connection and server commands (server_cmds.c). */
void cmd_ping(struct ctx *x);
void cmd_echo(struct ctx *x);
void cmd_quit(struct ctx *x);
void cmd_select(struct ctx *x);
void cmd_auth(struct ctx *x);
void cmd_hello(struct ctx *x);
void cmd_client(struct ctx *x);
void cmd_command(struct ctx *x);
void cmd_config(struct ctx *x);
void cmd_time(struct ctx *x);
void cmd_info(struct ctx *x);
const char *server_allocator(void);

/* Strings (t_string.c). */
void cmd_set(struct ctx *x);
void cmd_setnx(struct ctx *x);
void cmd_setex(struct ctx *x);
void cmd_psetex(struct ctx *x);
void cmd_get(struct ctx *x);
void cmd_getset(struct ctx *x);
void cmd_getdel(struct ctx *x);
void cmd_mget(struct ctx *x);
void cmd_mset(struct ctx *x);
void cmd_msetnx(struct ctx *x);
void cmd_append(struct ctx *x);
void cmd_strlen(struct ctx *x);
void cmd_incr(struct ctx *x);
void cmd_decr(struct ctx *x);
void cmd_incrby(struct ctx *x);
void cmd_decrby(struct ctx *x);
void cmd_incrbyfloat(struct ctx *x);
void cmd_getrange(struct ctx *x);
void cmd_setrange(struct ctx *x);

/* Lists (t_list.c). */
void cmd_lpush(struct ctx *x);
void cmd_rpush(struct ctx *x);
void cmd_lpop(struct ctx *x);
void cmd_rpop(struct ctx *x);
void cmd_llen(struct ctx *x);
void cmd_lrange(struct ctx *x);
void cmd_lindex(struct ctx *x);
void cmd_lpushx(struct ctx *x);
void cmd_rpushx(struct ctx *x);
void cmd_lset(struct ctx *x);
void cmd_lmove(struct ctx *x);
void cmd_rpoplpush(struct ctx *x);
void cmd_ltrim(struct ctx *x);
void cmd_linsert(struct ctx *x);
void cmd_lrem(struct ctx *x);
void cmd_lpos(struct ctx *x);
void collect_reply(struct ctx *x);

/* Hashes, and the field dicts sets share (t_hash.c). */
struct dict *fields_dict(struct dent *e);
int field_set(struct dict *d, const struct resp_arg *f, const struct resp_arg *v);
bool fields_set(struct ctx *x, struct dent *e, size_t first, bool values);
void cmd_hset(struct ctx *x);
void cmd_hget(struct ctx *x);
void cmd_hmget(struct ctx *x);
void fields_del(struct ctx *x, int type);
void fields_len(struct ctx *x, int type);
void fields_exists(struct ctx *x, int type);
void cmd_hdel(struct ctx *x);
void cmd_hlen(struct ctx *x);
void cmd_hexists(struct ctx *x);
void fields_walk(struct ctx *x, int type, int want);
void cmd_hgetall(struct ctx *x);
void cmd_hkeys(struct ctx *x);
void cmd_hvals(struct ctx *x);
void cmd_hincrby(struct ctx *x);

/* Sorted sets (t_zset.c): a skip list and a dict of members. zset_new()
 * returns an empty one, or NULL when out of memory; zset_free() frees it all
 * at once (a small one: large ones go through zset_free_step()). */
struct zset;
struct zset *zset_new(void);
size_t zset_len(const struct zset *zs);
void zset_free(struct zset *zs);
/* Frees a member of a zset being freed; false (tables freed, not the struct)
 * once none is left. The zset must not be used otherwise afterwards. */
bool zset_free_step(struct zset *zs);
void cmd_zadd(struct ctx *x);
void cmd_zincrby(struct ctx *x);
void cmd_zscore(struct ctx *x);
void cmd_zmscore(struct ctx *x);
void cmd_zcard(struct ctx *x);
void cmd_zcount(struct ctx *x);
void cmd_zlexcount(struct ctx *x);
void cmd_zrank(struct ctx *x);
void cmd_zrevrank(struct ctx *x);
void cmd_zrange(struct ctx *x);
void cmd_zrevrange(struct ctx *x);
void cmd_zrangebyscore(struct ctx *x);
void cmd_zrevrangebyscore(struct ctx *x);
void cmd_zrangebylex(struct ctx *x);
void cmd_zrevrangebylex(struct ctx *x);
void cmd_zrangestore(struct ctx *x);
void cmd_zrem(struct ctx *x);
void cmd_zremrangebyrank(struct ctx *x);
void cmd_zremrangebyscore(struct ctx *x);
void cmd_zremrangebylex(struct ctx *x);
void cmd_zpopmin(struct ctx *x);
void cmd_zpopmax(struct ctx *x);
void cmd_zrandmember(struct ctx *x);
void cmd_zscan(struct ctx *x);
void cmd_zunionstore(struct ctx *x);
void cmd_zinterstore(struct ctx *x);
void cmd_zdiffstore(struct ctx *x);

/* Transactions (multi.c). */
/* Marks the clients watching key k (or any key still in the keyspace, before
 * a flush, or the keys a command that wrote names) as to fail their EXEC. */
void watch_touch(struct rdb *db, const char *k, size_t n);
void watch_touch_flush(struct rdb *db);
void watch_touch_cmd(struct rdb *db, const char *name, const struct resp_arg *argv, size_t argc);
/* Frees the watch table (the clients' lists are theirs). */
void watch_release(struct rdb *db);
/* Drops c's queued commands and watched keys. */
void multi_release(struct rclient *c);
/* Queues x's command for c's EXEC, answering +QUEUED (or -OOM, which
 * flags the transaction). */
void multi_queue(struct ctx *x);
void cmd_multi(struct ctx *x);
void cmd_exec(struct ctx *x);
void cmd_discard(struct ctx *x);
void cmd_watch(struct ctx *x);
void cmd_unwatch(struct ctx *x);

/* Sets (t_set.c). */
void cmd_sadd(struct ctx *x);
void cmd_smembers(struct ctx *x);
void cmd_srem(struct ctx *x);
void cmd_scard(struct ctx *x);
void cmd_sismember(struct ctx *x);

#endif

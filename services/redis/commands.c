/*
 * The redis service's one command table, the lookup of a command by name, statistics slots, and
 * the entry points: rdb_init(), rdb_exec() and the slices of a command.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* The command table. */

#define W (F_WRITE | F_DENYOOM)
#define R F_READONLY
static const struct rcmd commands[] = {
        {"ping", -1, F_FAST, cmd_ping},
        {"echo", 2, F_FAST, cmd_echo},
        {"quit", -1, F_FAST | F_NOQUEUE, cmd_quit},
        {"select", 2, F_FAST, cmd_select},
        {"auth", -2, F_FAST, cmd_auth},
        {"hello", -1, F_FAST, cmd_hello},
        {"client", -2, F_SUBCMDS, cmd_client},
        {"command", -1, F_SUBCMDS, cmd_command},
        {"config", -2, F_SUBCMDS, cmd_config},
        {"info", -1, 0, cmd_info},
        {"dbsize", 1, R | F_FAST, cmd_dbsize},
        {"flushdb", -1, F_WRITE, cmd_flush},
        {"flushall", -1, F_WRITE, cmd_flush},
        {"time", 1, F_FAST, cmd_time},
        {"get", 2, R | F_FAST, cmd_get},
        {"set", -3, W, cmd_set},
        {"setnx", 3, W | F_FAST, cmd_setnx},
        {"setex", 4, W, cmd_setex},
        {"psetex", 4, W, cmd_psetex},
        {"getset", 3, W | F_FAST, cmd_getset},
        {"getdel", 2, F_WRITE | F_FAST, cmd_getdel},
        {"mget", -2, R | F_FAST, cmd_mget},
        {"mset", -3, W, cmd_mset},
        {"msetnx", -3, W, cmd_msetnx},
        {"append", 3, W | F_FAST, cmd_append},
        {"strlen", 2, R | F_FAST, cmd_strlen},
        {"incr", 2, W | F_FAST, cmd_incr},
        {"decr", 2, W | F_FAST, cmd_decr},
        {"incrby", 3, W | F_FAST, cmd_incrby},
        {"decrby", 3, W | F_FAST, cmd_decrby},
        {"incrbyfloat", 3, W | F_FAST, cmd_incrbyfloat},
        {"getrange", 4, R, cmd_getrange},
        {"setrange", 4, W, cmd_setrange},
        {"del", -2, F_WRITE, cmd_del},
        {"unlink", -2, F_WRITE | F_FAST, cmd_del},
        {"exists", -2, R | F_FAST, cmd_exists},
        {"touch", -2, R | F_FAST, cmd_exists},
        {"type", 2, R | F_FAST, cmd_type},
        {"keys", 2, R, cmd_keys},
        {"scan", -2, R, cmd_scan},
        {"rename", 3, F_WRITE, cmd_rename},
        {"renamenx", 3, F_WRITE | F_FAST, cmd_renamenx},
        {"expire", -3, F_WRITE | F_FAST, cmd_expire},
        {"pexpire", -3, F_WRITE | F_FAST, cmd_pexpire},
        {"expireat", -3, F_WRITE | F_FAST, cmd_expireat},
        {"pexpireat", -3, F_WRITE | F_FAST, cmd_pexpireat},
        {"ttl", 2, R | F_FAST, cmd_ttl},
        {"pttl", 2, R | F_FAST, cmd_pttl},
        {"expiretime", 2, R | F_FAST, cmd_expiretime},
        {"pexpiretime", 2, R | F_FAST, cmd_pexpiretime},
        {"persist", 2, F_WRITE | F_FAST, cmd_persist},
        {"hset", -4, W | F_FAST, cmd_hset},
        {"hmset", -4, W | F_FAST, cmd_hset},
        {"hget", 3, R | F_FAST, cmd_hget},
        {"hdel", -3, F_WRITE | F_FAST, cmd_hdel},
        {"hgetall", 2, R, cmd_hgetall},
        {"hlen", 2, R | F_FAST, cmd_hlen},
        {"hexists", 3, R | F_FAST, cmd_hexists},
        {"hstrlen", 3, R | F_FAST, cmd_hstrlen},
        {"hsetnx", 4, W | F_FAST, cmd_hsetnx},
        {"hincrbyfloat", 4, W | F_FAST, cmd_hincrbyfloat},
        {"hincrby", 4, W | F_FAST, cmd_hincrby},
        {"hkeys", 2, R, cmd_hkeys},
        {"hvals", 2, R, cmd_hvals},
        {"hmget", -3, R | F_FAST, cmd_hmget},
        {"lpush", -3, W | F_FAST, cmd_lpush},
        {"rpush", -3, W | F_FAST, cmd_rpush},
        {"lpop", -2, F_WRITE | F_FAST, cmd_lpop},
        {"rpop", -2, F_WRITE | F_FAST, cmd_rpop},
        {"llen", 2, R | F_FAST, cmd_llen},
        {"lrange", 4, R, cmd_lrange},
        {"lindex", 3, R, cmd_lindex},
        {"lpushx", -3, W | F_FAST, cmd_lpushx},
        {"rpushx", -3, W | F_FAST, cmd_rpushx},
        {"lset", 4, W, cmd_lset},
        {"lmove", 5, W, cmd_lmove},
        {"rpoplpush", 3, W, cmd_rpoplpush},
        {"ltrim", 4, F_WRITE, cmd_ltrim},
        {"linsert", 5, W, cmd_linsert},
        {"lrem", 4, F_WRITE, cmd_lrem},
        {"lpos", -3, R, cmd_lpos},
        {"sadd", -3, W | F_FAST, cmd_sadd},
        {"srem", -3, F_WRITE | F_FAST, cmd_srem},
        {"smismember", -3, R | F_FAST, cmd_smismember},
        {"smove", 4, F_WRITE | F_FAST, cmd_smove},
        {"smembers", 2, R, cmd_smembers},
        {"sismember", 3, R | F_FAST, cmd_sismember},
        {"scard", 2, R | F_FAST, cmd_scard},
        {"zadd", -4, W | F_FAST, cmd_zadd},
        {"zincrby", 4, W | F_FAST, cmd_zincrby},
        {"zrem", -3, F_WRITE | F_FAST, cmd_zrem},
        {"zremrangebyscore", 4, F_WRITE, cmd_zremrangebyscore},
        {"zremrangebyrank", 4, F_WRITE, cmd_zremrangebyrank},
        {"zremrangebylex", 4, F_WRITE, cmd_zremrangebylex},
        {"zunionstore", -4, W, cmd_zunionstore},
        {"zinterstore", -4, W, cmd_zinterstore},
        {"zdiffstore", -4, W, cmd_zdiffstore},
        {"zrange", -4, R, cmd_zrange},
        {"zrangestore", -5, W, cmd_zrangestore},
        {"zrangebyscore", -4, R, cmd_zrangebyscore},
        {"zrevrangebyscore", -4, R, cmd_zrevrangebyscore},
        {"zrangebylex", -4, R, cmd_zrangebylex},
        {"zrevrangebylex", -4, R, cmd_zrevrangebylex},
        {"zcount", 4, R | F_FAST, cmd_zcount},
        {"zlexcount", 4, R | F_FAST, cmd_zlexcount},
        {"zrevrange", -4, R, cmd_zrevrange},
        {"zcard", 2, R | F_FAST, cmd_zcard},
        {"zscore", 3, R | F_FAST, cmd_zscore},
        {"zmscore", -3, R | F_FAST, cmd_zmscore},
        {"zrank", 3, R | F_FAST, cmd_zrank},
        {"zrevrank", 3, R | F_FAST, cmd_zrevrank},
        {"zscan", -3, R, cmd_zscan},
        {"zpopmin", -2, F_WRITE | F_FAST, cmd_zpopmin},
        {"zpopmax", -2, F_WRITE | F_FAST, cmd_zpopmax},
        {"zrandmember", -2, R, cmd_zrandmember},
        {"multi", 1, F_FAST | F_NOQUEUE, cmd_multi},
        {"exec", 1, F_NOQUEUE, cmd_exec},
        {"discard", 1, F_FAST | F_NOQUEUE, cmd_discard},
        {"watch", -2, F_FAST | F_NOQUEUE, cmd_watch},
        {"unwatch", 1, F_FAST, cmd_unwatch},
};
#undef W
#undef R

#define NCMDS (sizeof commands / sizeof commands[0])

/* Subcommands INFO commandstats counts apart (Redis 7 names them so). */
static const char *const subcommands[] = {
        "client|id",    "client|getname", "client|setname", "client|setinfo",   "command|count",
        "command|docs", "command|info",   "config|get",     "config|resetstat",
};
#define NSUBS (sizeof subcommands / sizeof subcommands[0])
_Static_assert(NCMDS + NSUBS <= RDB_CMDSTATS, "room for every command's statistics");

/* The name statistics slot i stands for. */
const char *cmd_stat_name(size_t i)
{
        return i < NCMDS ? commands[i].name : subcommands[i - NCMDS];
}

size_t cmd_stat_slots(void)
{
        return NCMDS + NSUBS;
}

/* The st.cmd slot of a command: its own, or its subcommand's; -1 for a
 * subcommand that does not exist (Redis counts it nowhere). */
static int stat_slot(const struct rcmd *cmd, const struct resp_arg *argv, size_t argc)
{
        if (!(cmd->flags & F_SUBCMDS) || argc < 2)
                return (int)(cmd - commands);
        size_t n = strlen(cmd->name);
        for (size_t i = 0; i < NSUBS; i++)
                if (!strncmp(subcommands[i], cmd->name, n) && subcommands[i][n] == '|' &&
                    arg_is(&argv[1], subcommands[i] + n + 1))
                        return (int)(NCMDS + i);
        return -1;
}
#define LOOKUP_SIZE 256
static const struct rcmd *lookup_table[LOOKUP_SIZE];
static const struct rcmd *command_list[NCMDS];

static unsigned name_hash(const char *s, size_t n)
{
        unsigned h = (unsigned)n * 2654435761u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned)(s[i] | 0x20)) * 16777619u;
        return h;
}

static void build_lookup(void)
{
        for (size_t i = 0; i < NCMDS; i++) {
                command_list[i] = &commands[i];
                unsigned h = name_hash(commands[i].name, strlen(commands[i].name));
                while (lookup_table[h % LOOKUP_SIZE])
                        h++;
                lookup_table[h % LOOKUP_SIZE] = &commands[i];
        }
}

const struct rcmd *const *cmd_all(size_t *n)
{
        *n = NCMDS;
        return command_list;
}

static const struct rcmd *find_command(const struct resp_arg *a)
{
        if (a->len > 16)
                return NULL;
        unsigned h = name_hash(a->ptr, a->len);
        for (;; h++) {
                const struct rcmd *c = lookup_table[h % LOOKUP_SIZE];
                if (!c)
                        return NULL;
                if (arg_is(a, c->name))
                        return c;
        }
}

/* ------------------------------------------------------------------ */
/* Entry points. */

/* 40 random hex digits and a NUL, as Redis's run and replication ids. */
static void random_id(char out[41])
{
        unsigned char b[20];
        if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
                uint64_t v = rdb_monotonic_us() ^ (uint64_t)getpid() << 32;
                for (size_t i = 0; i < sizeof b; i++) {
                        v = v * 6364136223846793005ull + 1442695040888963407ull;
                        b[i] = (unsigned char)(v >> 56);
                }
        }
        for (size_t i = 0; i < sizeof b; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

/* The C library's malloc (the stand-alone host; the daemon has jemalloc)
 * gathers freed small chunks in fast bins and merges them all at once when a
 * large chunk is next freed or asked for: after a large zset or set was freed
 * in slices, that one call ran for tens of milliseconds, past the CPU budget.
 * No fast bins, and a fixed mmap threshold (glibc otherwise raises it, and a
 * freed table then goes back to the heap), keep every free short. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
        mallopt(M_MXFAST, 0);
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

void rdb_init(struct rdb *db, const struct rdb_config *cfg)
{
        tune_malloc();
        memset(db, 0, sizeof *db);
        dict_init(&db->keys);
        dict_init(&db->watch);
        db->cfg = *cfg;
        if (!db->cfg.max_bulk)
                db->cfg.max_bulk = RESP_BULK_MAX;
        if (!db->cfg.databases)
                db->cfg.databases = 1;
        if (!db->cfg.slice_us)
                db->cfg.slice_us = 2000;
        db->started_ms = rdb_mstime();
        db->next_client_id = 1;
        random_id(db->run_id);
        random_id(db->replid);
        server_allocator();
        dict_seed((uint64_t)db->started_ms ^ (uint64_t)getpid() << 32);
        if (!lookup_table[name_hash("get", 3) % LOOKUP_SIZE] || !command_list[0])
                build_lookup();
}

void rdb_free(struct rdb *db)
{
        dict_clear(&db->keys, db_free_key_cb, db);
        while (rdb_lazyfree(db, UINT_MAX))
                ;
        rbuf_free(&db->prop);
        rbuf_free(&db->job.acc);
        rbuf_free(&db->txlog);
        watch_release(db);
}

bool rclient_in_multi(const struct rclient *c)
{
        return c->flags & RC_MULTI;
}

void rclient_release(struct rclient *c)
{
        multi_release(c);
        zfree(c->name);
        c->name = NULL;
        rbuf_free(&c->out);
}

static void unknown_command(struct ctx *x)
{
        char args[512];
        size_t n = 0;
        for (size_t i = 1; i < x->argc && n < 128; i++) {
                int room = 128 - (int)n;
                int len = (int)strnlen(x->argv[i].ptr, x->argv[i].len);
                n += (size_t)snprintf(args + n, sizeof args - n, "'%.*s' ", len < room ? len : room,
                                      x->argv[i].ptr);
        }
        args[n] = 0;
        int cl = (int)strnlen(x->argv[0].ptr, x->argv[0].len);
        r_errf(x, "unknown command '%.*s', with args beginning with: %s", cl < 128 ? cl : 128,
               x->argv[0].ptr, args);
}

/* What a simple reply (+OK, :n, a short error, -OOM) needs at most. */
#define REPLY_ROOM 128

/* After a command: an allocation that failed turns its reply into -OOM; a
 * reply that cannot even be written closes the connection rather than leave
 * the client waiting for it. */
static int reply_done(struct ctx *x, size_t start)
{
        if (x->oom || x->o->failed) {
                x->o->len = start;
                x->o->failed = false;
                r_err(x, E_OOM);
        }
        if (x->o->failed) {
                x->o->len = start;
                x->o->failed = false;
                x->flags |= RDB_CLOSE;
        }
        return x->flags;
}

/* Runs x's command (the first slice, or the next one) and, once it is done,
 * what follows it. */
static int run_slice(struct rdb *db, struct ctx *x)
{
        struct rjob *j = &db->job;
        x->job = j;
        x->now = j->now;
        x->t0 = rdb_monotonic_us();
        x->cmd->fn(x);
        j->usec += rdb_monotonic_us() - x->t0;
        j->active = x->paused;
        if (x->paused)
                return RDB_MORE;
        rbuf_free(&j->acc);
        if (j->scratch)
                j->scratch_free(j->scratch);
        j->scratch = NULL;
        if (db->dirty != j->dirty) {
                x->flags |= RDB_WRITE;
                if (x->oom && x->applied) /* what ran of a command cut short */
                        db->log_argc = x->applied;
                watch_touch_cmd(db, x->cmd->name, x->argv, x->argc);
        } else {
                db->prop_argc = 0;
        }
        int f = reply_done(x, j->out_start);
        if (j->stat >= 0 && x->rejected) {
                db->st.cmd[j->stat].rejected++;
        } else if (j->stat >= 0) {
                db->st.cmd[j->stat].calls++;
                db->st.cmd[j->stat].usec += j->usec;
                db->st.cmd[j->stat].failed += db->st.error_replies != j->errors;
        }
        return f;
}

int rdb_exec(struct rdb *db, struct rclient *c, const struct resp_arg *argv, size_t argc,
             struct rbuf *out)
{
        struct ctx x = {.db = db, .c = c, .argv = argv, .argc = argc, .o = out};
        size_t start = out->len;
        out->failed = false;
        db->prop_argc = 0;
        db->log_argc = 0;
        db->txlog.len = 0;
        db->txlog.failed = false;
        if (!argc)
                return 0;
        /* Room for a short reply, or -OOM, before anything changes: a write
         * then never goes unanswered. */
        if (rbuf_reserve(out, REPLY_ROOM) < 0) {
                out->failed = false;
                return RDB_CLOSE;
        }
        x.cmd = find_command(&argv[0]);
        db->st.commands++;
        /* A command refused in MULTI makes EXEC abort (Redis's flagTransaction). */
        uint32_t in_multi = c->flags & RC_MULTI ? RC_DIRTY_EXEC : 0;
        if (!x.cmd) {
                unknown_command(&x);
                c->flags |= in_multi;
                return reply_done(&x, start);
        }
        int stat = stat_slot(x.cmd, argv, argc);
        if ((x.cmd->arity > 0 && (size_t)x.cmd->arity != argc) ||
            (x.cmd->arity < 0 && argc < (size_t)-x.cmd->arity)) {
                db->st.cmd[x.cmd - commands].rejected++;
                r_arity(&x, x.cmd->name);
                c->flags |= in_multi;
                return reply_done(&x, start);
        }
        if ((x.cmd->flags & F_DENYOOM) && db->cfg.maxmemory &&
            rdb_used_memory() > db->cfg.maxmemory) {
                db->st.rejected_oom++;
                if (stat >= 0)
                        db->st.cmd[stat].rejected++;
                r_err(&x, E_OOM);
                c->flags |= in_multi;
                return reply_done(&x, start);
        }
        if (in_multi && !(x.cmd->flags & F_NOQUEUE)) {
                multi_queue(&x);
                return reply_done(&x, start);
        }
        rbuf_free(&db->job.acc);
        db->job = (struct rjob){.c = c,
                                .argv = argv,
                                .argc = argc,
                                .out = out,
                                .cmd = x.cmd,
                                .out_start = start,
                                .dirty = db->dirty,
                                .errors = db->st.error_replies,
                                .stat = stat,
                                .now = rdb_mstime()};
        return run_slice(db, &x);
}

int rdb_resume(struct rdb *db)
{
        struct rjob *j = &db->job;
        struct ctx x = {.db = db,
                        .c = j->c,
                        .argv = j->argv,
                        .argc = j->argc,
                        .o = j->out,
                        .cmd = j->cmd,
                        .resumed = true};
        return run_slice(db, &x);
}

bool rdb_busy(const struct rdb *db)
{
        return db->job.active;
}

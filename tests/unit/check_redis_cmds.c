/*
 * Check suite for the redis service's command layer (services/redis/db.c),
 * run without the kernel: each case sends commands to a fresh keyspace and
 * compares the reply bytes with what Redis 7.0 sends for the same input,
 * errors included (arity, WRONGTYPE, not an integer, syntax, unknown command).
 */
#include "db_int.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct rdb db;
static struct rclient cl;
static struct rbuf out;
static int last_flags; /* rdb_exec's, for the last command run */

static void setup(void)
{
        struct rdb_config cfg = {0};
        rdb_init(&db, &cfg);
        memset(&cl, 0, sizeof cl);
        cl.id = 7;
        cl.proto = RESP2;
}

static void teardown(void)
{
        rclient_release(&cl);
        rbuf_free(&out);
        rdb_free(&db);
}

static int last_slices; /* how many slices it took */

/* Runs argv to its end, slice after slice, with the allocations after the
 * first fail_at failing (one of them; -1: none); returns the reply,
 * NUL-terminated, and in *ret_failed whether an allocation was made to fail. */
static const char *run_argv(const struct resp_arg *argv, size_t argc, long fail_at,
                            bool *ret_failed)
{
        out.len = 0;
        zmalloc_fail_after(fail_at, 1);
        last_flags = rdb_exec(&db, &cl, argv, argc, &out);
        for (last_slices = 1; last_flags & RDB_MORE; last_slices++) {
                ck_assert(rdb_busy(&db));
                last_flags = rdb_resume(&db);
        }
        ck_assert(!rdb_busy(&db));
        bool failed = zmalloc_fail_after(-1, 0);
        if (ret_failed)
                *ret_failed = failed;
        ck_assert_int_eq(rbuf_reserve(&out, 1), 0);
        out.p[out.len] = 0;
        return out.p;
}

/* run_argv() of a command given as space-separated words. */
static const char *run_failing(const char *line, long fail_at, bool *ret_failed)
{
        char buf[4096];
        struct resp_arg argv[64];
        size_t argc = 0;
        snprintf(buf, sizeof buf, "%s", line);
        for (char *save, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
                argv[argc++] = (struct resp_arg){w, strlen(w)};
        return run_argv(argv, argc, fail_at, ret_failed);
}

static const char *run(const char *line)
{
        return run_failing(line, -1, NULL);
}

#define IS(cmd, want) ck_assert_str_eq(run(cmd), want)

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_errors)
{
        IS("get", "-ERR wrong number of arguments for 'get' command\r\n");
        IS("GET a b", "-ERR wrong number of arguments for 'get' command\r\n");
        IS("set a", "-ERR wrong number of arguments for 'set' command\r\n");
        IS("mset a b c", "-ERR wrong number of arguments for 'mset' command\r\n");
        IS("hset h f", "-ERR wrong number of arguments for 'hset' command\r\n");
        IS("hset h f v g", "-ERR wrong number of arguments for 'hset' command\r\n");
        IS("foo a b", "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
        IS("foo", "-ERR unknown command 'foo', with args beginning with: \r\n");
        IS("client nosuch", "-ERR unknown subcommand 'nosuch'. Try CLIENT HELP.\r\n");
        IS("client setname", "-ERR wrong number of arguments for 'client|setname' command\r\n");
        IS("set a b xx nx", "-ERR syntax error\r\n");
        IS("set a b ex", "-ERR syntax error\r\n");
        IS("set a b ex x", "-ERR value is not an integer or out of range\r\n");
        IS("set a b ex 0", "-ERR invalid expire time in 'set' command\r\n");
        IS("setex a -1 v", "-ERR invalid expire time in 'setex' command\r\n");
        IS("set a b px 10 keepttl", "-ERR syntax error\r\n");
        IS("lpush l x", ":1\r\n");
        IS("get l", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        IS("incr l", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        IS("hget l f", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        IS("sadd l f", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        IS("select 1", "-ERR DB index is out of range\r\n");
        IS("select x", "-ERR value is not an integer or out of range\r\n");
        IS("select 0", "+OK\r\n");
        IS("ping a b", "-ERR wrong number of arguments for 'ping' command\r\n");
        IS("rename nokey x", "-ERR no such key\r\n");
        IS("scan x", "-ERR invalid cursor\r\n");
        IS("scan 0 count 0", "-ERR syntax error\r\n");
        IS("lpop l -1", "-ERR value is out of range, must be positive\r\n");
        IS("hello 4", "-NOPROTO unsupported protocol version\r\n");
        IS("hello x", "-ERR Protocol version is not an integer or out of range\r\n");
        IS("expire l 1 nx xx",
           "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
}
END_TEST

START_TEST(test_strings)
{
        IS("ping", "+PONG\r\n");
        IS("ping hi", "$2\r\nhi\r\n");
        IS("echo hey", "$3\r\nhey\r\n");
        IS("get k", "$-1\r\n");
        IS("set k v", "+OK\r\n");
        IS("get k", "$1\r\nv\r\n");
        IS("set k w nx", "$-1\r\n");
        IS("set k w xx get", "$1\r\nv\r\n");
        IS("set n 1 nx get", "$-1\r\n");
        IS("setnx k z", ":0\r\n");
        IS("getset k a", "$1\r\nw\r\n");
        IS("append k bc", ":3\r\n");
        IS("strlen k", ":3\r\n");
        IS("getrange k 0 -2", "$2\r\nab\r\n");
        IS("getrange k -1 -5", "$0\r\n\r\n");
        IS("getrange nokey 0 -1", "$0\r\n\r\n");
        IS("setrange k 5 x", ":6\r\n");
        ck_assert_mem_eq(run("get k"), "$6\r\nabc\0\0x\r\n", 12);
        IS("setrange k -1 x", "-ERR offset is out of range\r\n");
        IS("incr k", "-ERR value is not an integer or out of range\r\n");
        IS("incr c", ":1\r\n");
        IS("incrby c 10", ":11\r\n");
        IS("decrby c 2", ":9\r\n");
        IS("decr c", ":8\r\n");
        IS("incrby c x", "-ERR value is not an integer or out of range\r\n");
        IS("set big 9223372036854775807", "+OK\r\n");
        IS("incr big", "-ERR increment or decrement would overflow\r\n");
        IS("decrby c -9223372036854775808", "-ERR decrement would overflow\r\n");
        IS("set f 10.5", "+OK\r\n");
        IS("incrbyfloat f 0.1", "$4\r\n10.6\r\n");
        IS("incrbyfloat f x", "-ERR value is not a valid float\r\n");
        IS("incrbyfloat k 1", "-ERR value is not a valid float\r\n");
        IS("mset a 1 b 2", "+OK\r\n");
        IS("mget a nokey b", "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
        IS("msetnx a 1 z 2", ":0\r\n");
        IS("msetnx y 1 z 2", ":1\r\n");
        IS("getdel a", "$1\r\n1\r\n");
        IS("exists a b b", ":2\r\n");
        IS("type b", "+string\r\n");
        IS("type nokey", "+none\r\n");
        IS("del b y z nokey", ":3\r\n");
}
END_TEST

START_TEST(test_keys_and_expiry)
{
        IS("set k v", "+OK\r\n");
        IS("ttl k", ":-1\r\n");
        IS("ttl nokey", ":-2\r\n");
        IS("expire k 100", ":1\r\n");
        IS("ttl k", ":100\r\n");
        IS("expire k 50 gt", ":0\r\n");
        IS("persist k", ":1\r\n");
        IS("persist k", ":0\r\n");
        IS("pexpire k 30", ":1\r\n");
        usleep(60 * 1000);
        IS("get k", "$-1\r\n");
        IS("exists k", ":0\r\n");
        IS("set e v px 20", "+OK\r\n");
        usleep(50 * 1000);
        ck_assert_uint_eq(rdb_active_expire(&db, 10000), 1);
        IS("dbsize", ":0\r\n");
        IS("set k v", "+OK\r\n");
        IS("expire k -1", ":1\r\n");
        IS("dbsize", ":0\r\n");
        IS("mset user:1 a user:2 b other c", "+OK\r\n");
        IS("keys user:[1]", "*1\r\n$6\r\nuser:1\r\n");
        ck_assert(!strncmp(run("keys user:?"), "*2\r\n", 4));
        IS("keys nomatch*", "*0\r\n");
        IS("rename other renamed", "+OK\r\n");
        IS("get renamed", "$1\r\nc\r\n");
        IS("flushdb", "+OK\r\n");
        IS("dbsize", ":0\r\n");
        /* SCAN visits every key across table growth */
        char cmd[64];
        for (int i = 0; i < 1000; i++) {
                snprintf(cmd, sizeof cmd, "set key:%d v", i);
                IS(cmd, "+OK\r\n");
        }
        int seen = 0;
        char cursor[32] = "0";
        do {
                snprintf(cmd, sizeof cmd, "scan %s count 50", cursor);
                const char *r = run(cmd);
                ck_assert(!strncmp(r, "*2\r\n$", 5));
                const char *p = strstr(r + 4, "\r\n") + 2;
                size_t n = strcspn(p, "\r");
                memcpy(cursor, p, n);
                cursor[n] = 0;
                p += n + 2;
                seen += atoi(p + 1);
        } while (strcmp(cursor, "0"));
        ck_assert_int_ge(seen, 1000);
}
END_TEST

/* Sizes and indexes from the client at the edges of long long: each gets the
 * reply Redis 7.0 gives, never an overflow (checked against redis-server). */
START_TEST(test_limits)
{
        IS("setrange k 9223372036854775807 A",
           "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
        IS("setrange k 536870912 A",
           "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
        IS("exists k", ":0\r\n");
        IS("set s hello", "+OK\r\n");
        IS("setrange s 9223372036854775807 A",
           "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
        IS("append s x", ":6\r\n");
        IS("getrange s -9223372036854775808 9223372036854775807", "$6\r\nhellox\r\n");
        IS("getrange s 9223372036854775807 -9223372036854775808", "$0\r\n\r\n");
        IS("rpush l a b c", ":3\r\n");
        IS("lrange l -9223372036854775808 9223372036854775807",
           "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
        IS("lindex l -9223372036854775808", "$-1\r\n");
        IS("lrange l 9223372036854775807 -9223372036854775808", "*0\r\n");
        /* COUNT times ten overflowed: the scan stopped after one bucket */
        IS("del s", ":1\r\n");
        IS("scan 0 count 9223372036854775807", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nl\r\n");
        IS("lpop l 9223372036854775807", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
        IS("set n 9223372036854775806", "+OK\r\n");
        IS("incrby n 1", ":9223372036854775807\r\n");
        IS("incrby n 1", "-ERR increment or decrement would overflow\r\n");
        IS("decrby n -9223372036854775808", "-ERR decrement would overflow\r\n");
        IS("set m -9223372036854775807", "+OK\r\n");
        IS("decr m", ":-9223372036854775808\r\n");
        IS("decr m", "-ERR increment or decrement would overflow\r\n");
        IS("incrby m -1", "-ERR increment or decrement would overflow\r\n");
        IS("hincrby h f 9223372036854775807", ":9223372036854775807\r\n");
        IS("hincrby h f 1", "-ERR increment or decrement would overflow\r\n");
        IS("expire n 9223372036854775807", "-ERR invalid expire time in 'expire' command\r\n");
        IS("pexpireat n 9223372036854775807", ":1\r\n");
        IS("set x v ex 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n");
        IS("set x v px 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n");
}
END_TEST

START_TEST(test_aggregates)
{
        IS("hset h a 1 b 2", ":2\r\n");
        IS("hset h a 3", ":0\r\n");
        IS("hget h a", "$1\r\n3\r\n");
        IS("hmget h a x", "*2\r\n$1\r\n3\r\n$-1\r\n");
        IS("hlen h", ":2\r\n");
        IS("hexists h b", ":1\r\n");
        IS("hincrby h a 2", ":5\r\n");
        IS("hset h s x", ":1\r\n");
        IS("hincrby h s 1", "-ERR hash value is not an integer\r\n");
        IS("hdel h a b s", ":3\r\n");
        IS("exists h", ":0\r\n");
        IS("rpush l a b c", ":3\r\n");
        IS("lpush l z", ":4\r\n");
        IS("lrange l 0 -1", "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
        IS("lrange l 5 10", "*0\r\n");
        IS("lindex l -1", "$1\r\nc\r\n");
        IS("lindex l 9", "$-1\r\n");
        IS("llen l", ":4\r\n");
        IS("lpop l", "$1\r\nz\r\n");
        IS("rpop l 2", "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
        IS("lpop nokey 2", "*-1\r\n");
        IS("lpop l", "$1\r\na\r\n");
        IS("exists l", ":0\r\n");
        IS("sadd s a b a", ":2\r\n");
        IS("scard s", ":2\r\n");
        IS("sismember s a", ":1\r\n");
        IS("sismember s x", ":0\r\n");
        IS("srem s a x", ":1\r\n");
        IS("smembers s", "*1\r\n$1\r\nb\r\n");
}
END_TEST

START_TEST(test_resp3)
{
        IS("hello 3", "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
                      "$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
                      "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n");
        IS("get nokey", "_\r\n");
        IS("hset h a 1", ":1\r\n");
        IS("hgetall h", "%1\r\n$1\r\na\r\n$1\r\n1\r\n");
        IS("sadd s m", ":1\r\n");
        IS("smembers s", "~1\r\n$1\r\nm\r\n");
        IS("client setname x", "+OK\r\n");
        IS("client getname", "$1\r\nx\r\n");
        IS("hello 2", "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n"
                      "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
                      "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n");
        IS("get nokey", "$-1\r\n");
}
END_TEST

START_TEST(test_maxmemory_and_info)
{
        IS("set first v", "+OK\r\n");
        db.cfg.maxmemory = 1;
        IS("set k v", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
        IS("get k", "$-1\r\n");
        IS("del k", ":0\r\n");
        db.cfg.maxmemory = 0;
        IS("set k v", "+OK\r\n");
        const char *r = run("info keyspace");
        ck_assert_ptr_nonnull(strstr(r, "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n"));
        r = run("info");
        ck_assert_ptr_nonnull(strstr(r, "# Server\r\nredis_version:"));
        ck_assert_ptr_nonnull(strstr(r, "# Memory\r\nused_memory:"));
        ck_assert_ptr_nonnull(strstr(r, "# Stats\r\n"));
        IS("command count", ":120\r\n");
        IS("config get appendonly", "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
        IS("quit", "+OK\r\n");
}
END_TEST

static const char OOM[] = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/* What the keys the OOM sweep uses hold, as replies. */
static void snapshot(char *buf, size_t len)
{
        static const char *const reads[] = {
                "dbsize",
                "get k",
                "get n",
                "lrange l 0 -1",
                "hgetall h",
                "smembers s",
                "get f",
                "ttl k",
                "get new",
                "lrange nl 0 -1",
                "client getname",
                "exists big",
                "get k2",
                "zrange z 0 -1 withscores",
                "zrange nz 0 -1 withscores",
                "zcard bigz",
                "zrange d 0 -1 withscores",
        };
        size_t at = 0;
        for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
                at += (size_t)snprintf(buf + at, len - at, "%s|", run(reads[i]));
}

static void sweep_setup(void)
{
        char cmd[64];
        run("flushall");
        run("set k v");
        run("set n 10");
        run("set f 1.5");
        run("rpush l a b c d");
        run("hset h a 1 b 2");
        run("sadd s x y");
        for (int i = 0; i < 200; i++) {
                snprintf(cmd, sizeof cmd, "sadd big m%d", i);
                run(cmd);
        }
        run("zadd z 1 a 2 b 3 c");
        for (int i = 0; i < 200; i++) {
                snprintf(cmd, sizeof cmd, "zadd bigz %d m%d", i, i);
                run(cmd);
        }
}

/*
 * Every allocation a command makes fails in turn (the n-th, for n = 0, 1, ...
 * until the command needs fewer): the reply is the usual one or -OOM, never an
 * abort, and a command answered -OOM changed nothing (those that take many
 * elements keep the ones before the failure and log just those).
 */
START_TEST(test_oom)
{
        static const char *const cmds[] = {
                "set k longer-value-than-before",
                "set new v ex 100",
                "setnx new v",
                "getset k w",
                "mset new 1 k2 2",
                "append k tail",
                "setrange k 40 x",
                "setrange new 3 x",
                "incr n",
                "incr new",
                "incrbyfloat f 2.25",
                "rpush l e",
                "lpush nl a b c d e f",
                "sadd s z",
                "hset h c 3",
                "hset new a 1",
                "hincrby h a 5",
                "hincrby new a 5",
                "hincrbyfloat h a 1.5",
                "hincrbyfloat new a 1.5",
                "rename k k2",
                "client setname me",
                "keys *",
                "scan 0 count 100",
                "hgetall h",
                "lrange l 0 -1",
                "mget k n l",
                "info",
                "expire k 100",
                "del big",
                "flushall",
                "smembers big",
                "set big x",
                "command",
                "lpop l 2",
                "zadd z 4 d 5 e",
                "zadd nz 1 a 2 b 3 c",
                "zadd z xx ch 9 a 9 b",
                "zincrby z 1 a",
                "zincrby nz 1 a",
                "zrange z 0 -1 withscores",
                "zrangebyscore bigz (10 50 limit 2 5",
                "zrangestore d z 0 -1",
                "zrangestore z bigz 0 150",
                "zunionstore d 2 z s weights 2 1",
                "zinterstore z 2 z bigz",
                "zdiffstore d 2 bigz z",
                "zpopmin z 2",
                "zpopmax bigz 100",
                "zrem z a b",
                "zremrangebyrank bigz 0 100",
                "zscan bigz 0",
                "zrandmember bigz 500 withscores",
                "del bigz",
                "set bigz x",
        };
        static char before[32768], after[32768], want[32768]; /* COMMAND's reply fits */
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
                sweep_setup();
                snprintf(want, sizeof want, "%s", run(cmds[i]));
                for (long n = 0;; n++) {
                        sweep_setup();
                        snapshot(before, sizeof before);
                        rbuf_free(&out); /* so that the reply needs memory too */
                        bool failed;
                        const char *r = run_failing(cmds[i], n, &failed);
                        /* INFO's figures move from one run to the next */
                        bool usual = !strcmp(r, want) ||
                                     (!strncmp(cmds[i], "info", 4) && r[0] == want[0]);
                        if (!usual) {
                                /* -OOM, or (no room for even that) nothing and a close */
                                ck_assert_msg(!strcmp(r, OOM) || (!*r && (last_flags & RDB_CLOSE)),
                                              "%s, allocation %ld failing: %s", cmds[i], n, r);
                                /* a prefix ran, and is what gets logged */
                                bool partial = (last_flags & RDB_WRITE) && db.log_argc > 1;
                                snapshot(after, sizeof after);
                                ck_assert_msg(!strcmp(before, after) || partial,
                                              "%s, allocation %ld failing, answered -OOM but "
                                              "changed %s into %s",
                                              cmds[i], n, before, after);
                        }
                        if (!failed)
                                break;
                }
        }
        /* Nothing can be had any more: the reply cannot even be written, so
         * the connection is to be closed rather than left without one. */
        sweep_setup();
        rbuf_free(&out);
        zmalloc_fail_after(0, -1);
        struct resp_arg argv[] = {{"set", 3}, {"k", 1}, {"w", 1}};
        int f = rdb_exec(&db, &cl, argv, 3, &out);
        zmalloc_fail_after(-1, 0);
        ck_assert(f & RDB_CLOSE);
        ck_assert_uint_eq(out.len, 0);
        IS("get k", "$1\r\nv\r\n");
}
END_TEST

/* The keys a KEYS reply (or SCAN's second element) names, sorted and
 * joined by spaces. */
static const char *sorted_keys(const char *r, char *buf, size_t len)
{
        char *keys[128];
        size_t n = 0, at = 0;
        r = strchr(r, '*') + 1;
        size_t count = strtoul(r, NULL, 10);
        for (size_t i = 0; i < count && i < 128; i++) {
                r = strchr(r, '$') + 1;
                size_t l = strtoul(r, NULL, 10);
                r = strstr(r, "\r\n") + 2;
                keys[n++] = strndup(r, l);
                r += l + 2;
        }
        qsort(keys, n, sizeof *keys, cmp_str);
        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? " " : "", keys[i]);
                free(keys[i]);
        }
        return buf;
}

static double ms_since(const struct timespec *t0)
{
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* KEYS and SCAN MATCH patterns: what redis-server 7.0 answers for these keys
 * (tests/integration/redis_compat.py compares with a live one). */
START_TEST(test_glob)
{
        static const char keys[] = "a b ab abc abd aXc a*c a?c a[c a]c a-c a\\c a\\ \\ hello hallo "
                                   "hxllo hllo heeeello h[e]llo ] - ^ x^y user:1 user:10 user:2 "
                                   "key KEY Key k * ? [ [] b] a^ zz a- aa aaa az m A Z";
        static const struct {
                const char *pattern, *match;
        } cases[] = {
                {"*", "* - ? A KEY Key Z [ [] \\ ] ^ a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa "
                      "aaa ab abc abd az b b] h[e]llo hallo heeeello hello hllo hxllo k key m "
                      "user:1 user:10 user:2 x^y zz"},
                {"**", "* - ? A KEY Key Z [ [] \\ ] ^ a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa "
                       "aaa ab abc abd az b b] h[e]llo hallo heeeello hello hllo hxllo k key m "
                       "user:1 user:10 user:2 x^y zz"},
                {"a", "a"},
                {"a*", "a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa aaa ab abc abd az"},
                {"*a", "a aa aaa"},
                {"a*c", "a*c a-c a?c aXc a[c a\\c a]c abc"},
                {"a?c", "a*c a-c a?c aXc a[c a\\c a]c abc"},
                {"?", "* - ? A Z [ \\ ] ^ a b k m"},
                {"??", "[] a- a\\ a^ aa ab az b] zz"},
                {"a??", "a*c a-c a?c aXc a[c a\\c a]c aaa abc abd"},
                {"h?llo", "hallo hello hxllo"},
                {"h*llo", "h[e]llo hallo heeeello hello hllo hxllo"},
                {"h[ae]llo", "hallo hello"},
                {"h[^e]llo", "hallo hxllo"},
                {"h[a-b]llo", "hallo"},
                {"h[b-a]llo", "hallo"},
                {"[a-c]", "a b"},
                {"[c-a]", "a b"},
                {"[^a-c]", "* - ? A Z [ \\ ] ^ k m"},
                {"[abc", "a b"},
                {"[]", ""},
                {"[]a]", ""},
                {"[]]", ""},
                {"[\\]]", "]"},
                {"[\\^]", "^"},
                {"[^]", "* - ? A Z [ \\ ] ^ a b k m"},
                {"[^]a]", ""},
                {"a\\*c", "a*c"},
                {"a\\?c", "a?c"},
                {"a\\[c", "a[c"},
                {"a\\\\c", "a\\c"},
                {"a\\", "a\\"},
                {"\\", "\\"},
                {"\\\\", "\\"},
                {"a\\b", "ab"},
                {"*\\*", "*"},
                {"[*]", "*"},
                {"[?]", "?"},
                {"user:?", "user:1 user:2"},
                {"user:*", "user:1 user:10 user:2"},
                {"user:[0-9]", "user:1 user:2"},
                {"user:[0-9]*", "user:1 user:10 user:2"},
                {"[a-]", "] ^ a"},
                {"[-a]", "- a"},
                {"[a-c-e]", "- a b"},
                {"a[", ""},
                {"a[b", "ab"},
                {"a[bc]", "ab"},
                {"*[", ""},
                {"*]", "[] ] b]"},
                {"k*y", "key"},
                {"[kK][eE][yY]", "KEY Key key"},
                {"[A-Z]", "A Z"},
                {"[a-Z]", "Z [ \\ ] ^ a"},
                {"[Z-a]", "Z [ \\ ] ^ a"},
                {"*a*", "a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa aaa ab abc abd az hallo"},
                {"a*a", "aa aaa"},
                {"*aa*", "aa aaa"},
                {"a*a*a", "aaa"},
                {"?*", "* - ? A KEY Key Z [ [] \\ ] ^ a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa "
                       "aaa ab abc abd az b b] h[e]llo hallo heeeello hello hllo hxllo k key m "
                       "user:1 user:10 user:2 x^y zz"},
                {"*?", "* - ? A KEY Key Z [ [] \\ ] ^ a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa "
                       "aaa ab abc abd az b b] h[e]llo hallo heeeello hello hllo hxllo k key m "
                       "user:1 user:10 user:2 x^y zz"},
                {"*?*", "* - ? A KEY Key Z [ [] \\ ] ^ a a*c a- a-c a?c aXc a[c a\\ a\\c a]c a^ aa "
                        "aaa ab abc abd az b b] h[e]llo hallo heeeello hello hllo hxllo k key m "
                        "user:1 user:10 user:2 x^y zz"},
                {"[^a]*", "* - ? A KEY Key Z [ [] \\ ] ^ b b] h[e]llo hallo heeeello hello hllo "
                          "hxllo k key m user:1 user:10 user:2 x^y zz"},
                {"[!a]", "a"},
                {"a[^]c", "a*c a-c a?c aXc a[c a\\c a]c abc"},
                {"a[]]c", ""},
                {"x[\\^]y", "x^y"},
                {"a-?", "a-c"},
                {"[a-z][a-z]", "aa ab az zz"},
                {"*[a-c]", "a a*c a-c a?c aXc a[c a\\c a]c aa aaa ab abc b"},
                {"[[]", "["},
                {"[[]]", "[]"},
                {"[\\", "\\"},
                {"a[\\", "a\\"},
        };
        char cmd[4200], got[4096], buf[sizeof keys];
        memcpy(buf, keys, sizeof keys);
        for (char *save, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                snprintf(cmd, sizeof cmd, "set %s v", w);
                IS(cmd, "+OK\r\n");
        }
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                snprintf(cmd, sizeof cmd, "keys %s", cases[i].pattern);
                sorted_keys(run(cmd), got, sizeof got);
                ck_assert_msg(!strcmp(got, cases[i].match), "KEYS %s: %s, Redis: %s",
                              cases[i].pattern, got, cases[i].match);
        }
        snprintf(cmd, sizeof cmd, "scan 0 count 1000 match h[^e]llo");
        ck_assert_str_eq(sorted_keys(strchr(run(cmd) + 1, '*'), got, sizeof got), "hallo hxllo");

        /* 20 stars against a 40-byte key: every way to split it, tried one by
         * one, never ended; now an empty answer in well under a millisecond */
        char key[41], pattern[64] = "";
        memset(key, 'a', 40);
        key[40] = 0;
        for (int i = 0; i < 20; i++)
                strcat(pattern, "a*");
        strcat(pattern, "b");
        run("flushall");
        snprintf(cmd, sizeof cmd, "set %s v", key);
        IS(cmd, "+OK\r\n");
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        snprintf(cmd, sizeof cmd, "keys %s", pattern);
        IS(cmd, "*0\r\n");
        snprintf(cmd, sizeof cmd, "scan 0 match %s", pattern);
        IS(cmd, "*2\r\n$1\r\n0\r\n*0\r\n");
        ck_assert_double_lt(ms_since(&t0), 50);

        /* Redis gives up (no match) past 1000 nested stars */
        static char big[2100];
        for (int stars = 1000; stars <= 1001; stars++) {
                run("flushall");
                memset(big, 'a', (size_t)stars + 1);
                big[stars + 1] = 0;
                snprintf(cmd, sizeof cmd, "set %s v", big);
                run(cmd);
                for (int i = 0; i < stars; i++)
                        memcpy(big + 2 * i, "a*", 2);
                strcpy(big + 2 * stars, "a");
                snprintf(cmd, sizeof cmd, "keys %s", big);
                ck_assert(!strncmp(run(cmd), stars == 1000 ? "*1\r\n" : "*0\r\n", 4));
        }
}
END_TEST

enum { N = 20000 };
static char names[N][16];
static struct resp_arg args[2 * N + 8];

/* A command of words then the N names (with their values if pairs). */
static const char *run_many(const char *words, bool pairs)
{
        static char buf[256];
        size_t argc = 0;
        snprintf(buf, sizeof buf, "%s", words);
        for (char *save, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
                args[argc++] = (struct resp_arg){w, strlen(w)};
        for (int i = 0; i < N; i++) {
                args[argc++] = (struct resp_arg){names[i], strlen(names[i])};
                if (pairs)
                        args[argc++] = (struct resp_arg){names[i], strlen(names[i])};
        }
        return run_argv(args, argc, -1, NULL);
}

/* The command run whole (one slice) and in slices of 1 us: the same reply. */
static void same_in_slices(const char *cmd, bool many, const char *want_prefix)
{
        static char whole[1 << 20];
        db.cfg.slice_us = ~0u;
        snprintf(whole, sizeof whole, "%s", many ? run_many(cmd, false) : run(cmd));
        ck_assert_int_eq(last_slices, 1);
        db.cfg.slice_us = 1;
        const char *r = many ? run_many(cmd, false) : run(cmd);
        ck_assert_msg(last_slices > 1, "%s took %d slice", cmd, last_slices);
        ck_assert_msg(!strcmp(r, whole), "%s differs in slices", cmd);
        ck_assert_msg(!strncmp(r, want_prefix, strlen(want_prefix)), "%s: %.40s", cmd, r);
}

/*
 * A command whose work grows with its arguments or the keyspace pauses after
 * each slice (RDB_MORE) and rdb_resume() goes on with it: the reply is the
 * one it gives in a single run. Large values are freed later, a slice at a
 * time (rdb_lazyfree).
 */
START_TEST(test_slices)
{
        for (int i = 0; i < N; i++)
                snprintf(names[i], sizeof names[i], "key:%d", i);
        db.cfg.slice_us = 1;
        ck_assert_str_eq(run_many("msetnx", true), ":1\r\n");
        ck_assert_int_gt(last_slices, 1);
        ck_assert_str_eq(run_many("mset", true), "+OK\r\n");
        ck_assert_int_gt(last_slices, 1);
        ck_assert_str_eq(run_many("msetnx", true), ":0\r\n");
        IS("dbsize", ":20000\r\n");
        same_in_slices("keys *", false, "*20000\r\n");
        same_in_slices("keys key:1*", false, "*11111\r\n");
        same_in_slices("scan 0 count 1000000000", false, "*2\r\n$1\r\n0\r\n*20000\r\n");
        same_in_slices("mget", true, "*20000\r\n$5\r\nkey:0\r\n");
        same_in_slices("exists", true, ":20000\r\n");
        db.cfg.slice_us = 1;
        ck_assert_str_eq(run_many("rpush list", false), ":20000\r\n");
        ck_assert_str_eq(run_many("sadd set", false), ":20000\r\n");
        ck_assert_str_eq(run_many("hset hash", true), ":20000\r\n");
        ck_assert_int_gt(last_slices, 1);
        same_in_slices("lrange list 0 -1", false, "*20000\r\n$5\r\nkey:0\r\n");
        same_in_slices("smembers set", false, "*20000\r\n");
        same_in_slices("hgetall hash", false, "*40000\r\n");
        same_in_slices("hmget hash", true, "*20000\r\n$5\r\nkey:0\r\n");
        db.cfg.slice_us = 1;
        const char *r = run("lpop list 15000");
        ck_assert(!strncmp(r, "*15000\r\n$5\r\nkey:0\r\n", 18));
        ck_assert_int_gt(last_slices, 1);
        IS("llen list", ":5000\r\n");
        ck_assert_str_eq(run_many("srem set", false), ":20000\r\n");
        IS("exists set", ":0\r\n");

        /* sorted sets: the names are the scores too */
        for (int i = 0; i < N; i++)
                snprintf(names[i], sizeof names[i], "%d", i);
        db.cfg.slice_us = 1;
        ck_assert_str_eq(run_many("zadd zs", true), ":20000\r\n");
        ck_assert_int_gt(last_slices, 1);
        same_in_slices("zrange zs 0 -1 withscores", false, "*40000\r\n");
        same_in_slices("zrangebyscore zs -inf +inf", false, "*20000\r\n");
        same_in_slices("zmscore zs", true, "*20000\r\n");
        same_in_slices("zscan zs 0 count 1000000000", false, "*2\r\n$1\r\n0\r\n*40000\r\n");
        db.cfg.slice_us = 1;
        IS("zunionstore zu 2 zs zs", ":20000\r\n");
        ck_assert_int_gt(last_slices, 1);
        IS("zscore zu 7", "$2\r\n14\r\n");
        db.cfg.slice_us = 1;
        IS("zrangestore zr zs 100 (200 byscore", ":100\r\n");
        ck_assert_int_gt(last_slices, 1);
        db.cfg.slice_us = 1;
        IS("zinterstore zi 2 zs zr weights 1 2", ":100\r\n");
        IS("zrange zi 0 0 withscores", "*2\r\n$3\r\n100\r\n$3\r\n300\r\n");
        db.cfg.slice_us = 1;
        IS("zdiffstore zd 2 zs zr", ":19900\r\n");
        ck_assert_int_gt(last_slices, 1);
        IS("del zu zr zi zd", ":4\r\n");
        while (rdb_lazyfree(&db, 1))
                ;
        db.cfg.slice_us = 1;
        ck_assert(!strncmp(run("zrandmember zs -30000"), "*30000\r\n", 8));
        ck_assert_int_gt(last_slices, 1);
        r = run("zpopmin zs 5000");
        ck_assert(!strncmp(r, "*10000\r\n", 8));
        ck_assert_int_gt(last_slices, 1);
        IS("zcard zs", ":15000\r\n");
        db.cfg.slice_us = 1;
        IS("zremrangebyrank zs 0 9999", ":10000\r\n");
        ck_assert_int_gt(last_slices, 1);
        ck_assert_str_eq(run_many("zrem zs", false), ":5000\r\n");
        IS("exists zs", ":0\r\n");
        db.cfg.slice_us = 1;
        ck_assert_str_eq(run_many("zadd zs", true), ":20000\r\n");
        IS("del zs", ":1\r\n");
        ck_assert_uint_eq(db.garbage_len, 1);
        while (rdb_lazyfree(&db, 1))
                ;
        for (int i = 0; i < N; i++)
                snprintf(names[i], sizeof names[i], "key:%d", i);

        /* DEL of every key in one command; the large values wait to be freed */
        ck_assert_str_eq(run_many("del hash list", false), ":20002\r\n");
        ck_assert_int_gt(last_slices, 1);
        IS("dbsize", ":0\r\n");
        ck_assert_uint_eq(db.garbage_len, 2);
        uint64_t before = rdb_used_memory();
        int calls = 1;
        while (rdb_lazyfree(&db, 1))
                calls++;
        ck_assert_int_gt(calls, 1);
        ck_assert_uint_eq(db.garbage_len, 0);
        ck_assert_uint_lt(rdb_used_memory(), before);

        /* FLUSHALL is immediate; the keyspace is freed afterwards, in slices */
        ck_assert_str_eq(run_many("mset", true), "+OK\r\n");
        ck_assert_str_eq(run_many("sadd set", false), ":20000\r\n");
        IS("flushall", "+OK\r\n");
        ck_assert_int_eq(last_slices, 1);
        IS("dbsize", ":0\r\n");
        IS("set after v", "+OK\r\n");
        for (calls = 1; rdb_lazyfree(&db, 1); calls++)
                ;
        ck_assert_int_gt(calls, 10);
        ck_assert_uint_eq(db.garbage_len, 0);
        IS("get after", "$1\r\nv\r\n");
}
END_TEST

/* MULTI/EXEC and WATCH; redis_compat.py compares many more cases with a live
 * redis-server, two connections each. */
START_TEST(test_multi)
{
        IS("exec", "-ERR EXEC without MULTI\r\n");
        IS("multi", "+OK\r\n");
        IS("set a 1", "+QUEUED\r\n");
        IS("zadd z 1 m", "+QUEUED\r\n");
        IS("get a", "+QUEUED\r\n");
        ck_assert_uint_eq(db.dirty, 0);
        IS("exec", "*3\r\n+OK\r\n:1\r\n$1\r\n1\r\n");
        ck_assert(last_flags & RDB_WRITE);
        ck_assert_int_eq(rbuf_reserve(&db.txlog, 1), 0);
        db.txlog.p[db.txlog.len] = 0;
        ck_assert_str_eq(db.txlog.p,
                         "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n"
                         "*4\r\n$4\r\nzadd\r\n$1\r\nz\r\n$1\r\n1\r\n$1\r\nm\r\n"
                         "*1\r\n$4\r\nEXEC\r\n");
        IS("multi", "+OK\r\n");
        IS("nosuch", "-ERR unknown command 'nosuch', with args beginning with: \r\n");
        IS("exec", "-EXECABORT Transaction discarded because of previous errors.\r\n");
        /* another client's write to a watched key */
        struct rclient other = {.id = 8, .proto = RESP2};
        IS("watch a", "+OK\r\n");
        struct resp_arg set[] = {{"set", 3}, {"a", 1}, {"2", 1}};
        struct rbuf o = {0};
        rdb_exec(&db, &other, set, 3, &o);
        rbuf_free(&o);
        IS("multi", "+OK\r\n");
        IS("get a", "+QUEUED\r\n");
        IS("exec", "*-1\r\n");
        IS("watch a", "+OK\r\n");
        rclient_release(&other);
        IS("multi", "+OK\r\n");
        IS("get a", "+QUEUED\r\n");
        IS("exec", "*1\r\n$1\r\n2\r\n");
        /* a client that goes with commands queued and keys watched */
        IS("watch a b", "+OK\r\n");
        IS("multi", "+OK\r\n");
        IS("set a 3", "+QUEUED\r\n");
}
END_TEST

/* The "# Name" lines of an INFO reply, joined by spaces. */
static const char *section_names(const char *r, char *buf, size_t len)
{
        size_t at = 0;
        buf[0] = 0;
        for (const char *p = strstr(r, "# "); p; p = strstr(p + 1, "\r\n# ")) {
                p += p[0] == '\r' ? 4 : 2;
                at += (size_t)snprintf(buf + at, len - at, "%s%.*s", at ? " " : "",
                                       (int)strcspn(p, "\r"), p);
        }
        return buf;
}

#define HAS(r, s) ck_assert_msg(strstr(r, s), "no %s in INFO", s)

/* INFO's sections and fields as Redis 7.0 names and orders them (the ones
 * vkd has); redis_compat.py compares them with a live redis-server. */
START_TEST(test_info)
{
        char sections[512];
        const char *r = run("info");
        ck_assert_str_eq(section_names(r, sections, sizeof sections),
                         "Server Clients Memory Persistence Stats Replication CPU Modules "
                         "Errorstats Cluster Keyspace");
        ck_assert_str_eq(section_names(run("info everything"), sections, sizeof sections),
                         "Server Clients Memory Persistence Stats Replication CPU Modules "
                         "Commandstats Errorstats Cluster Keyspace");
        ck_assert_str_eq(section_names(run("info cpu SERVER nosuch"), sections, sizeof sections),
                         "Server CPU");
        IS("info nosuch", "$0\r\n\r\n");
        r = run("info");
        HAS(r, "\r\nmem_allocator:");
        HAS(r, "\r\nused_memory_human:");
        HAS(r, "\r\n# Persistence\r\nloading:0\r\nasync_loading:0\r\n");
        HAS(r, "\r\naof_enabled:0\r\n");
        HAS(r, "\r\nrdb_changes_since_last_save:");
        HAS(r, "\r\ntotal_error_replies:");
        HAS(r, "\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        HAS(r, "\r\nmaster_repl_offset:0\r\n");
        HAS(r, "\r\n# CPU\r\nused_cpu_sys:");
        HAS(r, "\r\nused_cpu_user:");
        HAS(r, "\r\n# Modules\r\n\r\n# Errorstats\r\n");
        HAS(r, "\r\n# Cluster\r\ncluster_enabled:0\r\n");
        HAS(r, "\r\nrun_id:");

        /* calls, rejected (before it ran: arity, -OOM) and failed (an error
         * reply) per command, and per subcommand; errors by their code */
        IS("config resetstat", "+OK\r\n");
        IS("set a 1", "+OK\r\n");
        run("incr a b c");
        run("lpush a x");
        IS("get a", "$1\r\n1\r\n");
        run("nosuch");
        run("hello 4");
        run("client setname");
        run("client nosuch");
        db.cfg.maxmemory = 1;
        IS("set b 2", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
        db.cfg.maxmemory = 0;
        r = run("info commandstats");
        HAS(r, "# Commandstats\r\n");
        HAS(r, "\r\ncmdstat_set:calls=1,usec=");
        HAS(r, ",rejected_calls=1,failed_calls=0\r\ncmdstat_");
        HAS(r, "\r\ncmdstat_incr:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,"
               "failed_calls=0\r\n");
        HAS(r, "\r\ncmdstat_config|resetstat:calls=1,");
        HAS(r, "\r\ncmdstat_client|setname:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,"
               "failed_calls=0\r\n");
        ck_assert(strstr(strstr(r, "cmdstat_lpush:calls=1,"), ",rejected_calls=0,failed_calls=1"));
        ck_assert(strstr(strstr(r, "cmdstat_hello:calls=1,"), ",rejected_calls=0,failed_calls=1"));
        ck_assert(!strstr(r, "cmdstat_nosuch") && !strstr(r, "cmdstat_client:"));
        r = run("info errorstats stats");
        HAS(r, "\r\ntotal_error_replies:7\r\n");
        HAS(r, "# Errorstats\r\nerrorstat_ERR:count=4\r\nerrorstat_NOPROTO:count=1\r\n"
               "errorstat_OOM:count=1\r\nerrorstat_WRONGTYPE:count=1\r\n");
}
END_TEST

int main(void)
{
        Suite *s = suite_create("redis_cmds");
        TCase *tc = tcase_create("commands");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_strings);
        tcase_add_test(tc, test_keys_and_expiry);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_glob);
        tcase_add_test(tc, test_slices);
        tcase_add_test(tc, test_info);
        tcase_add_test(tc, test_oom);
        tcase_add_test(tc, test_aggregates);
        tcase_add_test(tc, test_multi);
        tcase_add_test(tc, test_resp3);
        tcase_add_test(tc, test_maxmemory_and_info);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

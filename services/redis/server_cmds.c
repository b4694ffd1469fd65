/*
 * The redis service's connection and server commands: PING, HELLO, CLIENT, COMMAND, CONFIG, INFO
 * and friends.
 */
#include <ctype.h>
#include <errno.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* Connection and server commands. */

void cmd_ping(struct ctx *x)
{
        if (x->argc > 2)
                return r_arity(x, "ping");
        if (x->argc == 2)
                r_bulk(x, x->argv[1].ptr, x->argv[1].len);
        else
                r_simple(x, "PONG");
}

void cmd_echo(struct ctx *x)
{
        r_bulk(x, x->argv[1].ptr, x->argv[1].len);
}

void cmd_quit(struct ctx *x)
{
        r_ok(x);
        x->flags |= RDB_CLOSE;
}

void cmd_select(struct ctx *x)
{
        long long id;
        if (arg_ll(x, &x->argv[1], &id, NULL) < 0)
                return;
        if (id != 0)
                return r_err(x, "DB index is out of range");
        r_ok(x);
}

void cmd_auth(struct ctx *x)
{
        if (x->argc > 3)
                return r_err(x, E_SYNTAX);
        r_err(x, "AUTH <password> called without any password configured for the default user. "
                 "Are you sure your configuration is correct?");
}

static bool valid_name(const struct resp_arg *a)
{
        for (size_t i = 0; i < a->len; i++)
                if (a->ptr[i] < '!' || a->ptr[i] > '~')
                        return false;
        return true;
}

/* Returns 0, or -ENOMEM with the old name kept. */
static int set_name(struct rclient *c, const struct resp_arg *a)
{
        char *name = NULL;
        if (a->len) {
                if (!(name = zmalloc(a->len + 1)))
                        return -ENOMEM;
                memcpy(name, a->ptr, a->len);
                name[a->len] = 0;
        }
        zfree(c->name);
        c->name = name;
        return 0;
}

void cmd_hello(struct ctx *x)
{
        long long ver = x->c->proto;
        const struct resp_arg *name = NULL;
        if (x->argc >= 2) {
                if (resp_strtoll(x->argv[1].ptr, x->argv[1].len, &ver) < 0)
                        return r_err(x, "Protocol version is not an integer or out of range");
                if (ver < 2 || ver > 3)
                        return r_err(x, "-NOPROTO unsupported protocol version");
        }
        for (size_t j = 2; j < x->argc; j++) {
                size_t more = x->argc - j - 1;
                if (arg_is(&x->argv[j], "AUTH") && more >= 2) {
                        j += 2;
                } else if (arg_is(&x->argv[j], "SETNAME") && more >= 1) {
                        name = &x->argv[++j];
                        if (!valid_name(name))
                                return r_err(x, "Client names cannot contain spaces, newlines or "
                                                "special characters.");
                } else {
                        return r_errf(x, "Syntax error in HELLO option '%.*s'", (int)x->argv[j].len,
                                      x->argv[j].ptr);
                }
        }
        if (name && set_name(x->c, name) < 0)
                return r_oom(x);
        x->c->proto = (int)ver;
        r_map(x, 7);
        r_bulk_str(x, "server");
        r_bulk_str(x, "redis");
        r_bulk_str(x, "version");
        r_bulk_str(x, VERSION);
        r_bulk_str(x, "proto");
        r_int(x, ver);
        r_bulk_str(x, "id");
        r_int(x, (long long)x->c->id);
        r_bulk_str(x, "mode");
        r_bulk_str(x, "standalone");
        r_bulk_str(x, "role");
        r_bulk_str(x, "master");
        r_bulk_str(x, "modules");
        r_array(x, 0);
}

static void sub_arity(struct ctx *x, const char *cmd, const struct resp_arg *sub)
{
        char low[64];
        size_t n = sub->len < sizeof low - 1 ? sub->len : sizeof low - 1;
        for (size_t i = 0; i < n; i++)
                low[i] = (char)tolower((unsigned char)sub->ptr[i]);
        low[n] = 0;
        x->rejected = true;
        r_errf(x, "wrong number of arguments for '%s|%s' command", cmd, low);
}

static void unknown_sub(struct ctx *x, const char *cmd)
{
        int n = (int)strnlen(x->argv[1].ptr, x->argv[1].len);
        r_errf(x, "unknown subcommand '%.*s'. Try %s HELP.", n < 128 ? n : 128, x->argv[1].ptr,
               cmd);
}

void cmd_client(struct ctx *x)
{
        const struct resp_arg *sub = &x->argv[1];
        if (arg_is(sub, "ID")) {
                if (x->argc != 2)
                        return sub_arity(x, "client", sub);
                return r_int(x, (long long)x->c->id);
        }
        if (arg_is(sub, "GETNAME")) {
                if (x->argc != 2)
                        return sub_arity(x, "client", sub);
                if (!x->c->name)
                        return r_null(x);
                return r_bulk_str(x, x->c->name);
        }
        if (arg_is(sub, "SETNAME")) {
                if (x->argc != 3)
                        return sub_arity(x, "client", sub);
                if (!valid_name(&x->argv[2]))
                        return r_err(x, "Client names cannot contain spaces, newlines or special "
                                        "characters.");
                if (set_name(x->c, &x->argv[2]) < 0)
                        return r_oom(x);
                return r_ok(x);
        }
        if (arg_is(sub, "SETINFO")) {
                if (x->argc != 4)
                        return sub_arity(x, "client", sub);
                return r_ok(x);
        }
        unknown_sub(x, "CLIENT");
}

static void command_info(struct ctx *x, const struct rcmd *c)
{
        r_array(x, 10);
        r_bulk_str(x, c->name);
        r_int(x, c->arity);
        size_t nf = !!(c->flags & F_WRITE) + !!(c->flags & F_READONLY) + !!(c->flags & F_DENYOOM) +
                    !!(c->flags & F_FAST);
        r_set(x, nf);
        if (c->flags & F_WRITE)
                ADD(x->o, 16, resp_add_simple(out_, cap_, "write", 5));
        if (c->flags & F_READONLY)
                ADD(x->o, 16, resp_add_simple(out_, cap_, "readonly", 8));
        if (c->flags & F_DENYOOM)
                ADD(x->o, 16, resp_add_simple(out_, cap_, "denyoom", 7));
        if (c->flags & F_FAST)
                ADD(x->o, 16, resp_add_simple(out_, cap_, "fast", 4));
        bool keyed = (c->flags & (F_WRITE | F_READONLY)) && strcmp(c->name, "dbsize") &&
                     strcmp(c->name, "flushdb") && strcmp(c->name, "flushall") &&
                     strcmp(c->name, "keys") && strcmp(c->name, "scan");
        r_int(x, keyed);
        r_int(x, !keyed ? 0 : c->arity < 0 && strchr("dem", c->name[0]) ? -1 : 1);
        r_int(x, keyed);
        r_set(x, 0);
        r_set(x, 0);
        r_set(x, 0);
        r_array(x, 0);
}

void cmd_command(struct ctx *x)
{
        size_t n;
        const struct rcmd *const *cmds = cmd_all(&n);
        if (x->argc == 1) {
                r_array(x, n);
                for (size_t i = 0; i < n; i++)
                        command_info(x, cmds[i]);
                return;
        }
        const struct resp_arg *sub = &x->argv[1];
        if (arg_is(sub, "COUNT")) {
                if (x->argc != 2)
                        return sub_arity(x, "command", sub);
                return r_int(x, (long long)n);
        }
        if (arg_is(sub, "DOCS"))
                return r_map(x, 0);
        if (arg_is(sub, "INFO")) {
                r_array(x, x->argc - 2);
                for (size_t j = 2; j < x->argc; j++) {
                        const struct rcmd *c = NULL;
                        for (size_t i = 0; i < n && !c; i++)
                                if (arg_is(&x->argv[j], cmds[i]->name))
                                        c = cmds[i];
                        if (c)
                                command_info(x, c);
                        else
                                r_null_array(x);
                }
                return;
        }
        unknown_sub(x, "COMMAND");
}

void cmd_config(struct ctx *x)
{
        const struct resp_arg *sub = &x->argv[1];
        if (arg_is(sub, "GET")) {
                if (x->argc < 3)
                        return sub_arity(x, "config", sub);
                char mm[32], db[16];
                snprintf(mm, sizeof mm, "%llu", (unsigned long long)x->db->cfg.maxmemory);
                snprintf(db, sizeof db, "%u", x->db->cfg.databases);
                const char *params[][2] = {
                        {"save", ""},      {"appendonly", x->db->cfg.appendonly ? "yes" : "no"},
                        {"maxmemory", mm}, {"maxmemory-policy", "noeviction"},
                        {"databases", db},
                };
                size_t np = sizeof params / sizeof params[0], hits = 0;
                bool hit[sizeof params / sizeof params[0]] = {0};
                for (size_t j = 2; j < x->argc; j++)
                        for (size_t i = 0; i < np; i++)
                                if (arg_is(&x->argv[j], params[i][0]) && !hit[i])
                                        hit[i] = true, hits++;
                r_map(x, hits);
                for (size_t i = 0; i < np; i++) {
                        if (!hit[i])
                                continue;
                        r_bulk_str(x, params[i][0]);
                        r_bulk_str(x, params[i][1]);
                }
                return;
        }
        if (arg_is(sub, "RESETSTAT")) {
                if (x->argc != 2)
                        return sub_arity(x, "config", sub);
                memset(&x->db->st, 0, sizeof x->db->st);
                x->job->errors = 0; /* this command's own baseline restarts too */
                return r_ok(x);
        }
        unknown_sub(x, "CONFIG");
}

void cmd_time(struct ctx *x)
{
        struct timeval tv;
        gettimeofday(&tv, NULL);
        r_array(x, 2);
        r_bulk_ll(x, tv.tv_sec);
        r_bulk_ll(x, tv.tv_usec);
}

/* ------------------------------------------------------------------ */
/* INFO: Redis 7.0's sections in its order, with the fields of each that
 * mean something here, named and ordered as Redis has them. */

/* Redis's bytesToHuman: 1023B, 1.00K, 1.50M, ... */
static const char *human(char *buf, size_t len, uint64_t n)
{
        double d = (double)n;
        int unit = -1;
        while (d >= 1024 && unit < 5) {
                d /= 1024;
                unit++;
        }
        if (unit < 0)
                snprintf(buf, len, "%lluB", (unsigned long long)n);
        else
                snprintf(buf, len, "%.2f%c", d, "KMGTPE"[unit]);
        return buf;
}

static void info_server(struct ctx *x, FILE *f)
{
        struct utsname u;
        struct timeval tv;
        if (uname(&u) < 0)
                memset(&u, 0, sizeof u);
        gettimeofday(&tv, NULL);
        long long up = (long long)(x->now - x->db->started_ms) / 1000;
        fprintf(f,
                "redis_version:%s\r\nredis_mode:standalone\r\nvkd_service:redis\r\n"
                "os:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:vkd\r\nprocess_id:%d\r\n"
                "run_id:%s\r\nserver_time_usec:%lld\r\nuptime_in_seconds:%lld\r\n"
                "uptime_in_days:%lld\r\nhz:10\r\nconfigured_hz:10\r\n",
                VERSION, u.sysname, u.release, u.machine, (int)(8 * sizeof(void *)), (int)getpid(),
                x->db->run_id, (long long)tv.tv_sec * 1000000 + tv.tv_usec, up, up / 86400);
}

static void info_clients(struct ctx *x, FILE *f)
{
        fprintf(f, "connected_clients:%zu\r\nblocked_clients:0\r\n", x->db->clients);
}

static void info_memory(struct ctx *x, FILE *f)
{
        struct rdb *db = x->db;
        char h[3][32];
        uint64_t used = rdb_used_memory(), peak = rdb_peak_memory();
        fprintf(f,
                "used_memory:%llu\r\nused_memory_human:%s\r\nused_memory_peak:%llu\r\n"
                "used_memory_peak_human:%s\r\nmaxmemory:%llu\r\nmaxmemory_human:%s\r\n"
                "maxmemory_policy:noeviction\r\nmem_allocator:%s\r\n"
                "lazyfree_pending_objects:%zu\r\nlazyfreed_objects:%llu\r\n",
                (unsigned long long)used, human(h[0], sizeof h[0], used), (unsigned long long)peak,
                human(h[1], sizeof h[1], peak), (unsigned long long)db->cfg.maxmemory,
                human(h[2], sizeof h[2], db->cfg.maxmemory), server_allocator(), db->garbage_len,
                (unsigned long long)db->lazyfreed);
}

/* No RDB snapshots and no AOF rewrites here: those fields say so. */
static void info_persistence(struct ctx *x, FILE *f)
{
        struct rdb *db = x->db;
        fprintf(f,
                "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:%llu\r\n"
                "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%lld\r\n"
                "rdb_last_bgsave_status:ok\r\nrdb_last_bgsave_time_sec:-1\r\n"
                "rdb_current_bgsave_time_sec:-1\r\nrdb_saves:0\r\naof_enabled:%d\r\n"
                "aof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\n"
                "aof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\n"
                "aof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\n"
                "aof_last_write_status:%s\r\n",
                (unsigned long long)db->dirty, (long long)db->started_ms / 1000, db->cfg.appendonly,
                db->aof_write_failed ? "err" : "ok");
        if (db->cfg.appendonly)
                fprintf(f, "aof_current_size:%llu\r\naof_base_size:%llu\r\naof_buffer_length:0\r\n",
                        (unsigned long long)db->aof_size, (unsigned long long)db->aof_base_size);
}

static void info_stats(struct ctx *x, FILE *f)
{
        const struct rdb_stats *st = &x->db->st;
        fprintf(f,
                "total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
                "rejected_connections:0\r\nexpired_keys:%llu\r\nevicted_keys:0\r\n"
                "keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\ntotal_error_replies:%llu\r\n",
                (unsigned long long)st->connections, (unsigned long long)st->commands,
                (unsigned long long)st->net_in, (unsigned long long)st->net_out,
                (unsigned long long)st->expired, (unsigned long long)st->hits,
                (unsigned long long)st->misses, (unsigned long long)st->error_replies);
}

static void info_replication(struct ctx *x, FILE *f)
{
        fprintf(f,
                "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\n"
                "master_replid:%s\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n"
                "master_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n"
                "repl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\n"
                "repl_backlog_histlen:0\r\n",
                x->db->replid);
}

static double seconds(struct timeval tv)
{
        return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void info_cpu(struct ctx *x, FILE *f)
{
        struct rusage self, children, thread;
        getrusage(RUSAGE_SELF, &self);
        getrusage(RUSAGE_CHILDREN, &children);
        getrusage(RUSAGE_THREAD, &thread);
        fprintf(f,
                "used_cpu_sys:%f\r\nused_cpu_user:%f\r\nused_cpu_sys_children:%f\r\n"
                "used_cpu_user_children:%f\r\nused_cpu_sys_main_thread:%f\r\n"
                "used_cpu_user_main_thread:%f\r\n",
                seconds(self.ru_stime), seconds(self.ru_utime), seconds(children.ru_stime),
                seconds(children.ru_utime), seconds(thread.ru_stime), seconds(thread.ru_utime));
}

static void info_none(struct ctx *x, FILE *f)
{
}

static void info_commandstats(struct ctx *x, FILE *f)
{
        for (size_t i = 0; i < cmd_stat_slots(); i++) {
                const struct rcmdstat *c = &x->db->st.cmd[i];
                if (!c->calls && !c->rejected && !c->failed)
                        continue;
                fprintf(f,
                        "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                        "failed_calls=%llu\r\n",
                        cmd_stat_name(i), (unsigned long long)c->calls, (unsigned long long)c->usec,
                        c->calls ? (double)c->usec / (double)c->calls : 0.0,
                        (unsigned long long)c->rejected, (unsigned long long)c->failed);
        }
}

static void info_errorstats(struct ctx *x, FILE *f)
{
        for (size_t i = 0; i < RDB_ERRSTATS && x->db->st.err[i].code[0]; i++)
                fprintf(f, "errorstat_%s:count=%llu\r\n", x->db->st.err[i].code,
                        (unsigned long long)x->db->st.err[i].count);
}

static void info_cluster(struct ctx *x, FILE *f)
{
        fprintf(f, "cluster_enabled:0\r\n");
}

static void info_keyspace(struct ctx *x, FILE *f)
{
        if (dict_size(&x->db->keys))
                fprintf(f, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", dict_size(&x->db->keys),
                        x->db->nexpires);
}

static const struct {
        const char *name;
        void (*fn)(struct ctx *x, FILE *f);
        bool by_default; /* in INFO and INFO default, not only in INFO all */
} info_sections[] = {
        {"Server", info_server, true},
        {"Clients", info_clients, true},
        {"Memory", info_memory, true},
        {"Persistence", info_persistence, true},
        {"Stats", info_stats, true},
        {"Replication", info_replication, true},
        {"CPU", info_cpu, true},
        {"Modules", info_none, true},
        {"Commandstats", info_commandstats, false},
        {"Errorstats", info_errorstats, true},
        {"Cluster", info_cluster, true},
        {"Keyspace", info_keyspace, true},
};
#define NSECTIONS (sizeof info_sections / sizeof info_sections[0])

void cmd_info(struct ctx *x)
{
        bool want[NSECTIONS] = {0};
        for (size_t i = 0; i < NSECTIONS; i++) {
                want[i] = x->argc == 1 && info_sections[i].by_default;
                for (size_t j = 1; j < x->argc; j++) {
                        const struct resp_arg *a = &x->argv[j];
                        want[i] |= arg_is(a, info_sections[i].name) || arg_is(a, "all") ||
                                   arg_is(a, "everything") ||
                                   (arg_is(a, "default") && info_sections[i].by_default);
                }
        }
        char *t = NULL;
        size_t tn = 0;
        FILE *f = open_memstream(&t, &tn);
        if (!f)
                return r_oom(x);
        bool first = true;
        for (size_t i = 0; i < NSECTIONS; i++) {
                if (!want[i])
                        continue;
                fprintf(f, "%s# %s\r\n", first ? "" : "\r\n", info_sections[i].name);
                info_sections[i].fn(x, f);
                first = false;
        }
        fclose(f);
        r_verbatim(x, t, tn);
        free(t);
}

/* The server_allocator malloc is: jemalloc when the host links it (the daemon),
 * which answers mallctl(), else the C library's. */
const char *server_allocator(void)
{
        static char name[32];
        if (name[0])
                return name;
        int (*mallctl)(const char *, void *, size_t *, void *, size_t);
        *(void **)&mallctl = dlsym(RTLD_DEFAULT, "mallctl");
        const char *v = NULL;
        size_t len = sizeof v;
        if (mallctl && mallctl("version", &v, &len, NULL, 0) == 0 && v)
                snprintf(name, sizeof name, "jemalloc-%.*s", (int)strcspn(v, "-"), v);
        else
                snprintf(name, sizeof name, "libc");
        return name;
}

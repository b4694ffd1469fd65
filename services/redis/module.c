/*
 * The redis service as a daemon module: its [Module] keys and init.
 *
 *   MaxMemory=0            bytes of keyspace before writes get -OOM (0: none; 100mb, 1G)
 *   MaxBulkLen=512M        longest bulk argument a client may send (Redis's proto-max-bulk-len)
 *   Databases=1            SELECT accepts 0 only: -ERR DB index is out of range otherwise
 *   AppendOnly=no          yes: log write commands and replay them at start
 *   AppendFsync=everysec   always | everysec | no
 *   AppendFilename=appendonly.aof
 *   Dir=.                  where the append-only file lives
 *
 * The keyspace belongs to one store process per worker, so run the service
 * with Workers=1 (each worker would otherwise hold its own keyspace).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_int.h"

static const struct vk_module_key redis_keys[] = {
        {"MaxMemory", "bytes of data before writes fail with -OOM (0: no limit)"},
        {"MaxBulkLen", "longest bulk string a client may send (default 512M)"},
        {"Databases", "number of databases SELECT accepts: only 1 is supported"},
        {"AppendOnly", "yes | no: log writes to an append-only file, replayed at start"},
        {"AppendFsync", "always | everysec | no"},
        {"AppendFilename", "name of the append-only file (default appendonly.aof)"},
        {"Dir", "directory of the append-only file (default .)"},
        {NULL, NULL},
};

/* "100", "64k", "64K", "100mb", "1G": bytes, Redis's memtoll units. */
static int parse_mem(const char *s, unsigned long long *ret)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || errno || *s == '-')
                return -EINVAL;
        unsigned long long mul = 1;
        if (!*end || !strcasecmp(end, "b"))
                mul = 1;
        else if (!strcasecmp(end, "k") || !strcasecmp(end, "kb"))
                mul = 1024;
        else if (!strcasecmp(end, "m") || !strcasecmp(end, "mb"))
                mul = 1024 * 1024;
        else if (!strcasecmp(end, "g") || !strcasecmp(end, "gb"))
                mul = 1024ull * 1024 * 1024;
        else
                return -EINVAL;
        if (v > ~0ull / mul)
                return -ERANGE;
        *ret = v * mul;
        return 0;
}

int redis_configure(struct redis_conf *conf, const struct vk_module_kv *kv, size_t n, char *err,
                    size_t errlen)
{
        memset(conf, 0, sizeof *conf);
        resp_limits_default(&conf->limits);
        conf->db.max_bulk = conf->limits.max_bulk;
        conf->db.databases = 1;
        conf->fsync = FSYNC_EVERYSEC;
        snprintf(conf->dir, sizeof conf->dir, ".");
        snprintf(conf->aof_name, sizeof conf->aof_name, "appendonly.aof");
        for (size_t i = 0; i < n; i++) {
                const char *k = kv[i].key, *v = kv[i].value;
                unsigned long long u;
                int r = 0;
                if (!strcmp(k, "MaxMemory")) {
                        r = parse_mem(v, &u);
                        conf->db.maxmemory = u;
                } else if (!strcmp(k, "MaxBulkLen")) {
                        r = parse_mem(v, &u);
                        if (!r && (u < 1024 || u > (1ull << 32) - 1))
                                r = -ERANGE;
                        conf->limits.max_bulk = conf->db.max_bulk = (long long)u;
                } else if (!strcmp(k, "Databases")) {
                        r = parse_mem(v, &u);
                        if (!r && u != 1)
                                r = -ERANGE;
                } else if (!strcmp(k, "AppendOnly")) {
                        if (!strcmp(v, "yes"))
                                conf->db.appendonly = true;
                        else if (!strcmp(v, "no"))
                                conf->db.appendonly = false;
                        else
                                r = -EINVAL;
                } else if (!strcmp(k, "AppendFsync")) {
                        if (!strcmp(v, "always"))
                                conf->fsync = FSYNC_ALWAYS;
                        else if (!strcmp(v, "everysec"))
                                conf->fsync = FSYNC_EVERYSEC;
                        else if (!strcmp(v, "no"))
                                conf->fsync = FSYNC_NO;
                        else
                                r = -EINVAL;
                } else if (!strcmp(k, "AppendFilename")) {
                        if (!*v || strchr(v, '/') || strlen(v) >= sizeof conf->aof_name)
                                r = -EINVAL;
                        else
                                snprintf(conf->aof_name, sizeof conf->aof_name, "%s", v);
                } else if (!strcmp(k, "Dir")) {
                        if (!*v || strlen(v) >= sizeof conf->dir)
                                r = -EINVAL;
                        else
                                snprintf(conf->dir, sizeof conf->dir, "%s", v);
                } else {
                        snprintf(err, errlen, "%s:%u: %s: unknown key of the redis module",
                                 kv[i].file ? kv[i].file : "-", kv[i].line, k);
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(err, errlen, "%s:%u: %s: bad value \"%s\"",
                                 kv[i].file ? kv[i].file : "-", kv[i].line, k, v);
                        return -EINVAL;
                }
        }
        return 0;
}

static int redis_init(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                      size_t errlen)
{
        struct redis_conf *conf = malloc(sizeof *conf);
        if (!conf)
                return -ENOMEM;
        int r = redis_configure(conf, kv, n, err, errlen);
        if (r < 0) {
                free(conf);
                return r;
        }
        *ret_state = conf;
        return 0;
}

static void redis_fini(void *state)
{
        free(state);
}

VK_MODULE(.name = "redis", .version = "1.0", .keys = redis_keys, .init = redis_init,
          .fini = redis_fini, .main = redis_conn, .service = redis_store,
          .flags = VK_MODULE_ONE_WORKER); /* one store: the keyspace is not sharded */

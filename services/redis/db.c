/*
 * The redis service's keyspace: objects and how they are freed (lazily when large), lookups
 * with lazy expiry, propagation of rewritten commands, active expiry, and the
 * keyspace commands (DEL, EXISTS, TYPE, KEYS, SCAN, RENAME, EXPIRE and kin,
 * DBSIZE, FLUSHDB).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* Objects. */

struct dent *dent_new(const char *k, size_t n)
{
        struct dent *e = zmalloc(sizeof *e + n);
        if (!e)
                return NULL;
        memcpy(e->key, k, n);
        e->klen = (uint32_t)n;
        e->val = NULL;
        e->vlen = 0;
        e->expire = 0;
        e->type = RT_STRING;
        e->next = NULL;
        return e;
}

char *db_bytes_dup(const char *s, size_t n)
{
        char *p = zmalloc(n);
        if (p)
                memcpy(p, s, n);
        return p;
}

struct relem *relem_new(const char *s, size_t n)
{
        struct relem *r = zmalloc(sizeof *r + n);
        if (!r)
                return NULL;
        r->len = (uint32_t)n;
        memcpy(r->d, s, n);
        return r;
}

void field_free(struct dent *e, void *arg)
{
        zfree(e->val);
        zfree(e);
}

static void free_value(struct dent *e)
{
        switch (e->type) {
        case RT_STRING:
                zfree(e->val);
                break;
        case RT_LIST: {
                struct rlist *l = (struct rlist *)e->val;
                for (size_t i = 0; i < l->len; i++)
                        zfree(l->a[(l->head + i) & (l->cap - 1)]);
                zfree(l->a);
                zfree(l);
                break;
        }
        case RT_HASH:
        case RT_SET: {
                struct dict *d = (struct dict *)e->val;
                dict_clear(d, field_free, NULL);
                zfree(d);
                break;
        }
        case RT_ZSET:
                zset_free((struct zset *)e->val);
                break;
        }
        e->val = NULL;
}

/* ------------------------------------------------------------------ */
/* Lazy freeing: a value of more elements than this waits in db->garbage,
 * freed a slice at a time between commands, as Redis's lazyfree does in a
 * thread. */
#define LAZYFREE_THRESHOLD 64

static bool is_large(const struct dent *e)
{
        if (e->type == RT_LIST)
                return ((const struct rlist *)e->val)->len > LAZYFREE_THRESHOLD;
        if (e->type == RT_ZSET)
                return zset_len((const struct zset *)e->val) > LAZYFREE_THRESHOLD;
        return (e->type == RT_HASH || e->type == RT_SET) &&
               dict_size((const struct dict *)e->val) > LAZYFREE_THRESHOLD;
}

/* Queues holder g behind the one being freed (whose place is garbage_pos). */
static void garbage_add(struct rdb *db, struct dent *g)
{
        struct dent **at = db->garbage ? &db->garbage->next : &db->garbage;
        g->next = *at;
        *at = g;
        db->garbage_len++;
}

/* Frees e's value now, or hands it to rdb_lazyfree() if large (in a new
 * holder: e stays, empty). */
void db_drop_value(struct rdb *db, struct dent *e)
{
        struct dent *g = is_large(e) ? zcalloc(sizeof *g) : NULL;
        if (g) {
                g->type = e->type;
                g->val = e->val;
                garbage_add(db, g);
                e->val = NULL;
        } else {
                free_value(e);
        }
}

void db_free_key(struct rdb *db, struct dent *e)
{
        if (e->expire)
                db->nexpires--;
        if (is_large(e)) { /* e itself holds the value */
                garbage_add(db, e);
                return;
        }
        free_value(e);
        zfree(e);
}

/* An entry of a flushed keyspace (its expiry no longer counted). */
static void free_flushed(struct dent *e, void *arg)
{
        e->expire = 0;
        db_free_key(arg, e);
}

/* One step of freeing the first garbage holder, unlinked once empty. */
static void lazyfree_step(struct rdb *db)
{
        struct dent *g = db->garbage;
        struct dict *d = (struct dict *)g->val;
        switch (g->type) {
        case RT_LIST: {
                struct rlist *l = (struct rlist *)g->val;
                if (l->len) {
                        l->len--;
                        zfree(l->a[(l->head + l->len) & (l->cap - 1)]);
                        return;
                }
                zfree(l->a);
                break;
        }
        case RT_HASH:
        case RT_SET:
                if (dict_walk(d, &db->garbage_pos, field_free, NULL))
                        return;
                dict_release(d);
                break;
        case RT_ZSET: /* a member at a time, then its tables */
                if (zset_free_step((struct zset *)g->val))
                        return;
                break;
        case RT_KEYSPACE: /* its large values queue up behind it */
                if (dict_walk(d, &db->garbage_pos, free_flushed, db))
                        return;
                dict_release(d);
                break;
        }
        db->garbage = g->next;
        db->garbage_pos = 0;
        db->garbage_len--;
        db->lazyfreed++;
        zfree(g->val);
        zfree(g);
}

bool rdb_lazyfree(struct rdb *db, unsigned budget_us)
{
        uint64_t t0 = rdb_monotonic_us();
        for (unsigned steps = 1; db->garbage; steps++) {
                if (steps % 64 == 0 && rdb_monotonic_us() - t0 >= budget_us)
                        return true;
                lazyfree_step(db);
        }
        return false;
}

void db_free_key_cb(struct dent *e, void *arg)
{
        db_free_key(arg, e);
}

void db_delete(struct rdb *db, const char *k, size_t n)
{
        struct dent *e = dict_unlink(&db->keys, k, n);
        if (e)
                db_free_key(db, e);
}

/* The key's entry, or NULL if missing or expired (then deleted: lazy expiry). */
struct dent *db_lookup(struct ctx *x, const struct resp_arg *k)
{
        struct dent *e = dict_find(&x->db->keys, k->ptr, k->len);
        if (e && e->expire && e->expire <= x->now) {
                db_delete(x->db, k->ptr, k->len);
                watch_touch(x->db, k->ptr, k->len);
                x->db->st.expired++;
                return NULL;
        }
        return e;
}

/* db_lookup() for reading: counts hits and misses. */
struct dent *db_lookup_read(struct ctx *x, const struct resp_arg *k)
{
        struct dent *e = db_lookup(x, k);
        if (e)
                x->db->st.hits++;
        else
                x->db->st.misses++;
        return e;
}

/* db_lookup() of a key that must have type t: replies WRONGTYPE and sets *bad if not. */
struct dent *db_lookup_type(struct ctx *x, const struct resp_arg *k, int t, bool *bad)
{
        struct dent *e = db_lookup(x, k);
        *bad = e && e->type != t;
        if (*bad)
                r_err(x, E_WRONGTYPE);
        return e;
}

void db_set_expire(struct rdb *db, struct dent *e, int64_t when)
{
        if (!e->expire && when)
                db->nexpires++;
        else if (e->expire && !when)
                db->nexpires--;
        e->expire = when;
}

/* Adds e to the keyspace, or frees it; NULL when out of memory. */
struct dent *db_add(struct rdb *db, struct dent *e)
{
        if (e && dict_add(&db->keys, e) == 0)
                return e;
        if (e)
                db_free_key(db, e);
        return NULL;
}

/* A new, empty list, hash, set or zset at k; NULL when out of memory. */
struct dent *db_new_key(struct ctx *x, const struct resp_arg *k, int type)
{
        struct dent *e = dent_new(k->ptr, k->len);
        if (!e)
                return NULL;
        e->type = (uint8_t)type;
        if (type == RT_LIST) {
                e->val = zcalloc(sizeof(struct rlist));
        } else if (type == RT_ZSET) {
                e->val = (char *)zset_new();
        } else if ((e->val = zmalloc(sizeof(struct dict)))) {
                dict_init((struct dict *)e->val);
        }
        if (!e->val) {
                zfree(e);
                return NULL;
        }
        return db_add(x->db, e);
}

/* Deletes a list, hash, set or zset key that became empty. */
void db_drop_if_empty(struct ctx *x, struct dent *e)
{
        size_t n = e->type == RT_LIST   ? ((struct rlist *)e->val)->len
                   : e->type == RT_ZSET ? zset_len((struct zset *)e->val)
                                        : dict_size((struct dict *)e->val);
        if (!n)
                db_delete(x->db, e->key, e->klen);
}

/* ------------------------------------------------------------------ */
/* Propagation (AOF) of a command rewritten with absolute times. */

/* A command builds its rewritten form before it changes anything: if
 * prop_failed() then, it answers -OOM instead. */
void prop_begin(struct ctx *x)
{
        x->db->prop.len = 0;
        x->db->prop.failed = false;
        x->db->prop_argc = 0;
}

bool prop_failed(struct ctx *x)
{
        if (x->db->prop.failed)
                r_oom(x);
        return x->db->prop.failed;
}

void prop_arg(struct ctx *x, const char *s, size_t n)
{
        struct rbuf *b = &x->db->prop;
        if (rbuf_reserve(b, sizeof(uint32_t) + n) < 0)
                return;
        uint32_t l = (uint32_t)n;
        memcpy(b->p + b->len, &l, sizeof l);
        memcpy(b->p + b->len + sizeof l, s, n);
        b->len += sizeof l + n;
        x->db->prop_argc++;
}

void prop_ll(struct ctx *x, long long v)
{
        char b[RESP_LLSTR_SIZE];
        prop_arg(x, b, resp_ll2str(b, v));
}

/* ------------------------------------------------------------------ */
/* Active expiry. */

struct expiring {
        int64_t now;
        struct resp_arg keys[64];
        size_t n, seen;
};

static void note_expired(struct dent *e, void *arg)
{
        struct expiring *w = arg;
        w->seen++;
        if (e->expire && e->expire <= w->now && w->n < 64)
                w->keys[w->n++] = (struct resp_arg){e->key, e->klen};
}

size_t rdb_active_expire(struct rdb *db, unsigned budget_us)
{
        if (!db->nexpires)
                return 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        size_t deleted = 0, visited = 0;
        for (int round = 0;; round++) {
                struct expiring w = {.now = rdb_mstime()};
                /* A batch of buckets, then the expired keys in it go. */
                for (int i = 0; i < 16 && w.n < 48; i++) {
                        db->scan_cursor = dict_scan(&db->keys, db->scan_cursor, note_expired, &w);
                        if (!db->scan_cursor)
                                break;
                }
                for (size_t i = 0; i < w.n; i++) {
                        struct resp_arg k = w.keys[i];
                        watch_touch(db, k.ptr, k.len);
                        /* the key bytes live in the entry: copy before freeing */
                        char buf[256];
                        if (k.len > sizeof buf) {
                                struct dent *e = dict_unlink(&db->keys, k.ptr, k.len);
                                if (e)
                                        db_free_key(db, e);
                        } else {
                                memcpy(buf, k.ptr, k.len);
                                db_delete(db, buf, k.len);
                        }
                        deleted++;
                        db->st.expired++;
                }
                visited += w.seen;
                if (!db->scan_cursor || !db->nexpires || visited >= dict_size(&db->keys))
                        break;
                clock_gettime(CLOCK_MONOTONIC, &t1);
                long us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
                if (us >= (long)budget_us)
                        break;
        }
        return deleted;
}

/* ------------------------------------------------------------------ */
/* The AOF record format. */

size_t rdb_multibulk_size(const struct resp_arg *argv, size_t argc)
{
        size_t n = 24;
        for (size_t i = 0; i < argc; i++)
                n += argv[i].len + 32;
        return n;
}

int rdb_append_multibulk(struct rbuf *b, const struct resp_arg *argv, size_t argc)
{
        if (rbuf_reserve(b, rdb_multibulk_size(argv, argc)) < 0)
                return -ENOMEM;
        b->len += resp_add_array(b->p + b->len, b->cap - b->len, argc);
        for (size_t i = 0; i < argc; i++)
                b->len += resp_add_bulk(b->p + b->len, b->cap - b->len, argv[i].ptr, argv[i].len);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Keys. */

void cmd_del(struct ctx *x)
{
        for (size_t j = slice_resume_at(x, 1); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                if (db_lookup(x, &x->argv[j])) {
                        db_delete(x->db, x->argv[j].ptr, x->argv[j].len);
                        x->job->n++;
                }
        }
        x->db->dirty += (uint64_t)x->job->n;
        r_int(x, x->job->n);
}

void cmd_exists(struct ctx *x)
{
        for (size_t j = slice_resume_at(x, 1); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                x->job->n += db_lookup(x, &x->argv[j]) != NULL;
        }
        r_int(x, x->job->n);
}

static const char *type_name(int t)
{
        switch (t) {
        case RT_STRING:
                return "string";
        case RT_LIST:
                return "list";
        case RT_HASH:
                return "hash";
        case RT_SET:
                return "set";
        case RT_ZSET:
                return "zset";
        }
        return "none";
}

void cmd_type(struct ctx *x)
{
        struct dent *e = db_lookup(x, &x->argv[1]);
        r_simple(x, e ? type_name(e->type) : "none");
}

/* KEYS and SCAN: the keys found go to x->job->acc, counted in x->job->n. */
struct collect {
        struct ctx *x;
        const struct resp_arg *pattern; /* NULL: all */
        int type;                       /* 0: any */
};

static void collect_key(struct dent *e, void *arg)
{
        struct collect *k = arg;
        if (e->expire && e->expire <= k->x->now)
                return;
        if (k->type && e->type != k->type)
                return;
        if (k->pattern && !(k->pattern->len == 1 && k->pattern->ptr[0] == '*') &&
            !glob_match(k->pattern->ptr, k->pattern->len, e->key, e->klen))
                return;
        ADD(&k->x->job->acc, e->klen + 32, resp_add_bulk(out_, cap_, e->key, e->klen));
        k->x->job->n++;
}

/* The array of what collect_key gathered. */
/* Answers the x->job->n replies held back in x->job->acc, as an array. */
void collect_reply(struct ctx *x)
{
        struct rbuf *keys = &x->job->acc;
        if (keys->failed)
                return r_oom(x);
        r_array(x, (size_t)x->job->n);
        if (keys->len && rbuf_reserve(x->o, keys->len) == 0) {
                /* no keys: no buffer either (memcpy from NULL) */
                memcpy(x->o->p + x->o->len, keys->p, keys->len);
                x->o->len += keys->len;
        }
}

void cmd_keys(struct ctx *x)
{
        struct collect k = {.x = x, .pattern = &x->argv[1]};
        size_t pos = slice_resume_at(x, 0);
        while (dict_walk(&x->db->keys, &pos, collect_key, &k))
                if (slice_pause(x, pos))
                        return;
        collect_reply(x);
}

void cmd_scan(struct ctx *x)
{
        const struct resp_arg *c = &x->argv[1];
        char num[32];
        char *end;
        if (!c->len || c->len >= sizeof num)
                return r_err(x, "invalid cursor");
        memcpy(num, c->ptr, c->len);
        num[c->len] = 0;
        errno = 0;
        unsigned long cursor = strtoul(num, &end, 10);
        if (isspace((unsigned char)num[0]) || *end || errno == ERANGE)
                return r_err(x, "invalid cursor");
        struct collect k = {.x = x};
        long long count = 10;
        for (size_t j = 2; j < x->argc; j += 2) {
                bool next = j + 1 < x->argc;
                if (next && arg_is(&x->argv[j], "COUNT")) {
                        if (arg_ll(x, &x->argv[j + 1], &count, NULL) < 0)
                                return;
                        if (count < 1)
                                return r_err(x, E_SYNTAX);
                } else if (next && arg_is(&x->argv[j], "MATCH")) {
                        k.pattern = &x->argv[j + 1];
                } else if (next && arg_is(&x->argv[j], "TYPE")) {
                        const struct resp_arg *t = &x->argv[j + 1];
                        k.type = arg_is(t, "string") ? RT_STRING
                                 : arg_is(t, "list") ? RT_LIST
                                 : arg_is(t, "hash") ? RT_HASH
                                 : arg_is(t, "set")  ? RT_SET
                                 : arg_is(t, "zset") ? RT_ZSET
                                                     : -1;
                } else {
                        return r_err(x, E_SYNTAX);
                }
        }
        if (x->resumed) {
                cursor = x->job->pos;
        } else {
                x->job->left = count > LLONG_MAX / 10 ? LLONG_MAX : (size_t)count * 10;
        }
        do {
                if (slice_pause(x, cursor))
                        return;
                cursor = dict_scan(&x->db->keys, cursor, collect_key, &k);
        } while (cursor && x->job->n < count && --x->job->left > 0);
        if (x->job->acc.failed)
                return r_oom(x);
        r_array(x, 2);
        r_bulk_ll(x, (long long)cursor);
        collect_reply(x);
}

/* RENAME, or with nx RENAMENX (answers 0 and changes nothing if `to` exists). */
static void rename_generic(struct ctx *x, bool nx)
{
        const struct resp_arg *from = &x->argv[1], *to = &x->argv[2];
        struct dent *e = db_lookup(x, from);
        if (!e)
                return r_err(x, E_NOKEY);
        if (from->len == to->len && !memcmp(from->ptr, to->ptr, to->len))
                return nx ? r_int(x, 0) : r_ok(x);
        bool exists = db_lookup(x, to) != NULL;
        if (exists && nx)
                return r_int(x, 0);
        struct dent *n = dent_new(to->ptr, to->len);
        if (!n)
                return r_oom(x);
        if (exists)
                db_delete(x->db, to->ptr, to->len);
        e = dict_unlink(&x->db->keys, from->ptr, from->len);
        n->val = e->val;
        n->vlen = e->vlen;
        n->type = e->type;
        n->expire = e->expire;
        zfree(e);
        (void)dict_add(&x->db->keys, n); /* cannot fail: the table held `from` */
        x->db->dirty++;
        if (nx)
                r_int(x, 1);
        else
                r_ok(x);
}

void cmd_rename(struct ctx *x)
{
        rename_generic(x, false);
}

void cmd_renamenx(struct ctx *x)
{
        rename_generic(x, true);
}

static void expire_generic(struct ctx *x, int64_t base, bool ms, const char *name)
{
        long long v;
        if (arg_ll(x, &x->argv[2], &v, NULL) < 0)
                return;
        enum { NX = 1, XX = 2, GT = 4, LT = 8 };
        unsigned f = 0;
        for (size_t j = 3; j < x->argc; j++) {
                const struct resp_arg *a = &x->argv[j];
                if (arg_is(a, "NX"))
                        f |= NX;
                else if (arg_is(a, "XX"))
                        f |= XX;
                else if (arg_is(a, "GT"))
                        f |= GT;
                else if (arg_is(a, "LT"))
                        f |= LT;
                else
                        return r_errf(x, "Unsupported option %.*s", (int)a->len, a->ptr);
        }
        if ((f & NX) && (f & (XX | GT | LT)))
                return r_err(x, "NX and XX, GT or LT options at the same time are not compatible");
        if ((f & GT) && (f & LT))
                return r_err(x, "GT and LT options at the same time are not compatible");
        if (!ms) {
                if (v > LLONG_MAX / 1000 || v < LLONG_MIN / 1000)
                        return r_errf(x, "invalid expire time in '%s' command", name);
                v *= 1000;
        }
        if ((v > 0 && base > LLONG_MAX - v) || (v < 0 && base < LLONG_MIN - v))
                return r_errf(x, "invalid expire time in '%s' command", name);
        v += base;
        struct dent *e = db_lookup(x, &x->argv[1]);
        if (!e)
                return r_int(x, 0);
        long long cur = e->expire ? e->expire : -1;
        if (((f & NX) && cur != -1) || ((f & XX) && cur == -1) ||
            ((f & GT) && (cur == -1 || v <= cur)) || ((f & LT) && cur != -1 && v >= cur))
                return r_int(x, 0);
        prop_begin(x);
        if (v <= x->now) {
                prop_arg(x, "DEL", 3);
                prop_arg(x, x->argv[1].ptr, x->argv[1].len);
        } else {
                prop_arg(x, "PEXPIREAT", 9);
                prop_arg(x, x->argv[1].ptr, x->argv[1].len);
                prop_ll(x, v);
        }
        if (prop_failed(x))
                return;
        if (v <= x->now)
                db_delete(x->db, x->argv[1].ptr, x->argv[1].len);
        else
                db_set_expire(x->db, e, v);
        x->db->dirty++;
        r_int(x, 1);
}

void cmd_expire(struct ctx *x)
{
        expire_generic(x, x->now, false, "expire");
}

void cmd_pexpire(struct ctx *x)
{
        expire_generic(x, x->now, true, "pexpire");
}

void cmd_expireat(struct ctx *x)
{
        expire_generic(x, 0, false, "expireat");
}

void cmd_pexpireat(struct ctx *x)
{
        expire_generic(x, 0, true, "pexpireat");
}

static void ttl(struct ctx *x, bool ms)
{
        struct dent *e = db_lookup_read(x, &x->argv[1]);
        if (!e)
                return r_int(x, -2);
        if (!e->expire)
                return r_int(x, -1);
        long long left = e->expire - x->now;
        if (left < 0)
                left = 0;
        r_int(x, ms ? left : (left + 500) / 1000);
}

/* EXPIRETIME and PEXPIRETIME: the absolute Unix time of the key's expiry. */
static void expiretime(struct ctx *x, bool ms)
{
        struct dent *e = db_lookup_read(x, &x->argv[1]);
        if (!e)
                return r_int(x, -2);
        if (!e->expire)
                return r_int(x, -1);
        r_int(x, ms ? e->expire : e->expire / 1000);
}

void cmd_expiretime(struct ctx *x)
{
        expiretime(x, false);
}

void cmd_pexpiretime(struct ctx *x)
{
        expiretime(x, true);
}

void cmd_ttl(struct ctx *x)
{
        ttl(x, false);
}

void cmd_pttl(struct ctx *x)
{
        ttl(x, true);
}

void cmd_persist(struct ctx *x)
{
        struct dent *e = db_lookup(x, &x->argv[1]);
        if (!e || !e->expire)
                return r_int(x, 0);
        db_set_expire(x->db, e, 0);
        x->db->dirty++;
        r_int(x, 1);
}

void cmd_dbsize(struct ctx *x)
{
        r_int(x, (long long)dict_size(&x->db->keys));
}

void cmd_flush(struct ctx *x)
{
        if (x->argc > 2 ||
            (x->argc == 2 && !arg_is(&x->argv[1], "ASYNC") && !arg_is(&x->argv[1], "SYNC")))
                return r_err(x, E_SYNTAX);
        /* The whole keyspace goes to rdb_lazyfree() (freed here only if
         * not even its holder can be had). */
        struct rdb *db = x->db;
        watch_touch_flush(db);
        struct dent *g = zcalloc(sizeof *g);
        struct dict *d = zmalloc(sizeof *d);
        if (g && d) {
                *d = db->keys;
                g->type = RT_KEYSPACE;
                g->val = (char *)d;
                garbage_add(db, g);
                dict_init(&db->keys);
        } else {
                zfree(g);
                zfree(d);
                dict_clear(&db->keys, db_free_key_cb, db);
        }
        db->nexpires = 0;
        db->dirty++;
        r_ok(x);
}

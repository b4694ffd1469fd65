/*
 * The redis service's transactions, as Redis 7.0 has them: MULTI queues a
 * client's commands (answering +QUEUED, or flagging the transaction when one
 * is refused), EXEC runs them one after the other with nothing in between and
 * answers their replies in one array, DISCARD drops them. WATCH keeps a key
 * under watch for a client: a write to it (by anyone, expiry included) makes
 * the client's EXEC answer a null array instead. The AOF gets an EXEC's
 * writes between MULTI and EXEC records, so replay applies all or none.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "cmd_int.h"

/* A queued command: its argv and the bytes they point at, in one block. */
struct rqueued {
        struct resp_arg *argv;
        size_t argc;
};

struct rmulti {
        struct rqueued *q;
        size_t n, cap;
};

/* A key a client watches; its bytes follow. */
struct rwatchkey {
        uint32_t len;
        char key[];
};

/* The clients watching a key (the val of its entry in db->watch). */
struct rwatchers {
        size_t n, cap;
        struct rclient **c;
};

/* ------------------------------------------------------------------ */
/* Watching. */

static void watchers_free(struct dent *e, void *arg)
{
        struct rwatchers *w = (struct rwatchers *)e->val;
        zfree(w->c);
        zfree(w);
        zfree(e);
}

static void mark_dirty(struct dent *e, void *arg)
{
        struct rwatchers *w = (struct rwatchers *)e->val;
        for (size_t i = 0; i < w->n; i++)
                w->c[i]->flags |= RC_DIRTY_CAS;
}

void watch_touch(struct rdb *db, const char *k, size_t n)
{
        if (!dict_size(&db->watch))
                return;
        struct dent *e = dict_find(&db->watch, k, n);
        if (e)
                mark_dirty(e, NULL);
}

static void mark_if_present(struct dent *e, void *arg)
{
        if (dict_peek(arg, e->key, e->klen))
                mark_dirty(e, NULL);
}

void watch_touch_flush(struct rdb *db)
{
        dict_each(&db->watch, mark_if_present, &db->keys);
}

void watch_touch_cmd(struct rdb *db, const char *name, const struct resp_arg *argv, size_t argc)
{
        if (!dict_size(&db->watch) || argc < 2)
                return;
        size_t last = 1, step = 1;
        if (!strcmp(name, "del") || !strcmp(name, "unlink")) {
                last = argc - 1;
        } else if (!strcmp(name, "mset") || !strcmp(name, "msetnx")) {
                last = argc - 1;
                step = 2;
        } else if (!strcmp(name, "rename") || !strcmp(name, "renamenx") || !strcmp(name, "lmove") ||
                   !strcmp(name, "rpoplpush") || !strcmp(name, "smove")) {
                last = 2;
        }
        for (size_t i = 1; i <= last && i < argc; i += step)
                watch_touch(db, argv[i].ptr, argv[i].len);
}

/* Takes c off the watchers of key k. */
static void unwatch_key(struct rdb *db, struct rclient *c, const char *k, size_t n)
{
        struct dent *e = dict_find(&db->watch, k, n);
        if (!e)
                return;
        struct rwatchers *w = (struct rwatchers *)e->val;
        for (size_t i = 0; i < w->n; i++) {
                if (w->c[i] == c) {
                        w->c[i] = w->c[--w->n];
                        break;
                }
        }
        if (!w->n)
                watchers_free(dict_unlink(&db->watch, k, n), NULL);
}

static void unwatch_all(struct rclient *c)
{
        for (size_t i = 0; i < c->nwatched; i++) {
                unwatch_key(c->wdb, c, c->watched[i]->key, c->watched[i]->len);
                zfree(c->watched[i]);
        }
        zfree(c->watched);
        c->watched = NULL;
        c->nwatched = 0;
        c->flags &= ~(uint32_t)RC_DIRTY_CAS;
}

/* Puts c among key k's watchers. 0, or -ENOMEM with nothing changed. */
static int watch_key(struct rdb *db, struct rclient *c, const struct resp_arg *k)
{
        for (size_t i = 0; i < c->nwatched; i++)
                if (c->watched[i]->len == k->len && !memcmp(c->watched[i]->key, k->ptr, k->len))
                        return 0;
        struct rwatchkey *wk = zmalloc(sizeof *wk + k->len);
        struct rwatchkey **a = zrealloc(c->watched, (c->nwatched + 1) * sizeof *a);
        if (!wk || !a) {
                zfree(wk);
                return -ENOMEM;
        }
        c->watched = a;
        struct dent *e = dict_find(&db->watch, k->ptr, k->len);
        if (!e) {
                struct rwatchers *w = zcalloc(sizeof *w);
                if (!w || !(e = dent_new(k->ptr, k->len)) || dict_add(&db->watch, e) < 0) {
                        zfree(w);
                        zfree(e);
                        zfree(wk);
                        return -ENOMEM;
                }
                e->val = (char *)w;
        }
        struct rwatchers *w = (struct rwatchers *)e->val;
        if (w->n == w->cap) {
                size_t cap = w->cap ? 2 * w->cap : 2;
                struct rclient **cs = zrealloc(w->c, cap * sizeof *cs);
                if (!cs) {
                        if (!w->n)
                                watchers_free(dict_unlink(&db->watch, k->ptr, k->len), NULL);
                        zfree(wk);
                        return -ENOMEM;
                }
                w->c = cs;
                w->cap = cap;
        }
        w->c[w->n++] = c;
        wk->len = (uint32_t)k->len;
        memcpy(wk->key, k->ptr, k->len);
        c->watched[c->nwatched++] = wk;
        c->wdb = db;
        return 0;
}

/* Whether a key c watches has a time to live that ran out (Redis's
 * isWatchedKeyExpired: EXEC then fails). */
static bool watched_expired(struct ctx *x)
{
        for (size_t i = 0; i < x->c->nwatched; i++) {
                const struct rwatchkey *wk = x->c->watched[i];
                const struct dent *e = dict_peek(&x->db->keys, wk->key, wk->len);
                if (e && e->expire && e->expire <= x->now)
                        return true;
        }
        return false;
}

void watch_release(struct rdb *db)
{
        dict_clear(&db->watch, watchers_free, NULL);
}

/* ------------------------------------------------------------------ */
/* Queueing. */

static void discard(struct rclient *c)
{
        struct rmulti *m = c->multi;
        if (m) {
                for (size_t i = 0; i < m->n; i++)
                        zfree(m->q[i].argv);
                zfree(m->q);
                zfree(m);
        }
        c->multi = NULL;
        c->flags &= ~(uint32_t)(RC_MULTI | RC_DIRTY_EXEC);
}

void multi_release(struct rclient *c)
{
        discard(c);
        unwatch_all(c);
}

void multi_queue(struct ctx *x)
{
        struct rmulti *m = x->c->multi;
        size_t bytes = x->argc * sizeof(struct resp_arg);
        for (size_t i = 0; i < x->argc; i++)
                bytes += x->argv[i].len;
        if (m->n == m->cap) {
                size_t cap = m->cap ? 2 * m->cap : 4;
                struct rqueued *q = zrealloc(m->q, cap * sizeof *q);
                if (!q) {
                        x->c->flags |= RC_DIRTY_EXEC;
                        return r_oom(x);
                }
                m->q = q;
                m->cap = cap;
        }
        struct resp_arg *argv = zmalloc(bytes);
        if (!argv) {
                x->c->flags |= RC_DIRTY_EXEC;
                return r_oom(x);
        }
        char *p = (char *)(argv + x->argc);
        for (size_t i = 0; i < x->argc; i++) {
                memcpy(p, x->argv[i].ptr, x->argv[i].len);
                argv[i] = (struct resp_arg){p, x->argv[i].len};
                p += x->argv[i].len;
        }
        m->q[m->n++] = (struct rqueued){argv, x->argc};
        r_simple(x, "QUEUED");
}

/* ------------------------------------------------------------------ */
/* The commands. */

void cmd_multi(struct ctx *x)
{
        if (x->c->flags & RC_MULTI)
                return r_err(x, "MULTI calls can not be nested");
        if (!(x->c->multi = zcalloc(sizeof(struct rmulti))))
                return r_oom(x);
        x->c->flags |= RC_MULTI;
        r_ok(x);
}

void cmd_discard(struct ctx *x)
{
        if (!(x->c->flags & RC_MULTI))
                return r_err(x, "DISCARD without MULTI");
        discard(x->c);
        unwatch_all(x->c);
        r_ok(x);
}

void cmd_watch(struct ctx *x)
{
        if (x->c->flags & RC_MULTI)
                return r_err(x, "WATCH inside MULTI is not allowed");
        for (size_t j = 1; j < x->argc; j++) {
                db_lookup(x, &x->argv[j]); /* an expired key goes now: it is no change */
                if (watch_key(x->db, x->c, &x->argv[j]) < 0)
                        return r_oom(x);
        }
        r_ok(x);
}

void cmd_unwatch(struct ctx *x)
{
        unwatch_all(x->c);
        r_ok(x);
}

/* Appends a command that wrote, as the AOF is to have it, to b. */
static void log_command(struct rdb *db, struct rbuf *b, const struct resp_arg *argv, size_t argc)
{
        if (db->prop_argc) { /* rewritten (absolute times) */
                struct resp_arg a[8];
                size_t n = db->prop_argc < 8 ? db->prop_argc : 8;
                const char *p = db->prop.p;
                for (size_t i = 0; i < n; i++) {
                        uint32_t l;
                        memcpy(&l, p, sizeof l);
                        a[i] = (struct resp_arg){p + sizeof l, l};
                        p += sizeof l + l;
                }
                if (rdb_append_multibulk(b, a, n) < 0)
                        b->failed = true;
                return;
        }
        if (db->log_argc)
                argc = db->log_argc;
        if (rdb_append_multibulk(b, argv, argc) < 0)
                b->failed = true;
}

void cmd_exec(struct ctx *x)
{
        struct rclient *c = x->c;
        struct rdb *db = x->db;
        if (!(c->flags & RC_MULTI))
                return r_err(x, "EXEC without MULTI");
        if (c->flags & RC_DIRTY_EXEC) {
                discard(c);
                unwatch_all(c);
                return r_err(x, "-EXECABORT Transaction discarded because of previous errors.");
        }
        if ((c->flags & RC_DIRTY_CAS) || watched_expired(x)) {
                discard(c);
                unwatch_all(c);
                return r_null_array(x);
        }
        unwatch_all(c);
        struct rmulti *m = c->multi;
        c->multi = NULL;
        c->flags &= ~(uint32_t)RC_MULTI;
        r_array(x, m->n);
        /* Each runs to its end: nothing else may come between them. */
        struct rjob outer = db->job;
        unsigned slice_us = db->cfg.slice_us;
        db->cfg.slice_us = UINT_MAX;
        struct rbuf log = {0};
        static const struct resp_arg multi = {"MULTI", 5}, exec = {"EXEC", 4};
        for (size_t i = 0; i < m->n; i++) {
                int f = rdb_exec(db, c, m->q[i].argv, m->q[i].argc, x->o);
                if (f & RDB_CLOSE) /* not even -OOM had room: the array is short */
                        x->flags |= RDB_CLOSE;
                if (f & RDB_WRITE) {
                        if (!log.len && rdb_append_multibulk(&log, &multi, 1) < 0)
                                log.failed = true;
                        log_command(db, &log, m->q[i].argv, m->q[i].argc);
                }
                zfree(m->q[i].argv);
        }
        zfree(m->q);
        zfree(m);
        db->cfg.slice_us = slice_us;
        db->job = outer;
        db->prop_argc = 0;
        db->log_argc = 0;
        if (log.len && rdb_append_multibulk(&log, &exec, 1) < 0)
                log.failed = true;
        rbuf_free(&db->txlog);
        db->txlog = log; /* failed: the writes cannot be logged (see aof_feed) */
}

/*
 * The redis service's string commands.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* Strings. */

/* Sets key k, whose link is ref (NULL: k is absent), to the string v
 * (malloc'd, n bytes), which it takes, keeping the time to live if keepttl.
 * NULL when out of memory: then nothing changed and v is still the caller's. */
static struct dent *put_string(struct ctx *x, const struct resp_arg *k, struct dent **ref, char *v,
                               size_t n, bool keepttl)
{
        struct rdb *db = x->db;
        struct dent *e;
        if (ref) {
                e = *ref;
                db_drop_value(db, e);
        } else {
                e = db_add(db, dent_new(k->ptr, k->len));
                if (!e)
                        return NULL;
        }
        if (ref && (!keepttl || (e->expire && e->expire <= x->now)))
                db_set_expire(db, e, 0);
        e->type = RT_STRING;
        e->val = v;
        e->vlen = (uint32_t)n;
        return e;
}

/* Sets key k to a copy of v; NULL (nothing changed) when out of memory. */
static struct dent *set_string(struct ctx *x, const struct resp_arg *k, const char *v, size_t vn,
                               bool keepttl)
{
        struct dent **ref = dict_ref(&x->db->keys, k->ptr, k->len, NULL);
        struct dent *e = ref ? *ref : NULL;
        if (e && e->type == RT_STRING && e->vlen >= vn && e->vlen <= 2 * vn + 16) {
                if (!keepttl || (e->expire && e->expire <= x->now))
                        db_set_expire(x->db, e, 0);
                memcpy(e->val, v, vn);
                e->vlen = (uint32_t)vn;
                return e;
        }
        char *copy = db_bytes_dup(v, vn);
        if (!copy)
                return NULL;
        e = put_string(x, k, ref, copy, vn, keepttl);
        if (!e)
                zfree(copy);
        return e;
}

/* Parses SET's options; 0, or -1 after replying an error. */
static int parse_set(struct ctx *x, size_t from, const char *cmdname, unsigned *flags,
                     int64_t *when)
{
        enum { NX = 1, XX = 2, GET = 4, KEEPTTL = 8, EX = 16, PX = 32, EXAT = 64, PXAT = 128 };
        const struct resp_arg *expire = NULL;
        *flags = 0;
        for (size_t j = from; j < x->argc; j++) {
                const struct resp_arg *a = &x->argv[j];
                bool next = j + 1 < x->argc;
                unsigned f = *flags;
                if (arg_is(a, "NX") && !(f & XX))
                        *flags |= NX;
                else if (arg_is(a, "XX") && !(f & NX))
                        *flags |= XX;
                else if (arg_is(a, "GET"))
                        *flags |= GET;
                else if (arg_is(a, "KEEPTTL") && !(f & (EX | PX | EXAT | PXAT)))
                        *flags |= KEEPTTL;
                else if (next && !(f & (KEEPTTL | PX | EXAT | PXAT)) && arg_is(a, "EX"))
                        *flags |= EX, expire = &x->argv[++j];
                else if (next && !(f & (KEEPTTL | EX | EXAT | PXAT)) && arg_is(a, "PX"))
                        *flags |= PX, expire = &x->argv[++j];
                else if (next && !(f & (KEEPTTL | EX | PX | PXAT)) && arg_is(a, "EXAT"))
                        *flags |= EXAT, expire = &x->argv[++j];
                else if (next && !(f & (KEEPTTL | EX | PX | EXAT)) && arg_is(a, "PXAT"))
                        *flags |= PXAT, expire = &x->argv[++j];
                else {
                        r_err(x, E_SYNTAX);
                        return -1;
                }
        }
        *when = 0;
        if (expire) {
                long long v;
                if (arg_ll(x, expire, &v, NULL) < 0)
                        return -1;
                bool secs = *flags & (EX | EXAT);
                if (v <= 0 || (secs && v > LLONG_MAX / 1000)) {
                        r_errf(x, "invalid expire time in '%s' command", cmdname);
                        return -1;
                }
                if (secs)
                        v *= 1000;
                if (*flags & (EX | PX)) {
                        if (v > LLONG_MAX - x->now) {
                                r_errf(x, "invalid expire time in '%s' command", cmdname);
                                return -1;
                        }
                        v += x->now;
                }
                *when = v;
        }
        return 0;
}

/* The core of SET and friends, after option parsing. */
static void do_set(struct ctx *x, const struct resp_arg *k, const struct resp_arg *v,
                   unsigned flags, int64_t when, bool reply_null_on_skip)
{
        enum { NX = 1, XX = 2, GET = 4, KEEPTTL = 8 };
        struct dent *e = db_lookup(x, k);
        if ((flags & GET) && e && e->type != RT_STRING)
                return r_err(x, E_WRONGTYPE);
        if ((flags & GET)) {
                if (e)
                        r_bulk(x, e->val, e->vlen);
                else
                        r_null(x);
        }
        if (((flags & NX) && e) || ((flags & XX) && !e)) {
                if (!(flags & GET))
                        r_null(x);
                return;
        }
        if (when) {
                prop_begin(x);
                prop_arg(x, "SET", 3);
                prop_arg(x, k->ptr, k->len);
                prop_arg(x, v->ptr, v->len);
                prop_arg(x, "PXAT", 4);
                prop_ll(x, when);
                if (prop_failed(x))
                        return;
        }
        /* the old value must reach the client before it is gone */
        if (x->o->failed || !(e = set_string(x, k, v->ptr, v->len, flags & KEEPTTL)))
                return r_oom(x);
        if (when)
                db_set_expire(x->db, e, when);
        x->db->dirty++;
        if (!(flags & GET))
                r_ok(x);
        (void)reply_null_on_skip;
}

void cmd_set(struct ctx *x)
{
        unsigned flags;
        int64_t when;
        if (parse_set(x, 3, "set", &flags, &when) < 0)
                return;
        do_set(x, &x->argv[1], &x->argv[2], flags, when, true);
}

void cmd_setnx(struct ctx *x)
{
        if (db_lookup(x, &x->argv[1]))
                return r_int(x, 0);
        if (!set_string(x, &x->argv[1], x->argv[2].ptr, x->argv[2].len, false))
                return r_oom(x);
        x->db->dirty++;
        r_int(x, 1);
}

static void setex(struct ctx *x, bool ms, const char *name)
{
        long long v;
        if (arg_ll(x, &x->argv[2], &v, NULL) < 0)
                return;
        if (v <= 0 || (!ms && v > LLONG_MAX / 1000))
                return r_errf(x, "invalid expire time in '%s' command", name);
        if (!ms)
                v *= 1000;
        if (v > LLONG_MAX - x->now)
                return r_errf(x, "invalid expire time in '%s' command", name);
        do_set(x, &x->argv[1], &x->argv[3], 0, v + x->now, false);
}

void cmd_setex(struct ctx *x)
{
        setex(x, false, "setex");
}

void cmd_psetex(struct ctx *x)
{
        setex(x, true, "psetex");
}

void cmd_get(struct ctx *x)
{
        struct dent *e = db_lookup_read(x, &x->argv[1]);
        if (!e)
                return r_null(x);
        if (e->type != RT_STRING)
                return r_err(x, E_WRONGTYPE);
        r_bulk(x, e->val, e->vlen);
}

void cmd_getset(struct ctx *x)
{
        do_set(x, &x->argv[1], &x->argv[2], 4 /* GET */, 0, false);
}

void cmd_getdel(struct ctx *x)
{
        struct dent *e = db_lookup_read(x, &x->argv[1]);
        if (!e)
                return r_null(x);
        if (e->type != RT_STRING)
                return r_err(x, E_WRONGTYPE);
        r_bulk(x, e->val, e->vlen);
        if (x->o->failed) /* the value must reach the client before it is gone */
                return r_oom(x);
        db_delete(x->db, x->argv[1].ptr, x->argv[1].len);
        x->db->dirty++;
}

void cmd_mget(struct ctx *x)
{
        if (!x->resumed)
                r_array(x, x->argc - 1);
        for (size_t j = slice_resume_at(x, 1); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                struct dent *e = db_lookup_read(x, &x->argv[j]);
                if (!e || e->type != RT_STRING)
                        r_null(x);
                else
                        r_bulk(x, e->val, e->vlen);
        }
}

static void mset(struct ctx *x, bool nx)
{
        if (x->argc % 2 == 0)
                return r_arity(x, x->cmd->name);
        if (nx && !x->job->phase) {
                for (size_t j = slice_resume_at(x, 1); j < x->argc; j += 2) {
                        if (slice_pause(x, j))
                                return;
                        if (db_lookup(x, &x->argv[j]))
                                return r_int(x, 0);
                }
                slice_next_phase(x);
        }
        for (size_t j = slice_resume_at(x, 1); j < x->argc; j += 2) {
                if (slice_pause(x, j))
                        return;
                if (!set_string(x, &x->argv[j], x->argv[j + 1].ptr, x->argv[j + 1].len, false)) {
                        x->db->dirty += (j - 1) / 2;
                        return r_oom_at(x, j);
                }
        }
        x->db->dirty += (x->argc - 1) / 2;
        if (nx)
                r_int(x, 1);
        else
                r_ok(x);
}

void cmd_mset(struct ctx *x)
{
        mset(x, false);
}

void cmd_msetnx(struct ctx *x)
{
        mset(x, true);
}

void cmd_append(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_STRING, &bad);
        if (bad)
                return;
        const struct resp_arg *v = &x->argv[2];
        if (!e) {
                if (!(e = set_string(x, &x->argv[1], v->ptr, v->len, false)))
                        return r_oom(x);
        } else {
                if ((long long)v->len > x->db->cfg.max_bulk - (long long)e->vlen)
                        return r_err(x, E_TOOBIG);
                char *p = zrealloc(e->val, e->vlen + v->len);
                if (!p)
                        return r_oom(x);
                e->val = p;
                memcpy(e->val + e->vlen, v->ptr, v->len);
                e->vlen += (uint32_t)v->len;
        }
        x->db->dirty++;
        r_int(x, e->vlen);
}

void cmd_strlen(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_STRING, &bad);
        if (!bad)
                r_int(x, e ? e->vlen : 0);
}

static void incr(struct ctx *x, long long by)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_STRING, &bad);
        long long v = 0;
        if (bad)
                return;
        if (e && (e->vlen > 20 || resp_strtoll(e->val, e->vlen, &v) < 0))
                return r_err(x, E_NOTINT);
        if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
                return r_err(x, E_OVERFLOW);
        v += by;
        char b[RESP_LLSTR_SIZE];
        size_t n = resp_ll2str(b, v);
        if (!set_string(x, &x->argv[1], b, n, true))
                return r_oom(x);
        x->db->dirty++;
        r_int(x, v);
}

void cmd_incr(struct ctx *x)
{
        incr(x, 1);
}

void cmd_decr(struct ctx *x)
{
        incr(x, -1);
}

void cmd_incrby(struct ctx *x)
{
        long long by;
        if (arg_ll(x, &x->argv[2], &by, NULL) == 0)
                incr(x, by);
}

void cmd_decrby(struct ctx *x)
{
        long long by;
        if (arg_ll(x, &x->argv[2], &by, NULL) < 0)
                return;
        if (by == LLONG_MIN)
                return r_err(x, "decrement would overflow");
        incr(x, -by);
}

void cmd_incrbyfloat(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_STRING, &bad);
        long double v = 0, by;
        if (bad)
                return;
        if (e && resp_strtold(e->val, e->vlen, &v) < 0)
                return r_err(x, E_NOFLOAT);
        if (resp_strtold(x->argv[2].ptr, x->argv[2].len, &by) < 0)
                return r_err(x, E_NOFLOAT);
        v += by;
        if (isnan(v) || isinf(v))
                return r_err(x, "increment would produce NaN or Infinity");
        char b[RESP_LDSTR_SIZE];
        size_t n = resp_ld2str(b, sizeof b, v);
        prop_begin(x);
        prop_arg(x, "SET", 3);
        prop_arg(x, x->argv[1].ptr, x->argv[1].len);
        prop_arg(x, b, n);
        prop_arg(x, "KEEPTTL", 7);
        if (prop_failed(x))
                return;
        if (!set_string(x, &x->argv[1], b, n, true))
                return r_oom(x);
        x->db->dirty++;
        r_bulk(x, b, n);
}

void cmd_getrange(struct ctx *x)
{
        long long start, end;
        if (arg_ll(x, &x->argv[2], &start, NULL) < 0 || arg_ll(x, &x->argv[3], &end, NULL) < 0)
                return;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_STRING, &bad);
        if (bad)
                return;
        long long len = e ? e->vlen : 0;
        if (start < 0 && end < 0 && start > end)
                return r_bulk(x, "", 0);
        if (start < 0)
                start += len;
        if (end < 0)
                end += len;
        if (start < 0)
                start = 0;
        if (end < 0)
                end = 0;
        if (end >= len)
                end = len - 1;
        if (!e || start > end || len == 0)
                return r_bulk(x, "", 0);
        r_bulk(x, e->val + start, (size_t)(end - start + 1));
}

void cmd_setrange(struct ctx *x)
{
        long long off;
        if (arg_ll(x, &x->argv[2], &off, NULL) < 0)
                return;
        if (off < 0)
                return r_err(x, "offset is out of range");
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_STRING, &bad);
        if (bad)
                return;
        const struct resp_arg *v = &x->argv[3];
        if (!v->len)
                return r_int(x, e ? e->vlen : 0);
        /* off + len would overflow for an offset near LLONG_MAX */
        if (off > x->db->cfg.max_bulk - (long long)v->len)
                return r_err(x, E_TOOBIG);
        size_t need = (size_t)off + v->len, have = e ? e->vlen : 0;
        char *p = e ? e->val : NULL;
        if (need > have) {
                if (!(p = zrealloc(p, need)))
                        return r_oom(x);
                memset(p + have, 0, need - have);
        }
        memcpy(p + off, v->ptr, v->len);
        if (e) {
                e->val = p;
                e->vlen = (uint32_t)(need > have ? need : have);
        } else if (!(e = put_string(x, &x->argv[1], NULL, p, need, false))) {
                zfree(p);
                return r_oom(x);
        }
        x->db->dirty++;
        r_int(x, e->vlen);
}

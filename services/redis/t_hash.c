/*
 * The redis service's hash commands, and the field dicts sets share with hashes.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* Hashes and sets: a dict of fields (a set's have no value). */

struct dict *fields_dict(struct dent *e)
{
        return (struct dict *)e->val;
}

/* Sets field f to v (v NULL: a set member). 1 if the field is new, 0 if
 * not, -ENOMEM (nothing changed) when out of memory. */
int field_set(struct dict *d, const struct resp_arg *f, const struct resp_arg *v)
{
        struct dent **ref = dict_ref(d, f->ptr, f->len, NULL);
        char *val = NULL;
        if (v && !(val = db_bytes_dup(v->ptr, v->len)))
                return -ENOMEM;
        if (ref) {
                if (v) {
                        zfree((*ref)->val);
                        (*ref)->val = val;
                        (*ref)->vlen = (uint32_t)v->len;
                }
                return 0;
        }
        struct dent *e = dent_new(f->ptr, f->len);
        if (!e || dict_add(d, e) < 0) {
                zfree(e);
                zfree(val);
                return -ENOMEM;
        }
        e->val = val;
        e->vlen = v ? (uint32_t)v->len : 0;
        return 1;
}

/* Adds or sets the fields argv[first..] (pairs if values) of the hash or
 * set e, counting the new ones in x->job->n. False when the command is to
 * return: paused, or after r_oom (the fields before the failure stay). */
bool fields_set(struct ctx *x, struct dent *e, size_t first, bool values)
{
        for (size_t j = slice_resume_at(x, first); j < x->argc; j += values ? 2 : 1) {
                if (slice_pause(x, j))
                        return false;
                int r = field_set(fields_dict(e), &x->argv[j], values ? &x->argv[j + 1] : NULL);
                if (r < 0) {
                        if (j == first)
                                db_drop_if_empty(x, e);
                        else
                                x->db->dirty++;
                        r_oom_at(x, j == first ? 0 : j);
                        return false;
                }
                x->job->n += r;
        }
        return true;
}

void cmd_hset(struct ctx *x)
{
        if (x->argc % 2)
                return r_arity(x, x->cmd->name);
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        if (!e && !(e = db_new_key(x, &x->argv[1], RT_HASH)))
                return r_oom(x);
        if (!fields_set(x, e, 2, true))
                return;
        x->db->dirty++;
        if (!strcmp(x->cmd->name, "hmset"))
                r_ok(x);
        else
                r_int(x, x->job->n);
}

void cmd_hget(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        struct dent *f = e ? dict_find(fields_dict(e), x->argv[2].ptr, x->argv[2].len) : NULL;
        if (!f)
                return r_null(x);
        r_bulk(x, f->val, f->vlen);
}

void cmd_hmget(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        if (!x->resumed)
                r_array(x, x->argc - 2);
        for (size_t j = slice_resume_at(x, 2); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                struct dent *f =
                        e ? dict_find(fields_dict(e), x->argv[j].ptr, x->argv[j].len) : NULL;
                if (f)
                        r_bulk(x, f->val, f->vlen);
                else
                        r_null(x);
        }
}

/* HDEL and SREM, on a key of type t. */
void fields_del(struct ctx *x, int t)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], t, &bad);
        if (bad)
                return;
        if (!e)
                return r_int(x, 0);
        for (size_t j = slice_resume_at(x, 2); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                struct dent *f = dict_unlink(fields_dict(e), x->argv[j].ptr, x->argv[j].len);
                if (f) {
                        field_free(f, NULL);
                        x->job->n++;
                }
        }
        if (x->job->n) {
                x->db->dirty++;
                db_drop_if_empty(x, e);
        }
        r_int(x, x->job->n);
}

/* HLEN and SCARD, on a key of type t. */
void fields_len(struct ctx *x, int t)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], t, &bad);
        if (!bad)
                r_int(x, e ? (long long)dict_size(fields_dict(e)) : 0);
}

/* HEXISTS and SISMEMBER, on a key of type t. */
void fields_exists(struct ctx *x, int t)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], t, &bad);
        if (!bad)
                r_int(x, e && dict_find(fields_dict(e), x->argv[2].ptr, x->argv[2].len));
}

struct fields {
        struct ctx *x;
        int want;
};

static void emit_field(struct dent *f, void *arg)
{
        struct fields *w = arg;
        if (w->want & WANT_KEYS)
                r_bulk(w->x, f->key, f->klen);
        if (w->want & WANT_VALS)
                r_bulk(w->x, f->val, f->vlen);
}

void fields_walk(struct ctx *x, int type, int want)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], type, &bad);
        if (bad)
                return;
        size_t n = e ? dict_size(fields_dict(e)) : 0;
        if (x->resumed)
                ;
        else if (type == RT_SET)
                r_set(x, n);
        else if (want == (WANT_KEYS | WANT_VALS))
                r_map(x, n);
        else
                r_array(x, n);
        struct fields w = {x, want};
        size_t pos = slice_resume_at(x, 0);
        while (e && dict_walk(fields_dict(e), &pos, emit_field, &w))
                if (slice_pause(x, pos))
                        return;
}

void cmd_hgetall(struct ctx *x)
{
        fields_walk(x, RT_HASH, WANT_KEYS | WANT_VALS);
}

void cmd_hkeys(struct ctx *x)
{
        fields_walk(x, RT_HASH, WANT_KEYS);
}

void cmd_hvals(struct ctx *x)
{
        fields_walk(x, RT_HASH, WANT_VALS);
}

void cmd_hincrby(struct ctx *x)
{
        long long by, v = 0;
        if (arg_ll(x, &x->argv[3], &by, NULL) < 0)
                return;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        struct dent *f = e ? dict_find(fields_dict(e), x->argv[2].ptr, x->argv[2].len) : NULL;
        if (f && resp_strtoll(f->val, f->vlen, &v) < 0)
                return r_err(x, "hash value is not an integer");
        if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
                return r_err(x, E_OVERFLOW);
        v += by;
        if (!e && !(e = db_new_key(x, &x->argv[1], RT_HASH)))
                return r_oom(x);
        char b[RESP_LLSTR_SIZE];
        struct resp_arg val = {b, resp_ll2str(b, v)};
        if (field_set(fields_dict(e), &x->argv[2], &val) < 0) {
                db_drop_if_empty(x, e);
                return r_oom(x);
        }
        x->db->dirty++;
        r_int(x, v);
}

void cmd_hdel(struct ctx *x)
{
        fields_del(x, RT_HASH);
}

void cmd_hlen(struct ctx *x)
{
        fields_len(x, RT_HASH);
}

void cmd_hexists(struct ctx *x)
{
        fields_exists(x, RT_HASH);
}

void cmd_hstrlen(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        struct dent *f = e ? dict_find(fields_dict(e), x->argv[2].ptr, x->argv[2].len) : NULL;
        r_int(x, f ? (long long)f->vlen : 0);
}

void cmd_hsetnx(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        if (e && dict_find(fields_dict(e), x->argv[2].ptr, x->argv[2].len))
                return r_int(x, 0);
        if (!e && !(e = db_new_key(x, &x->argv[1], RT_HASH)))
                return r_oom(x);
        if (field_set(fields_dict(e), &x->argv[2], &x->argv[3]) < 0) {
                db_drop_if_empty(x, e);
                return r_oom(x);
        }
        x->db->dirty++;
        r_int(x, 1);
}

/* As Redis: logged as an HSET of the result, so replay does not redo the sum. */
void cmd_hincrbyfloat(struct ctx *x)
{
        long double v = 0, by;
        if (resp_strtold(x->argv[3].ptr, x->argv[3].len, &by) < 0)
                return r_err(x, E_NOFLOAT);
        if (isnan(by) || isinf(by))
                return r_err(x, "value is NaN or Infinity");
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        struct dent *f = e ? dict_find(fields_dict(e), x->argv[2].ptr, x->argv[2].len) : NULL;
        if (f && resp_strtold(f->val, f->vlen, &v) < 0)
                return r_err(x, "hash value is not a float");
        v += by;
        if (isnan(v) || isinf(v))
                return r_err(x, "increment would produce NaN or Infinity");
        char b[RESP_LDSTR_SIZE];
        struct resp_arg val = {b, resp_ld2str(b, sizeof b, v)};
        prop_begin(x);
        prop_arg(x, "HSET", 4);
        prop_arg(x, x->argv[1].ptr, x->argv[1].len);
        prop_arg(x, x->argv[2].ptr, x->argv[2].len);
        prop_arg(x, val.ptr, val.len);
        if (prop_failed(x))
                return;
        if (!e && !(e = db_new_key(x, &x->argv[1], RT_HASH)))
                return r_oom(x);
        if (field_set(fields_dict(e), &x->argv[2], &val) < 0) {
                db_drop_if_empty(x, e);
                return r_oom(x);
        }
        x->db->dirty++;
        r_bulk(x, val.ptr, val.len);
}

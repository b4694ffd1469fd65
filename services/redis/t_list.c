/*
 * The redis service's list commands: a ring of element pointers, O(1) at both ends and by index.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* Lists: a ring of element pointers, O(1) at both ends and by index. */

static struct relem **list_at(struct rlist *l, size_t i)
{
        return &l->a[(l->head + i) & (l->cap - 1)];
}

/* Room for one more element: 0, or -ENOMEM (l unchanged). */
static int list_grow(struct rlist *l)
{
        if (l->len < l->cap)
                return 0;
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct relem **a = zmalloc(cap * sizeof *a);
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < l->len; i++)
                a[i] = *list_at(l, i);
        zfree(l->a);
        l->a = a;
        l->cap = cap;
        l->head = 0;
        return 0;
}

/* LPUSH, RPUSH, and with only_existing LPUSHX, RPUSHX (0 for a missing key, not created). */
static void push(struct ctx *x, bool left, bool only_existing)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e && only_existing)
                return r_int(x, 0);
        if (!e && !(e = db_new_key(x, &x->argv[1], RT_LIST)))
                return r_oom(x);
        struct rlist *l = (struct rlist *)e->val;
        for (size_t j = slice_resume_at(x, 2); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                struct relem *r = NULL;
                if (list_grow(l) < 0 || !(r = relem_new(x->argv[j].ptr, x->argv[j].len))) {
                        if (j == 2)
                                db_drop_if_empty(x, e);
                        else
                                x->db->dirty++;
                        return r_oom_at(x, j == 2 ? 0 : j);
                }
                if (left) {
                        l->head = (l->head - 1) & (l->cap - 1);
                        l->a[l->head] = r;
                } else {
                        *list_at(l, l->len) = r;
                }
                l->len++;
        }
        x->db->dirty++;
        r_int(x, (long long)l->len);
}

void cmd_lpush(struct ctx *x)
{
        push(x, true, false);
}

void cmd_rpush(struct ctx *x)
{
        push(x, false, false);
}

void cmd_lpushx(struct ctx *x)
{
        push(x, true, true);
}

void cmd_rpushx(struct ctx *x)
{
        push(x, false, true);
}

static void pop(struct ctx *x, bool left)
{
        long long count = 1;
        bool has_count = x->argc == 3;
        if (x->argc > 3)
                return r_arity(x, x->cmd->name);
        if (has_count && (resp_strtoll(x->argv[2].ptr, x->argv[2].len, &count) < 0 || count < 0))
                return r_err(x, E_POSITIVE);
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return has_count ? r_null_array(x) : r_null(x);
        if (has_count && count == 0)
                return r_array(x, 0);
        struct rlist *l = (struct rlist *)e->val;
        if (!x->resumed && !x->job->phase)
                x->job->left = (size_t)count < l->len ? (size_t)count : l->len;
        size_t n = x->job->left;
        if (!x->job->phase) {
                /* Room for the whole reply first: popped elements must reach the client. */
                for (size_t i = slice_resume_at(x, 0); i < n; i++) {
                        if (slice_pause(x, i))
                                return;
                        x->job->n += (*list_at(l, left ? i : l->len - 1 - i))->len + 32;
                }
                if (rbuf_reserve(x->o, (size_t)x->job->n + 24) < 0)
                        return r_oom(x);
                slice_next_phase(x);
                if (has_count)
                        r_array(x, n);
        }
        for (size_t i = slice_resume_at(x, 0); i < n; i++) {
                if (slice_pause(x, i))
                        return;
                struct relem *r;
                if (left) {
                        r = l->a[l->head];
                        l->head = (l->head + 1) & (l->cap - 1);
                } else {
                        r = *list_at(l, l->len - 1);
                }
                l->len--;
                r_bulk(x, r->d, r->len);
                zfree(r);
        }
        x->db->dirty++;
        db_drop_if_empty(x, e);
}

void cmd_lpop(struct ctx *x)
{
        pop(x, true);
}

void cmd_rpop(struct ctx *x)
{
        pop(x, false);
}

void cmd_llen(struct ctx *x)
{
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (!bad)
                r_int(x, e ? (long long)((struct rlist *)e->val)->len : 0);
}

void cmd_lrange(struct ctx *x)
{
        long long start, end;
        if (arg_ll(x, &x->argv[2], &start, NULL) < 0 || arg_ll(x, &x->argv[3], &end, NULL) < 0)
                return;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return r_array(x, 0);
        struct rlist *l = (struct rlist *)e->val;
        long long len = (long long)l->len;
        if (start < 0)
                start += len;
        if (end < 0)
                end += len;
        if (start < 0)
                start = 0;
        if (start > end || start >= len)
                return r_array(x, 0);
        if (end >= len)
                end = len - 1;
        if (!x->resumed)
                r_array(x, (size_t)(end - start + 1));
        for (size_t i = slice_resume_at(x, (size_t)start); i <= (size_t)end; i++) {
                if (slice_pause(x, i))
                        return;
                struct relem *r = *list_at(l, i);
                r_bulk(x, r->d, r->len);
        }
}

void cmd_lindex(struct ctx *x)
{
        long long i;
        if (arg_ll(x, &x->argv[2], &i, NULL) < 0)
                return;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return r_null(x);
        struct rlist *l = (struct rlist *)e->val;
        if (i < 0)
                i += (long long)l->len;
        if (i < 0 || i >= (long long)l->len)
                return r_null(x);
        struct relem *r = *list_at(l, (size_t)i);
        r_bulk(x, r->d, r->len);
}

void cmd_lset(struct ctx *x)
{
        /* Redis's order: the key, its type, then the index. */
        struct dent *e = db_lookup(x, &x->argv[1]);
        if (!e)
                return r_err(x, E_NOKEY);
        if (e->type != RT_LIST)
                return r_error(x, E_WRONGTYPE, strlen(E_WRONGTYPE));
        long long i;
        if (arg_ll(x, &x->argv[2], &i, NULL) < 0)
                return;
        struct rlist *l = (struct rlist *)e->val;
        if (i < 0)
                i += (long long)l->len;
        if (i < 0 || i >= (long long)l->len)
                return r_err(x, "index out of range");
        struct relem *r = relem_new(x->argv[3].ptr, x->argv[3].len);
        if (!r)
                return r_oom(x);
        struct relem **at = list_at(l, (size_t)i);
        zfree(*at);
        *at = r;
        x->db->dirty++;
        r_ok(x);
}

/* LEFT or RIGHT into *left; false (syntax error answered) otherwise. */
static bool arg_side(struct ctx *x, const struct resp_arg *a, bool *left)
{
        *left = arg_is(a, "LEFT");
        if (*left || arg_is(a, "RIGHT"))
                return true;
        r_err(x, E_SYNTAX);
        return false;
}

/* Moves one element from the source's end to the destination's; O(1). */
static void move(struct ctx *x, bool from_left, bool to_left)
{
        const struct resp_arg *src = &x->argv[1], *dst = &x->argv[2];
        bool bad;
        struct dent *se = db_lookup_type(x, src, RT_LIST, &bad);
        if (bad)
                return;
        if (!se)
                return r_null(x);
        struct dent *de = db_lookup_type(x, dst, RT_LIST, &bad);
        if (bad)
                return;
        struct rlist *sl = (struct rlist *)se->val;
        struct relem *r = *list_at(sl, from_left ? 0 : sl->len - 1);
        /* Room for everything first: the element must not be lost half way. */
        if (rbuf_reserve(x->o, r->len + 32) < 0)
                return r_oom(x);
        if (!de && !(de = db_new_key(x, dst, RT_LIST)))
                return r_oom(x);
        struct rlist *dl = (struct rlist *)de->val;
        if (list_grow(dl) < 0) {
                db_drop_if_empty(x, de);
                return r_oom(x);
        }
        if (from_left)
                sl->head = (sl->head + 1) & (sl->cap - 1);
        sl->len--;
        if (to_left) {
                dl->head = (dl->head - 1) & (dl->cap - 1);
                dl->a[dl->head] = r;
        } else {
                *list_at(dl, dl->len) = r;
        }
        dl->len++;
        x->db->dirty++;
        r_bulk(x, r->d, r->len);
        if (se != de)
                db_drop_if_empty(x, se);
}

void cmd_lmove(struct ctx *x)
{
        bool from_left, to_left;
        if (arg_side(x, &x->argv[3], &from_left) && arg_side(x, &x->argv[4], &to_left))
                move(x, from_left, to_left);
}

void cmd_rpoplpush(struct ctx *x)
{
        move(x, false, true);
}

/* Frees the list's first element (front) or its last. */
static void list_drop_end(struct rlist *l, bool front)
{
        struct relem **at = list_at(l, front ? 0 : l->len - 1);
        zfree(*at);
        if (front)
                l->head = (l->head + 1) & (l->cap - 1);
        l->len--;
}

/* Sliced: job->n elements still to drop at the front, job->left at the back. */
void cmd_ltrim(struct ctx *x)
{
        long long start = 0, end = 0;
        if (!x->resumed &&
            (arg_ll(x, &x->argv[2], &start, NULL) < 0 || arg_ll(x, &x->argv[3], &end, NULL) < 0))
                return;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return r_ok(x);
        struct rlist *l = (struct rlist *)e->val;
        if (!x->resumed) {
                long long len = (long long)l->len;
                if (start < 0)
                        start += len;
                if (end < 0)
                        end += len;
                if (start < 0)
                        start = 0;
                if (start > end || start >= len) {
                        start = len;
                        end = len - 1;
                } else if (end >= len) {
                        end = len - 1;
                }
                x->job->n = start;
                x->job->left = (size_t)(len - 1 - end);
        }
        for (; x->job->n > 0; x->job->n--) {
                if (slice_pause(x, 0))
                        return;
                list_drop_end(l, true);
        }
        for (; x->job->left > 0; x->job->left--) {
                if (slice_pause(x, 0))
                        return;
                list_drop_end(l, false);
        }
        /* Redis signals the key even when nothing was trimmed (WATCH). */
        x->db->dirty++;
        db_drop_if_empty(x, e);
        r_ok(x);
}

/* Sliced search for the pivot; the insertion shifts the shorter side. */
void cmd_linsert(struct ctx *x)
{
        bool before = arg_is(&x->argv[2], "BEFORE");
        if (!before && !arg_is(&x->argv[2], "AFTER"))
                return r_err(x, E_SYNTAX);
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return r_int(x, 0);
        struct rlist *l = (struct rlist *)e->val;
        const struct resp_arg *pivot = &x->argv[3], *v = &x->argv[4];
        size_t i = slice_resume_at(x, 0);
        for (; i < l->len; i++) {
                if (slice_pause(x, i))
                        return;
                struct relem *r = *list_at(l, i);
                if (r->len == pivot->len && !memcmp(r->d, pivot->ptr, pivot->len))
                        break;
        }
        if (i == l->len)
                return r_int(x, -1);
        size_t at = before ? i : i + 1;
        struct relem *r = NULL;
        if (list_grow(l) < 0 || !(r = relem_new(v->ptr, v->len)))
                return r_oom(x);
        if (at < l->len / 2) { /* the front moves one slot left */
                l->head = (l->head - 1) & (l->cap - 1);
                for (size_t k = 0; k < at; k++)
                        *list_at(l, k) = *list_at(l, k + 1);
        } else {
                for (size_t k = l->len; k > at; k--)
                        *list_at(l, k) = *list_at(l, k - 1);
        }
        *list_at(l, at) = r;
        l->len++;
        x->db->dirty++;
        r_int(x, (long long)l->len);
}

/* Sliced: one pass from the end count says, each kept element moved over the
 * job->n removed so far; the list's length changes only at the end. */
void cmd_lrem(struct ctx *x)
{
        long long count;
        if (arg_ll(x, &x->argv[2], &count, NULL) < 0)
                return;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return r_int(x, 0);
        struct rlist *l = (struct rlist *)e->val;
        const struct resp_arg *v = &x->argv[3];
        bool tail = count < 0;
        size_t limit = count == 0 ? SIZE_MAX : tail ? (size_t)(-(count + 1)) + 1 : (size_t)count;
        size_t n = l->len;
        for (size_t k = slice_resume_at(x, 0); k < n; k++) {
                if (slice_pause(x, k))
                        return;
                size_t i = tail ? n - 1 - k : k, removed = (size_t)x->job->n;
                struct relem **at = list_at(l, i);
                if (removed < limit && (*at)->len == v->len && !memcmp((*at)->d, v->ptr, v->len)) {
                        zfree(*at);
                        x->job->n++;
                } else if (removed) {
                        *list_at(l, tail ? i + removed : i - removed) = *at;
                }
        }
        size_t removed = (size_t)x->job->n;
        if (removed) {
                if (tail)
                        l->head = (l->head + removed) & (l->cap - 1);
                l->len -= removed;
                x->db->dirty++;
                db_drop_if_empty(x, e);
        }
        r_int(x, (long long)removed);
}

/* LPOS's options in Redis's order and words; false once an error is answered. */
static bool lpos_options(struct ctx *x, long long *rank, long long *count, long long *maxlen)
{
        for (size_t j = 3; j < x->argc; j++) {
                const struct resp_arg *o = &x->argv[j], *v = &x->argv[j + 1];
                bool more = j + 1 < x->argc;
                if (arg_is(o, "RANK") && more) {
                        if (resp_strtoll(v->ptr, v->len, rank) < 0) {
                                r_err(x, E_NOTINT);
                                return false;
                        }
                        if (*rank == 0) {
                                r_err(x, "RANK can't be zero: use 1 to start from the first "
                                         "match, 2 from the second ... or use negative to start "
                                         "from the end of the list");
                                return false;
                        }
                } else if ((arg_is(o, "COUNT") || arg_is(o, "MAXLEN")) && more) {
                        long long *to = arg_is(o, "COUNT") ? count : maxlen;
                        if (resp_strtoll(v->ptr, v->len, to) < 0 || *to < 0) {
                                r_errf(x, "%s can't be negative", to == count ? "COUNT" : "MAXLEN");
                                return false;
                        }
                } else {
                        r_err(x, E_SYNTAX);
                        return false;
                }
                j++;
        }
        return true;
}

/* Sliced: job->left counts the matches seen, job->n those answered (in job->acc). */
void cmd_lpos(struct ctx *x)
{
        long long rank = 1, count = -1, maxlen = 0;
        if (!lpos_options(x, &rank, &count, &maxlen))
                return;
        bool has_count = count >= 0;
        bool bad;
        struct dent *e = db_lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e)
                return has_count ? r_array(x, 0) : r_null(x);
        struct rlist *l = (struct rlist *)e->val;
        const struct resp_arg *v = &x->argv[2];
        /* Redis 7.0 takes LLONG_MIN (its negation overflows) as the first match. */
        size_t skip = rank == LLONG_MIN ? 0 : (size_t)(rank < 0 ? -rank : rank) - 1;
        size_t want = count > 0 ? (size_t)count : has_count ? SIZE_MAX : 1;
        size_t n = l->len;
        if (maxlen > 0 && (size_t)maxlen < n)
                n = (size_t)maxlen;
        for (size_t k = slice_resume_at(x, 0); k < n && (size_t)x->job->n < want; k++) {
                if (slice_pause(x, k))
                        return;
                size_t i = rank < 0 ? l->len - 1 - k : k;
                struct relem *r = *list_at(l, i);
                if (r->len != v->len || memcmp(r->d, v->ptr, v->len) || x->job->left++ < skip)
                        continue;
                ADD(&x->job->acc, 24, resp_add_int(out_, cap_, (long long)i));
                x->job->n++;
        }
        if (has_count)
                return collect_reply(x);
        if (!x->job->n)
                return r_null(x);
        if (x->job->acc.failed)
                return r_oom(x);
        /* the one index, as it was encoded */
        ADD(x->o, x->job->acc.len, (memcpy(out_, x->job->acc.p, x->job->acc.len), x->job->acc.len));
}

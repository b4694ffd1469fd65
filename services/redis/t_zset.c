/*
 * The redis service's sorted sets, as Redis 7.0 has them: a skip list ordered
 * by (score, member) whose nodes carry the span to the next one, so a rank is
 * found in O(log n), and a dict from member to node for O(1) lookups. The
 * member bytes live once, in the dict entry, which shares the node's
 * allocation. Every
 * range (by rank, score or lex, forward or reversed, with LIMIT) is turned
 * into a run of ranks first, so replies know their length up front and long
 * runs are cut into slices by rank.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd_int.h"

#define ZSL_MAXLEVEL 32
/* Redis's zset-max-listpack-entries and -value: below both a zset is small,
 * which only shows in ZSCAN (all of it at once, in order). */
#define ZSET_SMALL_ENTRIES 128
#define ZSET_SMALL_VALUE 64
/* The most elements ZRANDMEMBER with a negative count answers (Redis has no
 * limit; here a count of -2^62 would only fill memory). */
#define ZRANDMEMBER_MAX (1L << 24)

static const char E_MINMAX[] = "min or max is not a float";
static const char E_LEXRANGE[] = "min or max not valid string range item";
static const char E_NAN[] = "resulting score is not a number (NaN)";

struct zlevel {
        struct znode *forward;
        size_t span; /* ranks from this node to forward */
};

/* A member's node. Its dict entry (with the member bytes) is in the same
 * allocation, after the levels: one chunk a member, not two, which also
 * halves what a large zset leaves in the C library's fast bins when freed.
 * Its level count is kept in ent->vlen, which the entry does not otherwise
 * use. */
struct znode {
        struct dent *ent; /* the dict entry: member bytes; its val points here */
        double score;
        struct znode *backward;
        struct zlevel lv[];
};

struct zset {
        struct dict d;
        struct znode *header, *tail;
        size_t len;
        int level;
        bool big; /* Redis would have it as a skiplist, not a listpack */
};

/* ------------------------------------------------------------------ */
/* The skip list. */

static uint64_t zrand_state = 0x9e3779b97f4a7c15ull;

static uint64_t zrand(void)
{
        uint64_t x = zrand_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return zrand_state = x;
}

static int random_level(void)
{
        int level = 1;
        while (level < ZSL_MAXLEVEL && (zrand() & 0xffff) < 0xffff / 4)
                level++;
        return level;
}

static int member_cmp(const char *a, size_t an, const char *b, size_t bn)
{
        int c = memcmp(a, b, an < bn ? an : bn);
        if (c)
                return c;
        return an < bn ? -1 : an > bn;
}

/* Whether (score, member) of n comes before (s, m). */
static bool node_before(const struct znode *n, double s, const struct dent *m)
{
        return n->score < s ||
               (n->score == s && member_cmp(n->ent->key, n->ent->klen, m->key, m->klen) < 0);
}

struct zset *zset_new(void)
{
        static bool seeded;
        if (!seeded) {
                zrand_state ^= rdb_monotonic_us() << 1; /* bit 0 stays: never 0 */
                seeded = true;
        }
        struct zset *zs = zmalloc(sizeof *zs);
        struct znode *h = zcalloc(sizeof *h + ZSL_MAXLEVEL * sizeof h->lv[0]);
        if (!zs || !h) {
                zfree(zs);
                zfree(h);
                return NULL;
        }
        dict_init(&zs->d);
        zs->header = h;
        zs->tail = NULL;
        zs->len = 0;
        zs->level = 1;
        zs->big = false;
        return zs;
}

size_t zset_len(const struct zset *zs)
{
        return zs->len;
}

void zset_free(struct zset *zs)
{
        struct znode *n = zs->header->lv[0].forward;
        while (n) {
                struct znode *next = n->lv[0].forward;
                zfree(n);
                n = next;
        }
        dict_release(&zs->d);
        zfree(zs->header);
        zfree(zs);
}

bool zset_free_step(struct zset *zs)
{
        struct znode *n = zs->header->lv[0].forward;
        if (!n) {
                dict_release(&zs->d);
                zfree(zs->header);
                return false;
        }
        zs->header->lv[0].forward = n->lv[0].forward;
        zfree(n);
        return true;
}

/* Links node n (score and ent set, ent->vlen its level) into its place. */
static void zsl_link(struct zset *zs, struct znode *n)
{
        struct znode *update[ZSL_MAXLEVEL], *x = zs->header;
        size_t rank[ZSL_MAXLEVEL];
        int level = (int)n->ent->vlen;
        for (int i = zs->level - 1; i >= 0; i--) {
                rank[i] = i == zs->level - 1 ? 0 : rank[i + 1];
                while (x->lv[i].forward && node_before(x->lv[i].forward, n->score, n->ent)) {
                        rank[i] += x->lv[i].span;
                        x = x->lv[i].forward;
                }
                update[i] = x;
        }
        if (level > zs->level) {
                for (int i = zs->level; i < level; i++) {
                        rank[i] = 0;
                        update[i] = zs->header;
                        update[i]->lv[i].span = zs->len;
                }
                zs->level = level;
        }
        for (int i = 0; i < level; i++) {
                n->lv[i].forward = update[i]->lv[i].forward;
                update[i]->lv[i].forward = n;
                n->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
                update[i]->lv[i].span = (rank[0] - rank[i]) + 1;
        }
        for (int i = level; i < zs->level; i++)
                update[i]->lv[i].span++;
        n->backward = update[0] == zs->header ? NULL : update[0];
        if (n->lv[0].forward)
                n->lv[0].forward->backward = n;
        else
                zs->tail = n;
        zs->len++;
}

/* Takes node n out of the list (not the dict); n stays allocated. */
static void zsl_unlink(struct zset *zs, struct znode *n)
{
        struct znode *update[ZSL_MAXLEVEL], *x = zs->header;
        for (int i = zs->level - 1; i >= 0; i--) {
                while (x->lv[i].forward && node_before(x->lv[i].forward, n->score, n->ent))
                        x = x->lv[i].forward;
                update[i] = x;
        }
        for (int i = 0; i < zs->level; i++) {
                if (update[i]->lv[i].forward == n) {
                        update[i]->lv[i].span += n->lv[i].span - 1;
                        update[i]->lv[i].forward = n->lv[i].forward;
                } else {
                        update[i]->lv[i].span--;
                }
        }
        if (n->lv[0].forward)
                n->lv[0].forward->backward = n->backward;
        else
                zs->tail = n->backward;
        while (zs->level > 1 && !zs->header->lv[zs->level - 1].forward)
                zs->level--;
        zs->len--;
}

/* The node of rank r (1-based, at most len). */
static struct znode *zsl_at(const struct zset *zs, size_t r)
{
        struct znode *x = zs->header;
        size_t traversed = 0;
        for (int i = zs->level - 1; i >= 0; i--) {
                while (x->lv[i].forward && traversed + x->lv[i].span <= r) {
                        traversed += x->lv[i].span;
                        x = x->lv[i].forward;
                }
                if (traversed == r)
                        return x;
        }
        return NULL;
}

/* The rank (1-based) of node n. */
static size_t zsl_rank(const struct zset *zs, const struct znode *n)
{
        const struct znode *x = zs->header;
        size_t rank = 0;
        for (int i = zs->level - 1; i >= 0; i--) {
                while (x->lv[i].forward &&
                       (x->lv[i].forward == n || node_before(x->lv[i].forward, n->score, n->ent))) {
                        rank += x->lv[i].span;
                        x = x->lv[i].forward;
                }
                if (x == n)
                        return rank;
        }
        return 0;
}

static struct znode *node_of(const struct dent *m)
{
        return (struct znode *)m->val;
}

/* A small zset keeps a score as Redis's listpack does, as text read back:
 * -0 comes back 0. */
static double stored(const struct zset *zs, double s)
{
        return !zs->big && s == 0 ? 0.0 : s;
}

/* Adds member m (not present) with score s. 0, or -ENOMEM with zs unchanged. */
static int zset_insert(struct zset *zs, const char *m, size_t mlen, double s)
{
        int level = random_level();
        size_t off = sizeof(struct znode) + (size_t)level * sizeof(struct zlevel);
        off = (off + _Alignof(struct dent) - 1) & ~(_Alignof(struct dent) - 1);
        struct znode *n = zmalloc(off + sizeof(struct dent) + mlen);
        if (!n)
                return -ENOMEM;
        struct dent *e = (struct dent *)((char *)n + off);
        *e = (struct dent){
                .val = (char *)n, .vlen = (uint32_t)level, .klen = (uint32_t)mlen, .type = RT_ZSET};
        memcpy(e->key, m, mlen);
        if (dict_add(&zs->d, e) < 0) {
                zfree(n);
                return -ENOMEM;
        }
        if (zs->len + 1 > ZSET_SMALL_ENTRIES || mlen > ZSET_SMALL_VALUE)
                zs->big = true;
        n->ent = e;
        n->score = stored(zs, s);
        zsl_link(zs, n);
        return 0;
}

/* Moves node n to score s, in place (no allocation). */
static void zset_rescore(struct zset *zs, struct znode *n, double s)
{
        zsl_unlink(zs, n);
        n->score = stored(zs, s);
        zsl_link(zs, n);
}

static void zset_remove(struct zset *zs, struct znode *n)
{
        zsl_unlink(zs, n);
        dict_unlink(&zs->d, n->ent->key, n->ent->klen); /* the entry is in n */
        zfree(n);
}

static struct znode *zset_find(struct zset *zs, const struct resp_arg *m)
{
        struct dent *e = dict_find(&zs->d, m->ptr, m->len);
        return e ? node_of(e) : NULL;
}

/* ------------------------------------------------------------------ */
/* Scores and ranges as Redis parses them. */

/* a's bytes with a NUL after them, in buf if they fit, else malloc'd (freed
 * by the caller when not buf); NULL when out of memory. */
static char *cstr(const struct resp_arg *a, char *buf, size_t size)
{
        char *s = a->len < size ? buf : zmalloc(a->len + 1);
        if (s) {
                memcpy(s, a->ptr, a->len);
                s[a->len] = 0;
        }
        return s;
}

/* Redis's getDoubleFromObject (string2d): 0, -EINVAL, or -ENOMEM. */
static int parse_double(const struct resp_arg *a, double *ret)
{
        char buf[128], *end;
        char *s = cstr(a, buf, sizeof buf);
        if (!s)
                return -ENOMEM;
        errno = 0;
        double d = strtod(s, &end);
        int r = 0;
        if (!a->len || isspace((unsigned char)s[0]) || (size_t)(end - s) != a->len ||
            (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL || fpclassify(d) == FP_ZERO)) ||
            isnan(d))
                r = -EINVAL;
        if (s != buf)
                zfree(s);
        *ret = d;
        return r;
}

/* A double argument or its error reply (msg, else "not a valid float"). */
static int arg_double(struct ctx *x, const struct resp_arg *a, double *ret, const char *msg)
{
        int r = parse_double(a, ret);
        if (r == -ENOMEM)
                r_oom(x);
        else if (r < 0)
                r_err(x, msg ? msg : E_NOFLOAT);
        return r;
}

struct zrange {
        double min, max;
        bool minex, maxex;
};

/* One end of a score range as zslParseRange reads it: strtod up to the first
 * NUL, "(" for exclusive. */
static int parse_bound(const struct resp_arg *a, double *v, bool *ex)
{
        char buf[128], *end;
        char *s = cstr(a, buf, sizeof buf);
        if (!s)
                return -ENOMEM;
        *ex = s[0] == '(';
        *v = strtod(s + *ex, &end);
        int r = *end || isnan(*v) ? -EINVAL : 0;
        if (s != buf)
                zfree(s);
        return r;
}

static int parse_range(struct ctx *x, const struct resp_arg *min, const struct resp_arg *max,
                       struct zrange *r)
{
        int rc = parse_bound(min, &r->min, &r->minex);
        if (rc == 0)
                rc = parse_bound(max, &r->max, &r->maxex);
        if (rc == -ENOMEM)
                r_oom(x);
        else if (rc < 0)
                r_err(x, E_MINMAX);
        return rc;
}

/* A lex bound: kind -1 "-", 1 "+", 0 a value (p, n). */
struct lexbound {
        int kind;
        bool ex;
        const char *p;
        size_t n;
};

struct zlexrange {
        struct lexbound min, max;
};

static int parse_lexbound(const struct resp_arg *a, struct lexbound *b)
{
        if (!a->len)
                return -EINVAL;
        *b = (struct lexbound){.p = a->ptr + 1, .n = a->len - 1};
        switch (a->ptr[0]) {
        case '+':
        case '-':
                if (a->len > 1 && a->ptr[1])
                        return -EINVAL;
                b->kind = a->ptr[0] == '+' ? 1 : -1;
                b->ex = true;
                return 0;
        case '(':
                b->ex = true;
                return 0;
        case '[':
                return 0;
        }
        return -EINVAL;
}

static int parse_lexrange(struct ctx *x, const struct resp_arg *min, const struct resp_arg *max,
                          struct zlexrange *r)
{
        if (parse_lexbound(min, &r->min) < 0 || parse_lexbound(max, &r->max) < 0) {
                r_err(x, E_LEXRANGE);
                return -1;
        }
        return 0;
}

/* Compares member m with bound b (sdscmplex with Redis's min and max strings). */
static int lex_cmp(const struct dent *m, const struct lexbound *b)
{
        if (b->kind)
                return -b->kind;
        return member_cmp(m->key, m->klen, b->p, b->n);
}

static int bound_cmp(const struct lexbound *a, const struct lexbound *b)
{
        if (a->kind || b->kind)
                return a->kind == b->kind ? 0 : a->kind < b->kind ? -1 : 1;
        return member_cmp(a->p, a->n, b->p, b->n);
}

/* Which of score or lex a range is: the tests zslValueGteMin and friends make. */
struct zspec {
        const struct zrange *score;
        const struct zlexrange *lex;
};

static bool gte_min(const struct zspec *sp, const struct znode *n)
{
        if (sp->score)
                return sp->score->minex ? n->score > sp->score->min : n->score >= sp->score->min;
        int c = lex_cmp(n->ent, &sp->lex->min);
        return sp->lex->min.ex ? c > 0 : c >= 0;
}

static bool lte_max(const struct zspec *sp, const struct znode *n)
{
        if (sp->score)
                return sp->score->maxex ? n->score < sp->score->max : n->score <= sp->score->max;
        int c = lex_cmp(n->ent, &sp->lex->max);
        return sp->lex->max.ex ? c < 0 : c <= 0;
}

/* zslIsInRange / zslIsInLexRange: whether any node may be in the range. */
static bool may_have(const struct zset *zs, const struct zspec *sp)
{
        if (sp->score) {
                const struct zrange *r = sp->score;
                if (r->min > r->max || (r->min == r->max && (r->minex || r->maxex)))
                        return false;
        } else {
                int c = bound_cmp(&sp->lex->min, &sp->lex->max);
                if (c > 0 || (c == 0 && (sp->lex->min.ex || sp->lex->max.ex)))
                        return false;
        }
        const struct znode *first = zs->header->lv[0].forward;
        return zs->tail && gte_min(sp, zs->tail) && lte_max(sp, first);
}

/* The ranks [first, last] (1-based) of the nodes in range; false if none. */
static bool range_ranks(const struct zset *zs, const struct zspec *sp, size_t *first, size_t *last)
{
        if (!may_have(zs, sp))
                return false;
        const struct znode *x = zs->header;
        size_t rank = 0;
        for (int i = zs->level - 1; i >= 0; i--)
                while (x->lv[i].forward && !gte_min(sp, x->lv[i].forward)) {
                        rank += x->lv[i].span;
                        x = x->lv[i].forward;
                }
        x = x->lv[0].forward;
        if (!x || !lte_max(sp, x))
                return false;
        *first = rank + 1;
        x = zs->header;
        rank = 0;
        for (int i = zs->level - 1; i >= 0; i--)
                while (x->lv[i].forward && lte_max(sp, x->lv[i].forward)) {
                        rank += x->lv[i].span;
                        x = x->lv[i].forward;
                }
        if (x == zs->header || !gte_min(sp, x))
                return false;
        *last = rank;
        return *last >= *first;
}

/* ------------------------------------------------------------------ */
/* Replies. */

static void r_double(struct ctx *x, double d)
{
        ADD(x->o, 64, resp_add_double(out_, cap_, x->c->proto, d));
}

/* A score as text, as Redis's d2string / ld2string write it for ZSCAN. */
static size_t score_str(char *buf, size_t size, double d)
{
        if (isinf(d))
                return (size_t)snprintf(buf, size, "%s", d > 0 ? "inf" : "-inf");
        return (size_t)snprintf(buf, size, "%.17g", d);
}

/* One element of a range reply: RESP3 with scores nests [member, score]. */
static void r_element(struct ctx *x, const struct znode *n, bool withscores)
{
        if (withscores && x->c->proto == RESP3)
                r_array(x, 2);
        r_bulk(x, n->ent->key, n->ent->klen);
        if (withscores)
                r_double(x, n->score);
}

static void r_elements_header(struct ctx *x, size_t n, bool withscores)
{
        r_array(x, withscores && x->c->proto != RESP3 ? 2 * n : n);
}

static struct zset *zset_of(const struct dent *e)
{
        return (struct zset *)e->val;
}

/* The zset at key k for a command: NULL if absent; *bad after WRONGTYPE. */
static struct zset *lookup_zset(struct ctx *x, const struct resp_arg *k, bool *bad)
{
        struct dent *e = db_lookup_type(x, k, RT_ZSET, bad);
        return e && !*bad ? zset_of(e) : NULL;
}

/* ------------------------------------------------------------------ */
/* ZADD and ZINCRBY. */

enum { ZF_NX = 1, ZF_XX = 2, ZF_GT = 4, ZF_LT = 8, ZF_INCR = 16, ZF_CH = 32 };
enum { ZR_ADDED = 1, ZR_UPDATED = 2, ZR_NOP = 4, ZR_NAN = 8 };

/* zsetAdd: returns ZR_* flags or -ENOMEM; *newscore is set unless ZR_NOP. */
static int zset_add(struct zset *zs, const struct resp_arg *m, double score, unsigned flags,
                    double *newscore)
{
        if (isnan(score))
                return ZR_NAN;
        struct znode *n = zset_find(zs, m);
        if (n) {
                if (flags & ZF_NX)
                        return ZR_NOP;
                if (flags & ZF_INCR) {
                        score += n->score;
                        if (isnan(score))
                                return ZR_NAN;
                }
                if (((flags & ZF_LT) && score >= n->score) ||
                    ((flags & ZF_GT) && score <= n->score))
                        return ZR_NOP;
                *newscore = score;
                if (score == n->score)
                        return 0;
                zset_rescore(zs, n, score);
                return ZR_UPDATED;
        }
        if (flags & ZF_XX)
                return ZR_NOP;
        if (zset_insert(zs, m->ptr, m->len, score) < 0)
                return -ENOMEM;
        *newscore = score;
        return ZR_ADDED;
}

/* A new zset key, small unless its first member is long (Redis 7.0's ZADD
 * looks at that one only). */
static struct zset *new_zset(struct ctx *x, const struct resp_arg *k, size_t first_len)
{
        struct dent *e = db_new_key(x, k, RT_ZSET);
        if (!e)
                return NULL;
        zset_of(e)->big = first_len > ZSET_SMALL_VALUE;
        return zset_of(e);
}

/* Between slices: job->n counts the added, job->left the updated. */
static void zadd_generic(struct ctx *x, unsigned flags)
{
        size_t idx = 2;
        for (; idx < x->argc; idx++) {
                const struct resp_arg *a = &x->argv[idx];
                if (arg_is(a, "nx"))
                        flags |= ZF_NX;
                else if (arg_is(a, "xx"))
                        flags |= ZF_XX;
                else if (arg_is(a, "ch"))
                        flags |= ZF_CH;
                else if (arg_is(a, "incr"))
                        flags |= ZF_INCR;
                else if (arg_is(a, "gt"))
                        flags |= ZF_GT;
                else if (arg_is(a, "lt"))
                        flags |= ZF_LT;
                else
                        break;
        }
        size_t elements = x->argc - idx;
        if (elements % 2 || !elements)
                return r_err(x, E_SYNTAX);
        elements /= 2;
        if ((flags & ZF_NX) && (flags & ZF_XX))
                return r_err(x, "XX and NX options at the same time are not compatible");
        if (((flags & ZF_GT) && (flags & ZF_NX)) || ((flags & ZF_LT) && (flags & ZF_NX)) ||
            ((flags & ZF_GT) && (flags & ZF_LT)))
                return r_err(x, "GT, LT, and/or NX options at the same time are not compatible");
        if ((flags & ZF_INCR) && elements > 1)
                return r_err(x, "INCR option supports a single increment-element pair");
        double score = 0;
        /* Every score is checked before anything changes. */
        if (x->job->phase == 0) {
                for (size_t j = slice_resume_at(x, idx); j < x->argc; j += 2) {
                        if (slice_pause(x, j))
                                return;
                        if (arg_double(x, &x->argv[j], &score, NULL) < 0)
                                return;
                }
                slice_next_phase(x);
        }
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        bool processed = false;
        if (!zs && !(flags & ZF_XX) && !(zs = new_zset(x, &x->argv[1], x->argv[idx + 1].len)))
                return r_oom(x);
        for (size_t j = slice_resume_at(x, idx); zs && j < x->argc; j += 2) {
                if (slice_pause(x, j))
                        return;
                double s, newscore = 0;
                (void)parse_double(&x->argv[j], &s); /* checked: cannot fail now */
                int r = zset_add(zs, &x->argv[j + 1], s, flags, &newscore);
                if (r == -ENOMEM) {
                        struct dent *e = db_lookup(x, &x->argv[1]);
                        if (j == idx)
                                db_drop_if_empty(x, e);
                        else
                                x->db->dirty++;
                        return r_oom_at(x, j == idx ? 0 : j);
                }
                if (r & ZR_NAN)
                        return r_err(x, E_NAN);
                x->job->n += !!(r & ZR_ADDED);
                x->job->left += !!(r & ZR_UPDATED);
                if (!(r & ZR_NOP)) {
                        processed = true;
                        score = newscore;
                }
        }
        x->db->dirty += (uint64_t)x->job->n + x->job->left;
        if (flags & ZF_INCR) {
                if (processed)
                        r_double(x, score);
                else
                        r_null(x);
        } else {
                r_int(x, (flags & ZF_CH) ? x->job->n + (long long)x->job->left : x->job->n);
        }
}

void cmd_zadd(struct ctx *x)
{
        zadd_generic(x, 0);
}

void cmd_zincrby(struct ctx *x)
{
        zadd_generic(x, ZF_INCR);
}

/* ------------------------------------------------------------------ */
/* Reading members. */

void cmd_zscore(struct ctx *x)
{
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        struct znode *n = zs ? zset_find(zs, &x->argv[2]) : NULL;
        if (!n)
                return r_null(x);
        r_double(x, n->score);
}

void cmd_zmscore(struct ctx *x)
{
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (!x->resumed)
                r_array(x, x->argc - 2);
        for (size_t j = slice_resume_at(x, 2); j < x->argc; j++) {
                if (slice_pause(x, j))
                        return;
                struct znode *n = zs ? zset_find(zs, &x->argv[j]) : NULL;
                if (n)
                        r_double(x, n->score);
                else
                        r_null(x);
        }
}

void cmd_zcard(struct ctx *x)
{
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (!bad)
                r_int(x, zs ? (long long)zs->len : 0);
}

static void count_generic(struct ctx *x, bool lex)
{
        struct zrange r;
        struct zlexrange lr;
        struct zspec sp = {0};
        if (lex ? parse_lexrange(x, &x->argv[2], &x->argv[3], &lr)
                : parse_range(x, &x->argv[2], &x->argv[3], &r))
                return;
        if (lex)
                sp.lex = &lr;
        else
                sp.score = &r;
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        size_t first, last;
        if (!zs || !range_ranks(zs, &sp, &first, &last))
                return r_int(x, 0);
        r_int(x, (long long)(last - first + 1));
}

void cmd_zcount(struct ctx *x)
{
        count_generic(x, false);
}

void cmd_zlexcount(struct ctx *x)
{
        count_generic(x, true);
}

static void rank_generic(struct ctx *x, bool rev)
{
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        struct znode *n = zs ? zset_find(zs, &x->argv[2]) : NULL;
        if (!n)
                return r_null(x);
        size_t rank = zsl_rank(zs, n);
        r_int(x, (long long)(rev ? zs->len - rank : rank - 1));
}

void cmd_zrank(struct ctx *x)
{
        rank_generic(x, false);
}

void cmd_zrevrank(struct ctx *x)
{
        rank_generic(x, true);
}

/* ------------------------------------------------------------------ */
/* Ranges: parsed into a run of ranks. */

enum { ZT_AUTO, ZT_RANK, ZT_SCORE, ZT_LEX };
enum { ZD_AUTO, ZD_FORWARD, ZD_REVERSE };

/* A run of n ranks from first (1-based), going down if rev. */
struct zrun {
        size_t first, n;
        bool rev;
};

struct zquery {
        int type, dir;
        bool withscores;
        long long start, end; /* ZT_RANK */
        long long offset, limit;
        struct zrange score;
        struct zlexrange lex;
};

/* Parses a Z*RANGE* command whose source key is argv[src] (zrangeGenericCommand,
 * steps 1 and 2). 0, or -1 after an error reply. */
static int parse_query(struct ctx *x, size_t src, bool store, struct zquery *q)
{
        size_t minidx = src + 1, maxidx = src + 2;
        q->withscores = false;
        q->offset = 0;
        q->limit = -1;
        for (size_t j = src + 3; j < x->argc; j++) {
                size_t left = x->argc - j - 1;
                const struct resp_arg *a = &x->argv[j];
                if (!store && arg_is(a, "withscores")) {
                        q->withscores = true;
                } else if (arg_is(a, "limit") && left >= 2) {
                        if (arg_ll(x, &x->argv[j + 1], &q->offset, NULL) < 0 ||
                            arg_ll(x, &x->argv[j + 2], &q->limit, NULL) < 0)
                                return -1;
                        j += 2;
                } else if (q->dir == ZD_AUTO && arg_is(a, "rev")) {
                        q->dir = ZD_REVERSE;
                } else if (q->type == ZT_AUTO && arg_is(a, "bylex")) {
                        q->type = ZT_LEX;
                } else if (q->type == ZT_AUTO && arg_is(a, "byscore")) {
                        q->type = ZT_SCORE;
                } else {
                        r_err(x, E_SYNTAX);
                        return -1;
                }
        }
        if (q->dir == ZD_AUTO)
                q->dir = ZD_FORWARD;
        if (q->type == ZT_AUTO)
                q->type = ZT_RANK;
        if (q->limit != -1 && q->type == ZT_RANK) {
                r_err(x, "syntax error, LIMIT is only supported in combination with either "
                         "BYSCORE or BYLEX");
                return -1;
        }
        if (q->withscores && q->type == ZT_LEX) {
                r_err(x, "syntax error, WITHSCORES not supported in combination with BYLEX");
                return -1;
        }
        if (q->dir == ZD_REVERSE && q->type != ZT_RANK) {
                minidx = src + 2;
                maxidx = src + 1;
        }
        switch (q->type) {
        case ZT_RANK:
                return arg_ll(x, &x->argv[minidx], &q->start, NULL) < 0 ||
                                       arg_ll(x, &x->argv[maxidx], &q->end, NULL) < 0
                               ? -1
                               : 0;
        case ZT_SCORE:
                return parse_range(x, &x->argv[minidx], &x->argv[maxidx], &q->score) ? -1 : 0;
        default:
                return parse_lexrange(x, &x->argv[minidx], &x->argv[maxidx], &q->lex);
        }
}

/* Clamps rank indexes start..end (negative from the end) to a run of len. */
static struct zrun rank_run(long long start, long long end, size_t len, bool rev)
{
        long long llen = (long long)len;
        if (start < 0)
                start += llen;
        if (end < 0)
                end += llen;
        if (start < 0)
                start = 0;
        if (start > end || start >= llen)
                return (struct zrun){0};
        if (end >= llen)
                end = llen - 1;
        size_t n = (size_t)(end - start + 1);
        return (struct zrun){rev ? len - (size_t)start : (size_t)start + 1, n, rev};
}

/* The run a parsed query selects in zs. */
static struct zrun query_run(const struct zset *zs, const struct zquery *q)
{
        bool rev = q->dir == ZD_REVERSE;
        if (q->type == ZT_RANK)
                return rank_run(q->start, q->end, zs->len, rev);
        struct zspec sp = {0};
        if (q->type == ZT_SCORE)
                sp.score = &q->score;
        else
                sp.lex = &q->lex;
        size_t first, last;
        /* a negative offset walks off the end (Redis's `while (offset--)`) */
        if (q->offset < 0 || !range_ranks(zs, &sp, &first, &last))
                return (struct zrun){0};
        size_t count = last - first + 1;
        if ((unsigned long long)q->offset >= count)
                return (struct zrun){0};
        size_t n = count - (size_t)q->offset;
        if (q->limit >= 0 && (unsigned long long)q->limit < n)
                n = (size_t)q->limit;
        size_t from = rev ? last - (size_t)q->offset : first + (size_t)q->offset;
        return (struct zrun){from, n, rev};
}

/* Replies the run's elements; between slices job->pos is the next rank and
 * job->left how many remain. */
static void reply_run(struct ctx *x, const struct zset *zs, struct zrun run, bool withscores)
{
        if (!x->resumed) {
                r_elements_header(x, run.n, withscores);
                x->job->pos = run.first;
                x->job->left = run.n;
        }
        if (!x->job->left)
                return;
        struct znode *n = zsl_at(zs, x->job->pos);
        while (x->job->left) {
                if (slice_pause(x, x->job->pos))
                        return;
                r_element(x, n, withscores);
                x->job->left--;
                if (run.rev) {
                        n = n->backward;
                        x->job->pos--;
                } else {
                        n = n->lv[0].forward;
                        x->job->pos++;
                }
        }
}

static void range_generic(struct ctx *x, int type, int dir)
{
        struct zquery q = {.type = type, .dir = dir};
        if (parse_query(x, 1, false, &q) < 0)
                return;
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (!zs)
                return r_array(x, 0);
        reply_run(x, zs, query_run(zs, &q), q.withscores);
}

void cmd_zrange(struct ctx *x)
{
        range_generic(x, ZT_AUTO, ZD_AUTO);
}

void cmd_zrevrange(struct ctx *x)
{
        range_generic(x, ZT_RANK, ZD_REVERSE);
}

void cmd_zrangebyscore(struct ctx *x)
{
        range_generic(x, ZT_SCORE, ZD_FORWARD);
}

void cmd_zrevrangebyscore(struct ctx *x)
{
        range_generic(x, ZT_SCORE, ZD_REVERSE);
}

void cmd_zrangebylex(struct ctx *x)
{
        range_generic(x, ZT_LEX, ZD_FORWARD);
}

void cmd_zrevrangebylex(struct ctx *x)
{
        range_generic(x, ZT_LEX, ZD_REVERSE);
}

/* Puts zset zs (its holder made here) at key k, replacing what was there and
 * its time to live, or deletes k when zs is empty. Frees zs on failure. */
static int store_zset(struct ctx *x, const struct resp_arg *k, struct zset *zs)
{
        struct dent *old = db_lookup(x, k);
        if (!zs->len) {
                zset_free(zs);
                if (old) {
                        db_delete(x->db, k->ptr, k->len);
                        x->db->dirty++;
                }
                return 0;
        }
        if (old) {
                db_drop_value(x->db, old);
                db_set_expire(x->db, old, 0);
        } else if (!(old = db_add(x->db, dent_new(k->ptr, k->len)))) {
                zset_free(zs);
                return -ENOMEM;
        }
        old->type = RT_ZSET;
        old->val = (char *)zs;
        old->vlen = 0;
        x->db->dirty++;
        return 0;
}

static void scratch_zset_free(void *p)
{
        zset_free(p);
}

/* The zset a store command builds across its slices (x->job->scratch): a new
 * one on the first slice; NULL when out of memory. */
static struct zset *scratch_zset(struct ctx *x)
{
        if (!x->resumed) {
                x->job->scratch = zset_new();
                x->job->scratch_free = scratch_zset_free;
        }
        return x->job->scratch;
}

/* Takes the scratch zset back, to store it. */
static struct zset *scratch_take(struct ctx *x)
{
        struct zset *zs = x->job->scratch;
        x->job->scratch = NULL;
        return zs;
}

/* Between slices job->pos is the next rank to copy and job->left how many
 * remain; the copy is the job's scratch. */
void cmd_zrangestore(struct ctx *x)
{
        struct zquery q = {.type = ZT_AUTO, .dir = ZD_AUTO};
        if (parse_query(x, 2, true, &q) < 0)
                return;
        bool bad;
        struct zset *src = lookup_zset(x, &x->argv[2], &bad);
        if (bad)
                return;
        struct zset *zs = scratch_zset(x); /* a listpack first, as in Redis 7.0 */
        if (!zs)
                return r_oom(x);
        bool rev = q.dir == ZD_REVERSE;
        if (!x->resumed) {
                struct zrun run = src ? query_run(src, &q) : (struct zrun){0};
                x->job->pos = run.first;
                x->job->left = run.n;
        }
        struct znode *p = x->job->left ? zsl_at(src, x->job->pos) : NULL;
        while (x->job->left) {
                if (slice_pause(x, x->job->pos))
                        return;
                if (zset_insert(zs, p->ent->key, p->ent->klen, p->score) < 0)
                        return r_oom(x);
                x->job->left--;
                if (rev) {
                        p = p->backward;
                        x->job->pos--;
                } else {
                        p = p->lv[0].forward;
                        x->job->pos++;
                }
        }
        scratch_take(x);
        size_t n = zs->len;
        if (store_zset(x, &x->argv[1], zs) < 0)
                return r_oom(x);
        r_int(x, (long long)n);
}

/* ------------------------------------------------------------------ */
/* Removing. */

void cmd_zrem(struct ctx *x)
{
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (!zs)
                return r_int(x, 0);
        for (size_t j = slice_resume_at(x, 2); j < x->argc && zs->len; j++) {
                if (slice_pause(x, j))
                        return;
                struct znode *n = zset_find(zs, &x->argv[j]);
                if (n) {
                        zset_remove(zs, n);
                        x->job->n++;
                }
        }
        if (x->job->n) {
                x->db->dirty++;
                db_drop_if_empty(x, db_lookup(x, &x->argv[1]));
        }
        r_int(x, x->job->n);
}

/* Z*REMRANGEBY*: between slices job->pos is the first rank of the run and
 * job->left how many are still to go. */
static void remrange_generic(struct ctx *x, int type)
{
        struct zquery q = {.type = type, .dir = ZD_FORWARD, .limit = -1};
        if (type == ZT_RANK) {
                if (arg_ll(x, &x->argv[2], &q.start, NULL) < 0 ||
                    arg_ll(x, &x->argv[3], &q.end, NULL) < 0)
                        return;
        } else if (type == ZT_SCORE) {
                if (parse_range(x, &x->argv[2], &x->argv[3], &q.score))
                        return;
        } else if (parse_lexrange(x, &x->argv[2], &x->argv[3], &q.lex)) {
                return;
        }
        q.limit = -1;
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (!zs)
                return r_int(x, 0);
        if (!x->resumed) {
                struct zrun run = query_run(zs, &q);
                x->job->pos = run.first;
                x->job->left = run.n;
        }
        while (x->job->left) {
                if (slice_pause(x, x->job->pos))
                        return;
                zset_remove(zs, zsl_at(zs, x->job->pos));
                x->job->left--;
                x->job->n++;
        }
        if (x->job->n) {
                x->db->dirty++;
                db_drop_if_empty(x, db_lookup(x, &x->argv[1]));
        }
        r_int(x, x->job->n);
}

void cmd_zremrangebyrank(struct ctx *x)
{
        remrange_generic(x, ZT_RANK);
}

void cmd_zremrangebyscore(struct ctx *x)
{
        remrange_generic(x, ZT_SCORE);
}

void cmd_zremrangebylex(struct ctx *x)
{
        remrange_generic(x, ZT_LEX);
}

/* ZPOPMIN and ZPOPMAX: the reply is sized first, so the popped reach the client. */
static void pop_generic(struct ctx *x, bool max)
{
        if (x->argc > 3)
                return r_err(x, E_SYNTAX);
        long long count = -1;
        if (x->argc == 3) {
                if (arg_ll(x, &x->argv[2], &count, E_POSITIVE) < 0)
                        return;
                if (count < 0)
                        return r_err(x, E_POSITIVE);
        }
        bool nested = x->c->proto == RESP3 && count != -1;
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (!zs || count == 0)
                return r_array(x, 0);
        if (count == -1)
                count = 1;
        size_t n = (unsigned long long)count < zs->len ? (size_t)count : zs->len;
        if (!x->resumed) {
                size_t room = 24 + 64;
                struct znode *p = max ? zs->tail : zs->header->lv[0].forward;
                for (size_t i = 0; i < n; i++, p = max ? p->backward : p->lv[0].forward)
                        room += p->ent->klen + 96;
                if (rbuf_reserve(x->o, room) < 0)
                        return r_oom(x);
                r_array(x, nested ? n : 2 * n);
                x->job->left = n;
        }
        while (x->job->left) {
                if (slice_pause(x, 0))
                        return;
                struct znode *p = max ? zs->tail : zs->header->lv[0].forward;
                if (nested)
                        r_array(x, 2);
                r_bulk(x, p->ent->key, p->ent->klen);
                r_double(x, p->score);
                zset_remove(zs, p);
                x->job->left--;
        }
        x->db->dirty++;
        db_drop_if_empty(x, db_lookup(x, &x->argv[1]));
}

void cmd_zpopmin(struct ctx *x)
{
        pop_generic(x, false);
}

void cmd_zpopmax(struct ctx *x)
{
        pop_generic(x, true);
}

/* ------------------------------------------------------------------ */
/* ZRANDMEMBER. */

static struct znode *random_node(const struct zset *zs)
{
        return zsl_at(zs, (size_t)(zrand() % zs->len) + 1);
}

void cmd_zrandmember(struct ctx *x)
{
        long long l = 0;
        bool withscores = false;
        if (x->argc >= 3) {
                if (arg_ll(x, &x->argv[2], &l, NULL) < 0)
                        return;
                if (l == LLONG_MIN)
                        return r_errf(x, "value is out of range, value must between %lld and %lld",
                                      -LLONG_MAX, LLONG_MAX);
                if (x->argc > 4 || (x->argc == 4 && !arg_is(&x->argv[3], "withscores")))
                        return r_err(x, E_SYNTAX);
                if (x->argc == 4) {
                        withscores = true;
                        if (l < -LLONG_MAX / 2 || l > LLONG_MAX / 2)
                                return r_err(x, "value is out of range");
                }
        }
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (x->argc == 2) {
                if (!zs)
                        return r_null(x);
                struct znode *n = random_node(zs);
                return r_bulk(x, n->ent->key, n->ent->klen);
        }
        if (!zs || l == 0)
                return r_array(x, 0);
        bool uniq = l > 0;
        size_t count = (size_t)(l > 0 ? l : -l);
        if (!uniq || count == 1) { /* repeats allowed: each drawn anew */
                if (count > ZRANDMEMBER_MAX)
                        return r_oom(x);
                if (!x->resumed) {
                        r_elements_header(x, count, withscores);
                        x->job->left = count;
                }
                for (; x->job->left; x->job->left--) {
                        if (slice_pause(x, 0))
                                return;
                        r_element(x, random_node(zs), withscores);
                }
                return;
        }
        if (count >= zs->len) /* all of it, as Redis's iterator goes: from the top */
                return reply_run(x, zs, (struct zrun){zs->len, zs->len, true}, withscores);
        /* count distinct members, each subset as likely as any other (Knuth's
         * selection sampling: a member is taken with the odds of the places
         * left against the members left), in score order */
        if (!x->resumed) {
                r_elements_header(x, count, withscores);
                x->job->pos = 1;
                x->job->left = count;
        }
        struct znode *n = zsl_at(zs, x->job->pos);
        for (; x->job->left; x->job->pos++, n = n->lv[0].forward) {
                if (slice_pause(x, x->job->pos))
                        return;
                if (zrand() % (zs->len - x->job->pos + 1) < x->job->left) {
                        r_element(x, n, withscores);
                        x->job->left--;
                }
        }
}

/* ------------------------------------------------------------------ */
/* ZSCAN. */

struct zscan {
        struct ctx *x;
        const struct resp_arg *pattern; /* NULL: all */
};

static void zscan_emit(struct zscan *w, const struct znode *n)
{
        const struct dent *m = n->ent;
        if (w->pattern && !glob_match(w->pattern->ptr, w->pattern->len, m->key, m->klen))
                return;
        char b[64];
        size_t bl = score_str(b, sizeof b, n->score);
        ADD(&w->x->job->acc, m->klen + 32, resp_add_bulk(out_, cap_, m->key, m->klen));
        ADD(&w->x->job->acc, bl + 32, resp_add_bulk(out_, cap_, b, bl));
        w->x->job->n += 2;
}

static void zscan_cb(struct dent *e, void *arg)
{
        zscan_emit(arg, node_of(e));
}

void cmd_zscan(struct ctx *x)
{
        const struct resp_arg *c = &x->argv[2];
        char num[32], *end;
        if (!c->len || c->len >= sizeof num)
                return r_err(x, "invalid cursor");
        memcpy(num, c->ptr, c->len);
        num[c->len] = 0;
        errno = 0;
        unsigned long cursor = strtoul(num, &end, 10);
        if (isspace((unsigned char)num[0]) || *end || errno == ERANGE)
                return r_err(x, "invalid cursor");
        bool bad;
        struct zset *zs = lookup_zset(x, &x->argv[1], &bad);
        if (bad)
                return;
        if (!zs) {
                r_array(x, 2);
                r_bulk(x, "0", 1);
                return r_array(x, 0);
        }
        struct zscan w = {.x = x};
        long long count = 10;
        for (size_t j = 3; j < x->argc; j += 2) {
                bool next = j + 1 < x->argc;
                if (next && arg_is(&x->argv[j], "count")) {
                        if (arg_ll(x, &x->argv[j + 1], &count, NULL) < 0)
                                return;
                        if (count < 1)
                                return r_err(x, E_SYNTAX);
                } else if (next && arg_is(&x->argv[j], "match")) {
                        const struct resp_arg *p = &x->argv[j + 1];
                        w.pattern = p->len == 1 && p->ptr[0] == '*' ? NULL : p;
                } else {
                        return r_err(x, E_SYNTAX);
                }
        }
        if (!zs->big) { /* a listpack in Redis: all of it, in order, at once */
                for (struct znode *n = zs->header->lv[0].forward; n; n = n->lv[0].forward)
                        zscan_emit(&w, n);
                cursor = 0;
        } else {
                /* Redis's COUNT counts members and scores alike; between
                 * slices job->pos is the cursor, job->left the visits left */
                if (x->resumed)
                        cursor = x->job->pos;
                else
                        x->job->left = count > LLONG_MAX / 10 ? LLONG_MAX : (size_t)count * 10;
                do {
                        if (slice_pause(x, cursor))
                                return;
                        cursor = dict_scan(&zs->d, cursor, zscan_cb, &w);
                } while (cursor && x->job->n < count && --x->job->left > 0);
        }
        if (x->job->acc.failed)
                return r_oom(x);
        r_array(x, 2);
        r_bulk_ll(x, (long long)cursor);
        r_array(x, (size_t)x->job->n);
        struct rbuf *acc = &x->job->acc;
        if (acc->len && rbuf_reserve(x->o, acc->len) == 0) {
                memcpy(x->o->p + x->o->len, acc->p, acc->len);
                x->o->len += acc->len;
        }
}

/* ------------------------------------------------------------------ */
/* ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE. */

enum { OP_UNION, OP_INTER, OP_DIFF };
enum { AGG_SUM, AGG_MIN, AGG_MAX };

struct zsrc {
        const struct zset *zs; /* or */
        struct dict *set;      /* a plain set: every score 1 */
        double weight;
        size_t len;
        size_t argi; /* its place in the arguments, for a stable sort */
};

static int src_cmp(const void *a, const void *b)
{
        const struct zsrc *x = a, *y = b;
        if (x->len != y->len)
                return x->len < y->len ? -1 : 1;
        return x->argi < y->argi ? -1 : x->argi > y->argi;
}

/* The score of member (m, n) in src, if it is there (dict_peek: a source
 * may be the one being walked). */
static bool src_score(const struct zsrc *s, const char *m, size_t n, double *ret)
{
        if (s->zs) {
                const struct dent *e = dict_peek(&s->zs->d, m, n);
                if (e)
                        *ret = node_of(e)->score;
                return e;
        }
        if (s->set && dict_peek(s->set, m, n)) {
                *ret = 1.0;
                return true;
        }
        return false;
}

static void aggregate(double *target, double v, int agg)
{
        if (agg == AGG_SUM) {
                *target += v;
                if (isnan(*target))
                        *target = 0.0;
        } else if (agg == AGG_MIN) {
                *target = v < *target ? v : *target;
        } else {
                *target = v > *target ? v : *target;
        }
}

/* An operation under way: the sources sorted, the one being fed (from). */
struct setop {
        struct zset *dst;
        const struct zsrc *src;
        size_t nsrc, from;
        int op, agg;
        bool oom;
};

/* What zunionInterDiffGenericCommand does with one element of src[from]. */
static void setop_member(struct setop *w, const char *m, size_t mlen, double score)
{
        if (w->oom)
                return;
        double v = w->src[w->from].weight * score, s;
        if (isnan(v))
                v = 0;
        if (w->op == OP_UNION) {
                /* a member is aggregated, in source order, when first met */
                if (dict_peek(&w->dst->d, m, mlen))
                        return;
                for (size_t i = w->from + 1; i < w->nsrc; i++) {
                        if (!src_score(&w->src[i], m, mlen, &s))
                                continue;
                        double t = w->src[i].weight * s;
                        aggregate(&v, isnan(t) ? 0 : t, w->agg);
                }
        } else if (w->op == OP_INTER) {
                for (size_t i = 1; i < w->nsrc; i++) {
                        if (!src_score(&w->src[i], m, mlen, &s))
                                return;
                        aggregate(&v, w->src[i].weight * s, w->agg);
                }
        } else {
                for (size_t i = 1; i < w->nsrc; i++)
                        if (src_score(&w->src[i], m, mlen, &s))
                                return;
                v = score;
        }
        if (zset_insert(w->dst, m, mlen, v) < 0)
                w->oom = true;
}

static void setop_field(struct dent *e, void *arg)
{
        setop_member(arg, e->key, e->klen, 1.0);
}

/* Feeds the elements of src[i] to the operation from job->pos (an index in
 * a zset, a bucket in a set) on; false if it paused. */
static bool setop_source(struct ctx *x, struct setop *w, size_t i)
{
        const struct zsrc *s = &w->src[i];
        size_t *pos = &x->job->pos;
        w->from = i;
        if (s->zs) {
                struct znode *n = *pos < s->zs->len ? zsl_at(s->zs, *pos + 1) : NULL;
                for (; n && !w->oom; n = n->lv[0].forward, ++*pos) {
                        if (slice_pause(x, *pos))
                                return false;
                        setop_member(w, n->ent->key, n->ent->klen, n->score);
                }
        } else if (s->set) {
                while (!w->oom && dict_walk(s->set, pos, setop_field, w))
                        if (slice_pause(x, *pos))
                                return false;
        }
        return true;
}

static void setop_store(struct ctx *x, int op)
{
        long long setnum;
        if (arg_ll(x, &x->argv[2], &setnum, NULL) < 0)
                return;
        if (setnum < 1)
                return r_errf(x, "at least 1 input key is needed for '%s' command", x->cmd->name);
        if (setnum > (long long)(x->argc - 3))
                return r_err(x, E_SYNTAX);
        struct zsrc *src = zcalloc((size_t)setnum * sizeof *src);
        if (!src)
                return r_oom(x);
        size_t j = 3;
        for (size_t i = 0; i < (size_t)setnum; i++, j++) {
                struct dent *e = db_lookup(x, &x->argv[j]);
                src[i].weight = 1.0;
                src[i].argi = i;
                if (!e)
                        continue;
                if (e->type == RT_ZSET) {
                        src[i].zs = zset_of(e);
                        src[i].len = src[i].zs->len;
                } else if (e->type == RT_SET) {
                        src[i].set = fields_dict(e);
                        src[i].len = dict_size(src[i].set);
                } else {
                        zfree(src);
                        return r_err(x, E_WRONGTYPE);
                }
        }
        int agg = AGG_SUM;
        while (j < x->argc) {
                size_t remaining = x->argc - j;
                if (op != OP_DIFF && remaining >= (size_t)setnum + 1 &&
                    arg_is(&x->argv[j], "weights")) {
                        j++;
                        for (size_t i = 0; i < (size_t)setnum; i++, j++)
                                if (arg_double(x, &x->argv[j], &src[i].weight,
                                               "weight value is not a float") < 0) {
                                        zfree(src);
                                        return;
                                }
                } else if (op != OP_DIFF && remaining >= 2 && arg_is(&x->argv[j], "aggregate")) {
                        const struct resp_arg *a = &x->argv[j + 1];
                        if (arg_is(a, "sum"))
                                agg = AGG_SUM;
                        else if (arg_is(a, "min"))
                                agg = AGG_MIN;
                        else if (arg_is(a, "max"))
                                agg = AGG_MAX;
                        else {
                                zfree(src);
                                return r_err(x, E_SYNTAX);
                        }
                        j += 2;
                } else {
                        zfree(src);
                        return r_err(x, E_SYNTAX);
                }
        }
        if (op != OP_DIFF)
                qsort(src, (size_t)setnum, sizeof *src, src_cmp);
        /* Between slices the result is the job's scratch, job->phase the
         * source being fed and job->pos where in it. */
        struct setop w = {
                .dst = scratch_zset(x), .src = src, .nsrc = (size_t)setnum, .op = op, .agg = agg};
        if (!w.dst) {
                zfree(src);
                return r_oom(x);
        }
        if (!x->resumed) {
                w.dst->big = true;
                x->job->phase = 0;
                x->job->pos = 0;
        }
        size_t nfeed = op == OP_UNION ? (size_t)setnum : src[0].len ? 1 : 0;
        for (; (size_t)x->job->phase < nfeed && !w.oom; x->job->phase++, x->job->pos = 0) {
                if (!setop_source(x, &w, (size_t)x->job->phase)) {
                        zfree(src);
                        return;
                }
        }
        zfree(src);
        if (w.oom)
                return r_oom(x);
        scratch_take(x);
        /* built big, then made a listpack if small enough (Redis's
         * zsetConvertToListpackIfNeeded) */
        bool small = w.dst->len <= ZSET_SMALL_ENTRIES;
        for (struct znode *n = w.dst->header->lv[0].forward; small && n; n = n->lv[0].forward)
                small = n->ent->klen <= ZSET_SMALL_VALUE;
        for (struct znode *n = w.dst->header->lv[0].forward; small && n; n = n->lv[0].forward)
                n->score = n->score == 0 ? 0.0 : n->score;
        w.dst->big = !small;
        size_t n = w.dst->len;
        if (store_zset(x, &x->argv[1], w.dst) < 0)
                return r_oom(x);
        r_int(x, (long long)n);
}

void cmd_zunionstore(struct ctx *x)
{
        setop_store(x, OP_UNION);
}

void cmd_zinterstore(struct ctx *x)
{
        setop_store(x, OP_INTER);
}

void cmd_zdiffstore(struct ctx *x)
{
        setop_store(x, OP_DIFF);
}

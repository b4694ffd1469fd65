/*
 * The keyspace's hash table (also used for hash and set values): chained
 * buckets, two tables while growing and a bucket moved per operation, so no
 * single command pays for a whole rehash; SCAN with Redis's reverse-binary
 * cursor, which visits every element present for the whole scan even across a
 * rehash. Plus the counted allocator the store uses for MaxMemory= and INFO.
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_int.h"

/* ------------------------------------------------------------------ */
/* Counted memory. */

static uint64_t used_memory, peak_memory;

/* Failure injection for the unit tests: skip this many allocations, then
 * fail this many (-1: all); skip -1: off. */
static long fail_skip = -1, fail_count;
static bool fail_hit;

bool zmalloc_fail_after(long n, long count)
{
        bool hit = fail_hit;
        fail_skip = n;
        fail_count = count;
        fail_hit = false;
        return hit;
}

static bool injected(void)
{
        if (fail_skip < 0 || fail_count == 0)
                return false;
        if (fail_skip > 0) {
                fail_skip--;
                return false;
        }
        if (fail_count > 0)
                fail_count--;
        fail_hit = true;
        return true;
}

static void counted(size_t n)
{
        used_memory += n;
        if (used_memory > peak_memory)
                peak_memory = used_memory;
}

void *zmalloc(size_t n)
{
        void *p = injected() ? NULL : malloc(n ? n : 1);
        if (p)
                counted(malloc_usable_size(p));
        return p;
}

void *zcalloc(size_t n)
{
        void *p = injected() ? NULL : calloc(1, n ? n : 1);
        if (p)
                counted(malloc_usable_size(p));
        return p;
}

void *zrealloc(void *p, size_t n)
{
        size_t old = p ? malloc_usable_size(p) : 0;
        void *q = injected() ? NULL : realloc(p, n ? n : 1);
        if (!q)
                return NULL;
        used_memory -= old;
        counted(malloc_usable_size(q));
        return q;
}

void zfree(void *p)
{
        if (!p)
                return;
        used_memory -= malloc_usable_size(p);
        free(p);
}

uint64_t rdb_used_memory(void)
{
        return used_memory;
}

uint64_t rdb_peak_memory(void)
{
        return peak_memory > used_memory ? peak_memory : used_memory;
}

int rbuf_reserve(struct rbuf *b, size_t more)
{
        if (b->cap - b->len >= more)
                return 0;
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < more) {
                if (cap > SIZE_MAX / 2)
                        goto fail;
                cap *= 2;
        }
        char *p = zrealloc(b->p, cap);
        if (!p)
                goto fail;
        b->p = p;
        b->cap = cap;
        return 0;
fail:
        b->failed = true;
        return -ENOMEM;
}

void rbuf_free(struct rbuf *b)
{
        zfree(b->p);
        *b = (struct rbuf){0};
}

/* ------------------------------------------------------------------ */
/* Hashing. */

static uint64_t seed = 0x9e3779b97f4a7c15ull;

static uint64_t mix(uint64_t h)
{
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 33;
        return h;
}

uint64_t dict_hash(const char *s, size_t n)
{
        uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
        while (n >= 8) {
                uint64_t v;
                memcpy(&v, s, 8);
                h = (h ^ mix(v)) * 0x100000001b3ull;
                s += 8;
                n -= 8;
        }
        uint64_t v = 0;
        memcpy(&v, s, n);
        return mix(h ^ v);
}

void dict_seed(uint64_t s)
{
        seed ^= mix(s);
}

/* ------------------------------------------------------------------ */
/* The table. */

void dict_init(struct dict *d)
{
        memset(d, 0, sizeof *d);
        d->rehash = -1;
}

static size_t bucket(const struct dict *d, int t, const struct dent *e)
{
        return dict_hash(e->key, e->klen) & (d->size[t] - 1);
}

/* Moves up to n buckets of t[0] into t[1] (visiting at most 10n empty ones). */
static void dict_step(struct dict *d, int n)
{
        int empty = n * 10;
        while (n-- > 0 && d->used[0]) {
                while (!d->t[0][d->rehash]) {
                        d->rehash++;
                        if (--empty == 0)
                                return;
                }
                struct dent *e = d->t[0][d->rehash];
                while (e) {
                        struct dent *next = e->next;
                        size_t i = bucket(d, 1, e);
                        e->next = d->t[1][i];
                        d->t[1][i] = e;
                        d->used[0]--;
                        d->used[1]++;
                        e = next;
                }
                d->t[0][d->rehash++] = NULL;
        }
        if (!d->used[0]) {
                zfree(d->t[0]);
                d->t[0] = d->t[1];
                d->size[0] = d->size[1];
                d->used[0] = d->used[1];
                d->t[1] = NULL;
                d->size[1] = d->used[1] = 0;
                d->rehash = -1;
        }
}

size_t dict_size(const struct dict *d)
{
        return d->used[0] + d->used[1];
}

struct dent **dict_ref(struct dict *d, const char *k, size_t n, int *ret_table)
{
        if (d->rehash >= 0)
                dict_step(d, 1);
        if (!d->size[0])
                return NULL;
        uint64_t h = dict_hash(k, n);
        for (int t = 0; t <= 1; t++) {
                struct dent **pp = &d->t[t][h & (d->size[t] - 1)];
                for (; *pp; pp = &(*pp)->next) {
                        if ((*pp)->klen == n && !memcmp((*pp)->key, k, n)) {
                                if (ret_table)
                                        *ret_table = t;
                                return pp;
                        }
                }
                if (d->rehash < 0)
                        break;
        }
        return NULL;
}

const struct dent *dict_peek(const struct dict *d, const char *k, size_t n)
{
        if (!d->size[0])
                return NULL;
        uint64_t h = dict_hash(k, n);
        for (int t = 0; t <= 1; t++) {
                const struct dent *e = d->t[t][h & (d->size[t] - 1)];
                for (; e; e = e->next)
                        if (e->klen == n && !memcmp(e->key, k, n))
                                return e;
                if (d->rehash < 0)
                        break;
        }
        return NULL;
}

struct dent *dict_find(struct dict *d, const char *k, size_t n)
{
        struct dent **pp = dict_ref(d, k, n, NULL);
        return pp ? *pp : NULL;
}

int dict_add(struct dict *d, struct dent *e)
{
        if (d->rehash >= 0) {
                dict_step(d, 1);
        } else if (!d->size[0]) {
                if (!(d->t[0] = zcalloc(4 * sizeof *d->t[0])))
                        return -ENOMEM;
                d->size[0] = 4;
        } else if (d->used[0] >= d->size[0]) {
                /* No memory to grow: longer chains are slower, not wrong. */
                d->t[1] = zcalloc(d->size[0] * 2 * sizeof *d->t[1]);
                if (d->t[1]) {
                        d->size[1] = d->size[0] * 2;
                        d->rehash = 0;
                }
        }
        int t = d->rehash >= 0 ? 1 : 0;
        size_t i = bucket(d, t, e);
        e->next = d->t[t][i];
        d->t[t][i] = e;
        d->used[t]++;
        return 0;
}

struct dent *dict_unlink(struct dict *d, const char *k, size_t n)
{
        int t;
        struct dent **pp = dict_ref(d, k, n, &t);
        if (!pp)
                return NULL;
        struct dent *e = *pp;
        *pp = e->next;
        d->used[t]--;
        return e;
}

static void visit(struct dent *e, dict_fn *fn, void *arg)
{
        for (struct dent *next; e; e = next) {
                next = e->next;
                fn(e, arg);
        }
}

bool dict_walk(struct dict *d, size_t *pos, dict_fn *fn, void *arg)
{
        for (; *pos < d->size[0] + d->size[1]; ++*pos) {
                int t = *pos >= d->size[0];
                struct dent *e = d->t[t][*pos - (t ? d->size[0] : 0)];
                if (e) {
                        ++*pos;
                        visit(e, fn, arg);
                        return true;
                }
        }
        return false;
}

void dict_each(struct dict *d, dict_fn *fn, void *arg)
{
        size_t pos = 0;
        while (dict_walk(d, &pos, fn, arg))
                ;
}

void dict_release(struct dict *d)
{
        zfree(d->t[0]);
        zfree(d->t[1]);
        dict_init(d);
}

void dict_clear(struct dict *d, dict_fn *fn, void *arg)
{
        dict_each(d, fn, arg);
        dict_release(d);
}

static unsigned long rev(unsigned long v)
{
        unsigned long s = 8 * sizeof v, mask = ~0ul;
        while ((s >>= 1) > 0) {
                mask ^= (mask << s);
                v = ((v >> s) & mask) | ((v << s) & ~mask);
        }
        return v;
}

unsigned long dict_scan(struct dict *d, unsigned long v, dict_fn *fn, void *arg)
{
        if (!dict_size(d))
                return 0;
        if (d->rehash < 0) {
                unsigned long m0 = d->size[0] - 1;
                visit(d->t[0][v & m0], fn, arg);
                v |= ~m0;
                v = rev(v);
                v++;
                return rev(v);
        }
        int s = d->size[0] <= d->size[1] ? 0 : 1, l = 1 - s;
        unsigned long m0 = d->size[s] - 1, m1 = d->size[l] - 1;
        visit(d->t[s][v & m0], fn, arg);
        do {
                visit(d->t[l][v & m1], fn, arg);
                v |= ~m1;
                v = rev(v);
                v++;
                v = rev(v);
        } while (v & (m0 ^ m1));
        return v;
}

int64_t rdb_mstime(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t rdb_monotonic_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

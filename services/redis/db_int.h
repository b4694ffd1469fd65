/*
 * Internals shared by the keyspace files (dict.c, db.c and the command
 * files, whose own header is cmd_int.h): the counted
 * allocator and the hash table. Not for the kernel side of the service.
 */
#ifndef VKD_SERVICES_REDIS_DB_INT_H
#define VKD_SERVICES_REDIS_DB_INT_H

#include "db.h"

/* malloc and friends, counted in rdb_used_memory(). They return NULL when
 * memory runs out (zrealloc then leaves p as it was): a command answers -OOM,
 * the process goes on. */
void *zmalloc(size_t n);
void *zcalloc(size_t n);
void *zrealloc(void *p, size_t n);
void zfree(void *p);

/* For the unit tests: the allocations after the next n fail, count of them
 * (-1: all); n -1 turns this off. Returns whether a failure was injected
 * since the last call. */
bool zmalloc_fail_after(long n, long count);

typedef void dict_fn(struct dent *e, void *arg);

uint64_t dict_hash(const char *s, size_t n);
void dict_seed(uint64_t s);
void dict_init(struct dict *d);
size_t dict_size(const struct dict *d);
/* The link that points at key k's entry (for replacing it), or NULL. */
struct dent **dict_ref(struct dict *d, const char *k, size_t n, int *ret_table);
struct dent *dict_find(struct dict *d, const char *k, size_t n);
/* dict_find without the rehash step: safe while d is being walked. */
const struct dent *dict_peek(const struct dict *d, const char *k, size_t n);
/* Adds e, whose key must not be present. Returns 0, or -ENOMEM (e not
 * added) when d has no table yet and none can be had; a table that cannot
 * grow stays as it is. */
int dict_add(struct dict *d, struct dent *e);
/* Removes and returns k's entry, or NULL. */
struct dent *dict_unlink(struct dict *d, const char *k, size_t n);
/* Calls fn on every entry (fn may free the entry it is given, nothing else). */
void dict_each(struct dict *d, dict_fn *fn, void *arg);
/* dict_each a bucket at a time: calls fn on the entries of the first bucket
 * at or after *pos that has any and moves *pos past it; false, with nothing
 * called, when none is left. The table must not change between calls (fn
 * may free the entry it is given: then dict_release() ends the walk). */
bool dict_walk(struct dict *d, size_t *pos, dict_fn *fn, void *arg);
/* Frees the tables, not the entries, and empties d. */
void dict_release(struct dict *d);
/* dict_each, then dict_release. */
void dict_clear(struct dict *d, dict_fn *fn, void *arg);
/* One SCAN step from cursor v; returns the next cursor (0: done). fn must
 * not change the table. */
unsigned long dict_scan(struct dict *d, unsigned long v, dict_fn *fn, void *arg);

/* Whether s[0..sn) matches the glob pattern p[0..pn) as Redis 7.0's KEYS
 * judges (see glob.c); in time proportional to pn * sn at worst. */
bool glob_match(const char *p, size_t pn, const char *s, size_t sn);

#endif

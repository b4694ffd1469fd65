/*
 * The redis service's commands, run against the keyspace: replies and error
 * messages byte for byte as Redis 7.0 sends them, in RESP2 or RESP3 as the
 * client chose. The store process calls rdb_exec(); nothing here knows the
 * kernel, so the unit suite runs commands directly.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dlfcn.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "db_int.h"

#define VERSION "7.0.15"

static const char E_WRONGTYPE[] =
        "-WRONGTYPE Operation against a key holding the wrong kind of value";
static const char E_NOTINT[] = "value is not an integer or out of range";
static const char E_SYNTAX[] = "syntax error";
static const char E_NOFLOAT[] = "value is not a valid float";
static const char E_OVERFLOW[] = "increment or decrement would overflow";
static const char E_NOKEY[] = "no such key";
static const char E_OOM[] = RDB_E_OOM;
static const char E_TOOBIG[] = "string exceeds maximum allowed size (proto-max-bulk-len)";
static const char E_POSITIVE[] = "value is out of range, must be positive";

/* One command being run. */
struct ctx {
        struct rdb *db;
        struct rclient *c;
        const struct resp_arg *argv;
        size_t argc;
        struct rbuf *o;
        int64_t now;
        int flags;
        const struct rcmd *cmd;
        /* An allocation failed: the reply becomes -OOM. A command that takes
         * many elements may have applied argv[0..applied) (then logged as
         * such); otherwise it changed nothing. */
        bool oom;
        size_t applied;
        /* Slices (see pause_at): where the command stands between them. */
        struct rjob *job;
        bool rejected; /* refused before it ran (a subcommand's arity), for INFO */
        bool resumed;  /* this is a later slice: job holds the progress */
        bool paused;
        unsigned steps;
        uint64_t t0;
};

typedef void cmd_fn(struct ctx *x);

struct rcmd {
        const char *name;
        int arity; /* Redis's: n exactly, -n at least n */
        unsigned flags;
        cmd_fn *fn;
};
#define F_WRITE 0x1
#define F_DENYOOM 0x2
#define F_READONLY 0x4
#define F_FAST 0x8
#define F_SUBCMDS 0x10 /* its subcommands are counted apart (INFO commandstats) */

/* ------------------------------------------------------------------ */
/* Replies. */

/* Appends a reply of at most maxlen bytes; without room, nothing (the
 * buffer's `failed` tells rdb_exec). */
#define ADD(o, maxlen, call)                               \
        do {                                               \
                if (rbuf_reserve((o), (maxlen)) == 0) {    \
                        char *out_ = (o)->p + (o)->len;    \
                        size_t cap_ = (o)->cap - (o)->len; \
                        (void)out_;                        \
                        (void)cap_;                        \
                        (o)->len += call;                  \
                }                                          \
        } while (0)

/* Out of memory: rdb_exec replaces whatever the command replied with -OOM. */
static void r_oom(struct ctx *x)
{
        x->oom = true;
}

/* Out of memory after argv[0..applied) took effect: those are logged. */
static void r_oom_at(struct ctx *x, size_t applied)
{
        x->oom = true;
        x->applied = applied;
}

/* ------------------------------------------------------------------ */
/* Slices. A command whose work grows with its arguments or its data calls
 * pause_at() in its loop; once the slice (cfg.slice_us) is over, the
 * command saves where it stands in x->job and returns, rdb_exec() returns
 * RDB_MORE, and the store lets the rest of the worker run before
 * rdb_resume() calls the command again with x->resumed set. Nothing else runs
 * against the keyspace in between. */

/* True when the command is to return now and go on from pos next slice.
 * Looks at the clock every 64 calls, so each slice makes progress. */
static bool pause_at(struct ctx *x, size_t pos)
{
        if (++x->steps % 64 || rdb_monotonic_us() - x->t0 < x->db->cfg.slice_us)
                return false;
        x->job->pos = pos;
        x->paused = true;
        return true;
}

/* Where a loop starts: first, or where the last slice paused. */
static size_t resume_at(struct ctx *x, size_t first)
{
        return x->resumed ? x->job->pos : first;
}

/* A command that makes two passes ends the first: the second starts afresh. */
static void next_phase(struct ctx *x)
{
        x->job->phase++;
        x->resumed = false;
}

static void r_simple(struct ctx *x, const char *s)
{
        size_t n = strlen(s);
        ADD(x->o, n + 3, resp_add_simple(out_, cap_, s, n));
}

static void r_ok(struct ctx *x)
{
        ADD(x->o, 5, resp_add_simple(out_, cap_, "OK", 2));
}

/* Counts an error reply under its code ("-CODE text", else ERR) for INFO
 * errorstats; codes past the table's room go uncounted there. */
static void count_error(struct rdb_stats *st, const char *msg, size_t n)
{
        char code[sizeof st->err[0].code] = "ERR";
        if (n && msg[0] == '-') {
                size_t len = strcspn(msg + 1, " ");
                snprintf(code, sizeof code, "%.*s", (int)len, msg + 1);
        }
        st->error_replies++;
        size_t i = 0;
        int c = 1;
        while (i < RDB_ERRSTATS && st->err[i].code[0] && (c = strcmp(st->err[i].code, code)) < 0)
                i++;
        if (i == RDB_ERRSTATS)
                return;
        if (c && st->err[RDB_ERRSTATS - 1].code[0]) /* full */
                return;
        if (c) { /* a new code: keep the table in order */
                memmove(&st->err[i + 1], &st->err[i], (RDB_ERRSTATS - 1 - i) * sizeof st->err[0]);
                snprintf(st->err[i].code, sizeof st->err[i].code, "%s", code);
                st->err[i].count = 0;
        }
        st->err[i].count++;
}

static void r_error(struct ctx *x, const char *msg, size_t n)
{
        count_error(&x->db->st, msg, n);
        ADD(x->o, n + 8, resp_add_error(out_, cap_, msg, n));
}

static void r_err(struct ctx *x, const char *msg)
{
        r_error(x, msg, strlen(msg));
}

static void r_errf(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void r_errf(struct ctx *x, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        if ((size_t)n >= sizeof buf)
                n = sizeof buf - 1;
        r_error(x, buf, (size_t)n);
}

static void r_int(struct ctx *x, long long v)
{
        ADD(x->o, 24, resp_add_int(out_, cap_, v));
}

static void r_bulk(struct ctx *x, const char *s, size_t n)
{
        ADD(x->o, n + 32, resp_add_bulk(out_, cap_, s, n));
}

static void r_bulk_str(struct ctx *x, const char *s)
{
        r_bulk(x, s, strlen(s));
}

static void r_bulk_ll(struct ctx *x, long long v)
{
        char b[RESP_LLSTR_SIZE];
        r_bulk(x, b, resp_ll2str(b, v));
}

static void r_null(struct ctx *x)
{
        ADD(x->o, 8, resp_add_null(out_, cap_, x->c->proto));
}

static void r_null_array(struct ctx *x)
{
        ADD(x->o, 8, resp_add_null_array(out_, cap_, x->c->proto));
}

static void r_array(struct ctx *x, size_t n)
{
        ADD(x->o, 24, resp_add_array(out_, cap_, n));
}

static void r_map(struct ctx *x, size_t n)
{
        ADD(x->o, 24, resp_add_map(out_, cap_, x->c->proto, n));
}

static void r_set(struct ctx *x, size_t n)
{
        ADD(x->o, 24, resp_add_set(out_, cap_, x->c->proto, n));
}

/* A text as Redis's addReplyVerbatim: RESP3 "=<len>\r\ntxt:...", RESP2 a bulk. */
static void r_verbatim(struct ctx *x, const char *s, size_t n)
{
        if (x->c->proto != RESP3) {
                r_bulk(x, s, n);
                return;
        }
        if (rbuf_reserve(x->o, n + 32) < 0)
                return;
        x->o->len += (size_t)sprintf(x->o->p + x->o->len, "=%zu\r\ntxt:", n + 4);
        memcpy(x->o->p + x->o->len, s, n);
        x->o->len += n;
        memcpy(x->o->p + x->o->len, "\r\n", 2);
        x->o->len += 2;
}

static void r_arity(struct ctx *x, const char *name)
{
        r_errf(x, "wrong number of arguments for '%s' command", name);
}

/* ------------------------------------------------------------------ */
/* Arguments. */

static bool arg_is(const struct resp_arg *a, const char *s)
{
        size_t n = strlen(s);
        return a->len == n && !strncasecmp(a->ptr, s, n);
}

/* Parses a long long like Redis's getLongLongFromObjectOrReply. */
static int arg_ll(struct ctx *x, const struct resp_arg *a, long long *ret, const char *msg)
{
        if (resp_strtoll(a->ptr, a->len, ret) < 0) {
                r_err(x, msg ? msg : E_NOTINT);
                return -1;
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Objects. */

struct relem {
        uint32_t len;
        char d[];
};

struct rlist {
        struct relem **a;
        size_t head, len, cap; /* cap a power of two */
};

static struct dent *dent_new(const char *k, size_t n)
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

static char *bytes_dup(const char *s, size_t n)
{
        char *p = zmalloc(n);
        if (p)
                memcpy(p, s, n);
        return p;
}

static struct relem *relem_new(const char *s, size_t n)
{
        struct relem *r = zmalloc(sizeof *r + n);
        if (!r)
                return NULL;
        r->len = (uint32_t)n;
        memcpy(r->d, s, n);
        return r;
}

static void free_field(struct dent *e, void *arg)
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
                dict_clear(d, free_field, NULL);
                zfree(d);
                break;
        }
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
static void drop_value(struct rdb *db, struct dent *e)
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

static void free_key(struct rdb *db, struct dent *e)
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
        free_key(arg, e);
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
                if (dict_walk(d, &db->garbage_pos, free_field, NULL))
                        return;
                dict_release(d);
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

static void free_key_cb(struct dent *e, void *arg)
{
        free_key(arg, e);
}

static void delete_key(struct rdb *db, const char *k, size_t n)
{
        struct dent *e = dict_unlink(&db->keys, k, n);
        if (e)
                free_key(db, e);
}

/* The key's entry, or NULL if missing or expired (then deleted: lazy expiry). */
static struct dent *lookup(struct ctx *x, const struct resp_arg *k)
{
        struct dent *e = dict_find(&x->db->keys, k->ptr, k->len);
        if (e && e->expire && e->expire <= x->now) {
                delete_key(x->db, k->ptr, k->len);
                x->db->st.expired++;
                return NULL;
        }
        return e;
}

/* lookup() for reading: counts hits and misses. */
static struct dent *lookup_read(struct ctx *x, const struct resp_arg *k)
{
        struct dent *e = lookup(x, k);
        if (e)
                x->db->st.hits++;
        else
                x->db->st.misses++;
        return e;
}

/* lookup() of a key that must have type t: replies WRONGTYPE and sets *bad if not. */
static struct dent *lookup_type(struct ctx *x, const struct resp_arg *k, int t, bool *bad)
{
        struct dent *e = lookup(x, k);
        *bad = e && e->type != t;
        if (*bad)
                r_err(x, E_WRONGTYPE);
        return e;
}

static void set_expire(struct rdb *db, struct dent *e, int64_t when)
{
        if (!e->expire && when)
                db->nexpires++;
        else if (e->expire && !when)
                db->nexpires--;
        e->expire = when;
}

/* Adds e to the keyspace, or frees it; NULL when out of memory. */
static struct dent *add_key(struct rdb *db, struct dent *e)
{
        if (e && dict_add(&db->keys, e) == 0)
                return e;
        if (e)
                free_key(db, e);
        return NULL;
}

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
                drop_value(db, e);
        } else {
                e = add_key(db, dent_new(k->ptr, k->len));
                if (!e)
                        return NULL;
        }
        if (ref && (!keepttl || (e->expire && e->expire <= x->now)))
                set_expire(db, e, 0);
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
                        set_expire(x->db, e, 0);
                memcpy(e->val, v, vn);
                e->vlen = (uint32_t)vn;
                return e;
        }
        char *copy = bytes_dup(v, vn);
        if (!copy)
                return NULL;
        e = put_string(x, k, ref, copy, vn, keepttl);
        if (!e)
                zfree(copy);
        return e;
}

/* A new, empty list, hash or set at k; NULL when out of memory. */
static struct dent *new_key(struct ctx *x, const struct resp_arg *k, int type)
{
        struct dent *e = dent_new(k->ptr, k->len);
        if (!e)
                return NULL;
        e->type = (uint8_t)type;
        if (type == RT_LIST) {
                e->val = zcalloc(sizeof(struct rlist));
        } else if ((e->val = zmalloc(sizeof(struct dict)))) {
                dict_init((struct dict *)e->val);
        }
        if (!e->val) {
                zfree(e);
                return NULL;
        }
        return add_key(x->db, e);
}

/* Deletes a list, hash or set key that became empty. */
static void drop_if_empty(struct ctx *x, struct dent *e)
{
        size_t n = e->type == RT_LIST ? ((struct rlist *)e->val)->len
                                      : dict_size((struct dict *)e->val);
        if (!n)
                delete_key(x->db, e->key, e->klen);
}

/* ------------------------------------------------------------------ */
/* Propagation (AOF) of a command rewritten with absolute times. */

/* A command builds its rewritten form before it changes anything: if
 * prop_failed() then, it answers -OOM instead. */
static void prop_begin(struct ctx *x)
{
        x->db->prop.len = 0;
        x->db->prop.failed = false;
        x->db->prop_argc = 0;
}

static bool prop_failed(struct ctx *x)
{
        if (x->db->prop.failed)
                r_oom(x);
        return x->db->prop.failed;
}

static void prop_arg(struct ctx *x, const char *s, size_t n)
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

static void prop_ll(struct ctx *x, long long v)
{
        char b[RESP_LLSTR_SIZE];
        prop_arg(x, b, resp_ll2str(b, v));
}

/* ------------------------------------------------------------------ */
/* Connection and server commands. */

static void cmd_ping(struct ctx *x)
{
        if (x->argc > 2)
                return r_arity(x, "ping");
        if (x->argc == 2)
                r_bulk(x, x->argv[1].ptr, x->argv[1].len);
        else
                r_simple(x, "PONG");
}

static void cmd_echo(struct ctx *x)
{
        r_bulk(x, x->argv[1].ptr, x->argv[1].len);
}

static void cmd_quit(struct ctx *x)
{
        r_ok(x);
        x->flags |= RDB_CLOSE;
}

static void cmd_select(struct ctx *x)
{
        long long id;
        if (arg_ll(x, &x->argv[1], &id, NULL) < 0)
                return;
        if (id != 0)
                return r_err(x, "DB index is out of range");
        r_ok(x);
}

static void cmd_auth(struct ctx *x)
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

static void cmd_hello(struct ctx *x)
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

static void cmd_client(struct ctx *x)
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

static const struct rcmd *const *all_commands(size_t *n);
static const char *stat_name(size_t i);
static size_t stat_slots(void);
static const char *allocator(void);

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

static void cmd_command(struct ctx *x)
{
        size_t n;
        const struct rcmd *const *cmds = all_commands(&n);
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

static void cmd_config(struct ctx *x)
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

static void cmd_dbsize(struct ctx *x)
{
        r_int(x, (long long)dict_size(&x->db->keys));
}

static void cmd_flush(struct ctx *x)
{
        if (x->argc > 2 ||
            (x->argc == 2 && !arg_is(&x->argv[1], "ASYNC") && !arg_is(&x->argv[1], "SYNC")))
                return r_err(x, E_SYNTAX);
        /* The whole keyspace goes to rdb_lazyfree() (freed here only if
         * not even its holder can be had). */
        struct rdb *db = x->db;
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
                dict_clear(&db->keys, free_key_cb, db);
        }
        db->nexpires = 0;
        db->dirty++;
        r_ok(x);
}

static void cmd_time(struct ctx *x)
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
                human(h[2], sizeof h[2], db->cfg.maxmemory), allocator(), db->garbage_len,
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
        for (size_t i = 0; i < stat_slots(); i++) {
                const struct rcmdstat *c = &x->db->st.cmd[i];
                if (!c->calls && !c->rejected && !c->failed)
                        continue;
                fprintf(f,
                        "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,"
                        "failed_calls=%llu\r\n",
                        stat_name(i), (unsigned long long)c->calls, (unsigned long long)c->usec,
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

static void cmd_info(struct ctx *x)
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

/* ------------------------------------------------------------------ */
/* Strings. */

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
        struct dent *e = lookup(x, k);
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
                set_expire(x->db, e, when);
        x->db->dirty++;
        if (!(flags & GET))
                r_ok(x);
        (void)reply_null_on_skip;
}

static void cmd_set(struct ctx *x)
{
        unsigned flags;
        int64_t when;
        if (parse_set(x, 3, "set", &flags, &when) < 0)
                return;
        do_set(x, &x->argv[1], &x->argv[2], flags, when, true);
}

static void cmd_setnx(struct ctx *x)
{
        if (lookup(x, &x->argv[1]))
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

static void cmd_setex(struct ctx *x)
{
        setex(x, false, "setex");
}

static void cmd_psetex(struct ctx *x)
{
        setex(x, true, "psetex");
}

static void cmd_get(struct ctx *x)
{
        struct dent *e = lookup_read(x, &x->argv[1]);
        if (!e)
                return r_null(x);
        if (e->type != RT_STRING)
                return r_err(x, E_WRONGTYPE);
        r_bulk(x, e->val, e->vlen);
}

static void cmd_getset(struct ctx *x)
{
        do_set(x, &x->argv[1], &x->argv[2], 4 /* GET */, 0, false);
}

static void cmd_getdel(struct ctx *x)
{
        struct dent *e = lookup_read(x, &x->argv[1]);
        if (!e)
                return r_null(x);
        if (e->type != RT_STRING)
                return r_err(x, E_WRONGTYPE);
        r_bulk(x, e->val, e->vlen);
        if (x->o->failed) /* the value must reach the client before it is gone */
                return r_oom(x);
        delete_key(x->db, x->argv[1].ptr, x->argv[1].len);
        x->db->dirty++;
}

static void cmd_mget(struct ctx *x)
{
        if (!x->resumed)
                r_array(x, x->argc - 1);
        for (size_t j = resume_at(x, 1); j < x->argc; j++) {
                if (pause_at(x, j))
                        return;
                struct dent *e = lookup_read(x, &x->argv[j]);
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
                for (size_t j = resume_at(x, 1); j < x->argc; j += 2) {
                        if (pause_at(x, j))
                                return;
                        if (lookup(x, &x->argv[j]))
                                return r_int(x, 0);
                }
                next_phase(x);
        }
        for (size_t j = resume_at(x, 1); j < x->argc; j += 2) {
                if (pause_at(x, j))
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

static void cmd_mset(struct ctx *x)
{
        mset(x, false);
}

static void cmd_msetnx(struct ctx *x)
{
        mset(x, true);
}

static void cmd_append(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_STRING, &bad);
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

static void cmd_strlen(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_STRING, &bad);
        if (!bad)
                r_int(x, e ? e->vlen : 0);
}

static void incr(struct ctx *x, long long by)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_STRING, &bad);
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

static void cmd_incr(struct ctx *x)
{
        incr(x, 1);
}

static void cmd_decr(struct ctx *x)
{
        incr(x, -1);
}

static void cmd_incrby(struct ctx *x)
{
        long long by;
        if (arg_ll(x, &x->argv[2], &by, NULL) == 0)
                incr(x, by);
}

static void cmd_decrby(struct ctx *x)
{
        long long by;
        if (arg_ll(x, &x->argv[2], &by, NULL) < 0)
                return;
        if (by == LLONG_MIN)
                return r_err(x, "decrement would overflow");
        incr(x, -by);
}

static void cmd_incrbyfloat(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_STRING, &bad);
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

static void cmd_getrange(struct ctx *x)
{
        long long start, end;
        if (arg_ll(x, &x->argv[2], &start, NULL) < 0 || arg_ll(x, &x->argv[3], &end, NULL) < 0)
                return;
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_STRING, &bad);
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

static void cmd_setrange(struct ctx *x)
{
        long long off;
        if (arg_ll(x, &x->argv[2], &off, NULL) < 0)
                return;
        if (off < 0)
                return r_err(x, "offset is out of range");
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_STRING, &bad);
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

/* ------------------------------------------------------------------ */
/* Keys. */

static void cmd_del(struct ctx *x)
{
        for (size_t j = resume_at(x, 1); j < x->argc; j++) {
                if (pause_at(x, j))
                        return;
                if (lookup(x, &x->argv[j])) {
                        delete_key(x->db, x->argv[j].ptr, x->argv[j].len);
                        x->job->n++;
                }
        }
        x->db->dirty += (uint64_t)x->job->n;
        r_int(x, x->job->n);
}

static void cmd_exists(struct ctx *x)
{
        for (size_t j = resume_at(x, 1); j < x->argc; j++) {
                if (pause_at(x, j))
                        return;
                x->job->n += lookup(x, &x->argv[j]) != NULL;
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
        }
        return "none";
}

static void cmd_type(struct ctx *x)
{
        struct dent *e = lookup(x, &x->argv[1]);
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
static void collect_reply(struct ctx *x)
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

static void cmd_keys(struct ctx *x)
{
        struct collect k = {.x = x, .pattern = &x->argv[1]};
        size_t pos = resume_at(x, 0);
        while (dict_walk(&x->db->keys, &pos, collect_key, &k))
                if (pause_at(x, pos))
                        return;
        collect_reply(x);
}

static void cmd_scan(struct ctx *x)
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
                if (pause_at(x, cursor))
                        return;
                cursor = dict_scan(&x->db->keys, cursor, collect_key, &k);
        } while (cursor && x->job->n < count && --x->job->left > 0);
        if (x->job->acc.failed)
                return r_oom(x);
        r_array(x, 2);
        r_bulk_ll(x, (long long)cursor);
        collect_reply(x);
}

static void cmd_rename(struct ctx *x)
{
        const struct resp_arg *from = &x->argv[1], *to = &x->argv[2];
        struct dent *e = lookup(x, from);
        if (!e)
                return r_err(x, E_NOKEY);
        if (from->len == to->len && !memcmp(from->ptr, to->ptr, to->len))
                return r_ok(x);
        struct dent *n = dent_new(to->ptr, to->len);
        if (!n)
                return r_oom(x);
        if (lookup(x, to))
                delete_key(x->db, to->ptr, to->len);
        e = dict_unlink(&x->db->keys, from->ptr, from->len);
        n->val = e->val;
        n->vlen = e->vlen;
        n->type = e->type;
        n->expire = e->expire;
        zfree(e);
        (void)dict_add(&x->db->keys, n); /* cannot fail: the table held `from` */
        x->db->dirty++;
        r_ok(x);
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
        struct dent *e = lookup(x, &x->argv[1]);
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
                delete_key(x->db, x->argv[1].ptr, x->argv[1].len);
        else
                set_expire(x->db, e, v);
        x->db->dirty++;
        r_int(x, 1);
}

static void cmd_expire(struct ctx *x)
{
        expire_generic(x, x->now, false, "expire");
}

static void cmd_pexpire(struct ctx *x)
{
        expire_generic(x, x->now, true, "pexpire");
}

static void cmd_expireat(struct ctx *x)
{
        expire_generic(x, 0, false, "expireat");
}

static void cmd_pexpireat(struct ctx *x)
{
        expire_generic(x, 0, true, "pexpireat");
}

static void ttl(struct ctx *x, bool ms)
{
        struct dent *e = lookup_read(x, &x->argv[1]);
        if (!e)
                return r_int(x, -2);
        if (!e->expire)
                return r_int(x, -1);
        long long left = e->expire - x->now;
        if (left < 0)
                left = 0;
        r_int(x, ms ? left : (left + 500) / 1000);
}

static void cmd_ttl(struct ctx *x)
{
        ttl(x, false);
}

static void cmd_pttl(struct ctx *x)
{
        ttl(x, true);
}

static void cmd_persist(struct ctx *x)
{
        struct dent *e = lookup(x, &x->argv[1]);
        if (!e || !e->expire)
                return r_int(x, 0);
        set_expire(x->db, e, 0);
        x->db->dirty++;
        r_int(x, 1);
}

/* ------------------------------------------------------------------ */
/* Hashes and sets: a dict of fields (a set's have no value). */

static struct dict *dict_of(struct dent *e)
{
        return (struct dict *)e->val;
}

/* Sets field f to v (v NULL: a set member). 1 if the field is new, 0 if
 * not, -ENOMEM (nothing changed) when out of memory. */
static int field_set(struct dict *d, const struct resp_arg *f, const struct resp_arg *v)
{
        struct dent **ref = dict_ref(d, f->ptr, f->len, NULL);
        char *val = NULL;
        if (v && !(val = bytes_dup(v->ptr, v->len)))
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
static bool fields_set(struct ctx *x, struct dent *e, size_t first, bool values)
{
        for (size_t j = resume_at(x, first); j < x->argc; j += values ? 2 : 1) {
                if (pause_at(x, j))
                        return false;
                int r = field_set(dict_of(e), &x->argv[j], values ? &x->argv[j + 1] : NULL);
                if (r < 0) {
                        if (j == first)
                                drop_if_empty(x, e);
                        else
                                x->db->dirty++;
                        r_oom_at(x, j == first ? 0 : j);
                        return false;
                }
                x->job->n += r;
        }
        return true;
}

static void cmd_hset(struct ctx *x)
{
        if (x->argc % 2)
                return r_arity(x, x->cmd->name);
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        if (!e && !(e = new_key(x, &x->argv[1], RT_HASH)))
                return r_oom(x);
        if (!fields_set(x, e, 2, true))
                return;
        x->db->dirty++;
        if (!strcmp(x->cmd->name, "hmset"))
                r_ok(x);
        else
                r_int(x, x->job->n);
}

static void cmd_hget(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        struct dent *f = e ? dict_find(dict_of(e), x->argv[2].ptr, x->argv[2].len) : NULL;
        if (!f)
                return r_null(x);
        r_bulk(x, f->val, f->vlen);
}

static void cmd_hmget(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        if (!x->resumed)
                r_array(x, x->argc - 2);
        for (size_t j = resume_at(x, 2); j < x->argc; j++) {
                if (pause_at(x, j))
                        return;
                struct dent *f = e ? dict_find(dict_of(e), x->argv[j].ptr, x->argv[j].len) : NULL;
                if (f)
                        r_bulk(x, f->val, f->vlen);
                else
                        r_null(x);
        }
}

/* HDEL and SREM. */
static void cmd_hdel(struct ctx *x)
{
        bool bad;
        int t = x->cmd->name[0] == 'h' ? RT_HASH : RT_SET;
        struct dent *e = lookup_type(x, &x->argv[1], t, &bad);
        if (bad)
                return;
        if (!e)
                return r_int(x, 0);
        for (size_t j = resume_at(x, 2); j < x->argc; j++) {
                if (pause_at(x, j))
                        return;
                struct dent *f = dict_unlink(dict_of(e), x->argv[j].ptr, x->argv[j].len);
                if (f) {
                        free_field(f, NULL);
                        x->job->n++;
                }
        }
        if (x->job->n) {
                x->db->dirty++;
                drop_if_empty(x, e);
        }
        r_int(x, x->job->n);
}

static void cmd_hlen(struct ctx *x)
{
        bool bad;
        int t = x->cmd->name[0] == 'h' ? RT_HASH : RT_SET;
        struct dent *e = lookup_type(x, &x->argv[1], t, &bad);
        if (!bad)
                r_int(x, e ? (long long)dict_size(dict_of(e)) : 0);
}

/* HEXISTS and SISMEMBER. */
static void cmd_hexists(struct ctx *x)
{
        bool bad;
        int t = x->cmd->name[0] == 'h' ? RT_HASH : RT_SET;
        struct dent *e = lookup_type(x, &x->argv[1], t, &bad);
        if (!bad)
                r_int(x, e && dict_find(dict_of(e), x->argv[2].ptr, x->argv[2].len));
}

enum { WANT_KEYS = 1, WANT_VALS = 2 };

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

static void hash_walk(struct ctx *x, int type, int want)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], type, &bad);
        if (bad)
                return;
        size_t n = e ? dict_size(dict_of(e)) : 0;
        if (x->resumed)
                ;
        else if (type == RT_SET)
                r_set(x, n);
        else if (want == (WANT_KEYS | WANT_VALS))
                r_map(x, n);
        else
                r_array(x, n);
        struct fields w = {x, want};
        size_t pos = resume_at(x, 0);
        while (e && dict_walk(dict_of(e), &pos, emit_field, &w))
                if (pause_at(x, pos))
                        return;
}

static void cmd_hgetall(struct ctx *x)
{
        hash_walk(x, RT_HASH, WANT_KEYS | WANT_VALS);
}

static void cmd_hkeys(struct ctx *x)
{
        hash_walk(x, RT_HASH, WANT_KEYS);
}

static void cmd_hvals(struct ctx *x)
{
        hash_walk(x, RT_HASH, WANT_VALS);
}

static void cmd_smembers(struct ctx *x)
{
        hash_walk(x, RT_SET, WANT_KEYS);
}

static void cmd_hincrby(struct ctx *x)
{
        long long by, v = 0;
        if (arg_ll(x, &x->argv[3], &by, NULL) < 0)
                return;
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_HASH, &bad);
        if (bad)
                return;
        struct dent *f = e ? dict_find(dict_of(e), x->argv[2].ptr, x->argv[2].len) : NULL;
        if (f && resp_strtoll(f->val, f->vlen, &v) < 0)
                return r_err(x, "hash value is not an integer");
        if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
                return r_err(x, E_OVERFLOW);
        v += by;
        if (!e && !(e = new_key(x, &x->argv[1], RT_HASH)))
                return r_oom(x);
        char b[RESP_LLSTR_SIZE];
        struct resp_arg val = {b, resp_ll2str(b, v)};
        if (field_set(dict_of(e), &x->argv[2], &val) < 0) {
                drop_if_empty(x, e);
                return r_oom(x);
        }
        x->db->dirty++;
        r_int(x, v);
}

static void cmd_sadd(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_SET, &bad);
        if (bad)
                return;
        if (!e && !(e = new_key(x, &x->argv[1], RT_SET)))
                return r_oom(x);
        if (!fields_set(x, e, 2, false))
                return;
        if (x->job->n)
                x->db->dirty++;
        r_int(x, x->job->n);
}

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

static void push(struct ctx *x, bool left)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (bad)
                return;
        if (!e && !(e = new_key(x, &x->argv[1], RT_LIST)))
                return r_oom(x);
        struct rlist *l = (struct rlist *)e->val;
        for (size_t j = resume_at(x, 2); j < x->argc; j++) {
                if (pause_at(x, j))
                        return;
                struct relem *r = NULL;
                if (list_grow(l) < 0 || !(r = relem_new(x->argv[j].ptr, x->argv[j].len))) {
                        if (j == 2)
                                drop_if_empty(x, e);
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

static void cmd_lpush(struct ctx *x)
{
        push(x, true);
}

static void cmd_rpush(struct ctx *x)
{
        push(x, false);
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
        struct dent *e = lookup_type(x, &x->argv[1], RT_LIST, &bad);
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
                for (size_t i = resume_at(x, 0); i < n; i++) {
                        if (pause_at(x, i))
                                return;
                        x->job->n += (*list_at(l, left ? i : l->len - 1 - i))->len + 32;
                }
                if (rbuf_reserve(x->o, (size_t)x->job->n + 24) < 0)
                        return r_oom(x);
                next_phase(x);
                if (has_count)
                        r_array(x, n);
        }
        for (size_t i = resume_at(x, 0); i < n; i++) {
                if (pause_at(x, i))
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
        drop_if_empty(x, e);
}

static void cmd_lpop(struct ctx *x)
{
        pop(x, true);
}

static void cmd_rpop(struct ctx *x)
{
        pop(x, false);
}

static void cmd_llen(struct ctx *x)
{
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_LIST, &bad);
        if (!bad)
                r_int(x, e ? (long long)((struct rlist *)e->val)->len : 0);
}

static void cmd_lrange(struct ctx *x)
{
        long long start, end;
        if (arg_ll(x, &x->argv[2], &start, NULL) < 0 || arg_ll(x, &x->argv[3], &end, NULL) < 0)
                return;
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_LIST, &bad);
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
        for (size_t i = resume_at(x, (size_t)start); i <= (size_t)end; i++) {
                if (pause_at(x, i))
                        return;
                struct relem *r = *list_at(l, i);
                r_bulk(x, r->d, r->len);
        }
}

static void cmd_lindex(struct ctx *x)
{
        long long i;
        if (arg_ll(x, &x->argv[2], &i, NULL) < 0)
                return;
        bool bad;
        struct dent *e = lookup_type(x, &x->argv[1], RT_LIST, &bad);
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

/* ------------------------------------------------------------------ */
/* The command table. */

#define W (F_WRITE | F_DENYOOM)
#define R F_READONLY
static const struct rcmd commands[] = {
        {"ping", -1, F_FAST, cmd_ping},
        {"echo", 2, F_FAST, cmd_echo},
        {"quit", -1, F_FAST, cmd_quit},
        {"select", 2, F_FAST, cmd_select},
        {"auth", -2, F_FAST, cmd_auth},
        {"hello", -1, F_FAST, cmd_hello},
        {"client", -2, F_SUBCMDS, cmd_client},
        {"command", -1, F_SUBCMDS, cmd_command},
        {"config", -2, F_SUBCMDS, cmd_config},
        {"info", -1, 0, cmd_info},
        {"dbsize", 1, R | F_FAST, cmd_dbsize},
        {"flushdb", -1, F_WRITE, cmd_flush},
        {"flushall", -1, F_WRITE, cmd_flush},
        {"time", 1, F_FAST, cmd_time},
        {"get", 2, R | F_FAST, cmd_get},
        {"set", -3, W, cmd_set},
        {"setnx", 3, W | F_FAST, cmd_setnx},
        {"setex", 4, W, cmd_setex},
        {"psetex", 4, W, cmd_psetex},
        {"getset", 3, W | F_FAST, cmd_getset},
        {"getdel", 2, F_WRITE | F_FAST, cmd_getdel},
        {"mget", -2, R | F_FAST, cmd_mget},
        {"mset", -3, W, cmd_mset},
        {"msetnx", -3, W, cmd_msetnx},
        {"append", 3, W | F_FAST, cmd_append},
        {"strlen", 2, R | F_FAST, cmd_strlen},
        {"incr", 2, W | F_FAST, cmd_incr},
        {"decr", 2, W | F_FAST, cmd_decr},
        {"incrby", 3, W | F_FAST, cmd_incrby},
        {"decrby", 3, W | F_FAST, cmd_decrby},
        {"incrbyfloat", 3, W | F_FAST, cmd_incrbyfloat},
        {"getrange", 4, R, cmd_getrange},
        {"setrange", 4, W, cmd_setrange},
        {"del", -2, F_WRITE, cmd_del},
        {"unlink", -2, F_WRITE | F_FAST, cmd_del},
        {"exists", -2, R | F_FAST, cmd_exists},
        {"type", 2, R | F_FAST, cmd_type},
        {"keys", 2, R, cmd_keys},
        {"scan", -2, R, cmd_scan},
        {"rename", 3, F_WRITE, cmd_rename},
        {"expire", -3, F_WRITE | F_FAST, cmd_expire},
        {"pexpire", -3, F_WRITE | F_FAST, cmd_pexpire},
        {"expireat", -3, F_WRITE | F_FAST, cmd_expireat},
        {"pexpireat", -3, F_WRITE | F_FAST, cmd_pexpireat},
        {"ttl", 2, R | F_FAST, cmd_ttl},
        {"pttl", 2, R | F_FAST, cmd_pttl},
        {"persist", 2, F_WRITE | F_FAST, cmd_persist},
        {"hset", -4, W | F_FAST, cmd_hset},
        {"hmset", -4, W | F_FAST, cmd_hset},
        {"hget", 3, R | F_FAST, cmd_hget},
        {"hdel", -3, F_WRITE | F_FAST, cmd_hdel},
        {"hgetall", 2, R, cmd_hgetall},
        {"hlen", 2, R | F_FAST, cmd_hlen},
        {"hexists", 3, R | F_FAST, cmd_hexists},
        {"hincrby", 4, W | F_FAST, cmd_hincrby},
        {"hkeys", 2, R, cmd_hkeys},
        {"hvals", 2, R, cmd_hvals},
        {"hmget", -3, R | F_FAST, cmd_hmget},
        {"lpush", -3, W | F_FAST, cmd_lpush},
        {"rpush", -3, W | F_FAST, cmd_rpush},
        {"lpop", -2, F_WRITE | F_FAST, cmd_lpop},
        {"rpop", -2, F_WRITE | F_FAST, cmd_rpop},
        {"llen", 2, R | F_FAST, cmd_llen},
        {"lrange", 4, R, cmd_lrange},
        {"lindex", 3, R, cmd_lindex},
        {"sadd", -3, W | F_FAST, cmd_sadd},
        {"srem", -3, F_WRITE | F_FAST, cmd_hdel},
        {"smembers", 2, R, cmd_smembers},
        {"sismember", 3, R | F_FAST, cmd_hexists},
        {"scard", 2, R | F_FAST, cmd_hlen},
};
#undef W
#undef R

#define NCMDS (sizeof commands / sizeof commands[0])

/* Subcommands INFO commandstats counts apart (Redis 7 names them so). */
static const char *const subcommands[] = {
        "client|id",    "client|getname", "client|setname", "client|setinfo",   "command|count",
        "command|docs", "command|info",   "config|get",     "config|resetstat",
};
#define NSUBS (sizeof subcommands / sizeof subcommands[0])
_Static_assert(NCMDS + NSUBS <= RDB_CMDSTATS, "room for every command's statistics");

/* The name statistics slot i stands for. */
static const char *stat_name(size_t i)
{
        return i < NCMDS ? commands[i].name : subcommands[i - NCMDS];
}

static size_t stat_slots(void)
{
        return NCMDS + NSUBS;
}

/* The st.cmd slot of a command: its own, or its subcommand's; -1 for a
 * subcommand that does not exist (Redis counts it nowhere). */
static int stat_slot(const struct rcmd *cmd, const struct resp_arg *argv, size_t argc)
{
        if (!(cmd->flags & F_SUBCMDS) || argc < 2)
                return (int)(cmd - commands);
        size_t n = strlen(cmd->name);
        for (size_t i = 0; i < NSUBS; i++)
                if (!strncmp(subcommands[i], cmd->name, n) && subcommands[i][n] == '|' &&
                    arg_is(&argv[1], subcommands[i] + n + 1))
                        return (int)(NCMDS + i);
        return -1;
}
#define LOOKUP_SIZE 256
static const struct rcmd *lookup_table[LOOKUP_SIZE];
static const struct rcmd *command_list[NCMDS];

static unsigned name_hash(const char *s, size_t n)
{
        unsigned h = (unsigned)n * 2654435761u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ (unsigned)(s[i] | 0x20)) * 16777619u;
        return h;
}

static void build_lookup(void)
{
        for (size_t i = 0; i < NCMDS; i++) {
                command_list[i] = &commands[i];
                unsigned h = name_hash(commands[i].name, strlen(commands[i].name));
                while (lookup_table[h % LOOKUP_SIZE])
                        h++;
                lookup_table[h % LOOKUP_SIZE] = &commands[i];
        }
}

static const struct rcmd *const *all_commands(size_t *n)
{
        *n = NCMDS;
        return command_list;
}

static const struct rcmd *find_command(const struct resp_arg *a)
{
        if (a->len > 16)
                return NULL;
        unsigned h = name_hash(a->ptr, a->len);
        for (;; h++) {
                const struct rcmd *c = lookup_table[h % LOOKUP_SIZE];
                if (!c)
                        return NULL;
                if (arg_is(a, c->name))
                        return c;
        }
}

/* ------------------------------------------------------------------ */
/* Entry points. */

/* The allocator malloc is: jemalloc when the host links it (the daemon),
 * which answers mallctl(), else the C library's. */
static const char *allocator(void)
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

/* 40 random hex digits and a NUL, as Redis's run and replication ids. */
static void random_id(char out[41])
{
        unsigned char b[20];
        if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
                uint64_t v = rdb_monotonic_us() ^ (uint64_t)getpid() << 32;
                for (size_t i = 0; i < sizeof b; i++) {
                        v = v * 6364136223846793005ull + 1442695040888963407ull;
                        b[i] = (unsigned char)(v >> 56);
                }
        }
        for (size_t i = 0; i < sizeof b; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
}

void rdb_init(struct rdb *db, const struct rdb_config *cfg)
{
        memset(db, 0, sizeof *db);
        dict_init(&db->keys);
        db->cfg = *cfg;
        if (!db->cfg.max_bulk)
                db->cfg.max_bulk = RESP_BULK_MAX;
        if (!db->cfg.databases)
                db->cfg.databases = 1;
        if (!db->cfg.slice_us)
                db->cfg.slice_us = 2000;
        db->started_ms = rdb_mstime();
        db->next_client_id = 1;
        random_id(db->run_id);
        random_id(db->replid);
        allocator();
        dict_seed((uint64_t)db->started_ms ^ (uint64_t)getpid() << 32);
        if (!lookup_table[name_hash("get", 3) % LOOKUP_SIZE] || !command_list[0])
                build_lookup();
}

void rdb_free(struct rdb *db)
{
        dict_clear(&db->keys, free_key_cb, db);
        while (rdb_lazyfree(db, UINT_MAX))
                ;
        rbuf_free(&db->prop);
        rbuf_free(&db->job.acc);
}

void rclient_release(struct rclient *c)
{
        zfree(c->name);
        c->name = NULL;
        rbuf_free(&c->out);
}

static void unknown_command(struct ctx *x)
{
        char args[512];
        size_t n = 0;
        for (size_t i = 1; i < x->argc && n < 128; i++) {
                int room = 128 - (int)n;
                int len = (int)strnlen(x->argv[i].ptr, x->argv[i].len);
                n += (size_t)snprintf(args + n, sizeof args - n, "'%.*s' ", len < room ? len : room,
                                      x->argv[i].ptr);
        }
        args[n] = 0;
        int cl = (int)strnlen(x->argv[0].ptr, x->argv[0].len);
        r_errf(x, "unknown command '%.*s', with args beginning with: %s", cl < 128 ? cl : 128,
               x->argv[0].ptr, args);
}

/* What a simple reply (+OK, :n, a short error, -OOM) needs at most. */
#define REPLY_ROOM 128

/* After a command: an allocation that failed turns its reply into -OOM; a
 * reply that cannot even be written closes the connection rather than leave
 * the client waiting for it. */
static int reply_done(struct ctx *x, size_t start)
{
        if (x->oom || x->o->failed) {
                x->o->len = start;
                x->o->failed = false;
                r_err(x, E_OOM);
        }
        if (x->o->failed) {
                x->o->len = start;
                x->o->failed = false;
                x->flags |= RDB_CLOSE;
        }
        return x->flags;
}

/* Runs x's command (the first slice, or the next one) and, once it is done,
 * what follows it. */
static int run_slice(struct rdb *db, struct ctx *x)
{
        struct rjob *j = &db->job;
        x->job = j;
        x->now = j->now;
        x->t0 = rdb_monotonic_us();
        x->cmd->fn(x);
        j->usec += rdb_monotonic_us() - x->t0;
        j->active = x->paused;
        if (x->paused)
                return RDB_MORE;
        rbuf_free(&j->acc);
        if (db->dirty != j->dirty) {
                x->flags |= RDB_WRITE;
                if (x->oom && x->applied) /* what ran of a command cut short */
                        db->log_argc = x->applied;
        } else {
                db->prop_argc = 0;
        }
        int f = reply_done(x, j->out_start);
        if (j->stat >= 0 && x->rejected) {
                db->st.cmd[j->stat].rejected++;
        } else if (j->stat >= 0) {
                db->st.cmd[j->stat].calls++;
                db->st.cmd[j->stat].usec += j->usec;
                db->st.cmd[j->stat].failed += db->st.error_replies != j->errors;
        }
        return f;
}

int rdb_exec(struct rdb *db, struct rclient *c, const struct resp_arg *argv, size_t argc,
             struct rbuf *out)
{
        struct ctx x = {.db = db, .c = c, .argv = argv, .argc = argc, .o = out};
        size_t start = out->len;
        out->failed = false;
        db->prop_argc = 0;
        db->log_argc = 0;
        if (!argc)
                return 0;
        /* Room for a short reply, or -OOM, before anything changes: a write
         * then never goes unanswered. */
        if (rbuf_reserve(out, REPLY_ROOM) < 0) {
                out->failed = false;
                return RDB_CLOSE;
        }
        x.cmd = find_command(&argv[0]);
        db->st.commands++;
        if (!x.cmd) {
                unknown_command(&x);
                return reply_done(&x, start);
        }
        int stat = stat_slot(x.cmd, argv, argc);
        if ((x.cmd->arity > 0 && (size_t)x.cmd->arity != argc) ||
            (x.cmd->arity < 0 && argc < (size_t)-x.cmd->arity)) {
                db->st.cmd[x.cmd - commands].rejected++;
                r_arity(&x, x.cmd->name);
                return reply_done(&x, start);
        }
        if ((x.cmd->flags & F_DENYOOM) && db->cfg.maxmemory &&
            rdb_used_memory() > db->cfg.maxmemory) {
                db->st.rejected_oom++;
                if (stat >= 0)
                        db->st.cmd[stat].rejected++;
                r_err(&x, E_OOM);
                return reply_done(&x, start);
        }
        rbuf_free(&db->job.acc);
        db->job = (struct rjob){.c = c,
                                .argv = argv,
                                .argc = argc,
                                .out = out,
                                .cmd = x.cmd,
                                .out_start = start,
                                .dirty = db->dirty,
                                .errors = db->st.error_replies,
                                .stat = stat,
                                .now = rdb_mstime()};
        return run_slice(db, &x);
}

int rdb_resume(struct rdb *db)
{
        struct rjob *j = &db->job;
        struct ctx x = {.db = db,
                        .c = j->c,
                        .argv = j->argv,
                        .argc = j->argc,
                        .o = j->out,
                        .cmd = j->cmd,
                        .resumed = true};
        return run_slice(db, &x);
}

bool rdb_busy(const struct rdb *db)
{
        return db->job.active;
}

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
                        /* the key bytes live in the entry: copy before freeing */
                        char buf[256];
                        if (k.len > sizeof buf) {
                                struct dent *e = dict_unlink(&db->keys, k.ptr, k.len);
                                if (e)
                                        free_key(db, e);
                        } else {
                                memcpy(buf, k.ptr, k.len);
                                delete_key(db, buf, k.len);
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

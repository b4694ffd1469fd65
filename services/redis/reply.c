/*
 * The redis service's replies in RESP2 or RESP3 as the client chose, argument parsing, and the
 * slices a long command is cut into.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cmd_int.h"

/* ------------------------------------------------------------------ */
/* Replies. */

/* Out of memory: rdb_exec replaces whatever the command replied with -OOM. */
void r_oom(struct ctx *x)
{
        x->oom = true;
}

/* Out of memory after argv[0..applied) took effect: those are logged. */
void r_oom_at(struct ctx *x, size_t applied)
{
        x->oom = true;
        x->applied = applied;
}

/* ------------------------------------------------------------------ */
/* Slices. A command whose work grows with its arguments or its data calls
 * slice_pause() in its loop; once the slice (cfg.slice_us) is over, the
 * command saves where it stands in x->job and returns, rdb_exec() returns
 * RDB_MORE, and the store lets the rest of the worker run before
 * rdb_resume() calls the command again with x->resumed set. Nothing else runs
 * against the keyspace in between. */

/* True when the command is to return now and go on from pos next slice.
 * Looks at the clock every 64 calls, so each slice makes progress. */
bool slice_pause(struct ctx *x, size_t pos)
{
        if (++x->steps % 64 || rdb_monotonic_us() - x->t0 < x->db->cfg.slice_us)
                return false;
        x->job->pos = pos;
        x->paused = true;
        return true;
}

/* Where a loop starts: first, or where the last slice paused. */
size_t slice_resume_at(struct ctx *x, size_t first)
{
        return x->resumed ? x->job->pos : first;
}

/* A command that makes two passes ends the first: the second starts afresh. */
void slice_next_phase(struct ctx *x)
{
        x->job->phase++;
        x->resumed = false;
}

void r_simple(struct ctx *x, const char *s)
{
        size_t n = strlen(s);
        ADD(x->o, n + 3, resp_add_simple(out_, cap_, s, n));
}

void r_ok(struct ctx *x)
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

void r_error(struct ctx *x, const char *msg, size_t n)
{
        count_error(&x->db->st, msg, n);
        ADD(x->o, n + 8, resp_add_error(out_, cap_, msg, n));
}

void r_err(struct ctx *x, const char *msg)
{
        r_error(x, msg, strlen(msg));
}

void r_errf(struct ctx *x, const char *fmt, ...)
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

void r_int(struct ctx *x, long long v)
{
        ADD(x->o, 24, resp_add_int(out_, cap_, v));
}

void r_bulk(struct ctx *x, const char *s, size_t n)
{
        ADD(x->o, n + 32, resp_add_bulk(out_, cap_, s, n));
}

void r_bulk_str(struct ctx *x, const char *s)
{
        r_bulk(x, s, strlen(s));
}

void r_bulk_ll(struct ctx *x, long long v)
{
        char b[RESP_LLSTR_SIZE];
        r_bulk(x, b, resp_ll2str(b, v));
}

void r_null(struct ctx *x)
{
        ADD(x->o, 8, resp_add_null(out_, cap_, x->c->proto));
}

void r_null_array(struct ctx *x)
{
        ADD(x->o, 8, resp_add_null_array(out_, cap_, x->c->proto));
}

void r_array(struct ctx *x, size_t n)
{
        ADD(x->o, 24, resp_add_array(out_, cap_, n));
}

void r_map(struct ctx *x, size_t n)
{
        ADD(x->o, 24, resp_add_map(out_, cap_, x->c->proto, n));
}

void r_set(struct ctx *x, size_t n)
{
        ADD(x->o, 24, resp_add_set(out_, cap_, x->c->proto, n));
}

/* A text as Redis's addReplyVerbatim: RESP3 "=<len>\r\ntxt:...", RESP2 a bulk. */
void r_verbatim(struct ctx *x, const char *s, size_t n)
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

void r_arity(struct ctx *x, const char *name)
{
        r_errf(x, "wrong number of arguments for '%s' command", name);
}

/* ------------------------------------------------------------------ */
/* Arguments. */

bool arg_is(const struct resp_arg *a, const char *s)
{
        size_t n = strlen(s);
        return a->len == n && !strncasecmp(a->ptr, s, n);
}

/* Parses a long long like Redis's getLongLongFromObjectOrReply. */
int arg_ll(struct ctx *x, const struct resp_arg *a, long long *ret, const char *msg)
{
        if (resp_strtoll(a->ptr, a->len, ret) < 0) {
                r_err(x, msg ? msg : E_NOTINT);
                return -1;
        }
        return 0;
}

/*
 * RESP for the redis service: the request parser, the reply encoders and
 * Redis's number parsers (see resp.h for the contracts). The parser mirrors
 * Redis 7's processInlineBuffer / processMultibulkBuffer / sdssplitargs byte
 * for byte in what it accepts, rejects and says, with two deliberate
 * differences noted where they happen: a NUL before a line terminator is
 * reported at once instead of after 64 KiB, and the "too big" limits are
 * checked the same way however the bytes were split across reads.
 */
#include "resp.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Decimal integers without snprintf
 * ------------------------------------------------------------------------ */

static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

static size_t u64_digits(uint64_t v)
{
        size_t n = 1;

        for (;;) {
                if (v < 10)
                        return n;
                if (v < 100)
                        return n + 1;
                if (v < 1000)
                        return n + 2;
                if (v < 10000)
                        return n + 3;
                v /= 10000;
                n += 4;
        }
}

/* Writes the n == u64_digits(v) digits of v at out[0..n), two at a time. */
static void u64_put(char *out, size_t n, uint64_t v)
{
        char *p = out + n;

        while (v >= 100) {
                unsigned i = (unsigned)(v % 100) * 2;

                v /= 100;
                *--p = digit_pairs[i + 1];
                *--p = digit_pairs[i];
        }
        if (v >= 10) {
                unsigned i = (unsigned)v * 2;

                *--p = digit_pairs[i + 1];
                *--p = digit_pairs[i];
        } else {
                *--p = (char)('0' + v);
        }
}

/* Magnitude of v; correct for LLONG_MIN too. */
static uint64_t ll_mag(long long v)
{
        return v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
}

size_t resp_ll2str(char *out, long long v)
{
        uint64_t mag = ll_mag(v);
        size_t neg = v < 0;
        size_t n = u64_digits(mag);

        if (neg)
                out[0] = '-';
        u64_put(out + neg, n, mag);
        out[neg + n] = '\0';
        return neg + n;
}

int resp_strtoll(const char *s, size_t len, long long *ret)
{
        size_t i = 0;
        uint64_t v = 0, limit;
        bool neg = false, over = false;

        if (len == 0)
                return -EINVAL;
        if (len == 1 && s[0] == '0') {
                if (ret)
                        *ret = 0;
                return 0;
        }
        if (s[0] == '-') {
                neg = true;
                i = 1;
        }
        /* "-", "-0", "0…", "+…", " …": string2ll takes none of them. */
        if (i == len || s[i] < '1' || s[i] > '9')
                return -EINVAL;
        for (; i < len; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned)(s[i] - '0');
                /* Keep reading after an overflow: "12x…9" is -EINVAL, not -ERANGE. */
                if (v > (UINT64_MAX - d) / 10)
                        over = true;
                else
                        v = v * 10 + d;
        }
        limit = neg ? (uint64_t)LLONG_MAX + 1 : (uint64_t)LLONG_MAX;
        if (over || v > limit)
                return -ERANGE;
        if (ret)
                *ret = neg ? -(long long)(v - 1) - 1 : (long long)v;
        return 0;
}

/* isspace() in the C locale, which is what Redis runs under. */
static bool is_space(char c)
{
        return c == ' ' || (c >= '\t' && c <= '\r');
}

int resp_strtold(const char *s, size_t len, long double *ret)
{
        char buf[RESP_LDSTR_SIZE];
        char *end;
        long double v;
        int saved = errno, e;

        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        v = strtold(buf, &end);
        e = errno;
        errno = saved;
        /* An embedded NUL stops strtold early and fails the end check. */
        if (is_space(buf[0]) || end != buf + len || e == EINVAL || isnan(v))
                return -EINVAL;
        if (e == ERANGE && (isinf(v) || v == 0))
                return -EINVAL;
        if (ret)
                *ret = v;
        return 0;
}

size_t resp_ld2str(char *out, size_t cap, long double v)
{
        char buf[RESP_LDSTR_SIZE];
        size_t l;

        if (isinf(v)) {
                l = v > 0 ? 3 : 4;
                memcpy(buf, v > 0 ? "inf" : "-inf", l);
        } else {
                /*
                 * 17 digits after the point, then trimmed: with 80- or 128-bit
                 * long doubles this prints what users typed ("10.6", not
                 * "10.599999…"), which is why Redis chose it for INCRBYFLOAT.
                 */
                int n = snprintf(buf, sizeof(buf), "%.17Lf", v);

                if (n < 0 || (size_t)n >= sizeof(buf))
                        return 0; /* cannot happen: the largest finite value fits */
                l = (size_t)n;
                if (memchr(buf, '.', l)) {
                        while (buf[l - 1] == '0')
                                l--;
                        if (buf[l - 1] == '.')
                                l--;
                }
                if (l == 2 && buf[0] == '-' && buf[1] == '0') {
                        buf[0] = '0';
                        l = 1;
                }
        }
        if (l <= cap)
                memcpy(out, buf, l);
        return l;
}

/* ------------------------------------------------------------------------
 * Reply encoders
 * ------------------------------------------------------------------------ */

/* Larger than any reply that can fit in memory: "does not fit". */
#define TOO_BIG SIZE_MAX

/* <prefix>[-]<digits>\r\n */
static size_t add_num(char *out, size_t cap, char prefix, bool neg, uint64_t mag)
{
        size_t n = u64_digits(mag);
        size_t size = 1 + neg + n + 2;

        if (size > cap)
                return size;
        out[0] = prefix;
        if (neg)
                out[1] = '-';
        u64_put(out + 1 + neg, n, mag);
        out[size - 2] = '\r';
        out[size - 1] = '\n';
        return size;
}

static size_t add_literal(char *out, size_t cap, const char *s, size_t len)
{
        if (len <= cap)
                memcpy(out, s, len);
        return len;
}

/* Copies text that must stay on one line: CR and LF become spaces. */
static void put_line(char *out, const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                out[i] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
}

size_t resp_add_simple(char *out, size_t cap, const char *s, size_t len)
{
        size_t size;

        if (len > TOO_BIG - 3)
                return TOO_BIG;
        size = 1 + len + 2;
        if (size > cap)
                return size;
        out[0] = '+';
        put_line(out + 1, s, len);
        memcpy(out + 1 + len, "\r\n", 2);
        return size;
}

size_t resp_add_error(char *out, size_t cap, const char *msg, size_t len)
{
        size_t code = (len > 0 && msg[0] == '-') ? 0 : 5;
        size_t size;

        if (len > TOO_BIG - 7)
                return TOO_BIG;
        size = code + len + 2;
        if (size > cap)
                return size;
        memcpy(out, "-ERR ", code);
        put_line(out + code, msg, len);
        memcpy(out + code + len, "\r\n", 2);
        return size;
}

size_t resp_add_int(char *out, size_t cap, long long v)
{
        return add_num(out, cap, ':', v < 0, ll_mag(v));
}

size_t resp_add_bulk_header(char *out, size_t cap, size_t len)
{
        return add_num(out, cap, '$', false, len);
}

size_t resp_add_bulk(char *out, size_t cap, const char *s, size_t len)
{
        size_t hdr = 1 + u64_digits(len) + 2;
        size_t size;

        if (len > TOO_BIG - hdr - 2)
                return TOO_BIG;
        size = hdr + len + 2;
        if (size > cap)
                return size;
        add_num(out, cap, '$', false, len);
        if (len)
                memcpy(out + hdr, s, len);
        memcpy(out + hdr + len, "\r\n", 2);
        return size;
}

size_t resp_add_null(char *out, size_t cap, int proto)
{
        if (proto == RESP3)
                return add_literal(out, cap, "_\r\n", 3);
        return add_literal(out, cap, "$-1\r\n", 5);
}

size_t resp_add_null_array(char *out, size_t cap, int proto)
{
        if (proto == RESP3)
                return add_literal(out, cap, "_\r\n", 3);
        return add_literal(out, cap, "*-1\r\n", 5);
}

size_t resp_add_array(char *out, size_t cap, size_t n)
{
        return add_num(out, cap, '*', false, n);
}

size_t resp_add_map(char *out, size_t cap, int proto, size_t n)
{
        if (proto == RESP3)
                return add_num(out, cap, '%', false, n);
        return add_num(out, cap, '*', false, (uint64_t)n * 2);
}

size_t resp_add_set(char *out, size_t cap, int proto, size_t n)
{
        return add_num(out, cap, proto == RESP3 ? '~' : '*', false, n);
}

size_t resp_add_push(char *out, size_t cap, int proto, size_t n)
{
        return add_num(out, cap, proto == RESP3 ? '>' : '*', false, n);
}

size_t resp_add_double(char *out, size_t cap, int proto, double d)
{
        char text[32];
        size_t len, size;

        /* Spelled out so no libc's own way of printing them leaks out. */
        if (isinf(d)) {
                len = d > 0 ? 3 : 4;
                memcpy(text, d > 0 ? "inf" : "-inf", len);
        } else if (isnan(d)) {
                len = 3;
                memcpy(text, "nan", len);
        } else {
                /* At most 24 characters: "-1.2345678901234567e-308". */
                len = (size_t)snprintf(text, sizeof(text), "%.17g", d);
        }
        if (proto != RESP3)
                return resp_add_bulk(out, cap, text, len);
        size = 1 + len + 2;
        if (size > cap)
                return size;
        out[0] = ',';
        memcpy(out + 1, text, len);
        memcpy(out + 1 + len, "\r\n", 2);
        return size;
}

size_t resp_add_bool(char *out, size_t cap, int proto, bool b)
{
        if (proto == RESP3)
                return add_literal(out, cap, b ? "#t\r\n" : "#f\r\n", 4);
        return add_literal(out, cap, b ? ":1\r\n" : ":0\r\n", 4);
}

/* ------------------------------------------------------------------------
 * Request parser
 * ------------------------------------------------------------------------ */

enum {
        ST_START,  /* nothing of the next command examined */
        ST_INLINE, /* looking for the end of an inline line */
        ST_COUNT,  /* looking for the end of "*<n>" */
        ST_ARGS,   /* reading "$<len>" headers and payloads */
};

enum {
        LINE_FOUND,
        LINE_MORE,
        LINE_TOO_BIG,
};

void resp_limits_default(struct resp_limits *ret_limits)
{
        ret_limits->max_bulk = RESP_BULK_MAX;
        ret_limits->max_multibulk = RESP_MULTIBULK_MAX;
        ret_limits->max_inline = RESP_INLINE_MAX;
}

/* Ready for the next command; the buffer front is its first byte. */
static void parser_next(struct resp_parser *p)
{
        p->state = ST_START;
        p->pos = 0;
        p->scan = 0;
        p->left = 0;
        p->bulklen = -1;
        p->count = 0;
        p->argc = 0;
        p->need = 1;
}

int resp_parser_init(struct resp_parser *p, const struct resp_limits *limits)
{
        struct resp_limits l;

        if (limits)
                l = *limits;
        else
                resp_limits_default(&l);
        if (l.max_bulk < 0 || l.max_multibulk < 0 || l.max_inline == 0)
                return -EINVAL;
        memset(p, 0, sizeof(*p));
        p->limits = l;
        resp_parser_reset(p);
        return 0;
}

void resp_parser_reset(struct resp_parser *p)
{
        parser_next(p);
        p->err = NULL;
        p->errbuf[0] = '\0';
}

const char *resp_parser_error(const struct resp_parser *p)
{
        return p->err;
}

size_t resp_parser_need(const struct resp_parser *p)
{
        return p->need;
}

static ssize_t fail(struct resp_parser *p, const char *msg)
{
        p->err = msg;
        return -EPROTO;
}

/*
 * Redis formats this one with %c and then turns CR and LF into spaces before
 * replying; doing the same keeps the message identical to the byte. (A NUL
 * cannot get here: it stops the line search first.)
 */
static ssize_t fail_expected(struct resp_parser *p, char got)
{
        static const char head[] = "Protocol error: expected '$', got '";
        size_t n = sizeof(head) - 1;

        memcpy(p->errbuf, head, n);
        p->errbuf[n] = (got == '\r' || got == '\n') ? ' ' : got;
        p->errbuf[n + 1] = '\'';
        p->errbuf[n + 2] = '\0';
        return fail(p, p->errbuf);
}

static ssize_t more(struct resp_parser *p, size_t len, uint64_t extra)
{
        p->need = extra > SIZE_MAX - len ? SIZE_MAX : len + (size_t)extra;
        return -EAGAIN;
}

/*
 * Looks for `term` in the line that starts at p->pos, resuming past the
 * p->scan bytes earlier calls already searched, so a line that trickles in is
 * scanned once. The line may be max_inline bytes long before its terminator:
 * Redis gives up once more than that is buffered without one, and searching
 * no further than that here gives the same verdict whether the bytes came in
 * one read or many.
 *
 * Redis searches with strchr(), so a NUL hides any terminator after it and
 * the request can only end in the "too big" error once enough bytes pile up.
 * We return that verdict as soon as the NUL is seen.
 */
static int find_term(struct resp_parser *p, const char *buf, size_t len, char term, size_t *ret_at)
{
        const char *s = buf + p->pos;
        size_t avail = len - p->pos;
        size_t lim = p->limits.max_inline;
        bool full = lim < SIZE_MAX && avail > lim;
        size_t win = full ? lim + 1 : avail;
        const char *t = memchr(s + p->scan, term, win - p->scan);
        size_t stop = t ? (size_t)(t - s) : win;

        if (memchr(s + p->scan, '\0', stop - p->scan))
                return LINE_TOO_BIG;
        p->scan = stop;
        if (!t)
                return full ? LINE_TOO_BIG : LINE_MORE;
        *ret_at = p->pos + stop;
        return LINE_FOUND;
}

/* Fills in the argument pointers of a finished multibulk command. */
static void point_args(const struct resp_parser *p, const char *buf, struct resp_command *cmd)
{
        /*
         * Only lengths were kept while the command came in, so the buffer may
         * move between calls. Offsets follow from them: string2ll accepts only
         * canonical numbers, so "*<n>" and "$<len>" take 1 + digits + 2 bytes
         * (Redis skips the byte after '\r' without looking at it), and each
         * payload is followed by 2 bytes, likewise unchecked.
         */
        size_t off = 1 + u64_digits((uint64_t)p->count) + 2;

        for (size_t i = 0; i < p->argc; i++) {
                size_t l = cmd->argv[i].len;

                off += 1 + u64_digits(l) + 2;
                cmd->argv[i].ptr = buf + off;
                off += l + 2;
        }
        assert(off == p->pos);
}

static ssize_t parse_args(struct resp_parser *p, const char *buf, size_t len,
                          struct resp_command *cmd)
{
        size_t eol, done;
        long long ll;

        while (p->left > 0) {
                if (p->bulklen < 0) {
                        int r = find_term(p, buf, len, '\r', &eol);

                        if (r == LINE_TOO_BIG)
                                return fail(p, "Protocol error: too big bulk count string");
                        if (r == LINE_MORE || eol + 1 >= len)
                                return more(p, len, 1);
                        if (buf[p->pos] != '$')
                                return fail_expected(p, buf[p->pos]);
                        if (resp_strtoll(buf + p->pos + 1, eol - p->pos - 1, &ll) < 0 || ll < 0 ||
                            ll > p->limits.max_bulk)
                                return fail(p, "Protocol error: invalid bulk length");
                        if (ll > RESP_UNAUTH_BULK_MAX && p->unauthenticated)
                                return fail(p, "Protocol error: unauthenticated bulk length");
                        p->bulklen = ll;
                        p->pos = eol + 2;
                        p->scan = 0;
                }
                /* Payload and the two bytes after it, never scanned. */
                if ((uint64_t)(len - p->pos) < (uint64_t)p->bulklen + 2)
                        return more(p, p->pos, (uint64_t)p->bulklen + 2);
                /*
                 * Like Redis, which grows argv as arguments arrive rather than
                 * trusting the announced count, ask for room only now.
                 */
                if (p->argc == cmd->argv_cap) {
                        cmd->argc = (uint64_t)p->count > SIZE_MAX ? SIZE_MAX : (size_t)p->count;
                        return -ENOBUFS;
                }
                cmd->argv[p->argc].ptr = NULL;
                cmd->argv[p->argc].len = (size_t)p->bulklen;
                p->argc++;
                p->left--;
                p->pos += (size_t)p->bulklen + 2;
                p->bulklen = -1;
        }
        point_args(p, buf, cmd);
        cmd->argc = p->argc;
        done = p->pos;
        parser_next(p);
        return (ssize_t)done;
}

static ssize_t parse_count(struct resp_parser *p, const char *buf, size_t len,
                           struct resp_command *cmd)
{
        size_t eol;
        long long ll;
        int r = find_term(p, buf, len, '\r', &eol);

        if (r == LINE_TOO_BIG)
                return fail(p, "Protocol error: too big mbulk count string");
        if (r == LINE_MORE || eol + 1 >= len)
                return more(p, len, 1);
        if (resp_strtoll(buf + 1, eol - 1, &ll) < 0 || ll > p->limits.max_multibulk)
                return fail(p, "Protocol error: invalid multibulk length");
        if (ll > RESP_UNAUTH_MULTIBULK_MAX && p->unauthenticated)
                return fail(p, "Protocol error: unauthenticated multibulk length");
        if (ll <= 0) {
                /* "*0", "*-1", "*-10": Redis drops them and reads on. */
                parser_next(p);
                return (ssize_t)(eol + 2);
        }
        p->state = ST_ARGS;
        p->count = ll;
        p->left = ll;
        p->pos = eol + 2;
        p->scan = 0;
        return parse_args(p, buf, len, cmd);
}

/*
 * Splitting an inline line into words. Each word points into the input while
 * its bytes are a run of the input; at the first byte that is not (an escape,
 * a quote inside the word), what it has so far moves to the scratch and the
 * rest follows there. Overflowing argv or scratch does not stop the split: it
 * goes on counting so the caller learns what the line needs.
 */
struct splitter {
        struct resp_command *cmd;
        size_t argc;       /* words so far */
        size_t used;       /* scratch bytes the line needs so far */
        const char *start; /* current word, while it is a run of the input */
        size_t n;
        bool copied; /* current word lives in scratch from soff on */
        size_t soff;
};

static void scratch_put(struct splitter *sp, const char *s, size_t n)
{
        const struct resp_command *cmd = sp->cmd;

        if (n > 0 && n <= cmd->scratch_cap && sp->used <= cmd->scratch_cap - n)
                memcpy(cmd->scratch + sp->used, s, n);
        sp->used += n;
}

static void word_begin(struct splitter *sp, const char *at)
{
        sp->start = at;
        sp->n = 0;
        sp->copied = false;
}

/* Adds byte c to the word; `src` is where c sits in the input, or NULL. */
static void word_put(struct splitter *sp, char c, const char *src)
{
        if (!sp->copied) {
                if (src && src == sp->start + sp->n) {
                        sp->n++;
                        return;
                }
                if (src && sp->n == 0) {
                        sp->start = src;
                        sp->n = 1;
                        return;
                }
                sp->copied = true;
                sp->soff = sp->used;
                scratch_put(sp, sp->start, sp->n);
        }
        scratch_put(sp, &c, 1);
}

static void word_end(struct splitter *sp)
{
        struct resp_command *cmd = sp->cmd;

        if (sp->argc < cmd->argv_cap) {
                struct resp_arg *a = &cmd->argv[sp->argc];

                if (!sp->copied) {
                        a->ptr = sp->start;
                        a->len = sp->n;
                } else {
                        a->ptr = sp->used <= cmd->scratch_cap ? cmd->scratch + sp->soff : NULL;
                        a->len = sp->used - sp->soff;
                }
        }
        sp->argc++;
}

static int hex_val(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/*
 * sdssplitargs() on s[0..e), with its end-of-string tests turned into bounds
 * tests (the line holds no NUL: find_term saw to that). Returns 0, or -1 for
 * unbalanced quotes.
 */
static int split_words(struct splitter *sp, const char *p, const char *e)
{
        for (;;) {
                bool inq = false, insq = false, done = false;

                while (p < e && is_space(*p))
                        p++;
                if (p == e)
                        return 0;
                word_begin(sp, p);
                while (!done) {
                        if (inq) {
                                if (p == e)
                                        return -1;
                                if (*p == '\\' && e - p >= 4 && p[1] == 'x' && hex_val(p[2]) >= 0 &&
                                    hex_val(p[3]) >= 0) {
                                        word_put(sp, (char)(hex_val(p[2]) * 16 + hex_val(p[3])),
                                                 NULL);
                                        p += 3;
                                } else if (*p == '\\' && e - p >= 2) {
                                        p++;
                                        switch (*p) {
                                        case 'n':
                                                word_put(sp, '\n', NULL);
                                                break;
                                        case 'r':
                                                word_put(sp, '\r', NULL);
                                                break;
                                        case 't':
                                                word_put(sp, '\t', NULL);
                                                break;
                                        case 'b':
                                                word_put(sp, '\b', NULL);
                                                break;
                                        case 'a':
                                                word_put(sp, '\a', NULL);
                                                break;
                                        default: /* \\, \" and any other: the byte itself */
                                                word_put(sp, *p, p);
                                                break;
                                        }
                                } else if (*p == '"') {
                                        /* A closing quote must end the word. */
                                        if (e - p >= 2 && !is_space(p[1]))
                                                return -1;
                                        done = true;
                                } else {
                                        word_put(sp, *p, p);
                                }
                        } else if (insq) {
                                if (p == e)
                                        return -1;
                                if (*p == '\\' && e - p >= 2 && p[1] == '\'') {
                                        p++;
                                        word_put(sp, '\'', p);
                                } else if (*p == '\'') {
                                        if (e - p >= 2 && !is_space(p[1]))
                                                return -1;
                                        done = true;
                                } else {
                                        word_put(sp, *p, p);
                                }
                        } else if (p == e) {
                                done = true;
                        } else {
                                /* Unquoted words end at these four only, not at \v or \f. */
                                switch (*p) {
                                case ' ':
                                case '\n':
                                case '\r':
                                case '\t':
                                        done = true;
                                        break;
                                case '"':
                                        inq = true;
                                        break;
                                case '\'':
                                        insq = true;
                                        break;
                                default:
                                        word_put(sp, *p, p);
                                        break;
                                }
                        }
                        if (p < e)
                                p++;
                }
                word_end(sp);
        }
}

static ssize_t parse_inline(struct resp_parser *p, const char *buf, size_t len,
                            struct resp_command *cmd)
{
        struct splitter sp = {.cmd = cmd};
        size_t nl, end;
        int r = find_term(p, buf, len, '\n', &nl);

        if (r == LINE_TOO_BIG)
                return fail(p, "Protocol error: too big inline request");
        if (r == LINE_MORE)
                return more(p, len, 1);
        end = nl;
        if (end > 0 && buf[end - 1] == '\r')
                end--;
        if (split_words(&sp, buf, buf + end) < 0)
                return fail(p, "Protocol error: unbalanced quotes in request");
        cmd->argc = sp.argc;
        cmd->scratch_len = sp.used;
        if (sp.argc > cmd->argv_cap || sp.used > cmd->scratch_cap)
                return -ENOBUFS; /* p->scan still points at the '\n': the retry is cheap */
        parser_next(p);
        return (ssize_t)(nl + 1);
}

ssize_t resp_parse(struct resp_parser *p, const char *buf, size_t len, struct resp_command *cmd)
{
        if (p->err)
                return -EPROTO;
        if (len > SSIZE_MAX)
                len = SSIZE_MAX;
        if (len < p->pos + p->scan)
                return -EINVAL;
        cmd->argc = 0;
        cmd->scratch_len = 0;
        if (len == 0)
                return more(p, 0, 1);
        if (p->state == ST_START)
                p->state = buf[0] == '*' ? ST_COUNT : ST_INLINE;
        switch (p->state) {
        case ST_INLINE:
                return parse_inline(p, buf, len, cmd);
        case ST_COUNT:
                return parse_count(p, buf, len, cmd);
        default:
                return parse_args(p, buf, len, cmd);
        }
}

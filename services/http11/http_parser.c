/*
 * HTTP/1.1 request head parser, chunked body decoder and status reasons (see
 * http_parser.h for the contract). The head parser is one forward pass over
 * the buffer: byte classes come from a table built at compile time, and the
 * two long runs of a request (the target and the field values) are scanned a
 * word at a time with portable SWAR tests, falling back to the table for the
 * word that holds a delimiter. Every decision depends only on bytes already
 * seen and every bound is a position, so a prefix of a request gives either
 * HTTP_INCOMPLETE or the very error the whole request gives; the resume state
 * kept in the request after HTTP_INCOMPLETE relies on that.
 */
#include "http_parser.h"

#include <limits.h>
#include <string.h>

const struct http_limits http_limits_default = {
        .max_request_line = 8192,
        .max_header_bytes = 65536,
        .max_headers = 100,
        .max_body = 1024 * 1024,
};

/* ------------------------------------------------------------------------ */
/* Character classes                                                          */
/* ------------------------------------------------------------------------ */

#define C_TCHAR 0x01   /* token (RFC 9110 §5.6.2) */
#define C_FIELD 0x02   /* field value: VCHAR, obs-text, SP, HTAB */
#define C_TARGET 0x04  /* request-target: VCHAR except '#' */
#define C_REGNAME 0x08 /* host: unreserved and sub-delims ('%' is checked apart) */
#define C_HEX 0x10
#define C_QDTEXT 0x20 /* inside a quoted-string, '\\' excluded */

/* clang-format off */
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_HEX(c) (IS_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define IS_VCHAR(c) ((c) >= 0x21 && (c) <= 0x7e)
#define IS_TCHAR(c)                                                                              \
        (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||   \
         (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||    \
         (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')
#define IS_FIELD(c) (IS_VCHAR(c) || (c) >= 0x80 || (c) == ' ' || (c) == '\t')
#define IS_TARGET(c) (IS_VCHAR(c) && (c) != '#')
#define IS_UNRESERVED(c) (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || \
                          (c) == '~')
#define IS_SUBDELIM(c)                                                                           \
        ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' ||    \
         (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
#define IS_QDTEXT(c)                                                                             \
        ((c) == '\t' || (c) == ' ' || (c) == 0x21 || ((c) >= 0x23 && (c) <= 0x5b) ||             \
         ((c) >= 0x5d && (c) <= 0x7e) || (c) >= 0x80)

#define CLASS(c)                                                                                 \
        ((IS_TCHAR(c) ? C_TCHAR : 0) | (IS_FIELD(c) ? C_FIELD : 0) |                             \
         (IS_TARGET(c) ? C_TARGET : 0) |                                                         \
         (IS_UNRESERVED(c) || IS_SUBDELIM(c) ? C_REGNAME : 0) | (IS_HEX(c) ? C_HEX : 0) |        \
         (IS_QDTEXT(c) ? C_QDTEXT : 0))
#define ROW(r)                                                                                   \
        CLASS((r) + 0), CLASS((r) + 1), CLASS((r) + 2), CLASS((r) + 3), CLASS((r) + 4),          \
                CLASS((r) + 5), CLASS((r) + 6), CLASS((r) + 7), CLASS((r) + 8), CLASS((r) + 9),  \
                CLASS((r) + 10), CLASS((r) + 11), CLASS((r) + 12), CLASS((r) + 13),              \
                CLASS((r) + 14), CLASS((r) + 15)

static const uint8_t ctab[256] = {
        ROW(0x00), ROW(0x10), ROW(0x20), ROW(0x30), ROW(0x40), ROW(0x50), ROW(0x60), ROW(0x70),
        ROW(0x80), ROW(0x90), ROW(0xa0), ROW(0xb0), ROW(0xc0), ROW(0xd0), ROW(0xe0), ROW(0xf0),
};

#define LOWER(c) (((c) >= 'A' && (c) <= 'Z') ? ((c) | 0x20) : (c))
#define LROW(r)                                                                                  \
        LOWER((r) + 0), LOWER((r) + 1), LOWER((r) + 2), LOWER((r) + 3), LOWER((r) + 4),          \
                LOWER((r) + 5), LOWER((r) + 6), LOWER((r) + 7), LOWER((r) + 8), LOWER((r) + 9),  \
                LOWER((r) + 10), LOWER((r) + 11), LOWER((r) + 12), LOWER((r) + 13),              \
                LOWER((r) + 14), LOWER((r) + 15)
/* clang-format on */

static const unsigned char lower[256] = {
        LROW(0x00), LROW(0x10), LROW(0x20), LROW(0x30), LROW(0x40), LROW(0x50),
        LROW(0x60), LROW(0x70), LROW(0x80), LROW(0x90), LROW(0xa0), LROW(0xb0),
        LROW(0xc0), LROW(0xd0), LROW(0xe0), LROW(0xf0),
};

/* s1[0..n) equals the lowercase string lc[0..n), ignoring case. */
static int ci_equal(const unsigned char *s1, const char *lc, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (lower[s1[i]] != (unsigned char)lc[i])
                        return 0;
        return 1;
}

/* ------------------------------------------------------------------------ */
/* Scanners                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Word-at-a-time tests (the "has less" and "has zero byte" idioms): they say
 * exactly whether some byte of the word matches, not which one, so a hit
 * hands the word to the table. Loads go through memcpy, which compilers turn
 * into one unaligned load where that is allowed.
 */
/* clang-format off */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)
#define HASLESS(x, n) (((x) - ONES * (n)) & ~(x) & HIGHS)
#define HASBYTE(x, n) HASLESS((x) ^ (ONES * (n)), 1)
/* clang-format on */

static inline uint64_t load64(const unsigned char *p)
{
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

/* Returns the first byte of [p, e) that may not appear in a field value, or e. */
static const unsigned char *scan_field(const unsigned char *p, const unsigned char *e)
{
        for (;;) {
                while (e - p >= 8) {
                        uint64_t x = load64(p);
                        if ((HASLESS(x, 0x20) | HASBYTE(x, 0x7f)) != 0)
                                break;
                        p += 8;
                }
                /* HTAB also stops the word test: finish this word by table */
                const unsigned char *stop = e - p >= 8 ? p + 8 : e;
                for (; p < stop; p++)
                        if (!(ctab[*p] & C_FIELD))
                                return p;
                if (p == e)
                        return p;
        }
}

/* Returns the first byte of [p, e) that may not appear in a request-target, or e. */
static const unsigned char *scan_target(const unsigned char *p, const unsigned char *e)
{
        for (;;) {
                while (e - p >= 8) {
                        uint64_t x = load64(p);
                        if ((HASLESS(x, 0x21) | HASBYTE(x, 0x7f) | HASBYTE(x, '#') | (x & HIGHS)) !=
                            0)
                                break;
                        p += 8;
                }
                const unsigned char *stop = e - p >= 8 ? p + 8 : e;
                for (; p < stop; p++)
                        if (!(ctab[*p] & C_TARGET))
                                return p;
                if (p == e)
                        return p;
        }
}

/* Tokens (method, field names) are short: a plain table loop beats the setup of a word test. */
static const unsigned char *scan_tchar(const unsigned char *p, const unsigned char *e)
{
        while (p < e && (ctab[*p] & C_TCHAR))
                p++;
        return p;
}

/*
 * Walks a comma-separated list of tokens (RFC 9110 §5.6.1; empty elements
 * are skipped as the RFC requires). Returns 1 with the next element in
 * *tok and *tok_len, 0 at the end of the list, -1 when an element is not a bare
 * token (parameters, quoted strings, stray characters).
 */
static int next_list_token(const unsigned char **pp, const unsigned char *e,
                           const unsigned char **tok, size_t *tok_len)
{
        const unsigned char *p = *pp;

        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
        if (p == e) {
                *pp = p;
                return 0;
        }
        *tok = p;
        p = scan_tchar(p, e);
        if (p == *tok)
                return -1;
        *tok_len = (size_t)(p - *tok);
        while (p < e && (*p == ' ' || *p == '\t'))
                p++;
        if (p < e && *p != ',')
                return -1;
        *pp = p;
        return 1;
}

/* ------------------------------------------------------------------------ */
/* Request line                                                               */
/* ------------------------------------------------------------------------ */

/* clang-format off */
#define M(s, id)                                                                                 \
        if (memcmp(m, s, n) == 0)                                                                \
                return id
/* clang-format on */

static enum http_method method_lookup(const unsigned char *m, size_t n)
{
        switch (n) {
        case 3:
                M("GET", HTTP_METHOD_GET);
                M("PUT", HTTP_METHOD_PUT);
                break;
        case 4:
                M("HEAD", HTTP_METHOD_HEAD);
                M("POST", HTTP_METHOD_POST);
                break;
        case 5:
                M("PATCH", HTTP_METHOD_PATCH);
                M("TRACE", HTTP_METHOD_TRACE);
                break;
        case 6:
                M("DELETE", HTTP_METHOD_DELETE);
                break;
        case 7:
                M("CONNECT", HTTP_METHOD_CONNECT);
                M("OPTIONS", HTTP_METHOD_OPTIONS);
                break;
        }
#undef M
        return HTTP_METHOD_OTHER;
}

/*
 * authority = host [ ":" port ] (RFC 3986 §3.2, userinfo refused as RFC 9110
 * §4.2.4 asks). host is an IP-literal in brackets or a reg-name / IPv4
 * address; port is at most 65535. Returns 1 when p[0..n) is one, else 0.
 */
static int authority_ok(const unsigned char *p, size_t n, int need_port, int allow_empty)
{
        const unsigned char *e = p + n, *host = p;

        if (p < e && *p == '[') {
                const unsigned char *in = ++p;
                if (p < e && (*p == 'v' || *p == 'V')) {
                        /* IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
                        const unsigned char *h = ++p;
                        while (p < e && (ctab[*p] & C_HEX))
                                p++;
                        if (p == h || p == e || *p != '.')
                                return 0;
                        h = ++p;
                        while (p < e && ((ctab[*p] & C_REGNAME) || *p == ':'))
                                p++;
                        if (p == h)
                                return 0;
                } else {
                        /* IPv6address, checked for its alphabet only */
                        int colon = 0;
                        while (p < e && ((ctab[*p] & C_HEX) || *p == ':' || *p == '.')) {
                                colon |= *p == ':';
                                p++;
                        }
                        if (!colon || p - in < 2)
                                return 0;
                }
                if (p == e || *p != ']')
                        return 0;
                p++;
        } else {
                while (p < e && *p != ':') {
                        if (*p == '%') {
                                if (e - p < 3 || !(ctab[p[1]] & C_HEX) || !(ctab[p[2]] & C_HEX))
                                        return 0;
                                p += 3;
                        } else if (ctab[*p] & C_REGNAME) {
                                p++;
                        } else {
                                return 0;
                        }
                }
                if (p == host && !allow_empty)
                        return 0;
        }
        if (p == e)
                return !need_port;
        if (*p++ != ':')
                return 0;
        if (p == e)
                return !need_port;
        unsigned port = 0;
        for (int digits = 0; p < e; p++, digits++) {
                if (!IS_DIGIT(*p) || digits == 5)
                        return 0;
                port = port * 10 + (unsigned)(*p - '0');
        }
        return port <= 65535;
}

static const char root_path[] = "/";

static void split_query(struct http_request *req, const unsigned char *p, const unsigned char *e)
{
        const unsigned char *q = memchr(p, '?', (size_t)(e - p));

        req->path = (const char *)p;
        req->path_len = (size_t)((q ? q : e) - p);
        if (q) {
                req->query = (const char *)q + 1;
                req->query_len = (size_t)(e - q - 1);
        }
}

/*
 * Classifies the request-target t[0..n) (RFC 9112 §3.2), whose bytes are
 * already known to be VCHARs other than '#'. Returns 0 or a negative status.
 */
static int parse_target(struct http_request *req, const unsigned char *t, size_t n)
{
        const unsigned char *e = t + n, *a, *q;

        req->target = (const char *)t;
        req->target_len = n;
        if (req->method_id == HTTP_METHOD_CONNECT) {
                if (!authority_ok(t, n, 1, 0))
                        return HTTP_E_BAD_REQUEST;
                req->target_form = HTTP_TARGET_AUTHORITY;
                req->authority = (const char *)t;
                req->authority_len = n;
                return 0;
        }
        if (t[0] == '/') {
                req->target_form = HTTP_TARGET_ORIGIN;
                split_query(req, t, e);
                return 0;
        }
        if (n == 1 && t[0] == '*') {
                if (req->method_id != HTTP_METHOD_OPTIONS)
                        return HTTP_E_BAD_REQUEST;
                req->target_form = HTTP_TARGET_ASTERISK;
                req->path = (const char *)t;
                req->path_len = 1;
                return 0;
        }
        if (n > 7 && ci_equal(t, "http://", 7))
                a = t + 7;
        else if (n > 8 && ci_equal(t, "https://", 8))
                a = t + 8;
        else
                return HTTP_E_BAD_REQUEST;
        for (q = a; q < e && *q != '/' && *q != '?'; q++)
                ;
        if (!authority_ok(a, (size_t)(q - a), 0, 0))
                return HTTP_E_BAD_REQUEST;
        req->target_form = HTTP_TARGET_ABSOLUTE;
        req->authority = (const char *)a;
        req->authority_len = (size_t)(q - a);
        if (q < e && *q == '/') {
                split_query(req, q, e);
        } else {
                req->path = root_path;
                req->path_len = 1;
                if (q < e) {
                        req->query = (const char *)q + 1;
                        req->query_len = (size_t)(e - q - 1);
                }
        }
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Header fields with a meaning for framing                                   */
/* ------------------------------------------------------------------------ */

static int on_content_length(struct http_request *req, const unsigned char *v, size_t n)
{
        uint64_t cl = 0;

        /* strict: a second Content-Length is refused even when equal (RFC 9112 §6.3 allows
           merging equal ones; refusing leaves no room for a smuggling disagreement) */
        if (req->content_length >= 0 || n == 0)
                return HTTP_E_BAD_REQUEST;
        for (size_t i = 0; i < n; i++) {
                if (!IS_DIGIT(v[i]))
                        return HTTP_E_BAD_REQUEST;
                unsigned d = v[i] - '0';
                if (cl > ((uint64_t)INT64_MAX - d) / 10)
                        return HTTP_E_BAD_REQUEST;
                cl = cl * 10 + d;
        }
        req->content_length = (int64_t)cl;
        return 0;
}

static int on_transfer_encoding(struct http_request *req, const unsigned char *v, size_t n)
{
        const unsigned char *p = v, *e = v + n, *tok = NULL;
        size_t tok_len = 0, count = 0;
        int r;

        /* RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing */
        if (req->version_minor == 0)
                return HTTP_E_BAD_REQUEST;
        req->state.te_seen = 1;
        while ((r = next_list_token(&p, e, &tok, &tok_len)) > 0) {
                count++;
                /* anything after chunked, chunked included, leaves chunked not final */
                if (req->chunked)
                        return HTTP_E_BAD_REQUEST;
                if (tok_len == 7 && ci_equal(tok, "chunked", 7))
                        req->chunked = 1;
                else
                        req->state.te_other = 1;
        }
        if (r < 0 || count == 0)
                return HTTP_E_BAD_REQUEST;
        return 0;
}

static int on_connection(struct http_request *req, const unsigned char *v, size_t n)
{
        const unsigned char *p = v, *e = v + n, *tok = NULL;
        size_t tok_len = 0;
        int r;

        while ((r = next_list_token(&p, e, &tok, &tok_len)) > 0) {
                if (tok_len == 5 && ci_equal(tok, "close", 5))
                        req->state.conn_close = 1;
                else if (tok_len == 10 && ci_equal(tok, "keep-alive", 10))
                        req->state.conn_keep_alive = 1;
        }
        return r < 0 ? HTTP_E_BAD_REQUEST : 0;
}

static int on_expect(struct http_request *req, const unsigned char *v, size_t n)
{
        const unsigned char *p = v, *e = v + n, *tok = NULL;
        size_t tok_len = 0;
        int r;

        /* 100-continue is the only expectation defined (RFC 9110 §10.1.1) */
        while ((r = next_list_token(&p, e, &tok, &tok_len)) > 0) {
                if (tok_len != 12 || !ci_equal(tok, "100-continue", 12))
                        return HTTP_E_EXPECTATION_FAILED;
                req->expect_continue = 1;
        }
        return r < 0 ? HTTP_E_EXPECTATION_FAILED : 0;
}

static int on_host(struct http_request *req, const unsigned char *v, size_t n)
{
        if (req->has_host || !authority_ok(v, n, 0, 1))
                return HTTP_E_BAD_REQUEST;
        req->has_host = 1;
        req->host = (const char *)v;
        req->host_len = n;
        return 0;
}

static int on_header(struct http_request *req, const struct http_header *h)
{
        const unsigned char *name = (const unsigned char *)h->name;
        const unsigned char *v = (const unsigned char *)h->value;

        switch (h->name_len) {
        case 4:
                if (ci_equal(name, "host", 4))
                        return on_host(req, v, h->value_len);
                break;
        case 6:
                if (ci_equal(name, "expect", 6))
                        return on_expect(req, v, h->value_len);
                break;
        case 10:
                if (ci_equal(name, "connection", 10))
                        return on_connection(req, v, h->value_len);
                break;
        case 14:
                if (ci_equal(name, "content-length", 14))
                        return on_content_length(req, v, h->value_len);
                break;
        case 17:
                if (ci_equal(name, "transfer-encoding", 17))
                        return on_transfer_encoding(req, v, h->value_len);
                break;
        }
        return 0;
}

/* Checks that need the whole head, and the derived connection flags. */
static int finish_head(struct http_request *req, const struct http_limits *lim)
{
        const struct http_parse_state *st = &req->state;

        if (st->te_seen) {
                if (req->content_length >= 0)
                        return HTTP_E_BAD_REQUEST; /* CL.TE / TE.CL */
                if (!req->chunked)
                        return HTTP_E_BAD_REQUEST; /* RFC 9112 §6.3: chunked not final */
                if (st->te_other)
                        return HTTP_E_NOT_IMPLEMENTED; /* e.g. "gzip, chunked" */
        }
        if (req->version_minor == 1 && !req->has_host)
                return HTTP_E_BAD_REQUEST;
        if (req->content_length > 0 && (uint64_t)req->content_length > lim->max_body)
                return HTTP_E_PAYLOAD_TOO_LARGE;
        if (req->version_minor == 1)
                req->keep_alive = !st->conn_close;
        else
                req->keep_alive = st->conn_keep_alive && !st->conn_close;
        if (req->version_minor == 0)
                req->expect_continue = 0; /* RFC 9110 §10.1.1: ignored in HTTP/1.0 */
        return 0;
}

/* ------------------------------------------------------------------------ */
/* Head parser                                                                */
/* ------------------------------------------------------------------------ */

enum {
        PH_FRESH = 0,
        PH_START, /* before the request line, skipping empty lines */
        PH_METHOD,
        PH_TARGET,
        PH_VERSION, /* resumes at the start of the version */
        PH_LINE,    /* at the start of a field line or of the final empty line */
        PH_NAME,
        PH_OWS, /* after the colon */
        PH_VALUE,
};

void http_request_init(struct http_request *req, struct http_header *headers, size_t cap)
{
        memset(req, 0, sizeof(*req));
        req->headers = headers;
        req->headers_cap = cap;
        req->content_length = -1;
}

static void reset(struct http_request *req, const char *buf)
{
        struct http_header *headers = req->headers;
        size_t cap = req->headers_cap;

        http_request_init(req, headers, cap);
        req->state.base = buf;
        req->state.phase = PH_START;
}

static int fail(struct http_request *req, int status)
{
        req->state.phase = PH_FRESH;
        return status;
}

static int suspend(struct http_request *req, const char *buf, int phase, size_t pos, size_t line,
                   size_t mark)
{
        struct http_parse_state *st = &req->state;

        st->base = buf;
        st->phase = (uint8_t)phase;
        st->pos = pos;
        st->line = line;
        st->mark = mark;
        return HTTP_INCOMPLETE;
}

/*
 * The scan needs the byte at `at`, which is at its bound: either the buffer
 * ends there (ask for more, resuming at `pos`) or the head limit does.
 */
/* clang-format off */
#define NEED_OR(phase, pos, at, status)                                                          \
        do {                                                                                     \
                if ((at) == end)                                                                 \
                        return suspend(req, buf, (phase), (size_t)((pos) - b),                   \
                                       (size_t)(line - b), (size_t)(mark - b));                  \
                return fail(req, (status));                                                      \
        } while (0)
#define NEED(phase, pos, at) NEED_OR((phase), (pos), (at), HTTP_E_HEADERS_TOO_LARGE)

/* End of the scan of a request line that starts at line: its own limit or the head bound e. */
static inline const unsigned char *rl_bound(const unsigned char *line, const unsigned char *e,
                                            size_t max)
{
        return (size_t)(e - line) < max ? e : line + max;
}

/* The same within the request line, whose own limit gives 414. */
#define RL_NEED(phase, pos, at)                                                                  \
        NEED_OR((phase), (pos), (at),                                                            \
                (size_t)((at) - line) >= lim->max_request_line ? HTTP_E_URI_TOO_LONG             \
                                                               : HTTP_E_HEADERS_TOO_LARGE)
/* clang-format on */

int http_parse_request(const char *buf, size_t len, struct http_request *req,
                       const struct http_limits *lim)
{
        struct http_parse_state *st = &req->state;
        const unsigned char *b, *end, *e, *rl_e, *p, *line, *mark, *q;
        struct http_header *h;
        size_t hmax, cap;
        int r;

        if (!lim)
                lim = &http_limits_default;
        if (st->phase != PH_FRESH && (st->base != buf || st->pos > len))
                st->phase = PH_FRESH;
        if (st->phase == PH_FRESH)
                reset(req, buf);
        if (len == 0)
                return HTTP_INCOMPLETE;

        b = (const unsigned char *)buf;
        end = b + len;
        hmax = lim->max_header_bytes < INT_MAX ? lim->max_header_bytes : INT_MAX;
        e = b + (len < hmax ? len : hmax);
        cap = req->headers_cap < lim->max_headers ? req->headers_cap : lim->max_headers;
        p = b + st->pos;
        line = b + st->line;
        mark = b + st->mark;

        switch (st->phase) {
        case PH_START:
                break;
        case PH_METHOD:
                rl_e = rl_bound(line, e, lim->max_request_line);
                goto method;
        case PH_TARGET:
                rl_e = rl_bound(line, e, lim->max_request_line);
                goto target;
        case PH_VERSION:
                rl_e = rl_bound(line, e, lim->max_request_line);
                goto version;
        case PH_LINE:
                goto field_line;
        case PH_NAME:
                goto name;
        case PH_OWS:
                goto ows;
        default:
                goto value;
        }

        /* RFC 9112 §2.2: ignore at least one empty line before the request line */
        for (;;) {
                line = mark = p;
                if (p == e)
                        NEED(PH_START, p, p);
                if (*p == '\r') {
                        if (p + 1 == e)
                                NEED(PH_START, p, p + 1);
                        if (p[1] != '\n')
                                return fail(req, HTTP_E_BAD_REQUEST);
                        q = p + 2;
                } else if (*p == '\n') {
                        q = p + 1;
                } else {
                        break;
                }
                if (st->empty_lines == HTTP_MAX_EMPTY_LINES)
                        return fail(req, HTTP_E_BAD_REQUEST);
                st->empty_lines++;
                p = q;
        }
        rl_e = rl_bound(line, e, lim->max_request_line);

method:
        p = scan_tchar(p, rl_e);
        /* RFC 9112 §3: a method longer than any we implement is 501, whichever bound it hit */
        if (p == rl_e)
                NEED_OR(PH_METHOD, p, p, HTTP_E_NOT_IMPLEMENTED);
        if (*p != ' ' || p == line)
                return fail(req, HTTP_E_BAD_REQUEST);
        req->method = (const char *)line;
        req->method_len = (size_t)(p - line);
        req->method_id = method_lookup(line, req->method_len);
        mark = ++p;

target:
        p = scan_target(p, rl_e);
        if (p == rl_e)
                RL_NEED(PH_TARGET, p, p);
        if (*p != ' ' || p == mark)
                return fail(req, HTTP_E_BAD_REQUEST);
        r = parse_target(req, mark, (size_t)(p - mark));
        if (r < 0)
                return fail(req, r);
        mark = ++p;

version:
        /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive; checked byte by byte so
           "HTXP" fails at once while "HTTP/2" still waits to tell 505 from 400 */
        for (p = mark; p - mark < 8; p++) {
                if (p == rl_e)
                        RL_NEED(PH_VERSION, mark, p);
                if ((p - mark == 5 || p - mark == 7) ? !IS_DIGIT(*p) : *p != "HTTP/x.x"[p - mark])
                        return fail(req, HTTP_E_BAD_REQUEST);
        }
        if (p == e)
                NEED(PH_VERSION, mark, p);
        if (*p == '\r') {
                if (p + 1 == e)
                        NEED(PH_VERSION, mark, p + 1);
                if (p[1] != '\n')
                        return fail(req, HTTP_E_BAD_REQUEST);
                p += 2;
        } else if (*p == '\n') {
                p++;
        } else {
                return fail(req, HTTP_E_BAD_REQUEST);
        }
        if (mark[5] != '1' || mark[7] > '1')
                return fail(req, HTTP_E_VERSION);
        req->version_minor = mark[7] - '0';

        for (;;) {
                line = mark = p;
        field_line:
                if (p == e)
                        NEED(PH_LINE, p, p);
                if (*p == '\r') {
                        if (p + 1 == e)
                                NEED(PH_LINE, p, p + 1);
                        if (p[1] != '\n')
                                return fail(req, HTTP_E_BAD_REQUEST);
                        p += 2;
                        break;
                }
                if (*p == '\n') {
                        p++;
                        break;
                }
                /* a line starting with SP/HTAB (obs-fold, RFC 9112 §5.2) ends up here as an
                   empty name and is refused below */
                if (req->num_headers >= cap)
                        return fail(req, HTTP_E_HEADERS_TOO_LARGE);
        name:
                p = scan_tchar(p, e);
                if (p == e)
                        NEED(PH_NAME, p, p);
                /* no whitespace between name and colon (RFC 9112 §5.1) */
                if (*p != ':' || p == line)
                        return fail(req, HTTP_E_BAD_REQUEST);
                h = &req->headers[req->num_headers];
                h->name = (const char *)line;
                h->name_len = (size_t)(p - line);
                p++;
        ows:
                while (p < e && (*p == ' ' || *p == '\t'))
                        p++;
                if (p == e)
                        NEED(PH_OWS, p, p);
                mark = p;
        value:
                p = scan_field(p, e);
                if (p == e)
                        NEED(PH_VALUE, p, p);
                q = p;
                if (*p == '\r') {
                        if (p + 1 == e)
                                NEED(PH_VALUE, p, p + 1);
                        if (p[1] != '\n')
                                return fail(req, HTTP_E_BAD_REQUEST); /* bare CR */
                        p += 2;
                } else if (*p == '\n') {
                        p++;
                } else {
                        return fail(req, HTTP_E_BAD_REQUEST); /* NUL, CTL, DEL */
                }
                while (q > mark && (q[-1] == ' ' || q[-1] == '\t'))
                        q--;
                h = &req->headers[req->num_headers++];
                h->value = (const char *)mark;
                h->value_len = (size_t)(q - mark);
                r = on_header(req, h);
                if (r < 0)
                        return fail(req, r);
        }

        r = finish_head(req, lim);
        if (r < 0)
                return fail(req, r);
        st->phase = PH_FRESH;
        return (int)(p - b);
}

int http_parse_overflow(const struct http_request *req)
{
        switch (req->state.phase) {
        case PH_METHOD:
                return HTTP_E_NOT_IMPLEMENTED;
        case PH_TARGET:
        case PH_VERSION:
                return HTTP_E_URI_TOO_LONG;
        default:
                return HTTP_E_HEADERS_TOO_LARGE;
        }
}

const struct http_header *http_header_next(const struct http_request *req, const char *name,
                                           const struct http_header *prev)
{
        size_t n = strlen(name);
        size_t i = prev ? (size_t)(prev - req->headers) + 1 : 0;

        for (; i < req->num_headers; i++) {
                const struct http_header *h = &req->headers[i];
                if (h->name_len != n)
                        continue;
                size_t k = 0;
                while (k < n && lower[(unsigned char)h->name[k]] == lower[(unsigned char)name[k]])
                        k++;
                if (k == n)
                        return h;
        }
        return NULL;
}

const struct http_header *http_header_find(const struct http_request *req, const char *name)
{
        return http_header_next(req, name, NULL);
}

/* ------------------------------------------------------------------------ */
/* Chunked body decoder                                                       */
/* ------------------------------------------------------------------------ */

enum {
        CH_SIZE_START = 0, /* first hex digit of a chunk-size */
        CH_SIZE,
        CH_SEMI_WS,     /* BWS that must lead to ';' */
        CH_EXT_NAME_WS, /* after ';': BWS, then a name */
        CH_EXT_NAME,
        CH_EXT_EQ_WS,    /* BWS after a name: '=' or ';' */
        CH_EXT_VALUE_WS, /* after '=': BWS, then a token or a quoted-string */
        CH_EXT_TOKEN,
        CH_EXT_QUOTED,
        CH_EXT_ESCAPE,
        CH_EXT_QEND, /* after the closing quote */
        CH_SIZE_LF,  /* CR seen at the end of the size line */
        CH_DATA,
        CH_DATA_END, /* CRLF or LF after the data */
        CH_DATA_LF,
        CH_TR_START, /* start of a trailer line or of the final empty line */
        CH_TR_NAME,
        CH_TR_VALUE,
        CH_TR_LF,
        CH_END_LF,
        CH_DONE,
};

void http_chunked_init(struct http_chunked *dec, const struct http_limits *lim)
{
        if (!lim)
                lim = &http_limits_default;
        memset(dec, 0, sizeof(*dec));
        dec->max_body = lim->max_body;
        dec->max_trailer_len = lim->max_header_bytes;
        dec->max_trailers = lim->max_headers;
        dec->state = CH_SIZE_START;
}

int http_chunked_done(const struct http_chunked *dec)
{
        return dec->state == CH_DONE;
}

/* End of a chunk-size line: data follows, or the trailer section after the last chunk. */
static void end_size_line(struct http_chunked *dec)
{
        dec->state = dec->remaining ? CH_DATA : CH_TR_START;
}

/*
 * One byte of a chunk-size line. Returns 0 or a negative status.
 */
static int size_line_byte(struct http_chunked *dec, unsigned char c)
{
        int ws = c == ' ' || c == '\t';
        int tchar = ctab[c] & C_TCHAR;

        if (++dec->line_len > HTTP_CHUNK_LINE_MAX)
                return HTTP_E_BAD_REQUEST;
        switch (dec->state) {
        case CH_SIZE_START:
        case CH_SIZE:
                if (ctab[c] & C_HEX) {
                        unsigned d = IS_DIGIT(c) ? c - '0' : (c | 0x20) - 'a' + 10;
                        if (dec->remaining > ((uint64_t)INT64_MAX - d) / 16)
                                return HTTP_E_BAD_REQUEST;
                        dec->remaining = dec->remaining * 16 + d;
                        /* fail while the size is read: no need to wait for the data */
                        if (dec->remaining > dec->max_body - dec->body_len)
                                return HTTP_E_PAYLOAD_TOO_LARGE;
                        dec->state = CH_SIZE;
                        return 0;
                }
                if (dec->state == CH_SIZE_START)
                        return HTTP_E_BAD_REQUEST;
                break;
        case CH_SEMI_WS:
                if (ws)
                        return 0;
                if (c == ';') {
                        dec->state = CH_EXT_NAME_WS;
                        return 0;
                }
                return HTTP_E_BAD_REQUEST;
        case CH_EXT_NAME_WS:
                if (ws)
                        return 0;
                if (!tchar)
                        return HTTP_E_BAD_REQUEST;
                dec->state = CH_EXT_NAME;
                return 0;
        case CH_EXT_NAME:
                if (tchar)
                        return 0;
                if (c == '=') {
                        dec->state = CH_EXT_VALUE_WS;
                        return 0;
                }
                if (ws) {
                        dec->state = CH_EXT_EQ_WS;
                        return 0;
                }
                break;
        case CH_EXT_EQ_WS:
                if (ws)
                        return 0;
                if (c == '=') {
                        dec->state = CH_EXT_VALUE_WS;
                        return 0;
                }
                if (c == ';') {
                        dec->state = CH_EXT_NAME_WS;
                        return 0;
                }
                return HTTP_E_BAD_REQUEST;
        case CH_EXT_VALUE_WS:
                if (ws)
                        return 0;
                if (c == '"')
                        dec->state = CH_EXT_QUOTED;
                else if (tchar)
                        dec->state = CH_EXT_TOKEN;
                else
                        return HTTP_E_BAD_REQUEST;
                return 0;
        case CH_EXT_TOKEN:
                if (tchar)
                        return 0;
                break;
        case CH_EXT_QUOTED:
                if (c == '"')
                        dec->state = CH_EXT_QEND;
                else if (c == '\\')
                        dec->state = CH_EXT_ESCAPE;
                else if (!(ctab[c] & C_QDTEXT))
                        return HTTP_E_BAD_REQUEST;
                return 0;
        case CH_EXT_ESCAPE:
                /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
                if (!(ctab[c] & C_FIELD))
                        return HTTP_E_BAD_REQUEST;
                dec->state = CH_EXT_QUOTED;
                return 0;
        case CH_EXT_QEND:
                break;
        case CH_SIZE_LF:
                if (c != '\n')
                        return HTTP_E_BAD_REQUEST;
                end_size_line(dec);
                return 0;
        }
        /* after a size, an extension name or value: ';', BWS or the line end */
        if (c == ';') {
                dec->state = CH_EXT_NAME_WS;
        } else if (ws) {
                dec->state = dec->state == CH_EXT_NAME ? CH_EXT_EQ_WS : CH_SEMI_WS;
        } else if (c == '\r') {
                dec->state = CH_SIZE_LF;
        } else if (c == '\n') {
                end_size_line(dec);
        } else {
                return HTTP_E_BAD_REQUEST;
        }
        return 0;
}

/* One byte of the trailer section, checked like a header field line. */
static int trailer_byte(struct http_chunked *dec, unsigned char c)
{
        if (++dec->trailer_len > dec->max_trailer_len)
                return HTTP_E_HEADERS_TOO_LARGE;
        switch (dec->state) {
        case CH_TR_START:
                if (c == '\r') {
                        dec->state = CH_END_LF;
                } else if (c == '\n') {
                        dec->state = CH_DONE;
                } else if (ctab[c] & C_TCHAR) {
                        if (dec->trailers++ == dec->max_trailers)
                                return HTTP_E_HEADERS_TOO_LARGE;
                        dec->state = CH_TR_NAME;
                } else {
                        return HTTP_E_BAD_REQUEST; /* obs-fold, empty name, CTL */
                }
                return 0;
        case CH_TR_NAME:
                if (c == ':')
                        dec->state = CH_TR_VALUE;
                else if (!(ctab[c] & C_TCHAR))
                        return HTTP_E_BAD_REQUEST;
                return 0;
        case CH_TR_VALUE:
                if (c == '\r')
                        dec->state = CH_TR_LF;
                else if (c == '\n')
                        dec->state = CH_TR_START;
                else if (!(ctab[c] & C_FIELD))
                        return HTTP_E_BAD_REQUEST;
                return 0;
        case CH_TR_LF:
                if (c != '\n')
                        return HTTP_E_BAD_REQUEST;
                dec->state = CH_TR_START;
                return 0;
        default: /* CH_END_LF */
                if (c != '\n')
                        return HTTP_E_BAD_REQUEST;
                dec->state = CH_DONE;
                return 0;
        }
}

ssize_t http_chunked_decode(struct http_chunked *dec, char *buf, size_t *len)
{
        size_t n = *len, src = 0, dst = 0;
        int r = 0;

        if (dec->error) {
                *len = 0;
                return dec->error;
        }
        if (dec->state == CH_DONE) {
                *len = 0;
                return (ssize_t)n;
        }
        while (src < n) {
                unsigned char c;

                switch (dec->state) {
                case CH_DATA: {
                        size_t k = n - src;
                        if (dec->remaining < k)
                                k = (size_t)dec->remaining;
                        if (dst != src)
                                memmove(buf + dst, buf + src, k);
                        dst += k;
                        src += k;
                        dec->remaining -= k;
                        dec->body_len += k;
                        if (dec->remaining == 0)
                                dec->state = CH_DATA_END;
                        continue;
                }
                case CH_DATA_END:
                case CH_DATA_LF:
                        c = (unsigned char)buf[src++];
                        if (c == '\n') {
                                dec->state = CH_SIZE_START;
                                dec->line_len = 0;
                        } else if (c == '\r' && dec->state == CH_DATA_END) {
                                dec->state = CH_DATA_LF;
                        } else {
                                r = HTTP_E_BAD_REQUEST;
                        }
                        break;
                case CH_TR_START:
                case CH_TR_NAME:
                case CH_TR_VALUE:
                case CH_TR_LF:
                case CH_END_LF:
                        r = trailer_byte(dec, (unsigned char)buf[src++]);
                        break;
                default:
                        r = size_line_byte(dec, (unsigned char)buf[src++]);
                        break;
                }
                if (r < 0) {
                        dec->error = r;
                        *len = 0;
                        return r;
                }
                if (dec->state == CH_DONE) {
                        size_t rest = n - src;
                        if (rest && dst != src)
                                memmove(buf + dst, buf + src, rest);
                        *len = dst;
                        return (ssize_t)rest;
                }
        }
        *len = dst;
        return HTTP_INCOMPLETE;
}

/* ------------------------------------------------------------------------ */
/* Status reasons                                                             */
/* ------------------------------------------------------------------------ */

const char *http_status_reason(int status)
{
        if (status < 0)
                status = -status;
        /* one line per code reads as the table it is */
        /* clang-format off */
        switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 203: return "Non-Authoritative Information";
        case 204: return "No Content";
        case 205: return "Reset Content";
        case 206: return "Partial Content";
        case 300: return "Multiple Choices";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 406: return "Not Acceptable";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 411: return "Length Required";
        case 412: return "Precondition Failed";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 416: return "Range Not Satisfiable";
        case 417: return "Expectation Failed";
        case 421: return "Misdirected Request";
        case 422: return "Unprocessable Content";
        case 426: return "Upgrade Required";
        case 428: return "Precondition Required";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        }
        /* clang-format on */
        return "";
}

/*
 * Check suite of the HTTP/1.1 request parser (services/http11/http_parser.c):
 * tables of valid and invalid requests, from RFC 9112's examples and from the
 * known request smuggling classes, each with the result it must give; every
 * case fed whole, byte by byte and resumed, which must agree; pipelining,
 * limits, derived framing fields, and the chunked body decoder fed whole and
 * in pieces.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

#define NHDR 64

struct req_case {
        const char *name;
        const char *buf;
        size_t len;
        int expect; /* 0: valid, the whole input is the head; else the error returned */
};

/* clang-format off */
#define OK(n, s) {n, s, sizeof(s) - 1, 0}
#define BAD(n, s, st) {n, s, sizeof(s) - 1, st}
/* clang-format on */

#define H11 " HTTP/1.1\r\nHost: example.com\r\n"

static const struct req_case valid_cases[] = {
        OK("minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        OK("rfc9112 2.1 example", "GET /hello.txt HTTP/1.1\r\n"
                                  "User-Agent: curl/7.64.1\r\n"
                                  "Host: www.example.com\r\n"
                                  "Accept-Language: en, mi\r\n\r\n"),
        OK("rfc9112 3.2.1 origin-form",
           "GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n"),
        OK("rfc9112 3.2.2 absolute-form",
           "GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\n"
           "Host: www.example.org\r\n\r\n"),
        OK("rfc9112 3.2.3 authority-form",
           "CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com:80\r\n\r\n"),
        OK("rfc9112 3.2.4 asterisk-form",
           "OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n"),
        OK("absolute-form https, no path", "GET HTTPS://a.example?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
        OK("absolute-form ipv6", "GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        OK("connect ipv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"),
        OK("http/1.0 without host", "GET / HTTP/1.0\r\n\r\n"),
        OK("http/1.0 with host", "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"),
        OK("lf-only line ends", "GET / HTTP/1.1\nHost: a\nX: y\n\n"),
        OK("mixed line ends", "GET / HTTP/1.1\r\nHost: a\n\r\n"),
        OK("leading empty lines", "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        OK("content-length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
        OK("content-length space padded",
           "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \t\r\n\r\n"),
        OK("content-length leading zeros",
           "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"),
        OK("content-length zero", "POST /x HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n"),
        OK("chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        OK("chunked after htab",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n"),
        OK("chunked mixed case",
           "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: ChUnKeD\r\n\r\n"),
        OK("chunked empty list elements",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked ,\r\n\r\n"),
        OK("not transfer-encoding (underscore)",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        OK("field name tchars", "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"),
        OK("obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n"),
        OK("empty value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \r\n\r\n"),
        OK("empty host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        OK("extension method", "PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n"),
        OK("lowercase method is a token", "get / HTTP/1.1\r\nHost: a\r\n\r\n"),
        OK("browser query characters", "GET /a?b=[1]&c={x}|^\"<>\\` HTTP/1.1\r\nHost: a\r\n\r\n"),
        OK("expect 100-continue",
           "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n"),
        OK("connection list", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, close\r\n\r\n"),
        OK("host with port and pct", "GET / HTTP/1.1\r\nHost: xn--n3h.example%41:65535\r\n\r\n"),
        OK("long value", "GET / HTTP/1.1\r\nHost: a\r\nCookie: "
                         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                         "0123456789abcdef\t0123456789abcdef0123456789abcdef0123456789ab\r\n\r\n"),
};

static const struct req_case invalid_cases[] = {
        /* request line */
        BAD("double space", "GET  /" H11 "\r\n", -400),
        BAD("space before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", -400),
        BAD("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400),
        BAD("htab separator", "GET\t/" H11 "\r\n", -400),
        BAD("leading space", " GET /" H11 "\r\n", -400),
        BAD("bad method char", "G(T /" H11 "\r\n", -400),
        BAD("method with NUL", "GE\0T /" H11 "\r\n", -400),
        BAD("space in target", "GET /a b" H11 "\r\n", -400),
        BAD("ctl in target", "GET /a\x01" H11 "\r\n", -400),
        BAD("del in target", "GET /a\x7f" H11 "\r\n", -400),
        BAD("fragment in target", "GET /a#f" H11 "\r\n", -400),
        BAD("non-ascii target", "GET /caf\xc3\xa9" H11 "\r\n", -400),
        BAD("relative target", "GET a/b" H11 "\r\n", -400),
        BAD("asterisk not options", "GET *" H11 "\r\n", -400),
        BAD("asterisk plus", "OPTIONS *x" H11 "\r\n", -400),
        BAD("connect origin-form", "CONNECT /" H11 "\r\n", -400),
        BAD("connect without port", "CONNECT example.com" H11 "\r\n", -400),
        BAD("connect empty port", "CONNECT example.com:" H11 "\r\n", -400),
        BAD("authority-form not connect", "GET example.com:80" H11 "\r\n", -400),
        BAD("absolute-form ftp", "GET ftp://a/" H11 "\r\n", -400),
        BAD("absolute-form empty host", "GET http:///x" H11 "\r\n", -400),
        BAD("absolute-form userinfo", "GET http://user@a/" H11 "\r\n", -400),
        BAD("absolute-form bad port", "GET http://a:65536/" H11 "\r\n", -400),
        BAD("http/0.9 request", "GET /\r\n\r\n", -400),
        BAD("version two digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", -400),
        BAD("version no dot", "GET / HTTP/11\r\nHost: a\r\n\r\n", -400),
        BAD("version lowercase", "GET / http/1.1\r\nHost: a\r\n\r\n", -400),
        BAD("version HTXP", "GET / HTXP/1.1\r\nHost: a\r\n\r\n", -400),
        BAD("version letter", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", -400),
        BAD("version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505),
        BAD("version 0.9", "GET / HTTP/0.9\r\n\r\n", -505),
        BAD("version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", -505),
        BAD("version 3.0 before bad field", "GET / HTTP/3.0\r\nBad Field: a\r\n\r\n", -505),
        BAD("bare CR after version", "GET / HTTP/1.1\rHost: a\r\n\r\n", -400),
        BAD("too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400),
        BAD("bare CR empty line", "\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", -400),
        /* field lines */
        BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400),
        BAD("htab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400),
        BAD("space before colon, plain field", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo : bar\r\n\r\n",
            -400),
        BAD("htab before colon, plain field", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo\t:bar\r\n\r\n",
            -400),
        BAD("space before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", -400),
        BAD("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", -400),
        BAD("obs-fold htab", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", -400),
        BAD("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", -400),
        BAD("bare CR ends value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", -400),
        BAD("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", -400),
        BAD("CTL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", -400),
        BAD("VT in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x0b\r\n\r\n", -400),
        BAD("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", -400),
        BAD("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", -400),
        BAD("no colon", "GET / HTTP/1.1\r\nHost: a\r\nX-Foo\r\n\r\n", -400),
        BAD("bad name char", "GET / HTTP/1.1\r\nHost: a\r\nX(: v\r\n\r\n", -400),
        BAD("non-ascii name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: v\r\n\r\n", -400),
        BAD("bare CR final line", "GET / HTTP/1.1\r\nHost: a\r\n\rX", -400),
        /* Host */
        BAD("missing host", "GET / HTTP/1.1\r\n\r\n", -400),
        BAD("missing host absolute-form", "GET http://a/ HTTP/1.1\r\n\r\n", -400),
        BAD("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400),
        BAD("two hosts 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", -400),
        BAD("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400),
        BAD("host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400),
        BAD("host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -400),
        BAD("host bad port", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", -400),
        BAD("host bad pct", "GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", -400),
        BAD("host bad ipv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -400),
        /* Content-Length */
        BAD("CL repeated equal", "POST /" H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
            -400),
        BAD("CL repeated differ", "POST /" H11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
            -400),
        BAD("CL list", "POST /" H11 "Content-Length: 5, 5\r\n\r\n", -400),
        BAD("CL negative", "POST /" H11 "Content-Length: -1\r\n\r\n", -400),
        BAD("CL plus", "POST /" H11 "Content-Length: +5\r\n\r\n", -400),
        BAD("CL inner space", "POST /" H11 "Content-Length: 1 0\r\n\r\n", -400),
        BAD("CL hex", "POST /" H11 "Content-Length: 0x5\r\n\r\n", -400),
        BAD("CL empty", "POST /" H11 "Content-Length:\r\n\r\n", -400),
        BAD("CL overflow", "POST /" H11 "Content-Length: 9223372036854775808\r\n\r\n", -400),
        BAD("CL overflow long", "POST /" H11 "Content-Length: 99999999999999999999\r\n\r\n", -400),
        BAD("CL over body limit", "POST /" H11 "Content-Length: 1048577\r\n\r\n", -413),
        BAD("CL int64 max", "POST /" H11 "Content-Length: 9223372036854775807\r\n\r\n", -413),
        /* smuggling: CL.TE, TE.CL, TE.TE */
        BAD("CL.TE", "POST /" H11 "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
        BAD("TE.CL", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", -400),
        BAD("TE.CL zero", "POST /" H11 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            -400),
        BAD("TE xchunked", "POST /" H11 "Transfer-Encoding: xchunked\r\n\r\n", -400),
        BAD("TE chunked, identity", "POST /" H11 "Transfer-Encoding: chunked, identity\r\n\r\n",
            -400),
        BAD("TE identity", "POST /" H11 "Transfer-Encoding: identity\r\n\r\n", -400),
        BAD("TE gzip", "POST /" H11 "Transfer-Encoding: gzip\r\n\r\n", -400),
        BAD("TE gzip, chunked", "POST /" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", -501),
        BAD("TE chunked twice", "POST /" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", -400),
        BAD("TE duplicate fields",
            "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
        BAD("TE chunked then gzip field",
            "POST /" H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", -400),
        BAD("TE gzip then chunked field",
            "POST /" H11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", -501),
        BAD("TE space before colon", "POST /" H11 "Transfer-Encoding : chunked\r\n\r\n", -400),
        BAD("TE obs-fold", "POST /" H11 "Transfer-Encoding:\r\n\tchunked\r\n\r\n", -400),
        BAD("TE obs-fold after", "POST /" H11 "Transfer-Encoding: chunked\r\n , identity\r\n\r\n",
            -400),
        BAD("TE quoted", "POST /" H11 "Transfer-Encoding: \"chunked\"\r\n\r\n", -400),
        BAD("TE parameter", "POST /" H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", -400),
        BAD("TE vertical tab", "POST /" H11 "Transfer-Encoding: chunked\x0b\r\n\r\n", -400),
        BAD("TE split word", "POST /" H11 "Transfer-Encoding: chu nked\r\n\r\n", -400),
        BAD("TE empty", "POST /" H11 "Transfer-Encoding:\r\n\r\n", -400),
        BAD("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
        BAD("TE in HTTP/1.0 with CL",
            "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -400),
        BAD("TE bare CR", "POST /" H11 "Transfer-Encoding: chunked\r\r\n\r\n", -400),
        /* other fields */
        BAD("expect unknown", "PUT /" H11 "Expect: 100-continue, x\r\n\r\n", -417),
        BAD("expect parameter", "PUT /" H11 "Expect: foo=bar\r\n\r\n", -417),
        BAD("connection not tokens", "GET /" H11 "Connection: close, foo bar\r\n\r\n", -400),
};

#define NVALID (sizeof(valid_cases) / sizeof(valid_cases[0]))
#define NINVALID (sizeof(invalid_cases) / sizeof(invalid_cases[0]))

/* A copy in a buffer of its exact size, so a sanitizer sees reads past the end. */
static char *dup_buf(const char *s, size_t n)
{
        char *p = malloc(n ? n : 1);
        ck_assert_ptr_nonnull(p);
        memcpy(p, s, n);
        return p;
}

static int parse_fresh(const char *buf, size_t len, struct http_request *req, struct http_header *h,
                       const struct http_limits *lim)
{
        http_request_init(req, h, NHDR);
        return http_parse_request(buf, len, req, lim);
}

/* Every public field equal; pointers too, both requests were parsed from one buffer. */
static void assert_same_request(const char *what, const struct http_request *a,
                                const struct http_request *b)
{
        ck_assert_msg(a->method == b->method && a->method_len == b->method_len &&
                              a->method_id == b->method_id,
                      "%s: method differs", what);
        ck_assert_msg(a->target == b->target && a->target_len == b->target_len &&
                              a->target_form == b->target_form,
                      "%s: target differs", what);
        ck_assert_msg(a->path == b->path && a->path_len == b->path_len && a->query == b->query &&
                              a->query_len == b->query_len,
                      "%s: path or query differs", what);
        ck_assert_msg(a->authority == b->authority && a->authority_len == b->authority_len,
                      "%s: authority differs", what);
        ck_assert_msg(a->version_minor == b->version_minor, "%s: version differs", what);
        ck_assert_msg(a->num_headers == b->num_headers, "%s: header count differs", what);
        for (size_t i = 0; i < a->num_headers; i++) {
                const struct http_header *x = &a->headers[i], *y = &b->headers[i];
                ck_assert_msg(x->name == y->name && x->name_len == y->name_len &&
                                      x->value == y->value && x->value_len == y->value_len,
                              "%s: header %zu differs", what, i);
        }
        ck_assert_msg(a->content_length == b->content_length && a->chunked == b->chunked &&
                              a->keep_alive == b->keep_alive &&
                              a->expect_continue == b->expect_continue &&
                              a->has_host == b->has_host && a->host == b->host &&
                              a->host_len == b->host_len,
                      "%s: framing differs", what);
}

/*
 * Feeds c byte by byte twice: with a fresh request for each prefix (a full
 * reparse), and with one request resumed across calls. Each prefix must give
 * HTTP_INCOMPLETE or the final result, and both runs must agree with the
 * whole parse.
 */
static void check_incremental(const struct req_case *c)
{
        struct http_header hw[NHDR], hf[NHDR], hr[NHDR];
        struct http_request whole, fresh, resumed;
        char *buf = dup_buf(c->buf, c->len);
        int want = c->expect ? c->expect : (int)c->len;
        int r = parse_fresh(buf, c->len, &whole, hw, NULL);

        ck_assert_msg(r == want, "%s: whole parse gave %d, want %d", c->name, r, want);

        int seen_error = 0;
        for (size_t k = 0; k <= c->len; k++) {
                r = parse_fresh(buf, k, &fresh, hf, NULL);
                if (r == HTTP_INCOMPLETE) {
                        ck_assert_msg(!seen_error, "%s: prefix %zu incomplete after an error",
                                      c->name, k);
                        continue;
                }
                ck_assert_msg(r == want, "%s: prefix %zu gave %d, want %d", c->name, k, r, want);
                if (want >= 0)
                        ck_assert_msg(k == c->len, "%s: complete at prefix %zu", c->name, k);
                seen_error = 1;
        }
        if (want >= 0)
                assert_same_request(c->name, &whole, &fresh);

        http_request_init(&resumed, hr, NHDR);
        r = HTTP_INCOMPLETE;
        size_t k;
        for (k = 1; k <= c->len && r == HTTP_INCOMPLETE; k++)
                r = http_parse_request(buf, k, &resumed, NULL);
        ck_assert_msg(r == want, "%s: resumed parse gave %d, want %d", c->name, r, want);
        if (want >= 0) {
                ck_assert_msg(k - 1 == c->len, "%s: resumed parse ended early", c->name);
                assert_same_request(c->name, &whole, &resumed);
        }
        free(buf);
}

START_TEST(test_valid)
{
        check_incremental(&valid_cases[_i]);
}
END_TEST

START_TEST(test_invalid)
{
        check_incremental(&invalid_cases[_i]);
}
END_TEST

/* The same cases split in three pieces at every pair of points, resuming. */
START_TEST(test_split_points)
{
        const struct req_case *c = &valid_cases[_i];
        struct http_header h[NHDR];
        struct http_request req;
        char *buf = dup_buf(c->buf, c->len);

        for (size_t a = 0; a <= c->len; a++) {
                for (size_t b = a; b <= c->len; b += 7) {
                        http_request_init(&req, h, NHDR);
                        ck_assert_int_eq(http_parse_request(buf, a, &req, NULL),
                                         a == c->len ? (int)c->len : HTTP_INCOMPLETE);
                        if (a == c->len)
                                continue;
                        ck_assert_int_eq(http_parse_request(buf, b, &req, NULL),
                                         b == c->len ? (int)c->len : HTTP_INCOMPLETE);
                        if (b < c->len)
                                ck_assert_int_eq(http_parse_request(buf, c->len, &req, NULL),
                                                 (int)c->len);
                }
        }
        free(buf);
}
END_TEST

/* ------------------------------------------------------------------------ */

static int parse_str(const char *s, struct http_request *req, struct http_header *h)
{
        return parse_fresh(s, strlen(s), req, h, NULL);
}

static int span_eq(const char *p, size_t n, const char *want)
{
        return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

START_TEST(test_request_line_fields)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "POST /a/b?x=1&y HTTP/1.0\r\n\r\n";

        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert(span_eq(req.method, req.method_len, "POST"));
        ck_assert_int_eq(req.method_id, HTTP_METHOD_POST);
        ck_assert(span_eq(req.target, req.target_len, "/a/b?x=1&y"));
        ck_assert_int_eq(req.target_form, HTTP_TARGET_ORIGIN);
        ck_assert(span_eq(req.path, req.path_len, "/a/b"));
        ck_assert(span_eq(req.query, req.query_len, "x=1&y"));
        ck_assert_ptr_null(req.authority);
        ck_assert_int_eq(req.version_minor, 0);
        ck_assert_int_eq(req.num_headers, 0);
        ck_assert_int_eq(req.content_length, -1);
        ck_assert(!req.chunked && !req.keep_alive && !req.has_host);

        s = "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert(span_eq(req.path, req.path_len, "/p"));
        ck_assert(span_eq(req.query, req.query_len, ""));

        s = "GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_ptr_null(req.query);
        ck_assert_int_eq(req.version_minor, 1);
}
END_TEST

START_TEST(test_target_forms)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "GET http://Example.com:8080/x/y?q HTTP/1.1\r\nHost: other\r\n\r\n";

        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_int_eq(req.target_form, HTTP_TARGET_ABSOLUTE);
        ck_assert(span_eq(req.authority, req.authority_len, "Example.com:8080"));
        ck_assert(span_eq(req.path, req.path_len, "/x/y"));
        ck_assert(span_eq(req.query, req.query_len, "q"));
        ck_assert(span_eq(req.host, req.host_len, "other"));

        s = "GET https://a.example?x HTTP/1.1\r\nHost: a.example\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert(span_eq(req.authority, req.authority_len, "a.example"));
        ck_assert(span_eq(req.path, req.path_len, "/"));
        ck_assert(span_eq(req.query, req.query_len, "x"));

        s = "CONNECT proxy.example:443 HTTP/1.1\r\nHost: proxy.example:443\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_int_eq(req.method_id, HTTP_METHOD_CONNECT);
        ck_assert_int_eq(req.target_form, HTTP_TARGET_AUTHORITY);
        ck_assert(span_eq(req.authority, req.authority_len, "proxy.example:443"));
        ck_assert_ptr_null(req.path);

        s = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_int_eq(req.method_id, HTTP_METHOD_OPTIONS);
        ck_assert_int_eq(req.target_form, HTTP_TARGET_ASTERISK);
        ck_assert(span_eq(req.path, req.path_len, "*"));
}
END_TEST

START_TEST(test_method_ids)
{
        static const struct {
                const char *m;
                enum http_method id;
        } t[] = {
                {"GET", HTTP_METHOD_GET},        {"HEAD", HTTP_METHOD_HEAD},
                {"POST", HTTP_METHOD_POST},      {"PUT", HTTP_METHOD_PUT},
                {"DELETE", HTTP_METHOD_DELETE},  {"OPTIONS", HTTP_METHOD_OPTIONS},
                {"TRACE", HTTP_METHOD_TRACE},    {"PATCH", HTTP_METHOD_PATCH},
                {"get", HTTP_METHOD_OTHER},      {"GETS", HTTP_METHOD_OTHER},
                {"M-SEARCH", HTTP_METHOD_OTHER},
        };
        struct http_header h[NHDR];
        struct http_request req;
        char s[128];

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                snprintf(s, sizeof(s), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", t[i].m);
                ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
                ck_assert_msg(req.method_id == t[i].id, "%s", t[i].m);
                ck_assert(span_eq(req.method, req.method_len, t[i].m));
        }
}
END_TEST

START_TEST(test_headers)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "GET / HTTP/1.1\r\n"
                        "Host:  example.com \r\n"
                        "Accept: \t text/html\t \r\n"
                        "X-Dup: one\r\n"
                        "x-dup: two\n"
                        "X-Empty:\r\n"
                        "\r\n";

        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_int_eq(req.num_headers, 5);
        ck_assert(span_eq(h[0].name, h[0].name_len, "Host"));
        ck_assert(span_eq(h[0].value, h[0].value_len, "example.com"));
        ck_assert(span_eq(h[1].value, h[1].value_len, "text/html"));
        ck_assert(span_eq(h[4].value, h[4].value_len, ""));
        ck_assert(req.has_host);
        ck_assert(span_eq(req.host, req.host_len, "example.com"));

        ck_assert_ptr_eq(http_header_find(&req, "host"), &h[0]);
        ck_assert_ptr_eq(http_header_find(&req, "ACCEPT"), &h[1]);
        ck_assert_ptr_null(http_header_find(&req, "accep"));
        ck_assert_ptr_null(http_header_find(&req, "cookie"));

        const struct http_header *d = http_header_next(&req, "X-DUP", NULL);
        ck_assert_ptr_eq(d, &h[2]);
        d = http_header_next(&req, "X-DUP", d);
        ck_assert_ptr_eq(d, &h[3]);
        ck_assert(span_eq(d->value, d->value_len, "two"));
        ck_assert_ptr_null(http_header_next(&req, "X-DUP", d));
}
END_TEST

START_TEST(test_keep_alive)
{
        static const struct {
                const char *s;
                int keep_alive;
        } t[] = {
                {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1},
                {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0},
                {"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", 0},
                {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n", 0},
                {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nConnection: close\r\n\r\n",
                 0},
                {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", 1},
                {"GET / HTTP/1.1\r\nHost: a\r\nX-Connection: close\r\n\r\n", 1},
                {"GET / HTTP/1.0\r\n\r\n", 0},
                {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
                {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
                {"GET / HTTP/1.0\r\nConnection: keep-alive,close\r\n\r\n", 0},
        };
        struct http_header h[NHDR];
        struct http_request req;

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                ck_assert_int_eq(parse_str(t[i].s, &req, h), (int)strlen(t[i].s));
                ck_assert_msg(req.keep_alive == t[i].keep_alive, "case %zu", i);
        }
}
END_TEST

START_TEST(test_framing_fields)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n"
                        "Expect: 100-continue\r\n\r\n";

        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_int_eq(req.content_length, 42);
        ck_assert(!req.chunked);
        ck_assert(req.expect_continue);

        s = "PUT /f HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert(!req.expect_continue); /* ignored in HTTP/1.0 */

        s = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert(req.chunked);
        ck_assert_int_eq(req.content_length, -1);

        /* exactly max_body is allowed */
        s = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n";
        ck_assert_int_eq(parse_str(s, &req, h), (int)strlen(s));
        ck_assert_int_eq(req.content_length, 1048576);
}
END_TEST

START_TEST(test_pipelined)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        const char *second = "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
        const char *third = "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        char buf[256];

        snprintf(buf, sizeof(buf), "%s%shello%s", first, second, third);
        size_t len = strlen(buf), off = 0;

        http_request_init(&req, h, NHDR);
        int r = http_parse_request(buf, len, &req, NULL);
        ck_assert_int_eq(r, (int)strlen(first));
        ck_assert(span_eq(req.path, req.path_len, "/a"));
        off += (size_t)r;

        /* the same req serves the next request */
        r = http_parse_request(buf + off, len - off, &req, NULL);
        ck_assert_int_eq(r, (int)strlen(second));
        ck_assert(span_eq(req.path, req.path_len, "/b"));
        ck_assert_int_eq(req.content_length, 5);
        off += (size_t)r;
        ck_assert_mem_eq(buf + off, "hello", 5);
        off += 5;

        /* the third arrives in two pieces */
        r = http_parse_request(buf + off, 10, &req, NULL);
        ck_assert_int_eq(r, HTTP_INCOMPLETE);
        r = http_parse_request(buf + off, len - off, &req, NULL);
        ck_assert_int_eq(r, (int)strlen(third));
        ck_assert(span_eq(req.path, req.path_len, "/c"));
        ck_assert_int_eq(off + (size_t)r, len);
}
END_TEST

/* A partial head parsed in one buffer, then completed in another: the parse starts over. */
START_TEST(test_buffer_moved)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "GET /moved HTTP/1.1\r\nHost: a\r\nX-Long: abcdef\r\n\r\n";
        size_t len = strlen(s);
        char *a = dup_buf(s, 30), *b = dup_buf(s, len);

        http_request_init(&req, h, NHDR);
        ck_assert_int_eq(http_parse_request(a, 30, &req, NULL), HTTP_INCOMPLETE);
        ck_assert_int_eq(http_parse_request(b, len, &req, NULL), (int)len);
        free(a);
        ck_assert_ptr_eq(req.method, b);
        ck_assert_ptr_eq(h[0].name, b + strlen("GET /moved HTTP/1.1\r\n"));
        free(b);
}
END_TEST

/* An error resets the request: the next call parses afresh. */
START_TEST(test_error_resets)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *bad = "GET / HTTP/1.1\r\nHost : a\r\n\r\n";
        const char *good = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

        http_request_init(&req, h, NHDR);
        ck_assert_int_eq(http_parse_request(bad, strlen(bad), &req, NULL), -400);
        ck_assert_int_eq(http_parse_request(bad, strlen(bad), &req, NULL), -400);
        ck_assert_int_eq(http_parse_request(good, strlen(good), &req, NULL), (int)strlen(good));
        ck_assert_int_eq(http_parse_request(good, 0, &req, NULL), HTTP_INCOMPLETE);
}
END_TEST

/*
 * The target and field values are scanned 8 bytes at a time: a bad byte must
 * be caught at every position of a word, with nothing else in that word to
 * stop the fast path.
 */
START_TEST(test_word_scan_positions)
{
        static const unsigned char bad_target[] = {0x00, 0x09, 0x1f, ' ', '#', 0x7f, 0x80, 0xff};
        static const unsigned char bad_value[] = {0x00, 0x01, 0x0b, 0x1f, 0x7f};
        struct http_header h[NHDR];
        struct http_request req;
        char s[256];

        for (size_t i = 0; i < sizeof(bad_target); i++) {
                for (size_t pos = 0; pos < 24; pos++) {
                        int n = snprintf(s, sizeof(s), "GET /%s HTTP/1.1\r\nHost: a\r\n\r\n",
                                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
                        s[5 + pos] = (char)bad_target[i];
                        int r = parse_fresh(s, (size_t)n, &req, h, NULL);
                        ck_assert_msg(r == -400, "target byte %#x at %zu: %d", bad_target[i], pos,
                                      r);
                }
        }
        for (size_t i = 0; i < sizeof(bad_value); i++) {
                for (size_t pos = 0; pos < 24; pos++) {
                        int n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n",
                                         "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
                        s[28 + pos] = (char)bad_value[i];
                        int r = parse_fresh(s, (size_t)n, &req, h, NULL);
                        ck_assert_msg(r == -400, "value byte %#x at %zu: %d", bad_value[i], pos, r);
                }
        }
        /* and the good bytes the fast path must let through, HTAB and obs-text included */
        int n = snprintf(s, sizeof(s), "GET /%s HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n",
                         "a~!$&'()*+,;=:@/?[]{}|^`\\\"<>%20",
                         "v\tv\x80\xff~ !\"#$%&'()*+,-./09:;<=>?@AZ");
        ck_assert_int_eq(parse_fresh(s, (size_t)n, &req, h, NULL), n);
        ck_assert_uint_eq(h[1].value_len, strlen("v\tv\x80\xff~ !\"#$%&'()*+,-./09:;<=>?@AZ"));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits                                                                     */
/* ------------------------------------------------------------------------ */

START_TEST(test_request_line_limit)
{
        struct http_limits lim = http_limits_default;
        struct http_header h[NHDR];
        struct http_request req;
        const char *fits = "GET /abcdefg HTTP/1.1\r\nHost: a\r\n\r\n"; /* line: 21 bytes */
        const char *over = "GET /abcdefgh HTTP/1.1\r\nHost: a\r\n\r\n";

        lim.max_request_line = 21;
        ck_assert_int_eq(parse_fresh(fits, strlen(fits), &req, h, &lim), (int)strlen(fits));
        ck_assert_int_eq(parse_fresh(over, strlen(over), &req, h, &lim), -414);
        /* known before the line is complete */
        ck_assert_int_eq(parse_fresh(over, 22, &req, h, &lim), -414);
        ck_assert_int_eq(parse_fresh(over, 21, &req, h, &lim), HTTP_INCOMPLETE);
        /* a long target without any line end */
        lim.max_request_line = 8192;
        size_t n = 10000;
        char *big = malloc(n);
        memcpy(big, "GET /", 5);
        memset(big + 5, 'a', n - 5);
        ck_assert_int_eq(parse_fresh(big, n, &req, h, &lim), -414);
        ck_assert_int_eq(parse_fresh(big, 8192, &req, h, &lim), HTTP_INCOMPLETE);
        /* a method longer than the line is one we do not implement (RFC 9112 §3) */
        memset(big, 'A', n);
        ck_assert_int_eq(parse_fresh(big, n, &req, h, &lim), -501);
        /* also when the head's bound comes first */
        lim.max_request_line = 1 << 20;
        lim.max_header_bytes = 4096;
        ck_assert_int_eq(parse_fresh(big, n, &req, h, &lim), -501);
        free(big);
}
END_TEST

/*
 * A head larger than the caller's buffer: the status names the part that did
 * not fit, whatever the limits would have allowed.
 */
START_TEST(test_overflow_status)
{
        struct http_limits lim = http_limits_default;
        struct http_header h[NHDR];
        struct http_request req;
        static const struct {
                const char *head;
                int status;
        } cases[] = {
                {"GETGETGET", -501},
                {"GET /aaaaaaaa", -414},
                {"GET /a HTTP/1.", -414},
                {"GET /a HTTP/1.1\r\nHost: a\r\nCookie: c", -431},
                {"GET /a HTTP/1.1\r\nHost: a\r\n", -431},
        };

        lim.max_request_line = lim.max_header_bytes = 1 << 20;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const char *s = cases[i].head;
                ck_assert_int_eq(parse_fresh(s, strlen(s), &req, h, &lim), HTTP_INCOMPLETE);
                ck_assert_msg(http_parse_overflow(&req) == cases[i].status, "%s: %d", s,
                              http_parse_overflow(&req));
        }
}
END_TEST

START_TEST(test_header_bytes_limit)
{
        struct http_limits lim = http_limits_default;
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "GET / HTTP/1.1\r\nHost: a\r\nX: 0123456789\r\n\r\n";
        size_t len = strlen(s);

        lim.max_header_bytes = len;
        ck_assert_int_eq(parse_fresh(s, len, &req, h, &lim), (int)len);
        lim.max_header_bytes = len - 1;
        ck_assert_int_eq(parse_fresh(s, len, &req, h, &lim), -431);
        /* with the final LF not yet there, the limit already shows */
        ck_assert_int_eq(parse_fresh(s, len - 1, &req, h, &lim), HTTP_INCOMPLETE);
        lim.max_header_bytes = len - 2;
        ck_assert_int_eq(parse_fresh(s, len - 1, &req, h, &lim), -431);

        /* slowloris: an endless header value is refused at max_header_bytes */
        size_t n = 70000;
        char *big = malloc(n);
        const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nCookie: ";
        memcpy(big, pre, strlen(pre));
        memset(big + strlen(pre), 'c', n - strlen(pre));
        ck_assert_int_eq(parse_fresh(big, 65536, &req, h, NULL), HTTP_INCOMPLETE);
        ck_assert_int_eq(parse_fresh(big, 65537, &req, h, NULL), -431);
        ck_assert_int_eq(parse_fresh(big, n, &req, h, NULL), -431);
        free(big);
}
END_TEST

START_TEST(test_header_count_limit)
{
        struct http_limits lim = http_limits_default;
        struct http_header h[NHDR];
        struct http_request req;
        const char *s = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        size_t len = strlen(s);

        lim.max_headers = 3;
        ck_assert_int_eq(parse_fresh(s, len, &req, h, &lim), (int)len);
        lim.max_headers = 2;
        ck_assert_int_eq(parse_fresh(s, len, &req, h, &lim), -431);
        /* detected at the start of the extra line */
        ck_assert_int_eq(
                parse_fresh(s, strlen("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB"), &req, h, &lim),
                -431);
        /* the caller's array bounds it too */
        lim.max_headers = 100;
        http_request_init(&req, h, 2);
        ck_assert_int_eq(http_parse_request(s, len, &req, &lim), -431);
        http_request_init(&req, h, 3);
        ck_assert_int_eq(http_parse_request(s, len, &req, &lim), (int)len);
        http_request_init(&req, NULL, 0);
        ck_assert_int_eq(http_parse_request("GET / HTTP/1.0\r\n\r\n", 18, &req, &lim), 18);
}
END_TEST

/*
 * Feeding one byte at a time resumes where the last call stopped: the saved
 * position follows the input, so a 60 KiB head costs linear time.
 */
START_TEST(test_resume_is_linear)
{
        struct http_header h[NHDR];
        struct http_request req;
        const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nCookie: ";
        size_t n = 60000, plen = strlen(pre);
        char *big = malloc(n + 4);

        memcpy(big, pre, plen);
        memset(big + plen, 'c', n - plen);
        memcpy(big + n, "\r\n\r\n", 4);
        http_request_init(&req, h, NHDR);
        for (size_t k = 1; k < n + 4; k++) {
                ck_assert_int_eq(http_parse_request(big, k, &req, NULL), HTTP_INCOMPLETE);
                if (k > plen)
                        ck_assert_msg(req.state.pos + 2 >= k, "rescans from %zu at %zu",
                                      req.state.pos, k);
        }
        ck_assert_int_eq(http_parse_request(big, n + 4, &req, NULL), (int)n + 4);
        ck_assert_int_eq(h[1].value_len, n - plen);
        free(big);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Chunked decoder                                                            */
/* ------------------------------------------------------------------------ */

struct dec_out {
        ssize_t r;       /* last result; for success the bytes that followed the body */
        char data[8192]; /* decoded body */
        size_t data_len;
        char rest[8192]; /* bytes that followed the body */
        size_t rest_len;
        uint64_t body_len;
};

/* Decodes in[0..len) handed over in pieces of `piece` bytes, each in its own buffer. */
static void decode_pieces(const char *in, size_t len, size_t piece, const struct http_limits *lim,
                          struct dec_out *o)
{
        struct http_chunked dec;
        size_t off = 0;

        http_chunked_init(&dec, lim);
        memset(o, 0, sizeof(*o));
        o->r = HTTP_INCOMPLETE;
        while (off < len) {
                size_t n = len - off < piece ? len - off : piece;
                char *tmp = dup_buf(in + off, n);
                size_t dn = n;
                ssize_t r = http_chunked_decode(&dec, tmp, &dn);

                off += n;
                if (r >= 0 || r == HTTP_INCOMPLETE) {
                        ck_assert_uint_le(dn, n);
                        ck_assert_uint_le(o->data_len + dn, sizeof(o->data));
                        memcpy(o->data + o->data_len, tmp, dn);
                        o->data_len += dn;
                }
                if (r >= 0) {
                        ck_assert_uint_le(dn + (size_t)r, n);
                        memcpy(o->rest, tmp + dn, (size_t)r);
                        memcpy(o->rest + r, in + off, len - off);
                        o->rest_len = (size_t)r + len - off;
                        o->r = (ssize_t)o->rest_len;
                        ck_assert(http_chunked_done(&dec));
                        free(tmp);
                        break;
                }
                o->r = r;
                free(tmp);
                if (r != HTTP_INCOMPLETE) {
                        /* sticky */
                        char again[2] = "0\n";
                        size_t an = 2;
                        ck_assert_int_eq(http_chunked_decode(&dec, again, &an), r);
                        break;
                }
        }
        o->body_len = dec.body_len;
}

/* Decodes whole, byte by byte and in 2..9 byte pieces; all must agree. Returns the whole run. */
static void decode_all_ways(const char *in, size_t len, const struct http_limits *lim,
                            struct dec_out *whole)
{
        static struct dec_out other;

        decode_pieces(in, len, len ? len : 1, lim, whole);
        for (size_t piece = 1; piece < 10; piece++) {
                decode_pieces(in, len, piece, lim, &other);
                ck_assert_int_eq(other.r, whole->r);
                if (whole->r >= 0 || whole->r == HTTP_INCOMPLETE) {
                        ck_assert_uint_eq(other.data_len, whole->data_len);
                        ck_assert(memcmp(other.data, whole->data, whole->data_len) == 0);
                        ck_assert_uint_eq(other.rest_len, whole->rest_len);
                        ck_assert(memcmp(other.rest, whole->rest, whole->rest_len) == 0);
                }
        }
}

struct chunk_case {
        const char *name;
        const char *in;
        size_t len;
        ssize_t expect; /* >= 0: bytes after the body */
        const char *body;
};

/* clang-format off */
#define CK(n, s, e, b) {n, s, sizeof(s) - 1, e, b}
/* clang-format on */

static const struct chunk_case chunk_cases[] = {
        CK("simple", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 0, "hello world"),
        CK("empty body", "0\r\n\r\n", 0, ""),
        CK("zeros", "000\r\n\r\n", 0, ""),
        CK("hex case", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", 0,
           "0123456789abcdefghij"),
        CK("leading zeros", "0005\r\nhello\r\n0\r\n\r\n", 0, "hello"),
        CK("lf only", "5\nhello\n0\n\n", 0, "hello"),
        CK("pipelined", "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 16, "abc"),
        CK("data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 0, "\r\n\r\n"),
        CK("extension", "5;foo=bar\r\nhello\r\n0;last\r\n\r\n", 0, "hello"),
        CK("extensions with BWS", "5 ; a = b ;c;d=\"q\\\"u;o te\"\t;e\r\nhello\r\n0\r\n\r\n", 0,
           "hello"),
        CK("extension name BWS before ;", "5;a ;b\r\nhello\r\n0\r\n\r\n", 0, "hello"),
        CK("trailers", "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-B:\r\n\r\n", 0, "hello"),
        CK("trailers lf only", "5\nhello\n0\nX-Checksum: abc\n\nnext", 4, "hello"),
        CK("bad hex", "g\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("no size", "\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("negative size", "-5\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("space then line end", "5 \r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("leading space", " 5\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("bare CR in size line", "5\rhello\r\n0\r\n\r\n", -400, NULL),
        CK("empty extension name", "5;\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("empty extension value", "5;a=\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("CR in quoted extension", "5;a=\"b\r\n\"\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("LF in extension", "5;a\n=b\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("bad extension char", "5;a@b\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("NUL in extension", "5;a\0\r\nhello\r\n0\r\n\r\n", -400, NULL),
        CK("data too long", "5\r\nhelloX\r\n0\r\n\r\n", -400, NULL),
        CK("data CR without LF", "5\r\nhello\rX0\r\n\r\n", -400, NULL),
        CK("data CR CR LF", "5\r\nhello\r\r\n0\r\n\r\n", -400, NULL),
        CK("data too short", "5\r\nhel\r\n0\r\n\r\n", -400, NULL),
        /* LF alone ends chunk data, so a CR may be the last data byte */
        CK("CR as last data byte", "5\r\nhell\r\n0\r\n\r\n", 0, "hell\r"),
        CK("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", -400, NULL),
        CK("trailer space before colon", "0\r\nX : a\r\n\r\n", -400, NULL),
        CK("trailer without colon", "0\r\nX\r\n\r\n", -400, NULL),
        CK("trailer NUL", "0\r\nX: a\0\r\n\r\n", -400, NULL),
        CK("trailer bare CR", "0\r\nX: a\rb\r\n\r\n", -400, NULL),
        CK("final line bare CR", "0\r\n\rX", -400, NULL),
        CK("over body limit", "100001\r\n", -413, NULL),
        CK("overflow", "ffffffffffffffffff\r\n", -413, NULL),
        CK("large chunk waits for its data", "80000\r\n", HTTP_INCOMPLETE, ""),
        CK("incomplete", "5\r\nhel", HTTP_INCOMPLETE, "hel"),
        CK("incomplete trailers", "0\r\nX: y\r\n", HTTP_INCOMPLETE, ""),
};

#define NCHUNK (sizeof(chunk_cases) / sizeof(chunk_cases[0]))

START_TEST(test_chunked_cases)
{
        const struct chunk_case *c = &chunk_cases[_i];
        static struct dec_out o;

        decode_all_ways(c->in, c->len, NULL, &o);
        ck_assert_msg(o.r == c->expect, "%s: got %zd, want %zd", c->name, o.r, c->expect);
        if (c->body) {
                ck_assert_msg(o.data_len == strlen(c->body) &&
                                      memcmp(o.data, c->body, o.data_len) == 0,
                              "%s: body differs", c->name);
                ck_assert_uint_eq(o.body_len, strlen(c->body));
        }
        if (c->expect > 0)
                ck_assert_mem_eq(o.rest, c->in + c->len - (size_t)c->expect, (size_t)c->expect);
}
END_TEST

START_TEST(test_chunked_in_place)
{
        char buf[] = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT";
        size_t len = sizeof(buf) - 1;
        struct http_chunked dec;

        http_chunked_init(&dec, NULL);
        ssize_t r = http_chunked_decode(&dec, buf, &len);
        ck_assert_int_eq(r, 4);
        ck_assert_uint_eq(len, 11);
        ck_assert_mem_eq(buf, "hello worldNEXT", 15);
        ck_assert_uint_eq(dec.body_len, 11);
        ck_assert(http_chunked_done(&dec));

        /* once done, all input is what follows the body */
        char more[] = "abc";
        len = 3;
        ck_assert_int_eq(http_chunked_decode(&dec, more, &len), 3);
        ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_chunked_limits)
{
        struct http_limits lim = http_limits_default;
        static struct dec_out o;
        char line[HTTP_CHUNK_LINE_MAX + 16];

        /* body limit over several chunks, and exactly at the limit */
        lim.max_body = 8;
        const char *two = "5\r\nhello\r\n4\r\nabcd\r\n0\r\n\r\n";
        decode_all_ways(two, strlen(two), &lim, &o);
        ck_assert_int_eq(o.r, -413);
        const char *eight = "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
        decode_all_ways(eight, strlen(eight), &lim, &o);
        ck_assert_int_eq(o.r, 0);
        ck_assert_uint_eq(o.body_len, 8);

        /* chunk-size over INT64_MAX with no body limit */
        lim.max_body = UINT64_MAX;
        const char *big = "ffffffffffffffff\r\n";
        decode_all_ways(big, strlen(big), &lim, &o);
        ck_assert_int_eq(o.r, -400);
        const char *max = "7fffffffffffffff\r\nabc";
        decode_all_ways(max, strlen(max), &lim, &o);
        ck_assert_int_eq(o.r, HTTP_INCOMPLETE);
        ck_assert_uint_eq(o.data_len, 3);
        const char *over = "8000000000000000\r\n";
        decode_all_ways(over, strlen(over), &lim, &o);
        ck_assert_int_eq(o.r, -400);

        /* chunk-size line length */
        memset(line, 'a', sizeof(line));
        memcpy(line, "5;x=", 4);
        decode_pieces(line, sizeof(line), sizeof(line), NULL, &o);
        ck_assert_int_eq(o.r, -400);
        line[HTTP_CHUNK_LINE_MAX - 2] = '\r';
        line[HTTP_CHUNK_LINE_MAX - 1] = '\n';
        decode_pieces(line, HTTP_CHUNK_LINE_MAX + 5, 7, NULL, &o);
        ck_assert_int_eq(o.r, HTTP_INCOMPLETE);
        ck_assert_uint_eq(o.data_len, 5);

        /* trailer count and size */
        lim = http_limits_default;
        lim.max_headers = 2;
        const char *tr2 = "0\r\nA: 1\r\nB: 2\r\n\r\n";
        decode_all_ways(tr2, strlen(tr2), &lim, &o);
        ck_assert_int_eq(o.r, 0);
        const char *tr3 = "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        decode_all_ways(tr3, strlen(tr3), &lim, &o);
        ck_assert_int_eq(o.r, -431);
        lim = http_limits_default;
        lim.max_header_bytes = 16;
        const char *tr16 = "0\r\nA: 123456789\r\n\r\n"; /* trailer section: 16 bytes */
        decode_all_ways(tr16, strlen(tr16), &lim, &o);
        ck_assert_int_eq(o.r, 0);
        const char *tr17 = "0\r\nA: 1234567890\r\n\r\n";
        decode_all_ways(tr17, strlen(tr17), &lim, &o);
        ck_assert_int_eq(o.r, -431);
}
END_TEST

/* A whole request: head, then the chunked body, then the next request. */
START_TEST(test_request_with_chunked_body)
{
        char buf[] = "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nExpires: never\r\n\r\n"
                     "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
        struct http_header h[NHDR];
        struct http_request req;
        struct http_chunked dec;
        size_t len = sizeof(buf) - 1;

        int r = parse_fresh(buf, len, &req, h, NULL);
        ck_assert_int_gt(r, 0);
        ck_assert(req.chunked);
        http_chunked_init(&dec, NULL);
        size_t blen = len - (size_t)r;
        ssize_t left = http_chunked_decode(&dec, buf + r, &blen);
        ck_assert_int_eq(left, (ssize_t)strlen("GET /next HTTP/1.1\r\nHost: a\r\n\r\n"));
        ck_assert_mem_eq(buf + r, "Wikipedia", 9);
        ck_assert_uint_eq(blen, 9);
        char *next = buf + r + blen;
        ck_assert_int_eq(parse_fresh(next, (size_t)left, &req, h, NULL), (int)left);
        ck_assert(span_eq(req.path, req.path_len, "/next"));
}
END_TEST

START_TEST(test_status_reason)
{
        ck_assert_str_eq(http_status_reason(200), "OK");
        ck_assert_str_eq(http_status_reason(404), "Not Found");
        ck_assert_str_eq(http_status_reason(HTTP_E_HEADERS_TOO_LARGE),
                         "Request Header Fields Too Large");
        ck_assert_str_eq(http_status_reason(-505), "HTTP Version Not Supported");
        ck_assert_str_eq(http_status_reason(299), "");
        ck_assert_str_eq(http_status_reason(0), "");
}
END_TEST

static Suite *http_parser_suite(void)
{
        Suite *s = suite_create("http_parser");
        TCase *tc;

        tc = tcase_create("table");
        tcase_add_loop_test(tc, test_valid, 0, NVALID);
        tcase_add_loop_test(tc, test_invalid, 0, NINVALID);
        tcase_add_loop_test(tc, test_split_points, 0, NVALID);
        suite_add_tcase(s, tc);

        tc = tcase_create("fields");
        tcase_add_test(tc, test_request_line_fields);
        tcase_add_test(tc, test_target_forms);
        tcase_add_test(tc, test_method_ids);
        tcase_add_test(tc, test_headers);
        tcase_add_test(tc, test_keep_alive);
        tcase_add_test(tc, test_framing_fields);
        tcase_add_test(tc, test_pipelined);
        tcase_add_test(tc, test_buffer_moved);
        tcase_add_test(tc, test_error_resets);
        tcase_add_test(tc, test_word_scan_positions);
        suite_add_tcase(s, tc);

        tc = tcase_create("limits");
        tcase_add_test(tc, test_request_line_limit);
        tcase_add_test(tc, test_header_bytes_limit);
        tcase_add_test(tc, test_header_count_limit);
        tcase_add_test(tc, test_overflow_status);
        tcase_add_test(tc, test_resume_is_linear);
        suite_add_tcase(s, tc);

        tc = tcase_create("chunked");
        tcase_add_loop_test(tc, test_chunked_cases, 0, NCHUNK);
        tcase_add_test(tc, test_chunked_in_place);
        tcase_add_test(tc, test_chunked_limits);
        tcase_add_test(tc, test_request_with_chunked_body);
        suite_add_tcase(s, tc);

        tc = tcase_create("misc");
        tcase_add_test(tc, test_status_reason);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(http_parser_suite());
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

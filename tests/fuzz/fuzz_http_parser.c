/*
 * libFuzzer target for the HTTP/1.1 request parser and chunked decoder
 * (services/http11/http_parser.c). Each input is parsed whole; then a prefix
 * in a buffer of its own (so ASan catches any read past the bytes given);
 * then resumed across two split points derived from the input. All must agree
 * (a prefix gives HTTP_INCOMPLETE or the whole input's result), and a
 * successful parse must satisfy the grammar, checked here independently. What
 * follows the head is run through the chunked decoder whole and in pieces,
 * which must also agree. A hash of the input picks tight limits half of the
 * time so the limit paths get exercised.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

#define NHDR 32

/* assert() would vanish under NDEBUG */
#define CHECK(c)                                                                              \
        do {                                                                                  \
                if (!(c)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
                        abort();                                                              \
                }                                                                             \
        } while (0)

static uint64_t fnv1a(const uint8_t *d, size_t n)
{
        uint64_t h = 0xcbf29ce484222325u;
        for (size_t i = 0; i < n; i++)
                h = (h ^ d[i]) * 0x100000001b3u;
        return h;
}

static int is_tchar(unsigned char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A pointer into base[0..size), as an offset, or the pointer itself for static strings. */
static uintptr_t rel(const char *p, const char *base, size_t size)
{
        if (p >= base && p <= base + size)
                return (uintptr_t)(p - base) + 1;
        return (uintptr_t)p;
}

/* Two parses of the same bytes from buffers a and b gave the same request. */
static void check_same(const struct http_request *x, const char *a, const struct http_request *y,
                       const char *b, size_t size)
{
#define SAME(f) CHECK(rel(x->f, a, size) == rel(y->f, b, size))
        SAME(method);
        SAME(target);
        SAME(path);
        SAME(query);
        SAME(authority);
        SAME(host);
        CHECK(x->method_len == y->method_len && x->method_id == y->method_id);
        CHECK(x->target_len == y->target_len && x->target_form == y->target_form);
        CHECK(x->path_len == y->path_len && x->query_len == y->query_len);
        CHECK(x->authority_len == y->authority_len && x->host_len == y->host_len);
        CHECK(x->version_minor == y->version_minor && x->num_headers == y->num_headers);
        CHECK(x->content_length == y->content_length && x->chunked == y->chunked);
        CHECK(x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue);
        CHECK(x->has_host == y->has_host);
        for (size_t i = 0; i < x->num_headers; i++) {
                SAME(headers[i].name);
                SAME(headers[i].value);
                CHECK(x->headers[i].name_len == y->headers[i].name_len);
                CHECK(x->headers[i].value_len == y->headers[i].value_len);
        }
#undef SAME
}

static int within(const char *p, size_t n, const char *buf, size_t len)
{
        return p >= buf && n <= len && p - buf <= (ptrdiff_t)(len - n);
}

/* What a successful parse promises, checked without the parser's tables. */
static void check_head(const struct http_request *req, const char *buf, size_t size, int r,
                       const struct http_limits *lim)
{
        size_t head = (size_t)r;

        CHECK(head > 0 && head <= size && head <= lim->max_header_bytes);
        CHECK(buf[head - 1] == '\n');
        CHECK(req->method_len > 0 && within(req->method, req->method_len, buf, head));
        for (size_t i = 0; i < req->method_len; i++)
                CHECK(is_tchar((unsigned char)req->method[i]));
        CHECK(req->target_len > 0 && within(req->target, req->target_len, buf, head));
        CHECK(req->target == req->method + req->method_len + 1);
        for (size_t i = 0; i < req->target_len; i++) {
                unsigned char c = (unsigned char)req->target[i];
                CHECK(c > 0x20 && c < 0x7f && c != '#');
        }
        /* request line: method SP target SP HTTP/1.x */
        CHECK(req->method_len + req->target_len + 10 <= lim->max_request_line);
        CHECK(memcmp(req->target + req->target_len, " HTTP/1.", 8) == 0);
        CHECK(req->version_minor == 0 || req->version_minor == 1);
        CHECK(req->target[req->target_len + 8] == '0' + req->version_minor);
        if (req->target_form == HTTP_TARGET_ORIGIN) {
                CHECK(req->path == req->target && req->target[0] == '/');
                CHECK(!req->authority);
        }
        if (req->target_form == HTTP_TARGET_AUTHORITY) {
                CHECK(req->method_id == HTTP_METHOD_CONNECT && !req->path);
                CHECK(req->authority == req->target);
        }
        if (req->target_form == HTTP_TARGET_ASTERISK)
                CHECK(req->method_id == HTTP_METHOD_OPTIONS && req->target_len == 1);
        if (req->path && req->target_form != HTTP_TARGET_ABSOLUTE)
                CHECK(within(req->path, req->path_len, req->target, req->target_len));
        if (req->query) {
                CHECK(within(req->query, req->query_len, req->target, req->target_len));
                CHECK(req->query[-1] == '?');
        }
        CHECK(req->num_headers <= NHDR && req->num_headers <= lim->max_headers);
        for (size_t i = 0; i < req->num_headers; i++) {
                const struct http_header *h = &req->headers[i];
                CHECK(h->name_len > 0 && within(h->name, h->name_len, buf, head));
                CHECK(within(h->value, h->value_len, buf, head));
                for (size_t k = 0; k < h->name_len; k++)
                        CHECK(is_tchar((unsigned char)h->name[k]));
                CHECK(h->name[h->name_len] == ':');
                for (size_t k = 0; k < h->value_len; k++) {
                        unsigned char c = (unsigned char)h->value[k];
                        CHECK(c >= 0x80 || c == '\t' || (c >= 0x20 && c != 0x7f));
                }
                if (h->value_len) {
                        CHECK(h->value[0] != ' ' && h->value[0] != '\t');
                        CHECK(h->value[h->value_len - 1] != ' ' &&
                              h->value[h->value_len - 1] != '\t');
                }
        }
        if (req->chunked)
                CHECK(req->content_length == -1 && req->version_minor == 1);
        if (req->version_minor == 1)
                CHECK(req->has_host && http_header_find(req, "host") != NULL);
        CHECK(req->content_length < 0 || (uint64_t)req->content_length <= lim->max_body);
        if (req->content_length >= 0)
                CHECK(http_header_find(req, "content-length") != NULL);
        if (req->chunked)
                CHECK(http_header_find(req, "transfer-encoding") != NULL);
        else
                CHECK(http_header_find(req, "transfer-encoding") == NULL);
}

struct decoded {
        ssize_t r;
        char *out;
        size_t out_len;
        char *rest;
        size_t rest_len;
};

/* Decodes body[0..len) fed as pieces [0, s1), [s1, s2), [s2, len), each in its own buffer. */
static void decode(const char *body, size_t len, size_t s1, size_t s2,
                   const struct http_limits *lim, struct decoded *d)
{
        struct http_chunked dec;
        size_t cut[3] = {s1, s2, len}, off = 0;

        http_chunked_init(&dec, lim);
        d->r = HTTP_INCOMPLETE;
        d->out = malloc(len + 1);
        d->rest = malloc(len + 1);
        d->out_len = d->rest_len = 0;
        CHECK(d->out && d->rest);
        for (int i = 0; i < 3 && d->r == HTTP_INCOMPLETE; i++) {
                size_t n = cut[i] - off;
                char *piece = malloc(n + 1);
                CHECK(piece);
                memcpy(piece, body + off, n);
                off = cut[i];
                size_t dn = n;
                ssize_t r = http_chunked_decode(&dec, piece, &dn);
                if (r >= 0 || r == HTTP_INCOMPLETE) {
                        CHECK(dn <= n);
                        memcpy(d->out + d->out_len, piece, dn);
                        d->out_len += dn;
                }
                if (r >= 0) {
                        CHECK(http_chunked_done(&dec));
                        CHECK(dn + (size_t)r <= n);
                        memcpy(d->rest, piece + dn, (size_t)r);
                        memcpy(d->rest + r, body + off, len - off);
                        d->rest_len = (size_t)r + len - off;
                        d->r = (ssize_t)d->rest_len;
                } else {
                        d->r = r;
                        CHECK(r == HTTP_INCOMPLETE || r == -400 || r == -413 || r == -431);
                }
                free(piece);
        }
        /* later calls: an error sticks, and after the end every byte is left over */
        if (d->r != HTTP_INCOMPLETE) {
                char more[3] = {'0', '\r', '\n'};
                size_t mn = sizeof(more);
                ssize_t r = http_chunked_decode(&dec, more, &mn);
                CHECK(mn == 0 && r == (d->r >= 0 ? (ssize_t)sizeof(more) : d->r));
        }
        if (d->r >= 0 || d->r == HTTP_INCOMPLETE)
                CHECK(dec.body_len == d->out_len);
        CHECK(dec.body_len <= lim->max_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        uint64_t hv = fnv1a(data, size);
        struct http_limits lim = http_limits_default;
        struct http_header hw[NHDR], hp[NHDR], hr[NHDR], hh[NHDR];
        struct http_request whole, pre, res, head;
        size_t s1 = size ? (size_t)((hv >> 40) % (size + 1)) : 0;
        size_t s2 = s1 + (size_t)((hv >> 52) % (size - s1 + 1));
        int r, rp;

        if (hv & 1) {
                lim.max_request_line = 16 + (hv >> 4) % 64;
                lim.max_header_bytes = 32 + (hv >> 12) % 256;
                lim.max_headers = (hv >> 20) % 6;
                lim.max_body = (hv >> 24) % 300;
        } else if (hv & 2) {
                lim.max_body = UINT64_MAX; /* lets chunk-size overflow show before 413 */
        }

        /* whole */
        http_request_init(&whole, hw, NHDR);
        r = http_parse_request(buf, size, &whole, &lim);
        CHECK(r >= 0 || r == HTTP_INCOMPLETE || r == -400 || r == -413 || r == -414 || r == -417 ||
              r == -431 || r == -501 || r == -505);
        if (r < 0 && r != HTTP_INCOMPLETE)
                CHECK(http_status_reason(r)[0] != '\0');
        if (r >= 0)
                check_head(&whole, buf, size, r, &lim);

        /* a prefix, alone in its buffer */
        char *p = malloc(s1 ? s1 : 1);
        CHECK(p);
        memcpy(p, buf, s1);
        http_request_init(&pre, hp, NHDR);
        rp = http_parse_request(p, s1, &pre, &lim);
        if (rp != HTTP_INCOMPLETE)
                CHECK(rp == r);
        if (rp >= 0)
                check_same(&whole, buf, &pre, p, (size_t)r);
        free(p);

        /* resumed across the split points */
        http_request_init(&res, hr, NHDR);
        rp = http_parse_request(buf, s1, &res, &lim);
        if (rp == HTTP_INCOMPLETE)
                rp = http_parse_request(buf, s2, &res, &lim);
        if (rp == HTTP_INCOMPLETE)
                rp = http_parse_request(buf, size, &res, &lim);
        CHECK(rp == r);
        if (r >= 0)
                check_same(&whole, buf, &res, buf, (size_t)r);

        /* a complete head does not depend on what follows it */
        if (r >= 0) {
                http_request_init(&head, hh, NHDR);
                CHECK(http_parse_request(buf, (size_t)r, &head, &lim) == r);
                check_same(&whole, buf, &head, buf, (size_t)r);
        }

        /* the body, or the whole input when there is no head, as chunked */
        const char *body = r >= 0 ? buf + r : buf;
        size_t blen = r >= 0 ? size - (size_t)r : size;
        size_t b1 = blen ? (size_t)((hv >> 8) % (blen + 1)) : 0;
        size_t b2 = b1 + (size_t)((hv >> 28) % (blen - b1 + 1));
        struct decoded dw, ds;
        decode(body, blen, blen, blen, &lim, &dw);
        decode(body, blen, b1, b2, &lim, &ds);
        CHECK(dw.r == ds.r);
        if (dw.r >= 0 || dw.r == HTTP_INCOMPLETE) {
                CHECK(dw.out_len == ds.out_len && memcmp(dw.out, ds.out, dw.out_len) == 0);
                CHECK(dw.rest_len == ds.rest_len && memcmp(dw.rest, ds.rest, dw.rest_len) == 0);
        }
        if (dw.r >= 0)
                CHECK(memcmp(dw.rest, body + blen - dw.rest_len, dw.rest_len) == 0);
        free(dw.out);
        free(dw.rest);
        free(ds.out);
        free(ds.rest);
        return 0;
}

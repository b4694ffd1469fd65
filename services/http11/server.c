/*
 * The HTTP/1.1 connection coroutine: reads request heads where they arrive
 * in the socket ring (vk_peek, no copy until a head is complete), frames
 * bodies (Content-Length or chunked, decoded in place), runs the handler as
 * a child thread, and keeps the connection alive or closes it as RFC 9112
 * requires. Responses are written into the output ring and leave lazily, so
 * pipelined requests are answered in one writev.
 *
 * After any framing error the connection is answered and closed, never
 * reused: no request smuggling.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http11_int.h"

/* ------------------------------------------------------------------ */
/* Response heads. */

/* "Server: vkd\r\nDate: <IMF-fixdate>\r\n", formatted once a second. */
static char common_buf[80];
static size_t common_len;
static time_t common_at;

static void common_headers(void)
{
        time_t now = time(NULL);
        if (now == common_at && common_len)
                return;
        struct tm tm;
        gmtime_r(&now, &tm);
        common_len = strftime(common_buf, sizeof common_buf,
                              "Server: vkd\r\nDate: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        common_at = now;
}

/* The Date header value (inside the cached common headers). */
static const char *http_date(void)
{
        static char date[40];
        common_headers();
        memcpy(date, common_buf + 19, 29);
        date[29] = 0;
        return date;
}

/* Appends s[0..n) at *at if it fits; returns 0, or -1 (and appends nothing). */
static int put(char *b, size_t cap, size_t *at, const char *s, size_t n)
{
        if (*at + n > cap)
                return -1;
        memcpy(b + *at, s, n);
        *at += n;
        return 0;
}

#define PUT_LIT(b, cap, at, lit) put((b), (cap), (at), (lit), sizeof(lit) - 1)

static int put_str(char *b, size_t cap, size_t *at, const char *s)
{
        return put(b, cap, at, s, strlen(s));
}

static int put_u64(char *b, size_t cap, size_t *at, uint64_t v)
{
        char tmp[20];
        int n = 0;
        do
                tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        while (v /= 10);
        return put(b, cap, at, tmp + sizeof tmp - n, (size_t)n);
}

int http__head(struct http_exchange *x, int status, const char *ctype, int64_t len,
               const char *extra)
{
        char *b = x->hbuf;
        size_t cap = sizeof x->hbuf, n = 0;
        int bad = 0;
        x->status = status;
        x->responded = 1;
        /* 1xx, 204 and 304 have no body; HEAD sends the headers a GET would. */
        int bodyless = status < 200 || status == 204 || status == 304;
        if (bodyless)
                x->head_only = 1;
        /* No body bytes are owed for a head alone, so it keeps the connection. */
        x->out_left = x->head_only ? 0 : len;
        if (len < 0 && !bodyless) {
                if (x->req.version_minor >= 1)
                        x->chunked_out = 1;
                else if (!x->head_only)
                        x->close = 1; /* HTTP/1.0: the body ends with the connection */
        }
        /* Hand-assembled: this runs once per response and snprintf was the
         * largest user-space cost in the pipelined profile. */
        common_headers();
        bad |= PUT_LIT(b, cap, &n, "HTTP/1.1 ");
        bad |= put_u64(b, cap, &n, (uint64_t)(status % 1000));
        bad |= PUT_LIT(b, cap, &n, " ");
        bad |= put_str(b, cap, &n, http_status_reason(status));
        bad |= PUT_LIT(b, cap, &n, "\r\n");
        bad |= put(b, cap, &n, common_buf, common_len);
        if (ctype) {
                bad |= PUT_LIT(b, cap, &n, "Content-Type: ");
                bad |= put_str(b, cap, &n, ctype);
                bad |= PUT_LIT(b, cap, &n, "\r\n");
        }
        if (len >= 0 && status != 304) {
                bad |= PUT_LIT(b, cap, &n, "Content-Length: ");
                bad |= put_u64(b, cap, &n, (uint64_t)len);
                bad |= PUT_LIT(b, cap, &n, "\r\n");
        } else if (x->chunked_out) {
                bad |= PUT_LIT(b, cap, &n, "Transfer-Encoding: chunked\r\n");
        }
        if (x->close)
                bad |= PUT_LIT(b, cap, &n, "Connection: close\r\n");
        else if (x->req.version_minor == 0)
                bad |= PUT_LIT(b, cap, &n, "Connection: keep-alive\r\n");
        if (extra)
                bad |= put_str(b, cap, &n, extra);
        bad |= PUT_LIT(b, cap, &n, "\r\n");
        if (bad) {
                /* the extra headers did not fit: a handler bug, answer plainly */
                n = (size_t)snprintf(b, cap,
                                     "HTTP/1.1 500 %s\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\n\r\n",
                                     http_status_reason(500));
                x->status = 500;
                x->close = 1;
                x->head_only = 1;
                x->chunked_out = 0;
        }
        return (int)n;
}

int http__chunk(struct http_exchange *x, size_t n)
{
        return snprintf(x->hbuf, sizeof x->hbuf, "%zx\r\n", n);
}

int http11_error_response(char *buf, size_t cap, int status)
{
        const char *reason = http_status_reason(status);
        return snprintf(buf, cap,
                        "HTTP/1.1 %d %s\r\nServer: vkd\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                        status, reason, http_date(), strlen(reason) + 1, reason);
}

/* ------------------------------------------------------------------ */
/* Request bodies. */

ssize_t http__body(struct vk_thread *that, struct http_exchange *x, const char *p, size_t n,
                   const char **ret)
{
        *ret = p;
        if (x->pending) {
                return (ssize_t)(x->pending < n ? x->pending : n);
        }
        if (x->body_done)
                return 0;
        if (!n)
                return HTTP_E_BAD_REQUEST; /* end of stream inside a body */
        if (x->body_left >= 0) {
                uint64_t m = (uint64_t)x->body_left < n ? (uint64_t)x->body_left : n;
                x->pending = (size_t)m;
                x->body_left -= (int64_t)m;
                x->pending_ends = x->body_left == 0;
                return (ssize_t)m;
        }
        /* Chunked: decode the buffered bytes in place; what follows the body
         * (a pipelined request) is kept right after the decoded bytes. */
        size_t len = n;
        ssize_t r = http_chunked_decode(&x->dec, (char *)p, &len);
        if (r == HTTP_INCOMPLETE) {
                vk_truncate_input(that, len);
                x->pending = len;
                if (!len)
                        return HTTP_INCOMPLETE;
                return (ssize_t)len;
        }
        if (r < 0)
                return r;
        vk_truncate_input(that, len + (size_t)r);
        x->pending = len;
        x->pending_ends = 1;
        if (!len) {
                x->body_done = 1;
                return 0;
        }
        return (ssize_t)len;
}

int http__body_deadline(struct vk_thread *that, const struct http_exchange *x)
{
        uint64_t now = vk_now(that);
        if (now >= x->body_until)
                return -ETIMEDOUT;
        /* rounded up: 0 would clear the deadline */
        vk_set_deadline(that, (x->body_until - now + 999999) / 1000000);
        return 0;
}

void http__body_consumed(struct vk_thread *that, struct http_exchange *x, size_t n)
{
        vk_consume(that, n);
        x->pending -= n;
        if (!x->pending && x->pending_ends)
                x->body_done = 1;
}

/* ------------------------------------------------------------------ */
/* The connection. */

/* Points the request's pointers into `head` instead of the ring. */
static void rebase(struct http_request *req, const char *from, char *to)
{
#define REBASE(f)                                                               \
        do {                                                                    \
                if (req->f && req->f >= from && req->f < from + req->state.pos) \
                        req->f = to + (req->f - from);                          \
        } while (0)
        REBASE(method);
        REBASE(target);
        REBASE(path);
        REBASE(query);
        REBASE(authority);
        REBASE(host);
        for (size_t i = 0; i < req->num_headers; i++) {
                struct http_header *h = &req->headers[i];
                h->name = to + (h->name - from);
                h->value = to + (h->value - from);
        }
#undef REBASE
}

static void exchange_free(struct vk_proc *p, struct http_exchange *x)
{
        if (!x)
                return;
        /* reverse order of allocation, so the heap's stack pops */
        vk_free(p, x->head);
        vk_free(p, x->req.headers);
        vk_free(p, x);
}

void http11_conn(struct vk_thread *that)
{
        struct {
                const struct http11_conf *conf;
                struct http_exchange *x;
                const char *p;
                ssize_t n, have;
                int r;
                int status;
                uint8_t in_finally;
                uint64_t started;
                struct vk_thread *h;
                char buf[256];
        } * self;
        vk_begin();
        for (;;) {
                /* Between requests: the keep-alive idle timeout. */
                vk_set_deadline(that, 0);
                vk_set_timeout(that, self->conf->idle_ms);
                vk_peek(self->n, self->p, 0);
                if (self->n == 0)
                        break;
                self->started = vk_now(that);
                vk_set_timeout(that, 0);
                /* One deadline for the whole head, however slowly it comes. */
                vk_set_deadline(that, self->conf->header_ms);
                vk_alloc_or_raise(self->x, sizeof *self->x);
                memset(self->x, 0, sizeof *self->x);
                self->x->conf = self->conf;
                vk_alloc_or_raise(self->x->req.headers,
                                  self->conf->lim.max_headers * sizeof(struct http_header));
                http_request_init(&self->x->req, self->x->req.headers, self->conf->lim.max_headers);
                for (;;) {
                        self->r = http_parse_request(self->p, (size_t)self->n, &self->x->req,
                                                     &self->conf->lim);
                        if (self->r != HTTP_INCOMPLETE)
                                break;
                        self->have = self->n;
                        vk_peek(self->n, self->p, (size_t)self->have);
                        if (self->n == self->have) {
                                /* end of stream, or a full ring: a head larger than it */
                                self->r = vk_at_eof(that) || self->n == 0
                                                  ? 0
                                                  : http_parse_overflow(&self->x->req);
                                break;
                        }
                }
                if (self->r == 0) /* the client left in the middle of a head */
                        break;
                if (self->r < 0) {
                        self->status = -self->r;
                        vk_raisef(EPROTO, "malformed request: %d", self->status);
                }
                /* The head is complete: copy it out of the ring so the body can
                 * stream through it. */
                vk_alloc_or_raise(self->x->head, (size_t)self->r);
                memcpy(self->x->head, self->p, (size_t)self->r);
                rebase(&self->x->req, self->p, self->x->head);
                vk_consume(that, (size_t)self->r);
                vk_set_deadline(that, 0);
                vk_set_timeout(that, self->conf->body_ms);
                /* Per read, BodyTimeoutSec; the whole body, however it trickles in,
                 * BodyDeadlineSec (slowloris on the body). */
                self->x->body_until = vk_now(that) + self->conf->body_deadline_ms * 1000000;

                /* A 2xx answer to CONNECT opens a tunnel with no framing (RFC 9110
                 * §9.3.6); no handler implements one, so none is asked. */
                if (self->x->req.method_id == HTTP_METHOD_CONNECT) {
                        self->status = 501;
                        vk_raise(EPROTO, "CONNECT is not implemented");
                }
                self->x->head_only = self->x->req.method_id == HTTP_METHOD_HEAD;
                self->x->close = !self->x->req.keep_alive;
                self->x->out_left = -1;
                if (self->x->req.chunked) {
                        self->x->body_left = -1;
                        http_chunked_init(&self->x->dec, &self->conf->lim);
                } else {
                        self->x->body_left =
                                self->x->req.content_length > 0 ? self->x->req.content_length : 0;
                        if ((uint64_t)self->x->body_left > self->conf->lim.max_body) {
                                self->status = 413;
                                vk_raise(EPROTO, "body over the limit");
                        }
                        self->x->body_done = self->x->body_left == 0;
                }

                /* The request passed every limit: a client waiting for "100
                 * Continue" may send its body now. */
                if (self->x->req.expect_continue && !self->x->body_done &&
                    self->x->req.version_minor >= 1) {
                        vk_write("HTTP/1.1 100 Continue\r\n\r\n", 25);
                        vk_flush();
                }
                self->h = vk_spawn(self->conf->handler, &self->x, sizeof self->x);
                if (!self->h)
                        vk_raise(ENOMEM, "no memory for the handler");
                /* The handler's reads and writes are bounded like the connection's. */
                vk_set_timeout(self->h, self->conf->body_ms);
                vk_join(self->h);

                if (!self->x->responded) {
                        self->status = 500;
                        vk_raise(EPROTO, "the handler sent no response");
                }
                http_end(self->x);
                if (self->x->out_left > 0) /* shorter than its Content-Length */
                        self->x->close = 1;
                /* An unread body is read and dropped, up to a bound. */
                for (self->have = 0; !self->x->body_done && self->have < 65536;
                     self->have += self->n) {
                        http_read_body(self->n, self->x, self->buf, sizeof self->buf);
                        if (self->n == 0)
                                break;
                }
                if (!self->x->body_done)
                        self->x->close = 1;
                self->r = self->x->close;
                vk_request_done(that, self->started);
                exchange_free(that->proc, self->x);
                self->x = NULL;
                if (self->r)
                        break;
        }
        vk_finally();
        if (vk_error() && !self->in_finally) {
                const struct vk_error *e = vk_error();
                int status = self->status;
                self->in_finally = 1;
                if (!status)
                        status = e->code == ETIMEDOUT ? 408 : e->code == EPROTO ? 400 : 500;
                /* A timeout before any byte of a request is a quiet close;
                 * a response already begun cannot be replaced. */
                int idle = e->code == ETIMEDOUT && !self->x;
                int begun = self->x && self->x->responded;
                vk_clear_error();
                if (!idle && !begun) {
                        self->r = http11_error_response(self->buf, sizeof self->buf, status);
                        vk_write(self->buf, self->r);
                        /* Lingering close: the client may still be sending
                         * what we refused; closing with unread bytes would
                         * reset the connection and lose the response. Read
                         * and drop for a bounded time and amount first. */
                        vk_close_write();
                        vk_set_timeout(that, 0);
                        vk_set_deadline(that, 2000);
                        for (self->have = 0; self->have < (1 << 20); self->have += self->n) {
                                vk_readsome(self->n, self->buf, sizeof self->buf);
                                if (self->n == 0)
                                        break;
                        }
                }
        }
        vk_clear_error();
        vk_end();
}

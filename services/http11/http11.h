/*
 * The HTTP/1.1 service's author API. A handler is a virtual thread that
 * receives one `struct http_exchange *` as the first member of its frame,
 * reads the request (already parsed: method, target, headers) and its body
 * as a stream, and writes a response as a stream:
 *
 *      static void hello(struct vk_thread *that)
 *      {
 *              struct {
 *                      struct http_exchange *x;
 *              } *self;
 *              vk_begin();
 *              http_respond(self->x, 200, "text/plain", 13);
 *              http_write(self->x, "Hello, World!", 13);
 *              vk_end();
 *      }
 *
 * A length of -1 in http_respond() sends the body chunked (HTTP/1.1) or
 * close-delimited (HTTP/1.0); http_end() finishes it. The connection
 * coroutine finishes whatever the handler left open, answers 500 when a
 * handler raised before responding, and discards an unread body. CONNECT
 * never reaches a handler: it is answered 501 (a tunnel is not implemented).
 */
#ifndef VKD_HTTP11_H
#define VKD_HTTP11_H

#include <stdint.h>
#include <string.h>

#include <vk/vk.h>

#include "http_parser.h"

struct http11_conf;

struct http_exchange {
        struct http_request req; /* pointers into `head`, valid for the exchange */
        const struct http11_conf *conf;
        char *head; /* the request head, copied out of the ring */
        /* request body */
        int64_t body_left;   /* Content-Length bytes not read yet; -1: chunked */
        uint64_t body_until; /* vk_now() past which the body's reads time out */
        struct http_chunked dec;
        size_t pending;     /* body bytes at the front of the input, not yet read */
        const char *peek_p; /* http_read_body()'s view of the input */
        ssize_t peek_n;
        uint8_t pending_ends; /* the body ends with them */
        uint8_t body_done;
        /* response */
        uint8_t responded; /* status line and headers written */
        uint8_t chunked_out;
        uint8_t head_only; /* HEAD: no body bytes */
        uint8_t close;     /* close the connection after this response */
        uint8_t finished;
        int status;
        int64_t out_left; /* Content-Length bytes still owed, -1: not length-framed */
        uint16_t hlen;
        char hbuf[480]; /* scratch for status lines, headers, chunk heads */
};

/* ------------------------------------------------------------------ */
/* A module of your own: the http11 service with your handler.
 *
 *      static int init(const struct vk_module_kv *kv, size_t n, void **state,
 *                      char *err, size_t errlen)
 *      {
 *              return http11_init_with(kv, n, state, err, errlen, my_handler);
 *      }
 *      VK_MODULE(.name = "mine", .version = "1", .init = init,
 *                .fini = http11_fini, .main = http11_conn);
 *
 * Link with libvkd_http11.a: `pkg-config --cflags --libs vkd-http11`. The
 * [Module] keys are http11's (limits, timeouts) but Handler= and Root=. */
struct vk_module_kv;
int http11_init_with(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                     size_t errlen, vk_thread_fn *handler);
void http11_fini(void *state);
/* The connection coroutine, for .main. */
void http11_conn(struct vk_thread *that);

/* Formats the status line and standard headers (Date, Server, framing,
 * Connection) plus `extra` (complete "Name: value\r\n" lines, or NULL) into
 * x->hbuf; returns its length. Used by http_respond_with(). */
int http__head(struct http_exchange *x, int status, const char *ctype, int64_t len,
               const char *extra);
/* Chunk head for n bytes into x->hbuf; returns its length. */
int http__chunk(struct http_exchange *x, size_t n);
/* Next body step over the buffered input p[0..n): returns the body bytes
 * available at *ret (0: body done), HTTP_INCOMPLETE, or -status. */
ssize_t http__body(struct vk_thread *that, struct http_exchange *x, const char *p, size_t n,
                   const char **ret);

/* Writes the status line and headers. len: the body's length, or -1 when
 * unknown (chunked). Yields. */
#define http_respond(x, status, ctype, len) http_respond_with((x), (status), (ctype), (len), NULL)
#define http_respond_with(x, status, ctype, len, extra)                                   \
        do {                                                                              \
                (x)->hlen = (uint16_t)http__head((x), (status), (ctype), (len), (extra)); \
                vk_write((x)->hbuf, (x)->hlen);                                           \
        } while (0)

/* Writes body bytes (framed as a chunk when chunked; nothing for HEAD). */
#define http_write(x, buf, len)                                        \
        do {                                                           \
                if ((x)->head_only || !(len))                          \
                        break;                                         \
                if ((x)->chunked_out) {                                \
                        (x)->hlen = (uint16_t)http__chunk((x), (len)); \
                        vk_write((x)->hbuf, (x)->hlen);                \
                }                                                      \
                vk_write((buf), (len));                                \
                if ((x)->chunked_out)                                  \
                        vk_write("\r\n", 2);                           \
                else if ((x)->out_left >= 0)                           \
                        (x)->out_left -= (int64_t)(len);               \
        } while (0)

/* Ends the body (the last chunk for a chunked one). */
#define http_end(x)                                                        \
        do {                                                               \
                if ((x)->chunked_out && !(x)->head_only && !(x)->finished) \
                        vk_write("0\r\n\r\n", 5);                          \
                (x)->finished = 1;                                         \
        } while (0)

/* Reads up to len bytes of the request body into buf; rc gets the count, 0
 * at its end. A malformed chunked body raises EPROTO; a body still arriving
 * after BodyDeadlineSec raises ETIMEDOUT (the wait uses, and then clears, the
 * thread's vk_set_deadline()). Each wait is also bounded by BodyTimeoutSec. */
#define http_read_body(rc, x, buf, len)                                                            \
        do {                                                                                       \
                (rc) = 0;                                                                          \
                while (!(x)->body_done) {                                                          \
                        if (http__body_deadline(that, (x)) < 0)                                    \
                                vk_raise(ETIMEDOUT, "the request body took over BodyDeadlineSec"); \
                        vk_peek((x)->peek_n, (x)->peek_p, 0);                                      \
                        vk_set_deadline(that, 0);                                                  \
                        (rc) = http__body(that, (x), (x)->peek_p, (size_t)(x)->peek_n,             \
                                          &(x)->peek_p);                                           \
                        if ((rc) == HTTP_INCOMPLETE)                                               \
                                continue;                                                          \
                        if ((rc) < 0)                                                              \
                                vk_raisef(EPROTO, "bad request body (%d)", (int)-(rc));            \
                        if ((size_t)(rc) > (len))                                                  \
                                (rc) = (ssize_t)(len);                                             \
                        memcpy((buf), (x)->peek_p, (size_t)(rc));                                  \
                        http__body_consumed(that, (x), (size_t)(rc));                              \
                        break;                                                                     \
                }                                                                                  \
        } while (0)

void http__body_consumed(struct vk_thread *that, struct http_exchange *x, size_t n);
/* Sets the thread's deadline to the body's; returns 0, or -ETIMEDOUT once it passed. */
int http__body_deadline(struct vk_thread *that, const struct http_exchange *x);

#endif

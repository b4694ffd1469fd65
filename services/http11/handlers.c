/*
 * The bundled handlers that need no files: hello (a fixed response, for
 * benchmarks) and echo (the request reflected back, for tests: the request
 * line and headers as text, then the body, streamed and chunked).
 */
#include <stdio.h>

#include "http11_int.h"

void http11_hello(struct vk_thread *that)
{
        struct {
                struct http_exchange *x;
        } * self;
        vk_begin();
        http_respond(self->x, 200, "text/plain", 13);
        http_write(self->x, "Hello, World!", 13);
        vk_end();
}

void http11_echo(struct vk_thread *that)
{
        struct {
                struct http_exchange *x;
                size_t i;
                ssize_t n;
                char buf[1024];
        } * self;
        vk_begin();
        http_respond(self->x, 200, "text/plain", -1);
        self->n = snprintf(self->buf, sizeof self->buf, "%.*s %.*s HTTP/1.%d\n",
                           (int)self->x->req.method_len, self->x->req.method,
                           (int)self->x->req.target_len, self->x->req.target,
                           self->x->req.version_minor);
        http_write(self->x, self->buf, (size_t)self->n);
        for (self->i = 0; self->i < self->x->req.num_headers; self->i++) {
                const struct http_header *h = &self->x->req.headers[self->i];
                self->n = snprintf(self->buf, sizeof self->buf, "%.*s: %.*s\n", (int)h->name_len,
                                   h->name, (int)h->value_len, h->value);
                if (self->n >= (ssize_t)sizeof self->buf)
                        self->n = sizeof self->buf - 1;
                http_write(self->x, self->buf, (size_t)self->n);
        }
        http_write(self->x, "\n", 1);
        for (;;) {
                http_read_body(self->n, self->x, self->buf, sizeof self->buf);
                if (self->n == 0)
                        break;
                http_write(self->x, self->buf, (size_t)self->n);
        }
        http_end(self->x);
        vk_end();
}

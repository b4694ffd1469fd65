/*
 * greet.so: an HTTP service with a handler of its own, on vkd's http11
 * service (libvkd_http11). GET /NAME answers "hello, NAME"; POST reads the
 * body as it streams in and answers with its length and a checksum, chunked.
 */
#include <stdio.h>

#include <vk/module.h>
#include <http11.h>

static void greet(struct vk_thread *that)
{
        struct {
                struct http_exchange *x; /* first: given by the connection */
                ssize_t n;
                size_t total;
                unsigned sum;
                char buf[512];
        } *self;
        vk_begin();
        if (self->x->req.method_id == HTTP_METHOD_POST) {
                for (;;) {
                        http_read_body(self->n, self->x, self->buf, sizeof self->buf);
                        if (self->n == 0)
                                break;
                        self->total += (size_t)self->n;
                        for (ssize_t i = 0; i < self->n; i++)
                                self->sum = self->sum * 31 + (unsigned char)self->buf[i];
                }
                http_respond(self->x, 200, "text/plain", -1); /* length unknown: chunked */
                self->n = snprintf(self->buf, sizeof self->buf, "%zu bytes, sum %08x\n",
                                   self->total, self->sum);
                http_write(self->x, self->buf, (size_t)self->n);
                http_end(self->x);
        } else {
                self->n = snprintf(self->buf, sizeof self->buf, "hello, %.*s\n",
                                   (int)self->x->req.path_len - 1, self->x->req.path + 1);
                http_respond(self->x, 200, "text/plain", self->n);
                http_write(self->x, self->buf, (size_t)self->n);
        }
        vk_end();
}

static int init(const struct vk_module_kv *kv, size_t n, void **state, char *err, size_t errlen)
{
        return http11_init_with(kv, n, state, err, errlen, greet);
}

VK_MODULE(.name = "greet", .version = "1.0", .init = init, .fini = http11_fini,
          .main = http11_conn);

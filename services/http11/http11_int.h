/*
 * Internals of the HTTP/1.1 service shared by its files: the module's
 * configuration and the bundled handlers.
 */
#ifndef VKD_HTTP11_INT_H
#define VKD_HTTP11_INT_H

#include <limits.h>

#include "http11.h"

struct http11_conf {
        vk_thread_fn *handler;
        struct http_limits lim;
        uint64_t idle_ms;          /* keep-alive: wait for the next request */
        uint64_t header_ms;        /* a whole request head */
        uint64_t body_ms;          /* each read of a body, each write of a response */
        uint64_t body_deadline_ms; /* a whole request body */
        int root_fd;               /* static: the document root, -1 otherwise */
        char root[PATH_MAX];
};

/* A complete error response with Connection: close; returns its length. */
int http11_error_response(char *buf, size_t cap, int status);

/* Bundled handlers (Handler=hello|echo|static). */
void http11_hello(struct vk_thread *that);
void http11_echo(struct vk_thread *that);
void http11_static(struct vk_thread *that);

/* Parses the [Module] keys into conf, with `handler` (Handler= and Root= are then refused) or
 * the one Handler= names. Returns 0, or -EINVAL with every problem in err, one a line, each as
 * "file:line: key: what is wrong". A static handler's root_fd is conf's to close. */
struct vk_module_kv;
int http11_configure(struct http11_conf *conf, const struct vk_module_kv *kv, size_t n,
                     vk_thread_fn *handler, char *err, size_t errlen);

#endif

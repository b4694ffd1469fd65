/*
 * The HTTP/1.1 service as a daemon module: its [Module] keys and init.
 *
 *   Handler=hello|echo|static   what answers (default hello)
 *   Root=/srv/www               static: the document root (required for it)
 *   MaxRequestLine=8K           414 beyond
 *   MaxHeaderBytes=64K          431 beyond (the whole head)
 *   MaxHeaders=100              431 beyond
 *   MaxBodyBytes=1M             413 beyond
 *   HeaderTimeoutSec=10         a whole request head (slowloris)
 *   BodyTimeoutSec=30           each body read and response write
 *   BodyDeadlineSec=60          a whole request body (a body trickling in)
 *   KeepAliveTimeoutSec=60      idle between requests
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <vk/module.h>

#include "http11_int.h"

/* "64K", "1M", "100": bytes, within [1, max]. */
static int parse_size(const char *s, uint64_t max, uint64_t *ret)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || errno || *s == '-')
                return -EINVAL;
        if (*end == 'K')
                v <<= 10, end++;
        else if (*end == 'M')
                v <<= 20, end++;
        else if (*end == 'G')
                v <<= 30, end++;
        if (*end || !v || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* "10", "2.5", "500ms": milliseconds, within [1 ms, 1 day]. */
static int parse_ms(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v <= 0)
                return -EINVAL;
        if (!strcmp(end, "ms"))
                v /= 1000;
        else if (*end && strcmp(end, "s"))
                return -EINVAL;
        if (v * 1000 < 1 || v > 86400)
                return -EINVAL;
        *ret = (uint64_t)(v * 1000);
        return 0;
}

/* Appends "file:line: key: <fmt>" to err as one more line; returns -EINVAL. */
static int key_error(char *err, size_t errlen, const struct vk_module_kv *kv, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int key_error(char *err, size_t errlen, const struct vk_module_kv *kv, const char *fmt, ...)
{
        size_t at = strnlen(err, errlen);
        va_list ap;
        int n;

        if (at && at + 1 < errlen)
                err[at++] = '\n';
        if (at + 1 >= errlen)
                return -EINVAL; /* full: the lines before say enough */
        n = snprintf(err + at, errlen - at, "%s:%u: %s: ", kv->file ? kv->file : "-", kv->line,
                     kv->key);
        if (n >= 0 && (size_t)n < errlen - at) {
                va_start(ap, fmt);
                vsnprintf(err + at + n, errlen - at - (size_t)n, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

int http11_configure(struct http11_conf *conf, const struct vk_module_kv *kv, size_t n,
                     vk_thread_fn *handler, char *err, size_t errlen)
{
        const struct vk_module_kv *handler_kv = NULL, *root = NULL;
        const char *name;
        int ret = 0;

        memset(conf, 0, sizeof *conf);
        conf->root_fd = -1;
        conf->lim = http_limits_default;
        conf->idle_ms = 60000;
        conf->header_ms = 10000;
        conf->body_ms = 30000;
        conf->body_deadline_ms = 60000;
        if (errlen)
                err[0] = 0;
        /* Every key is checked, so one run names every problem. */
        for (size_t i = 0; i < n; i++) {
                const char *k = kv[i].key, *v = kv[i].value;
                uint64_t u;
                int r = 0;
                if ((!strcmp(k, "Handler") || !strcmp(k, "Root")) && handler) {
                        ret = key_error(err, errlen, &kv[i], "this module brings its own handler");
                        continue;
                }
                if (!strcmp(k, "Handler"))
                        handler_kv = &kv[i];
                else if (!strcmp(k, "Root"))
                        root = &kv[i];
                else if (!strcmp(k, "MaxRequestLine"))
                        r = parse_size(v, 1 << 20, &u), conf->lim.max_request_line = u;
                else if (!strcmp(k, "MaxHeaderBytes"))
                        r = parse_size(v, 1 << 20, &u), conf->lim.max_header_bytes = u;
                else if (!strcmp(k, "MaxHeaders"))
                        r = parse_size(v, 4096, &u), conf->lim.max_headers = u;
                else if (!strcmp(k, "MaxBodyBytes"))
                        r = parse_size(v, UINT64_MAX >> 1, &u), conf->lim.max_body = u;
                else if (!strcmp(k, "HeaderTimeoutSec"))
                        r = parse_ms(v, &conf->header_ms);
                else if (!strcmp(k, "BodyTimeoutSec"))
                        r = parse_ms(v, &conf->body_ms);
                else if (!strcmp(k, "BodyDeadlineSec"))
                        r = parse_ms(v, &conf->body_deadline_ms);
                else if (!strcmp(k, "KeepAliveTimeoutSec"))
                        r = parse_ms(v, &conf->idle_ms);
                else {
                        ret = key_error(err, errlen, &kv[i], "unknown key of the http11 module");
                        continue;
                }
                if (r < 0)
                        ret = key_error(err, errlen, &kv[i], "bad value \"%s\"", v);
        }
        if (handler) {
                conf->handler = handler;
                return ret;
        }
        name = handler_kv ? handler_kv->value : "hello";
        if (!strcmp(name, "hello")) {
                conf->handler = http11_hello;
        } else if (!strcmp(name, "echo")) {
                conf->handler = http11_echo;
        } else if (!strcmp(name, "static")) {
                conf->handler = http11_static;
                if (!root)
                        return key_error(err, errlen, handler_kv,
                                         "the static handler needs Root=, a document root");
                conf->root_fd = open(root->value, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (conf->root_fd < 0)
                        return key_error(err, errlen, root, "%s: %s", root->value, strerror(errno));
                snprintf(conf->root, sizeof conf->root, "%s", root->value);
        } else {
                ret = key_error(err, errlen, handler_kv, "\"%s\" is not one of hello, echo, static",
                                name);
        }
        return ret;
}

int http11_init_with(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                     size_t errlen, vk_thread_fn *handler)
{
        struct http11_conf *conf = malloc(sizeof *conf);
        if (!conf)
                return -ENOMEM;
        int r = http11_configure(conf, kv, n, handler, err, errlen);
        if (r < 0) {
                http11_fini(conf);
                return r;
        }
        *ret_state = conf;
        return 0;
}

void http11_fini(void *state)
{
        struct http11_conf *conf = state;
        if (conf && conf->root_fd >= 0)
                close(conf->root_fd);
        free(conf);
}

#ifndef HTTP11_NO_DESCRIPTOR /* the library for other modules has none */
static const struct vk_module_key http11_keys[] = {
        {"Handler", "hello | echo | static"},
        {"Root", "document root of the static handler"},
        {"MaxRequestLine", "bytes of a request line (414 beyond)"},
        {"MaxHeaderBytes", "bytes of a request head (431 beyond)"},
        {"MaxHeaders", "header fields in a request (431 beyond)"},
        {"MaxBodyBytes", "bytes of a request body (413 beyond)"},
        {"HeaderTimeoutSec", "time to receive a whole request head"},
        {"BodyTimeoutSec", "time for each body read or response write"},
        {"BodyDeadlineSec", "time to receive a whole request body"},
        {"KeepAliveTimeoutSec", "idle time allowed between requests"},
        {NULL, NULL},
};

static int http11_init(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                       size_t errlen)
{
        return http11_init_with(kv, n, ret_state, err, errlen, NULL);
}

VK_MODULE(.name = "http11", .version = "1.0", .keys = http11_keys, .init = http11_init,
          .fini = http11_fini, .main = http11_conn);
#endif

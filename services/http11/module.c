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

int http11_configure(struct http11_conf *conf, const struct vk_module_kv *kv, size_t n, char *err,
                     size_t errlen)
{
        const char *handler = "hello", *root = NULL;
        memset(conf, 0, sizeof *conf);
        conf->root_fd = -1;
        conf->lim = http_limits_default;
        conf->idle_ms = 60000;
        conf->header_ms = 10000;
        conf->body_ms = 30000;
        conf->body_deadline_ms = 60000;
        conf->root_fd = -1;
        for (size_t i = 0; i < n; i++) {
                const char *k = kv[i].key, *v = kv[i].value;
                uint64_t u;
                int r = 0;
                if (!strcmp(k, "Handler"))
                        handler = v;
                else if (!strcmp(k, "Root"))
                        root = v;
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
                        snprintf(err, errlen, "%s:%u: %s: unknown key of the http11 module",
                                 kv[i].file ? kv[i].file : "-", kv[i].line, k);
                        return -EINVAL;
                }
                if (r < 0) {
                        snprintf(err, errlen, "%s:%u: %s: bad value \"%s\"",
                                 kv[i].file ? kv[i].file : "-", kv[i].line, k, v);
                        return -EINVAL;
                }
        }
        if (!strcmp(handler, "hello")) {
                conf->handler = http11_hello;
        } else if (!strcmp(handler, "echo")) {
                conf->handler = http11_echo;
        } else if (!strcmp(handler, "static")) {
                conf->handler = http11_static;
                if (!root) {
                        snprintf(err, errlen, "Root: the static handler needs a document root");
                        return -EINVAL;
                }
                conf->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (conf->root_fd < 0) {
                        snprintf(err, errlen, "Root: %s: %s", root, strerror(errno));
                        return -errno;
                }
                snprintf(conf->root, sizeof conf->root, "%s", root);
        } else {
                snprintf(err, errlen, "Handler: \"%s\" is not one of hello, echo, static",
                         handler);
                return -EINVAL;
        }
        return 0;
}

int http11_init_with(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                     size_t errlen, vk_thread_fn *handler)
{
        struct http11_conf *conf = malloc(sizeof *conf);
        if (!conf)
                return -ENOMEM;
        int r = http11_configure(conf, kv, n, err, errlen);
        if (r == 0 && handler) {
                for (size_t i = 0; i < n; i++) {
                        if (!strcmp(kv[i].key, "Handler") || !strcmp(kv[i].key, "Root")) {
                                snprintf(err, errlen,
                                         "%s:%u: %s: this module brings its own handler",
                                         kv[i].file ? kv[i].file : "-", kv[i].line, kv[i].key);
                                r = -EINVAL;
                        }
                }
                conf->handler = handler;
        }
        if (r < 0) {
                if (conf->root_fd >= 0)
                        close(conf->root_fd);
                free(conf);
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

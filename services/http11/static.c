/*
 * The static file handler (Handler=static, Root=DIR): GET and HEAD of files
 * under the root, sent with sendfile(2); ETag and Last-Modified with their
 * conditional requests; one byte range; MIME types from the file name;
 * index.html for a directory. The path is resolved beneath the root with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so neither `..` nor a
 * symbolic link can leave it; where openat2 is missing, `..` segments are
 * refused and the last component is opened with O_NOFOLLOW.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include "http11_int.h"

static const struct {
        const char *ext;
        const char *type;
} mime_types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css"},
        {"js", "text/javascript"},
        {"json", "application/json"},
        {"txt", "text/plain; charset=utf-8"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"svg", "image/svg+xml"},
        {"ico", "image/x-icon"},
        {"webp", "image/webp"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
        {"xml", "application/xml"},
        {"woff2", "font/woff2"},
        {"mp4", "video/mp4"},
};

static const char *mime_type(const char *path)
{
        const char *dot = strrchr(path, '.');
        if (dot && !strchr(dot, '/'))
                for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
                        if (!strcasecmp(dot + 1, mime_types[i].ext))
                                return mime_types[i].type;
        return "application/octet-stream";
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c |= 0x20;
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes the path into out (relative: no leading '/'). Returns 0,
 * or -1 for a path that cannot name a file under the root. */
int http11_static_path(const char *in, size_t len, char *out, size_t cap)
{
        size_t o = 0;
        while (len && *in == '/') {
                in++;
                len--;
        }
        for (size_t i = 0; i < len; i++) {
                char c = in[i];
                if (c == '%') {
                        if (i + 2 >= len)
                                return -1;
                        int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
                        if (h < 0 || l < 0)
                                return -1;
                        c = (char)(h * 16 + l);
                        i += 2;
                }
                if (c == 0 || o + 1 >= cap)
                        return -1;
                out[o++] = c;
        }
        out[o] = 0;
        /* No ".." segment, whatever the resolver: a clear 404, not a probe. */
        for (const char *s = out; *s;) {
                const char *e = strchr(s, '/');
                size_t n = e ? (size_t)(e - s) : strlen(s);
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return -1;
                s += n + (e ? 1 : 0);
        }
        return 0;
}

static int open_beneath(int root, const char *path)
{
#if defined(__linux__) && defined(SYS_openat2)
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
                                          RESOLVE_NO_MAGICLINKS};
        int fd = (int)syscall(SYS_openat2, root, path[0] ? path : ".", &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS)
                return fd;
#endif
        return openat(root, path[0] ? path : ".", O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
}

/* Opens the file a request names: a directory gives its index.html.
 * Returns the descriptor (and *st), or -status. */
static int open_file(const struct http11_conf *conf, const struct http_request *req,
                     struct stat *st, char *path, size_t cap)
{
        if (!req->path || http11_static_path(req->path, req->path_len, path, cap) < 0)
                return -404;
        int fd = open_beneath(conf->root_fd, path);
        if (fd < 0)
                return errno == EACCES ? -403 : -404;
        if (fstat(fd, st) < 0) {
                close(fd);
                return -404;
        }
        if (S_ISDIR(st->st_mode)) {
                int dfd = fd;
                fd = openat(dfd, "index.html", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                close(dfd);
                if (fd < 0 || fstat(fd, st) < 0) {
                        if (fd >= 0)
                                close(fd);
                        return -404;
                }
                snprintf(path, cap, "index.html");
        }
        if (!S_ISREG(st->st_mode)) {
                close(fd);
                return -404;
        }
        return fd;
}

/* Parses "bytes=a-b", "bytes=a-", "bytes=-n" against size. Returns 1 and the
 * range, 0 to ignore the header (syntax we do not serve: send it all), or -1
 * when unsatisfiable. */
int http11_parse_range(const char *v, size_t n, uint64_t size, uint64_t *first, uint64_t *last)
{
        if (n < 7 || strncasecmp(v, "bytes=", 6))
                return 0;
        v += 6;
        n -= 6;
        if (memchr(v, ',', n))
                return 0; /* several ranges: answered with the whole file */
        uint64_t a = 0, b = 0;
        size_t i = 0;
        int has_a = 0, has_b = 0;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, has_a = 1) {
                if (a > (UINT64_MAX - 9) / 10)
                        return 0;
                a = a * 10 + (uint64_t)(v[i] - '0');
        }
        if (i == n || v[i] != '-')
                return 0;
        for (i++; i < n && v[i] >= '0' && v[i] <= '9'; i++, has_b = 1) {
                if (b > (UINT64_MAX - 9) / 10)
                        return 0;
                b = b * 10 + (uint64_t)(v[i] - '0');
        }
        if (i != n || (!has_a && !has_b))
                return 0;
        if (!has_a) { /* suffix: the last b bytes */
                if (!b || !size)
                        return -1;
                *first = b >= size ? 0 : size - b;
                *last = size - 1;
                return 1;
        }
        if (a >= size || (has_b && b < a))
                return has_b && b < a ? 0 : -1;
        *first = a;
        *last = has_b && b < size ? b : size - 1;
        return 1;
}

static int etag_match(const char *list, size_t n, const char *etag)
{
        size_t el = strlen(etag);
        if (n == 1 && list[0] == '*')
                return 1;
        for (size_t i = 0; i + el <= n; i++) {
                /* weak comparison: W/"x" matches "x" */
                if (!memcmp(list + i, etag, el))
                        return 1;
        }
        return 0;
}

void http11_static(struct vk_thread *that)
{
        struct {
                struct http_exchange *x;
                int fd;
                int status;
                uint64_t first, last;
                ssize_t n;
                struct stat st;
                char etag[64];
                char path[512];
                char extra[256];
        } * self;
        vk_begin();
        self->fd = -1;
        if (self->x->req.method_id != HTTP_METHOD_GET &&
            self->x->req.method_id != HTTP_METHOD_HEAD) {
                http_respond_with(self->x, 405, "text/plain", 19, "Allow: GET, HEAD\r\n");
                http_write(self->x, "Method Not Allowed\n", 19);
                goto out;
        }
        self->fd =
                open_file(self->x->conf, &self->x->req, &self->st, self->path, sizeof self->path);
        if (self->fd < 0) {
                self->status = -self->fd;
                self->fd = -1;
                self->n = http11_error_response(self->path, sizeof self->path, self->status);
                /* not Connection: close here: a 404 keeps the connection */
                http_respond(self->x, self->status, "text/plain",
                             (int64_t)strlen(http_status_reason(self->status)) + 1);
                http_write(self->x, http_status_reason(self->status),
                           strlen(http_status_reason(self->status)));
                http_write(self->x, "\n", 1);
                goto out;
        }
        if (vk_own_fd(that, self->fd) < 0) {
                close(self->fd);
                self->fd = -1;
                vk_raise(EMFILE, "too many files open in this connection");
        }
        snprintf(self->etag, sizeof self->etag, "\"%llx-%llx-%llx\"",
                 (unsigned long long)self->st.st_ino, (unsigned long long)self->st.st_size,
                 (unsigned long long)self->st.st_mtime);
        {
                char lm[40];
                struct tm tm;
                gmtime_r(&self->st.st_mtime, &tm);
                strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
                int len = snprintf(self->extra, sizeof self->extra,
                                   "ETag: %s\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n",
                                   self->etag, lm);
                const struct http_header *inm = http_header_find(&self->x->req, "if-none-match");
                const struct http_header *ims =
                        http_header_find(&self->x->req, "if-modified-since");
                int not_modified = 0;
                if (inm) {
                        not_modified = etag_match(inm->value, inm->value_len, self->etag);
                } else if (ims) {
                        struct tm t = {0};
                        char v[64];
                        size_t vl = ims->value_len < sizeof v - 1 ? ims->value_len : sizeof v - 1;
                        memcpy(v, ims->value, vl);
                        v[vl] = 0;
                        const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &t);
                        not_modified = end && !*end && timegm(&t) >= self->st.st_mtime;
                }
                if (not_modified) {
                        self->status = 304;
                } else {
                        self->status = 200;
                        self->first = 0;
                        self->last = (uint64_t)self->st.st_size - 1;
                        const struct http_header *rh = http_header_find(&self->x->req, "range");
                        int rr = rh ? http11_parse_range(rh->value, rh->value_len,
                                                         (uint64_t)self->st.st_size, &self->first,
                                                         &self->last)
                                    : 0;
                        if (rr < 0) {
                                self->status = 416;
                                snprintf(self->extra + len, sizeof self->extra - (size_t)len,
                                         "Content-Range: bytes */%llu\r\n",
                                         (unsigned long long)self->st.st_size);
                        } else if (rr > 0) {
                                self->status = 206;
                                snprintf(self->extra + len, sizeof self->extra - (size_t)len,
                                         "Content-Range: bytes %llu-%llu/%llu\r\n",
                                         (unsigned long long)self->first,
                                         (unsigned long long)self->last,
                                         (unsigned long long)self->st.st_size);
                        }
                }
        }
        if (self->status == 304) {
                http_respond_with(self->x, 304, NULL, -1, self->extra);
                goto out;
        }
        if (self->status == 416) {
                http_respond_with(self->x, 416, NULL, 0, self->extra);
                goto out;
        }
        if (!self->st.st_size) {
                http_respond_with(self->x, 200, mime_type(self->path), 0, self->extra);
                goto out;
        }
        http_respond_with(self->x, self->status, mime_type(self->path),
                          (int64_t)(self->last - self->first + 1), self->extra);
        if (!self->x->head_only) {
                vk_sendfile(self->n, self->fd, (off_t)self->first,
                            (size_t)(self->last - self->first + 1));
                self->x->out_left -= self->n;
        }
out:
        vk_finally();
        if (self->fd >= 0) {
                vk_close_fd(that, self->fd);
                self->fd = -1;
        }
        vk_end();
}

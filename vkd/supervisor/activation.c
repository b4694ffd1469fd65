/*
 * Listening sockets (see activation.h). Every socket is non-blocking and close-on-exec from
 * birth: workers inherit them through fork() only, never through exec(), and the kernel's
 * accept loop relies on EAGAIN.
 */
#include "activation.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifdef VKD_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define LISTEN_BACKLOG 4096

void format_sockaddr(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size)
{
        char host[INET6_ADDRSTRLEN];

        switch (ss->ss_family) {
        case AF_INET: {
                const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
                break;
        }
        case AF_INET6: {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
                break;
        }
        case AF_UNIX: {
                const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
                if (len > offsetof(struct sockaddr_un, sun_path) && un->sun_path[0])
                        snprintf(buf, size, "unix:%.*s",
                                 (int)(len - offsetof(struct sockaddr_un, sun_path)), un->sun_path);
                else
                        snprintf(buf, size, "unix:(unnamed)");
                break;
        }
        default:
                snprintf(buf, size, "(family %d)", ss->ss_family);
        }
}

static void local_address(int fd, char *buf, size_t size)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        memset(&ss, 0, sizeof(ss));
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
                snprintf(buf, size, "(fd %d)", fd);
        else
                format_sockaddr(&ss, len, buf, size);
}

static struct listener *listener_add(struct listeners *ls, int fd, bool inherited)
{
        struct listener *l = calloc(1, sizeof(*l));

        if (!l)
                return NULL;
        l->fd = fd;
        l->inherited = inherited;
        l->next = ls->head;
        ls->head = l;
        return l;
}

/* ------------------------------------------------------------------ inherited sockets */

int activation_inherit(struct listeners *ls, char *err, size_t errlen)
{
#ifdef VKD_WITH_SYSTEMD
        char **names = NULL;
        int n, r = 0;

        /* unset_environment = 1: workers and anything they run must not believe the sockets
         * are theirs to take. */
        n = sd_listen_fds_with_names(1, &names);
        if (n < 0) {
                snprintf(err, errlen, "cannot read the sockets passed by systemd: %s",
                         strerror(-n));
                return n;
        }
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                const char *name = names && names[i] ? names[i] : "unknown";
                struct listener *l;
                int flags;

                if (r < 0)
                        continue;
                if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
                        snprintf(err, errlen,
                                 "socket \"%s\" (fd %d) passed by systemd is not a listening "
                                 "stream socket (vkd needs ListenStream=)",
                                 name, fd);
                        r = -ENOTSOCK;
                        continue;
                }
                flags = fcntl(fd, F_GETFL);
                if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "socket \"%s\" (fd %d): %s", name, fd,
                                 strerror(errno));
                        continue;
                }
                l = listener_add(ls, fd, true);
                if (!l) {
                        r = -ENOMEM;
                        snprintf(err, errlen, "out of memory");
                        continue;
                }
                snprintf(l->text, sizeof(l->text), "systemd:%s", name);
                local_address(fd, l->bound, sizeof(l->bound));
        }
        if (names)
                for (int i = 0; i < n; i++)
                        free(names[i]);
        free(names);
        return r < 0 ? r : n;
#else
        (void)ls;
        (void)err;
        (void)errlen;
        return 0;
#endif
}

#ifdef __APPLE__
#include <launch.h>

/* launchd (macOS): the sockets of the plist's Sockets dictionary, asked for by
 * key the first time a Listen= names it (launchd has no list to inherit up
 * front). Returns how many sockets the key had, or -errno. Compiled on Apple
 * platforms only; the Linux build and tests never see it. */
static int launchd_take(struct listeners *ls, const char *name, const char *text)
{
        int *fds = NULL;
        size_t cnt = 0;
        int r = launch_activate_socket(name, &fds, &cnt);
        if (r != 0)
                return -r;
        for (size_t i = 0; i < cnt; i++) {
                int flags = fcntl(fds[i], F_GETFL);
                struct listener *l;
                if (flags < 0 || fcntl(fds[i], F_SETFL, flags | O_NONBLOCK) < 0 ||
                    fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0 ||
                    !(l = listener_add(ls, fds[i], true))) {
                        for (size_t j = i; j < cnt; j++)
                                close(fds[j]);
                        free(fds);
                        return -ENOMEM;
                }
                snprintf(l->text, sizeof(l->text), "%s", text);
                local_address(fds[i], l->bound, sizeof(l->bound));
        }
        free(fds);
        return (int)cnt;
}
#endif

/* ------------------------------------------------------------------ binding */

static int bind_inet(const struct conf_listen *cl, int *ret_fd)
{
        struct sockaddr_storage addr = cl->addr;
        socklen_t addrlen = cl->addrlen;
        int one = 1, fd;

        fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && cl->dual_stack && errno == EAFNOSUPPORT) {
                /* No IPv6 on this host: "*" still means every IPv4 address. */
                struct sockaddr_in *in = (struct sockaddr_in *)&addr;
                in_port_t port = ((const struct sockaddr_in6 *)&cl->addr)->sin6_port;

                memset(&addr, 0, sizeof(addr));
                in->sin_family = AF_INET;
                in->sin_addr.s_addr = htonl(INADDR_ANY);
                in->sin_port = port;
                addrlen = sizeof(*in);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                goto fail;
        if (addr.ss_family == AF_INET6) {
                int v6only = cl->dual_stack ? 0 : 1;

                if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0)
                        goto fail;
        }
        if (bind(fd, (const struct sockaddr *)&addr, addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
                goto fail;
        *ret_fd = fd;
        return 0;
fail:;
        int r = -errno;
        close(fd);
        return r;
}

/* A socket file left by a previous run is removed, but not one somebody still accepts on. */
static int unix_clear_stale(const struct sockaddr_un *un, socklen_t len)
{
        struct stat st;
        int fd, r;

        if (lstat(un->sun_path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        r = connect(fd, (const struct sockaddr *)un, len);
        close(fd);
        if (r == 0)
                return -EADDRINUSE;
        if (unlink(un->sun_path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int bind_unix(const struct conf_listen *cl, int *ret_fd)
{
        const struct sockaddr_un *un = (const struct sockaddr_un *)&cl->addr;
        int fd, r;

        r = unix_clear_stale(un, cl->addrlen);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (const struct sockaddr *)un, cl->addrlen) < 0)
                goto fail;
        if (chmod(un->sun_path, cl->mode) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
                r = -errno;
                unlink(un->sun_path);
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
fail:
        r = -errno;
        close(fd);
        return r;
}

static bool same_address(const struct sockaddr_storage *a, socklen_t alen,
                         const struct sockaddr_storage *b, socklen_t blen)
{
        if (a->ss_family != b->ss_family)
                return false;
        if (a->ss_family == AF_INET) {
                const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
                return x->sin_port && x->sin_port == y->sin_port &&
                       x->sin_addr.s_addr == y->sin_addr.s_addr;
        }
        if (a->ss_family == AF_INET6) {
                const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
                return x->sin6_port && x->sin6_port == y->sin6_port &&
                       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
        }
        if (a->ss_family == AF_UNIX)
                return alen == blen && memcmp(a, b, alen) == 0;
        return false;
}

static struct listener *find_inherited_by_address(struct listeners *ls,
                                                  const struct conf_listen *cl)
{
        for (struct listener *l = ls->head; l; l = l->next) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);

                if (!l->inherited)
                        continue;
                memset(&ss, 0, sizeof(ss));
                if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
                        continue;
                if (same_address(&ss, len, &cl->addr, cl->addrlen))
                        return l;
        }
        return NULL;
}

int activation_resolve(struct listeners *ls, const struct conf_service *s,
                       const struct conf_listen *cl, struct listener **out, size_t cap, size_t *n,
                       char *err, size_t errlen)
{
        char text[sizeof(((struct listener *)0)->text)];
        struct listener *l;
        size_t found = 0;
        int fd = -1, r;

        conf_listen_format(cl, text, sizeof(text));
        if (cl->kind == CONF_LISTEN_SYSTEMD) {
                for (l = ls->head; l; l = l->next) {
                        if (!l->inherited || strcmp(l->text, text) != 0)
                                continue;
                        if (*n >= cap) {
                                snprintf(err, errlen, "%s:%u: Listen: too many sockets", s->file,
                                         cl->line);
                                return -E2BIG;
                        }
                        out[(*n)++] = l;
                        found++;
                }
                if (found)
                        return 0;
#ifdef __APPLE__
                if (launchd_take(ls, cl->name, text) > 0)
                        return activation_resolve(ls, s, cl, out, cap, n, err, errlen);
#endif
                snprintf(err, errlen,
                         "%s:%u: Listen: no socket named \"%s\" was passed in (systemd's "
                         "FileDescriptorName=, or a key of launchd's Sockets)",
                         s->file, cl->line, cl->name);
                return -ENOENT;
        }
        if (*n >= cap) {
                snprintf(err, errlen, "%s:%u: Listen: too many sockets", s->file, cl->line);
                return -E2BIG;
        }
        for (l = ls->head; l; l = l->next)
                if (!l->inherited && strcmp(l->text, text) == 0)
                        break;
        if (!l)
                l = find_inherited_by_address(ls, cl);
        if (!l) {
                r = cl->kind == CONF_LISTEN_UNIX ? bind_unix(cl, &fd) : bind_inet(cl, &fd);
                if (r < 0) {
                        snprintf(err, errlen, "%s:%u: Listen: cannot listen on %s: %s", s->file,
                                 cl->line, text, strerror(-r));
                        return r;
                }
                l = listener_add(ls, fd, false);
                if (!l) {
                        close(fd);
                        snprintf(err, errlen, "out of memory");
                        return -ENOMEM;
                }
                snprintf(l->text, sizeof(l->text), "%s", text);
                local_address(fd, l->bound, sizeof(l->bound));
                l->conf = *cl;
        }
        out[(*n)++] = l;
        return 0;
}

/* ------------------------------------------------------------------ closing */

static void listener_close(struct listener *l)
{
        if (!l->inherited && l->conf.kind == CONF_LISTEN_UNIX)
                unlink(((const struct sockaddr_un *)&l->conf.addr)->sun_path);
        if (l->fd >= 0)
                close(l->fd);
        free(l);
}

void activation_gc(struct listeners *ls)
{
        for (struct listener **p = &ls->head; *p;) {
                struct listener *l = *p;

                if (l->inherited || l->refs) {
                        p = &l->next;
                        continue;
                }
                *p = l->next;
                listener_close(l);
        }
}

void activation_close_all(struct listeners *ls)
{
        while (ls->head) {
                struct listener *l = ls->head;
                ls->head = l->next;
                listener_close(l);
        }
}

/*
 * TLS below the socket rings. When the kernel was given an SSL_CTX, every
 * connection a listener accepts gets an SSL object, kept in a table of the
 * kernel's own (malloc'd, indexed by descriptor, never in a micro-heap: a
 * module can neither read the session's keys nor forge the pointer). The
 * ring ops in io.c call tls_read and tls_write instead of readv and writev,
 * so the module's rings hold plaintext; the handshake runs inside the first
 * of them, non-blocking, its WANT_READ / WANT_WRITE reported as -EAGAIN and
 * waited for like any other readiness. Records are userspace OpenSSL's: no
 * kernel TLS (kTLS) yet.
 */
#include <errno.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kern.h"

int tls_init(struct vk_kernel *k)
{
        if (!k->cfg.tls_ctx)
                return 0;
        k->tls = calloc((size_t)k->nfds, sizeof *k->tls);
        return k->tls ? 0 : -ENOMEM;
}

void tls_fini(struct vk_kernel *k)
{
        free(k->tls);
        k->tls = NULL;
}

int tls_accept(struct vk_kernel *k, int fd)
{
        if (!k->tls || fd < 0 || fd >= k->nfds)
                return 0;
        SSL *s = SSL_new(k->cfg.tls_ctx);
        if (!s)
                return -ENOMEM;
        if (!SSL_set_fd(s, fd)) {
                SSL_free(s);
                return -ENOMEM;
        }
        SSL_set_accept_state(s);
        k->tls[fd] = s;
        return 0;
}

void tls_close(struct vk_kernel *k, int fd)
{
        if (!k->tls || fd < 0 || fd >= k->nfds || !k->tls[fd])
                return;
        SSL *s = k->tls[fd];
        k->tls[fd] = NULL;
        /* close_notify, once: a peer that cannot take it now loses nothing
         * it was owed, the data went before it. */
        if (SSL_is_init_finished(s))
                SSL_shutdown(s);
        SSL_free(s);
        ERR_clear_error();
}

/* Maps what an SSL_read/SSL_write returned to bytes, 0 (end) or -errno. */
static ssize_t tls_result(SSL *s, int r)
{
        if (r > 0)
                return r;
        int e = SSL_get_error(s, r);
        ERR_clear_error();
        switch (e) {
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
                return -EAGAIN;
        case SSL_ERROR_ZERO_RETURN:
                return 0; /* close_notify */
        case SSL_ERROR_SYSCALL:
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        return -EAGAIN;
                return errno ? -errno : -ECONNRESET;
        default:
                return -EPROTO; /* a bad handshake or record */
        }
}

ssize_t tls_read(SSL *s, void *buf, size_t len)
{
        /* A close without close_notify reads as 0 too: the context has
         * SSL_OP_IGNORE_UNEXPECTED_EOF (vkd/supervisor/tls_conf.c). */
        return tls_result(s, SSL_read(s, buf, len > INT32_MAX ? INT32_MAX : (int)len));
}

ssize_t tls_write(SSL *s, const void *buf, size_t len)
{
        return tls_result(s, SSL_write(s, buf, len > INT32_MAX ? INT32_MAX : (int)len));
}

int tls_shutdown(SSL *s)
{
        if (!SSL_is_init_finished(s))
                return 0;
        int r = SSL_shutdown(s);
        ERR_clear_error();
        return r < 0 ? -EAGAIN : 0;
}

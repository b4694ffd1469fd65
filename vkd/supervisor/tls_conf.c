/*
 * [Service] TLS*= into an SSL_CTX (tls_conf.h). Each failure names the
 * field it comes from, so the loader can say file:line. The context is
 * built twice: once by the loader, only to check it, and once by each
 * worker, which keeps it for the virtual kernel (vkd/kernel/tls.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_conf.h"

static void tls_why(char *msg, size_t len, const char *what)
{
        unsigned long e = ERR_peek_last_error();
        char buf[256] = "";
        if (e)
                ERR_error_string_n(e, buf, sizeof buf);
        snprintf(msg, len, "%s%s%s", what, e ? ": " : "", buf);
        ERR_clear_error();
}

/* A file OpenSSL is about to read: its own message for a missing one is
 * only "system lib". */
static int tls_readable(const char *path, char *msg, size_t len)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(msg, len, "cannot read %s: %s", path, strerror(errno));
                return -1;
        }
        fclose(f);
        return 0;
}

/* TLSProtocols= into the context's lowest and highest version: only a
 * contiguous range can be asked of OpenSSL. */
static int tls_protocols(SSL_CTX *c, const char *list, char *msg, size_t len)
{
        static const struct {
                const char *name;
                int v;
        } names[] = {{"TLSv1", TLS1_VERSION},
                     {"TLSv1.1", TLS1_1_VERSION},
                     {"TLSv1.2", TLS1_2_VERSION},
                     {"TLSv1.3", TLS1_3_VERSION}};
        int lo = 0, hi = 0;
        char copy[256];
        if (strlen(list) >= sizeof copy) {
                snprintf(msg, len, "list too long");
                return -1;
        }
        strcpy(copy, list);
        for (char *save, *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                size_t i;
                for (i = 0; i < sizeof names / sizeof names[0]; i++)
                        if (!strcasecmp(w, names[i].name))
                                break;
                if (i == sizeof names / sizeof names[0]) {
                        snprintf(msg, len,
                                 "unknown protocol \"%s\" (use TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
                                 w);
                        return -1;
                }
                if (!lo || names[i].v < lo)
                        lo = names[i].v;
                if (names[i].v > hi)
                        hi = names[i].v;
        }
        if (!lo) {
                snprintf(msg, len, "no protocol given");
                return -1;
        }
        if (!SSL_CTX_set_min_proto_version(c, lo) || !SSL_CTX_set_max_proto_version(c, hi)) {
                tls_why(msg, len, "cannot set the protocol range");
                return -1;
        }
        return 0;
}

/* TLSALPN= in wire form (length-prefixed names), kept with the context. */
static int tls_alpn_index = -1;

static int tls_alpn_select(SSL *s, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned inlen, void *arg)
{
        (void)s;
        const unsigned char *ours = arg;
        if (SSL_select_next_proto((unsigned char **)out, outlen, ours + 1, ours[0], in, inlen) !=
            OPENSSL_NPN_NEGOTIATED)
                return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301: no protocol in common */
        return SSL_TLSEXT_ERR_OK;
}

static void tls_alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
        (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
        OPENSSL_free(ptr);
}

static int tls_alpn(SSL_CTX *c, const char *list, char *msg, size_t len)
{
        unsigned char *w = OPENSSL_zalloc(256); /* [0]: length, then the names */
        size_t n = 0;
        if (!w)
                return -1;
        for (const char *p = list; *p;) {
                size_t l = strcspn(p, " \t,");
                if (l > 255 || n + 1 + l > 255) {
                        snprintf(msg, len, "protocol names too long");
                        OPENSSL_free(w);
                        return -1;
                }
                if (l) {
                        w[1 + n] = (unsigned char)l;
                        memcpy(w + 2 + n, p, l);
                        n += 1 + l;
                }
                p += l;
                p += strspn(p, " \t,");
        }
        if (!n) {
                snprintf(msg, len, "no protocol given");
                OPENSSL_free(w);
                return -1;
        }
        w[0] = (unsigned char)n;
        if (tls_alpn_index < 0)
                tls_alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_alpn_free);
        SSL_CTX_set_ex_data(c, tls_alpn_index, w);
        SSL_CTX_set_alpn_select_cb(c, tls_alpn_select, w);
        return 0;
}

int tls_conf_ctx(const struct conf_tls *t, void **ret, int *field, char *msg, size_t len)
{
        SSL_CTX *c = SSL_CTX_new(TLS_server_method());
        *ret = NULL;
        *field = TLS_CONF_CERT;
        if (!c) {
                tls_why(msg, len, "cannot make a TLS context");
                return -1;
        }
        /* The ring ops hand OpenSSL wherever the ring's bytes are now. */
        SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                    SSL_MODE_RELEASE_BUFFERS);
        /* A peer that closes without close_notify (most clients, on a kill or
         * a timeout) ends the stream as a FIN does in plaintext, rather than
         * as a protocol error: the module's own framing tells a truncation. */
        SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                       SSL_OP_IGNORE_UNEXPECTED_EOF);
        if (tls_readable(t->certificate, msg, len) < 0)
                goto fail;
        if (SSL_CTX_use_certificate_chain_file(c, t->certificate) != 1) {
                tls_why(msg, len, "cannot load the certificate chain");
                goto fail;
        }
        *field = TLS_CONF_KEY;
        if (!t->key) {
                snprintf(msg, len, "TLSCertificate= needs TLSKey=");
                goto fail;
        }
        if (tls_readable(t->key, msg, len) < 0)
                goto fail;
        if (SSL_CTX_use_PrivateKey_file(c, t->key, SSL_FILETYPE_PEM) != 1) {
                if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
                        tls_why(msg, len, "the key does not match the certificate");
                else
                        tls_why(msg, len, "cannot load the private key");
                goto fail;
        }
        if (SSL_CTX_check_private_key(c) != 1) {
                tls_why(msg, len, "the key does not match the certificate");
                goto fail;
        }
        *field = TLS_CONF_PROTOCOLS;
        if (tls_protocols(c, t->protocols ? t->protocols : "TLSv1.2 TLSv1.3", msg, len) < 0)
                goto fail;
        *field = TLS_CONF_CIPHERS;
        if (t->ciphers && SSL_CTX_set_cipher_list(c, t->ciphers) != 1) {
                tls_why(msg, len, "no usable cipher in the list");
                goto fail;
        }
        *field = TLS_CONF_CIPHERSUITES;
        if (t->ciphersuites && SSL_CTX_set_ciphersuites(c, t->ciphersuites) != 1) {
                tls_why(msg, len, "no usable cipher suite in the list");
                goto fail;
        }
        *field = TLS_CONF_ALPN;
        if (t->alpn && tls_alpn(c, t->alpn, msg, len) < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        SSL_CTX_free(c);
        return -1;
}

void tls_conf_free(void *ctx)
{
        SSL_CTX_free(ctx);
}

const char *tls_conf_key(int field)
{
        static const char *const names[] = {"TLSCertificate", "TLSKey",          "TLSProtocols",
                                            "TLSCiphers",     "TLSCipherSuites", "TLSALPN"};
        return field >= 0 && field < 6 ? names[field] : "TLS";
}

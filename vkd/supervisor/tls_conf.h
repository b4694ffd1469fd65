/*
 * A service's TLS settings ([Service] TLS*=) turned into an OpenSSL 3
 * SSL_CTX: by the loader to check them (vkd --check-config), by the worker
 * to serve them (before it drops privileges, so a root-only key is read).
 */
#ifndef VKD_TLS_CONF_H
#define VKD_TLS_CONF_H

#include <stddef.h>

struct conf_tls {
        char *certificate;  /* TLSCertificate=: PEM chain, leaf first; NULL: no TLS */
        char *key;          /* TLSKey=: PEM private key */
        char *protocols;    /* TLSProtocols=: "TLSv1.2 TLSv1.3" when NULL */
        char *ciphers;      /* TLSCiphers=: TLS 1.2 cipher list, OpenSSL's default when NULL */
        char *ciphersuites; /* TLSCipherSuites=: TLS 1.3 suites */
        char *alpn;         /* TLSALPN=: protocol names, space separated */
        unsigned line[6];   /* per field above, the line it came from (0: absent) */
};
enum {
        TLS_CONF_CERT,
        TLS_CONF_KEY,
        TLS_CONF_PROTOCOLS,
        TLS_CONF_CIPHERS,
        TLS_CONF_CIPHERSUITES,
        TLS_CONF_ALPN
};

/* Builds the server context. Returns 0 and *ret (an SSL_CTX the caller frees
 * with tls_conf_free), or -1 with which field is wrong in *field and why in
 * msg. */
int tls_conf_ctx(const struct conf_tls *t, void **ret, int *field, char *msg, size_t len);
void tls_conf_free(void *ctx);
/* The [Service] key of a field: "TLSCertificate" for TLS_CONF_CERT... */
const char *tls_conf_key(int field);

#endif

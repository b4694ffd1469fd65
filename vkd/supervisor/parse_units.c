/*
 * Parsers for the value syntaxes of the configuration that are not specific to one key: integers,
 * sizes, systemd-like time spans, booleans, log levels and listen addresses. They never allocate
 * and never log; each returns -errno (and, for addresses, a static reason) so the loader and the
 * daemon's command line can word the error themselves.
 */
#include "conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

static bool conf_is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool conf_is_space(char c)
{
        return c == ' ' || c == '\t';
}

/* Reads decimal digits at *p into *ret, advancing *p. -EINVAL: no digit; -ERANGE: overflow. */
static int conf_scan_digits(const char **p, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;
        bool overflow = false;

        if (!conf_is_digit(*s))
                return -EINVAL;
        for (; conf_is_digit(*s); s++) {
                unsigned d = (unsigned)(*s - '0');

                if (v > (UINT64_MAX - d) / 10)
                        overflow = true;
                else
                        v = v * 10 + d;
        }
        *p = s;
        if (overflow)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* "-" followed by a digit is a negative number, which we call out of range, like systemd. */
static bool conf_is_negative(const char *s)
{
        return s[0] == '-' && conf_is_digit(s[1]);
}

int conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v;
        int r;

        if (conf_is_negative(s))
                return -ERANGE;
        r = conf_scan_digits(&s, &v);
        if (r == -ERANGE && *s == '\0')
                return -ERANGE;
        if (r < 0 || *s != '\0')
                return -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

int conf_parse_size(const char *s, uint64_t *ret)
{
        static const char suffixes[] = "KMGT";
        uint64_t v, mult = 1;
        const char *suffix;
        int r;

        if (conf_is_negative(s))
                return -ERANGE;
        r = conf_scan_digits(&s, &v);
        if (r == -EINVAL)
                return r;
        if (*s != '\0') {
                suffix = strchr(suffixes, *s);
                if (!suffix || s[1] != '\0')
                        return -EINVAL;
                mult = UINT64_C(1) << (10 * (suffix - suffixes + 1));
        }
        if (r < 0)
                return r;
        if (v > UINT64_MAX / mult)
                return -ERANGE;
        *ret = v * mult;
        return 0;
}

struct conf_time_unit {
        const char *name;
        uint64_t usec;
};

/* Longest names first where one is a prefix of another, so "ms" wins over "m". */
static const struct conf_time_unit conf_time_units[] = {
        {"usec", 1},
        {"us", 1},
        {"msec", 1000},
        {"ms", 1000},
        {"seconds", CONF_USEC_PER_SEC},
        {"second", CONF_USEC_PER_SEC},
        {"sec", CONF_USEC_PER_SEC},
        {"s", CONF_USEC_PER_SEC},
        {"minutes", 60 * CONF_USEC_PER_SEC},
        {"minute", 60 * CONF_USEC_PER_SEC},
        {"min", 60 * CONF_USEC_PER_SEC},
        {"m", 60 * CONF_USEC_PER_SEC},
        {"hours", 3600 * CONF_USEC_PER_SEC},
        {"hour", 3600 * CONF_USEC_PER_SEC},
        {"hr", 3600 * CONF_USEC_PER_SEC},
        {"h", 3600 * CONF_USEC_PER_SEC},
        {"days", 86400 * CONF_USEC_PER_SEC},
        {"day", 86400 * CONF_USEC_PER_SEC},
        {"d", 86400 * CONF_USEC_PER_SEC},
        {"weeks", 604800 * CONF_USEC_PER_SEC},
        {"week", 604800 * CONF_USEC_PER_SEC},
        {"w", 604800 * CONF_USEC_PER_SEC},
};

static bool conf_is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int conf_parse_duration_usec(const char *s, uint64_t *ret)
{
        uint64_t total = 0;
        bool overflow = false;

        if (strcmp(s, "infinity") == 0) {
                *ret = CONF_USEC_INFINITY;
                return 0;
        }
        if (conf_is_negative(s))
                return -ERANGE;
        if (*s == '\0')
                return -EINVAL;

        while (*s != '\0') {
                uint64_t whole = 0, frac = 0, frac_scale = 1, unit = CONF_USEC_PER_SEC, term;
                const char *start = s;
                size_t len;
                int r;

                r = conf_scan_digits(&s, &whole);
                if (r == -ERANGE)
                        overflow = true;
                if (*s == '.') {
                        s++;
                        if (!conf_is_digit(*s))
                                return -EINVAL;
                        /* Six digits are below a microsecond for every unit but "us". */
                        for (; conf_is_digit(*s); s++) {
                                if (frac_scale < 1000000) {
                                        frac = frac * 10 + (uint64_t)(*s - '0');
                                        frac_scale *= 10;
                                }
                        }
                } else if (r == -EINVAL) {
                        return -EINVAL;
                }
                if (s == start)
                        return -EINVAL;
                while (conf_is_space(*s))
                        s++;
                for (len = 0; conf_is_alpha(s[len]); len++)
                        ;
                if (len > 0) {
                        size_t i;

                        for (i = 0; i < sizeof(conf_time_units) / sizeof(conf_time_units[0]); i++)
                                if (strlen(conf_time_units[i].name) == len &&
                                    memcmp(conf_time_units[i].name, s, len) == 0)
                                        break;
                        if (i == sizeof(conf_time_units) / sizeof(conf_time_units[0]))
                                return -EINVAL;
                        unit = conf_time_units[i].usec;
                        s += len;
                }
                while (conf_is_space(*s))
                        s++;
                if (overflow || whole > UINT64_MAX / unit) {
                        overflow = true;
                        continue;
                }
                term = whole * unit + frac * unit / frac_scale;
                if (term < whole * unit || total > UINT64_MAX - term)
                        overflow = true;
                else
                        total += term;
        }
        /* UINT64_MAX is spelled "infinity"; a sum that reaches it is just too large. */
        if (overflow || total == CONF_USEC_INFINITY)
                return -ERANGE;
        *ret = total;
        return 0;
}

int conf_parse_bool(const char *s)
{
        static const char *const yes[] = {"1", "yes", "true", "on"};
        static const char *const no[] = {"0", "no", "false", "off"};

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

int conf_parse_log_level(const char *s)
{
        static const char *const names[] = {"emerg",   "alert",  "crit", "err",
                                            "warning", "notice", "info", "debug"};

        if (conf_is_digit(s[0]) && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        for (int i = 0; i < 8; i++)
                if (strcmp(s, names[i]) == 0)
                        return i;
        return -EINVAL;
}

/* ------------------------------------------------------------------ listen addresses */

/* FileDescriptorName= values we accept; systemd allows more, but these never need quoting. */
static bool conf_is_socket_name_char(char c)
{
        return conf_is_alpha(c) || conf_is_digit(c) || c == '_' || c == '.' || c == '-';
}

static int conf_listen_fail(const char **ret_why, const char *why, int r)
{
        if (ret_why)
                *ret_why = why;
        return r;
}

/* s[0..len) is a port: digits only, 0..65535. */
static int conf_parse_port(const char *s, size_t len, in_port_t *ret, const char **ret_why)
{
        char buf[8];
        uint64_t v;
        int r;

        if (len == 0)
                return conf_listen_fail(ret_why, "port missing", -EINVAL);
        if (len >= sizeof(buf))
                len = sizeof(buf) - 1; /* still out of range, or not a number */
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (conf_is_negative(buf))
                return conf_listen_fail(ret_why, "port out of range (0..65535)", -ERANGE);
        r = conf_parse_uint(buf, 0, 65535, &v);
        if (r == -ERANGE)
                return conf_listen_fail(ret_why, "port out of range (0..65535)", r);
        if (r < 0)
                return conf_listen_fail(ret_why, "port is not a number", r);
        *ret = htons((in_port_t)v);
        return 0;
}

static int conf_parse_listen_inet(const char *s, size_t len, struct conf_listen *l,
                                  const char **ret_why)
{
        char host[INET6_ADDRSTRLEN];
        const char *colon;
        size_t hlen;
        in_port_t port;
        int r;

        if (len >= 2 && s[0] == '*' && s[1] == ':') {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;

                r = conf_parse_port(s + 2, len - 2, &port, ret_why);
                if (r < 0)
                        return r;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_addr = in6addr_any;
                sin6->sin6_port = port;
                l->addrlen = sizeof(*sin6);
                l->dual_stack = true;
                return 0;
        }
        if (s[0] == '[') {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l->addr;
                const char *close = memchr(s, ']', len);

                if (!close)
                        return conf_listen_fail(ret_why, "missing ']' after IPv6 address", -EINVAL);
                hlen = (size_t)(close - s - 1);
                if (close + 1 == s + len || close[1] != ':')
                        return conf_listen_fail(ret_why, "expected ':PORT' after ']'", -EINVAL);
                if (hlen >= sizeof(host))
                        return conf_listen_fail(ret_why, "invalid IPv6 address", -EINVAL);
                memcpy(host, s + 1, hlen);
                host[hlen] = '\0';
                if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
                        return conf_listen_fail(ret_why, "invalid IPv6 address", -EINVAL);
                r = conf_parse_port(close + 2, (size_t)(s + len - close - 2), &port, ret_why);
                if (r < 0)
                        return r;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = port;
                l->addrlen = sizeof(*sin6);
                return 0;
        }

        struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr;

        colon = memchr(s, ':', len);
        hlen = (size_t)(colon - s);
        if (hlen >= INET_ADDRSTRLEN)
                return conf_listen_fail(ret_why, "host must be a numeric IPv4 address, [IPv6] or *",
                                        -EINVAL);
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                return conf_listen_fail(ret_why, "host must be a numeric IPv4 address, [IPv6] or *",
                                        -EINVAL);
        r = conf_parse_port(colon + 1, (size_t)(s + len - colon - 1), &port, ret_why);
        if (r < 0)
                return r;
        sin->sin_family = AF_INET;
        sin->sin_port = port;
        l->addrlen = sizeof(*sin);
        return 0;
}

static int conf_parse_listen_unix(const char *path, size_t len, struct conf_listen *l,
                                  const char **ret_why)
{
        struct sockaddr_un *sun = (struct sockaddr_un *)&l->addr;

        if (len == 0 || path[0] != '/')
                return conf_listen_fail(ret_why, "unix socket path must be absolute", -EINVAL);
        if (path[len - 1] == '/')
                return conf_listen_fail(ret_why, "unix socket path must name a file", -EINVAL);
        if (len >= sizeof(sun->sun_path))
                return conf_listen_fail(ret_why, "unix socket path too long (at most 107 bytes)",
                                        -ENAMETOOLONG);
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, path, len);
        sun->sun_path[len] = '\0';
        l->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
        l->kind = CONF_LISTEN_UNIX;
        return 0;
}

/*
 * A socket name; `bare` when written without "systemd:", which then must start with a letter
 * so that a forgotten ":PORT" ("8080", "10.0.0.1") is an error rather than a name that systemd
 * never passes.
 */
static int conf_parse_listen_name(const char *name, size_t len, bool bare, struct conf_listen *l,
                                  const char **ret_why)
{
        size_t digits = 0;

        if (len == 0)
                return conf_listen_fail(ret_why, "socket name missing", -EINVAL);
        while (digits < len && conf_is_digit(name[digits]))
                digits++;
        if (bare && digits == len)
                return conf_listen_fail(ret_why,
                                        "a bare number is ambiguous: write *:PORT for a port or "
                                        "systemd:NAME for a socket name",
                                        -EINVAL);
        if (bare && !conf_is_alpha(name[0]))
                return conf_listen_fail(ret_why,
                                        "an address needs :PORT; a socket name must start with "
                                        "a letter, or be written systemd:NAME",
                                        -EINVAL);
        for (size_t i = 0; i < len; i++)
                if (!conf_is_socket_name_char(name[i]))
                        return conf_listen_fail(
                                ret_why, "socket names may only hold A-Z a-z 0-9 _ . -", -EINVAL);
        if (len > CONF_SOCKET_NAME_MAX)
                return conf_listen_fail(ret_why, "socket name too long (at most 255 bytes)",
                                        -ENAMETOOLONG);
        memcpy(l->name, name, len);
        l->name[len] = '\0';
        l->kind = CONF_LISTEN_SYSTEMD;
        return 0;
}

/* " mode=0660" after a unix socket path. */
static int conf_parse_listen_options(const char *s, struct conf_listen *l, const char **ret_why)
{
        bool have_mode = false;

        for (;;) {
                const char *word, *v;
                size_t len;
                uint64_t mode = 0;

                while (conf_is_space(*s))
                        s++;
                if (*s == '\0')
                        return 0;
                word = s;
                while (*s != '\0' && !conf_is_space(*s))
                        s++;
                len = (size_t)(s - word);
                if (len < 5 || memcmp(word, "mode=", 5) != 0)
                        return conf_listen_fail(ret_why, "unknown option (only mode= is known)",
                                                -EINVAL);
                if (l->kind != CONF_LISTEN_UNIX)
                        return conf_listen_fail(ret_why, "mode= only applies to unix sockets",
                                                -EINVAL);
                if (have_mode)
                        return conf_listen_fail(ret_why, "mode= given twice", -EINVAL);
                if (len == 5 || len > 9)
                        return conf_listen_fail(ret_why, "mode must be octal, at most 0777",
                                                -EINVAL);
                for (v = word + 5; v < s; v++) {
                        if (*v < '0' || *v > '7')
                                return conf_listen_fail(ret_why, "mode must be octal, at most 0777",
                                                        -EINVAL);
                        mode = mode * 8 + (uint64_t)(*v - '0');
                }
                if (mode > 0777)
                        return conf_listen_fail(ret_why, "mode must be octal, at most 0777",
                                                -ERANGE);
                l->mode = (mode_t)mode;
                have_mode = true;
        }
}

int conf_parse_listen(const char *s, struct conf_listen *ret, const char **ret_why)
{
        struct conf_listen l;
        size_t len;
        int r;

        memset(&l, 0, sizeof(l));
        l.kind = CONF_LISTEN_INET;
        l.mode = CONF_DEFAULT_UNIX_MODE;

        for (len = 0; s[len] != '\0' && !conf_is_space(s[len]); len++)
                ;
        if (len == 0)
                return conf_listen_fail(ret_why, "empty address", -EINVAL);

        if (len >= 8 && memcmp(s, "systemd:", 8) == 0)
                r = conf_parse_listen_name(s + 8, len - 8, false, &l, ret_why);
        else if (len >= 5 && memcmp(s, "unix:", 5) == 0)
                r = conf_parse_listen_unix(s + 5, len - 5, &l, ret_why);
        else if (s[0] == '/')
                r = conf_parse_listen_unix(s, len, &l, ret_why);
        else if (s[0] == '[' || memchr(s, ':', len))
                r = conf_parse_listen_inet(s, len, &l, ret_why);
        else
                r = conf_parse_listen_name(s, len, true, &l, ret_why);
        if (r < 0)
                return r;
        r = conf_parse_listen_options(s + len, &l, ret_why);
        if (r < 0)
                return r;
        *ret = l;
        return 0;
}

int conf_listen_format(const struct conf_listen *l, char *buf, size_t size)
{
        char host[INET6_ADDRSTRLEN];

        switch (l->kind) {
        case CONF_LISTEN_SYSTEMD:
                return snprintf(buf, size, "systemd:%s", l->name);
        case CONF_LISTEN_UNIX:
                return snprintf(buf, size, "unix:%s",
                                ((const struct sockaddr_un *)&l->addr)->sun_path);
        case CONF_LISTEN_INET:
                break;
        }
        if (l->addr.ss_family == AF_INET) {
                const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;

                inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
                return snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
        }

        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;

        if (l->dual_stack)
                return snprintf(buf, size, "*:%u", ntohs(sin6->sin6_port));
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        return snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
}

static in_port_t conf_listen_port(const struct conf_listen *l)
{
        if (l->addr.ss_family == AF_INET)
                return ((const struct sockaddr_in *)&l->addr)->sin_port;
        return ((const struct sockaddr_in6 *)&l->addr)->sin6_port;
}

bool conf_listen_conflicts(const struct conf_listen *a, const struct conf_listen *b)
{
        if (a->kind != b->kind)
                return false;
        switch (a->kind) {
        case CONF_LISTEN_SYSTEMD:
                return strcmp(a->name, b->name) == 0;
        case CONF_LISTEN_UNIX:
                return strcmp(((const struct sockaddr_un *)&a->addr)->sun_path,
                              ((const struct sockaddr_un *)&b->addr)->sun_path) == 0;
        case CONF_LISTEN_INET:
                break;
        }
        if (conf_listen_port(a) == 0 || conf_listen_port(a) != conf_listen_port(b))
                return false;
        if (a->dual_stack || b->dual_stack)
                return true;
        if (a->addr.ss_family != b->addr.ss_family)
                return false;
        if (a->addr.ss_family == AF_INET) {
                in_addr_t x = ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr;
                in_addr_t y = ((const struct sockaddr_in *)&b->addr)->sin_addr.s_addr;

                return x == y || x == htonl(INADDR_ANY) || y == htonl(INADDR_ANY);
        }

        const struct in6_addr *x = &((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
        const struct in6_addr *y = &((const struct sockaddr_in6 *)&b->addr)->sin6_addr;

        return IN6_ARE_ADDR_EQUAL(x, y) || IN6_IS_ADDR_UNSPECIFIED(x) || IN6_IS_ADDR_UNSPECIFIED(y);
}

/*
 * Check suite for the supervisor's configuration loader (vkd/supervisor/conf.{h,c} and
 * parse_units.c): the unit parsers on their edge cases, good configs loading with the right
 * values and defaults, every kind of error producing its exact "file:line: key: ..." message,
 * all errors of a file being reported, and the example configs in conf/ loading cleanly.
 * Configs are either fixtures under tests/unit/conf/ or written to a fresh temporary directory
 * per test, so a test sees exactly the files it names.
 */
#define _GNU_SOURCE
#include "conf.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

struct tmp {
        char dir[64];
};

static void tmp_make(struct tmp *t)
{
        strcpy(t->dir, "/tmp/check_conf.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(t->dir));
}

/* Writes `size` bytes of data to t->dir/rel, making the one directory level of rel if needed. */
static void tmp_write_mem(const struct tmp *t, const char *rel, const char *data, size_t size)
{
        char path[512];
        const char *slash = strchr(rel, '/');
        FILE *f;

        if (slash) {
                snprintf(path, sizeof(path), "%s/%.*s", t->dir, (int)(slash - rel), rel);
                ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
        }
        snprintf(path, sizeof(path), "%s/%s", t->dir, rel);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, size, f), size);
        ck_assert_int_eq(fclose(f), 0);
}

static void tmp_write(const struct tmp *t, const char *rel, const char *text)
{
        tmp_write_mem(t, rel, text, strlen(text));
}

static int tmp_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        return remove(path);
}

static void tmp_rm(struct tmp *t)
{
        nftw(t->dir, tmp_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Joins the error texts with "\n", with every "<strip>/" taken out (if strip); caller frees. */
static char *errors_text(const struct conf_errors *errs, const char *strip)
{
        char *out = NULL, prefix[600];
        size_t size = 0, plen;
        FILE *f = open_memstream(&out, &size);

        ck_assert_ptr_nonnull(f);
        snprintf(prefix, sizeof(prefix), "%s/", strip ? strip : "");
        plen = strlen(prefix);
        for (size_t i = 0; i < errs->n; i++) {
                const char *s = errs->items[i].text, *hit;

                if (i > 0)
                        fputc('\n', f);
                while (strip && (hit = strstr(s, prefix))) {
                        fwrite(s, 1, (size_t)(hit - s), f);
                        s = hit + plen;
                }
                fputs(s, f);
        }
        fclose(f);
        return out;
}

/*
 * Loads a temporary dir holding vkd.conf = daemon (none if NULL) and d/web.conf = service
 * (none if NULL), and asserts the load fails with exactly `expected` as its errors, one a line,
 * paths relative to the dir.
 */
static void expect_errors(const char *daemon, const char *service, const char *expected)
{
        struct conf_errors errs = {0};
        struct conf *c = (struct conf *)1;
        char dpath[128], cdir[128];
        struct tmp t;
        char *got;
        int r;

        tmp_make(&t);
        snprintf(dpath, sizeof(dpath), "%s/vkd.conf", t.dir);
        snprintf(cdir, sizeof(cdir), "%s/d", t.dir);
        ck_assert_int_eq(mkdir(cdir, 0755), 0);
        if (daemon)
                tmp_write(&t, "vkd.conf", daemon);
        if (service)
                tmp_write(&t, "d/web.conf", service);
        r = conf_load(daemon ? dpath : NULL, cdir, &c, &errs);
        got = errors_text(&errs, t.dir);
        tmp_rm(&t);
        ck_assert_str_eq(got, expected);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_ptr_null(c);
        free(got);
        conf_errors_done(&errs);
}

static void expect_service_errors(const char *service, const char *expected)
{
        expect_errors(NULL, service, expected);
}

/* Loads and asserts success; the caller frees the result. */
static struct conf *load_ok(const char *daemon_path, const char *dir)
{
        struct conf_errors errs = {0};
        struct conf *c = NULL;
        char *got;
        int r;

        r = conf_load(daemon_path, dir, &c, &errs);
        got = errors_text(&errs, NULL);
        ck_assert_msg(r == 0, "conf_load() = %d, errors:\n%s", r, got);
        ck_assert_uint_eq(errs.n, 0);
        ck_assert_ptr_nonnull(c);
        free(got);
        conf_errors_done(&errs);
        return c;
}

/* The start of a valid service; keys the tests add begin at line 4. */
#define HEAD "[Service]\nModule=echo\nListen=127.0.0.1:9000\n"

static unsigned listen_port(const struct conf_listen *l)
{
        if (l->addr.ss_family == AF_INET)
                return ntohs(((const struct sockaddr_in *)&l->addr)->sin_port);
        return ntohs(((const struct sockaddr_in6 *)&l->addr)->sin6_port);
}

static const char *listen_text(const struct conf_listen *l)
{
        static char buf[300];

        conf_listen_format(l, buf, sizeof(buf));
        return buf;
}

static const char *primary_group_of(const char *user)
{
        struct passwd *pw = getpwnam(user);
        struct group *gr;

        ck_assert_ptr_nonnull(pw);
        gr = getgrgid(pw->pw_gid);
        ck_assert_ptr_nonnull(gr);
        return gr->gr_name;
}

/* ------------------------------------------------------------------ unit parsers */

START_TEST(test_parse_uint)
{
        uint64_t v = 42;

        ck_assert_int_eq(conf_parse_uint("0", 0, 10, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(conf_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
        ck_assert(v == UINT64_MAX);
        ck_assert_int_eq(conf_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(conf_parse_uint("11", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(conf_parse_uint("0", 1, 10, &v), -ERANGE);
        ck_assert_int_eq(conf_parse_uint("-1", 0, 10, &v), -ERANGE);
        ck_assert_int_eq(conf_parse_uint("+1", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(conf_parse_uint("", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(conf_parse_uint("1 ", 0, 10, &v), -EINVAL);
        ck_assert_int_eq(conf_parse_uint("0x10", 0, 100, &v), -EINVAL);
        ck_assert_int_eq(conf_parse_uint("99999999999999999999x", 0, UINT64_MAX, &v), -EINVAL);
        ck_assert(v == UINT64_MAX); /* untouched by failures */
}
END_TEST

START_TEST(test_parse_size)
{
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                {"0", 0, 0},
                {"1", 0, 1},
                {"4096", 0, 4096},
                {"1K", 0, 1024},
                {"64K", 0, 65536},
                {"64M", 0, 64 << 20},
                {"2G", 0, UINT64_C(2) << 30},
                {"3T", 0, UINT64_C(3) << 40},
                {"16777215T", 0, UINT64_C(16777215) << 40},
                {"18446744073709551615", 0, UINT64_MAX},
                {"16777216T", -ERANGE, 0},            /* 2^64 */
                {"18446744073709551616", -ERANGE, 0}, /* 2^64 */
                {"99999999999999999999K", -ERANGE, 0},
                {"-1", -ERANGE, 0},
                {"-1K", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"K", -EINVAL, 0},
                {"1Q", -EINVAL, 0},
                {"1k", -EINVAL, 0},
                {"1KB", -EINVAL, 0},
                {"1 K", -EINVAL, 0},
                {" 1K", -EINVAL, 0},
                {"1.5K", -EINVAL, 0},
                {"99999999999999999999Q", -EINVAL, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 7;
                int r = conf_parse_size(cases[i].s, &v);

                ck_assert_msg(r == cases[i].r, "conf_parse_size(\"%s\") = %d, want %d", cases[i].s,
                              r, cases[i].r);
                ck_assert_msg(v == (r == 0 ? cases[i].v : 7), "conf_parse_size(\"%s\") -> %llu",
                              cases[i].s, (unsigned long long)v);
        }
}
END_TEST

START_TEST(test_parse_duration)
{
        static const uint64_t S = CONF_USEC_PER_SEC;
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                {"0", 0, 0},
                {"60", 0, 60 * S},
                {"500ms", 0, 500000},
                {"2min", 0, 120 * S},
                {"1h 30s", 0, 3630 * S},
                {"1h30s", 0, 3630 * S},
                {"1 h 30 min", 0, 5400 * S},
                {"1h 30", 0, 3630 * S}, /* a number without a unit is seconds */
                {"1h 30min", 0, 5400 * S},
                {"1.5s", 0, 1500000},
                {"1.5", 0, 1500000},
                {"0.25min", 0, 15 * S},
                {".5s", 0, 500000},
                {"1.0000009s", 0, 1000000}, /* digits past a microsecond are dropped */
                {"100us", 0, 100},
                {"7usec", 0, 7},
                {"3msec", 0, 3000},
                {"2sec", 0, 2 * S},
                {"2seconds", 0, 2 * S},
                {"1m", 0, 60 * S},
                {"1hr", 0, 3600 * S},
                {"1d", 0, 86400 * S},
                {"1w", 0, 604800 * S},
                {"infinity", 0, CONF_USEC_INFINITY},
                {"18446744073709551614us", 0, UINT64_MAX - 1},
                {"18446744073709551615us", -ERANGE, 0}, /* that is infinity's value */
                {"18446744073709551615", -ERANGE, 0},
                {"99999999999999999999", -ERANGE, 0},
                {"31000000w", -ERANGE, 0}, /* 1.87e19 */
                {"-1", -ERANGE, 0},
                {"-1s", -ERANGE, 0},
                {"", -EINVAL, 0},
                {"s", -EINVAL, 0},
                {"5x", -EINVAL, 0},
                {"5 parsecs", -EINVAL, 0},
                {"1h 30x", -EINVAL, 0},
                {"1.s", -EINVAL, 0},
                {"1..5s", -EINVAL, 0},
                {"Infinity", -EINVAL, 0},
                {"1h,30s", -EINVAL, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 7;
                int r = conf_parse_duration_usec(cases[i].s, &v);

                ck_assert_msg(r == cases[i].r, "conf_parse_duration_usec(\"%s\") = %d, want %d",
                              cases[i].s, r, cases[i].r);
                ck_assert_msg(v == (r == 0 ? cases[i].v : 7),
                              "conf_parse_duration_usec(\"%s\") -> %llu", cases[i].s,
                              (unsigned long long)v);
        }
}
END_TEST

START_TEST(test_parse_bool)
{
        static const char *const yes[] = {"1", "yes", "YES", "true", "True", "on", "ON"};
        static const char *const no[] = {"0", "no", "No", "false", "FALSE", "off", "Off"};
        static const char *const bad[] = {"", "2", "y", "n", "maybe", "yes ", " no", "onn"};

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
                ck_assert_int_eq(conf_parse_bool(yes[i]), 1);
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
                ck_assert_int_eq(conf_parse_bool(no[i]), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ck_assert_int_eq(conf_parse_bool(bad[i]), -EINVAL);
}
END_TEST

START_TEST(test_parse_log_level)
{
        ck_assert_int_eq(conf_parse_log_level("emerg"), 0);
        ck_assert_int_eq(conf_parse_log_level("err"), 3);
        ck_assert_int_eq(conf_parse_log_level("warning"), 4);
        ck_assert_int_eq(conf_parse_log_level("debug"), 7);
        ck_assert_int_eq(conf_parse_log_level("0"), 0);
        ck_assert_int_eq(conf_parse_log_level("7"), 7);
        ck_assert_int_eq(conf_parse_log_level("8"), -EINVAL);
        ck_assert_int_eq(conf_parse_log_level("07"), -EINVAL);
        ck_assert_int_eq(conf_parse_log_level("warn"), -EINVAL);
        ck_assert_int_eq(conf_parse_log_level("DEBUG"), -EINVAL);
        ck_assert_int_eq(conf_parse_log_level(""), -EINVAL);
}
END_TEST

START_TEST(test_parse_listen_good)
{
        struct conf_listen l;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&l.addr;
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l.addr;
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&l.addr;
        char path[200];

        ck_assert_int_eq(conf_parse_listen("127.0.0.1:8080", &l, NULL), 0);
        ck_assert_int_eq(l.kind, CONF_LISTEN_INET);
        ck_assert_int_eq(sin->sin_family, AF_INET);
        ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
        ck_assert_uint_eq(listen_port(&l), 8080);
        ck_assert_uint_eq(l.addrlen, sizeof(struct sockaddr_in));
        ck_assert(!l.dual_stack);
        ck_assert_str_eq(listen_text(&l), "127.0.0.1:8080");

        ck_assert_int_eq(conf_parse_listen("[::1]:8080", &l, NULL), 0);
        ck_assert_int_eq(sin6->sin6_family, AF_INET6);
        ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
        ck_assert_uint_eq(listen_port(&l), 8080);
        ck_assert_uint_eq(l.addrlen, sizeof(struct sockaddr_in6));
        ck_assert(!l.dual_stack);
        ck_assert_str_eq(listen_text(&l), "[::1]:8080");

        ck_assert_int_eq(conf_parse_listen("[::]:65535", &l, NULL), 0);
        ck_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
        ck_assert(!l.dual_stack);
        ck_assert_str_eq(listen_text(&l), "[::]:65535");

        ck_assert_int_eq(conf_parse_listen("*:0", &l, NULL), 0);
        ck_assert_int_eq(sin6->sin6_family, AF_INET6);
        ck_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
        ck_assert_uint_eq(listen_port(&l), 0);
        ck_assert(l.dual_stack);
        ck_assert_str_eq(listen_text(&l), "*:0");

        ck_assert_int_eq(conf_parse_listen("0.0.0.0:080", &l, NULL), 0);
        ck_assert_str_eq(listen_text(&l), "0.0.0.0:80");

        ck_assert_int_eq(conf_parse_listen("unix:/run/vkd/x.sock mode=0660", &l, NULL), 0);
        ck_assert_int_eq(l.kind, CONF_LISTEN_UNIX);
        ck_assert_int_eq(sun->sun_family, AF_UNIX);
        ck_assert_str_eq(sun->sun_path, "/run/vkd/x.sock");
        ck_assert_uint_eq(l.addrlen, offsetof(struct sockaddr_un, sun_path) + 16);
        ck_assert_uint_eq(l.mode, 0660);
        ck_assert_str_eq(listen_text(&l), "unix:/run/vkd/x.sock");

        ck_assert_int_eq(conf_parse_listen("/run/vkd/y.sock", &l, NULL), 0);
        ck_assert_int_eq(l.kind, CONF_LISTEN_UNIX);
        ck_assert_str_eq(sun->sun_path, "/run/vkd/y.sock");
        ck_assert_uint_eq(l.mode, CONF_DEFAULT_UNIX_MODE);

        ck_assert_int_eq(conf_parse_listen("/s  mode=0  ", &l, NULL), 0);
        ck_assert_uint_eq(l.mode, 0);

        /* The longest path that fits sun_path with its NUL. */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[sizeof(sun->sun_path) - 1] = '\0';
        ck_assert_int_eq(conf_parse_listen(path, &l, NULL), 0);

        ck_assert_int_eq(conf_parse_listen("http", &l, NULL), 0);
        ck_assert_int_eq(l.kind, CONF_LISTEN_SYSTEMD);
        ck_assert_str_eq(l.name, "http");
        ck_assert_str_eq(listen_text(&l), "systemd:http");

        ck_assert_int_eq(conf_parse_listen("systemd:8080", &l, NULL), 0);
        ck_assert_str_eq(l.name, "8080");
        ck_assert_int_eq(conf_parse_listen("systemd:web.https-2_x", &l, NULL), 0);
        ck_assert_str_eq(l.name, "web.https-2_x");
}
END_TEST

START_TEST(test_parse_listen_bad)
{
        static const struct {
                const char *s;
                int r;
                const char *why;
        } cases[] = {
                {"[::1]:65536", -ERANGE, "port out of range (0..65535)"},
                {"*:65536", -ERANGE, "port out of range (0..65535)"},
                {"127.0.0.1:99999999999999999999", -ERANGE, "port out of range (0..65535)"},
                {"127.0.0.1:-1", -ERANGE, "port out of range (0..65535)"},
                {"127.0.0.1:+80", -EINVAL, "port is not a number"},
                {"127.0.0.1:http", -EINVAL, "port is not a number"},
                {"127.0.0.1:", -EINVAL, "port missing"},
                {"*:", -EINVAL, "port missing"},
                {"[::1]", -EINVAL, "expected ':PORT' after ']'"},
                {"[::1]8080", -EINVAL, "expected ':PORT' after ']'"},
                {"[::1:80", -EINVAL, "missing ']' after IPv6 address"},
                {"[fe80::1%eth0]:80", -EINVAL, "invalid IPv6 address"},
                {"[127.0.0.1]:80", -EINVAL, "invalid IPv6 address"},
                {"localhost:80", -EINVAL, "host must be a numeric IPv4 address, [IPv6] or *"},
                {"1.2.3:80", -EINVAL, "host must be a numeric IPv4 address, [IPv6] or *"},
                {"::1:80", -EINVAL, "host must be a numeric IPv4 address, [IPv6] or *"},
                {"8080", -EINVAL,
                 "a bare number is ambiguous: write *:PORT for a port or systemd:NAME for a "
                 "socket name"},
                {"10.0.0.1", -EINVAL,
                 "an address needs :PORT; a socket name must start with a letter, or be "
                 "written systemd:NAME"},
                {"*", -EINVAL,
                 "an address needs :PORT; a socket name must start with a letter, or be "
                 "written systemd:NAME"},
                {"systemd:", -EINVAL, "socket name missing"},
                {"systemd:a/b", -EINVAL, "socket names may only hold A-Z a-z 0-9 _ . -"},
                {"unix:run/x.sock", -EINVAL, "unix socket path must be absolute"},
                {"unix:", -EINVAL, "unix socket path must be absolute"},
                {"/run/vkd/", -EINVAL, "unix socket path must name a file"},
                {"127.0.0.1:80 mode=0660", -EINVAL, "mode= only applies to unix sockets"},
                {"/s mode=999", -EINVAL, "mode must be octal, at most 0777"},
                {"/s mode=1777", -ERANGE, "mode must be octal, at most 0777"},
                {"/s mode=00777", -EINVAL, "mode must be octal, at most 0777"},
                {"/s mode=", -EINVAL, "mode must be octal, at most 0777"},
                {"/s mode=0600 mode=0600", -EINVAL, "mode= given twice"},
                {"/s backlog=5", -EINVAL, "unknown option (only mode= is known)"},
                {"", -EINVAL, "empty address"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct conf_listen l;
                const char *why = NULL;
                int r;

                memset(&l, 0x5a, sizeof(l));
                r = conf_parse_listen(cases[i].s, &l, &why);
                ck_assert_msg(r == cases[i].r, "conf_parse_listen(\"%s\") = %d, want %d",
                              cases[i].s, r, cases[i].r);
                ck_assert_ptr_nonnull(why);
                ck_assert_str_eq(why, cases[i].why);
                ck_assert_uint_eq(l.kind, 0x5a5a5a5a); /* untouched */
                ck_assert_int_eq(conf_parse_listen(cases[i].s, &l, NULL), cases[i].r);
        }
}
END_TEST

START_TEST(test_parse_listen_too_long)
{
        char path[200], name[300];
        struct conf_listen l;
        const char *why;

        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[sizeof(((struct sockaddr_un *)0)->sun_path)] = '\0'; /* one byte too many */
        ck_assert_int_eq(conf_parse_listen(path, &l, &why), -ENAMETOOLONG);
        ck_assert_str_eq(why, "unix socket path too long (at most 107 bytes)");

        memset(name, 'n', sizeof(name));
        name[CONF_SOCKET_NAME_MAX] = '\0';
        ck_assert_int_eq(conf_parse_listen(name, &l, &why), 0);
        name[CONF_SOCKET_NAME_MAX] = 'n';
        name[CONF_SOCKET_NAME_MAX + 1] = '\0';
        ck_assert_int_eq(conf_parse_listen(name, &l, &why), -ENAMETOOLONG);
        ck_assert_str_eq(why, "socket name too long (at most 255 bytes)");
}
END_TEST

static bool conflicts(const char *a, const char *b)
{
        struct conf_listen x, y;

        ck_assert_int_eq(conf_parse_listen(a, &x, NULL), 0);
        ck_assert_int_eq(conf_parse_listen(b, &y, NULL), 0);
        ck_assert(conf_listen_conflicts(&x, &y) == conf_listen_conflicts(&y, &x));
        return conf_listen_conflicts(&x, &y);
}

START_TEST(test_listen_conflicts)
{
        ck_assert(conflicts("127.0.0.1:80", "127.0.0.1:80"));
        ck_assert(conflicts("127.0.0.1:80", "127.0.0.1:0080"));
        ck_assert(!conflicts("127.0.0.1:80", "127.0.0.2:80"));
        ck_assert(!conflicts("127.0.0.1:80", "127.0.0.1:81"));
        ck_assert(conflicts("0.0.0.0:80", "127.0.0.1:80"));
        ck_assert(conflicts("*:80", "127.0.0.1:80"));
        ck_assert(conflicts("*:80", "[::1]:80"));
        ck_assert(conflicts("[::]:80", "[::1]:80"));
        ck_assert(conflicts("[::1]:80", "[0:0::1]:80"));
        ck_assert(!conflicts("[::]:80", "127.0.0.1:80")); /* [::] is IPv6 only */
        ck_assert(!conflicts("0.0.0.0:80", "[::1]:80"));
        ck_assert(!conflicts("*:0", "*:0")); /* the kernel picks two ports */
        ck_assert(conflicts("/run/a.sock", "unix:/run/a.sock mode=0600"));
        ck_assert(!conflicts("/run/a.sock", "/run/b.sock"));
        ck_assert(conflicts("http", "systemd:http"));
        ck_assert(!conflicts("http", "https"));
        ck_assert(!conflicts("http", "/http"));
}
END_TEST

/* ------------------------------------------------------------------ good configs */

START_TEST(test_good_fixture)
{
        struct conf *c = load_ok(CONF_FIXTURES "/good/vkd.conf", CONF_FIXTURES "/good/vkd.d");
        const struct conf_daemon *d = &c->daemon;
        const struct conf_service *s;
        const struct conf_listen *l;
        struct passwd *nobody = getpwnam("nobody");
        struct group *daemon_grp = getgrnam("daemon");

        ck_assert_ptr_nonnull(nobody);
        ck_assert_ptr_nonnull(daemon_grp);

        ck_assert_str_eq(d->file, CONF_FIXTURES "/good/vkd.conf");
        ck_assert_uint_eq(d->workers, 3);
        ck_assert(!d->workers_auto);
        ck_assert_str_eq(d->control_socket, "/run/vkd-test/control.sock");
        ck_assert_str_eq(d->control_socket_group, "daemon");
        ck_assert_uint_eq(d->control_socket_gid, daemon_grp->gr_gid);
        ck_assert_int_eq(d->log_level, 7);
        ck_assert_str_eq(d->creds.user, "nobody");
        ck_assert_uint_eq(d->creds.uid, nobody->pw_uid);
        ck_assert_str_eq(d->creds.group, "daemon");
        ck_assert_uint_eq(d->creds.gid, daemon_grp->gr_gid);
        ck_assert(d->drain_timeout_usec == 90 * CONF_USEC_PER_SEC);
        ck_assert_str_eq(d->conf_dir, CONF_FIXTURES "/good/vkd.d"); /* the argument wins */

        /* .hidden.conf and notes.txt are not services; the rest in name order. */
        ck_assert_uint_eq(c->n_services, 2);
        ck_assert_str_eq(c->services[0]->name, "minimal");
        ck_assert_str_eq(c->services[1]->name, "web");

        s = conf_find_service(c, "web");
        ck_assert_ptr_eq(s, c->services[1]);
        ck_assert_ptr_null(conf_find_service(c, "hidden"));
        ck_assert_str_eq(s->file, CONF_FIXTURES "/good/vkd.d/web.conf");
        ck_assert_uint_eq(s->section_line, 2);
        ck_assert_str_eq(s->module, "/usr/lib/vkd/http11.so");
        ck_assert(s->module_is_path);
        ck_assert_uint_eq(s->module_line, 3);

        ck_assert_uint_eq(s->n_listen, 7);
        l = s->listen;
        ck_assert_str_eq(listen_text(&l[0]), "127.0.0.1:8080");
        ck_assert_uint_eq(l[0].line, 4);
        ck_assert_str_eq(listen_text(&l[1]), "[::1]:8080");
        ck_assert_uint_eq(l[1].line, 5);
        ck_assert_str_eq(listen_text(&l[2]), "*:8443");
        ck_assert(l[2].dual_stack);
        ck_assert_str_eq(listen_text(&l[3]), "unix:/run/vkd-test/web.sock");
        ck_assert_uint_eq(l[3].mode, 0660);
        ck_assert_str_eq(listen_text(&l[4]), "unix:/run/vkd-test/web2.sock");
        ck_assert_uint_eq(l[4].mode, 0666);
        ck_assert_str_eq(listen_text(&l[5]), "systemd:http");
        ck_assert_str_eq(listen_text(&l[6]), "systemd:https");
        ck_assert_uint_eq(l[6].line, 10);

        ck_assert_str_eq(s->creds.user, "root");
        ck_assert_uint_eq(s->creds.uid, 0);
        ck_assert_str_eq(s->creds.group, "daemon");
        ck_assert_uint_eq(s->creds.gid, daemon_grp->gr_gid);
        ck_assert_int_eq(s->isolation, CONF_ISOLATION_UNPRIVILEGED);
        ck_assert_uint_eq(s->heap_size, 128 * 1024);
        ck_assert_uint_eq(s->ring_size, 8 * 1024);
        ck_assert_uint_eq(s->max_connections, 10000);
        ck_assert(s->idle_timeout_usec == 3630 * CONF_USEC_PER_SEC);
        ck_assert_uint_eq(s->workers, 2);
        ck_assert(s->optional);

        /* [Module]: verbatim, in order, repeated keys kept, comments and quotes resolved. */
        ck_assert_uint_eq(s->n_module_args, 5);
        ck_assert_str_eq(s->module_args[0].key, "Handler");
        ck_assert_str_eq(s->module_args[0].value, "static");
        ck_assert_uint_eq(s->module_args[0].line, 23);
        ck_assert_ptr_eq(s->module_args[0].file, s->file);
        ck_assert_str_eq(s->module_args[1].key, "Root");
        ck_assert_str_eq(s->module_args[1].value, "/srv/www#not-a-comment");
        ck_assert_str_eq(s->module_args[2].key, "Header");
        ck_assert_str_eq(s->module_args[2].value, "Content-Type: text/html; charset=utf-8");
        ck_assert_str_eq(s->module_args[3].key, "Handler");
        ck_assert_str_eq(s->module_args[3].value, "echo");
        ck_assert_str_eq(s->module_args[4].key, "Greeting");
        ck_assert_str_eq(s->module_args[4].value, "two  spaces # and a hash \"quoted\"");
        ck_assert_uint_eq(s->module_args[4].line, 27);

        /* minimal.conf: every default, and the daemon's User=/Group=. */
        s = c->services[0];
        ck_assert_str_eq(s->module, "echo");
        ck_assert(!s->module_is_path);
        ck_assert_uint_eq(s->n_listen, 1);
        ck_assert_str_eq(s->creds.user, "nobody");
        ck_assert_str_eq(s->creds.group, "daemon");
        ck_assert_uint_eq(s->creds.gid, daemon_grp->gr_gid);
        ck_assert_int_eq(s->isolation, CONF_ISOLATION_ISOLATED);
        ck_assert_uint_eq(s->heap_size, CONF_DEFAULT_HEAP_SIZE);
        ck_assert_uint_eq(s->ring_size, CONF_DEFAULT_RING_SIZE);
        ck_assert_uint_eq(s->max_connections, CONF_DEFAULT_MAX_CONNECTIONS);
        ck_assert(s->idle_timeout_usec == CONF_DEFAULT_IDLE_TIMEOUT_USEC);
        ck_assert_uint_eq(s->workers, 0);
        ck_assert(!s->optional);
        ck_assert_uint_eq(s->n_module_args, 0);
        ck_assert_ptr_null(s->module_args);

        ck_assert_ptr_null(conf_free(c));
}
END_TEST

START_TEST(test_defaults_without_daemon_conf)
{
        struct tmp t;
        char dir[128];
        struct conf *c;
        const struct conf_daemon *d;
        const struct conf_service *s;

        tmp_make(&t);
        tmp_write(&t, "d/a.conf", "[Service]\nModule=echo\nListen=a\n");
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        c = load_ok(NULL, dir);
        tmp_rm(&t);

        d = &c->daemon;
        ck_assert_ptr_null(d->file);
        ck_assert(d->workers_auto);
        ck_assert_uint_eq(d->workers, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
        ck_assert_str_eq(d->control_socket, CONF_DEFAULT_CONTROL_SOCKET);
        ck_assert_ptr_null(d->control_socket_group);
        ck_assert_int_eq(d->log_level, CONF_DEFAULT_LOG_LEVEL);
        ck_assert_ptr_null(d->creds.user);
        ck_assert_ptr_null(d->creds.group);
        ck_assert(d->drain_timeout_usec == CONF_DEFAULT_DRAIN_TIMEOUT_USEC);
        ck_assert_str_eq(d->conf_dir, dir);

        ck_assert_uint_eq(c->n_services, 1);
        s = c->services[0];
        ck_assert_str_eq(s->name, "a");
        ck_assert_ptr_null(s->creds.user); /* nobody configured one: the daemon's identity */
        ck_assert_ptr_null(s->creds.group);
        conf_free(c);
}
END_TEST

START_TEST(test_conf_dir_from_daemon_conf)
{
        struct tmp t;
        char text[256], path[128];
        struct conf *c;

        tmp_make(&t);
        snprintf(text, sizeof(text), "[Daemon]\nConfDir=%s/services\nWorkers=auto\n", t.dir);
        tmp_write(&t, "vkd.conf", text);
        tmp_write(&t, "services/one.conf", "[Service]\nModule=echo\nListen=one\n");
        snprintf(path, sizeof(path), "%s/vkd.conf", t.dir);
        c = load_ok(path, NULL);
        tmp_rm(&t);
        ck_assert(c->daemon.workers_auto);
        ck_assert_uint_eq(c->n_services, 1);
        ck_assert_str_eq(c->services[0]->name, "one");
        conf_free(c);
}
END_TEST

START_TEST(test_empty_conf_dir_and_files)
{
        struct tmp t;
        char dir[128], path[128];
        struct conf *c;

        /* An empty vkd.conf and no services: valid, services may come with a reload. */
        tmp_make(&t);
        tmp_write(&t, "vkd.conf", "");
        tmp_write(&t, "d/README", "not a service\n");
        snprintf(path, sizeof(path), "%s/vkd.conf", t.dir);
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        c = load_ok(path, dir);
        tmp_rm(&t);
        ck_assert_uint_eq(c->n_services, 0);
        ck_assert_ptr_null(c->services);
        conf_free(c);
}
END_TEST

START_TEST(test_user_only_gets_primary_group)
{
        struct tmp t;
        char dir[128];
        struct conf *c;
        const struct conf_service *s;
        struct passwd *nobody = getpwnam("nobody");

        ck_assert_ptr_nonnull(nobody);
        tmp_make(&t);
        tmp_write(&t, "d/a.conf", "[Service]\nModule=echo\nListen=a\nUser=nobody\n");
        tmp_write(&t, "d/b.conf", "[Service]\nModule=echo\nListen=b\nGroup=daemon\n");
        tmp_write(&t, "d/c.conf", "[Service]\nModule=echo\nListen=c\nUser=0\nGroup=0\n");
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        c = load_ok(NULL, dir);
        tmp_rm(&t);

        s = c->services[0];
        ck_assert_str_eq(s->creds.user, "nobody");
        ck_assert_uint_eq(s->creds.uid, nobody->pw_uid);
        ck_assert_str_eq(s->creds.group, primary_group_of("nobody"));
        ck_assert_uint_eq(s->creds.gid, nobody->pw_gid);
        s = c->services[1];
        ck_assert_ptr_null(s->creds.user);
        ck_assert_str_eq(s->creds.group, "daemon");
        s = c->services[2]; /* numeric ids that exist */
        ck_assert_str_eq(s->creds.user, "0");
        ck_assert_uint_eq(s->creds.uid, 0);
        ck_assert_uint_eq(s->creds.gid, 0);
        conf_free(c);
}
END_TEST

START_TEST(test_crlf_bom_and_layout)
{
        static const char text[] = "\xef\xbb\xbf"
                                   "[Service]\r\n"
                                   "Module = echo\t\r\n"
                                   "\r\n"
                                   "   # indented comment\r\n"
                                   "Listen=\"/run/x.sock\"   # quotes are allowed anywhere\r\n"
                                   "[Module]   # comment after a header\r\n"
                                   "Greeting=\" \\t\\n\\\\ \"\r\n"
                                   "Last=no newline at the end";
        struct tmp t;
        char dir[128];
        struct conf *c;
        const struct conf_service *s;

        tmp_make(&t);
        tmp_write_mem(&t, "d/x.conf", text, sizeof(text) - 1);
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        c = load_ok(NULL, dir);
        tmp_rm(&t);
        s = c->services[0];
        ck_assert_str_eq(s->module, "echo");
        ck_assert_str_eq(listen_text(&s->listen[0]), "unix:/run/x.sock");
        ck_assert_uint_eq(s->listen[0].line, 5);
        ck_assert_uint_eq(s->n_module_args, 2);
        ck_assert_str_eq(s->module_args[0].value, " \t\n\\ ");
        ck_assert_uint_eq(s->module_args[1].line, 8);
        ck_assert_str_eq(s->module_args[1].value, "no newline at the end");
        conf_free(c);
}
END_TEST

/* Every *.conf in conf/ but vkd.conf is an example service: all must load with conf/vkd.conf. */
START_TEST(test_examples_load)
{
        struct tmp t;
        char dir[128], src[512], dst[512];
        struct conf *c;
        struct dirent *de;
        DIR *d;
        size_t n = 0;

        tmp_make(&t);
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        d = opendir(CONF_EXAMPLES);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);

                if (len < 5 || strcmp(de->d_name + len - 5, ".conf") != 0 ||
                    strcmp(de->d_name, "vkd.conf") == 0)
                        continue;
                snprintf(src, sizeof(src), "%s/%s", CONF_EXAMPLES, de->d_name);
                snprintf(dst, sizeof(dst), "%s/%s", dir, de->d_name);
                ck_assert_int_eq(symlink(src, dst), 0);
                n++;
        }
        closedir(d);
        c = load_ok(CONF_EXAMPLES "/vkd.conf", dir);
        tmp_rm(&t);
        ck_assert_uint_eq(c->n_services, n);
        ck_assert_ptr_nonnull(conf_find_service(c, "echo"));
        ck_assert_str_eq(c->daemon.control_socket, CONF_DEFAULT_CONTROL_SOCKET);
        ck_assert_int_eq(c->daemon.log_level, CONF_DEFAULT_LOG_LEVEL);
        ck_assert(c->daemon.drain_timeout_usec == CONF_DEFAULT_DRAIN_TIMEOUT_USEC);
        conf_free(c);
}
END_TEST

START_TEST(test_free_null)
{
        struct conf_errors errs = {0};

        ck_assert_ptr_null(conf_free(NULL));
        conf_errors_done(NULL);
        conf_errors_done(&errs);
}
END_TEST

/* ------------------------------------------------------------------ errors, one kind each */

START_TEST(test_err_unknown_key_and_section)
{
        expect_service_errors(HEAD "Colour=blue\n",
                              "d/web.conf:4: Colour: unknown key in [Service]");
        expect_service_errors(HEAD "module=echo\n", /* keys are case-sensitive */
                              "d/web.conf:4: module: unknown key in [Service]");
        expect_service_errors(HEAD "[Servce]\nKey=1\nOther=2\n",
                              "d/web.conf:4: [Servce]: unknown section (expected [Service] or "
                              "[Module])");
        expect_errors("[Daemon]\nWorkers=2\nListen=x\n", NULL,
                      "vkd.conf:3: Listen: unknown key in [Daemon]");
        expect_errors("[Service]\n", NULL,
                      "vkd.conf:1: [Service]: unknown section (expected [Daemon])");
        expect_errors("Workers=2\nLogLevel=info\n[Daemon]\n", NULL,
                      "vkd.conf:1: Workers: key outside of a section (add [Daemon] above it)");
}
END_TEST

START_TEST(test_err_syntax)
{
        expect_service_errors(HEAD "nonsense\n", "d/web.conf:4: expected Key=Value or [Section]");
        expect_service_errors(HEAD "[Module\n", "d/web.conf:4: section header without closing ']'");
        expect_service_errors(HEAD "[Module] x\n", "d/web.conf:4: text after section header");
        expect_service_errors(HEAD "[]\n", "d/web.conf:4: invalid section header []");
        expect_service_errors(HEAD "[Mod ule]\n", "d/web.conf:4: invalid section header [Mod ule]");
        expect_service_errors(HEAD "Heap Size=1\n", "d/web.conf:4: invalid key name \"Heap Size\"");
        expect_service_errors(HEAD "=1\n", "d/web.conf:4: key name missing before '='");
        expect_service_errors(HEAD "Listen: *:80\n",
                              "d/web.conf:4: expected Key=Value or [Section]");
        expect_service_errors(HEAD "[Module]\nA=\"open\n",
                              "d/web.conf:5: A: missing closing quote");
        expect_service_errors(HEAD "[Module]\nA=\"a\" b\n",
                              "d/web.conf:5: A: text after the closing quote");
        expect_service_errors(HEAD "[Module]\nA=\"\\x\"\n",
                              "d/web.conf:5: A: unknown escape in quoted value (use \\\" \\\\ "
                              "\\n \\t)");
}
END_TEST

START_TEST(test_err_line_limits)
{
        static const char nul[] = HEAD "A=b\0c\nColour=1\n";
        struct conf_errors errs = {0};
        char *text = NULL, *got;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        struct conf *c;
        struct tmp t;
        char dir[128];

        /* A line of exactly CONF_LINE_MAX bytes is fine (line 5), one more is not (line 6). */
        fputs(HEAD "[Module]\nK=", f);
        for (int i = 0; i < CONF_LINE_MAX - 2; i++)
                fputc('v', f);
        fputs("\r\nK=", f); /* the CR of a CRLF does not count */
        for (int i = 0; i < CONF_LINE_MAX - 1; i++)
                fputc('v', f);
        fputs("\n[Service]\nColour=1\n", f);
        fclose(f);
        expect_service_errors(text, "d/web.conf:6: line too long (more than 4096 bytes)\n"
                                    "d/web.conf:8: Colour: unknown key in [Service]");
        free(text);

        tmp_make(&t);
        tmp_write_mem(&t, "d/web.conf", nul, sizeof(nul) - 1);
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        ck_assert_int_eq(conf_load(NULL, dir, &c, &errs), -EINVAL);
        got = errors_text(&errs, t.dir);
        tmp_rm(&t);
        ck_assert_str_eq(got, "d/web.conf:4: NUL byte in line\n"
                              "d/web.conf:5: Colour: unknown key in [Service]");
        free(got);
        conf_errors_done(&errs);
}
END_TEST

START_TEST(test_err_empty_and_twice)
{
        expect_service_errors(HEAD "User=\n", "d/web.conf:4: User: empty value");
        expect_service_errors(HEAD "User=   # only a comment\n", "d/web.conf:4: User: empty value");
        expect_service_errors(HEAD "[Module]\nRoot=\n", "d/web.conf:5: Root: empty value");
        expect_service_errors(HEAD "[Module]\nRoot=\"\"\n", "d/web.conf:5: Root: empty value");
        /* Empty Module= is not also "missing". */
        expect_service_errors("[Service]\nModule=\nListen=a\n",
                              "d/web.conf:2: Module: empty value");
        expect_service_errors(HEAD "Module=http11\n",
                              "d/web.conf:4: Module: set twice (first at line 2)");
        expect_service_errors(HEAD "HeapSize=64K\n[Module]\nA=1\n[Service]\nHeapSize=64K\n",
                              "d/web.conf:8: HeapSize: set twice (first at line 4)");
        expect_errors("[Daemon]\nLogLevel=info\nLogLevel=debug\n", NULL,
                      "vkd.conf:3: LogLevel: set twice (first at line 2)");
}
END_TEST

START_TEST(test_err_sizes)
{
        expect_service_errors(HEAD "HeapSize=12Q\n",
                              "d/web.conf:4: HeapSize: invalid size \"12Q\" (expected a number "
                              "with an optional K, M or G suffix)");
        expect_service_errors(HEAD "HeapSize=128M\n",
                              "d/web.conf:4: HeapSize: \"128M\" out of range (16K..64M)");
        expect_service_errors(HEAD "HeapSize=8K\n",
                              "d/web.conf:4: HeapSize: \"8K\" out of range (16K..64M)");
        expect_service_errors(HEAD "HeapSize=0\n",
                              "d/web.conf:4: HeapSize: \"0\" out of range (16K..64M)");
        expect_service_errors(HEAD "HeapSize=-64K\n",
                              "d/web.conf:4: HeapSize: \"-64K\" out of range (16K..64M)");
        expect_service_errors(HEAD "HeapSize=99999999999999999999\n",
                              "d/web.conf:4: HeapSize: \"99999999999999999999\" out of range "
                              "(16K..64M)");
        expect_service_errors(HEAD "HeapSize=24K\n",
                              "d/web.conf:4: HeapSize: \"24K\" is not a power of two");
        expect_service_errors(HEAD "RingSize=256\n",
                              "d/web.conf:4: RingSize: \"256\" out of range (512..16M)");
        expect_service_errors(HEAD "RingSize=32K\n",
                              "d/web.conf:4: RingSize: 32K too large for HeapSize 64K (at most "
                              "HeapSize/4)");
        expect_service_errors(HEAD "RingSize=16K\nHeapSize=32K\n",
                              "d/web.conf:4: RingSize: 16K too large for HeapSize 32K (at most "
                              "HeapSize/4)");
}
END_TEST

START_TEST(test_err_numbers_durations_bools)
{
        expect_service_errors(HEAD "MaxConnections=0\n",
                              "d/web.conf:4: MaxConnections: \"0\" out of range (1..1000000)");
        expect_service_errors(HEAD "MaxConnections=1000001\n",
                              "d/web.conf:4: MaxConnections: \"1000001\" out of range "
                              "(1..1000000)");
        expect_service_errors(HEAD "MaxConnections=-5\n",
                              "d/web.conf:4: MaxConnections: \"-5\" out of range (1..1000000)");
        expect_service_errors(HEAD "MaxConnections=ten\n",
                              "d/web.conf:4: MaxConnections: invalid number \"ten\"");
        expect_service_errors(HEAD "Workers=0\n",
                              "d/web.conf:4: Workers: \"0\" out of range (1..1024, or auto)");
        expect_service_errors(HEAD "Workers=all\n",
                              "d/web.conf:4: Workers: invalid number \"all\" (expected 1..1024 "
                              "or auto)");
        expect_service_errors(HEAD "IdleTimeoutSec=5 parsecs\n",
                              "d/web.conf:4: IdleTimeoutSec: invalid duration \"5 parsecs\" "
                              "(e.g. 30, 500ms, 2min, 1h 30s, infinity)");
        expect_service_errors(HEAD "IdleTimeoutSec=0\n",
                              "d/web.conf:4: IdleTimeoutSec: \"0\" must be more than 0 (use "
                              "infinity for no timeout)");
        expect_service_errors(HEAD "IdleTimeoutSec=99999999999999999999\n",
                              "d/web.conf:4: IdleTimeoutSec: \"99999999999999999999\" out of "
                              "range");
        expect_service_errors(HEAD "Optional=maybe\n",
                              "d/web.conf:4: Optional: invalid boolean \"maybe\" (use yes/no, "
                              "true/false, on/off or 1/0)");
        expect_service_errors(HEAD "Isolation=paranoid\n",
                              "d/web.conf:4: Isolation: invalid isolation \"paranoid\" (use "
                              "isolated, unprivileged or privileged)");
        expect_errors("[Daemon]\nLogLevel=8\n", NULL,
                      "vkd.conf:2: LogLevel: invalid log level \"8\" (use emerg, alert, crit, "
                      "err, warning, notice, info, debug or 0..7)");
        expect_errors("[Daemon]\nDrainTimeoutSec=-1\n", NULL,
                      "vkd.conf:2: DrainTimeoutSec: \"-1\" out of range");
        expect_errors("[Daemon]\nWorkers=1025\n", NULL,
                      "vkd.conf:2: Workers: \"1025\" out of range (1..1024, or auto)");
}
END_TEST

START_TEST(test_err_users_groups)
{
        expect_service_errors(HEAD "User=vkd-no-such-user\n",
                              "d/web.conf:4: User: no such user \"vkd-no-such-user\"");
        expect_service_errors(HEAD "Group=vkd-no-such-group\n",
                              "d/web.conf:4: Group: no such group \"vkd-no-such-group\"");
        expect_service_errors(HEAD "User=4000000000\n",
                              "d/web.conf:4: User: no such user \"4000000000\"");
        expect_errors("[Daemon]\nControlSocketGroup=vkd-no-such-group\n", NULL,
                      "vkd.conf:2: ControlSocketGroup: no such group \"vkd-no-such-group\"");
}
END_TEST

START_TEST(test_err_module_paths)
{
        expect_service_errors("[Service]\nModule=lib/x.so\nListen=a\n",
                              "d/web.conf:2: Module: \"lib/x.so\" is neither a module name "
                              "(A-Z a-z 0-9 _ -, at most 64) nor an absolute path");
        expect_errors("[Daemon]\nControlSocket=vkd.sock\nConfDir=etc/vkd.d\n", NULL,
                      "vkd.conf:2: ControlSocket: \"vkd.sock\" is not an absolute path\n"
                      "vkd.conf:3: ConfDir: \"etc/vkd.d\" is not an absolute path");
        char text[200] = "[Daemon]\nControlSocket=/";

        /* 108 bytes do not fit sun_path with its NUL. */
        memset(text + strlen(text), 'a', 107);
        strcat(text, "\n");
        expect_errors(text, NULL, "vkd.conf:2: ControlSocket: path too long (at most 107 bytes)");
}
END_TEST

START_TEST(test_err_missing)
{
        expect_service_errors("# nothing\n[Service]\nUser=root\n",
                              "d/web.conf:2: Module: missing in [Service]\n"
                              "d/web.conf:2: Listen: missing in [Service]");
        expect_service_errors("[Module]\nA=1\n", "d/web.conf: [Service] section missing");
        expect_service_errors("", "d/web.conf: [Service] section missing");
}
END_TEST

START_TEST(test_err_listen)
{
        expect_service_errors("[Service]\nModule=echo\nListen=[::1]:65536\n",
                              "d/web.conf:3: Listen: \"[::1]:65536\": port out of range "
                              "(0..65535)");
        expect_service_errors(HEAD "Listen=8080\n",
                              "d/web.conf:4: Listen: \"8080\": a bare number is ambiguous: "
                              "write *:PORT for a port or systemd:NAME for a socket name");
        expect_service_errors(HEAD "Listen=localhost:80\n",
                              "d/web.conf:4: Listen: \"localhost:80\": host must be a numeric "
                              "IPv4 address, [IPv6] or *");
}
END_TEST

START_TEST(test_err_too_many)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        fputs("[Service]\nModule=echo\n", f);
        for (int i = 0; i <= CONF_LISTEN_MAX; i++)
                fprintf(f, "Listen=n%d\n", i);
        fputs("[Module]\n", f);
        for (int i = 0; i <= CONF_MODULE_ARGS_MAX; i++)
                fprintf(f, "K%d=v\n", i);
        fclose(f);
        expect_service_errors(text, "d/web.conf:35: Listen: too many listeners (at most 32)\n"
                                    "d/web.conf:293: K256: too many keys in [Module] (at most "
                                    "256)");
        free(text);
}
END_TEST

START_TEST(test_err_cap)
{
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        struct conf_errors errs = {0};
        struct conf *c;
        struct tmp t;
        char dir[128];

        fputs(HEAD, f);
        for (int i = 0; i < CONF_ERRORS_MAX + 10; i++)
                fputs("?\n", f);
        fclose(f);
        tmp_make(&t);
        tmp_write(&t, "d/web.conf", text);
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        ck_assert_int_eq(conf_load(NULL, dir, &c, &errs), -EINVAL);
        tmp_rm(&t);
        ck_assert_uint_eq(errs.n, CONF_ERRORS_MAX);
        ck_assert_uint_eq(errs.dropped, 10);
        ck_assert_uint_eq(errs.items[CONF_ERRORS_MAX - 1].line, 3 + CONF_ERRORS_MAX);
        free(text);
        conf_errors_done(&errs);
}
END_TEST

/* Duplicate listeners are found across files, after each file's own errors. */
START_TEST(test_err_duplicate_listeners)
{
        struct conf_errors errs = {0};
        struct conf *c;
        struct tmp t;
        char dir[128], path[128];
        char *got;

        tmp_make(&t);
        tmp_write(&t, "vkd.conf", "[Daemon]\nControlSocket=/run/vkd-t/ctl.sock\n");
        tmp_write(&t, "d/a.conf",
                  "[Service]\nModule=echo\nListen=*:8080\nListen=http\n"
                  "Listen=/run/vkd-t/a.sock\nListen=*:0\n");
        tmp_write(&t, "d/b.conf",
                  "[Service]\nModule=echo\nListen=127.0.0.1:8080\nListen=systemd:http\n"
                  "Listen=unix:/run/vkd-t/a.sock mode=0600\nListen=*:0\nListen=127.0.0.1:8081\n"
                  "Listen=127.0.0.1:8081\nListen=/run/vkd-t/ctl.sock\n");
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        snprintf(path, sizeof(path), "%s/vkd.conf", t.dir);
        ck_assert_int_eq(conf_load(path, dir, &c, &errs), -EINVAL);
        ck_assert_ptr_null(c);
        got = errors_text(&errs, t.dir);
        tmp_rm(&t);
        ck_assert_str_eq(got,
                         "d/b.conf:3: Listen: \"127.0.0.1:8080\" conflicts with \"*:8080\" at "
                         "d/a.conf:3\n"
                         "d/b.conf:4: Listen: \"systemd:http\" conflicts with \"systemd:http\" at "
                         "d/a.conf:4\n"
                         "d/b.conf:5: Listen: \"unix:/run/vkd-t/a.sock\" conflicts with "
                         "\"unix:/run/vkd-t/a.sock\" at d/a.conf:5\n"
                         "d/b.conf:8: Listen: \"127.0.0.1:8081\" conflicts with \"127.0.0.1:8081\" "
                         "at d/b.conf:7\n"
                         "d/b.conf:9: Listen: \"unix:/run/vkd-t/ctl.sock\" is the daemon's "
                         "ControlSocket");
        free(got);
        conf_errors_done(&errs);
}
END_TEST

START_TEST(test_err_files)
{
        struct conf_errors errs = {0};
        struct conf *c;
        struct tmp t;
        char dir[128], path[128];
        char *got;

        tmp_make(&t);
        tmp_write(&t, "d/ok.conf", "[Service]\nModule=echo\nListen=a\n");
        tmp_write(&t, "d/bad name.conf", "[Service]\nModule=echo\nListen=b\n");
        snprintf(path, sizeof(path), "%s/d/dir.conf", t.dir);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/d/fifo.conf", t.dir);
        ck_assert_int_eq(mkfifo(path, 0644), 0);
        snprintf(path, sizeof(path), "%s/d/dangling.conf", t.dir);
        ck_assert_int_eq(symlink("/nonexistent/vkd", path), 0);
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        snprintf(path, sizeof(path), "%s/missing.conf", t.dir);
        ck_assert_int_eq(conf_load(path, dir, &c, &errs), -EINVAL);
        got = errors_text(&errs, t.dir);
        tmp_rm(&t);
        ck_assert_str_eq(got, "missing.conf: cannot open: No such file or directory\n"
                              "d/bad name.conf: invalid service name \"bad name\" (use A-Z a-z "
                              "0-9 _ -, at most 64 characters)\n"
                              "d/dangling.conf: cannot open: No such file or directory\n"
                              "d/dir.conf: not a regular file\n"
                              "d/fifo.conf: not a regular file");
        free(got);
        conf_errors_done(&errs);

        ck_assert_int_eq(conf_load(NULL, "/nonexistent/vkd.d", &c, &errs), -EINVAL);
        ck_assert_uint_eq(errs.n, 1);
        ck_assert_str_eq(errs.items[0].text,
                         "/nonexistent/vkd.d: cannot open directory: No such file or directory");
        ck_assert_str_eq(errs.items[0].file, "/nonexistent/vkd.d");
        ck_assert_uint_eq(errs.items[0].line, 0);
        conf_errors_done(&errs);
}
END_TEST

START_TEST(test_err_file_too_large)
{
        char *text = malloc(CONF_FILE_SIZE_MAX + 2);

        ck_assert_ptr_nonnull(text);
        memset(text, '#', CONF_FILE_SIZE_MAX + 1);
        text[CONF_FILE_SIZE_MAX + 1] = '\0';
        expect_service_errors(text, "d/web.conf: file too large (more than 1048576 bytes)");
        free(text);
}
END_TEST

/* All errors of the broken fixtures, in order: every one reported, none after the first lost. */
START_TEST(test_broken_fixture)
{
        struct conf_errors errs = {0};
        struct conf *c = (struct conf *)1;
        char *got;

        ck_assert_int_eq(conf_load(CONF_FIXTURES "/broken/vkd.conf", CONF_FIXTURES "/broken/vkd.d",
                                   &c, &errs),
                         -EINVAL);
        ck_assert_ptr_null(c);
        got = errors_text(&errs, CONF_FIXTURES "/broken");
        ck_assert_str_eq(
                got,
                "vkd.conf:2: Workers: \"0\" out of range (1..1024, or auto)\n"
                "vkd.conf:3: LogLevel: invalid log level \"loud\" (use emerg, alert, crit, err, "
                "warning, notice, info, debug or 0..7)\n"
                "vkd.conf:4: ControlSocket: \"relative.sock\" is not an absolute path\n"
                "vkd.conf:5: DrainTimeoutSec: \"-1\" out of range\n"
                "vkd.conf:6: Frobnicate: unknown key in [Daemon]\n"
                "vkd.conf:7: User: no such user \"vkd-no-such-user\"\n"
                "vkd.conf:8: [Deamon]: unknown section (expected [Daemon])\n"
                "vkd.d/bad.name.conf: invalid service name \"bad.name\" (use A-Z a-z 0-9 _ -, at "
                "most 64 characters)\n"
                "vkd.d/bad.name.conf:1: Module: key outside of a section (add [Service] above "
                "it)\n"
                "vkd.d/bad.name.conf: [Service] section missing\n"
                "vkd.d/many.conf:3: Listen: \"127.0.0.1:99999\": port out of range (0..65535)\n"
                "vkd.d/many.conf:5: HeapSize: invalid size \"12Q\" (expected a number with an "
                "optional K, M or G suffix)\n"
                "vkd.d/many.conf:6: Colour: unknown key in [Service]\n"
                "vkd.d/many.conf:7: Optional: invalid boolean \"maybe\" (use yes/no, true/false, "
                "on/off or 1/0)\n"
                "vkd.d/many.conf:8: MaxConnections: \"0\" out of range (1..1000000)\n"
                "vkd.d/many.conf:9: IdleTimeoutSec: invalid duration \"5 parsecs\" (e.g. 30, "
                "500ms, 2min, 1h 30s, infinity)\n"
                "vkd.d/many.conf:10: User: no such user \"vkd-no-such-user\"\n"
                "vkd.d/many.conf:11: Group: no such group \"vkd-no-such-group\"\n"
                "vkd.d/many.conf:12: Isolation: invalid isolation \"paranoid\" (use isolated, "
                "unprivileged or privileged)\n"
                "vkd.d/many.conf:13: Workers: empty value\n"
                "vkd.d/many.conf:14: Module: set twice (first at line 2)\n"
                "vkd.d/many.conf:15: expected Key=Value or [Section]\n"
                "vkd.d/many.conf:16: [Servce]: unknown section (expected [Service] or [Module])\n"
                "vkd.d/many.conf:19: Empty: empty value\n"
                "vkd.d/z-dup.conf:3: Listen: \"127.0.0.1:8080\" conflicts with \"*:8080\" at "
                "vkd.d/many.conf:4");
        /* The structured fields match the text. */
        ck_assert_str_eq(errs.items[0].file, CONF_FIXTURES "/broken/vkd.conf");
        ck_assert_uint_eq(errs.items[0].line, 2);
        free(got);
        conf_errors_done(&errs);
}
END_TEST

/*
 * A partial load hands back a configuration with errors as far as it parsed, so the caller can
 * check the module keys of every service too; creds that failed to resolve are marked, in the
 * file that named them and in the services that fall back on them.
 */
START_TEST(test_partial_load)
{
        struct conf_errors errs = {0};
        struct conf *c = NULL;
        struct tmp t;
        char dir[128], path[128];

        tmp_make(&t);
        tmp_write(&t, "vkd.conf", "[Daemon]\nUser=no-such-user-vkd\n");
        tmp_write(&t, "d/a.conf",
                  "[Service]\nModule=http11\nListen=a\nHeapSize=48K\n[Module]\nColour=blue\n");
        tmp_write(&t, "d/b.conf", "[Service]\nModule=echo\nListen=b\nUser=nobody\n");
        tmp_write(&t, "d/c.conf",
                  "[Service]\nModule=echo\nListen=c\nGroup=no-such-group-vkd\n"
                  "User=nobody\n");
        snprintf(dir, sizeof(dir), "%s/d", t.dir);
        snprintf(path, sizeof(path), "%s/vkd.conf", t.dir);
        ck_assert_int_eq(conf_load_partial(path, dir, &c, &errs), -EINVAL);
        tmp_rm(&t);
        ck_assert_uint_eq(errs.n, 3);
        ck_assert_ptr_nonnull(c);
        ck_assert_uint_eq(c->n_services, 3);
        ck_assert_str_eq(c->services[0]->module, "http11");
        ck_assert_uint_eq(c->services[0]->heap_size, CONF_DEFAULT_HEAP_SIZE);
        ck_assert_uint_eq(c->services[0]->n_module_args, 1);
        ck_assert_uint_eq(c->services[0]->module_args[0].line, 6);
        ck_assert(c->daemon.creds.unresolved);
        ck_assert(c->services[0]->creds.unresolved);  /* falls back on the daemon's User= */
        ck_assert(!c->services[1]->creds.unresolved); /* names its own */
        ck_assert(c->services[2]->creds.unresolved);
        conf_free(c);
        conf_errors_done(&errs);
}
END_TEST

/* Errors are appended: a list given to two loads keeps both sets. */
START_TEST(test_errors_append)
{
        struct conf_errors errs = {0};
        struct conf *c;

        ck_assert_int_eq(conf_load(NULL, "/nonexistent/a", &c, &errs), -EINVAL);
        ck_assert_int_eq(conf_load(NULL, "/nonexistent/b", &c, &errs), -EINVAL);
        ck_assert_uint_eq(errs.n, 2);
        ck_assert_str_eq(errs.items[1].file, "/nonexistent/b");
        conf_errors_done(&errs);
        ck_assert_uint_eq(errs.n, 0);
        ck_assert_ptr_null(errs.items);
}
END_TEST

static Suite *conf_suite(void)
{
        Suite *s = suite_create("conf");
        TCase *units = tcase_create("units");
        TCase *good = tcase_create("good");
        TCase *errors = tcase_create("errors");

        tcase_add_test(units, test_parse_uint);
        tcase_add_test(units, test_parse_size);
        tcase_add_test(units, test_parse_duration);
        tcase_add_test(units, test_parse_bool);
        tcase_add_test(units, test_parse_log_level);
        tcase_add_test(units, test_parse_listen_good);
        tcase_add_test(units, test_parse_listen_bad);
        tcase_add_test(units, test_parse_listen_too_long);
        tcase_add_test(units, test_listen_conflicts);
        suite_add_tcase(s, units);

        tcase_add_test(good, test_good_fixture);
        tcase_add_test(good, test_defaults_without_daemon_conf);
        tcase_add_test(good, test_conf_dir_from_daemon_conf);
        tcase_add_test(good, test_empty_conf_dir_and_files);
        tcase_add_test(good, test_user_only_gets_primary_group);
        tcase_add_test(good, test_crlf_bom_and_layout);
        tcase_add_test(good, test_examples_load);
        tcase_add_test(good, test_free_null);
        suite_add_tcase(s, good);

        tcase_add_test(errors, test_err_unknown_key_and_section);
        tcase_add_test(errors, test_err_syntax);
        tcase_add_test(errors, test_err_line_limits);
        tcase_add_test(errors, test_err_empty_and_twice);
        tcase_add_test(errors, test_err_sizes);
        tcase_add_test(errors, test_err_numbers_durations_bools);
        tcase_add_test(errors, test_err_users_groups);
        tcase_add_test(errors, test_err_module_paths);
        tcase_add_test(errors, test_err_missing);
        tcase_add_test(errors, test_err_listen);
        tcase_add_test(errors, test_err_too_many);
        tcase_add_test(errors, test_err_cap);
        tcase_add_test(errors, test_err_duplicate_listeners);
        tcase_add_test(errors, test_err_files);
        tcase_add_test(errors, test_err_file_too_large);
        tcase_add_test(errors, test_broken_fixture);
        tcase_add_test(errors, test_errors_append);
        tcase_add_test(errors, test_partial_load);
        suite_add_tcase(s, errors);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(conf_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

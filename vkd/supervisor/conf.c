/*
 * The configuration loader: reads vkd.conf and every <conf_dir>/<name>.conf, checks every key,
 * value, section and cross-file constraint (duplicate listeners), and either hands back one new
 * owned generation or nothing plus the complete list of errors. It never logs; messages have the
 * form "file:line: key: what is wrong".
 *
 * Why a small lexer of our own rather than inih (Debian's libinih-dev 55): we tried it, and the
 * Debian build does not fit what the design asks for "every error names file:line and the key,
 * unknown keys are errors, not silence":
 *  - it is built with INI_HANDLER_LINENO=0 (no line numbers for the handler); a custom
 *    ini_parse_stream() reader could count lines, but
 *  - a malformed line never reaches the handler and ini_parse*() returns only the FIRST bad
 *    line's number, so collecting all syntax errors would mean re-lexing every line in the
 *    reader anyway;
 *  - section headers are not reported (INI_CALL_HANDLER_ON_NEW_SECTION=0): an empty unknown
 *    section is silent and "Module= missing" cannot point at the [Service] line;
 *  - multi-line values are on: an indented "  Listen=b" after "Listen=a" silently becomes a
 *    second Listen= whose value is "Listen=b";
 *  - "Key: value" is accepted as "Key=value", and only ';' starts an inline comment, so
 *    "Module=http11  # comment" keeps the comment in the value;
 *  - lines longer than 200 bytes are cut, the rest parsed as a new line, and every line number
 *    after it is off by one;
 *  - the knobs to change some of this are Debian-only process-wide globals (ini_max_line,
 *    ini_allow_multiline...), absent from upstream and from the macOS packages we also target.
 * The syntax we accept is small and is what systemd units use, so the lexer is ~200 lines:
 *  - "[Section]" headers; "Key=Value" lines; "#" or ";" starts a comment line; "#" after
 *    whitespace starts an inline comment ("#" inside a value, like "a#b", is kept; ";" is never
 *    an inline comment because values such as "text/html; charset=utf-8" need it);
 *  - surrounding whitespace of keys and values is dropped; a value may be double-quoted to keep
 *    spaces or " #", with the escapes \" \\ \n \t;
 *  - leading whitespace never continues a line; no backslash continuation;
 *  - empty values are errors (no systemd-style "reset the list"); a non-repeatable key given
 *    twice is an error, not "last one wins"; repeated section headers merge;
 *  - a UTF-8 BOM and CRLF line ends are accepted; NUL bytes and lines over CONF_LINE_MAX are not.
 */
#define _GNU_SOURCE
#include "conf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONF_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* State of one conf_load() call. Allocation failures only set `oom`; the load then fails. */
struct conf_ctx {
        struct conf_errors *errs;
        bool failed;
        bool oom;
};

/* ------------------------------------------------------------------ errors */

void conf_errors_done(struct conf_errors *errs)
{
        if (!errs)
                return;
        for (size_t i = 0; i < errs->n; i++) {
                free(errs->items[i].file);
                free(errs->items[i].text);
        }
        free(errs->items);
        errs->items = NULL;
        errs->n = 0;
        errs->dropped = 0;
}

/* Records "file:line: key: <fmt>" (no ":line" when line is 0, no "key: " when key is NULL). */
__attribute__((format(printf, 5, 6))) static void conf_error(struct conf_ctx *ctx, const char *file,
                                                             unsigned line, const char *key,
                                                             const char *fmt, ...)
{
        struct conf_errors *errs = ctx->errs;
        struct conf_error *e, *items;
        char *msg = NULL, *text = NULL, *f = NULL;
        char where[32] = "";
        va_list ap;
        int r;

        ctx->failed = true;
        if (errs->n >= CONF_ERRORS_MAX) {
                errs->dropped++;
                return;
        }
        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                goto oom;
        }
        if (line > 0)
                snprintf(where, sizeof(where), ":%u", line);
        if (asprintf(&text, "%s%s: %s%s%s", file, where, key ? key : "", key ? ": " : "", msg) <
            0) {
                text = NULL;
                goto oom;
        }
        f = strdup(file);
        if (!f)
                goto oom;
        /* Grow one by one: there are at most CONF_ERRORS_MAX and errors are not the fast path. */
        items = realloc(errs->items, (errs->n + 1) * sizeof(*items));
        if (!items)
                goto oom;
        errs->items = items;
        e = &errs->items[errs->n++];
        e->file = f;
        e->line = line;
        e->text = text;
        free(msg);
        return;
oom:
        ctx->oom = true;
        free(msg);
        free(text);
        free(f);
}

static char *conf_strdup(struct conf_ctx *ctx, const char *s)
{
        char *p = strdup(s);

        if (!p)
                ctx->oom = true;
        return p;
}

/* Appends one zeroed element to *array (of *n elements of `size` bytes); NULL when out of memory.
 */
static void *conf_grow(struct conf_ctx *ctx, void *array_ptr, size_t *n, size_t size)
{
        void **array = array_ptr;
        char *p = reallocarray(*array, *n + 1, size);

        if (!p) {
                ctx->oom = true;
                return NULL;
        }
        *array = p;
        memset(p + *n * size, 0, size);
        return p + (*n)++ * size;
}

/* "16K", "64M" for round sizes, else bytes: for messages about bounds. */
static const char *conf_format_size(uint64_t v, char buf[static 32])
{
        static const char suffixes[] = "KMGT";
        int i = -1;

        while (i < 3 && v >= 1024 && v % 1024 == 0) {
                v /= 1024;
                i++;
        }
        if (i < 0)
                snprintf(buf, 32, "%llu", (unsigned long long)v);
        else
                snprintf(buf, 32, "%llu%c", (unsigned long long)v, suffixes[i]);
        return buf;
}

/* ------------------------------------------------------------------ users and groups */

/* getpw*_r()/getgr*_r() report "not found" as 0 + NULL or as one of these, depending on NSS. */
static bool conf_is_not_found(int r)
{
        return r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM;
}

/* Resolves a user name (or an existing numeric uid). 0, -ENOENT, -ENOMEM or -errno. */
static int conf_lookup_user(const char *name, uid_t *ret_uid, gid_t *ret_gid)
{
        size_t size = 4096;
        char *buf = NULL;
        int r;

        for (;;) {
                struct passwd pw, *res = NULL;
                char *nbuf = realloc(buf, size);
                uint64_t id;

                if (!nbuf) {
                        r = -ENOMEM;
                        goto out;
                }
                buf = nbuf;
                r = getpwnam_r(name, &pw, buf, size, &res);
                if (!res && conf_is_not_found(r) &&
                    conf_parse_uint(name, 0, UINT32_MAX - 1, &id) == 0)
                        r = getpwuid_r((uid_t)id, &pw, buf, size, &res);
                if (r == ERANGE && size < 1024 * 1024) {
                        size *= 2;
                        continue;
                }
                if (res) {
                        *ret_uid = res->pw_uid;
                        *ret_gid = res->pw_gid;
                        r = 0;
                } else {
                        r = conf_is_not_found(r) ? -ENOENT : -r;
                }
                goto out;
        }
out:
        free(buf);
        return r;
}

/* Resolves a group name (or an existing numeric gid), or with name == NULL the name of *gid. */
static int conf_lookup_group(const char *name, gid_t *gid, char **ret_name)
{
        size_t size = 4096;
        char *buf = NULL;
        int r;

        for (;;) {
                struct group gr, *res = NULL;
                char *nbuf = realloc(buf, size);
                uint64_t id;

                if (!nbuf) {
                        r = -ENOMEM;
                        goto out;
                }
                buf = nbuf;
                if (name) {
                        r = getgrnam_r(name, &gr, buf, size, &res);
                        if (!res && conf_is_not_found(r) &&
                            conf_parse_uint(name, 0, UINT32_MAX - 1, &id) == 0)
                                r = getgrgid_r((gid_t)id, &gr, buf, size, &res);
                } else {
                        r = getgrgid_r(*gid, &gr, buf, size, &res);
                }
                if (r == ERANGE && size < 1024 * 1024) {
                        size *= 2;
                        continue;
                }
                if (res) {
                        *gid = res->gr_gid;
                        r = 0;
                        if (ret_name) {
                                *ret_name = strdup(res->gr_name);
                                if (!*ret_name)
                                        r = -ENOMEM;
                        }
                } else {
                        r = conf_is_not_found(r) ? -ENOENT : -r;
                }
                goto out;
        }
out:
        free(buf);
        return r;
}

static void conf_creds_done(struct conf_creds *c)
{
        free(c->user);
        free(c->group);
        c->user = c->group = NULL;
}

/* ------------------------------------------------------------------ the lexer */

struct conf_file;

/* A known key: `parse` stores the (non-empty) value at `offset` in the file's target struct. */
struct conf_key {
        const char *name;
        void (*parse)(struct conf_file *f, const struct conf_key *k, const char *value,
                      unsigned line);
        size_t offset;
        uint64_t min, max;
        bool repeatable;
};

#define CONF_KEYS_PER_SECTION_MAX 24

/* A known section: either a key table, or `any` which takes every key (for [Module]). */
struct conf_section {
        const char *name;
        const struct conf_key *keys;
        size_t n_keys;
        void (*any)(struct conf_file *f, const char *key, const char *value, unsigned line);
};

#define CONF_SECTIONS_PER_FILE_MAX 2

/* One file being parsed. */
struct conf_file {
        struct conf_ctx *ctx;
        const char *path;
        const struct conf_section *sections;
        size_t n_sections;
        const struct conf_section *cur; /* NULL: before any header, or in an unknown section */
        bool in_unknown;
        bool reported_outside;
        unsigned seen[CONF_SECTIONS_PER_FILE_MAX][CONF_KEYS_PER_SECTION_MAX];
        unsigned section_line[CONF_SECTIONS_PER_FILE_MAX]; /* first header line, 0: none */
        void *target; /* struct conf_daemon or struct conf_service */

        /* Filled by the User=/Group= parsers, combined once the file is read. */
        char *user, *group;
        uid_t uid;
        gid_t user_gid, gid;
        bool creds_failed; /* a User= or Group= lookup failed */
};

static bool conf_is_key_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '.';
}

static bool conf_is_section_char(char c)
{
        return conf_is_key_char(c) && c != '.';
}

static bool conf_is_blank(char c)
{
        return c == ' ' || c == '\t';
}

static void conf_on_section(struct conf_file *f, const char *name, unsigned line)
{
        f->cur = NULL;
        f->in_unknown = true;
        for (size_t i = 0; i < f->n_sections; i++) {
                if (strcmp(f->sections[i].name, name) == 0) {
                        f->cur = &f->sections[i];
                        f->in_unknown = false;
                        if (f->section_line[i] == 0)
                                f->section_line[i] = line;
                        return;
                }
        }
        if (f->n_sections == 1)
                conf_error(f->ctx, f->path, line, NULL, "[%s]: unknown section (expected [%s])",
                           name, f->sections[0].name);
        else
                conf_error(f->ctx, f->path, line, NULL,
                           "[%s]: unknown section (expected [%s] or [%s])", name,
                           f->sections[0].name, f->sections[1].name);
}

static void conf_on_assign(struct conf_file *f, const char *key, const char *value, unsigned line)
{
        const struct conf_section *s = f->cur;
        size_t si, ki;

        if (!s) {
                /* Keys of an unknown section were already covered by its error. */
                if (!f->in_unknown && !f->reported_outside) {
                        f->reported_outside = true;
                        conf_error(f->ctx, f->path, line, key,
                                   "key outside of a section (add [%s] above it)",
                                   f->sections[0].name);
                }
                return;
        }
        if (s->any) {
                if (*value == '\0')
                        conf_error(f->ctx, f->path, line, key, "empty value");
                else
                        s->any(f, key, value, line);
                return;
        }
        si = (size_t)(s - f->sections);
        for (ki = 0; ki < s->n_keys; ki++)
                if (strcmp(s->keys[ki].name, key) == 0)
                        break;
        if (ki == s->n_keys) {
                conf_error(f->ctx, f->path, line, key, "unknown key in [%s]", s->name);
                return;
        }
        if (f->seen[si][ki] && !s->keys[ki].repeatable) {
                conf_error(f->ctx, f->path, line, key, "set twice (first at line %u)",
                           f->seen[si][ki]);
                return;
        }
        /* Seen even when empty, so an empty Module= is not also reported as missing. */
        if (!f->seen[si][ki])
                f->seen[si][ki] = line;
        if (*value == '\0')
                conf_error(f->ctx, f->path, line, key, "empty value");
        else
                s->keys[ki].parse(f, &s->keys[ki], value, line);
}

/*
 * Unquotes a value starting at its opening '"' into out (at least as large as the input).
 * Returns 0, or -EINVAL after reporting the problem.
 */
static int conf_unquote(struct conf_file *f, const char *key, const char *p, char *out,
                        unsigned line)
{
        for (p++; *p != '"'; p++) {
                if (*p == '\0') {
                        conf_error(f->ctx, f->path, line, key, "missing closing quote");
                        return -EINVAL;
                }
                if (*p == '\\') {
                        p++;
                        switch (*p) {
                        case '"':
                        case '\\':
                                *out++ = *p;
                                break;
                        case 'n':
                                *out++ = '\n';
                                break;
                        case 't':
                                *out++ = '\t';
                                break;
                        default:
                                conf_error(
                                        f->ctx, f->path, line, key,
                                        "unknown escape in quoted value (use \\\" \\\\ \\n \\t)");
                                return -EINVAL;
                        }
                        continue;
                }
                *out++ = *p;
        }
        *out = '\0';
        for (p++; conf_is_blank(*p); p++)
                ;
        if (*p != '\0' && *p != '#') {
                conf_error(f->ctx, f->path, line, key, "text after the closing quote");
                return -EINVAL;
        }
        return 0;
}

/* One line, NUL-terminated in buf (which it may modify), without its line end. */
static void conf_lex_line(struct conf_file *f, char *buf, unsigned line)
{
        char *p = buf, *end, *eq, *key, *value;
        size_t len;

        while (conf_is_blank(*p))
                p++;
        end = p + strlen(p);
        while (end > p && conf_is_blank(end[-1]))
                *--end = '\0';
        if (*p == '\0' || *p == '#' || *p == ';')
                return;

        if (*p == '[') {
                char *close = strchr(p, ']');
                char *after;

                if (!close) {
                        conf_error(f->ctx, f->path, line, NULL,
                                   "section header without closing ']'");
                        return;
                }
                for (after = close + 1; conf_is_blank(*after); after++)
                        ;
                if (*after != '\0' && *after != '#') {
                        conf_error(f->ctx, f->path, line, NULL, "text after section header");
                        return;
                }
                *close = '\0';
                len = strlen(p + 1);
                for (size_t i = 0; i < len; i++)
                        if (!conf_is_section_char(p[1 + i]))
                                len = 0;
                if (len == 0) {
                        conf_error(f->ctx, f->path, line, NULL, "invalid section header [%s]",
                                   p + 1);
                        return;
                }
                conf_on_section(f, p + 1, line);
                return;
        }

        eq = strchr(p, '=');
        if (!eq) {
                conf_error(f->ctx, f->path, line, NULL, "expected Key=Value or [Section]");
                return;
        }
        key = p;
        end = eq;
        while (end > key && conf_is_blank(end[-1]))
                end--;
        *end = '\0';
        for (char *k = key; *k; k++) {
                if (!conf_is_key_char(*k)) {
                        conf_error(f->ctx, f->path, line, NULL, "invalid key name \"%s\"", key);
                        return;
                }
        }
        if (*key == '\0') {
                conf_error(f->ctx, f->path, line, NULL, "key name missing before '='");
                return;
        }

        value = eq + 1;
        while (conf_is_blank(*value))
                value++;
        if (*value == '"') {
                if (conf_unquote(f, key, value, value, line) < 0)
                        return;
        } else {
                /* "#" starts a comment at the start of the value or after whitespace. */
                for (char *c = value; *c; c++) {
                        if (*c == '#' && (c == value || conf_is_blank(c[-1]))) {
                                *c = '\0';
                                break;
                        }
                }
                end = value + strlen(value);
                while (end > value && conf_is_blank(end[-1]))
                        *--end = '\0';
        }
        conf_on_assign(f, key, value, line);
}

static void conf_lex(struct conf_file *f, const char *data, size_t size)
{
        char buf[CONF_LINE_MAX + 1];
        const char *p = data, *end = data + size;
        unsigned line = 0;

        if (size >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
                p += 3;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *eol = nl ? nl : end;
                size_t len = (size_t)(eol - p);

                line++;
                if (len > 0 && p[len - 1] == '\r')
                        len--;
                if (len > CONF_LINE_MAX)
                        conf_error(f->ctx, f->path, line, NULL,
                                   "line too long (more than %d bytes)", CONF_LINE_MAX);
                else if (memchr(p, '\0', len))
                        conf_error(f->ctx, f->path, line, NULL, "NUL byte in line");
                else {
                        memcpy(buf, p, len);
                        buf[len] = '\0';
                        conf_lex_line(f, buf, line);
                }
                p = nl ? nl + 1 : end;
        }
}

/* Reads a whole regular file of at most CONF_FILE_SIZE_MAX bytes; reports what goes wrong. */
static int conf_read_file(struct conf_ctx *ctx, int dirfd, const char *name, const char *path,
                          char **ret_data, size_t *ret_size)
{
        struct stat st;
        char *data = NULL;
        size_t size = 0;
        int fd, r;

        /* O_NONBLOCK: a FIFO named *.conf must not hang the daemon; regular files ignore it. */
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                conf_error(ctx, path, 0, NULL, "cannot open: %s", strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                conf_error(ctx, path, 0, NULL, "cannot stat: %s", strerror(-r));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                conf_error(ctx, path, 0, NULL, "not a regular file");
                goto out;
        }
        if (st.st_size > CONF_FILE_SIZE_MAX) {
                r = -EFBIG;
                conf_error(ctx, path, 0, NULL, "file too large (more than %d bytes)",
                           CONF_FILE_SIZE_MAX);
                goto out;
        }
        /* One more byte than allowed, to notice a file that grew after fstat(). */
        data = malloc(CONF_FILE_SIZE_MAX + 1);
        if (!data) {
                ctx->oom = true;
                r = -ENOMEM;
                goto out;
        }
        while (size <= CONF_FILE_SIZE_MAX) {
                ssize_t n = read(fd, data + size, CONF_FILE_SIZE_MAX + 1 - size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        conf_error(ctx, path, 0, NULL, "cannot read: %s", strerror(-r));
                        goto out;
                }
                if (n == 0)
                        break;
                size += (size_t)n;
        }
        if (size > CONF_FILE_SIZE_MAX) {
                r = -EFBIG;
                conf_error(ctx, path, 0, NULL, "file too large (more than %d bytes)",
                           CONF_FILE_SIZE_MAX);
                goto out;
        }
        *ret_data = data;
        *ret_size = size;
        data = NULL;
        r = 0;
out:
        free(data);
        close(fd);
        return r;
}

/* ------------------------------------------------------------------ value parsers */

#define CONF_FIELD(f, k, type) ((type *)((char *)(f)->target + (k)->offset))

static void conf_key_uint(struct conf_file *f, const struct conf_key *k, const char *value,
                          unsigned line)
{
        uint64_t v;
        int r = conf_parse_uint(value, k->min, k->max, &v);

        if (r == -ERANGE)
                conf_error(f->ctx, f->path, line, k->name, "\"%s\" out of range (%llu..%llu)",
                           value, (unsigned long long)k->min, (unsigned long long)k->max);
        else if (r < 0)
                conf_error(f->ctx, f->path, line, k->name, "invalid number \"%s\"", value);
        else
                *CONF_FIELD(f, k, unsigned) = (unsigned)v;
}

/* Workers= in both files: "auto" (stored as 0) or 1..CONF_WORKERS_MAX. */
static void conf_key_workers(struct conf_file *f, const struct conf_key *k, const char *value,
                             unsigned line)
{
        if (strcmp(value, "auto") == 0) {
                *CONF_FIELD(f, k, unsigned) = 0;
                return;
        }
        uint64_t v;
        int r = conf_parse_uint(value, 1, CONF_WORKERS_MAX, &v);

        if (r == -ERANGE)
                conf_error(f->ctx, f->path, line, k->name, "\"%s\" out of range (1..%d, or auto)",
                           value, CONF_WORKERS_MAX);
        else if (r < 0)
                conf_error(f->ctx, f->path, line, k->name,
                           "invalid number \"%s\" (expected 1..%d or auto)", value,
                           CONF_WORKERS_MAX);
        else
                *CONF_FIELD(f, k, unsigned) = (unsigned)v;
}

/* A power-of-two size in [max(min, page size), max]. */
static void conf_key_size_pow2(struct conf_file *f, const struct conf_key *k, const char *value,
                               unsigned line)
{
        char lo[32], hi[32];
        uint64_t v, min = k->min;
        long page = sysconf(_SC_PAGESIZE);
        int r;

        /* A micro-heap is whole pages: HeapSize's lower bound is at least one page. */
        if (k->offset == offsetof(struct conf_service, heap_size) && page > 0 &&
            (uint64_t)page > min)
                min = (uint64_t)page;
        r = conf_parse_size(value, &v);
        if (r == -EINVAL) {
                conf_error(f->ctx, f->path, line, k->name,
                           "invalid size \"%s\" (expected a number with an optional K, M or G "
                           "suffix)",
                           value);
                return;
        }
        if (r < 0 || v < min || v > k->max) {
                conf_error(f->ctx, f->path, line, k->name, "\"%s\" out of range (%s..%s)", value,
                           conf_format_size(min, lo), conf_format_size(k->max, hi));
                return;
        }
        if (v & (v - 1)) {
                conf_error(f->ctx, f->path, line, k->name, "\"%s\" is not a power of two", value);
                return;
        }
        *CONF_FIELD(f, k, size_t) = (size_t)v;
}

/* A duration; min 1 forbids 0 (callers then say "infinity" for none). */
static void conf_key_duration(struct conf_file *f, const struct conf_key *k, const char *value,
                              unsigned line)
{
        uint64_t v;
        int r = conf_parse_duration_usec(value, &v);

        if (r == -EINVAL)
                conf_error(f->ctx, f->path, line, k->name,
                           "invalid duration \"%s\" (e.g. 30, 500ms, 2min, 1h 30s, infinity)",
                           value);
        else if (r < 0)
                conf_error(f->ctx, f->path, line, k->name, "\"%s\" out of range", value);
        else if (v < k->min)
                conf_error(f->ctx, f->path, line, k->name,
                           "\"%s\" must be more than 0 (use infinity for no timeout)", value);
        else
                *CONF_FIELD(f, k, uint64_t) = v;
}

static void conf_key_bool(struct conf_file *f, const struct conf_key *k, const char *value,
                          unsigned line)
{
        int r = conf_parse_bool(value);

        if (r < 0)
                conf_error(f->ctx, f->path, line, k->name,
                           "invalid boolean \"%s\" (use yes/no, true/false, on/off or 1/0)", value);
        else
                *CONF_FIELD(f, k, bool) = r;
}

static void conf_key_string(struct conf_file *f, const struct conf_key *k, const char *value,
                            unsigned line);

/* An absolute path that fits `max` bytes (sun_path or PATH_MAX), replacing the default. */
static void conf_key_path(struct conf_file *f, const struct conf_key *k, const char *value,
                          unsigned line)
{
        if (value[0] != '/') {
                conf_error(f->ctx, f->path, line, k->name, "\"%s\" is not an absolute path", value);
                return;
        }
        if (strlen(value) > k->max) {
                conf_error(f->ctx, f->path, line, k->name, "path too long (at most %llu bytes)",
                           (unsigned long long)k->max);
                return;
        }
        conf_key_string(f, k, value, line);
}

/* Any non-empty text of at most `max` bytes, replacing the default. */
static void conf_key_string(struct conf_file *f, const struct conf_key *k, const char *value,
                            unsigned line)
{
        char **field = CONF_FIELD(f, k, char *);
        char *copy;

        if (!value[0] || strlen(value) > k->max) {
                conf_error(f->ctx, f->path, line, k->name, "empty or too long (at most %llu bytes)",
                           (unsigned long long)k->max);
                return;
        }
        copy = conf_strdup(f->ctx, value);
        if (!copy)
                return;
        free(*field);
        *field = copy;
}

static void conf_key_log_level(struct conf_file *f, const struct conf_key *k, const char *value,
                               unsigned line)
{
        int r = conf_parse_log_level(value);

        if (r < 0)
                conf_error(f->ctx, f->path, line, k->name,
                           "invalid log level \"%s\" (use emerg, alert, crit, err, warning, "
                           "notice, info, debug or 0..7)",
                           value);
        else
                *CONF_FIELD(f, k, int) = r;
}

static void conf_key_user(struct conf_file *f, const struct conf_key *k, const char *value,
                          unsigned line)
{
        int r = conf_lookup_user(value, &f->uid, &f->user_gid);

        f->creds_failed |= r < 0;
        if (r == -ENOMEM)
                f->ctx->oom = true;
        else if (r == -ENOENT)
                conf_error(f->ctx, f->path, line, k->name, "no such user \"%s\"", value);
        else if (r < 0)
                conf_error(f->ctx, f->path, line, k->name, "cannot look up user \"%s\": %s", value,
                           strerror(-r));
        else
                f->user = conf_strdup(f->ctx, value);
}

static void conf_key_group(struct conf_file *f, const struct conf_key *k, const char *value,
                           unsigned line)
{
        int r = conf_lookup_group(value, &f->gid, NULL);

        f->creds_failed |= r < 0;
        if (r == -ENOMEM)
                f->ctx->oom = true;
        else if (r == -ENOENT)
                conf_error(f->ctx, f->path, line, k->name, "no such group \"%s\"", value);
        else if (r < 0)
                conf_error(f->ctx, f->path, line, k->name, "cannot look up group \"%s\": %s", value,
                           strerror(-r));
        else
                f->group = conf_strdup(f->ctx, value);
}

/* ControlSocketGroup=: stored straight into the daemon. */
static void conf_key_control_group(struct conf_file *f, const struct conf_key *k, const char *value,
                                   unsigned line)
{
        struct conf_daemon *d = f->target;
        int r = conf_lookup_group(value, &d->control_socket_gid, NULL);

        if (r == -ENOMEM)
                f->ctx->oom = true;
        else if (r == -ENOENT)
                conf_error(f->ctx, f->path, line, k->name, "no such group \"%s\"", value);
        else if (r < 0)
                conf_error(f->ctx, f->path, line, k->name, "cannot look up group \"%s\": %s", value,
                           strerror(-r));
        else
                d->control_socket_group = conf_strdup(f->ctx, value);
}

static bool conf_is_service_name(const char *s, size_t len)
{
        if (len == 0 || len > CONF_SERVICE_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!conf_is_section_char(s[i]))
                        return false;
        return true;
}

static void conf_key_module(struct conf_file *f, const struct conf_key *k, const char *value,
                            unsigned line)
{
        struct conf_service *s = f->target;
        bool is_path = value[0] == '/';

        if (is_path && strlen(value) >= PATH_MAX) {
                conf_error(f->ctx, f->path, line, k->name, "path too long (at most %d bytes)",
                           PATH_MAX - 1);
                return;
        }
        if (!is_path && !conf_is_service_name(value, strlen(value))) {
                conf_error(f->ctx, f->path, line, k->name,
                           "\"%s\" is neither a module name (A-Z a-z 0-9 _ -, at most %d) nor "
                           "an absolute path",
                           value, CONF_SERVICE_NAME_MAX);
                return;
        }
        s->module = conf_strdup(f->ctx, value);
        s->module_is_path = is_path;
        s->module_line = line;
}

/* Workers= in [Service]: the line is kept for a module that runs in one worker only. */
static void conf_key_service_workers(struct conf_file *f, const struct conf_key *k,
                                     const char *value, unsigned line)
{
        struct conf_service *s = f->target;

        conf_key_workers(f, k, value, line);
        s->workers_line = line;
}

static void conf_key_listen(struct conf_file *f, const struct conf_key *k, const char *value,
                            unsigned line)
{
        struct conf_service *s = f->target;
        struct conf_listen l, *slot;
        const char *why = NULL;

        if (conf_parse_listen(value, &l, &why) < 0) {
                conf_error(f->ctx, f->path, line, k->name, "\"%s\": %s", value, why);
                return;
        }
        if (s->n_listen >= CONF_LISTEN_MAX) {
                conf_error(f->ctx, f->path, line, k->name, "too many listeners (at most %d)",
                           CONF_LISTEN_MAX);
                return;
        }
        l.line = line;
        slot = conf_grow(f->ctx, &s->listen, &s->n_listen, sizeof(*slot));
        if (slot)
                *slot = l;
}

static void conf_key_isolation(struct conf_file *f, const struct conf_key *k, const char *value,
                               unsigned line)
{
        struct conf_service *s = f->target;

        for (int i = CONF_ISOLATION_ISOLATED; i <= CONF_ISOLATION_PRIVILEGED; i++) {
                if (strcmp(value, conf_isolation_to_string(i)) == 0) {
                        s->isolation = i;
                        return;
                }
        }
        conf_error(f->ctx, f->path, line, k->name,
                   "invalid isolation \"%s\" (use isolated, unprivileged or privileged)", value);
}

const char *conf_isolation_to_string(enum conf_isolation i)
{
        switch (i) {
        case CONF_ISOLATION_ISOLATED:
                return "isolated";
        case CONF_ISOLATION_UNPRIVILEGED:
                return "unprivileged";
        case CONF_ISOLATION_PRIVILEGED:
                return "privileged";
        }
        return NULL;
}

static void conf_module_arg(struct conf_file *f, const char *key, const char *value, unsigned line)
{
        struct conf_service *s = f->target;
        struct conf_kv *kv;

        if (s->n_module_args >= CONF_MODULE_ARGS_MAX) {
                conf_error(f->ctx, f->path, line, key, "too many keys in [Module] (at most %d)",
                           CONF_MODULE_ARGS_MAX);
                return;
        }
        kv = conf_grow(f->ctx, &s->module_args, &s->n_module_args, sizeof(*kv));
        if (!kv)
                return;
        kv->key = conf_strdup(f->ctx, key);
        kv->value = conf_strdup(f->ctx, value);
        kv->file = s->file;
        kv->line = line;
}

/* ------------------------------------------------------------------ key tables */

#define D(field) offsetof(struct conf_daemon, field)
#define S(field) offsetof(struct conf_service, field)

static const struct conf_key conf_daemon_keys[] = {
        {"Workers", conf_key_workers, D(workers), 0, 0, false},
        {"ControlSocket", conf_key_path, D(control_socket), 0,
         sizeof(((struct sockaddr_un *)0)->sun_path) - 1, false},
        {"ControlSocketGroup", conf_key_control_group, 0, 0, 0, false},
        {"LogLevel", conf_key_log_level, D(log_level), 0, 0, false},
        {"User", conf_key_user, 0, 0, 0, false},
        {"Group", conf_key_group, 0, 0, 0, false},
        {"DrainTimeoutSec", conf_key_duration, D(drain_timeout_usec), 0, 0, false},
        {"ConfDir", conf_key_path, D(conf_dir), 0, PATH_MAX - 1, false},
};

static const struct conf_section conf_daemon_sections[] = {
        {"Daemon", conf_daemon_keys, CONF_ELEMENTSOF(conf_daemon_keys), NULL},
};

/* Indexes into conf_service_keys, for the checks after the file is read. */
enum {
        CONF_KEY_MODULE,
        CONF_KEY_LISTEN,
        CONF_KEY_HEAP_SIZE = 5,
        CONF_KEY_RING_SIZE,
        CONF_KEY_TLS = 12, /* TLSCertificate=, then the rest in struct conf_tls order */
};

static const struct conf_key conf_service_keys[] = {
        [CONF_KEY_MODULE] = {"Module", conf_key_module, 0, 0, 0, false},
        [CONF_KEY_LISTEN] = {"Listen", conf_key_listen, 0, 0, 0, true},
        {"User", conf_key_user, 0, 0, 0, false},
        {"Group", conf_key_group, 0, 0, 0, false},
        {"Isolation", conf_key_isolation, 0, 0, 0, false},
        [CONF_KEY_HEAP_SIZE] = {"HeapSize", conf_key_size_pow2, S(heap_size), CONF_HEAP_SIZE_MIN,
                                CONF_HEAP_SIZE_MAX, false},
        [CONF_KEY_RING_SIZE] = {"RingSize", conf_key_size_pow2, S(ring_size), CONF_RING_SIZE_MIN,
                                CONF_RING_SIZE_MAX, false},
        {"MaxConnections", conf_key_uint, S(max_connections), 1, CONF_MAX_CONNECTIONS_MAX, false},
        {"IdleTimeoutSec", conf_key_duration, S(idle_timeout_usec), 1, 0, false},
        {"Workers", conf_key_service_workers, S(workers), 0, 0, false},
        {"Optional", conf_key_bool, S(optional), 0, 0, false},
        {"SystemCallFilter", conf_key_bool, S(syscall_filter), 0, 0, false},
        [CONF_KEY_TLS + TLS_CONF_CERT] = {"TLSCertificate", conf_key_path, S(tls.certificate), 0,
                                          PATH_MAX - 1, false},
        [CONF_KEY_TLS +
                TLS_CONF_KEY] = {"TLSKey", conf_key_path, S(tls.key), 0, PATH_MAX - 1, false},
        [CONF_KEY_TLS + TLS_CONF_PROTOCOLS] = {"TLSProtocols", conf_key_string, S(tls.protocols), 0,
                                               255, false},
        [CONF_KEY_TLS +
                TLS_CONF_CIPHERS] = {"TLSCiphers", conf_key_string, S(tls.ciphers), 0, 1023, false},
        [CONF_KEY_TLS + TLS_CONF_CIPHERSUITES] = {"TLSCipherSuites", conf_key_string,
                                                  S(tls.ciphersuites), 0, 1023, false},
        [CONF_KEY_TLS + TLS_CONF_ALPN] = {"TLSALPN", conf_key_string, S(tls.alpn), 0, 255, false},
};

static const struct conf_section conf_service_sections[] = {
        {"Service", conf_service_keys, CONF_ELEMENTSOF(conf_service_keys), NULL},
        {"Module", NULL, 0, conf_module_arg},
};

#undef D
#undef S

_Static_assert(CONF_ELEMENTSOF(conf_service_keys) <= CONF_KEYS_PER_SECTION_MAX, "seen[] too small");
_Static_assert(CONF_ELEMENTSOF(conf_daemon_keys) <= CONF_KEYS_PER_SECTION_MAX, "seen[] too small");

/* ------------------------------------------------------------------ files */

/* TLS*=: the context is built once here, so that what would stop a worker
 * (an unreadable key, one that does not match, a bad cipher list) is a
 * file:line error of the loader and of --check-config. */
static void conf_check_tls(struct conf_ctx *ctx, struct conf_service *s, const unsigned *seen)
{
        char msg[512];
        void *c;
        int field;

        for (int i = 0; i < 6; i++)
                s->tls.line[i] = seen[CONF_KEY_TLS + i];
        if (!s->tls.certificate) {
                for (int i = 1; i < 6; i++)
                        if (seen[CONF_KEY_TLS + i]) {
                                conf_error(ctx, s->file, seen[CONF_KEY_TLS + i], tls_conf_key(i),
                                           "needs TLSCertificate=");
                                return;
                        }
                return;
        }
        if (tls_conf_ctx(&s->tls, &c, &field, msg, sizeof msg) < 0) {
                unsigned line =
                        s->tls.line[field] ? s->tls.line[field] : s->tls.line[TLS_CONF_CERT];
                conf_error(ctx, s->file, line, tls_conf_key(field), "%s", msg);
                return;
        }
        tls_conf_free(c);
}

/*
 * Turns the User=/Group= of a file into creds: user's primary group when only User= is given,
 * `fallback` (the daemon's) for what the file leaves out.
 */
static void conf_finish_creds(struct conf_file *f, struct conf_creds *out,
                              const struct conf_creds *fallback)
{
        struct conf_ctx *ctx = f->ctx;

        /* What the file leaves out comes from the fallback, its failures too. */
        out->unresolved = f->creds_failed || (!f->user && fallback && fallback->unresolved);
        if (f->user) {
                out->user = f->user;
                out->uid = f->uid;
                f->user = NULL;
                if (!f->group) {
                        out->gid = f->user_gid;
                        int r = conf_lookup_group(NULL, &out->gid, &out->group);

                        if (r == -ENOMEM)
                                ctx->oom = true;
                        else if (r < 0 && asprintf(&out->group, "%u", (unsigned)out->gid) < 0) {
                                out->group = NULL;
                                ctx->oom = true;
                        }
                        return;
                }
        } else if (fallback && fallback->user) {
                out->user = conf_strdup(ctx, fallback->user);
                out->uid = fallback->uid;
        }
        if (f->group) {
                out->group = f->group;
                out->gid = f->gid;
                f->group = NULL;
        } else if (fallback && fallback->group) {
                out->group = conf_strdup(ctx, fallback->group);
                out->gid = fallback->gid;
        }
}

static void conf_file_done(struct conf_file *f)
{
        free(f->user);
        free(f->group);
}

static int conf_daemon_defaults(struct conf_daemon *d)
{
        d->log_level = CONF_DEFAULT_LOG_LEVEL;
        d->drain_timeout_usec = CONF_DEFAULT_DRAIN_TIMEOUT_USEC;
        d->control_socket = strdup(CONF_DEFAULT_CONTROL_SOCKET);
        d->conf_dir = strdup(CONF_DEFAULT_CONF_DIR);
        if (!d->control_socket || !d->conf_dir)
                return -ENOMEM;
        return 0;
}

static void conf_load_daemon(struct conf_ctx *ctx, struct conf_daemon *d, const char *path)
{
        struct conf_file f = {
                .ctx = ctx,
                .path = path,
                .sections = conf_daemon_sections,
                .n_sections = CONF_ELEMENTSOF(conf_daemon_sections),
                .target = d,
        };
        char *data = NULL;
        size_t size;

        d->file = conf_strdup(ctx, path);
        if (conf_read_file(ctx, AT_FDCWD, path, path, &data, &size) < 0)
                return;
        conf_lex(&f, data, size);
        free(data);
        conf_finish_creds(&f, &d->creds, NULL);
        conf_file_done(&f);
}

static void conf_service_free(struct conf_service *s)
{
        if (!s)
                return;
        free(s->name);
        free(s->file);
        free(s->module);
        free(s->listen);
        free(s->tls.certificate);
        free(s->tls.key);
        free(s->tls.protocols);
        free(s->tls.ciphers);
        free(s->tls.ciphersuites);
        free(s->tls.alpn);
        conf_creds_done(&s->creds);
        for (size_t i = 0; i < s->n_module_args; i++) {
                free(s->module_args[i].key);
                free(s->module_args[i].value);
        }
        free(s->module_args);
        free(s);
}

/* Parses one service file into s (name and file already set); errors go to ctx. */
static void conf_load_service(struct conf_ctx *ctx, const struct conf_daemon *d,
                              struct conf_service *s, int dirfd, const char *fname)
{
        struct conf_file f = {
                .ctx = ctx,
                .path = s->file,
                .sections = conf_service_sections,
                .n_sections = CONF_ELEMENTSOF(conf_service_sections),
                .target = s,
        };
        const unsigned *seen = f.seen[0];
        char *data = NULL;
        size_t size;

        s->isolation = CONF_ISOLATION_ISOLATED;
        s->syscall_filter = true;
        s->heap_size = CONF_DEFAULT_HEAP_SIZE;
        s->ring_size = CONF_DEFAULT_RING_SIZE;
        s->max_connections = CONF_DEFAULT_MAX_CONNECTIONS;
        s->idle_timeout_usec = CONF_DEFAULT_IDLE_TIMEOUT_USEC;

        if (conf_read_file(ctx, dirfd, fname, s->file, &data, &size) < 0)
                return;
        conf_lex(&f, data, size);
        free(data);
        conf_finish_creds(&f, &s->creds, &d->creds);
        conf_file_done(&f);

        s->section_line = f.section_line[0];
        if (s->section_line == 0) {
                conf_error(ctx, s->file, 0, NULL, "[Service] section missing");
                return;
        }
        if (!seen[CONF_KEY_MODULE])
                conf_error(ctx, s->file, s->section_line, "Module", "missing in [Service]");
        if (!seen[CONF_KEY_LISTEN])
                conf_error(ctx, s->file, s->section_line, "Listen", "missing in [Service]");
        conf_check_tls(ctx, s, seen);

        /* The two socket rings live in the micro-heap and leave at least half of it to frames. */
        if (2 * s->ring_size > s->heap_size / 2) {
                char ring[32], heap[32];

                conf_format_size(s->ring_size, ring);
                conf_format_size(s->heap_size, heap);
                if (seen[CONF_KEY_RING_SIZE])
                        conf_error(ctx, s->file, seen[CONF_KEY_RING_SIZE], "RingSize",
                                   "%s too large for HeapSize %s (at most HeapSize/4)", ring, heap);
                else
                        conf_error(ctx, s->file, seen[CONF_KEY_HEAP_SIZE], "HeapSize",
                                   "%s too small for RingSize %s (at least 4 x RingSize)", heap,
                                   ring);
        }
}

static int conf_cmp_names(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool conf_has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void conf_load_services(struct conf_ctx *ctx, struct conf *c, const char *dir)
{
        char **names = NULL;
        size_t n_names = 0;
        struct dirent *de;
        DIR *d;

        struct stat daemon_st;
        bool skip_daemon = c->daemon.file && stat(c->daemon.file, &daemon_st) == 0;

        d = opendir(dir);
        if (!d) {
                conf_error(ctx, dir, 0, NULL, "cannot open directory: %s", strerror(errno));
                return;
        }
        for (;;) {
                char **slot;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno)
                                conf_error(ctx, dir, 0, NULL, "cannot read directory: %s",
                                           strerror(errno));
                        break;
                }
                /* Hidden files are editors' locks and backups (".#web.conf"), as in systemd. */
                if (de->d_name[0] == '.' || !conf_has_suffix(de->d_name, ".conf"))
                        continue;
                /* vkd.conf may sit beside the services (`vkd --conf-dir conf/`): it is the
                 * daemon's file, not a service. Compared by inode, so any name or path works. */
                if (skip_daemon) {
                        struct stat st;

                        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
                            st.st_dev == daemon_st.st_dev && st.st_ino == daemon_st.st_ino)
                                continue;
                }
                if (n_names >= CONF_SERVICES_MAX) {
                        conf_error(ctx, dir, 0, NULL, "too many service files (at most %d)",
                                   CONF_SERVICES_MAX);
                        break;
                }
                slot = conf_grow(ctx, &names, &n_names, sizeof(*names));
                if (!slot)
                        break;
                *slot = conf_strdup(ctx, de->d_name);
                if (!*slot)
                        n_names--;
        }
        if (n_names > 0)
                qsort(names, n_names, sizeof(*names), conf_cmp_names);

        for (size_t i = 0; i < n_names && !ctx->oom; i++) {
                size_t len = strlen(names[i]) - strlen(".conf");
                struct conf_service *s, **slot;

                s = calloc(1, sizeof(*s));
                slot = s ? conf_grow(ctx, &c->services, &c->n_services, sizeof(*slot)) : NULL;
                if (!slot) {
                        free(s);
                        ctx->oom = true;
                        break;
                }
                *slot = s;
                s->name = strndup(names[i], len);
                if (asprintf(&s->file, "%s/%s", dir, names[i]) < 0)
                        s->file = NULL;
                if (!s->name || !s->file) {
                        ctx->oom = true;
                        break;
                }
                if (!conf_is_service_name(s->name, len))
                        conf_error(ctx, s->file, 0, NULL,
                                   "invalid service name \"%s\" (use A-Z a-z 0-9 _ -, at most "
                                   "%d characters)",
                                   s->name, CONF_SERVICE_NAME_MAX);
                conf_load_service(ctx, &c->daemon, s, dirfd(d), names[i]);
        }
        for (size_t i = 0; i < n_names; i++)
                free(names[i]);
        free(names);
        closedir(d);
}

/* Every listener may be bound once, across all services, and not on the control socket. */
static void conf_check_listeners(struct conf_ctx *ctx, const struct conf *c)
{
        struct conf_listen control;
        bool have_control = conf_parse_listen(c->daemon.control_socket, &control, NULL) == 0 &&
                            control.kind == CONF_LISTEN_UNIX;

        for (size_t si = 0; si < c->n_services; si++) {
                const struct conf_service *s = c->services[si];

                for (size_t li = 0; li < s->n_listen; li++) {
                        const struct conf_listen *l = &s->listen[li];
                        char text[CONF_SOCKET_NAME_MAX + 16], other[CONF_SOCKET_NAME_MAX + 16];
                        bool found = false;

                        conf_listen_format(l, text, sizeof(text));
                        if (have_control && conf_listen_conflicts(l, &control))
                                conf_error(ctx, s->file, l->line, "Listen",
                                           "\"%s\" is the daemon's ControlSocket", text);
                        /* Only the first earlier conflict, or a triple would report twice. */
                        for (size_t sj = 0; sj <= si && !found; sj++) {
                                const struct conf_service *t = c->services[sj];
                                size_t end = sj == si ? li : t->n_listen;

                                for (size_t lj = 0; lj < end && !found; lj++) {
                                        if (!conf_listen_conflicts(l, &t->listen[lj]))
                                                continue;
                                        found = true;
                                        conf_listen_format(&t->listen[lj], other, sizeof(other));
                                        conf_error(ctx, s->file, l->line, "Listen",
                                                   "\"%s\" conflicts with \"%s\" at %s:%u", text,
                                                   other, t->file, t->listen[lj].line);
                                }
                        }
                }
        }
}

static int conf_load_generation(const char *daemon_conf, const char *conf_dir, bool partial,
                                struct conf **ret, struct conf_errors *errs)
{
        struct conf_ctx ctx = {.errs = errs};
        struct conf *c;
        int r;

        *ret = NULL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        if (conf_daemon_defaults(&c->daemon) < 0) {
                r = -ENOMEM;
                goto out;
        }
        if (daemon_conf)
                conf_load_daemon(&ctx, &c->daemon, daemon_conf);
        if (c->daemon.workers == 0) {
                long n = sysconf(_SC_NPROCESSORS_ONLN);

                c->daemon.workers_auto = true;
                if (n < 1)
                        n = 1;
                if (n > CONF_WORKERS_MAX)
                        n = CONF_WORKERS_MAX;
                c->daemon.workers = (unsigned)n;
        }
        if (conf_dir) {
                char *dup = conf_strdup(&ctx, conf_dir);

                if (dup) {
                        free(c->daemon.conf_dir);
                        c->daemon.conf_dir = dup;
                }
        }
        if (!ctx.oom)
                conf_load_services(&ctx, c, c->daemon.conf_dir);
        if (!ctx.oom)
                conf_check_listeners(&ctx, c);

        r = ctx.oom ? -ENOMEM : ctx.failed ? -EINVAL : 0;
        if (r == 0 || (r == -EINVAL && partial)) {
                *ret = c;
                c = NULL;
        }
out:
        conf_free(c);
        return r;
}

int conf_load(const char *daemon_conf, const char *conf_dir, struct conf **ret,
              struct conf_errors *errs)
{
        return conf_load_generation(daemon_conf, conf_dir, false, ret, errs);
}

int conf_load_partial(const char *daemon_conf, const char *conf_dir, struct conf **ret,
                      struct conf_errors *errs)
{
        return conf_load_generation(daemon_conf, conf_dir, true, ret, errs);
}

struct conf *conf_free(struct conf *c)
{
        if (!c)
                return NULL;
        free(c->daemon.file);
        free(c->daemon.control_socket);
        free(c->daemon.control_socket_group);
        conf_creds_done(&c->daemon.creds);
        free(c->daemon.conf_dir);
        for (size_t i = 0; i < c->n_services; i++)
                conf_service_free(c->services[i]);
        free(c->services);
        free(c);
        return NULL;
}

const struct conf_service *conf_find_service(const struct conf *c, const char *name)
{
        for (size_t i = 0; i < c->n_services; i++)
                if (strcmp(c->services[i]->name, name) == 0)
                        return c->services[i];
        return NULL;
}

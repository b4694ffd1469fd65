/*
 * libFuzzer target for the RESP unit of the redis service. The first input
 * byte picks the limits and buffer sizes, the second a split point; the rest is
 * what a client sent. It is parsed three ways (all at once, in two reads split
 * at that point, and in small steps) with the unconsumed bytes moved to a fresh
 * allocation before every call, and the three transcripts must be identical.
 * Every command must respect the limits, point only into the buffer or the
 * scratch, and survive a round trip through the encoders; number arguments
 * must round-trip through the number helpers.
 */
#include "resp.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

#define ARGV_MAX (1 << 16)

struct text {
        char *d;
        size_t len, cap;
};

static void put(struct text *t, const void *s, size_t n)
{
        if (t->len + n > t->cap) {
                while (t->len + n > t->cap)
                        t->cap = t->cap ? 2 * t->cap : 256;
                t->d = realloc(t->d, t->cap);
                CHECK(t->d);
        }
        memcpy(t->d + t->len, s, n);
        t->len += n;
}

static void put_num(struct text *t, char tag, size_t v)
{
        put(t, &tag, 1);
        put(t, &v, sizeof(v));
}

struct setup {
        struct resp_limits lim;
        bool unauth;
        size_t argv_cap;
        size_t scratch_cap;
};

static bool within(const char *p, size_t len, const char *base, size_t size)
{
        return len == 0 || (p >= base && p <= base + size && len <= (size_t)(base + size - p));
}

/* Encodes the command back as a multibulk request and parses that. */
static void round_trip(const struct resp_command *cmd)
{
        size_t size = resp_add_array(NULL, 0, cmd->argc), at;
        struct resp_arg *argv = malloc(cmd->argc * sizeof(*argv));
        struct resp_command back = {.argv = argv, .argv_cap = cmd->argc};
        struct resp_parser p;
        char *enc;

        for (size_t i = 0; i < cmd->argc; i++)
                size += resp_add_bulk(NULL, 0, cmd->argv[i].ptr, cmd->argv[i].len);
        enc = malloc(size);
        at = resp_add_array(enc, size, cmd->argc);
        for (size_t i = 0; i < cmd->argc; i++)
                at += resp_add_bulk(enc + at, size - at, cmd->argv[i].ptr, cmd->argv[i].len);
        CHECK(at == size);
        CHECK(resp_parser_init(&p, NULL) == 0);
        CHECK(resp_parse(&p, enc, size, &back) == (ssize_t)size);
        CHECK(back.argc == cmd->argc);
        for (size_t i = 0; i < cmd->argc; i++) {
                CHECK(back.argv[i].len == cmd->argv[i].len);
                CHECK(memcmp(back.argv[i].ptr, cmd->argv[i].ptr, back.argv[i].len) == 0);
        }
        free(enc);
        free(argv);
}

/* Number helpers and single-line encoders on one argument. */
static void numbers(const char *s, size_t len)
{
        char out[RESP_LDSTR_SIZE + 8];
        long long ll;
        long double ld, again;
        size_t n;
        int r = resp_strtoll(s, len, &ll);

        CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
        if (r == 0) {
                /* string2ll takes only canonical text, so printing gives it back. */
                n = resp_ll2str(out, ll);
                CHECK(n == len && memcmp(out, s, len) == 0);
        }
        if (resp_strtold(s, len, &ld) == 0) {
                n = resp_ld2str(out, sizeof(out), ld);
                CHECK(n > 0 && n < RESP_LDSTR_SIZE);
                CHECK(resp_strtold(out, n, &again) == 0);
                n = resp_add_double(out, sizeof(out), RESP3, (double)ld);
                CHECK(n > 3 && n < 40 && out[0] == ',' && out[n - 1] == '\n');
        }
        if (len < 512) {
                n = resp_add_simple(out, sizeof(out), s, len);
                CHECK(n == len + 3 && !memchr(out, '\r', n - 2) && !memchr(out, '\n', n - 2));
                n = resp_add_error(out, sizeof(out), s, len);
                CHECK(n >= len + 2 && !memchr(out, '\r', n - 2) && !memchr(out, '\n', n - 2));
        }
}

static void check_command(const struct setup *su, const struct resp_command *cmd, const char *buf,
                          ssize_t n)
{
        CHECK(cmd->argc <= cmd->argv_cap);
        CHECK(cmd->scratch_len <= cmd->scratch_cap);
        if (buf[0] == '*') {
                CHECK(cmd->scratch_len == 0);
                CHECK((long long)cmd->argc <= su->lim.max_multibulk);
                CHECK(!su->unauth || cmd->argc <= RESP_UNAUTH_MULTIBULK_MAX);
        } else {
                CHECK((size_t)n <= su->lim.max_inline + 1);
        }
        for (size_t i = 0; i < cmd->argc; i++) {
                const struct resp_arg *a = &cmd->argv[i];

                CHECK(a->ptr);
                CHECK(within(a->ptr, a->len, buf, (size_t)n) ||
                      within(a->ptr, a->len, cmd->scratch, cmd->scratch_len));
                if (buf[0] == '*') {
                        CHECK((long long)a->len <= su->lim.max_bulk);
                        CHECK(!su->unauth || a->len <= RESP_UNAUTH_BULK_MAX);
                }
                numbers(a->ptr, a->len);
        }
        if (cmd->argc)
                round_trip(cmd);
}

/*
 * Parses in[0..len) revealing `first` bytes, then `step` more at each read
 * (0: the rest at once). argv and scratch grow on -ENOBUFS like a caller's.
 */
static void transcript(const struct setup *su, const char *in, size_t len, size_t first,
                       size_t step, struct text *t)
{
        struct resp_parser p;
        struct resp_command cmd = {.argv_cap = su->argv_cap, .scratch_cap = su->scratch_cap};
        size_t off = 0, avail = first < len ? first : len;
        char *buf = NULL;

        CHECK(resp_parser_init(&p, &su->lim) == 0);
        p.unauthenticated = su->unauth;
        cmd.argv = malloc(cmd.argv_cap * sizeof(*cmd.argv));
        cmd.scratch = malloc(cmd.scratch_cap);
        for (;;) {
                size_t have = avail - off;
                ssize_t n;

                free(buf);
                buf = malloc(have + 1);
                memcpy(buf, in + off, have);
                n = resp_parse(&p, buf, have, &cmd);
                if (n > 0) {
                        CHECK((size_t)n <= have);
                        check_command(su, &cmd, buf, n);
                        put_num(t, 'C', (size_t)n);
                        put_num(t, 'n', cmd.argc);
                        for (size_t i = 0; i < cmd.argc; i++) {
                                put_num(t, 'a', cmd.argv[i].len);
                                put(t, cmd.argv[i].ptr, cmd.argv[i].len);
                        }
                        off += (size_t)n;
                } else if (n == -ENOBUFS) {
                        CHECK(cmd.argc > cmd.argv_cap || cmd.scratch_len > cmd.scratch_cap);
                        if (cmd.scratch_len > cmd.scratch_cap) {
                                CHECK(cmd.scratch_len <= su->lim.max_inline);
                                cmd.scratch_cap = cmd.scratch_len;
                                cmd.scratch = realloc(cmd.scratch, cmd.scratch_cap);
                        }
                        if (cmd.argc > cmd.argv_cap) {
                                if (cmd.argv_cap >= ARGV_MAX) {
                                        put_num(t, 'B', cmd.argc);
                                        break;
                                }
                                cmd.argv_cap *= 2;
                                cmd.argv = realloc(cmd.argv, cmd.argv_cap * sizeof(*cmd.argv));
                        }
                } else if (n == -EAGAIN) {
                        CHECK(resp_parser_need(&p) > have);
                        if (avail == len) {
                                put_num(t, 'M', 0);
                                break;
                        }
                        avail = step && len - avail > step ? avail + step : len;
                } else {
                        const char *e = resp_parser_error(&p);

                        CHECK(n == -EPROTO && e && strncmp(e, "Protocol error: ", 16) == 0);
                        CHECK(resp_parse(&p, buf, have, &cmd) == -EPROTO);
                        put_num(t, 'E', 0);
                        put(t, e, strlen(e));
                        break;
                }
        }
        free(buf);
        free(cmd.argv);
        free(cmd.scratch);
}

static void setup_from(uint8_t b, struct setup *su)
{
        resp_limits_default(&su->lim);
        su->unauth = false;
        switch (b & 3) {
        case 1:
                su->lim =
                        (struct resp_limits){.max_bulk = 16, .max_multibulk = 4, .max_inline = 32};
                break;
        case 2:
                su->lim = (struct resp_limits){.max_bulk = 1, .max_multibulk = 1, .max_inline = 4};
                break;
        case 3:
                su->unauth = true;
                break;
        }
        su->argv_cap = (b & 4) ? 1 : 64;
        su->scratch_cap = (b & 8) ? 1 : su->lim.max_inline;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct text whole = {0}, split = {0}, steps = {0};
        struct setup su;
        const char *in;
        size_t len, cut;

        if (size < 2)
                return 0;
        setup_from(data[0], &su);
        in = (const char *)data + 2;
        len = size - 2;
        cut = len ? (size_t)data[1] * len / 255 : 0;

        transcript(&su, in, len, len, 0, &whole);
        transcript(&su, in, len, cut, 0, &split);
        transcript(&su, in, len, 1, len <= 512 ? 1 : 1 + data[1] % 61, &steps);
        /* Every transcript ends with a terminal record, so none is empty. */
        CHECK(whole.len && split.len && steps.len);
        CHECK(whole.len == split.len && memcmp(whole.d, split.d, whole.len) == 0);
        CHECK(whole.len == steps.len && memcmp(whole.d, steps.d, whole.len) == 0);
        free(whole.d);
        free(split.d);
        free(steps.d);
        return 0;
}

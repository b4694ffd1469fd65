/*
 * Check suite for the RESP unit of the redis service (services/redis/resp.c):
 * multibulk and inline parsing with Redis 7's quoting and error messages,
 * pipelining, incremental feeding (byte by byte, with the buffer moving between
 * reads), every limit, the reply encoders byte for byte in RESP2 and RESP3, and
 * the string2ll / string2ld / ld2string look-alikes.
 */
#include "resp.h"

#include <check.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string literal as pointer and length, NULs inside included. */
#define S(lit) (lit), (sizeof(lit) - 1)

#define ERR_MBULK "Protocol error: invalid multibulk length"
#define ERR_BULK "Protocol error: invalid bulk length"
#define ERR_INLINE_BIG "Protocol error: too big inline request"
#define ERR_MBULK_BIG "Protocol error: too big mbulk count string"
#define ERR_BULK_BIG "Protocol error: too big bulk count string"
#define ERR_QUOTES "Protocol error: unbalanced quotes in request"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

struct fix {
        struct resp_parser p;
        struct resp_command cmd;
        struct resp_arg argv[64];
        char scratch[RESP_INLINE_MAX];
};

static void fix_init(struct fix *f, const struct resp_limits *lim)
{
        ck_assert_int_eq(resp_parser_init(&f->p, lim), 0);
        memset(&f->cmd, 0, sizeof(f->cmd));
        f->cmd.argv = f->argv;
        f->cmd.argv_cap = 64;
        f->cmd.scratch = f->scratch;
        f->cmd.scratch_cap = sizeof(f->scratch);
}

static struct fix *fix_new(const struct resp_limits *lim)
{
        struct fix *f = malloc(sizeof(*f));

        ck_assert_ptr_nonnull(f);
        fix_init(f, lim);
        return f;
}

static void arg_is(const struct resp_command *cmd, size_t i, const char *s, size_t len)
{
        ck_assert_uint_lt(i, cmd->argc);
        ck_assert_uint_eq(cmd->argv[i].len, len);
        ck_assert(memcmp(cmd->argv[i].ptr, s, len) == 0);
}

/* Parses all of `in` at once and expects one protocol error with `msg`. */
static void expect_error(const char *in, size_t len, const char *msg)
{
        struct fix *f = fix_new(NULL);
        ssize_t n;

        do {
                n = resp_parse(&f->p, in, len, &f->cmd);
                if (n >= 0) {
                        in += n;
                        len -= (size_t)n;
                }
        } while (n >= 0);
        ck_assert_msg(n == -EPROTO, "%.40s: got %zd", in, n);
        ck_assert_str_eq(resp_parser_error(&f->p), msg);
        free(f);
}

/*
 * Reads `in` the way a connection would: `step` more bytes become visible at
 * each read (0: all at once), and the bytes not yet consumed are copied into
 * a fresh allocation before every call, so anything the parser kept pointing
 * into an old buffer would be caught by ASan or by a wrong result. argv
 * starts small and doubles on -ENOBUFS. Returns a description of everything
 * parsed, for comparing ways of feeding the same bytes.
 */
static char *transcript(const char *in, size_t len, size_t step, const struct resp_limits *lim)
{
        struct resp_parser p;
        struct resp_command cmd = {0};
        char *out = NULL, *buf = NULL;
        size_t outlen = 0, off = 0, avail = step ? (step < len ? step : len) : len;
        FILE *t = open_memstream(&out, &outlen);

        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(resp_parser_init(&p, lim), 0);
        cmd.argv_cap = 2;
        cmd.argv = malloc(cmd.argv_cap * sizeof(*cmd.argv));
        cmd.scratch_cap = RESP_INLINE_MAX;
        cmd.scratch = malloc(cmd.scratch_cap);
        for (;;) {
                ssize_t n;

                free(buf);
                buf = malloc(avail - off + 1);
                memcpy(buf, in + off, avail - off);
                n = resp_parse(&p, buf, avail - off, &cmd);
                ck_assert_int_ne(n, 0);
                if (n > 0) {
                        fprintf(t, "[%zd:%zu", n, cmd.argc);
                        for (size_t i = 0; i < cmd.argc; i++) {
                                fputc(' ', t);
                                for (size_t j = 0; j < cmd.argv[i].len; j++)
                                        fprintf(t, "%02x", (unsigned char)cmd.argv[i].ptr[j]);
                        }
                        fputs("]", t);
                        off += (size_t)n;
                } else if (n == -ENOBUFS) {
                        ck_assert_uint_gt(cmd.argc, cmd.argv_cap);
                        cmd.argv_cap *= 2;
                        cmd.argv = realloc(cmd.argv, cmd.argv_cap * sizeof(*cmd.argv));
                } else if (n == -EAGAIN) {
                        ck_assert_uint_gt(resp_parser_need(&p), avail - off);
                        if (avail == len) {
                                fputs("[more]", t);
                                break;
                        }
                        avail = step && len - avail > step ? avail + step : len;
                } else {
                        ck_assert_int_eq(n, -EPROTO);
                        fprintf(t, "[error %s]", resp_parser_error(&p));
                        break;
                }
        }
        fclose(t);
        free(buf);
        free(cmd.argv);
        free(cmd.scratch);
        return out;
}

/* ------------------------------------------------------------------------
 * Multibulk
 * ------------------------------------------------------------------------ */

START_TEST(test_multibulk)
{
        static const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        struct fix *f = fix_new(NULL);

        ck_assert_int_eq(resp_parse(&f->p, S(in), &f->cmd), sizeof(in) - 1);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 0, S("SET"));
        arg_is(&f->cmd, 1, S("key"));
        arg_is(&f->cmd, 2, S("value"));
        /* Zero-copy: the arguments point into the input. */
        ck_assert_ptr_eq(f->cmd.argv[0].ptr, in + 8);
        ck_assert_ptr_eq(f->cmd.argv[2].ptr, in + 26);
        ck_assert_uint_eq(f->cmd.scratch_len, 0);
        free(f);
}
END_TEST

START_TEST(test_multibulk_binary)
{
        static const char in[] = "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$9\r\na\r\nb\0c\r\n\r\r\n";
        struct fix *f = fix_new(NULL);

        ck_assert_int_eq(resp_parse(&f->p, S(in), &f->cmd), sizeof(in) - 1);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 1, S(""));
        arg_is(&f->cmd, 2, S("a\r\nb\0c\r\n\r"));
        free(f);
}
END_TEST

START_TEST(test_multibulk_skipped)
{
        static const char in[] = "*0\r\n*-1\r\n*-10\r\n*1\r\n$4\r\nPING\r\n";
        struct fix *f = fix_new(NULL);
        const char *b = in;

        ck_assert_int_eq(resp_parse(&f->p, b, strlen(b), &f->cmd), 4);
        ck_assert_uint_eq(f->cmd.argc, 0);
        b += 4;
        ck_assert_int_eq(resp_parse(&f->p, b, strlen(b), &f->cmd), 5);
        ck_assert_uint_eq(f->cmd.argc, 0);
        b += 5;
        ck_assert_int_eq(resp_parse(&f->p, b, strlen(b), &f->cmd), 6);
        ck_assert_uint_eq(f->cmd.argc, 0);
        b += 6;
        ck_assert_int_eq(resp_parse(&f->p, b, strlen(b), &f->cmd), 14);
        arg_is(&f->cmd, 0, S("PING"));
        free(f);
}
END_TEST

/* Redis never looks at the byte after '\r' nor at the two after a payload. */
START_TEST(test_multibulk_unchecked_bytes)
{
        struct fix *f = fix_new(NULL);

        ck_assert_int_eq(resp_parse(&f->p, S("*1\rX$3\rYfooXY"), &f->cmd), 13);
        arg_is(&f->cmd, 0, S("foo"));
        /* ...but it needs them to be there. */
        ck_assert_int_eq(resp_parse(&f->p, S("*1\r\n$3\r\nfoo\r"), &f->cmd), -EAGAIN);
        ck_assert_uint_eq(resp_parser_need(&f->p), 13);
        free(f);
}
END_TEST

/* ------------------------------------------------------------------------
 * Inline
 * ------------------------------------------------------------------------ */

START_TEST(test_inline_plain)
{
        struct fix *f = fix_new(NULL);
        static const char in[] = "  SET\t a  \t bc \r\n";

        ck_assert_int_eq(resp_parse(&f->p, S("PING\r\n"), &f->cmd), 6);
        ck_assert_uint_eq(f->cmd.argc, 1);
        arg_is(&f->cmd, 0, S("PING"));

        ck_assert_int_eq(resp_parse(&f->p, S("GET a\n"), &f->cmd), 6);
        ck_assert_uint_eq(f->cmd.argc, 2);
        arg_is(&f->cmd, 1, S("a"));

        ck_assert_int_eq(resp_parse(&f->p, S(in), &f->cmd), sizeof(in) - 1);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 0, S("SET"));
        arg_is(&f->cmd, 1, S("a"));
        arg_is(&f->cmd, 2, S("bc"));
        ck_assert_ptr_eq(f->cmd.argv[2].ptr, in + 12);

        /* Only one '\r' goes with the '\n'; another ends the word. */
        ck_assert_int_eq(resp_parse(&f->p, S("GET a\r\r\n"), &f->cmd), 8);
        ck_assert_uint_eq(f->cmd.argc, 2);
        arg_is(&f->cmd, 1, S("a"));

        /* \v and \f separate words only between them, not inside one. */
        ck_assert_int_eq(resp_parse(&f->p, S("\va\vb\f\n"), &f->cmd), 6);
        ck_assert_uint_eq(f->cmd.argc, 1);
        arg_is(&f->cmd, 0, S("a\vb\f"));
        free(f);
}
END_TEST

START_TEST(test_inline_quotes)
{
        struct fix *f = fix_new(NULL);
        static const char q[] = "SET \"hello world\" 'it\\'s'\r\n";
        static const char esc[] = "ECHO \"\\x41\\x4a\\n\\r\\t\\b\\a\\\\\\\"\\q\\x4g\\xfF\"\r\n";

        ck_assert_int_eq(resp_parse(&f->p, S(q), &f->cmd), sizeof(q) - 1);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 1, S("hello world"));
        arg_is(&f->cmd, 2, S("it's"));
        /* A quoted word without escapes stays in the input; 'it\'s' had to be copied. */
        ck_assert_ptr_eq(f->cmd.argv[1].ptr, q + 5);
        ck_assert_uint_eq(f->cmd.scratch_len, 4);
        ck_assert_ptr_eq(f->cmd.argv[2].ptr, f->scratch);

        ck_assert_int_eq(resp_parse(&f->p, S(esc), &f->cmd), sizeof(esc) - 1);
        ck_assert_uint_eq(f->cmd.argc, 2);
        arg_is(&f->cmd, 1, S("AJ\n\r\t\b\a\\\"qx4g\xff"));

        /* Quotes may open inside a word; the closing one must end it. */
        ck_assert_int_eq(resp_parse(&f->p, S("a foo\"bar baz\" b\n"), &f->cmd), 17);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 1, S("foobar baz"));
        arg_is(&f->cmd, 2, S("b"));

        /* Empty quoted words, and single quotes keep backslashes. */
        ck_assert_int_eq(resp_parse(&f->p, S("\"\" '' 'a\\nb'\r\n"), &f->cmd), 14);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 0, S(""));
        arg_is(&f->cmd, 1, S(""));
        arg_is(&f->cmd, 2, S("a\\nb"));

        /* A closing quote may be followed by any space, \v included. */
        ck_assert_int_eq(resp_parse(&f->p, S("\"a\"\vb\n"), &f->cmd), 6);
        ck_assert_uint_eq(f->cmd.argc, 2);
        arg_is(&f->cmd, 1, S("b"));

        /* A word starting with an escaped quote is still a run of the input. */
        ck_assert_int_eq(resp_parse(&f->p, S("'\\'abc'\n"), &f->cmd), 8);
        arg_is(&f->cmd, 0, S("'abc"));
        ck_assert_uint_eq(f->cmd.scratch_len, 0);
        free(f);
}
END_TEST

START_TEST(test_inline_unbalanced)
{
        expect_error(S("SET \"abc\r\n"), ERR_QUOTES);
        expect_error(S("SET 'abc\r\n"), ERR_QUOTES);
        expect_error(S("SET \"abc\"def\r\n"), ERR_QUOTES);
        expect_error(S("SET 'a'b\r\n"), ERR_QUOTES);
        expect_error(S("SET \"abc\\\"\r\n"), ERR_QUOTES);
        expect_error(S("SET \"abc\\\r\n"), ERR_QUOTES);
        expect_error(S("\"\n"), ERR_QUOTES);
}
END_TEST

START_TEST(test_inline_empty)
{
        struct fix *f = fix_new(NULL);

        ck_assert_int_eq(resp_parse(&f->p, S("\r\n"), &f->cmd), 2);
        ck_assert_uint_eq(f->cmd.argc, 0);
        ck_assert_int_eq(resp_parse(&f->p, S("\n"), &f->cmd), 1);
        ck_assert_uint_eq(f->cmd.argc, 0);
        ck_assert_int_eq(resp_parse(&f->p, S(" \t \r\nPING\r\n"), &f->cmd), 5);
        ck_assert_uint_eq(f->cmd.argc, 0);
        ck_assert_int_eq(resp_parse(&f->p, S(""), &f->cmd), -EAGAIN);
        free(f);
}
END_TEST

/* ------------------------------------------------------------------------
 * Pipelining and incremental input
 * ------------------------------------------------------------------------ */

START_TEST(test_pipeline)
{
        static const char in[] = "PING\r\n"
                                 "*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"
                                 "\r\n"
                                 "*0\r\n"
                                 "SET k \"v v\"\r\n"
                                 "*1\r\n$4\r\nQUIT\r\n"
                                 "*1\r\n$3\r\nGE";
        static const ssize_t used[] = {6, 22, 2, 4, 13, 14};
        static const size_t argcs[] = {1, 2, 0, 0, 3, 1};
        struct fix *f = fix_new(NULL);
        const char *b = in;
        size_t left = sizeof(in) - 1;

        for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++) {
                ssize_t n = resp_parse(&f->p, b, left, &f->cmd);

                ck_assert_int_eq(n, used[i]);
                ck_assert_uint_eq(f->cmd.argc, argcs[i]);
                if (i == 1)
                        arg_is(&f->cmd, 1, S("hi"));
                if (i == 4)
                        arg_is(&f->cmd, 2, S("v v"));
                b += n;
                left -= (size_t)n;
        }
        ck_assert_int_eq(resp_parse(&f->p, b, left, &f->cmd), -EAGAIN);
        ck_assert_uint_eq(resp_parser_need(&f->p), 8 + 3 + 2);
        free(f);
}
END_TEST

static const struct {
        const char *in;
        size_t len;
} streams[] = {
        {S("PING\r\n*2\r\n$4\r\nECHO\r\n$5\r\nh\r\n\0o\r\n\r\n*0\r\nSET k \"v\\x41 v\"\r\n"
           "*-1\r\n  \t\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nINCR 'a b'\n*1\r\n$4\r\nPI")},
        {S("*5\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n")},
        {S("*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*1\r\nfoo\r\n")},
        {S("PING\r\nSET \"abc\r\n")},
        {S("*1\r\n$1\r\nx\r\n*1\r\n$-2\r\n")},
        {S("*1\r\n$3\r\nfoo\r\n*9999999999\r\n")},
        {S("GET a\0b\r\n")},
        {S("*1\r\n$2\r\n\0\0\r\nPING\r\n")},
};

START_TEST(test_bytewise)
{
        for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
                char *whole = transcript(streams[i].in, streams[i].len, 0, NULL);

                for (size_t step = 1; step <= 7; step += 3) {
                        char *bits = transcript(streams[i].in, streams[i].len, step, NULL);

                        ck_assert_msg(strcmp(whole, bits) == 0, "stream %zu step %zu:\n%s\n%s", i,
                                      step, whole, bits);
                        free(bits);
                }
                free(whole);
        }
}
END_TEST

/* What transcript() produces, so the comparisons above are known to mean something. */
START_TEST(test_transcript)
{
        char *t = transcript(streams[4].in, streams[4].len, 1, NULL);

        ck_assert_str_eq(t, "[11:1 78][error " ERR_BULK "]");
        free(t);
        t = transcript(streams[0].in, 30, 2, NULL);
        ck_assert_str_eq(t, "[6:1 50494e47][more]");
        free(t);
}
END_TEST

START_TEST(test_big_bulk_in_chunks)
{
        const size_t size = 1 << 20, chunk = 4096;
        static const char head[] = "*2\r\n$3\r\nSET\r\n$1048576\r\n";
        size_t total = sizeof(head) - 1 + size + 2, have = 0;
        char *in = malloc(total), *buf = NULL;
        struct fix *f = fix_new(NULL);
        ssize_t n = -EAGAIN;

        memcpy(in, head, sizeof(head) - 1);
        for (size_t i = 0; i < size; i++)
                in[sizeof(head) - 1 + i] = (char)(i * 7 + 3);
        memcpy(in + total - 2, "\r\n", 2);
        while (n == -EAGAIN && have < total) {
                have = have + chunk < total ? have + chunk : total;
                free(buf);
                buf = malloc(have);
                memcpy(buf, in, have);
                n = resp_parse(&f->p, buf, have, &f->cmd);
                if (n == -EAGAIN && have >= sizeof(head) - 1)
                        ck_assert_uint_eq(resp_parser_need(&f->p), total);
        }
        ck_assert_int_eq(n, (ssize_t)total);
        ck_assert_uint_eq(f->cmd.argc, 2);
        ck_assert_ptr_eq(f->cmd.argv[1].ptr, buf + sizeof(head) - 1);
        arg_is(&f->cmd, 1, in + sizeof(head) - 1, size);
        free(buf);
        free(in);
        free(f);
}
END_TEST

START_TEST(test_many_args)
{
        const size_t count = 10000;
        char *in = malloc(count * 7 + 16), *want = malloc(count * 3 + 32);
        size_t len = (size_t)sprintf(in, "*%zu\r\n", count);
        size_t wlen = (size_t)sprintf(want, "[%zu:%zu", count * 7 + 8, count);
        char *whole, *bits;

        for (size_t i = 0; i < count; i++) {
                char c = (char)('a' + i % 26);

                len += (size_t)sprintf(in + len, "$1\r\n%c\r\n", c);
                wlen += (size_t)sprintf(want + wlen, " %02x", c);
        }
        strcpy(want + wlen, "][more]");
        /* argv grows from 2 by doubling on -ENOBUFS as the arguments arrive. */
        whole = transcript(in, len, 0, NULL);
        ck_assert_str_eq(whole, want);
        bits = transcript(in, len, 997, NULL);
        ck_assert_str_eq(bits, want);
        free(bits);
        free(whole);
        free(want);
        free(in);
}
END_TEST

/* ------------------------------------------------------------------------
 * Errors and limits
 * ------------------------------------------------------------------------ */

START_TEST(test_errors)
{
        expect_error(S("*x\r\n"), ERR_MBULK);
        expect_error(S("*\r\n"), ERR_MBULK);
        expect_error(S("*01\r\n"), ERR_MBULK);
        expect_error(S("*+1\r\n"), ERR_MBULK);
        expect_error(S("* 1\r\n"), ERR_MBULK);
        expect_error(S("*1 \r\n"), ERR_MBULK);
        expect_error(S("*3000000000\r\n"), ERR_MBULK);
        expect_error(S("*99999999999999999999999\r\n"), ERR_MBULK);
        expect_error(S("*1\r\n$x\r\n"), ERR_BULK);
        expect_error(S("*1\r\n$\r\n"), ERR_BULK);
        expect_error(S("*1\r\n$-0\r\n"), ERR_BULK);
        expect_error(S("*1\r\n$01\r\n"), ERR_BULK);
        expect_error(S("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"), ERR_BULK);
        expect_error(S("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n"), ERR_BULK);
        expect_error(S("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"), ERR_BULK);
        expect_error(S("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
                     "Protocol error: expected '$', got 'f'");
        expect_error(S("*1\r\nfoo\r\n"), "Protocol error: expected '$', got 'f'");
        expect_error(S("*1\r\n:1\r\n"), "Protocol error: expected '$', got ':'");
        /* Redis maps CR and LF in the message to spaces before replying. */
        expect_error(S("*1\r\n\r\n"), "Protocol error: expected '$', got ' '");
        expect_error(S("*1\r\n\n$1\r\n"), "Protocol error: expected '$', got ' '");
        /* A NUL before the terminator: what Redis says after 64 KiB, said at once. */
        expect_error(S("\0"), ERR_INLINE_BIG);
        expect_error(S("GET a\0b\r\n"), ERR_INLINE_BIG);
        expect_error(S("$\0"), ERR_INLINE_BIG);
        expect_error(S("*\0"), ERR_MBULK_BIG);
        expect_error(S("*1\0\r\n"), ERR_MBULK_BIG);
        expect_error(S("*1\r\n$\0"), ERR_BULK_BIG);
        expect_error(S("*1\r\n$3\0\r\n"), ERR_BULK_BIG);
}
END_TEST

START_TEST(test_error_sticky)
{
        struct fix *f = fix_new(NULL);

        ck_assert_int_eq(resp_parse(&f->p, S("*x\r\n"), &f->cmd), -EPROTO);
        ck_assert_int_eq(resp_parse(&f->p, S("PING\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_MBULK);
        resp_parser_reset(&f->p);
        ck_assert_ptr_null(resp_parser_error(&f->p));
        ck_assert_int_eq(resp_parse(&f->p, S("PING\r\n"), &f->cmd), 6);
        free(f);
}
END_TEST

/* A line of n copies of c after `head`, then `tail`. */
static char *line_of(const char *head, char c, size_t n, const char *tail, size_t *ret_len)
{
        size_t h = strlen(head), t = strlen(tail);
        char *s = malloc(h + n + t + 1);

        memcpy(s, head, h);
        memset(s + h, c, n);
        memcpy(s + h + n, tail, t + 1);
        *ret_len = h + n + t;
        return s;
}

START_TEST(test_too_big_lines)
{
        struct fix *f = fix_new(NULL);
        size_t len;
        char *s;

        /* 64 KiB without '\n' is still fine, one byte more is not. */
        s = line_of("", 'a', RESP_INLINE_MAX, "", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), -EAGAIN);
        free(s);
        s = line_of("", 'a', RESP_INLINE_MAX + 1, "", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_INLINE_BIG);
        free(s);

        /* The verdict does not depend on the '\n' arriving in the same read. */
        resp_parser_reset(&f->p);
        s = line_of("", 'a', RESP_INLINE_MAX, "\n", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), (ssize_t)len);
        ck_assert_uint_eq(f->cmd.argv[0].len, RESP_INLINE_MAX);
        free(s);
        s = line_of("", 'a', RESP_INLINE_MAX + 1, "\n", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_INLINE_BIG);
        free(s);

        resp_parser_reset(&f->p);
        s = line_of("*", '1', RESP_INLINE_MAX - 1, "", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), -EAGAIN);
        free(s);
        s = line_of("*", '1', RESP_INLINE_MAX, "\r\n", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_MBULK_BIG);
        free(s);

        resp_parser_reset(&f->p);
        s = line_of("*1\r\n$", '1', RESP_INLINE_MAX, "", &len);
        ck_assert_int_eq(resp_parse(&f->p, s, len, &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_BULK_BIG);
        free(s);
        free(f);
}
END_TEST

START_TEST(test_default_limits)
{
        struct fix *f = fix_new(NULL);

        /* 512 MiB is allowed and announced, not a byte more. */
        ck_assert_int_eq(resp_parse(&f->p, S("*1\r\n$536870912\r\n"), &f->cmd), -EAGAIN);
        ck_assert_uint_eq(resp_parser_need(&f->p), 16 + 536870912 + 2);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*1\r\n$536870913\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_BULK);

        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*2147483647\r\n"), &f->cmd), -EAGAIN);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*2147483648\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_MBULK);
        free(f);
}
END_TEST

START_TEST(test_custom_limits)
{
        struct resp_limits lim = {.max_bulk = 10, .max_multibulk = 2, .max_inline = 16};
        struct fix *f = fix_new(&lim);

        /* Lengths are refused as soon as their line is in, before any payload. */
        ck_assert_int_eq(resp_parse(&f->p, S("*3\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_MBULK);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*2\r\n$11\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_BULK);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*2\r\n$10\r\n"), &f->cmd), -EAGAIN);
        ck_assert_uint_eq(resp_parser_need(&f->p), 9 + 12);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("0123456789abcdef"), &f->cmd), -EAGAIN);
        ck_assert_int_eq(resp_parse(&f->p, S("0123456789abcdefg"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_INLINE_BIG);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("0123456789abcdef\n"), &f->cmd), 17);

        lim.max_bulk = -1;
        ck_assert_int_eq(resp_parser_init(&f->p, &lim), -EINVAL);
        lim.max_bulk = 1;
        lim.max_inline = 0;
        ck_assert_int_eq(resp_parser_init(&f->p, &lim), -EINVAL);
        free(f);
}
END_TEST

START_TEST(test_unauthenticated)
{
        struct fix *f = fix_new(NULL);

        f->p.unauthenticated = true;
        ck_assert_int_eq(resp_parse(&f->p, S("*10\r\n$16384\r\n"), &f->cmd), -EAGAIN);
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*11\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p),
                         "Protocol error: unauthenticated multibulk length");
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*1\r\n$16385\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), "Protocol error: unauthenticated bulk length");
        /* The general limits come first, as in Redis. */
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("*1\r\n$536870913\r\n"), &f->cmd), -EPROTO);
        ck_assert_str_eq(resp_parser_error(&f->p), ERR_BULK);
        /* Inline requests have only their own limit. */
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("a b c d e f g h i j k l\r\n"), &f->cmd), 25);
        ck_assert_uint_eq(f->cmd.argc, 12);
        f->p.unauthenticated = false;
        ck_assert_int_eq(resp_parse(&f->p, S("*11\r\n"), &f->cmd), -EAGAIN);
        free(f);
}
END_TEST

START_TEST(test_enobufs_multibulk)
{
        static const char in[] = "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n";
        struct fix *f = fix_new(NULL);
        struct resp_arg *big = malloc(4 * sizeof(*big));
        char *copy = malloc(sizeof(in));

        f->cmd.argv_cap = 2;
        /* No room is asked for until the third argument is there. */
        ck_assert_int_eq(resp_parse(&f->p, in, sizeof(in) - 4, &f->cmd), -EAGAIN);
        ck_assert_int_eq(resp_parse(&f->p, S(in), &f->cmd), -ENOBUFS);
        ck_assert_uint_eq(f->cmd.argc, 3);
        ck_assert_int_eq(resp_parse(&f->p, S(in), &f->cmd), -ENOBUFS);

        /* A new array with the old entries, and the buffer moved as well. */
        memcpy(big, f->argv, 2 * sizeof(*big));
        memcpy(copy, in, sizeof(in));
        f->cmd.argv = big;
        f->cmd.argv_cap = 4;
        ck_assert_int_eq(resp_parse(&f->p, copy, sizeof(in) - 1, &f->cmd), sizeof(in) - 1);
        ck_assert_uint_eq(f->cmd.argc, 3);
        arg_is(&f->cmd, 0, S("DEL"));
        arg_is(&f->cmd, 2, S("b"));
        ck_assert_ptr_eq(f->cmd.argv[0].ptr, copy + 8);
        ck_assert_ptr_eq(f->cmd.argv[2].ptr, copy + 24);
        free(copy);
        free(big);
        free(f);
}
END_TEST

START_TEST(test_enobufs_inline)
{
        struct fix *f = fix_new(NULL);

        f->cmd.argv_cap = 1;
        ck_assert_int_eq(resp_parse(&f->p, S("a b c\r\n"), &f->cmd), -ENOBUFS);
        ck_assert_uint_eq(f->cmd.argc, 3);
        f->cmd.argv_cap = 3;
        ck_assert_int_eq(resp_parse(&f->p, S("a b c\r\n"), &f->cmd), 7);
        arg_is(&f->cmd, 2, S("c"));

        f->cmd.scratch_cap = 2;
        ck_assert_int_eq(resp_parse(&f->p, S("x \"\\x41\\x42\\x43\"\r\n"), &f->cmd), -ENOBUFS);
        ck_assert_uint_eq(f->cmd.scratch_len, 3);
        ck_assert_uint_eq(f->cmd.argc, 2);
        f->cmd.scratch = NULL;
        f->cmd.scratch_cap = 0;
        ck_assert_int_eq(resp_parse(&f->p, S("x \"\\x41\\x42\\x43\"\r\n"), &f->cmd), -ENOBUFS);
        /* Words that need no copy are fine without any scratch. */
        resp_parser_reset(&f->p);
        ck_assert_int_eq(resp_parse(&f->p, S("x \"y z\"\r\n"), &f->cmd), 9);
        f->cmd.scratch = f->scratch;
        f->cmd.scratch_cap = 3;
        ck_assert_int_eq(resp_parse(&f->p, S("x \"\\x41\\x42\\x43\"\r\n"), &f->cmd), 18);
        arg_is(&f->cmd, 1, S("ABC"));
        free(f);
}
END_TEST

START_TEST(test_shrunk_buffer)
{
        struct fix *f = fix_new(NULL);

        ck_assert_int_eq(resp_parse(&f->p, S("*2\r\n$3\r\nGET\r\n$1"), &f->cmd), -EAGAIN);
        ck_assert_int_eq(resp_parse(&f->p, S("*2\r\n$3\r\nGET"), &f->cmd), -EINVAL);
        ck_assert_int_eq(resp_parse(&f->p, S("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), &f->cmd), 20);
        free(f);
}
END_TEST

/* ------------------------------------------------------------------------
 * Encoders
 * ------------------------------------------------------------------------ */

/* Encodes into a roomy buffer; checks the size, the bytes and all-or-nothing. */
#define ENC(expect, call_with)                                                           \
        do {                                                                             \
                char buf_[128], small_[128];                                             \
                char *out = buf_;                                                        \
                size_t cap = sizeof(buf_);                                               \
                size_t n_ = (call_with);                                                 \
                ck_assert_uint_eq(n_, sizeof(expect) - 1);                               \
                ck_assert_msg(memcmp(buf_, expect, n_) == 0, "got %.*s", (int)n_, buf_); \
                memset(small_, 0x5a, sizeof(small_));                                    \
                out = small_;                                                            \
                cap = n_ - 1;                                                            \
                ck_assert_uint_eq((call_with), n_);                                      \
                for (size_t i_ = 0; i_ < sizeof(small_); i_++)                           \
                        ck_assert_int_eq(small_[i_], 0x5a);                              \
                out = NULL;                                                              \
                cap = 0;                                                                 \
                ck_assert_uint_eq((call_with), n_);                                      \
        } while (0)

START_TEST(test_enc_simple_error)
{
        ENC("+OK\r\n", resp_add_simple(out, cap, S("OK")));
        ENC("+a  b\r\n", resp_add_simple(out, cap, S("a\r\nb")));
        ENC("+\r\n", resp_add_simple(out, cap, S("")));
        ENC("-ERR Protocol error: invalid bulk length\r\n",
            resp_add_error(out, cap, S("Protocol error: invalid bulk length")));
        ENC("-WRONGTYPE Operation against a key\r\n",
            resp_add_error(out, cap, S("-WRONGTYPE Operation against a key")));
        ENC("-ERR \r\n", resp_add_error(out, cap, S("")));
        ENC("-ERR a b \r\n", resp_add_error(out, cap, S("a\nb\r")));
}
END_TEST

static const long long enc_ints[] = {0,         1,         -1,        12345,
                                     1LL << 32, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1};

START_TEST(test_enc_int)
{
        char obuf[64], want[64];

        ENC(":0\r\n", resp_add_int(out, cap, 0));
        ENC(":-1\r\n", resp_add_int(out, cap, -1));
        ENC(":9223372036854775807\r\n", resp_add_int(out, cap, LLONG_MAX));
        ENC(":-9223372036854775808\r\n", resp_add_int(out, cap, LLONG_MIN));
        for (size_t i = 0; i < sizeof(enc_ints) / sizeof(enc_ints[0]); i++) {
                int w = snprintf(want, sizeof(want), ":%lld\r\n", enc_ints[i]);

                ck_assert_uint_eq(resp_add_int(obuf, sizeof(obuf), enc_ints[i]), (size_t)w);
                ck_assert(memcmp(obuf, want, (size_t)w) == 0);
        }
        /* Every power of ten and its neighbours, against snprintf. */
        for (long long p = 1; p > 0 && p <= LLONG_MAX / 10; p *= 10) {
                for (long long d = -1; d <= 1; d++) {
                        long long v = p + d;
                        int w = snprintf(want, sizeof(want), ":%lld\r\n", v);

                        ck_assert_uint_eq(resp_add_int(obuf, sizeof(obuf), v), (size_t)w);
                        ck_assert(memcmp(obuf, want, (size_t)w) == 0);
                        w = snprintf(want, sizeof(want), ":%lld\r\n", -v);
                        ck_assert_uint_eq(resp_add_int(obuf, sizeof(obuf), -v), (size_t)w);
                        ck_assert(memcmp(obuf, want, (size_t)w) == 0);
                }
        }
}
END_TEST

START_TEST(test_enc_bulk)
{
        ENC("$3\r\nfoo\r\n", resp_add_bulk(out, cap, S("foo")));
        ENC("$0\r\n\r\n", resp_add_bulk(out, cap, S("")));
        ENC("$5\r\na\r\n\0b\r\n", resp_add_bulk(out, cap, S("a\r\n\0b")));
        ENC("$1234\r\n", resp_add_bulk_header(out, cap, 1234));
        ENC("$0\r\n", resp_add_bulk_header(out, cap, 0));
}
END_TEST

START_TEST(test_enc_resp2_resp3)
{
        ENC("$-1\r\n", resp_add_null(out, cap, RESP2));
        ENC("_\r\n", resp_add_null(out, cap, RESP3));
        ENC("*-1\r\n", resp_add_null_array(out, cap, RESP2));
        ENC("_\r\n", resp_add_null_array(out, cap, RESP3));
        ENC("*0\r\n", resp_add_array(out, cap, 0));
        ENC("*12\r\n", resp_add_array(out, cap, 12));
        ENC("*6\r\n", resp_add_map(out, cap, RESP2, 3));
        ENC("%3\r\n", resp_add_map(out, cap, RESP3, 3));
        ENC("*2\r\n", resp_add_set(out, cap, RESP2, 2));
        ENC("~2\r\n", resp_add_set(out, cap, RESP3, 2));
        ENC("*3\r\n", resp_add_push(out, cap, RESP2, 3));
        ENC(">3\r\n", resp_add_push(out, cap, RESP3, 3));
        ENC(":1\r\n", resp_add_bool(out, cap, RESP2, true));
        ENC(":0\r\n", resp_add_bool(out, cap, RESP2, false));
        ENC("#t\r\n", resp_add_bool(out, cap, RESP3, true));
        ENC("#f\r\n", resp_add_bool(out, cap, RESP3, false));
        /* Anything but 3 is RESP2. */
        ENC("$-1\r\n", resp_add_null(out, cap, 0));
}
END_TEST

START_TEST(test_enc_double)
{
        ENC(",1.5\r\n", resp_add_double(out, cap, RESP3, 1.5));
        ENC(",3\r\n", resp_add_double(out, cap, RESP3, 3.0));
        ENC(",0.10000000000000001\r\n", resp_add_double(out, cap, RESP3, 0.1));
        ENC(",-0\r\n", resp_add_double(out, cap, RESP3, -0.0));
        ENC(",1.0000000000000001e+300\r\n", resp_add_double(out, cap, RESP3, 1e300));
        ENC(",-2.2250738585072014e-308\r\n", resp_add_double(out, cap, RESP3, -DBL_MIN));
        ENC(",inf\r\n", resp_add_double(out, cap, RESP3, INFINITY));
        ENC(",-inf\r\n", resp_add_double(out, cap, RESP3, -INFINITY));
        ENC(",nan\r\n", resp_add_double(out, cap, RESP3, NAN));
        ENC(",nan\r\n", resp_add_double(out, cap, RESP3, -NAN));
        ENC("$3\r\n1.5\r\n", resp_add_double(out, cap, RESP2, 1.5));
        ENC("$19\r\n0.10000000000000001\r\n", resp_add_double(out, cap, RESP2, 0.1));
        ENC("$3\r\ninf\r\n", resp_add_double(out, cap, RESP2, INFINITY));
        ENC("$4\r\n-inf\r\n", resp_add_double(out, cap, RESP2, -INFINITY));
        ENC("$3\r\nnan\r\n", resp_add_double(out, cap, RESP2, NAN));
}
END_TEST

/* ------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------ */

START_TEST(test_strtoll)
{
        static const struct {
                const char *s;
                size_t len;
                int ret;
                long long v;
        } cases[] = {
                {S("0"), 0, 0},
                {S("1"), 0, 1},
                {S("-1"), 0, -1},
                {S("1234567890"), 0, 1234567890},
                {S("9223372036854775807"), 0, LLONG_MAX},
                {S("-9223372036854775808"), 0, LLONG_MIN},
                {S("9223372036854775808"), -ERANGE, 0},
                {S("-9223372036854775809"), -ERANGE, 0},
                {S("18446744073709551616"), -ERANGE, 0},
                {S("123456789012345678901234567890"), -ERANGE, 0},
                {S(""), -EINVAL, 0},
                {S("-"), -EINVAL, 0},
                {S("-0"), -EINVAL, 0},
                {S("+1"), -EINVAL, 0},
                {S("01"), -EINVAL, 0},
                {S("00"), -EINVAL, 0},
                {S(" 1"), -EINVAL, 0},
                {S("1 "), -EINVAL, 0},
                {S("1\0"), -EINVAL, 0},
                {S("12a"), -EINVAL, 0},
                {S("1e3"), -EINVAL, 0},
                {S("0x10"), -EINVAL, 0},
                {S("--1"), -EINVAL, 0},
                {S("99999999999999999999x"), -EINVAL, 0},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                long long v = 42;
                int r = resp_strtoll(cases[i].s, cases[i].len, &v);

                ck_assert_msg(r == cases[i].ret, "\"%s\": %d", cases[i].s, r);
                ck_assert_msg(v == (r == 0 ? cases[i].v : 42), "\"%s\": %lld", cases[i].s, v);
        }
        ck_assert_int_eq(resp_strtoll(S("7"), NULL), 0);
}
END_TEST

START_TEST(test_ll2str)
{
        char out[RESP_LLSTR_SIZE], want[32];
        long long v = 0;

        ck_assert_uint_eq(resp_ll2str(out, LLONG_MIN), 20);
        ck_assert_str_eq(out, "-9223372036854775808");
        ck_assert_uint_eq(resp_ll2str(out, 0), 1);
        ck_assert_str_eq(out, "0");
        /* Round trips through resp_strtoll, compared with snprintf. */
        for (unsigned i = 0; i < 2000; i++) {
                long long x =
                        (long long)((unsigned long long)i * 0x9e3779b97f4a7c15ULL) >> (i % 64);
                size_t n = resp_ll2str(out, x);

                snprintf(want, sizeof(want), "%lld", x);
                ck_assert_str_eq(out, want);
                ck_assert_int_eq(resp_strtoll(out, n, &v), 0);
                ck_assert(v == x);
        }
}
END_TEST

START_TEST(test_strtold)
{
        long double v = 0;
        char *huge = malloc(RESP_LDSTR_SIZE + 1);

        ck_assert_int_eq(resp_strtold(S("1.5"), &v), 0);
        ck_assert(v == 1.5L);
        ck_assert_int_eq(resp_strtold(S("-0.25"), &v), 0);
        ck_assert(v == -0.25L);
        ck_assert_int_eq(resp_strtold(S("1e10"), &v), 0);
        ck_assert(v == 1e10L);
        ck_assert_int_eq(resp_strtold(S("0x10"), &v), 0); /* strtold takes hex, so Redis does */
        ck_assert(v == 16);
        ck_assert_int_eq(resp_strtold(S("inf"), &v), 0);
        ck_assert(isinf(v) && v > 0);
        ck_assert_int_eq(resp_strtold(S("-inf"), &v), 0);
        ck_assert_int_eq(resp_strtold(S("1e-4940"), &v), LDBL_MIN_EXP < -16000 ? 0 : -EINVAL);
        ck_assert_int_eq(resp_strtold(S(""), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S(" 1"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("\t1"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("1 "), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("1.5\0"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("abc"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("nan"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("1e99999"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("-1e99999"), &v), -EINVAL);
        ck_assert_int_eq(resp_strtold(S("1e-99999"), &v), -EINVAL);
        /* Length limit: RESP_LDSTR_SIZE - 1 characters at most. */
        memset(huge, '0', RESP_LDSTR_SIZE);
        huge[0] = '1';
        huge[1] = '.';
        ck_assert_int_eq(resp_strtold(huge, RESP_LDSTR_SIZE - 1, &v), 0);
        ck_assert_int_eq(resp_strtold(huge, RESP_LDSTR_SIZE, &v), -EINVAL);
        free(huge);
        errno = 1234;
        ck_assert_int_eq(resp_strtold(S("1e99999"), NULL), -EINVAL);
        ck_assert_int_eq(errno, 1234);
}
END_TEST

/* INCRBYFLOAT: parse both operands, add, print the way Redis stores it. */
static void incrbyfloat(const char *cur, const char *by, const char *want)
{
        long double a, b;
        char out[RESP_LDSTR_SIZE];
        size_t n;

        ck_assert_int_eq(resp_strtold(cur, strlen(cur), &a), 0);
        ck_assert_int_eq(resp_strtold(by, strlen(by), &b), 0);
        n = resp_ld2str(out, sizeof(out), a + b);
        ck_assert_msg(n == strlen(want) && memcmp(out, want, n) == 0, "%s + %s: %.*s", cur, by,
                      (int)n, out);
}

START_TEST(test_ld2str)
{
        char out[8];

        incrbyfloat("0", "1", "1");
        incrbyfloat("1", "0.25", "1.25");
        incrbyfloat("1.5", "1.5", "3");
        incrbyfloat("17179869184", "1.5", "17179869185.5");
        incrbyfloat("17179869184", "17179869184", "34359738368");
        incrbyfloat("10.5", "0.1", "10.6");
        incrbyfloat("0", "5.0e3", "5000");
        incrbyfloat("0", "1e20", "100000000000000000000");
        incrbyfloat("0", "-0", "0");
        incrbyfloat("0", "-1e-30", "0");
        incrbyfloat("0", "inf", "inf");
        incrbyfloat("0", "-inf", "-inf");
#if LDBL_MANT_DIG >= 64
        /* Needs more than a double's precision, as Redis's test does on x86. */
        incrbyfloat("1", "-1.1", "-0.1");
#endif
        /* All or nothing. */
        memset(out, 'z', sizeof(out));
        ck_assert_uint_eq(resp_ld2str(out, 3, 1.25L), 4);
        ck_assert_int_eq(out[0], 'z');
        ck_assert_uint_eq(resp_ld2str(NULL, 0, 1.25L), 4);
        ck_assert_uint_eq(resp_ld2str(out, 4, 1.25L), 4);
        ck_assert(memcmp(out, "1.25z", 5) == 0);
}
END_TEST

static Suite *resp_suite(void)
{
        Suite *s = suite_create("resp");
        TCase *parse = tcase_create("parse");
        TCase *limits = tcase_create("limits");
        TCase *enc = tcase_create("encode");
        TCase *num = tcase_create("numbers");

        tcase_add_test(parse, test_multibulk);
        tcase_add_test(parse, test_multibulk_binary);
        tcase_add_test(parse, test_multibulk_skipped);
        tcase_add_test(parse, test_multibulk_unchecked_bytes);
        tcase_add_test(parse, test_inline_plain);
        tcase_add_test(parse, test_inline_quotes);
        tcase_add_test(parse, test_inline_unbalanced);
        tcase_add_test(parse, test_inline_empty);
        tcase_add_test(parse, test_pipeline);
        tcase_add_test(parse, test_bytewise);
        tcase_add_test(parse, test_transcript);
        tcase_add_test(parse, test_big_bulk_in_chunks);
        tcase_add_test(parse, test_many_args);
        suite_add_tcase(s, parse);

        tcase_add_test(limits, test_errors);
        tcase_add_test(limits, test_error_sticky);
        tcase_add_test(limits, test_too_big_lines);
        tcase_add_test(limits, test_default_limits);
        tcase_add_test(limits, test_custom_limits);
        tcase_add_test(limits, test_unauthenticated);
        tcase_add_test(limits, test_enobufs_multibulk);
        tcase_add_test(limits, test_enobufs_inline);
        tcase_add_test(limits, test_shrunk_buffer);
        suite_add_tcase(s, limits);

        tcase_add_test(enc, test_enc_simple_error);
        tcase_add_test(enc, test_enc_int);
        tcase_add_test(enc, test_enc_bulk);
        tcase_add_test(enc, test_enc_resp2_resp3);
        tcase_add_test(enc, test_enc_double);
        suite_add_tcase(s, enc);

        tcase_add_test(num, test_strtoll);
        tcase_add_test(num, test_ll2str);
        tcase_add_test(num, test_strtold);
        tcase_add_test(num, test_ld2str);
        suite_add_tcase(s, num);
        return s;
}

int main(void)
{
        SRunner *sr = srunner_create(resp_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

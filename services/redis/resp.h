/*
 * RESP, the Redis wire protocol, for the redis service: an incremental request
 * parser (multibulk and inline commands, with Redis 7's limits and exact error
 * messages), reply encoders for RESP2 and RESP3, and the number parsers Redis
 * commands rely on (string2ll, string2ld). The unit stands alone: it needs only
 * libc, never allocates, never logs and knows nothing of the vkd kernel, so it
 * can be tested and fuzzed by itself.
 */
#ifndef VKD_SERVICES_REDIS_RESP_H
#define VKD_SERVICES_REDIS_RESP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Redis's PROTO_INLINE_MAX_SIZE: longest inline request and count line. */
#define RESP_INLINE_MAX (64 * 1024)
/* Redis's proto-max-bulk-len default. */
#define RESP_BULK_MAX (512LL * 1024 * 1024)
/* Redis 7 accepts up to INT_MAX arguments and grows argv as they arrive. */
#define RESP_MULTIBULK_MAX ((long long)INT_MAX)
/* Redis's limits while a connection has not authenticated. */
#define RESP_UNAUTH_MULTIBULK_MAX 10
#define RESP_UNAUTH_BULK_MAX 16384

/* Room for any long long in decimal plus a NUL (Redis's LONG_STR_SIZE). */
#define RESP_LLSTR_SIZE 21
/* Longest number text resp_strtold() accepts plus one (MAX_LONG_DOUBLE_CHARS). */
#define RESP_LDSTR_SIZE (5 * 1024)
/* Room for the message of any protocol error, NUL included. */
#define RESP_ERR_SIZE 64

/* Protocol versions understood by the encoders. */
enum resp_proto {
        RESP2 = 2,
        RESP3 = 3,
};

/*
 * Limits on what a client may send; every length the parser reads is checked
 * against one of these before anything is done with it.
 */
struct resp_limits {
        long long max_bulk;      /* longest bulk argument ("$<n>") */
        long long max_multibulk; /* most arguments in one command ("*<n>") */
        size_t max_inline;       /* longest inline request or count line */
};

/* One argument: bytes that are not NUL-terminated and may contain any byte. */
struct resp_arg {
        const char *ptr;
        size_t len;
};

/*
 * Where a parsed command goes. The caller owns every buffer and fills the
 * first four fields; resp_parse() fills the last two.
 *
 * Arguments point into the caller's input buffer, except inline arguments
 * whose bytes differ from the input (quotes with escapes, quotes in the middle
 * of a word), which are unescaped into `scratch`. A scratch of max_inline bytes
 * is always enough; a smaller one (or none) makes such commands fail with
 * -ENOBUFS.
 */
struct resp_command {
        struct resp_arg *argv; /* caller's array of argv_cap entries */
        size_t argv_cap;
        char *scratch; /* caller's buffer for unescaped inline arguments, or NULL */
        size_t scratch_cap;
        size_t argc;        /* out: number of arguments (0: nothing to run) */
        size_t scratch_len; /* out: bytes of scratch used */
};

/*
 * Parser state for one connection, allocated by the caller. The fields are
 * private except `unauthenticated`, which the caller sets while the
 * connection must still authenticate (Redis's pre-auth limits then apply, with
 * their own error messages) and clears afterwards.
 */
struct resp_parser {
        struct resp_limits limits;
        bool unauthenticated;

        /* progress within the command at the front of the buffer */
        unsigned char state;
        size_t pos;        /* where the line or bulk being read starts */
        size_t scan;       /* bytes of that line known to hold no terminator */
        long long left;    /* bulk arguments announced but not yet stored */
        long long bulklen; /* length of the bulk being read, -1 before its header */
        long long count;   /* arguments announced by "*<n>" */
        size_t argc;       /* arguments stored in the caller's argv so far */
        size_t need;       /* smallest buffer length that can make progress */
        const char *err;   /* protocol error, sticky until reset */
        char errbuf[RESP_ERR_SIZE];
};

/* Fills `ret_limits` with Redis's defaults. */
void resp_limits_default(struct resp_limits *ret_limits);

/*
 * Readies `p` for a new connection, with `limits` copied (NULL: defaults).
 * Returns 0, or -EINVAL (and leaves `p` untouched) if a limit is negative or
 * max_inline is 0.
 */
int resp_parser_init(struct resp_parser *p, const struct resp_limits *limits);

/*
 * Forgets any partial command and any protocol error; limits and the
 * `unauthenticated` flag are kept.
 */
void resp_parser_reset(struct resp_parser *p);

/*
 * Parses one command from the front of buf[0..len).
 *
 * Returns:
 *  > 0      bytes the command took; `cmd` holds it. Drop those bytes and call
 *           again for the next command. cmd->argc may be 0 for what Redis
 *           skips (an empty inline line, "*0", "*-1"): consume and ignore.
 *  -EAGAIN  the command is not complete; nothing to drop. Call again with the
 *           same bytes at the front of the buffer and more after them (the
 *           buffer may have moved). The parser remembers how far it got, so the
 *           total work stays linear; resp_parser_need() tells how big the
 *           buffer must grow for the next call to make progress.
 *  -EPROTO  protocol error: resp_parser_error() has Redis's message. Redis
 *           replies it and closes the connection; the parser keeps returning
 *           -EPROTO until reset.
 *  -ENOBUFS the command needs more than cmd->argv_cap arguments or more than
 *           cmd->scratch_cap bytes of scratch. cmd->argc and cmd->scratch_len
 *           hold what the command needs (for a multibulk command, argc is what
 *           the client announced, which it need not ever send: grow
 *           geometrically, not straight to that figure). Enlarge the arrays,
 *           keeping argv's first entries (realloc does), and call again.
 *  -EINVAL  len is shorter than what an earlier call already examined.
 *
 * Pointers in cmd->argv stay valid while the buffer and the scratch are left
 * unchanged. Never allocates; `cmd` must be the same object, with its argv
 * contents intact, across the calls that build one command.
 */
ssize_t resp_parse(struct resp_parser *p, const char *buf, size_t len, struct resp_command *cmd);

/* Message of the protocol error that made resp_parse() fail, or NULL. */
const char *resp_parser_error(const struct resp_parser *p);

/*
 * After -EAGAIN: the buffer length at which resp_parse() can make progress
 * (the whole of a bulk argument whose header is read, else one more byte).
 */
size_t resp_parser_need(const struct resp_parser *p);

/*
 * Reply encoders. Each appends one reply (or the header of an aggregate whose
 * elements follow) at `out`, which has room for `cap` bytes, and returns the
 * size of the reply. They write all or nothing: when the return value exceeds
 * `cap`, nothing was written, so the caller can flush or grow and call again
 * (out may be NULL when cap is 0). `proto` is RESP2 or RESP3; any other value
 * is treated as RESP2.
 */

/* "+<s>\r\n"; CR and LF in `s` become spaces so the reply stays well formed. */
size_t resp_add_simple(char *out, size_t cap, const char *s, size_t len);

/*
 * "-<msg>\r\n" like Redis's addReplyError: "-ERR " is put in front unless
 * `msg` starts with '-' (then it carries its own code, e.g. "-WRONGTYPE ...").
 * CR and LF in `msg` become spaces.
 */
size_t resp_add_error(char *out, size_t cap, const char *msg, size_t len);

/* ":<v>\r\n" */
size_t resp_add_int(char *out, size_t cap, long long v);

/* "$<len>\r\n<bytes>\r\n" */
size_t resp_add_bulk(char *out, size_t cap, const char *s, size_t len);

/*
 * "$<len>\r\n" alone, for a payload the caller sends itself (e.g. by writev
 * straight from the value), followed by "\r\n".
 */
size_t resp_add_bulk_header(char *out, size_t cap, size_t len);

/* A null value: RESP2 "$-1\r\n", RESP3 "_\r\n". */
size_t resp_add_null(char *out, size_t cap, int proto);

/* A null array (e.g. EXEC aborted): RESP2 "*-1\r\n", RESP3 "_\r\n". */
size_t resp_add_null_array(char *out, size_t cap, int proto);

/* "*<n>\r\n": an array of n elements follows. */
size_t resp_add_array(char *out, size_t cap, size_t n);

/* A map of n pairs: RESP3 "%<n>\r\n", RESP2 a flat array "*<2n>\r\n". */
size_t resp_add_map(char *out, size_t cap, int proto, size_t n);

/* A set of n elements: RESP3 "~<n>\r\n", RESP2 "*<n>\r\n". */
size_t resp_add_set(char *out, size_t cap, int proto, size_t n);

/* Out-of-band data of n elements: RESP3 "><n>\r\n", RESP2 "*<n>\r\n". */
size_t resp_add_push(char *out, size_t cap, int proto, size_t n);

/*
 * A double as Redis 7.0's addReplyDouble: RESP3 ",<%.17g>\r\n", RESP2 a bulk
 * string of the same text; infinities are "inf" and "-inf", NaN is "nan".
 * Uses snprintf, so LC_NUMERIC must be "C" (the default).
 */
size_t resp_add_double(char *out, size_t cap, int proto, double d);

/* A boolean: RESP3 "#t\r\n" / "#f\r\n", RESP2 ":1\r\n" / ":0\r\n". */
size_t resp_add_bool(char *out, size_t cap, int proto, bool b);

/*
 * Number conversions with Redis's rules.
 */

/*
 * Writes `v` in decimal and a NUL at `out`, which has RESP_LLSTR_SIZE bytes;
 * returns the number of digits and sign written (NUL excluded).
 */
size_t resp_ll2str(char *out, long long v);

/*
 * Parses s[0..len) as Redis's string2ll: optional '-', then "0" alone or a
 * digit 1-9 followed by digits; no spaces, no '+', no leading zeros, no "-0".
 * Returns 0 and stores the value in *ret (if not NULL), -EINVAL if the text is
 * not such an integer, -ERANGE if it is one but outside long long.
 */
int resp_strtoll(const char *s, size_t len, long long *ret);

/*
 * Parses s[0..len) as Redis's string2ld (INCRBYFLOAT and friends): whatever
 * strtold() takes whole, shorter than RESP_LDSTR_SIZE, not starting with a
 * space, not NaN; overflow and underflow to zero are refused, infinities
 * written as such are accepted. Returns 0 and stores the value in *ret (if not
 * NULL), else -EINVAL. LC_NUMERIC must be "C".
 */
int resp_strtold(const char *s, size_t len, long double *ret);

/*
 * Formats `v` as Redis's ld2string in human mode (the text INCRBYFLOAT
 * stores and replies): "%.17Lf" with trailing zeros and a trailing point
 * removed, "-0" written "0", infinities "inf" / "-inf". Writes it at `out`
 * (no NUL) only if it fits in `cap` bytes; returns its length either way,
 * which is below RESP_LDSTR_SIZE.
 */
size_t resp_ld2str(char *out, size_t cap, long double v);

#endif /* VKD_SERVICES_REDIS_RESP_H */

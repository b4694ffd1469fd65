/*
 * HTTP/1.1 request parser for the http11 service, after picohttpparser: it
 * never allocates, every string it returns points into the caller's buffer,
 * and a partial request yields HTTP_INCOMPLETE so the caller reads more and
 * calls again. It applies RFC 9112 strictly (framing conflicts that enable
 * request smuggling are errors, never guesses) and bounds every length a
 * client controls. Errors are negative HTTP status codes, ready to be turned
 * into a response. A chunked body decoder and a status reason table sit
 * beside it. The unit depends on libc only, so it is tested and fuzzed alone.
 */
#ifndef VKD_HTTP_PARSER_H
#define VKD_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Return values. Success is >= 0. HTTP_INCOMPLETE asks for more bytes; every
 * other negative value is minus the status code to answer with (the
 * connection must then be closed: after a framing error the stream position
 * of the next request is unknown).
 */
#define HTTP_INCOMPLETE (-2)
#define HTTP_E_BAD_REQUEST (-400)
#define HTTP_E_PAYLOAD_TOO_LARGE (-413)
#define HTTP_E_URI_TOO_LONG (-414)
#define HTTP_E_EXPECTATION_FAILED (-417)
#define HTTP_E_HEADERS_TOO_LARGE (-431)
#define HTTP_E_NOT_IMPLEMENTED (-501)
#define HTTP_E_VERSION (-505)

/* Leading empty lines ignored before a request line (RFC 9112 §2.2). */
#define HTTP_MAX_EMPTY_LINES 4
/* Bound on one chunk-size line, extensions included. */
#define HTTP_CHUNK_LINE_MAX 4096

enum http_method {
        HTTP_METHOD_OTHER = 0, /* a valid token we have no name for */
        HTTP_METHOD_GET,
        HTTP_METHOD_HEAD,
        HTTP_METHOD_POST,
        HTTP_METHOD_PUT,
        HTTP_METHOD_DELETE,
        HTTP_METHOD_CONNECT,
        HTTP_METHOD_OPTIONS,
        HTTP_METHOD_TRACE,
        HTTP_METHOD_PATCH,
};

enum http_target_form {
        HTTP_TARGET_ORIGIN = 0, /* "/path?query" */
        HTTP_TARGET_ABSOLUTE,   /* "http://authority/path?query" (http or https) */
        HTTP_TARGET_AUTHORITY,  /* "host:port", CONNECT only */
        HTTP_TARGET_ASTERISK,   /* "*", OPTIONS only */
};

/*
 * Every limit is a hard bound on something the client controls. A field set
 * to 0 means 0 (nothing allowed), not "unlimited".
 */
struct http_limits {
        size_t max_request_line; /* request line bytes, line end excluded -> 414 */
        size_t max_header_bytes; /* whole head: empty lines, request line, fields, final
                                    line end (capped at INT_MAX) -> 431; also the bound on
                                    a chunked trailer section */
        size_t max_headers;      /* field lines in the head or trailer section -> 431 */
        uint64_t max_body;       /* Content-Length or decoded chunked bytes -> 413 */
};

/* 8 KiB request line, 64 KiB head, 100 fields, 1 MiB body. */
extern const struct http_limits http_limits_default;

struct http_header {
        const char *name; /* as sent (case preserved), never empty */
        size_t name_len;
        const char *value; /* leading and trailing SP/HTAB removed; may be empty */
        size_t value_len;
};

/*
 * Parser resume state, private: lets a call after HTTP_INCOMPLETE go on where
 * the previous one stopped instead of rescanning the head, so feeding a head
 * one byte at a time costs linear, not quadratic, time.
 */
struct http_parse_state {
        const char *base; /* buffer of the call that returned HTTP_INCOMPLETE */
        size_t pos;       /* offset where scanning resumes */
        size_t line;      /* offset of the current line */
        size_t mark;      /* offset of the current element (target, version, value) */
        uint8_t phase;    /* 0: nothing saved, start afresh */
        uint8_t empty_lines;
        uint8_t te_seen;
        uint8_t te_other; /* a transfer coding other than chunked was listed */
        uint8_t conn_close;
        uint8_t conn_keep_alive;
};

/*
 * A parsed request. The caller owns it and the headers array; all pointers
 * point into the buffer given to http_parse_request() and live as long as it.
 * Fields are valid only after a call that returned >= 0.
 */
struct http_request {
        /* set by the caller (http_request_init) */
        struct http_header *headers;
        size_t headers_cap;

        /* request line */
        const char *method; /* token, case-sensitive */
        size_t method_len;
        enum http_method method_id;
        const char *target; /* the request-target as sent */
        size_t target_len;
        enum http_target_form target_form;
        const char *path; /* origin/absolute: from the first '/' up to '?'; "/" (a static
                             string) when an absolute-form target has no path; "*" for
                             asterisk-form; NULL for authority-form */
        size_t path_len;
        const char *query; /* after the '?', which is excluded; NULL when there is none */
        size_t query_len;
        const char *authority; /* from an absolute- or authority-form target, else NULL;
                                  when set it is the request's host, not the Host field
                                  (RFC 9112 §3.2.2) */
        size_t authority_len;
        int version_minor; /* 0 or 1; the major version is always 1 */

        /* header fields, in order */
        size_t num_headers;

        /* framing and connection management, derived from the fields */
        int64_t content_length; /* -1 when absent; absent and !chunked: no body */
        const char *host;       /* the Host field value, NULL when absent */
        size_t host_len;
        unsigned chunked : 1;         /* the body is chunked: use struct http_chunked */
        unsigned keep_alive : 1;      /* the connection may serve another request */
        unsigned expect_continue : 1; /* HTTP/1.1 "Expect: 100-continue" */
        unsigned has_host : 1;

        struct http_parse_state state;
};

/*
 * Prepares req for a new request on a new buffer: records the caller's header
 * array (cap entries; the effective field limit is the smaller of cap and
 * max_headers) and clears the resume state. A zeroed struct with headers and
 * headers_cap set is equally valid. Call it again before reusing req on an
 * unrelated buffer after HTTP_INCOMPLETE (e.g. after abandoning a connection).
 */
void http_request_init(struct http_request *req, struct http_header *headers, size_t cap);

/*
 * Parses the request head at the start of buf[0..len). lim may be NULL for
 * http_limits_default.
 *
 * Returns the length of the head (leading empty lines, request line, fields
 * and the empty line); the body or the next pipelined request starts there.
 * Returns HTTP_INCOMPLETE when the head is not complete yet: call again with
 * the same req, the same lim and the same buffer holding the same bytes plus
 * whatever arrived (if the buffer had to move, the call starts over, which is
 * only slower). Returns a negative HTTP status on error; errors are reported
 * as soon as the bytes seen prove them, so a request line or head over its
 * limit fails before it is complete. After a return other than
 * HTTP_INCOMPLETE, req is ready for the next request.
 *
 * Accepts LF alone as a line end wherever CRLF is allowed (RFC 9112 §2.2);
 * a CR not followed by LF is an error. Status per rule:
 *  400  syntax: method, target, field name or value (CTL, NUL, bare CR,
 *       whitespace before ':', obs-fold), malformed version ("HTTP/1.10",
 *       "HTXP/1.1"); Content-Length repeated (even with equal values), not
 *       1*DIGIT or over INT64_MAX; Content-Length with Transfer-Encoding;
 *       Transfer-Encoding in HTTP/1.0, listing chunked twice, with a coding
 *       after chunked or not ending in chunked, or with parameters; no Host in
 *       HTTP/1.1, several Host fields, or an invalid Host; more than
 *       HTTP_MAX_EMPTY_LINES empty lines before the request line
 *  413  Content-Length over max_body
 *  414  request line over max_request_line (a method that long: 501)
 *  417  an Expect other than 100-continue
 *  431  head over max_header_bytes, or more field lines than allowed
 *  501  a transfer coding other than chunked before the final chunked; a
 *       method over max_request_line or max_header_bytes (RFC 9112 §3)
 *  505  well-formed "HTTP/d.d" other than HTTP/1.0 and HTTP/1.1
 */
int http_parse_request(const char *buf, size_t len, struct http_request *req,
                       const struct http_limits *lim);

/*
 * For a head that does not fit the caller's buffer: after HTTP_INCOMPLETE on
 * a full buffer, returns the status that names what overflowed it, as if a
 * limit had been hit there: -501 inside the method, -414 inside the rest of
 * the request line, -431 in the header fields.
 */
int http_parse_overflow(const struct http_request *req);

/*
 * Returns the first header field named name (a NUL-terminated string, matched
 * case-insensitively) at or after the one following prev (NULL: from the
 * start), or NULL when there is none. Loop with http_header_next() for fields
 * that may repeat.
 */
const struct http_header *http_header_next(const struct http_request *req, const char *name,
                                           const struct http_header *prev);

/* Returns the first header field named name (case-insensitive), or NULL. */
const struct http_header *http_header_find(const struct http_request *req, const char *name);

/*
 * Incremental decoder of a chunked body (RFC 9112 §7.1). Chunk extensions
 * are checked against the grammar and skipped; trailer fields are checked like
 * header fields and discarded (RFC 9110 §6.5 lets a recipient drop them).
 * Fields are private except body_len.
 */
struct http_chunked {
        uint64_t body_len;  /* decoded body bytes so far (read-only) */
        uint64_t remaining; /* data bytes left in the current chunk, or the size being read */
        uint64_t max_body;
        size_t line_len;    /* bytes of the current chunk-size line */
        size_t trailer_len; /* bytes of the trailer section */
        size_t max_trailer_len;
        size_t trailers;
        size_t max_trailers;
        int error; /* sticky error status, 0 while none */
        uint8_t state;
};

/* Prepares dec for a new body, with the limits from lim (NULL: the defaults). */
void http_chunked_init(struct http_chunked *dec, const struct http_limits *lim);

/*
 * Decodes in place the chunked body bytes in buf[0..*len): the data of the
 * chunks is moved to the front of buf and *len is set to its length.
 *
 * Returns HTTP_INCOMPLETE when every byte was consumed and the body goes on:
 * keep buf[0..*len), then call again with the next bytes (input may arrive in
 * pieces of any size, one byte included). Returns n >= 0 when the body ended:
 * the n bytes that followed it (the start of the next pipelined request) now
 * sit at buf + *len. Returns a negative status on error (with *len set to 0),
 * and the same again on every later call:
 *  400  bad chunk-size, extension, line end or trailer syntax; a chunk-size
 *       over INT64_MAX; a chunk-size line over HTTP_CHUNK_LINE_MAX bytes
 *  413  the body would exceed max_body (caught while the size is read)
 *  431  trailer section over max_header_bytes or max_headers fields
 * After the end, a call consumes nothing and returns its whole input as bytes
 * that follow the body.
 */
ssize_t http_chunked_decode(struct http_chunked *dec, char *buf, size_t *len);

/* Returns 1 once dec has seen the end of the body, else 0. */
int http_chunked_done(const struct http_chunked *dec);

/*
 * Returns the reason phrase of a status code ("Not Found" for 404; a negative
 * code from the parser may be passed as is), or "" for a code it does not
 * know (RFC 9112 §4 allows an empty reason phrase). Never NULL.
 */
const char *http_status_reason(int status);

#endif /* VKD_HTTP_PARSER_H */

/*
 * raw_http: the floor peer for HTTP benchmarks. It answers every request with
 * the same fixed "200 OK, Hello, World!" response. A request is anything that
 * ends in an empty line ("\r\n\r\n"): the terminators are counted across reads,
 * so pipelined requests each get an answer, and all the answers owed after one
 * read go out in one write (as many as fit in the buffer; the rest follow as
 * it drains). Request bodies are not supported: this is a benchmark peer for
 * GET, not a web server. The loop is raw_server.c.
 *
 *     raw_http --listen 127.0.0.1:0
 */
#include "raw_server.h"

#include <string.h>

#define HTTP_BUFSIZE 16384

static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "Hello, World!";
#define RESPONSE_LEN (sizeof(response) - 1)

/* Writes as many owed responses into the buffer as fit; true if it wrote any. */
static bool http_fill(struct rawsrv_conn *c)
{
        uint32_t n = HTTP_BUFSIZE / RESPONSE_LEN;

        if (n > c->owed)
                n = c->owed;
        for (uint32_t i = 0; i < n; i++)
                memcpy(c->buf + i * RESPONSE_LEN, response, RESPONSE_LEN);
        c->owed -= n;
        c->off = 0;
        c->len = n * RESPONSE_LEN;
        return n > 0;
}

/*
 * c->state is how much of "\r\n\r\n" the bytes so far end with (0..3). On a
 * mismatch the only useful prefix to fall back to is a lone "\r".
 */
static void http_input(struct rawsrv_conn *c, uint32_t n)
{
        static const char end[4] = "\r\n\r\n";
        uint32_t state = c->state;

        for (uint32_t i = 0; i < n; i++) {
                char ch = c->buf[i];
                if (ch == end[state]) {
                        if (++state == 4) {
                                c->owed++;
                                state = 0;
                        }
                } else {
                        state = ch == '\r';
                }
        }
        c->state = state;
        http_fill(c);
}

int main(int argc, char **argv)
{
        static const struct rawsrv_proto http = {
                .name = "raw_http",
                .bufsize = HTTP_BUFSIZE,
                .input = http_input,
                .drained = http_fill,
        };

        return rawsrv_main(argc, argv, &http);
}

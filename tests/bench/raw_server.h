/*
 * The skeleton of the raw epoll peers (raw_echo, raw_http) that benchmarks put
 * beside vkd as the "floor": one thread, edge-triggered epoll, a nonblocking
 * accept4 loop and a single buffer per connection that holds either the bytes
 * just read or the bytes still to write, never both. A protocol only says what
 * to answer to the bytes it was given. Both programs follow the command line
 * contract of every vkd test server:
 *
 *     SERVER --listen HOST:PORT
 *
 * binds (PORT 0 lets the OS pick), prints one line "listening HOST:PORT" with
 * the real port to stdout once it accepts, and exits 0 on SIGTERM or SIGINT.
 */
#ifndef VKD_TESTS_RAW_SERVER_H
#define VKD_TESTS_RAW_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct rawsrv_conn {
        uint32_t off;   /* next byte of buf to send */
        uint32_t len;   /* end of the output in buf; off == len: nothing to send */
        uint32_t state; /* protocol-private */
        uint32_t owed;  /* protocol-private */
        bool eof;       /* the peer has closed its side */
        char buf[];     /* rawsrv_proto.bufsize bytes */
};

struct rawsrv_proto {
        const char *name;
        uint32_t bufsize;
        /*
         * n bytes were just read into c->buf[0..n). Put the answer, if any, in
         * c->buf[off..len) (it may overwrite the input, which is not looked at
         * again). Must not fail.
         */
        void (*input)(struct rawsrv_conn *c, uint32_t n);
        /*
         * The output has all been sent. Return true after putting more output
         * in c->buf[off..len) (a protocol that could not fit its whole answer),
         * false to go back to reading. May be NULL.
         */
        bool (*drained)(struct rawsrv_conn *c);
};

/* Parses argv, serves until SIGTERM or SIGINT, returns the exit status. */
int rawsrv_main(int argc, char **argv, const struct rawsrv_proto *proto);

#endif

/*
 * raw_echo: the floor peer for echo benchmarks. It sends every byte it reads
 * back on the same connection, unchanged, until the peer closes. The loop is
 * raw_server.c (one thread, edge-triggered epoll, one 16 KiB buffer per
 * connection): this file only says that the answer to a read is the read.
 *
 *     raw_echo --listen 127.0.0.1:0
 */
#include "raw_server.h"

/*
 * 16 KiB: a loopback read rarely returns more, and an idle connection touches
 * only the first page of it.
 */
#define ECHO_BUFSIZE 16384

static void echo_input(struct rawsrv_conn *c, uint32_t n)
{
        c->off = 0;
        c->len = n;
}

int main(int argc, char **argv)
{
        static const struct rawsrv_proto echo = {
                .name = "raw_echo",
                .bufsize = ECHO_BUFSIZE,
                .input = echo_input,
        };

        return rawsrv_main(argc, argv, &echo);
}

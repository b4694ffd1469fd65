/*
 * The echo service: every byte a client sends comes back unchanged (plain
 * echo, no line numbers), as soon as it arrives, so a line typed at a
 * terminal returns as that line and any byte stream returns exactly.
 */
#ifndef VKD_ECHO_H
#define VKD_ECHO_H

#include <vk/vk.h>

/* The connection coroutine: forwards its input to its output until the peer
 * ends the stream, then flushes and ends. */
void echo_main(struct vk_thread *that);

#endif

/*
 * The echo service's one coroutine. vk_forward moves bytes ring to ring;
 * output is flushed lazily, when the next read would block, so everything a
 * client pipelined leaves in one writev.
 */
#include "echo.h"

void echo_main(struct vk_thread *that)
{
        struct {
                ssize_t n;
        } * self;
        vk_begin();
        vk_forward(self->n, 0);
        vk_end();
}

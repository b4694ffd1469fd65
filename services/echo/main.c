/*
 * vkd-echo: the echo service outside the daemon, on the stand-alone host
 * (vkd/standalone): a TCP server with --listen, else stdin to stdout.
 */
#include "standalone.h"

extern const struct vk_module vk_module;

int main(int argc, char **argv)
{
        return vk_standalone_main(argc, argv, &vk_module);
}

/*
 * vkd-redis: the redis service outside the daemon (see vkd/standalone).
 * Its micro-heaps default to 256 KiB: a connection holds two socket rings,
 * two mailboxes and a message buffer, each the ring size (16 KiB here).
 * --heap-size on the command line still wins.
 */
#include <stdlib.h>

#include "redis_int.h"
#include "standalone.h"

extern const struct vk_module vk_module;

int main(int argc, char **argv)
{
        char **args = calloc((size_t)argc + 3, sizeof *args);
        if (!args)
                return 1;
        args[0] = argv[0];
        args[1] = "--heap-size";
        args[2] = "262144";
        for (int i = 1; i < argc; i++)
                args[i + 2] = argv[i];
        int r = vk_standalone_main(argc + 2, args, &vk_module);
        free(args);
        return r;
}

/*
 * vkd-http: the HTTP/1.1 service outside the daemon (see vkd/standalone).
 */
#include "standalone.h"

extern const struct vk_module vk_module;

int main(int argc, char **argv)
{
        return vk_standalone_main(argc, argv, &vk_module);
}

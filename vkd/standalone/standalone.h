/*
 * A stand-alone host for one service module, outside the daemon: one kernel,
 * one listener (or stdin/stdout), the module's [Module] keys from --set. For
 * development, tests and benchmarks; the daemon is what runs in production.
 */
#ifndef VKD_STANDALONE_H
#define VKD_STANDALONE_H

#include <vk/module.h>

/* Parses argv (see --help), runs the module until SIGTERM/SIGINT, returns
 * the exit status. Prints `listening HOST:PORT` once it accepts. */
int vk_standalone_main(int argc, char **argv, const struct vk_module *mod);

#endif

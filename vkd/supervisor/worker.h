/*
 * A worker process, the N of M:N, from the inside: what a child of the supervisor runs after
 * fork(). It drops privileges, loads its service's module, starts a virtual kernel accepting
 * on the inherited listeners, tells the supervisor over its status pipe, and runs until
 * SIGTERM, after which it stops accepting and lets its connections end.
 *
 * The status pipe carries lines: "READY" once the kernel accepts, "OK" after a --check-config
 * load, or "ERROR <message>" (a message like "file:line: Module: echo: ...").
 */
#ifndef VKD_SUPERVISOR_WORKER_H
#define VKD_SUPERVISOR_WORKER_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "figures.h"

struct worker_args {
        const struct conf_service *service;
        const char *module_dir;
        int status_fd;  /* write end of the status pipe */
        const int *fds; /* listening sockets of the service */
        size_t n_fds;
        bool check_only;      /* load, init and unload the module, report "OK", exit */
        struct fig_slot *fig; /* where it publishes its figures (NULL: nowhere) */
};

/*
 * Runs the worker and exits (never returns): 0 after a clean stop, 1 when it could not start
 * (the reason was sent as "ERROR ..."). Call in the child right after fork(), with every signal
 * blocked; it installs its own handlers and then unblocks them.
 */
void worker_run(const struct worker_args *a) __attribute__((noreturn));

#endif

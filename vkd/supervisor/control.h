/*
 * The control socket vkdctl talks to: a unix stream socket (ControlSocket=, mode 0660, group
 * ControlSocketGroup=) on which each request and each reply is one JSON object on one line
 * (docs/control-protocol.md). It lives in the supervisor's event loop: every client socket is
 * non-blocking, a request line has a size limit, a client that sends nothing or reads nothing
 * is closed after a timeout, and there is a cap on clients, so no client can stall or exhaust
 * the daemon. Peers are checked with SO_PEERCRED: `status` and `services` for root, the daemon's
 * uid and members of the socket's group; `reload`, `stop` and `restart` for root and the
 * daemon's uid only. What a command does to the daemon goes through the hooks main.c gives.
 */
#ifndef VKD_SUPERVISOR_CONTROL_H
#define VKD_SUPERVISOR_CONTROL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "workers.h"

#define CTL_LINE_MAX (64 * 1024)                     /* bytes in one request line */
#define CTL_CLIENTS_MAX 64                           /* connected at once */
#define CTL_IO_TIMEOUT_USEC (10 * CONF_USEC_PER_SEC) /* silent, or not reading */
#define CTL_RESTART_TIMEOUT_USEC (2 * WORKER_START_TIMEOUT_USEC)

/* What the daemon around the socket provides. */
struct ctl_hooks {
        void *ctx;
        /* "starting", "running", "reloading" or "stopping". */
        const char *(*state)(void *ctx);
        /* Starts a reload as SIGHUP does. Returns a ticket (> 0) that ctl_reload_done() will
         * name when its result is known (it may be called before this returns), or -errno:
         * -ESHUTDOWN while stopping. */
        int64_t (*reload)(void *ctx);
        /* Begins an orderly stop, as SIGTERM does. */
        void (*stop)(void *ctx);
};

struct ctl;

/*
 * Creates the socket at path (its directory too, mode 0755, if missing), owned by group gid
 * ((gid_t)-1: the daemon's), mode 0660. A stale socket file is replaced; one another process
 * answers on is not (-EADDRINUSE). Returns 0 and *ret, or -errno with a message in err.
 * sup and hooks must outlive the result.
 */
int ctl_open(const char *path, gid_t gid, struct sup *sup, const struct ctl_hooks *hooks,
             struct ctl **ret, char *err, size_t errlen);

/* Closes every client and the socket and unlinks its file. Accepts NULL; returns NULL. */
struct ctl *ctl_close(struct ctl *c);

/* The path it listens on. */
const char *ctl_path(const struct ctl *c);

/* How many pollfds ctl_pollfds() may fill. */
size_t ctl_nfds(const struct ctl *c);

/* Fills fds (at most cap) with the socket and its clients; returns how many. */
size_t ctl_pollfds(struct ctl *c, struct pollfd *fds, size_t cap);

/* Acts on the results of poll() for the entries ctl_pollfds() filled. */
void ctl_on_poll(struct ctl *c, const struct pollfd *fds, size_t n, uint64_t now);

/* Timeouts, and answers to `restart` once the service's new workers are ready. */
void ctl_timers(struct ctl *c, uint64_t now);

/* Milliseconds until ctl_timers() has something to do; -1 for nothing. */
int ctl_next_timeout_ms(const struct ctl *c, uint64_t now);

/* The result of the reload with this ticket (and of every earlier one): ok, or the error lines
 * ("file:line: key: problem" and the like) that made it fail. Copies what it keeps. */
void ctl_reload_done(struct ctl *c, int64_t ticket, bool ok, char *const *errors, size_t n);

#endif

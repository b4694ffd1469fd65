/*
 * The listening sockets: the ones a service manager passed in (systemd's
 * sd_listen_fds_with_names(), named by FileDescriptorName=) and the ones the supervisor binds
 * itself for Listen= addresses. Each is one `struct listener` in a table that outlives config
 * generations: a reload looks addresses up by their canonical text and reuses the very same
 * socket, so nothing is ever closed and rebound while a generation uses it; a bound socket no
 * generation references any more is closed by activation_gc(). Nothing here logs: errors are
 * returned as text for the caller to report.
 */
#ifndef VKD_SUPERVISOR_ACTIVATION_H
#define VKD_SUPERVISOR_ACTIVATION_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

struct listener {
        struct listener *next;
        int fd;
        bool inherited;          /* passed in by the service manager: never closed by us */
        bool used;               /* some generation referenced it (for the unused-socket warning) */
        unsigned refs;           /* generations using it now */
        char text[300];          /* "127.0.0.1:7007", "unix:/run/x.sock", or "systemd:NAME" */
        char bound[300];         /* the local address as bound, with the real port for port 0 */
        struct conf_listen conf; /* bound listeners: what was bound */
};

struct listeners {
        struct listener *head;
};

/* "127.0.0.1:80", "[::1]:80", "unix:/run/x.sock" or "unix:(unnamed)" into buf. */
void format_sockaddr(const struct sockaddr_storage *ss, socklen_t len, char *buf, size_t size);

/*
 * Takes the sockets passed by the service manager, if any (clearing $LISTEN_FDS & co. so
 * workers do not see them), makes them non-blocking and close-on-exec, and checks each is a
 * listening stream socket. Returns how many, or -errno with a message in err. Without
 * libsystemd it returns 0.
 */
int activation_inherit(struct listeners *ls, char *err, size_t errlen);

/*
 * Finds or creates the sockets for one Listen= of a service: every inherited socket with that
 * name for systemd:NAME, else a bound listener with the same canonical address (or an inherited
 * socket bound to that very address), else a new socket bound now (refs 0 until the caller
 * takes a reference). Appends them to *out (capacity cap, count *n). Returns 0, or -errno with
 * "file:line: Listen: ..." in err.
 */
int activation_resolve(struct listeners *ls, const struct conf_service *s,
                       const struct conf_listen *l, struct listener **out, size_t cap, size_t *n,
                       char *err, size_t errlen);

/* Closes (and for unix sockets unlinks) every bound listener with no reference. */
void activation_gc(struct listeners *ls);

/* Closes everything, inherited sockets included (at exit). */
void activation_close_all(struct listeners *ls);

#endif

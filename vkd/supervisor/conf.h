/*
 * The supervisor's configuration: the daemon settings from vkd.conf and one service per *.conf
 * file in the conf dir, parsed and fully validated into one owned object graph (a "generation")
 * before anything starts. A reload builds a whole new generation and drops it on failure, so the
 * running one is never touched. Nothing here logs or depends on the virtual kernel: errors are
 * collected, each as "file:line: key: what is wrong", into a caller-owned list. The unit parsers
 * (sizes, durations, booleans, listen addresses) are public because the daemon's command line
 * and control socket take the same syntax.
 */
#ifndef VKD_SUPERVISOR_CONF_H
#define VKD_SUPERVISOR_CONF_H

#include "tls_conf.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Defaults for keys that are absent. */
#define CONF_DEFAULT_CONF_DIR "/etc/vkd.d"
#define CONF_DEFAULT_CONTROL_SOCKET "/run/vkd/control.sock"
#define CONF_DEFAULT_LOG_LEVEL 6 /* info */
#define CONF_DEFAULT_DRAIN_TIMEOUT_USEC (30 * CONF_USEC_PER_SEC)
#define CONF_DEFAULT_HEAP_SIZE (64 * 1024)
#define CONF_DEFAULT_RING_SIZE (4 * 1024)
#define CONF_DEFAULT_MAX_CONNECTIONS 1024
#define CONF_DEFAULT_IDLE_TIMEOUT_USEC (60 * CONF_USEC_PER_SEC)
#define CONF_DEFAULT_UNIX_MODE 0666 /* like systemd's SocketMode= */

/* Bounds. Every user-controlled count or length has one. */
#define CONF_HEAP_SIZE_MIN (16 * 1024) /* or the page size, whichever is larger */
#define CONF_HEAP_SIZE_MAX (64 * 1024 * 1024)
#define CONF_RING_SIZE_MIN 512
#define CONF_RING_SIZE_MAX (16 * 1024 * 1024)
#define CONF_MAX_CONNECTIONS_MAX 1000000
#define CONF_WORKERS_MAX 1024
#define CONF_SERVICE_NAME_MAX 64
#define CONF_SOCKET_NAME_MAX 255 /* systemd's limit for FileDescriptorName= */
#define CONF_SERVICES_MAX 512
#define CONF_LISTEN_MAX 32       /* Listen= lines per service */
#define CONF_MODULE_ARGS_MAX 256 /* keys in one [Module] section */
#define CONF_LINE_MAX 4096       /* bytes in one line, without the newline */
#define CONF_FILE_SIZE_MAX (1024 * 1024)
#define CONF_ERRORS_MAX 256 /* errors kept; more are only counted */

#define CONF_USEC_PER_SEC UINT64_C(1000000)
#define CONF_USEC_INFINITY UINT64_MAX

/* ------------------------------------------------------------------ errors */

struct conf_error {
        char *file;    /* the path as it was opened */
        unsigned line; /* 1-based; 0 when the error is about the whole file */
        char *text;    /* "file:line: key: what is wrong", or "file: what is wrong" */
};

/*
 * A caller-owned list of errors. Zero-initialize it ({0}); the loader appends (it never clears),
 * so one list can collect errors of several calls. Past CONF_ERRORS_MAX entries errors are only
 * counted in `dropped`.
 */
struct conf_errors {
        struct conf_error *items;
        size_t n;
        size_t dropped;
};

/* Frees every entry and resets the list to empty. Accepts NULL. */
void conf_errors_done(struct conf_errors *errs);

/* ------------------------------------------------------------------ listeners */

enum conf_listen_kind {
        CONF_LISTEN_INET,    /* addr/addrlen hold a sockaddr_in or sockaddr_in6 */
        CONF_LISTEN_UNIX,    /* addr/addrlen hold a sockaddr_un with an absolute path */
        CONF_LISTEN_SYSTEMD, /* name: an inherited socket's FileDescriptorName= */
};

/*
 * One Listen= value, ready to bind. Forms (parsed by conf_parse_listen()):
 *   127.0.0.1:8080      numeric IPv4 and port
 *   [::1]:8080          numeric IPv6 and port; [::]:80 binds IPv6 only
 *   *:8080              any address, one IPv6 socket with IPV6_V6ONLY off (dual stack)
 *   unix:/run/x.sock    a unix socket path; "/run/x.sock" alone means the same
 *   systemd:NAME        a socket passed in by systemd with FileDescriptorName=NAME
 *                       (NAME: A-Z a-z 0-9 _ . -, at most 255 bytes);
 *   NAME                the same, when NAME starts with a letter (so "8080" or "10.0.0.1"
 *                       without a port are errors, not names)
 * Anything else holding ':' is an address.
 * Port 0 asks the kernel for a free port. A unix socket may be followed by " mode=0660"
 * (octal, at most 0777). Values hold no whitespace otherwise.
 */
struct conf_listen {
        enum conf_listen_kind kind;
        bool dual_stack; /* INET "*": clear IPV6_V6ONLY (fall back to 0.0.0.0 without IPv6) */
        mode_t mode;     /* UNIX: chmod() after bind(); CONF_DEFAULT_UNIX_MODE when not given */
        socklen_t addrlen;
        struct sockaddr_storage addr;
        char name[CONF_SOCKET_NAME_MAX + 1]; /* SYSTEMD only */
        unsigned line;                       /* where it was written (0 when parsed directly) */
};

/*
 * Parses one Listen= value into *ret (caller-owned, fully overwritten on success, untouched on
 * failure). Never allocates. Returns 0, -EINVAL for bad syntax, -ERANGE for a port above 65535,
 * -ENAMETOOLONG for a unix path or socket name that does not fit. If ret_why is not NULL it is
 * pointed at a static English reason on failure.
 */
int conf_parse_listen(const char *s, struct conf_listen *ret, const char **ret_why);

/*
 * Writes the canonical text of a listener ("127.0.0.1:8080", "[::1]:8080", "*:8080",
 * "unix:/run/x.sock", "systemd:http") into buf, always NUL-terminated when size > 0.
 * Returns the length it needed, like snprintf().
 */
int conf_listen_format(const struct conf_listen *l, char *buf, size_t size);

/*
 * Whether two listeners cannot both be bound: the same unix path, the same systemd name, or
 * the same port on overlapping addresses ("*" overlaps everything, 0.0.0.0 every IPv4 address,
 * [::] every IPv6 address). Port 0 never conflicts.
 */
bool conf_listen_conflicts(const struct conf_listen *a, const struct conf_listen *b);

/* ------------------------------------------------------------------ unit parsers */

/*
 * Each parser takes the whole string (no surrounding whitespace) and returns 0 with the result
 * in *ret, -EINVAL on bad syntax (including "" and a bad suffix), or -ERANGE when the value is
 * negative or does not fit. *ret is untouched on failure.
 */

/* Decimal integer, no sign, within [min, max] (-ERANGE outside). */
int conf_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/* Bytes: a decimal integer with an optional K, M, G or T suffix (powers of 1024). */
int conf_parse_size(const char *s, uint64_t *ret);

/*
 * Microseconds from a systemd-like time span: a plain number is seconds; otherwise one or more
 * terms "<number>[.<fraction>]<unit>" with optional spaces, e.g. "500ms", "2min", "1h 30s",
 * "1.5s". Units: us usec, ms msec, s sec second(s), m min minute(s), h hr hour(s), d day(s),
 * w week(s). "infinity" gives CONF_USEC_INFINITY.
 */
int conf_parse_duration_usec(const char *s, uint64_t *ret);

/* Returns 1 for yes/true/on/1, 0 for no/false/off/0 (any case), or -EINVAL. */
int conf_parse_bool(const char *s);

/* Returns 0..7 for emerg alert crit err warning notice info debug (or "0".."7"), or -EINVAL. */
int conf_parse_log_level(const char *s);

/* ------------------------------------------------------------------ the configuration */

enum conf_isolation {
        CONF_ISOLATION_ISOLATED,     /* the heap is PROT_NONE while the process does not run */
        CONF_ISOLATION_UNPRIVILEGED, /* isolated, and kernel memory read-only while it runs */
        CONF_ISOLATION_PRIVILEGED,   /* no protection, for throughput */
};

/* The name of an isolation level as written in the config. */
const char *conf_isolation_to_string(enum conf_isolation i);

/*
 * Who a worker runs as. user == NULL: not configured (the service inherits the daemon's; the
 * daemon keeps its own identity). When user is set, group is always set too: the configured
 * Group= or the user's primary group, so setgid(gid) + setuid(uid) is all a worker needs.
 */
struct conf_creds {
        char *user;
        char *group;
        uid_t uid;
        gid_t gid;
        bool unresolved; /* a User= or Group= that applies could not be looked up: these are
                            not the configured creds (only in a conf_load_partial() result) */
};

/* One [Module] key, passed through verbatim and in file order. */
struct conf_kv {
        char *key;
        char *value;
        const char *file; /* the owning service's file (not a separate allocation) */
        unsigned line;
};

/* [Daemon] in vkd.conf. */
struct conf_daemon {
        char *file;       /* vkd.conf's path, NULL when only defaults were used */
        unsigned workers; /* Workers=, resolved: online CPUs for "auto" or absent */
        bool workers_auto;
        char *control_socket;       /* ControlSocket=, absolute path */
        char *control_socket_group; /* ControlSocketGroup=, NULL when absent */
        gid_t control_socket_gid;
        int log_level;               /* LogLevel=, 0 (emerg) .. 7 (debug) */
        struct conf_creds creds;     /* User=, Group=: the default for every service's workers */
        uint64_t drain_timeout_usec; /* DrainTimeoutSec=; 0 closes at once, infinity waits */
        char *conf_dir; /* where the services came from (argument, ConfDir= or default) */
};

/* One service: a file <conf_dir>/<name>.conf. */
struct conf_service {
        char *name;            /* file name without ".conf": [A-Za-z0-9_-], 1..64 bytes */
        char *file;            /* its path */
        unsigned section_line; /* line of [Service], for later messages */

        char *module; /* Module=: a bare name, or an absolute path when module_is_path */
        bool module_is_path;
        unsigned module_line;

        struct conf_listen *listen; /* Listen=, in file order, at least one */
        size_t n_listen;

        struct conf_creds creds; /* User=/Group=, else the daemon's */
        enum conf_isolation isolation;
        size_t heap_size; /* a power of two, >= page size, within the bounds above */
        size_t ring_size; /* a power of two; 2 * ring_size <= heap_size / 2 */
        unsigned max_connections;
        uint64_t idle_timeout_usec; /* > 0; CONF_USEC_INFINITY for none */
        unsigned workers;           /* 0: on every worker ("auto"); the daemon caps the rest */
        unsigned workers_line;      /* line of Workers=, 0 if absent */
        bool optional;              /* Optional=: skip the service if it cannot start */
        bool syscall_filter;        /* SystemCallFilter=: workers run under the allow-list */
        struct conf_tls tls;        /* TLS*=: served over TLS when tls.certificate is set */

        struct conf_kv *module_args; /* [Module], in file order */
        size_t n_module_args;
};

/* One generation: everything a (re)start needs, owned as one graph. */
struct conf {
        struct conf_daemon daemon;
        struct conf_service **services; /* sorted by file name */
        size_t n_services;
};

/*
 * Loads and validates a whole generation.
 *
 * daemon_conf: path of vkd.conf, or NULL for all daemon defaults (no file is read).
 * conf_dir: directory of the service files; NULL means the daemon's ConfDir= (or the default).
 * Every "*.conf" in it is a service, loaded in strcmp() order of the names, except the
 * daemon_conf file itself when it lives in that directory (compared by inode).
 *
 * On success returns 0 and stores a new generation in *ret (free it with conf_free()). On
 * failure *ret is set to NULL and nothing is kept: returns -ENOMEM when out of memory, or
 * -EINVAL when the configuration has any error (unreadable files and directories included);
 * then every error found has been appended to *errs, all of them, not only the first.
 */
int conf_load(const char *daemon_conf, const char *conf_dir, struct conf **ret,
              struct conf_errors *errs);

/*
 * Like conf_load(), but a configuration with errors is handed back too: on -EINVAL *ret holds
 * what could be parsed (defaults where a value was bad), so a caller can go on and check each
 * service's module keys, and report every problem in one run. Such a generation must never be
 * started, and a service whose creds are `unresolved` must not run code at all. *ret is NULL
 * only on -ENOMEM.
 */
int conf_load_partial(const char *daemon_conf, const char *conf_dir, struct conf **ret,
                      struct conf_errors *errs);

/* Frees a generation and everything in it. Accepts NULL. Returns NULL. */
struct conf *conf_free(struct conf *c);

/* Looks a service up by name. Returns a pointer into c, or NULL. */
const struct conf_service *conf_find_service(const struct conf *c, const char *name);

#endif /* VKD_SUPERVISOR_CONF_H */

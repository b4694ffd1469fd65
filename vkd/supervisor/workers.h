/*
 * The supervisor's side of its workers: configuration generations, their services and the
 * worker processes that run them. A generation is one loaded config plus the listeners it
 * uses and one set of workers per service; it is STARTING until every worker reported ready,
 * ACTIVE while it serves, and DRAINING after it was told to stop until its last worker exited.
 * Reload = a new generation that becomes ACTIVE before the old one starts DRAINING, on the very
 * same listening sockets. A crashed worker of an ACTIVE generation is restarted with back-off;
 * too many crashes in a short time mark its service failed. Everything here is driven by the
 * event loop in main.c and logs its own events.
 */
#ifndef VKD_SUPERVISOR_WORKERS_H
#define VKD_SUPERVISOR_WORKERS_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "activation.h"
#include "conf.h"
#include "figures.h"

#define WORKER_START_TIMEOUT_USEC (30 * CONF_USEC_PER_SEC)    /* init + listen must fit in it */
#define WORKER_RESTART_BURST 5                                /* more crashes than this ... */
#define WORKER_RESTART_INTERVAL_USEC (10 * CONF_USEC_PER_SEC) /* ... within this: failed */
#define WORKER_BACKOFF_MIN_USEC (100 * 1000)
#define WORKER_BACKOFF_MAX_USEC (5 * CONF_USEC_PER_SEC)

enum worker_state {
        WORKER_DOWN,     /* not running; restart_at tells when it comes back (0: never) */
        WORKER_STARTING, /* forked, not ready yet */
        WORKER_READY,    /* accepting */
        WORKER_STOPPING, /* told to stop (SIGTERM), draining */
};

struct svc;

struct worker {
        struct svc *svc;
        unsigned index;
        pid_t pid;
        int fd; /* read end of the status pipe, -1 when closed */
        enum worker_state state;
        uint64_t started_at;
        uint64_t restart_at;
        uint64_t deadline; /* STARTING: start timeout; STOPPING: when it gets SIGKILL */
        unsigned backoff;  /* consecutive early crashes */
        bool killed;       /* we sent SIGKILL */
        bool retired;      /* the draining old process of a `restart SERVICE` (see svc) */
        unsigned restarts; /* times this worker was started again (crash or restart) */
        bool ever_started;
        struct fig_slot *fig; /* its figures, in the generation's region */
        size_t buflen;
        char buf[2048];
};

struct gen;

struct svc {
        struct gen *gen;
        const struct conf_service *conf;
        struct listener **ls;
        size_t n_ls;
        /* n_workers workers, then as many retired twins: `restart SERVICE` moves a worker's
         * process to workers[n_workers + i] to drain there while workers[i] starts anew. */
        struct worker *workers;
        unsigned n_workers;
        bool start_failed; /* a worker could not start while the generation was STARTING */
        bool disabled;     /* Optional=yes and it could not start: not run in this generation */
        bool failed;       /* restart storm: no more restarts */
        uint64_t crashes[WORKER_RESTART_BURST + 1]; /* ring of crash times */
        unsigned n_crashes;
};

enum gen_state { GEN_STARTING, GEN_ACTIVE, GEN_DRAINING };

struct gen {
        struct gen *next;
        unsigned id;
        struct conf *conf;
        struct svc *svcs;
        size_t n_svcs;
        enum gen_state state;
        struct fig_region *figs; /* one slot per worker and retired twin */
};

struct sup {
        struct listeners ls;
        struct gen *gens; /* newest first */
        const char *module_dir;
        unsigned next_gen_id;
        bool stopping;
        struct fig_book book; /* figures of workers that are gone, by service name */
};

/* Monotonic clock in microseconds. */
uint64_t sup_now(void);

/*
 * Makes a generation of conf (taking ownership of it, also on failure): resolves every
 * listener, binding new addresses. Returns the generation (STARTING, no worker forked yet, not
 * yet linked into sup) or NULL after logging each problem; sockets it bound are closed again.
 */
struct gen *gen_create(struct sup *s, struct conf *conf);

/* Links g into s and forks all its workers. */
void gen_start(struct sup *s, struct gen *g);

/*
 * STARTING generation: 1 when every worker of every service that is not disabled is READY,
 * -1 when a service that is not Optional= could not start (logged), else 0. An Optional=
 * service that could not start is disabled here (its workers are stopped, logged).
 */
int gen_check_start(struct sup *s, struct gen *g, uint64_t now);

/* Tells every worker of g to stop accepting and drain (SIGTERM), with the daemon's
 * DrainTimeoutSec= of g as the deadline, and cancels restarts. g is DRAINING afterwards. */
void gen_stop(struct sup *s, struct gen *g, uint64_t now);

/* Counts running worker processes of all generations. */
unsigned sup_live_workers(const struct sup *s);

/* The ACTIVE generation, or NULL. */
struct gen *sup_active(const struct sup *s);

/* Fills fds with the status pipes to watch; returns how many (at most cap). */
size_t sup_pollfds(const struct sup *s, struct pollfd *fds, size_t cap);

/* Reads the status pipe fd (readable or hung up). */
void sup_on_input(struct sup *s, int fd, uint64_t now);

/* Reaps every exited child and acts on it. */
void sup_reap(struct sup *s, uint64_t now);

/* Restarts, start timeouts, drain deadlines due by now; frees generations that finished
 * draining (and closes the listeners nobody uses any more). */
void sup_timers(struct sup *s, uint64_t now);

/* Milliseconds until the next timer (for poll()), -1 for none. */
int sup_next_timeout_ms(const struct sup *s, uint64_t now);

/* A one-line summary for STATUS=. */
void sup_status(const struct sup *s, char *buf, size_t size);

/*
 * --check-config for one service: forks a short-lived child that drops privileges the same
 * way as a worker, loads and inits the module, and unloads it. Returns 0, or -errno with every
 * problem found in err, one a line. Blocks until the child is done (at most
 * WORKER_START_TIMEOUT_USEC).
 */
int worker_check(const struct conf_service *svc, const char *module_dir, char *err, size_t errlen);

/*
 * `restart SERVICE`: every worker of v (of the ACTIVE generation) stops accepting and drains as
 * a retired twin while a new worker starts in its place; a failed service is given a fresh
 * start. Returns 0, or -EBUSY (nothing done) when a previous restart of v is still draining,
 * -ESTALE when v's generation is not the active one.
 */
int svc_restart(struct sup *s, struct svc *v, uint64_t now);

/* 1 when every worker of v is READY, -1 when v failed or a worker could not start again, else
 * 0 (still starting). For waiting on svc_restart(). */
int svc_check_started(const struct svc *v);

/* The live figures of the workers of every generation that run service `name` (their slots) plus
 * the book of those that are gone, into *ret (zeroed first). */
void sup_figures(const struct sup *s, const char *name, struct fig_values *ret);

/* Frees everything (after the last worker exited). */
void sup_free(struct sup *s);

#endif

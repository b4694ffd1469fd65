/*
 * Generations, services and worker processes, seen from the supervisor (see workers.h).
 *
 * Workers are plain fork()s of the supervisor without exec(): they inherit the parsed
 * configuration and the listening sockets by memory and descriptor number. Right after the
 * fork a child closes every descriptor except stdio, its status pipe and its own service's
 * listeners, so that a listener removed by a reload really closes once the generations that
 * used it are gone, and no worker holds another service's sockets.
 */
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

uint64_t sup_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * CONF_USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void format_usec(uint64_t usec, char *buf, size_t size)
{
        if (usec == CONF_USEC_INFINITY)
                snprintf(buf, size, "infinity");
        else if (usec % CONF_USEC_PER_SEC == 0)
                snprintf(buf, size, "%llus", (unsigned long long)(usec / CONF_USEC_PER_SEC));
        else
                snprintf(buf, size, "%llums", (unsigned long long)(usec / 1000));
}

static void describe_status(int status, char *buf, size_t size)
{
        if (WIFEXITED(status))
                snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
                snprintf(buf, size,
                         "killed by signal %d (%s): a system call not on the "
                         "allow-list (SystemCallFilter=)",
                         SIGSYS, strsignal(SIGSYS));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "killed by signal %d (%s)%s", WTERMSIG(status),
                         strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
        else
                snprintf(buf, size, "ended with wait status 0x%x", (unsigned)status);
}

/* ------------------------------------------------------------------ generations */

static void gen_free(struct gen *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < g->n_svcs; i++) {
                struct svc *v = &g->svcs[i];

                for (unsigned j = 0; j < 2 * v->n_workers; j++)
                        if (v->workers[j].fd >= 0)
                                close(v->workers[j].fd);
                free(v->workers);
                free(v->ls);
        }
        free(g->svcs);
        fig_region_free(g->figs);
        conf_free(g->conf);
        free(g);
}

/* Drops the references g holds on its listeners; the caller runs activation_gc(). */
static void gen_unref_listeners(struct gen *g)
{
        for (size_t i = 0; i < g->n_svcs; i++) {
                struct svc *v = &g->svcs[i];

                for (size_t j = 0; j < v->n_ls; j++)
                        if (v->ls[j]->refs)
                                v->ls[j]->refs--;
                v->n_ls = 0;
        }
}

static size_t count_inherited(const struct listeners *ls)
{
        size_t n = 0;

        for (const struct listener *l = ls->head; l; l = l->next)
                n += l->inherited;
        return n;
}

struct gen *gen_create(struct sup *s, struct conf *conf)
{
        struct gen *g = calloc(1, sizeof(*g));
        bool failed = false;
        char err[1024];

        if (!g || !(g->svcs = calloc(conf->n_services ? conf->n_services : 1, sizeof(*g->svcs)))) {
                log_err(NULL, "out of memory");
                free(g);
                conf_free(conf);
                return NULL;
        }
        g->conf = conf;
        g->n_svcs = conf->n_services;
        g->state = GEN_STARTING;
        for (size_t i = 0; i < g->n_svcs; i++) {
                const struct conf_service *cs = conf->services[i];
                struct svc *v = &g->svcs[i];
                size_t cap = cs->n_listen + count_inherited(&s->ls);
                unsigned n = conf->daemon.workers;

                v->gen = g;
                v->conf = cs;
                if (cs->workers && cs->workers < n)
                        n = cs->workers;
                v->n_workers = n;
                v->ls = calloc(cap, sizeof(*v->ls));
                v->workers = calloc(2 * (size_t)n, sizeof(*v->workers));
                if (!v->ls || !v->workers) {
                        log_err(cs->name, "out of memory");
                        failed = true;
                        continue;
                }
                for (unsigned j = 0; j < 2 * n; j++) {
                        v->workers[j].svc = v;
                        v->workers[j].index = j % n;
                        v->workers[j].retired = j >= n;
                        v->workers[j].fd = -1;
                }
                for (size_t j = 0; j < cs->n_listen; j++) {
                        if (activation_resolve(&s->ls, cs, &cs->listen[j], v->ls, cap, &v->n_ls,
                                               err, sizeof(err)) == 0)
                                continue;
                        if (cs->optional) {
                                log_warning(cs->name, "%s; Optional=yes: running without it", err);
                                v->disabled = true;
                                v->n_ls = 0;
                                break;
                        }
                        log_err(cs->name, "%s", err);
                        failed = true;
                }
        }
        if (!failed) {
                size_t n_slots = 0, k = 0;
                int r;

                for (size_t i = 0; i < g->n_svcs; i++)
                        n_slots += 2 * (size_t)g->svcs[i].n_workers;
                r = fig_region_new(n_slots, &g->figs);
                if (r < 0) {
                        log_err(NULL, "cannot map the shared figures: %s", strerror(-r));
                        failed = true;
                }
                for (size_t i = 0; !failed && i < g->n_svcs; i++)
                        for (unsigned j = 0; j < 2 * g->svcs[i].n_workers; j++)
                                g->svcs[i].workers[j].fig = fig_region_slot(g->figs, k++);
        }
        if (failed) {
                gen_free(g); /* no reference was taken yet */
                activation_gc(&s->ls);
                return NULL;
        }
        for (size_t i = 0; i < g->n_svcs; i++)
                for (size_t j = 0; j < g->svcs[i].n_ls; j++) {
                        g->svcs[i].ls[j]->refs++;
                        g->svcs[i].ls[j]->used = true;
                }
        activation_gc(&s->ls); /* what a disabled service bound */
        g->id = ++s->next_gen_id;
        return g;
}

/* ------------------------------------------------------------------ forking workers */

static int cmp_int(const void *a, const void *b)
{
        int x = *(const int *)a, y = *(const int *)b;
        return (x > y) - (x < y);
}

/* In the child: closes every descriptor above stderr except keep[] (sorted here). */
static void close_fds_except(int *keep, size_t n)
{
        unsigned from = 3;

        qsort(keep, n, sizeof(*keep), cmp_int);
        for (size_t i = 0; i <= n; i++) {
                unsigned to = i < n ? (unsigned)keep[i] : ~0U;

                if (i < n && keep[i] < 3)
                        continue;
                if (to > from) {
#ifdef __linux__
                        if (close_range(from, to - 1, 0) == 0) {
                                from = to + 1;
                                continue;
                        }
#endif
                        long max = sysconf(_SC_OPEN_MAX);
                        unsigned last = to - 1;
                        if (max < 0 || max > 65536)
                                max = 65536;
                        if (last >= (unsigned)max)
                                last = (unsigned)max - 1;
                        for (unsigned fd = from; fd <= last && last != ~0U; fd++)
                                close((int)fd);
                }
                from = to + 1;
        }
}

/* Forks a child that runs worker_run(); returns its pid with *ret_fd the status pipe. */
static pid_t fork_worker(const struct conf_service *cs, struct listener **ls, size_t n_ls,
                         const char *module_dir, bool check_only, struct fig_slot *fig, int *ret_fd)
{
        int p[2], keep[CONF_LISTEN_MAX * 4 + 1], fds[CONF_LISTEN_MAX * 4];
        sigset_t all, old;
        size_t n = 0;
        pid_t pid;

        if (n_ls > CONF_LISTEN_MAX * 4)
                return -E2BIG;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        pid = fork();
        if (pid == 0) {
                for (size_t i = 0; i < n_ls; i++) {
                        fds[i] = ls[i]->fd;
                        keep[n++] = ls[i]->fd;
                }
                keep[n++] = p[1];
                close(p[0]);
                close_fds_except(keep, n);
                fig_child_keep(fig);
                log_set_tap(NULL, NULL);
                struct worker_args a = {
                        .fig = fig,
                        .service = cs,
                        .module_dir = module_dir,
                        .status_fd = p[1],
                        .fds = fds,
                        .n_fds = n_ls,
                        .check_only = check_only,
                };
                worker_run(&a);
        }
        int saved = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(p[1]);
        if (pid < 0) {
                close(p[0]);
                return -saved;
        }
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        *ret_fd = p[0];
        return pid;
}

static void worker_spawn(struct sup *s, struct worker *w, uint64_t now)
{
        struct svc *v = w->svc;
        pid_t pid;
        int fd = -1;

        w->restart_at = 0;
        w->buflen = 0;
        w->killed = false;
        if (w->ever_started)
                w->restarts++;
        w->ever_started = true;
        fig_clear(w->fig);
        pid = fork_worker(v->conf, v->ls, v->n_ls, s->module_dir, false, w->fig, &fd);
        if (pid < 0) {
                log_err(v->conf->name, "cannot fork worker %u: %s", w->index, strerror((int)-pid));
                w->state = WORKER_DOWN;
                w->restart_at = now + WORKER_BACKOFF_MAX_USEC;
                if (v->gen->state == GEN_STARTING)
                        v->start_failed = true;
                return;
        }
        w->pid = pid;
        w->fd = fd;
        w->state = WORKER_STARTING;
        w->started_at = now;
        w->deadline = now + WORKER_START_TIMEOUT_USEC;
        log_debug(v->conf->name, "worker %u started (pid %ld, generation %u)", w->index, (long)pid,
                  v->gen->id);
}

void gen_start(struct sup *s, struct gen *g)
{
        uint64_t now = sup_now();

        g->next = s->gens;
        s->gens = g;
        for (size_t i = 0; i < g->n_svcs; i++) {
                struct svc *v = &g->svcs[i];

                if (v->disabled)
                        continue;
                for (unsigned j = 0; j < v->n_workers; j++)
                        worker_spawn(s, &v->workers[j], now);
        }
}

/* ------------------------------------------------------------------ stopping */

static void worker_stop(struct worker *w, uint64_t deadline)
{
        w->restart_at = 0;
        if (!w->pid || w->state == WORKER_STOPPING)
                return;
        kill(w->pid, SIGTERM);
        w->state = WORKER_STOPPING;
        w->deadline = deadline;
}

static uint64_t drain_deadline(const struct gen *g, uint64_t now)
{
        uint64_t t = g->conf->daemon.drain_timeout_usec;

        return t == CONF_USEC_INFINITY ? 0 : now + t;
}

static void svc_stop(struct svc *v, uint64_t now)
{
        uint64_t deadline = drain_deadline(v->gen, now);

        for (unsigned j = 0; j < 2 * v->n_workers; j++)
                worker_stop(&v->workers[j], deadline ? deadline : 0);
}

void gen_stop(struct sup *s, struct gen *g, uint64_t now)
{
        (void)s;
        g->state = GEN_DRAINING;
        for (size_t i = 0; i < g->n_svcs; i++)
                svc_stop(&g->svcs[i], now);
}

/* ------------------------------------------------------------------ readiness */

static void svc_log_listening(const struct svc *v)
{
        char where[1024] = "";
        size_t off = 0;

        for (size_t i = 0; i < v->n_ls && off < sizeof(where); i++) {
                int n = snprintf(where + off, sizeof(where) - off, "%s%s", i ? ", " : "",
                                 v->ls[i]->bound);
                if (n < 0)
                        break;
                off += (size_t)n;
        }
        log_info(v->conf->name, "%u worker(s) accepting on %s (module %s, generation %u)",
                 v->n_workers, where, v->conf->module, v->gen->id);
}

int gen_check_start(struct sup *s, struct gen *g, uint64_t now)
{
        bool ready = true;

        (void)s;
        for (size_t i = 0; i < g->n_svcs; i++) {
                struct svc *v = &g->svcs[i];

                if (v->disabled)
                        continue;
                if (v->start_failed) {
                        if (!v->conf->optional) {
                                log_err(v->conf->name, "could not start");
                                return -1;
                        }
                        log_warning(v->conf->name,
                                    "could not start; Optional=yes: running without it");
                        v->disabled = true;
                        svc_stop(v, now);
                        continue;
                }
                for (unsigned j = 0; j < v->n_workers; j++)
                        if (v->workers[j].state != WORKER_READY)
                                ready = false;
        }
        if (!ready)
                return 0;
        for (size_t i = 0; i < g->n_svcs; i++)
                if (!g->svcs[i].disabled)
                        svc_log_listening(&g->svcs[i]);
        return 1;
}

/* ------------------------------------------------------------------ lookups */

#define FOR_EACH_WORKER(s, g, v, w)                                         \
        for (struct gen *g = (s)->gens; g; g = g->next)                     \
                for (struct svc *v = g->svcs; v < g->svcs + g->n_svcs; v++) \
                        for (struct worker *w = v->workers; w < v->workers + 2 * v->n_workers; w++)

static struct worker *find_by_fd(const struct sup *s, int fd)
{
        FOR_EACH_WORKER(s, g, v, w)
        if (w->fd == fd)
                return w;
        return NULL;
}

static struct worker *find_by_pid(const struct sup *s, pid_t pid)
{
        FOR_EACH_WORKER(s, g, v, w)
        if (w->pid == pid)
                return w;
        return NULL;
}

unsigned sup_live_workers(const struct sup *s)
{
        unsigned n = 0;

        FOR_EACH_WORKER(s, g, v, w)
        n += w->pid != 0;
        return n;
}

struct gen *sup_active(const struct sup *s)
{
        for (struct gen *g = s->gens; g; g = g->next)
                if (g->state == GEN_ACTIVE)
                        return g;
        return NULL;
}

size_t sup_pollfds(const struct sup *s, struct pollfd *fds, size_t cap)
{
        size_t n = 0;

        FOR_EACH_WORKER(s, g, v, w)
        if (w->fd >= 0 && n < cap)
                fds[n++] = (struct pollfd){.fd = w->fd, .events = POLLIN};
        return n;
}

/* ------------------------------------------------------------------ status pipe */

static void worker_line(struct worker *w, const char *line)
{
        struct svc *v = w->svc;

        if (strcmp(line, "READY") == 0) {
                if (w->state == WORKER_STARTING) {
                        w->state = WORKER_READY;
                        log_debug(v->conf->name, "worker %u ready (pid %ld)", w->index,
                                  (long)w->pid);
                }
        } else if (strncmp(line, "ERROR ", 6) == 0) {
                log_err(v->conf->name, "%s", line + 6);
                if (v->gen->state == GEN_STARTING)
                        v->start_failed = true;
        } else {
                log_warning(v->conf->name, "worker %u: unexpected message: %s", w->index, line);
        }
}

/* Reads what is there; returns 0 at end of stream, 1 otherwise. */
static int worker_read(struct worker *w)
{
        for (;;) {
                ssize_t r = read(w->fd, w->buf + w->buflen, sizeof(w->buf) - 1 - w->buflen);
                char *nl;

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return 1; /* EAGAIN (or an error we cannot act on) */
                if (r == 0) {
                        close(w->fd);
                        w->fd = -1;
                        return 0;
                }
                w->buflen += (size_t)r;
                w->buf[w->buflen] = 0;
                while ((nl = memchr(w->buf, '\n', w->buflen))) {
                        *nl = 0;
                        worker_line(w, w->buf);
                        w->buflen -= (size_t)(nl + 1 - w->buf);
                        memmove(w->buf, nl + 1, w->buflen);
                }
                if (w->buflen == sizeof(w->buf) - 1)
                        w->buflen = 0; /* an overlong line: drop it rather than stall */
        }
}

void sup_on_input(struct sup *s, int fd, uint64_t now)
{
        struct worker *w = find_by_fd(s, fd);

        (void)now;
        if (w)
                worker_read(w);
}

/* ------------------------------------------------------------------ exits and restarts */

static bool svc_crash_storm(struct svc *v, uint64_t now)
{
        const unsigned ring = WORKER_RESTART_BURST + 1;

        v->crashes[v->n_crashes % ring] = now;
        v->n_crashes++;
        if (v->n_crashes < ring)
                return false;
        /* The oldest of the last BURST + 1 crashes sits where the next one will go. */
        return now - v->crashes[v->n_crashes % ring] <= WORKER_RESTART_INTERVAL_USEC;
}

/* Moves what a worker that is gone counted into the book, and clears its slot for the next. */
static void worker_fold(struct sup *s, struct worker *w)
{
        struct fig_values v;

        fig_read(w->fig, &v);
        if (fig_book_add(&s->book, w->svc->conf->name, &v) < 0)
                log_warning(w->svc->conf->name, "out of memory: figures of worker %u lost",
                            w->index);
        fig_clear(w->fig);
}

static void worker_exited(struct sup *s, struct worker *w, int status, uint64_t now)
{
        struct svc *v = w->svc;
        enum worker_state was = w->state;
        char cause[128], delay[32];
        pid_t pid = w->pid;

        if (w->fd >= 0)
                while (worker_read(w))
                        if (w->fd < 0)
                                break;
        if (w->fd >= 0) {
                close(w->fd);
                w->fd = -1;
        }
        w->pid = 0;
        w->state = WORKER_DOWN;
        w->restart_at = 0;
        describe_status(status, cause, sizeof(cause));
        worker_fold(s, w);

        if (was == WORKER_STOPPING) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        log_debug(v->conf->name, "worker %u (pid %ld) finished", w->index,
                                  (long)pid);
                else
                        log_notice(v->conf->name, "worker %u (pid %ld) %s while stopping", w->index,
                                   (long)pid, cause);
                return;
        }
        if (v->gen->state == GEN_STARTING) {
                log_err(v->conf->name, "worker %u (pid %ld) %s before it was ready", w->index,
                        (long)pid, cause);
                v->start_failed = true;
                return;
        }
        if (v->gen->state != GEN_ACTIVE || s->stopping)
                return;
        if (was == WORKER_READY && now - w->started_at > WORKER_RESTART_INTERVAL_USEC)
                w->backoff = 0;
        if (svc_crash_storm(v, now)) {
                v->failed = true;
                log_err(v->conf->name,
                        "worker %u (pid %ld) %s; failed: more than %d worker crashes within "
                        "%llu s, not restarting (reload to try again)",
                        w->index, (long)pid, cause, WORKER_RESTART_BURST,
                        (unsigned long long)(WORKER_RESTART_INTERVAL_USEC / CONF_USEC_PER_SEC));
                return;
        }
        uint64_t d = WORKER_BACKOFF_MIN_USEC << (w->backoff < 10 ? w->backoff : 10);
        if (d > WORKER_BACKOFF_MAX_USEC)
                d = WORKER_BACKOFF_MAX_USEC;
        w->backoff++;
        w->restart_at = now + d;
        format_usec(d, delay, sizeof(delay));
        log_err(v->conf->name, "worker %u (pid %ld) %s; restarting it in %s", w->index, (long)pid,
                cause, delay);
}

void sup_reap(struct sup *s, uint64_t now)
{
        for (;;) {
                int status;
                pid_t pid = waitpid(-1, &status, WNOHANG);
                struct worker *w;

                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid <= 0)
                        return;
                w = find_by_pid(s, pid);
                if (w)
                        worker_exited(s, w, status, now);
        }
}

static bool gen_empty(const struct gen *g)
{
        for (size_t i = 0; i < g->n_svcs; i++)
                for (unsigned j = 0; j < 2 * g->svcs[i].n_workers; j++)
                        if (g->svcs[i].workers[j].pid)
                                return false;
        return true;
}

void sup_timers(struct sup *s, uint64_t now)
{
        FOR_EACH_WORKER(s, g, v, w)
        {
                const char *name = v->conf->name;

                if (w->state == WORKER_DOWN && w->restart_at && w->restart_at <= now) {
                        w->restart_at = 0;
                        if (g->state == GEN_ACTIVE && !s->stopping && !v->failed && !v->disabled) {
                                log_info(name, "restarting worker %u", w->index);
                                worker_spawn(s, w, now);
                        }
                } else if (w->state == WORKER_STARTING && !w->killed && w->deadline <= now) {
                        log_err(name, "worker %u (pid %ld) not ready within %llu s; killing it",
                                w->index, (long)w->pid,
                                (unsigned long long)(WORKER_START_TIMEOUT_USEC /
                                                     CONF_USEC_PER_SEC));
                        kill(w->pid, SIGKILL);
                        w->killed = true;
                } else if (w->state == WORKER_STOPPING && !w->killed && w->deadline &&
                           w->deadline <= now) {
                        log_warning(name,
                                    "worker %u (pid %ld) still has connections after "
                                    "DrainTimeoutSec=; killing it",
                                    w->index, (long)w->pid);
                        kill(w->pid, SIGKILL);
                        w->killed = true;
                }
        }
        struct gen *done = NULL;
        for (struct gen **p = &s->gens; *p;) {
                struct gen *g = *p;

                if (g->state != GEN_DRAINING || !gen_empty(g)) {
                        p = &g->next;
                        continue;
                }
                *p = g->next;
                gen_unref_listeners(g);
                g->next = done;
                done = g;
        }
        if (!done)
                return;
        /* Listeners only these generations used are closed before "finished" is said. */
        activation_gc(&s->ls);
        while (done) {
                struct gen *g = done;
                done = g->next;
                log_debug(NULL, "generation %u finished", g->id);
                gen_free(g);
        }
}

int sup_next_timeout_ms(const struct sup *s, uint64_t now)
{
        uint64_t next = UINT64_MAX;

        FOR_EACH_WORKER(s, g, v, w)
        {
                uint64_t t = UINT64_MAX;

                if (w->state == WORKER_DOWN && w->restart_at)
                        t = w->restart_at;
                else if ((w->state == WORKER_STARTING || w->state == WORKER_STOPPING) &&
                         !w->killed && w->deadline)
                        t = w->deadline;
                if (t < next)
                        next = t;
        }
        if (next == UINT64_MAX)
                return -1;
        if (next <= now)
                return 0;
        uint64_t ms = (next - now + 999) / 1000;
        return ms > 60000 ? 60000 : (int)ms;
}

void sup_status(const struct sup *s, char *buf, size_t size)
{
        const struct gen *g = sup_active(s);
        unsigned services = 0, ready = 0, failed = 0;

        if (!g) {
                snprintf(buf, size, "no configuration running");
                return;
        }
        for (size_t i = 0; i < g->n_svcs; i++) {
                const struct svc *v = &g->svcs[i];

                if (v->disabled || v->failed) {
                        failed++;
                        continue;
                }
                services++;
                for (unsigned j = 0; j < v->n_workers; j++)
                        ready += v->workers[j].state == WORKER_READY;
        }
        /* Live figures, summed over the services (totals survive restarts). */
        uint64_t active = 0, accepted = 0, requests = 0, faults = 0;
        for (size_t i = 0; i < g->n_svcs; i++) {
                struct fig_values f;
                sup_figures(s, g->svcs[i].conf->name, &f);
                active += f.c[FIG_ACTIVE];
                accepted += f.c[FIG_ACCEPTED];
                requests += f.c[FIG_REQUESTS];
                faults += f.c[FIG_FAULTS];
        }
        snprintf(buf, size,
                 "%u service(s), %u worker(s) accepting, %u failed, generation %u; "
                 "%llu connection(s) open, %llu accepted, %llu request(s), %llu fault(s)",
                 services, ready, failed, g->id, (unsigned long long)active,
                 (unsigned long long)accepted, (unsigned long long)requests,
                 (unsigned long long)faults);
}

/* ------------------------------------------------------------------ --check-config */

int worker_check(const struct conf_service *svc, const char *module_dir, char *err, size_t errlen)
{
        uint64_t deadline = sup_now() + WORKER_START_TIMEOUT_USEC;
        char cause[128], out[8192];
        size_t len = 0;
        bool ok = false;
        int fd = -1, status = 0, r = 0;
        pid_t pid;

        pid = fork_worker(svc, NULL, 0, module_dir, true, NULL, &fd);
        if (pid < 0) {
                snprintf(err, errlen, "cannot fork: %s", strerror((int)-pid));
                return (int)pid;
        }
        err[0] = 0;
        while (fd >= 0) {
                uint64_t now = sup_now();
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (now >= deadline) {
                        kill(pid, SIGKILL);
                        snprintf(err, errlen, "%s:%u: Module: %s: loading took longer than %llu s",
                                 svc->file, svc->module_line, svc->module,
                                 (unsigned long long)(WORKER_START_TIMEOUT_USEC /
                                                      CONF_USEC_PER_SEC));
                        r = -ETIMEDOUT;
                        break;
                }
                if (poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0)
                        continue;
                n = read(fd, out + len, sizeof(out) - 1 - len);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (len == sizeof(out) - 1)
                        break;
        }
        if (fd >= 0)
                close(fd);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        out[len] = 0;
        /* Every ERROR line is a problem of its own: pass them all on, one a line. */
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
                size_t at = strlen(err);

                ok |= strcmp(line, "OK") == 0;
                if (strncmp(line, "ERROR ", 6) == 0 && at + 1 < errlen)
                        snprintf(err + at, errlen - at, "%s%s", at ? "\n" : "", line + 6);
        }
        if (err[0])
                return -EINVAL;
        if (ok && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        describe_status(status, cause, sizeof(cause));
        snprintf(err, errlen, "%s:%u: Module: %s: loading it %s", svc->file, svc->module_line,
                 svc->module, cause);
        return -EINVAL;
}

/* ------------------------------------------------------------------ control */

int svc_restart(struct sup *s, struct svc *v, uint64_t now)
{
        unsigned n = v->n_workers;
        uint64_t deadline;

        if (v->gen->state != GEN_ACTIVE || s->stopping)
                return -ESTALE;
        for (unsigned j = 0; j < n; j++)
                if (v->workers[n + j].pid)
                        return -EBUSY;
        deadline = drain_deadline(v->gen, now);
        v->failed = false;
        v->disabled = false;
        v->start_failed = false;
        v->n_crashes = 0;
        for (unsigned j = 0; j < n; j++) {
                struct worker *w = &v->workers[j], *t = &v->workers[n + j];
                struct fig_slot *free_slot = t->fig;

                if (w->pid) {
                        /* The process keeps writing the slot it was given at fork. */
                        *t = *w;
                        t->retired = true;
                        t->restart_at = 0;
                        t->state = w->state;
                        w->fd = -1;
                        w->pid = 0;
                        w->fig = free_slot;
                        worker_stop(t, deadline);
                }
                w->state = WORKER_DOWN;
                w->backoff = 0;
                worker_spawn(s, w, now);
        }
        log_notice(v->conf->name, "restarting %u worker(s) on request; the old ones drain", n);
        return 0;
}

int svc_check_started(const struct svc *v)
{
        bool ready = true;

        if (v->failed || v->disabled || v->gen->state != GEN_ACTIVE)
                return -1;
        for (unsigned j = 0; j < v->n_workers; j++) {
                const struct worker *w = &v->workers[j];
                if (w->state != WORKER_READY)
                        ready = false;
                if (w->state == WORKER_DOWN && w->restarts > 0 && w->backoff > 0)
                        return -1; /* it died before it was ready */
        }
        return ready ? 1 : 0;
}

void sup_figures(const struct sup *s, const char *name, struct fig_values *ret)
{
        const struct fig_values *gone = fig_book_get(&s->book, name);

        memset(ret, 0, sizeof(*ret));
        if (gone)
                fig_add(ret, gone, false);
        FOR_EACH_WORKER(s, g, v, w)
        {
                struct fig_values x;

                if (!w->pid || strcmp(v->conf->name, name) != 0)
                        continue;
                fig_read(w->fig, &x);
                fig_add(ret, &x, true);
        }
}

void sup_free(struct sup *s)
{
        while (s->gens) {
                struct gen *g = s->gens;
                s->gens = g->next;
                gen_unref_listeners(g);
                gen_free(g);
        }
        activation_close_all(&s->ls);
        fig_book_done(&s->book);
}

/*
 * The worker process (see worker.h). Order matters and is the point of this file: privileges
 * are dropped before the module is dlopen()ed, so no module code (not even its constructors)
 * ever runs as root; the parent-death signal is armed after the drop because changing
 * credentials clears it.
 */
#include "worker.h"
#include "sysfilter.h"

#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "activation.h"
#include "log.h"
#include "module.h"
#include "privileges.h"
#include "vk_kernel.h"

static struct vk_kernel *volatile worker_kernel;

/* What each connection of a service with IdleTimeoutSec= starts with (copied into the frame). */
struct worker_conn_arg {
        void *state;        /* the module's, handed on to its main */
        vk_thread_fn *main; /* the module's connection coroutine */
        uint64_t idle_ms;
};

/*
 * IdleTimeoutSec=: the kernel has a deadline per blocking op of a thread (vk_set_timeout(),
 * renewed whenever the thread is woken), which is exactly "nothing happened for so long" for a
 * thread waiting on its connection. The module's main runs as a child of this small coroutine
 * with that deadline set; when it fires, ETIMEDOUT ends the child, reaches us through
 * vk_join(), and ends the process, which closes the connection. Costs one extra frame per
 * connection, and only for services that set a finite timeout.
 */
static void worker_conn(struct vk_thread *that)
{
        struct {
                struct worker_conn_arg a;
                struct vk_thread *child;
        } * self;
        vk_begin();
        self->child = vk_spawn(self->a.main, &self->a.state, sizeof(self->a.state));
        if (!self->child)
                vk_raise(ENOMEM, "heap full: no room for the connection's thread");
        vk_set_timeout(self->child, self->a.idle_ms);
        vk_join(self->child);
        vk_end();
}

/* The worker's figures: a copy of its kernel's counters in its slot of the shared region, made
 * from the kernel's loop (never from a virtual process), so nothing is locked or waited for. */
struct worker_figs {
        struct vk_kernel *k;
        struct fig_slot *slot;
        /* The service's own process is no connection: not accepted, not active, not closed. */
        int has_service;
        const uint64_t *service_pid; /* 0 once it ended */
        uint64_t service_ends;       /* ended unasked: the worker exits right after */
        int service_failed;          /* its end counted as a failure in the kernel's stats, */
        int service_counted;         /* and in this fig_counter (or 0) */
};

static void worker_publish(void *ctx)
{
        const struct worker_figs *f = ctx;
        struct vk_kernel_stats st;
        struct fig_values v = {0};

        vk_kernel_stats(f->k, &st);
        int service_up = f->service_pid && *f->service_pid;

        v.c[FIG_ACCEPTED] = st.spawned - (f->has_service ? 1 : 0);
        v.c[FIG_ACTIVE] = st.active - (service_up ? 1 : 0);
        v.c[FIG_CLOSED] = st.exited - (f->has_service && !service_up ? 1 : 0);
        v.c[FIG_REQUESTS] = st.requests;
        v.c[FIG_BYTES_IN] = st.bytes_in;
        v.c[FIG_BYTES_OUT] = st.bytes_out;
        v.c[FIG_ERRORS] = st.failed;
        v.c[FIG_FAULTS] = st.faults;
        v.c[FIG_CPU_KILLS] = st.cpu_kills;
        v.c[FIG_NOMEM] = st.nomem;
        v.c[FIG_TIMEOUTS] = st.timeouts;
        v.c[FIG_SERVICE_PROCS] = service_up ? 1 : 0;
        v.c[FIG_SERVICE_ENDS] = f->service_ends;
        v.c[FIG_PROTECTS] = st.protects;
        if (f->service_failed) { /* counted there, not as a connection's error */
                v.c[FIG_ERRORS]--;
                if (f->service_counted)
                        v.c[f->service_counted]--;
        }
        memcpy(v.latency, st.latency, sizeof(v.latency));
        v.latency_sum_us = st.latency_sum_us;
        fig_publish(f->slot, &v);
}

/* ------------------------------------------------------------------ abnormal ends */

/*
 * Every abnormal end of a process is one log line: a contained fault (with its address and the
 * module symbol nearest the faulting instruction), a corrupt record the kernel refused, a CPU
 * budget kill, a full heap, a process the kernel's idle limit ended, an uncaught error (its code,
 * message and line). Errors a client causes by going away are counted, not logged. A storm is
 * WORKER_LOG_BURST lines a second and then one line with how many were left out.
 */
#define WORKER_LOG_BURST 10

struct worker_exits {
        const struct conf_service *s;
        struct vk_kernel *k;
        struct worker_figs *figs;
        uint64_t service_pid; /* 0: none, or it ended */
        uint64_t second;      /* the rate limit's current second */
        unsigned logged, dropped;
};

static const char *worker_cause(enum vk_exit_cause c)
{
        switch (c) {
        case VK_EXIT_FAULT:
                return "fault";
        case VK_EXIT_CORRUPT:
                return "corrupt heap";
        case VK_EXIT_CPU:
                return "CPU budget";
        case VK_EXIT_NOMEM:
                return "heap full";
        case VK_EXIT_IDLE:
                return "idle limit";
        default:
                return "error";
        }
}

/* " from ADDRESS" for a connection with a known peer, else "". */
static void worker_peer(const struct sockaddr_storage *ss, char *buf, size_t len)
{
        char addr[128];

        buf[0] = 0;
        if (ss->ss_family == AF_UNSPEC)
                return;
        format_sockaddr(ss, sizeof(*ss), addr, sizeof(addr));
        snprintf(buf, len, " from %s", addr);
}

/* " at 0xADDR, pc 0xPC (object: symbol+0xOFF)" for a fault. */
static void worker_where(const struct vk_exit_detail *d, char *buf, size_t len)
{
        Dl_info di;
        buf[0] = 0;
        if (d->cause != VK_EXIT_FAULT && d->cause != VK_EXIT_CPU)
                return;
        if (!d->pc || !dladdr((void *)d->pc, &di) || !di.dli_fname) {
                snprintf(buf, len, " (pc %#lx)", (unsigned long)d->pc);
                return;
        }
        const char *obj = strrchr(di.dli_fname, '/');
        obj = obj ? obj + 1 : di.dli_fname;
        if (di.dli_sname)
                snprintf(buf, len, " (pc %#lx in %s: %s+%#lx)", (unsigned long)d->pc, obj,
                         di.dli_sname, (unsigned long)(d->pc - (uintptr_t)di.dli_saddr));
        else
                snprintf(buf, len, " (pc %#lx in %s+%#lx)", (unsigned long)d->pc, obj,
                         (unsigned long)(d->pc - (uintptr_t)di.dli_fbase));
}

/* A new second of the rate limit: what the last one left out is said first. */
static void worker_exits_second(struct worker_exits *x, uint64_t second)
{
        if (second == x->second)
                return;
        if (x->dropped)
                log_warning(x->s->name,
                            "%u more abnormal process ends in the last second were "
                            "not logged",
                            x->dropped);
        x->second = second;
        x->logged = x->dropped = 0;
}

/* From the kernel's loop: the figures, and the count a storm left out. */
static void worker_tick(void *ctx)
{
        struct worker_exits *x = ctx;
        struct timespec now;
        if (x->figs->slot)
                worker_publish(x->figs);
        clock_gettime(CLOCK_MONOTONIC, &now);
        worker_exits_second(x, (uint64_t)now.tv_sec);
}

static void worker_on_exit(void *ctx, uint64_t pid, const struct vk_error *err)
{
        struct worker_exits *x = ctx;
        const struct vk_exit_detail *d = vk_kernel_exit_detail(x->k);
        const char *name = x->s->name;
        char peer[144], where[256];
        struct timespec now;

        if (d->is_service && pid == x->service_pid) {
                x->service_pid = 0;
                if (d->told)
                        return; /* told to end: the worker is stopping */
                log_err(name, "the service's own process ended (%s: %s); restarting the worker",
                        worker_cause(d->cause), err ? err->msg : "it returned");
                x->figs->service_ends++;
                x->figs->service_failed = err != NULL;
                x->figs->service_counted = d->cause == VK_EXIT_FAULT   ? FIG_FAULTS
                                           : d->cause == VK_EXIT_CPU   ? FIG_CPU_KILLS
                                           : d->cause == VK_EXIT_NOMEM ? FIG_NOMEM
                                                                       : 0;
                if (x->figs->slot)
                        worker_publish(x->figs);
                _exit(EXIT_FAILURE); /* the supervisor restarts it, with its back-off */
        }
        if (!err || (d->cause == VK_EXIT_ERROR &&
                     (err->code == ECONNRESET || err->code == EPIPE || err->code == ETIMEDOUT)))
                return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        worker_exits_second(x, (uint64_t)now.tv_sec);
        if (x->logged++ >= WORKER_LOG_BURST) {
                x->dropped++;
                return;
        }
        worker_peer(&d->peer, peer, sizeof(peer));
        worker_where(d, where, sizeof(where));
        if (d->cause == VK_EXIT_ERROR)
                log_info(name, "connection%s ended by an uncaught error: %s (errno %d, line %d)",
                         peer, err->msg, err->code, err->line);
        else
                log_warning(name, "connection%s ended: %s: %s%s", peer, worker_cause(d->cause),
                            err->msg, where);
}

static enum vk_isolation worker_isolation(enum conf_isolation i)
{
        switch (i) {
        case CONF_ISOLATION_UNPRIVILEGED:
                return VK_ISOLATION_UNPRIVILEGED;
        case CONF_ISOLATION_PRIVILEGED:
                return VK_ISOLATION_PRIVILEGED;
        case CONF_ISOLATION_ISOLATED:
        default:
                return VK_ISOLATION_ISOLATED;
        }
}

static void worker_on_term(int sig)
{
        struct vk_kernel *k = worker_kernel;

        (void)sig;
        if (!k)
                _exit(0); /* still loading: nothing accepted yet, nothing to drain */
        vk_kernel_stop(k);
}

/* One line on the status pipe; a message never contains a newline. */
static void worker_say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void worker_say(int fd, const char *fmt, ...)
{
        char line[2048];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n > sizeof(line) - 2)
                n = sizeof(line) - 2;
        for (int i = 0; i < n; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        line[n++] = '\n';
        while (write(fd, line, (size_t)n) < 0 && errno == EINTR)
                ;
}

static void worker_signals(void)
{
        struct sigaction sa = {.sa_handler = worker_on_term};
        sigset_t none;

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        /* Only the supervisor decides when workers stop: a terminal's ^C reaches the whole
         * process group, and the supervisor turns it into an orderly drain. */
        sa.sa_handler = SIG_IGN;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
        sigaction(SIGUSR2, &sa, NULL);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &sa, NULL);
        sigaction(SIGQUIT, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
}

void worker_run(const struct worker_args *a)
{
        const struct conf_service *s = a->service;
        pid_t parent = getppid();
        struct vk_kernel_config kc;
        struct module m;
        char err[4096];
        int r;

        worker_signals();
        /* The key is read while the worker may still read what only root may: a
         * root-only key file works, and no module ever gets to open it. */
        void *tls = NULL;
        if (s->tls.certificate) {
                int field;
                if (tls_conf_ctx(&s->tls, &tls, &field, err, sizeof(err)) < 0) {
                        worker_say(a->status_fd, "ERROR %s:%u: %s: %s", s->file,
                                   s->tls.line[field] ? s->tls.line[field] : s->section_line,
                                   tls_conf_key(field), err);
                        _exit(1);
                }
        }
        r = privileges_drop(&s->creds, err, sizeof(err));
        if (r < 0) {
                worker_say(a->status_fd, "ERROR %s:%u: User: %s", s->file, s->section_line, err);
                _exit(1);
        }
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(0); /* the supervisor is already gone */
#endif
        r = module_load(&m, a->module_dir, s, err, sizeof(err));
        if (r == 0)
                r = module_init(&m, s, err, sizeof(err));
        if (r < 0 && !err[0])
                snprintf(err, sizeof(err), "%s:%u: Module: %s: %s", s->file, s->module_line,
                         s->module, strerror(-r));
        if (r < 0) {
                /* one ERROR line per problem */
                for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"))
                        worker_say(a->status_fd, "ERROR %s", line);
                _exit(1);
        }
        if (a->check_only) {
                module_unload(&m);
                worker_say(a->status_fd, "OK");
                _exit(0);
        }

        kc = (struct vk_kernel_config){
                .tls_ctx = tls,
                .heap_size = s->heap_size,
                .ring_size = s->ring_size,
                .max_procs = s->max_connections,
                /* At SIGTERM take what the listen queues hold, then close: once the
                 * supervisor and every worker have, a new connection is refused. */
                .close_listeners_on_stop = 1,
                .isolation = worker_isolation(s->isolation),
                /* The kernel's backstop for a connection that wedged itself: twice its idle
                 * timeout, plus 10 s, without being scheduled. */
                .idle_limit_ms = s->idle_timeout_usec == CONF_USEC_INFINITY
                                         ? 0
                                         : (unsigned)(s->idle_timeout_usec / 1000 * 2 + 10000),
        };
        struct vk_kernel *k;
        r = vk_kernel_new(&kc, &k);
        if (r < 0) {
                worker_say(a->status_fd,
                           "ERROR %s:%u: HeapSize: cannot start the virtual kernel "
                           "(HeapSize=%zu RingSize=%zu MaxConnections=%u): %s",
                           s->file, s->section_line, s->heap_size, s->ring_size, s->max_connections,
                           strerror(-r));
                _exit(1);
        }
        struct worker_figs figs = {.k = k, .slot = a->fig};
        struct worker_exits exits = {.s = s, .k = k, .figs = &figs};
        figs.service_pid = &exits.service_pid;
        vk_kernel_on_exit(k, worker_on_exit, &exits);
        struct worker_conn_arg conn = {
                .state = m.state,
                .main = m.desc.main,
                .idle_ms = s->idle_timeout_usec / 1000 ? s->idle_timeout_usec / 1000 : 1,
        };
        /* Connections run the module through worker_conn: the module's code is where a runaway
         * dispatch may be ended (vk_kernel_module_code). */
        vk_kernel_module_code(k, (const void *)m.desc.main);
        if (m.desc.service) {
                /* The module's own process (ABI 1.1: a store, say), before the
                 * first connection; connections find it with vk_service_pid(). */
                int64_t spid =
                        vk_kernel_spawn(k, m.desc.service, &m.state, sizeof(m.state), -1, -1);
                if (spid < 0) {
                        worker_say(a->status_fd,
                                   "ERROR %s:%u: Module: cannot start the service process: %s",
                                   s->file, s->section_line, strerror((int)-spid));
                        _exit(1);
                }
                vk_kernel_set_service(k, (uint64_t)spid);
                exits.service_pid = (uint64_t)spid;
                figs.has_service = 1;
        }
        bool idle = s->idle_timeout_usec != CONF_USEC_INFINITY;
        for (size_t i = 0; i < a->n_fds; i++) {
                /* The state init returned reaches each connection's frame as its first member;
                 * with no state there is nothing to copy into every connection's heap. */
                if (idle)
                        r = vk_kernel_listen(k, a->fds[i], worker_conn, &conn, sizeof(conn));
                else
                        r = vk_kernel_listen(k, a->fds[i], m.desc.main, m.state ? &m.state : NULL,
                                             m.state ? sizeof(m.state) : 0);
                if (r < 0) {
                        worker_say(a->status_fd, "ERROR %s:%u: Listen: cannot accept: %s", s->file,
                                   s->section_line, strerror(-r));
                        _exit(1);
                }
        }
        figs.k = k;
        if (a->fig) {
                fig_set_module(a->fig, m.desc.name, m.desc.version);
                worker_publish(&figs);
        }
        vk_kernel_on_tick(k, worker_tick, &exits, FIG_TICK_MS);
        worker_kernel = k;
        /* Last step before the first accept: from here on only the allow-listed system
         * calls (sysfilter.c); a module calling anything else kills this worker. */
        if (s->syscall_filter) {
                r = sysfilter_install(err, sizeof(err));
                if (r < 0) {
                        worker_say(a->status_fd, "ERROR %s:%u: SystemCallFilter: %s", s->file,
                                   s->section_line, err);
                        _exit(1);
                }
        }
        worker_say(a->status_fd, "READY");
        log_debug(s->name, "worker accepting on %zu socket(s), poller %s", a->n_fds,
                  vk_kernel_poller(k));
        r = vk_kernel_run(k);
        worker_kernel = NULL;
        if (a->fig)
                worker_publish(&figs); /* the drain's last connections */
        if (r < 0) {
                log_err(s->name, "worker: virtual kernel failed: %s", strerror(-r));
                _exit(1);
        }
        vk_kernel_free(k);
        module_unload(&m);
        _exit(0);
}

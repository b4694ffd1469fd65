/*
 * vkd: the supervisor. Loads the configuration, takes or binds the listening sockets, forks
 * the workers that run the services, and then runs one event loop: signals arrive through a
 * self-pipe, workers report over their status pipes, and the loop turns both into the life
 * cycle: READY=1 once every worker accepts, SIGHUP reloads into a new generation on the same
 * sockets, SIGTERM/SIGINT drains and exits 0, crashed workers come back with back-off. The
 * supervisor never loads a module itself; only workers do, after dropping privileges.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"
#include "conf.h"
#include "control.h"
#include "nofile.h"
#include "log.h"
#include "module.h"
#include "notify.h"
#include "privileges.h"
#include "workers.h"

#ifndef VKD_MODULE_DIR
#define VKD_MODULE_DIR "/usr/lib/vkd"
#endif
#define VKD_DEFAULT_CONFIG "/etc/vkd.conf"

struct options {
        const char *conf_dir;
        const char *config;
        const char *module_dir;
        bool check_config;
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
        int saved = errno;
        unsigned char c = (unsigned char)sig;

        if (write(sig_pipe[1], &c, 1) < 0) {
                /* full: enough wake-ups are pending; SIGCHLD reaps all anyway */
        }
        errno = saved;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: vkd [--conf-dir DIR] [--config FILE] [--module-dir DIR] [--check-config]\n"
                "           [--foreground]\n"
                "\n"
                "Runs the services configured in DIR/*.conf (default %s), each in worker\n"
                "processes that load <module-dir>/<Module=>.so (default %s).\n"
                "\n"
                "  -d, --conf-dir DIR    service configs (overrides ConfDir= of vkd.conf)\n"
                "  -c, --config FILE     daemon settings; default DIR/vkd.conf when --conf-dir\n"
                "                        is given and it exists, else %s if it exists\n"
                "  -m, --module-dir DIR  where bare Module= names are looked up\n"
                "  -t, --check-config    validate everything, load each module in an\n"
                "                        unprivileged child, and exit (0: all good)\n"
                "  -f, --foreground      accepted for clarity: vkd never forks into the\n"
                "                        background; systemd, launchd or the shell runs it\n"
                "  -h, --help            this text\n"
                "\n"
                "Signals: SIGHUP reloads, SIGTERM or SIGINT drains and stops.\n",
                CONF_DEFAULT_CONF_DIR, VKD_MODULE_DIR, VKD_DEFAULT_CONFIG);
}

static int parse_options(int argc, char **argv, struct options *o)
{
        static const struct option opts[] = {
                {"conf-dir", required_argument, NULL, 'd'},
                {"config", required_argument, NULL, 'c'},
                {"module-dir", required_argument, NULL, 'm'},
                {"check-config", no_argument, NULL, 't'},
                {"foreground", no_argument, NULL, 'f'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;

        *o = (struct options){.module_dir = VKD_MODULE_DIR};
        while ((c = getopt_long(argc, argv, "d:c:m:tfh", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        o->conf_dir = optarg;
                        break;
                case 'c':
                        o->config = optarg;
                        break;
                case 'm':
                        o->module_dir = optarg;
                        break;
                case 't':
                        o->check_config = true;
                        break;
                case 'f':
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vkd: unexpected argument: %s\n", argv[optind]);
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

/* The daemon config: --config, else vkd.conf in --conf-dir, else /etc/vkd.conf; NULL when
 * none exists (all defaults). The returned string is static or from argv, or malloc()ed into
 * *owned. */
static const char *daemon_config(const struct options *o, char **owned)
{
        struct stat st;

        *owned = NULL;
        if (o->config)
                return o->config;
        if (o->conf_dir && asprintf(owned, "%s/vkd.conf", o->conf_dir) >= 0) {
                if (stat(*owned, &st) == 0)
                        return *owned;
                free(*owned);
                *owned = NULL;
        }
        if (stat(VKD_DEFAULT_CONFIG, &st) == 0)
                return VKD_DEFAULT_CONFIG;
        return NULL;
}

/*
 * Checks the [Module] keys of every service that names a module, each in a short-lived worker
 * (blocking: a few milliseconds each, WORKER_START_TIMEOUT_USEC at worst). Logs every problem;
 * returns how many. A service whose User=/Group= did not resolve is left out: its module would
 * run as the wrong user.
 */
static size_t check_modules(const struct conf *c, const char *module_dir)
{
        char err[8192];
        size_t bad = 0;

        for (size_t i = 0; i < c->n_services; i++) {
                const struct conf_service *s = c->services[i];

                if (!s->module || s->creds.unresolved ||
                    worker_check(s, module_dir, err, sizeof(err)) == 0)
                        continue;
                for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n"), bad++)
                        log_err(s->name, "%s", line);
        }
        return bad;
}

/*
 * A module that runs in one worker only (VK_MODULE_ONE_WORKER, read from its file: no module code
 * runs here) gets one, unless Workers= asks for more, which is an error. Returns the errors.
 */
static size_t one_worker_modules(struct conf *c, const char *module_dir)
{
        size_t bad = 0;

        for (size_t i = 0; i < c->n_services; i++) {
                struct conf_service *s = c->services[i];
                uint32_t flags;

                if (!s->module || module_peek_flags(module_dir, s, &flags) < 0 ||
                    !(flags & VK_MODULE_ONE_WORKER))
                        continue;
                if (s->workers > 1) {
                        log_err(s->name,
                                "%s:%u: Workers: %u: module %s keeps its state in one process, "
                                "so it runs in one worker only",
                                s->file, s->workers_line, s->workers, s->module);
                        bad++;
                }
                s->workers = 1;
        }
        return bad;
}

/*
 * Loads a whole generation; logs every error and returns NULL on failure. When the files have
 * errors (or with all_modules) the module keys are checked too, so that one run reports every
 * problem, with one total.
 */
static struct conf *load_config(const char *config, const char *conf_dir, const char *module_dir,
                                bool all_modules)
{
        struct conf_errors errs = {0};
        struct conf *c = NULL;
        size_t bad;
        int r;

        r = conf_load_partial(config, conf_dir, &c, &errs);
        if (r == -ENOMEM)
                log_err(NULL, "out of memory loading the configuration");
        for (size_t i = 0; i < errs.n; i++)
                log_err(NULL, "%s", errs.items[i].text);
        if (errs.dropped)
                log_err(NULL, "... and %zu more error(s)", errs.dropped);
        bad = errs.n + errs.dropped;
        conf_errors_done(&errs);
        if (c)
                bad += one_worker_modules(c, module_dir);
        if (c && (r < 0 || all_modules))
                bad += check_modules(c, module_dir);
        if (bad)
                log_err(NULL, "configuration has %zu error(s)", bad);
        if (r < 0 || bad)
                c = conf_free(c);
        return c;
}

static void warn_identities(const struct conf *c)
{
        for (size_t i = 0; i < c->n_services; i++) {
                const struct conf_service *s = c->services[i];

                if (geteuid() == 0 && !s->creds.user)
                        log_warning(s->name, "no User= (here or in vkd.conf): workers run as "
                                             "root");
                else if (privileges_cannot_switch(&s->creds))
                        log_warning(s->name,
                                    "User=%s not applied: vkd is not root; workers run as "
                                    "uid %u",
                                    s->creds.user, (unsigned)geteuid());
        }
}

static int check_config(const struct options *o, const char *config)
{
        struct conf *c = load_config(config, o->conf_dir, o->module_dir, true);

        if (!c)
                return 1;
        printf("vkd: configuration OK: %zu service(s) in %s\n", c->n_services, c->daemon.conf_dir);
        conf_free(c);
        return 0;
}

static int setup_signals(void)
{
        static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD};
        struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};

        if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                if (sigaction(sigs[i], &sa, NULL) < 0)
                        return -errno;
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

/* ------------------------------------------------------------------ the loop */

#define RELOAD_ERRORS_MAX 256

struct daemon {
        struct sup sup;
        const char *config;
        const char *conf_dir;
        struct gen *starting; /* a generation waiting for its workers */
        bool initial;         /* starting is the first generation */
        bool reload_pending;  /* SIGHUP while a generation was starting */
        int exit_code;
        struct ctl *ctl;     /* NULL: no control socket */
        int64_t reload_seq;  /* reloads begun; the current one's ticket for the control socket */
        bool reload_tapping; /* error lines are being collected for it */
        char *reload_errs[RELOAD_ERRORS_MAX];
        size_t n_reload_errs;
        uint64_t next_status; /* when STATUS= with live figures is sent next (usec) */
};

/* How often systemd's STATUS= line is refreshed with live figures. */
#define STATUS_PERIOD_USEC (5 * 1000000ull)

/* ------------------------------------------------------------------ reload results */

static void reload_tap(void *ctx, int prio, const char *line)
{
        struct daemon *d = ctx;
        char *copy;

        (void)prio;
        for (size_t i = 0; i < d->n_reload_errs; i++)
                if (strcmp(d->reload_errs[i], line) == 0)
                        return; /* every worker reports the same module error */
        if (d->n_reload_errs == RELOAD_ERRORS_MAX || !(copy = strdup(line)))
                return;
        d->reload_errs[d->n_reload_errs++] = copy;
}

static void reload_tap_begin(struct daemon *d)
{
        d->reload_tapping = true;
        log_set_tap(reload_tap, d);
}

/* Ends the reload with ticket `ticket`: tells the control socket's waiting clients. */
static void reload_finish(struct daemon *d, int64_t ticket, bool ok)
{
        log_set_tap(NULL, NULL);
        d->reload_tapping = false;
        ctl_reload_done(d->ctl, ticket, ok, d->reload_errs, d->n_reload_errs);
        for (size_t i = 0; i < d->n_reload_errs; i++)
                free(d->reload_errs[i]);
        d->n_reload_errs = 0;
}

static void announce_ready(struct daemon *d)
{
        char status[256];

        sup_status(&d->sup, status, sizeof(status));
        notify_ready(status);
}

static void begin_stop(struct daemon *d, const char *why)
{
        uint64_t now = sup_now();

        if (d->sup.stopping)
                return;
        d->sup.stopping = true;
        if (d->reload_tapping || d->reload_pending) {
                reload_tap(d, LOG_PRI_ERR, "the daemon is stopping");
                reload_finish(d, d->reload_seq + d->reload_pending, false);
        }
        d->reload_pending = false;
        notify_stopping();
        log_info(NULL, "%s", why);
        for (struct gen *g = d->sup.gens; g; g = g->next)
                if (g->state != GEN_DRAINING)
                        gen_stop(&d->sup, g, now);
        d->starting = NULL;
        /* Our copies of the sockets we bound: the workers close theirs once they have taken
         * what is queued, and the last close makes the kernel refuse new connections, rather
         * than queue them unserved until we exit and reset them. A socket the service manager
         * passed in stays: it keeps queueing for the next start, which is the point of it. */
        for (struct listener *l = d->sup.ls.head; l; l = l->next)
                if (!l->inherited && l->fd >= 0) {
                        close(l->fd);
                        l->fd = -1;
                }
}

static void reload(struct daemon *d)
{
        struct gen *old = sup_active(&d->sup);
        struct conf *c;
        struct gen *g;

        if (d->sup.stopping)
                return;
        if (d->starting) {
                d->reload_pending = true;
                return;
        }
        notify_reloading();
        d->reload_seq++;
        reload_tap_begin(d);
        log_info(NULL, "reloading the configuration");
        c = load_config(d->config, d->conf_dir, d->sup.module_dir, false);
        if (c) {
                nofile_check(c);
                warn_identities(c);
        }
        if (c && old && d->ctl &&
            (strcmp(c->daemon.control_socket, old->conf->daemon.control_socket) != 0 ||
             c->daemon.control_socket_gid != old->conf->daemon.control_socket_gid))
                log_notice(NULL,
                           "ControlSocket=/ControlSocketGroup= changed: takes effect when "
                           "vkd is restarted; the control socket stays at %s",
                           ctl_path(d->ctl));
        g = c ? gen_create(&d->sup, c) : NULL;
        if (!g) {
                reload_finish(d, d->reload_seq, false);
                log_err(NULL, "reload failed; generation %u keeps running unchanged",
                        old ? old->id : 0);
                announce_ready(d);
                return;
        }
        gen_start(&d->sup, g);
        d->starting = g;
        d->initial = false;
}

static void on_started(struct daemon *d, int r)
{
        struct gen *g = d->starting, *old = sup_active(&d->sup);
        uint64_t now = sup_now();

        d->starting = NULL;
        if (d->reload_tapping)
                reload_finish(d, d->reload_seq, r > 0);
        if (r < 0 && d->initial) {
                d->exit_code = 1;
                begin_stop(d, "refusing to start: a required service could not start");
                return;
        }
        if (r < 0) {
                log_err(NULL, "reload failed; generation %u keeps running unchanged",
                        old ? old->id : 0);
                gen_stop(&d->sup, g, now);
                announce_ready(d);
                return;
        }
        g->state = GEN_ACTIVE;
        log_set_level(g->conf->daemon.log_level);
        if (old) {
                /* The new workers accept already; the old ones stop accepting and finish
                 * their connections. Connections waiting in the backlog belong to the socket,
                 * not to a worker, so the new workers take them. */
                gen_stop(&d->sup, old, now);
                log_notice(NULL, "reloaded: generation %u running, generation %u draining", g->id,
                           old->id);
        } else {
                log_notice(NULL, "ready: generation %u running", g->id);
        }
        announce_ready(d);
}

/* ------------------------------------------------------------------ control socket */

static const char *hook_state(void *ctx)
{
        const struct daemon *d = ctx;

        if (d->sup.stopping)
                return "stopping";
        if (d->starting)
                return d->initial ? "starting" : "reloading";
        return "running";
}

static int64_t hook_reload(void *ctx)
{
        struct daemon *d = ctx;

        if (d->sup.stopping)
                return -ESHUTDOWN;
        if (d->starting) {
                d->reload_pending = true;
                return d->reload_seq + 1; /* the one that runs next */
        }
        reload(d);
        return d->reload_seq;
}

static void hook_stop(void *ctx)
{
        begin_stop(ctx, "stopping on request (control socket): draining connections");
}

/*
 * Opens ControlSocket=. Started by hand without root, the default /run/vkd is usually not
 * writable: then $XDG_RUNTIME_DIR/vkd/control.sock, then ./vkd.control.sock (vkdctl looks in
 * the same places). A path the config names explicitly is not replaced. Returns 0 (also when
 * vkd has to run without a control socket, logged), or -1 to refuse the start.
 */
static int open_control(struct daemon *d, const struct conf *c)
{
        static const struct ctl_hooks hooks = {
                .state = hook_state, .reload = hook_reload, .stop = hook_stop};
        struct ctl_hooks h = hooks;
        const char *path = c->daemon.control_socket;
        gid_t gid = c->daemon.control_socket_group ? c->daemon.control_socket_gid : (gid_t)-1;
        char err[512], first[512], alt[PATH_MAX + 32], cwd[PATH_MAX];
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        int r;

        h.ctx = d;
        r = ctl_open(path, gid, &d->sup, &h, &d->ctl, err, sizeof(err));
        if (r == 0) {
                log_info(NULL, "control socket at %s", path);
                return 0;
        }
        if (strcmp(path, CONF_DEFAULT_CONTROL_SOCKET) != 0 || r == -EADDRINUSE) {
                log_err(NULL, "ControlSocket=: %s", err);
                return -1;
        }
        snprintf(first, sizeof(first), "%s", err);
        for (int i = 0; i < 2; i++) {
                if (i == 0 && (!xdg || xdg[0] != '/'))
                        continue;
                if (i == 0)
                        snprintf(alt, sizeof(alt), "%s/vkd/control.sock", xdg);
                else if (getcwd(cwd, sizeof(cwd)))
                        snprintf(alt, sizeof(alt), "%s/vkd.control.sock", cwd);
                else
                        continue;
                r = ctl_open(alt, gid, &d->sup, &h, &d->ctl, err, sizeof(err));
                if (r == 0) {
                        log_notice(NULL, "control socket at %s (%s)", alt, first);
                        return 0;
                }
                if (r == -EADDRINUSE) {
                        log_err(NULL, "ControlSocket=: %s", err);
                        return -1;
                }
        }
        log_warning(NULL, "running without a control socket: %s; %s", first, err);
        return 0;
}

static void handle_signals(struct daemon *d)
{
        unsigned char buf[64];
        bool hup = false, term = false, chld = false;
        ssize_t n;

        while ((n = read(sig_pipe[0], buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < n; i++) {
                        hup |= buf[i] == SIGHUP;
                        term |= buf[i] == SIGTERM || buf[i] == SIGINT;
                        chld |= buf[i] == SIGCHLD;
                }
        /* Stop first: a ^C on a terminal also reaches the workers' process group, and their
         * exits must not look like crashes to restart. */
        if (term)
                begin_stop(d, "stopping: draining connections");
        if (chld)
                sup_reap(&d->sup, sup_now());
        if (hup)
                reload(d);
}

static int run(struct daemon *d)
{
        struct pollfd *fds = NULL;
        size_t cap = 0;

        for (;;) {
                uint64_t now = sup_now();
                size_t want = 1 + ctl_nfds(d->ctl), n, n_sup;
                int timeout, ctl_timeout, r;

                /* A SIGCHLD may have been consumed with another signal's wake-up: reap always. */
                sup_reap(&d->sup, now);
                sup_timers(&d->sup, now);
                if (d->starting) {
                        r = gen_check_start(&d->sup, d->starting, now);
                        if (r != 0)
                                on_started(d, r);
                        if (!d->starting && d->reload_pending) {
                                d->reload_pending = false;
                                reload(d);
                        }
                }
                if (d->sup.stopping && sup_live_workers(&d->sup) == 0)
                        break;
                if (notify_enabled() && !d->starting && !d->sup.stopping && now >= d->next_status) {
                        char status[256];
                        sup_status(&d->sup, status, sizeof(status));
                        notify_status(status);
                        d->next_status = now + STATUS_PERIOD_USEC;
                }
                for (struct gen *g = d->sup.gens; g; g = g->next)
                        for (size_t i = 0; i < g->n_svcs; i++)
                                want += 2 * (size_t)g->svcs[i].n_workers; /* and twins */
                if (want > cap) {
                        struct pollfd *p = realloc(fds, want * sizeof(*fds));
                        if (!p) {
                                log_err(NULL, "out of memory");
                                free(fds);
                                return 1;
                        }
                        fds = p;
                        cap = want;
                }
                fds[0] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
                n_sup = sup_pollfds(&d->sup, fds + 1, cap - 1);
                n = 1 + n_sup;
                n += ctl_pollfds(d->ctl, fds + n, cap - n);
                timeout = sup_next_timeout_ms(&d->sup, now);
                ctl_timeout = ctl_next_timeout_ms(d->ctl, now);
                if (ctl_timeout >= 0 && (timeout < 0 || ctl_timeout < timeout))
                        timeout = ctl_timeout;
                if (notify_enabled() && d->next_status > now) {
                        int st = (int)((d->next_status - now + 999) / 1000);
                        if (timeout < 0 || st < timeout)
                                timeout = st;
                }
                r = poll(fds, n, timeout);
                if (r < 0 && errno != EINTR) {
                        log_err(NULL, "poll: %s", strerror(errno));
                        free(fds);
                        return 1;
                }
                now = sup_now();
                for (size_t i = 1; r > 0 && i < 1 + n_sup; i++)
                        if (fds[i].revents)
                                sup_on_input(&d->sup, fds[i].fd, now);
                if (r > 0)
                        ctl_on_poll(d->ctl, fds + 1 + n_sup, n - 1 - n_sup, now);
                ctl_timers(d->ctl, now);
                if (r > 0 && fds[0].revents)
                        handle_signals(d);
        }
        free(fds);
        return d->exit_code;
}

int main(int argc, char **argv)
{
        struct daemon d = {.initial = true};
        struct options o;
        char *owned = NULL, err[1024];
        struct conf *c;
        struct gen *g;
        int r;

        if (parse_options(argc, argv, &o) < 0)
                return 2;
        d.config = daemon_config(&o, &owned);
        d.conf_dir = o.conf_dir;
        if (o.check_config) {
                r = check_config(&o, d.config);
                free(owned);
                return r;
        }
        /* Before any socket is opened, and inherited by every worker. */
        long long nofile = nofile_raise();
        c = load_config(d.config, d.conf_dir, o.module_dir, false);
        if (!c) {
                free(owned);
                return 1;
        }
        log_set_level(c->daemon.log_level);
        if (nofile < 0)
                log_warning(NULL, "cannot raise the open-file limit to its hard limit: %s",
                            strerror((int)-nofile));
        nofile_check(c);
        warn_identities(c);
        if (setup_signals() < 0) {
                log_err(NULL, "cannot set up signal handling: %s", strerror(errno));
                return 1;
        }
        d.sup.module_dir = o.module_dir;
        r = activation_inherit(&d.sup.ls, err, sizeof(err));
        if (r < 0) {
                log_err(NULL, "%s", err);
                conf_free(c);
                activation_close_all(&d.sup.ls);
                free(owned);
                return 1;
        }
        if (r > 0)
                log_info(NULL, "%d socket(s) passed in by the service manager", r);
        if (open_control(&d, c) < 0) {
                log_err(NULL, "refusing to start");
                conf_free(c);
                activation_close_all(&d.sup.ls);
                free(owned);
                return 1;
        }
        g = gen_create(&d.sup, c);
        if (!g) {
                log_err(NULL, "refusing to start");
                d.ctl = ctl_close(d.ctl);
                activation_close_all(&d.sup.ls);
                free(owned);
                return 1;
        }
        for (const struct listener *l = d.sup.ls.head; l; l = l->next)
                if (l->inherited && !l->used)
                        log_warning(NULL, "socket %s (%s) was passed in but no service uses it",
                                    l->text, l->bound);
        gen_start(&d.sup, g);
        d.starting = g;
        r = run(&d);
        d.ctl = ctl_close(d.ctl);
        sup_free(&d.sup);
        free(owned);
        if (r == 0)
                log_info(NULL, "stopped");
        return r;
}

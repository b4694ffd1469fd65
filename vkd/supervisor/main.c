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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"
#include "conf.h"
#include "log.h"
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

/* Loads a whole generation; logs every error and returns NULL on failure. */
static struct conf *load_config(const char *config, const char *conf_dir)
{
        struct conf_errors errs = {0};
        struct conf *c = NULL;
        int r;

        r = conf_load(config, conf_dir, &c, &errs);
        if (r == -ENOMEM)
                log_err(NULL, "out of memory loading the configuration");
        for (size_t i = 0; i < errs.n; i++)
                log_err(NULL, "%s", errs.items[i].text);
        if (errs.dropped)
                log_err(NULL, "... and %zu more error(s)", errs.dropped);
        if (r < 0)
                log_err(NULL, "configuration has %zu error(s)", errs.n + errs.dropped);
        conf_errors_done(&errs);
        return r < 0 ? NULL : c;
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
        struct conf *c = load_config(config, o->conf_dir);
        unsigned bad = 0;
        char err[2048];

        if (!c)
                return 1;
        for (size_t i = 0; i < c->n_services; i++)
                if (worker_check(c->services[i], o->module_dir, err, sizeof(err)) < 0) {
                        log_err(c->services[i]->name, "%s", err);
                        bad++;
                }
        if (bad) {
                log_err(NULL, "configuration has %u error(s)", bad);
                conf_free(c);
                return 1;
        }
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

struct daemon {
        struct sup sup;
        const char *config;
        const char *conf_dir;
        struct gen *starting; /* a generation waiting for its workers */
        bool initial;         /* starting is the first generation */
        bool reload_pending;  /* SIGHUP while a generation was starting */
        int exit_code;
};

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
        notify_stopping();
        log_info(NULL, "%s", why);
        for (struct gen *g = d->sup.gens; g; g = g->next)
                if (g->state != GEN_DRAINING)
                        gen_stop(&d->sup, g, now);
        d->starting = NULL;
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
        log_info(NULL, "reloading the configuration");
        c = load_config(d->config, d->conf_dir);
        if (c)
                warn_identities(c);
        g = c ? gen_create(&d->sup, c) : NULL;
        if (!g) {
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
                size_t want = 1, n;
                int timeout, r;

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
                for (struct gen *g = d->sup.gens; g; g = g->next)
                        for (size_t i = 0; i < g->n_svcs; i++)
                                want += g->svcs[i].n_workers;
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
                n = 1 + sup_pollfds(&d->sup, fds + 1, cap - 1);
                timeout = sup_next_timeout_ms(&d->sup, now);
                r = poll(fds, n, timeout);
                if (r < 0 && errno != EINTR) {
                        log_err(NULL, "poll: %s", strerror(errno));
                        free(fds);
                        return 1;
                }
                now = sup_now();
                for (size_t i = 1; r > 0 && i < n; i++)
                        if (fds[i].revents)
                                sup_on_input(&d->sup, fds[i].fd, now);
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
        c = load_config(d.config, d.conf_dir);
        if (!c) {
                free(owned);
                return 1;
        }
        log_set_level(c->daemon.log_level);
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
        g = gen_create(&d.sup, c);
        if (!g) {
                log_err(NULL, "refusing to start");
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
        sup_free(&d.sup);
        free(owned);
        if (r == 0)
                log_info(NULL, "stopped");
        return r;
}

/*
 * The control socket (see control.h): the listening socket, its clients, the protocol, and the
 * status the supervisor tells about itself and its services.
 *
 * A client is a small state machine driven by poll(): it READs one request line, the reply is
 * queued and written as the socket takes it, and only once the reply has left is the next line
 * looked at, so one client has at most one request in flight and one reply buffered. `reload`
 * and `restart` WAIT for their result before replying. Every state has a deadline, so a client
 * that stops talking or stops reading costs a slot for a bounded time only. Replies are built
 * with json-c and never hold anything the supervisor cannot vouch for: text taken from the
 * workers' shared figures is bounded and made printable first.
 */
#include "control.h"
#include "control_request.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef VKD_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "log.h"

#ifndef VKD_VERSION
#define VKD_VERSION "0"
#endif

#define CTL_GROUPS_MAX 256 /* supplementary groups of a peer we look at */
#define CTL_READ_CHUNK 4096

enum ctl_client_state {
        CTL_READING,      /* waiting for a request line */
        CTL_WAIT_RELOAD,  /* a reload runs; the reply waits for its result */
        CTL_WAIT_RESTART, /* a service restarts; the reply waits for its workers */
        CTL_CLOSING,      /* the last reply is being written, then close */
};

struct ctl_client {
        int fd; /* -1: a free entry */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        bool may_read;   /* status, services */
        bool may_change; /* reload, stop, restart */
        bool eof;        /* the peer shut down its side */
        enum ctl_client_state state;
        uint64_t deadline;
        char *in;
        size_t in_len;
        char *out;
        size_t out_len, out_off;
        json_object *id;                         /* the request's "id", echoed in its reply */
        int64_t ticket;                          /* CTL_WAIT_RELOAD */
        char service[CONF_SERVICE_NAME_MAX + 1]; /* CTL_WAIT_RESTART */
        unsigned gen_id;
};

struct ctl {
        int fd;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
        dev_t dev;
        ino_t ino;
        gid_t gid;
        struct sup *sup;
        struct ctl_hooks hooks;
        uint64_t started_usec; /* monotonic */
        time_t started_wall;
        int64_t reload_done; /* the last ticket whose result is known */
        bool reload_ok;
        json_object *reload_errors; /* array of strings, of that result */
        struct ctl_client clients[CTL_CLIENTS_MAX];
};

/* ------------------------------------------------------------------ the socket */

static int ctl_mkdir_parent(const char *path)
{
        char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
        char *slash;

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return 0;
        *slash = 0;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Whether a process answers on the unix socket at path. */
static bool ctl_in_use(const struct sockaddr_un *sa)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool used;

        if (fd < 0)
                return false;
        used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
        close(fd);
        return used;
}

int ctl_open(const char *path, gid_t gid, struct sup *sup, const struct ctl_hooks *hooks,
             struct ctl **ret, char *err, size_t errlen)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct ctl *c = NULL;
        struct stat st;
        mode_t old_mask;
        int fd = -1, r;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                snprintf(err, errlen, "control socket path too long: %s", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        r = ctl_mkdir_parent(path);
        if (r < 0) {
                snprintf(err, errlen, "cannot create the directory of %s: %s", path, strerror(-r));
                return r;
        }
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        snprintf(err, errlen, "%s exists and is not a socket", path);
                        return -EEXIST;
                }
                if (ctl_in_use(&sa)) {
                        snprintf(err, errlen, "%s: another process answers on it (another vkd?)",
                                 path);
                        return -EADDRINUSE;
                }
                unlink(path); /* stale: left by a daemon that was killed */
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "control socket: %s", strerror(errno));
                return r;
        }
        /* Born 0660: no moment in which the socket is open to others. */
        old_mask = umask(0117);
        r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old_mask);
        if (r < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot bind the control socket %s: %s", path,
                         strerror(errno));
                goto fail;
        }
        if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot give %s to group %u: %s", sa.sun_path, (unsigned)gid,
                         strerror(-r));
                unlink(path);
                goto fail;
        }
        if (chmod(path, 0660) < 0 || listen(fd, 64) < 0 || stat(path, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "control socket %s: %s", sa.sun_path, strerror(-r));
                unlink(path);
                goto fail;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                r = -ENOMEM;
                snprintf(err, errlen, "out of memory");
                unlink(path);
                goto fail;
        }
        c->fd = fd;
        snprintf(c->path, sizeof(c->path), "%s", path);
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        c->gid = gid != (gid_t)-1 ? gid : getegid();
        c->sup = sup;
        c->hooks = *hooks;
        c->started_usec = sup_now();
        c->started_wall = time(NULL);
        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
                c->clients[i].fd = -1;
        *ret = c;
        return 0;
fail:
        close(fd);
        return r;
}

static void ctl_client_close(struct ctl_client *cl)
{
        if (cl->fd < 0)
                return;
        close(cl->fd);
        free(cl->in);
        free(cl->out);
        json_object_put(cl->id);
        *cl = (struct ctl_client){.fd = -1};
}

struct ctl *ctl_close(struct ctl *c)
{
        struct stat st;

        if (!c)
                return NULL;
        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
                ctl_client_close(&c->clients[i]);
        /* Only our own socket: another daemon may have taken the path over since. */
        if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
                unlink(c->path);
        close(c->fd);
        json_object_put(c->reload_errors);
        free(c);
        return NULL;
}

const char *ctl_path(const struct ctl *c)
{
        return c->path;
}

/* ------------------------------------------------------------------ replies */

/* Queues one reply line and takes obj. The client reads nothing more until it has left. */
static void ctl_reply(struct ctl_client *cl, json_object *obj, uint64_t now)
{
        const char *text;
        size_t len;
        char *out;

        if (cl->id)
                json_object_object_add(obj, "id", json_object_get(cl->id));
        text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE);
        len = text ? strlen(text) : 0;
        out = malloc(len + 1);
        if (!out) {
                json_object_put(obj);
                cl->state = CTL_CLOSING; /* nothing to say: close */
                return;
        }
        memcpy(out, text, len);
        out[len] = '\n';
        json_object_put(obj);
        free(cl->out);
        cl->out = out;
        cl->out_len = len + 1;
        cl->out_off = 0;
        cl->deadline = now + CTL_IO_TIMEOUT_USEC;
        if (cl->state != CTL_CLOSING)
                cl->state = CTL_READING;
}

static json_object *ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_object *ctl_error(const char *fmt, ...)
{
        json_object *o = json_object_new_object();
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "error", json_object_new_string(msg));
        return o;
}

static json_object *ctl_ok(void)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ok", json_object_new_boolean(1));
        return o;
}

/* ------------------------------------------------------------------ status */

static uint64_t ctl_statm_rss(pid_t pid)
{
        char path[64], buf[128];
        unsigned long long size, resident;
        long page = sysconf(_SC_PAGESIZE);
        ssize_t n;
        int fd;

        if (pid)
                snprintf(path, sizeof(path), "/proc/%ld/statm", (long)pid);
        else
                snprintf(path, sizeof(path), "/proc/self/statm");
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
                return 0;
        return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

static json_object *ctl_daemon_memory(void)
{
        json_object *m = json_object_new_object();

        json_object_object_add(m, "rss", json_object_new_uint64(ctl_statm_rss(0)));
#ifdef VKD_WITH_JEMALLOC
        uint64_t epoch = 1;
        size_t allocated = 0, resident = 0, sz = sizeof(epoch);

        mallctl("epoch", &epoch, &sz, &epoch, sz);
        sz = sizeof(size_t);
        if (mallctl("stats.allocated", &allocated, &sz, NULL, 0) == 0 &&
            mallctl("stats.resident", &resident, &sz, NULL, 0) == 0) {
                json_object_object_add(m, "allocator", json_object_new_string("jemalloc"));
                json_object_object_add(m, "allocated", json_object_new_uint64(allocated));
                json_object_object_add(m, "resident", json_object_new_uint64(resident));
                return m;
        }
#endif
        json_object_object_add(m, "allocator", json_object_new_string("libc"));
        return m;
}

static const char *ctl_worker_state(const struct worker *w)
{
        switch (w->state) {
        case WORKER_STARTING:
                return "starting";
        case WORKER_READY:
                return "ready";
        case WORKER_STOPPING:
                return "draining";
        case WORKER_DOWN:
        default:
                return "down";
        }
}

static const char *ctl_svc_state(const struct svc *v, const char **cause)
{
        unsigned ready = 0;

        *cause = NULL;
        if (v->failed) {
                *cause = "restart storm: more than 5 worker crashes within 10 s; "
                         "not restarted (reload or restart the service to try again)";
                return "failed";
        }
        if (v->disabled) {
                *cause = "could not start (Optional=yes: the others run without it)";
                return "failed";
        }
        if (v->gen->state == GEN_DRAINING)
                return "draining";
        for (unsigned j = 0; j < v->n_workers; j++)
                ready += v->workers[j].state == WORKER_READY;
        if (v->gen->state == GEN_STARTING || !ready)
                return "starting";
        return "running";
}

/* The svc to describe for each service name: the active generation's, else the newest. */
static const struct svc *ctl_pick(const struct sup *s, const char *name)
{
        const struct svc *best = NULL;

        for (const struct gen *g = s->gens; g; g = g->next)
                for (size_t i = 0; i < g->n_svcs; i++) {
                        const struct svc *v = &g->svcs[i];
                        if (strcmp(v->conf->name, name) != 0)
                                continue;
                        if (g->state == GEN_ACTIVE)
                                return v;
                        if (!best)
                                best = v;
                }
        return best;
}

static json_object *ctl_worker_json(const struct worker *w, uint64_t now, uint64_t *rss_sum)
{
        json_object *o = json_object_new_object();
        uint64_t rss = w->pid ? ctl_statm_rss(w->pid) : 0;

        *rss_sum += rss;
        json_object_object_add(o, "index", json_object_new_int64(w->index));
        json_object_object_add(o, "pid", json_object_new_int64(w->pid));
        json_object_object_add(o, "state", json_object_new_string(ctl_worker_state(w)));
        json_object_object_add(o, "generation", json_object_new_int64(w->svc->gen->id));
        json_object_object_add(o, "uptime_ms",
                               json_object_new_uint64(w->pid && now > w->started_at
                                                              ? (now - w->started_at) / 1000
                                                              : 0));
        json_object_object_add(o, "restarts", json_object_new_int64(w->restarts));
        json_object_object_add(o, "rss", json_object_new_uint64(rss));
        return o;
}

static json_object *ctl_service_json(const struct sup *s, const struct svc *v, uint64_t now)
{
        json_object *o = json_object_new_object(), *a, *m, *cnt, *lat, *hist;
        char mod_name[FIG_NAME_MAX] = "", mod_version[FIG_VERSION_MAX] = "";
        const char *cause, *state = ctl_svc_state(v, &cause);
        struct fig_values f;
        uint64_t rss = 0;
        unsigned restarts = 0, ready = 0;

        json_object_object_add(o, "name", json_object_new_string(v->conf->name));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "cause", cause ? json_object_new_string(cause) : NULL);
        json_object_object_add(o, "generation", json_object_new_int64(v->gen->id));
        json_object_object_add(o, "config", json_object_new_string(v->conf->file));

        a = json_object_new_array();
        for (size_t i = 0; i < v->n_ls; i++)
                json_object_array_add(a, json_object_new_string(v->ls[i]->bound));
        json_object_object_add(o, "listeners", a);

        /* What the module said about itself, from a worker of this generation that has run. */
        for (unsigned j = 0; j < 2 * v->n_workers && !mod_name[0]; j++)
                if (v->workers[j].pid)
                        fig_read_module(v->workers[j].fig, mod_name, mod_version);
        m = json_object_new_object();
        json_object_object_add(m, "name",
                               json_object_new_string(mod_name[0] ? mod_name : v->conf->module));
        json_object_object_add(m, "version",
                               mod_version[0] ? json_object_new_string(mod_version) : NULL);
        json_object_object_add(m, "file", json_object_new_string(v->conf->module));
        json_object_object_add(o, "module", m);
        json_object_object_add(
                o, "isolation",
                json_object_new_string(conf_isolation_to_string(v->conf->isolation)));

        /* Workers: this svc's own (also the ones waiting for a restart), then any live worker
         * of another generation running the same service (draining after a reload). */
        a = json_object_new_array();
        for (unsigned j = 0; j < 2 * v->n_workers; j++) {
                const struct worker *w = &v->workers[j];
                if (w->retired && !w->pid)
                        continue;
                if (!w->retired) {
                        restarts += w->restarts;
                        ready += w->state == WORKER_READY;
                }
                json_object_array_add(a, ctl_worker_json(w, now, &rss));
        }
        for (const struct gen *g = s->gens; g; g = g->next)
                for (size_t i = 0; i < g->n_svcs; i++) {
                        const struct svc *x = &g->svcs[i];
                        if (x == v || strcmp(x->conf->name, v->conf->name) != 0)
                                continue;
                        for (unsigned j = 0; j < 2 * x->n_workers; j++)
                                if (x->workers[j].pid)
                                        json_object_array_add(
                                                a, ctl_worker_json(&x->workers[j], now, &rss));
                }
        json_object_object_add(o, "workers", a);
        json_object_object_add(o, "workers_configured", json_object_new_int64(v->n_workers));
        json_object_object_add(o, "workers_ready", json_object_new_int64(ready));
        json_object_object_add(o, "restarts", json_object_new_int64(restarts));

        sup_figures(s, v->conf->name, &f);
        cnt = json_object_new_object();
        for (int i = 0; i < FIG_N_COUNTERS; i++)
                json_object_object_add(cnt, fig_counter_names[i], json_object_new_uint64(f.c[i]));
        json_object_object_add(o, "counters", cnt);
        lat = json_object_new_object();
        json_object_object_add(lat, "p50",
                               json_object_new_uint64(fig_latency_quantile_us(&f, 0.5)));
        json_object_object_add(lat, "p90",
                               json_object_new_uint64(fig_latency_quantile_us(&f, 0.9)));
        json_object_object_add(lat, "p99",
                               json_object_new_uint64(fig_latency_quantile_us(&f, 0.99)));
        json_object_object_add(lat, "p999",
                               json_object_new_uint64(fig_latency_quantile_us(&f, 0.999)));
        hist = json_object_new_array();
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++)
                json_object_array_add(hist, json_object_new_uint64(f.latency[i]));
        json_object_object_add(lat, "histogram", hist);
        json_object_object_add(lat, "sum", json_object_new_uint64(f.latency_sum_us));
        json_object_object_add(o, "latency_us", lat);

        m = json_object_new_object();
        json_object_object_add(m, "rss", json_object_new_uint64(rss));
        json_object_object_add(o, "memory", m);
        return o;
}

/* Calls fn for each service name once, in the order: the active generation's (by name), then
 * the ones only a starting or draining generation has. */
static void ctl_for_each_service(const struct sup *s, void (*fn)(void *, const struct svc *),
                                 void *ctx)
{
        const struct gen *active = sup_active(s);

        if (active)
                for (size_t i = 0; i < active->n_svcs; i++)
                        fn(ctx, &active->svcs[i]);
        for (const struct gen *g = s->gens; g; g = g->next) {
                if (g == active)
                        continue;
                for (size_t i = 0; i < g->n_svcs; i++) {
                        const struct svc *v = &g->svcs[i];
                        if (ctl_pick(s, v->conf->name) == v)
                                fn(ctx, v);
                }
        }
}

struct ctl_collect {
        const struct sup *sup;
        uint64_t now;
        json_object *array;
        json_object *only; /* array of names, or NULL for all */
        bool brief;
};

static void ctl_collect_one(void *ctx, const struct svc *v)
{
        struct ctl_collect *k = ctx;

        if (k->only) {
                bool wanted = false;
                for (size_t i = 0; i < json_object_array_length(k->only) && !wanted; i++)
                        wanted = strcmp(json_object_get_string(
                                                json_object_array_get_idx(k->only, i)),
                                        v->conf->name) == 0;
                if (!wanted)
                        return;
        }
        if (k->brief) {
                json_object *o = json_object_new_object(), *ls = json_object_new_array();
                const char *cause, *state = ctl_svc_state(v, &cause);

                json_object_object_add(o, "name", json_object_new_string(v->conf->name));
                json_object_object_add(o, "state", json_object_new_string(state));
                json_object_object_add(o, "module", json_object_new_string(v->conf->module));
                for (size_t i = 0; i < v->n_ls; i++)
                        json_object_array_add(ls, json_object_new_string(v->ls[i]->bound));
                json_object_object_add(o, "listeners", ls);
                json_object_object_add(o, "workers", json_object_new_int64(v->n_workers));
                json_object_array_add(k->array, o);
                return;
        }
        json_object_array_add(k->array, ctl_service_json(k->sup, v, k->now));
}

/* Control slots held now, the asking client's included. */
static size_t ctl_clients_in_use(const struct ctl *c)
{
        size_t n = 0;

        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
                n += c->clients[i].fd >= 0;
        return n;
}

static json_object *ctl_status(struct ctl *c, json_object *only, bool brief, uint64_t now)
{
        const struct gen *active = sup_active(c->sup);
        json_object *o = ctl_ok(), *d, *unknown;
        struct ctl_collect k = {.sup = c->sup, .now = now, .only = only, .brief = brief};

        if (!brief) {
                d = json_object_new_object();
                json_object_object_add(d, "pid", json_object_new_int64(getpid()));
                json_object_object_add(d, "version", json_object_new_string(VKD_VERSION));
                json_object_object_add(d, "state",
                                       json_object_new_string(c->hooks.state(c->hooks.ctx)));
                json_object_object_add(d, "uptime_ms",
                                       json_object_new_uint64((now - c->started_usec) / 1000));
                json_object_object_add(d, "started_at", json_object_new_int64(c->started_wall));
                json_object_object_add(d, "generation",
                                       json_object_new_int64(active ? active->id : 0));
                json_object_object_add(d, "workers",
                                       json_object_new_int64(sup_live_workers(c->sup)));
                json_object_object_add(d, "control_socket", json_object_new_string(c->path));
                json_object_object_add(d, "control_clients",
                                       json_object_new_int64((int64_t)ctl_clients_in_use(c)));
                json_object_object_add(d, "memory", ctl_daemon_memory());
                json_object_object_add(o, "daemon", d);
        }
        k.array = json_object_new_array();
        ctl_for_each_service(c->sup, ctl_collect_one, &k);
        json_object_object_add(o, "services", k.array);
        if (only) {
                unknown = json_object_new_array();
                for (size_t i = 0; i < json_object_array_length(only); i++) {
                        const char *name =
                                json_object_get_string(json_object_array_get_idx(only, i));
                        if (!ctl_pick(c->sup, name))
                                json_object_array_add(unknown, json_object_new_string(name));
                }
                json_object_object_add(o, "unknown_services", unknown);
        }
        return o;
}

/* ------------------------------------------------------------------ requests */

static struct svc *ctl_active_svc(const struct sup *s, const char *name)
{
        struct gen *g = sup_active(s);

        for (size_t i = 0; g && i < g->n_svcs; i++)
                if (strcmp(g->svcs[i].conf->name, name) == 0)
                        return &g->svcs[i];
        return NULL;
}

static json_object *ctl_reload_reply(const struct ctl *c)
{
        json_object *o;

        if (c->reload_ok)
                return ctl_ok();
        o = ctl_error("reload failed; the running configuration was kept");
        json_object_object_add(o, "errors", json_object_get(c->reload_errors));
        return o;
}

/* Checks that every element of a "services" array is a string. */
static void ctl_request(struct ctl *c, struct ctl_client *cl, const char *line, size_t len,
                        uint64_t now)
{
        struct ctl_req req;
        json_object *only;
        const char *cmd;
        char err[160];

        int pr = ctl_parse_request(line, len, &req, err, sizeof(err));
        if (req.id) {
                json_object_put(cl->id);
                cl->id = json_object_get(req.id);
        }
        if (pr < 0) {
                ctl_reply(cl, ctl_error("%s", err), now);
                ctl_req_free(&req);
                return;
        }
        cmd = req.command;
        only = req.services;

        if (strcmp(cmd, "status") == 0 || strcmp(cmd, "services") == 0) {
                if (!cl->may_read) {
                        ctl_reply(cl,
                                  ctl_error("permission denied: uid %u is not root, the daemon's "
                                            "user or in the control socket's group",
                                            (unsigned)cl->uid),
                                  now);
                } else {
                        ctl_reply(cl, ctl_status(c, only, cmd[1] == 'e', now), now);
                }
        } else if (strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0 ||
                   strcmp(cmd, "restart") == 0) {
                if (!cl->may_change) {
                        ctl_reply(cl,
                                  ctl_error("permission denied: %s is for root and the daemon's "
                                            "user (uid %u), not uid %u",
                                            cmd, (unsigned)geteuid(), (unsigned)cl->uid),
                                  now);
                } else if (cmd[2] == 'l') { /* reload */
                        int64_t t = c->hooks.reload(c->hooks.ctx);
                        if (t < 0) {
                                ctl_reply(cl, ctl_error("cannot reload: the daemon is stopping"),
                                          now);
                        } else if (t <= c->reload_done) {
                                ctl_reply(cl, ctl_reload_reply(c), now);
                        } else {
                                cl->state = CTL_WAIT_RELOAD;
                                cl->ticket = t;
                        }
                } else if (cmd[0] == 's') { /* stop */
                        ctl_reply(cl, ctl_ok(), now);
                        cl->state = CTL_CLOSING;
                        c->hooks.stop(c->hooks.ctx);
                } else { /* restart */
                        struct svc *sv;
                        const char *name;
                        int r;

                        if (!req.service) {
                                ctl_reply(cl, ctl_error("restart: no \"service\" name"), now);
                        } else if (!(sv = ctl_active_svc(c->sup, name = req.service))) {
                                json_object *e =
                                        ctl_error("restart: no running service \"%.64s\"", name);
                                json_object_object_add(
                                        e, "unknown_service",
                                        json_object_new_boolean(!ctl_pick(c->sup, name)));
                                ctl_reply(cl, e, now);
                        } else if ((r = svc_restart(c->sup, sv, now)) < 0) {
                                ctl_reply(cl,
                                          ctl_error("restart %s: %s", name,
                                                    r == -EBUSY ? "the workers of the previous "
                                                                  "restart are still draining"
                                                                : "the daemon is reloading or "
                                                                  "stopping"),
                                          now);
                        } else {
                                cl->state = CTL_WAIT_RESTART;
                                snprintf(cl->service, sizeof(cl->service), "%s", name);
                                cl->gen_id = sv->gen->id;
                                cl->deadline = now + CTL_RESTART_TIMEOUT_USEC;
                        }
                }
        } else {
                ctl_reply(cl, ctl_error("unknown command \"%.64s\"", cmd), now);
        }
        ctl_req_free(&req);
}

/* Takes the next complete line out of the input, if any, and acts on it. */
static void ctl_client_process(struct ctl *c, struct ctl_client *cl, uint64_t now)
{
        char *nl;
        size_t len;

        if (cl->state != CTL_READING || cl->out_len)
                return;
        nl = cl->in_len ? memchr(cl->in, '\n', cl->in_len) : NULL;
        if (!nl) {
                if (cl->in_len > CTL_LINE_MAX) {
                        ctl_reply(cl, ctl_error("request longer than %d bytes", CTL_LINE_MAX), now);
                        cl->state = CTL_CLOSING;
                } else if (cl->eof && cl->in_len) {
                        /* a last request without its newline */
                        ctl_request(c, cl, cl->in, cl->in_len, now);
                        cl->in_len = 0;
                        if (cl->state == CTL_READING)
                                cl->state = CTL_CLOSING;
                } else if (cl->eof) {
                        ctl_client_close(cl);
                }
                return;
        }
        len = (size_t)(nl - cl->in);
        if (len > CTL_LINE_MAX) {
                ctl_reply(cl, ctl_error("request longer than %d bytes", CTL_LINE_MAX), now);
                cl->state = CTL_CLOSING;
                return;
        }
        ctl_request(c, cl, cl->in, len, now);
        cl->in_len -= len + 1;
        memmove(cl->in, nl + 1, cl->in_len);
        if (cl->eof && cl->state == CTL_READING && !memchr(cl->in, '\n', cl->in_len) && !cl->in_len)
                cl->state = CTL_CLOSING;
}

/* ------------------------------------------------------------------ I/O */

static void ctl_peer(struct ctl *c, struct ctl_client *cl)
{
        struct ucred cr;
        socklen_t len = sizeof(cr);

        if (getsockopt(cl->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
                return; /* neither right */
        cl->uid = cr.uid;
        cl->gid = cr.gid;
        cl->pid = cr.pid;
        cl->may_change = cr.uid == 0 || cr.uid == geteuid();
        cl->may_read = cl->may_change || cr.gid == c->gid;
#ifdef SO_PEERGROUPS
        if (!cl->may_read) {
                gid_t groups[CTL_GROUPS_MAX];
                socklen_t glen = sizeof(groups);

                if (getsockopt(cl->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
                        for (size_t i = 0; i < glen / sizeof(gid_t) && !cl->may_read; i++)
                                cl->may_read = groups[i] == c->gid;
        }
#endif
}

static void ctl_client_event(struct ctl *c, struct ctl_client *cl, short revents, uint64_t now);

/* Gives back the slots of clients that hung up since the last poll(): a burst of clients that
 * connect and leave at once is accepted in one go, and the dead ones would otherwise hold the
 * slots a live client in the same burst needs. A hung-up client's buffered requests are
 * handled as they would be on its next poll() (a reload it asked for still runs). */
static void ctl_reap_hangups(struct ctl *c, uint64_t now)
{
        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++) {
                struct ctl_client *cl = &c->clients[i];
                struct pollfd p = {.fd = cl->fd, .events = POLLIN};

                if (cl->fd < 0 || poll(&p, 1, 0) <= 0 || !(p.revents & (POLLHUP | POLLERR)))
                        continue;
                ctl_client_event(c, cl, p.revents, now);
        }
}

static struct ctl_client *ctl_free_slot(struct ctl *c)
{
        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
                if (c->clients[i].fd < 0)
                        return &c->clients[i];
        return NULL;
}

static void ctl_accept(struct ctl *c, uint64_t now)
{
        for (;;) {
                int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                struct ctl_client *cl = NULL;

                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                log_warning(NULL, "control socket: accept: %s", strerror(errno));
                        return;
                }
                cl = ctl_free_slot(c);
                if (!cl) {
                        ctl_reap_hangups(c, now);
                        cl = ctl_free_slot(c);
                }
                if (!cl) {
                        static const char busy[] =
                                "{\"ok\":false,\"error\":\"too many control clients\"}\n";
                        if (write(fd, busy, sizeof(busy) - 1) < 0) {
                                /* it goes away either way */
                        }
                        close(fd);
                        continue;
                }
                *cl = (struct ctl_client){.fd = fd, .state = CTL_READING};
                cl->deadline = now + CTL_IO_TIMEOUT_USEC;
                ctl_peer(c, cl);
        }
}

static void ctl_client_read(struct ctl_client *cl)
{
        while (!cl->eof && cl->in_len <= CTL_LINE_MAX) {
                char *p = realloc(cl->in, cl->in_len + CTL_READ_CHUNK);
                ssize_t n;

                if (!p)
                        return;
                cl->in = p;
                n = read(cl->fd, cl->in + cl->in_len, CTL_READ_CHUNK);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (n <= 0) {
                        cl->eof = true; /* or an error: nothing more comes */
                        return;
                }
                cl->in_len += (size_t)n;
                if (memchr(cl->in + cl->in_len - n, '\n', (size_t)n))
                        return; /* enough for now: one request at a time */
        }
}

/* Writes what the socket takes. Returns false when the client is gone (closed). */
static bool ctl_client_write(struct ctl_client *cl, uint64_t now)
{
        while (cl->out_off < cl->out_len) {
                ssize_t n = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return true;
                if (n <= 0) {
                        ctl_client_close(cl);
                        return false;
                }
                cl->out_off += (size_t)n;
                cl->deadline = now + CTL_IO_TIMEOUT_USEC;
        }
        free(cl->out);
        cl->out = NULL;
        cl->out_len = cl->out_off = 0;
        if (cl->state == CTL_CLOSING) {
                ctl_client_close(cl);
                return false;
        }
        return true;
}

/* Moves a client on as far as it can go without blocking. */
static void ctl_client_run(struct ctl *c, struct ctl_client *cl, uint64_t now)
{
        for (int round = 0; round < 4 && cl->fd >= 0; round++) {
                if (cl->out_len && !ctl_client_write(cl, now))
                        return;
                if (cl->out_len)
                        return; /* waits for POLLOUT */
                if (cl->state != CTL_READING && cl->state != CTL_CLOSING)
                        return;
                if (cl->state == CTL_CLOSING) {
                        ctl_client_close(cl);
                        return;
                }
                ctl_client_process(c, cl, now);
                if (!cl->out_len)
                        return;
        }
}

size_t ctl_nfds(const struct ctl *c)
{
        return c ? 1 + CTL_CLIENTS_MAX : 0;
}

size_t ctl_pollfds(struct ctl *c, struct pollfd *fds, size_t cap)
{
        size_t n = 0;

        if (!c || !cap)
                return 0;
        fds[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
        for (size_t i = 0; i < CTL_CLIENTS_MAX && n < cap; i++) {
                struct ctl_client *cl = &c->clients[i];
                short ev = 0;

                if (cl->fd < 0)
                        continue;
                if (cl->out_len)
                        ev = POLLOUT;
                else if (cl->state == CTL_READING && !cl->eof)
                        ev = POLLIN;
                fds[n++] = (struct pollfd){.fd = cl->fd, .events = ev};
        }
        return n;
}

static struct ctl_client *ctl_client_by_fd(struct ctl *c, int fd)
{
        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++)
                if (c->clients[i].fd == fd)
                        return &c->clients[i];
        return NULL;
}

/* What poll() said about a client's socket. */
static void ctl_client_event(struct ctl *c, struct ctl_client *cl, short revents, uint64_t now)
{
        if (revents & (POLLERR | POLLNVAL)) {
                ctl_client_close(cl);
                return;
        }
        if (revents & (POLLIN | POLLHUP)) {
                if (cl->state == CTL_READING)
                        ctl_client_read(cl);
                else if (!cl->out_len && (revents & POLLHUP))
                        cl->eof = true; /* gone while it waited: reply into the void */
        }
        ctl_client_run(c, cl, now);
}

void ctl_on_poll(struct ctl *c, const struct pollfd *fds, size_t n, uint64_t now)
{
        bool accept = false;

        /* The clients first, the listening socket last: a client that hung up gives its slot
         * back before a new one is counted against the limit. Accepting first turned a new
         * client away as "too many" while the slots it needed were free in the same wake-up
         * (every slot taken, then all but one closed at once). */
        for (size_t i = 0; c && i < n; i++) {
                struct ctl_client *cl;

                if (!fds[i].revents)
                        continue;
                if (fds[i].fd == c->fd) {
                        accept = true;
                        continue;
                }
                cl = ctl_client_by_fd(c, fds[i].fd);
                if (cl)
                        ctl_client_event(c, cl, fds[i].revents, now);
        }
        if (accept)
                ctl_accept(c, now);
}

/* Whether a client has a request buffered that it is ready to have handled. */
static bool ctl_client_has_work(const struct ctl_client *cl)
{
        return cl->fd >= 0 && cl->state == CTL_READING && !cl->out_len &&
               (cl->eof || (cl->in_len && memchr(cl->in, '\n', cl->in_len)));
}

void ctl_timers(struct ctl *c, uint64_t now)
{
        for (size_t i = 0; c && i < CTL_CLIENTS_MAX; i++) {
                struct ctl_client *cl = &c->clients[i];

                if (ctl_client_has_work(cl))
                        ctl_client_run(c, cl, now); /* pipelined requests, a few per turn */
                if (cl->fd < 0)
                        continue;
                if (cl->state == CTL_WAIT_RESTART) {
                        struct svc *v = ctl_active_svc(c->sup, cl->service);
                        int r = v && v->gen->id == cl->gen_id ? svc_check_started(v) : -1;

                        if (r > 0)
                                ctl_reply(cl, ctl_ok(), now);
                        else if (r < 0)
                                ctl_reply(cl,
                                          ctl_error("restart %s: the new workers did not start "
                                                    "(see the daemon's log)",
                                                    cl->service),
                                          now);
                        else if (now >= cl->deadline)
                                ctl_reply(cl,
                                          ctl_error("restart %s: the new workers are not ready "
                                                    "yet; still trying",
                                                    cl->service),
                                          now);
                        ctl_client_run(c, cl, now);
                        continue;
                }
                if (cl->state == CTL_WAIT_RELOAD)
                        continue; /* a reload always ends, within the worker start timeout */
                if (now < cl->deadline)
                        continue;
                if (!cl->out_len) {
                        /* Silent: say why, if the socket takes it, and go. */
                        cl->state = CTL_CLOSING;
                        ctl_reply(cl, ctl_error("timed out waiting for a request"), now);
                        ctl_client_write(cl, now);
                }
                if (cl->fd >= 0)
                        ctl_client_close(cl);
        }
}

int ctl_next_timeout_ms(const struct ctl *c, uint64_t now)
{
        uint64_t next = UINT64_MAX;

        for (size_t i = 0; c && i < CTL_CLIENTS_MAX; i++) {
                const struct ctl_client *cl = &c->clients[i];

                if (cl->fd < 0 || cl->state == CTL_WAIT_RELOAD)
                        continue;
                if (ctl_client_has_work(cl))
                        return 0;
                if (cl->state == CTL_WAIT_RESTART)
                        return 50; /* the workers' readiness has no event of its own here */
                if (cl->deadline < next)
                        next = cl->deadline;
        }
        if (next == UINT64_MAX)
                return -1;
        if (next <= now)
                return 0;
        return (int)((next - now + 999) / 1000);
}

void ctl_reload_done(struct ctl *c, int64_t ticket, bool ok, char *const *errors, size_t n)
{
        uint64_t now = sup_now();

        if (!c)
                return;
        json_object_put(c->reload_errors);
        c->reload_errors = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(c->reload_errors, json_object_new_string(errors[i]));
        c->reload_ok = ok;
        if (ticket > c->reload_done)
                c->reload_done = ticket;
        for (size_t i = 0; i < CTL_CLIENTS_MAX; i++) {
                struct ctl_client *cl = &c->clients[i];

                if (cl->fd < 0 || cl->state != CTL_WAIT_RELOAD || cl->ticket > c->reload_done)
                        continue;
                ctl_reply(cl, ctl_reload_reply(c), now);
                ctl_client_run(c, cl, now);
        }
}

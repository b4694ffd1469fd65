/*
 * vkdctl: talks to a running vkd over its control socket (one JSON object a line each way, see
 * docs/control-protocol.md) and shows the answer the way systemctl does, or passes the daemon's
 * JSON through with --json. Exit codes follow LSB: for status 0 running, 3 not running, 4
 * unknown (service or privilege); for check 0 yes, 1 not ready, 4 no permission, 7 vkd does not
 * answer; for the other commands 0 done, 1 failed, 4 not allowed, 7 the daemon is not running.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/vkd/control.sock"
#define REPLY_MAX (64 * 1024 * 1024)

enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_RUNNING = 3, /* status */
        EXIT_UNKNOWN = 4,     /* status: unknown service; others: insufficient privilege */
        EXIT_DAEMON_DOWN = 7, /* other commands: the daemon is not running */
};

struct opts {
        const char *socket;
        bool json;
        bool color;
        bool no_wait;
        int timeout_ms;
};

static const char *c_on(const struct opts *o, const char *code)
{
        return o->color ? code : "";
}
#define C_RESET(o) c_on(o, "\033[0m")
#define C_BOLD(o) c_on(o, "\033[1m")
#define C_RED(o) c_on(o, "\033[1;31m")
#define C_GREEN(o) c_on(o, "\033[1;32m")
#define C_YELLOW(o) c_on(o, "\033[1;33m")
#define C_GREY(o) c_on(o, "\033[2m")

static void usage(FILE *f)
{
        fprintf(f,
                "usage: vkdctl [--socket PATH] [--json] COMMAND\n"
                "\n"
                "Commands:\n"
                "  status [SERVICE...]  the daemon and its services, with live figures\n"
                "  services             the services, one line each\n"
                "  metrics              the figures in the Prometheus text format 0.0.4\n"
                "  reload               reload the configuration (like SIGHUP) and wait for the\n"
                "                       result; on errors the running configuration is kept\n"
                "  stop                 drain and stop the daemon, and wait until it is gone\n"
                "  restart SERVICE      drain and restart the workers of one service\n"
                "  check [ready|live]   for probes: ready (the default) when every service\n"
                "                       accepts with all its workers and vkd is not stopping;\n"
                "                       live when vkd answers at all, draining included\n"
                "\n"
                "Options:\n"
                "  -s, --socket PATH    the control socket (default: $VKD_CONTROL_SOCKET, else\n"
                "                       the first that exists of %s,\n"
                "                       $XDG_RUNTIME_DIR/vkd/control.sock, ./vkd.control.sock)\n"
                "  -j, --json           print the daemon's reply as JSON (one line)\n"
                "      --no-wait        stop: do not wait for the daemon to exit\n"
                "  -t, --timeout SEC    how long to wait for an answer (default 10; 120 for\n"
                "                       reload, restart and stop)\n"
                "  -h, --help           this text\n"
                "\n"
                "Exit status (LSB): status: 0 running, 3 not running, 4 unknown service or no\n"
                "permission; check: 0 ready (live), 1 not ready, 4 no permission, 7 vkd does\n"
                "not answer; others: 0 done, 1 failed, 4 not allowed, 7 daemon not running.\n",
                DEFAULT_SOCKET);
}

static bool exists(const char *path)
{
        struct stat st;

        return stat(path, &st) == 0;
}

/* The socket to use when none was given: see --help. The result is static or from getenv. */
static const char *default_socket(void)
{
        static char buf[4096];
        const char *env = getenv("VKD_CONTROL_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");

        if (env && env[0])
                return env;
        if (exists(DEFAULT_SOCKET))
                return DEFAULT_SOCKET;
        if (xdg && xdg[0] == '/') {
                snprintf(buf, sizeof(buf), "%s/vkd/control.sock", xdg);
                if (exists(buf))
                        return buf;
        }
        if (exists("vkd.control.sock"))
                return "vkd.control.sock";
        return DEFAULT_SOCKET;
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connects; returns the fd or -errno. */
static int ctl_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

/* Sends one request and reads one reply line within timeout_ms. Returns 0 and *ret (caller
 * frees with json_object_put) or -errno with a message printed. */
static int ctl_call(const struct opts *o, json_object *req, json_object **ret)
{
        const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        int64_t deadline = now_ms() + o->timeout_ms;
        size_t len = strlen(text), off = 0, cap = 0, have = 0;
        char *buf = NULL, *line = NULL, *nl = NULL;
        int fd, r = 0;

        fd = ctl_connect(o->socket);
        if (fd < 0)
                return fd;
        line = malloc(len + 1);
        if (!line) {
                close(fd);
                return -ENOMEM;
        }
        memcpy(line, text, len);
        line[len++] = '\n';
        while (off < len) {
                ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        fprintf(stderr, "vkdctl: %s: %s\n", o->socket, strerror(errno));
                        goto out;
                }
                off += (size_t)n;
        }
        while (!nl) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int64_t left = deadline - now_ms();
                ssize_t n;

                if (left <= 0 || poll(&p, 1, (int)left) == 0) {
                        fprintf(stderr, "vkdctl: no answer from %s within %d s\n", o->socket,
                                o->timeout_ms / 1000);
                        r = -ETIMEDOUT;
                        goto out;
                }
                if (have + 4096 + 1 > cap) {
                        char *p2;
                        if (cap >= REPLY_MAX) {
                                fprintf(stderr, "vkdctl: answer too long\n");
                                r = -EMSGSIZE;
                                goto out;
                        }
                        cap = cap ? cap * 2 : 65536;
                        p2 = realloc(buf, cap);
                        if (!p2) {
                                r = -ENOMEM;
                                goto out;
                        }
                        buf = p2;
                }
                n = read(fd, buf + have, cap - have - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        fprintf(stderr, "vkdctl: %s closed the connection without an answer\n",
                                o->socket);
                        r = -ECONNRESET;
                        goto out;
                }
                nl = memchr(buf + have, '\n', (size_t)n);
                have += (size_t)n;
        }
        *nl = 0;
        *ret = json_tokener_parse(buf);
        if (!*ret || !json_object_is_type(*ret, json_type_object)) {
                json_object_put(*ret);
                *ret = NULL;
                fprintf(stderr, "vkdctl: the daemon's answer is not a JSON object\n");
                r = -EBADMSG;
        }
out:
        free(line);
        free(buf);
        close(fd);
        return r;
}

/* ------------------------------------------------------------------ formatting */

static json_object *get(json_object *o, const char *key)
{
        json_object *v = NULL;

        if (o)
                json_object_object_get_ex(o, key, &v);
        return v;
}

static const char *get_str(json_object *o, const char *key, const char *dflt)
{
        json_object *v = get(o, key);

        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : dflt;
}

static uint64_t get_u64(json_object *o, const char *key)
{
        json_object *v = get(o, key);

        return v ? json_object_get_uint64(v) : 0;
}

static const char *fmt_bytes(uint64_t b, char *buf, size_t size)
{
        static const char units[] = "BKMGTP";
        double v = (double)b;
        int u = 0;

        while (v >= 1024 && u < 5) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", (unsigned long long)b);
        else
                snprintf(buf, size, "%.1f%c", v, units[u]);
        return buf;
}

static const char *fmt_duration(uint64_t ms, char *buf, size_t size)
{
        uint64_t s = ms / 1000;

        if (s < 60)
                snprintf(buf, size, "%llu.%llus", (unsigned long long)s,
                         (unsigned long long)(ms % 1000 / 100));
        else if (s < 3600)
                snprintf(buf, size, "%llumin %llus", (unsigned long long)(s / 60),
                         (unsigned long long)(s % 60));
        else if (s < 86400)
                snprintf(buf, size, "%lluh %llumin", (unsigned long long)(s / 3600),
                         (unsigned long long)(s % 3600 / 60));
        else
                snprintf(buf, size, "%llud %lluh", (unsigned long long)(s / 86400),
                         (unsigned long long)(s % 86400 / 3600));
        return buf;
}

static const char *fmt_latency(uint64_t us, char *buf, size_t size)
{
        if (!us)
                snprintf(buf, size, "-");
        else if (us < 1000)
                snprintf(buf, size, "<%lluus", (unsigned long long)us);
        else if (us < 1000000)
                snprintf(buf, size, "<%.1fms", (double)us / 1000);
        else
                snprintf(buf, size, "<%.1fs", (double)us / 1e6);
        return buf;
}

static const char *state_color(const struct opts *o, const char *state)
{
        if (strcmp(state, "running") == 0)
                return C_GREEN(o);
        if (strcmp(state, "failed") == 0 || strcmp(state, "down") == 0)
                return C_RED(o);
        return C_YELLOW(o);
}

static void print_daemon(const struct opts *o, json_object *d)
{
        json_object *mem = get(d, "memory");
        const char *state = get_str(d, "state", "?");
        char a[32], b[32], c[32];
        time_t started = (time_t)get_u64(d, "started_at");
        struct tm tm;
        char when[64] = "";

        if (localtime_r(&started, &tm))
                strftime(when, sizeof(when), "%a %Y-%m-%d %H:%M:%S %Z", &tm);
        printf("%s●%s vkd - M:N virtual kernel daemon (version %s)\n", state_color(o, state),
               C_RESET(o), get_str(d, "version", "?"));
        printf("     State: %s%s%s since %s; %s ago\n", state_color(o, state), state, C_RESET(o),
               when, fmt_duration(get_u64(d, "uptime_ms"), a, sizeof(a)));
        printf("       PID: %llu (supervisor), %llu worker(s)\n",
               (unsigned long long)get_u64(d, "pid"), (unsigned long long)get_u64(d, "workers"));
        printf("Generation: %llu\n", (unsigned long long)get_u64(d, "generation"));
        if (get(mem, "allocated"))
                printf("    Memory: %s rss (%s: %s allocated, %s resident)\n",
                       fmt_bytes(get_u64(mem, "rss"), a, sizeof(a)), get_str(mem, "allocator", "?"),
                       fmt_bytes(get_u64(mem, "allocated"), b, sizeof(b)),
                       fmt_bytes(get_u64(mem, "resident"), c, sizeof(c)));
        else
                printf("    Memory: %s rss\n", fmt_bytes(get_u64(mem, "rss"), a, sizeof(a)));
        printf("   Control: %s\n", get_str(d, "control_socket", "?"));
}

static void print_service(const struct opts *o, json_object *s)
{
        const char *state = get_str(s, "state", "?"), *cause = get_str(s, "cause", NULL);
        json_object *mod = get(s, "module"), *ls = get(s, "listeners"), *ws = get(s, "workers");
        json_object *cnt = get(s, "counters"), *lat = get(s, "latency_us");
        char a[32], b[32], c[32], d[32];
        size_t n;

        printf("\n%s●%s %s%s%s - %s%s%s\n", state_color(o, state), C_RESET(o), C_BOLD(o),
               get_str(s, "name", "?"), C_RESET(o), state_color(o, state), state, C_RESET(o));
        if (cause)
                printf("     Cause: %s\n", cause);
        printf("    Module: %s %s (Isolation=%s)\n", get_str(mod, "name", "?"),
               get_str(mod, "version", ""), get_str(s, "isolation", "?"));
        n = ls ? json_object_array_length(ls) : 0;
        for (size_t i = 0; i < n; i++)
                printf("%s%s\n", i ? "            " : "    Listen: ",
                       json_object_get_string(json_object_array_get_idx(ls, i)));
        printf("    Config: %s (generation %llu)\n", get_str(s, "config", "?"),
               (unsigned long long)get_u64(s, "generation"));
        printf("   Workers: %llu/%llu ready, %llu restart(s)\n",
               (unsigned long long)get_u64(s, "workers_ready"),
               (unsigned long long)get_u64(s, "workers_configured"),
               (unsigned long long)get_u64(s, "restarts"));
        n = ws ? json_object_array_length(ws) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *w = json_object_array_get_idx(ws, i);
                const char *wst = get_str(w, "state", "?");

                printf("            %s%s %-7llu %s%-8s%s #%llu gen %llu up %-10s %llu restart(s) "
                       "%s rss\n",
                       C_GREY(o), i + 1 < n ? "├─" : "└─", (unsigned long long)get_u64(w, "pid"),
                       state_color(o, strcmp(wst, "ready") == 0 ? "running" : wst), wst, C_GREY(o),
                       (unsigned long long)get_u64(w, "index"),
                       (unsigned long long)get_u64(w, "generation"),
                       fmt_duration(get_u64(w, "uptime_ms"), a, sizeof(a)),
                       (unsigned long long)get_u64(w, "restarts"),
                       fmt_bytes(get_u64(w, "rss"), b, sizeof(b)));
                printf("%s", C_RESET(o));
        }
        printf("     Conns: %llu accepted, %llu active, %llu closed; %llu request(s)\n",
               (unsigned long long)get_u64(cnt, "accepted"),
               (unsigned long long)get_u64(cnt, "active"),
               (unsigned long long)get_u64(cnt, "closed"),
               (unsigned long long)get_u64(cnt, "requests"));
        /* A module's own process (a store, say) is no connection: shown apart. */
        if (get_u64(cnt, "service_procs") || get_u64(cnt, "service_ends"))
                printf("   Service: %llu process(es) running, %s%llu%s ended unasked\n",
                       (unsigned long long)get_u64(cnt, "service_procs"),
                       get_u64(cnt, "service_ends") ? C_RED(o) : "",
                       (unsigned long long)get_u64(cnt, "service_ends"),
                       get_u64(cnt, "service_ends") ? C_RESET(o) : "");
        /* Isolation's cost: each change is a system call (a TLB flush when it
         * takes access away) unless protection keys do it. */
        uint64_t req = get_u64(cnt, "requests"), prot = get_u64(cnt, "protects");
        if (req)
                printf(" Isolation: %llu protection change(s), %.2f per request\n",
                       (unsigned long long)prot, (double)prot / (double)req);
        else
                printf(" Isolation: %llu protection change(s)\n", (unsigned long long)prot);
        printf("     Bytes: %s in, %s out\n", fmt_bytes(get_u64(cnt, "bytes_in"), a, sizeof(a)),
               fmt_bytes(get_u64(cnt, "bytes_out"), b, sizeof(b)));
        printf("    Errors: %s%llu%s error(s): %llu fault(s), %llu cpu kill(s), %llu out of "
               "heap, %llu timeout(s)\n",
               get_u64(cnt, "errors") ? C_RED(o) : "", (unsigned long long)get_u64(cnt, "errors"),
               get_u64(cnt, "errors") ? C_RESET(o) : "", (unsigned long long)get_u64(cnt, "faults"),
               (unsigned long long)get_u64(cnt, "cpu_kills"),
               (unsigned long long)get_u64(cnt, "nomem"),
               (unsigned long long)get_u64(cnt, "timeouts"));
        printf("   Latency: p50 %s, p90 %s, p99 %s, p99.9 %s\n",
               fmt_latency(get_u64(lat, "p50"), a, sizeof(a)),
               fmt_latency(get_u64(lat, "p90"), b, sizeof(b)),
               fmt_latency(get_u64(lat, "p99"), c, sizeof(c)),
               fmt_latency(get_u64(lat, "p999"), d, sizeof(d)));
        printf("    Memory: %s rss (workers)\n",
               fmt_bytes(get_u64(get(s, "memory"), "rss"), a, sizeof(a)));
}

/* ------------------------------------------------------------------ commands */

static void print_json(json_object *o)
{
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
}

static bool reply_ok(json_object *r)
{
        json_object *ok = get(r, "ok");

        return ok && json_object_get_boolean(ok);
}

static bool is_permission_error(json_object *r)
{
        return strncmp(get_str(r, "error", ""), "permission denied", 17) == 0;
}

/* Explains a failed connect; returns the exit code for it. */
static int not_reachable(const struct opts *o, int r, bool is_status, bool is_stop)
{
        if (r == -ENOENT || r == -ECONNREFUSED) {
                if (!o->json || !is_status)
                        fprintf(stderr, "vkdctl: vkd is not running (no daemon on %s)\n",
                                o->socket);
                else
                        printf("{\"ok\":false,\"error\":\"not running\"}\n");
                return is_status ? EXIT_NOT_RUNNING : is_stop ? EXIT_OK : EXIT_DAEMON_DOWN;
        }
        if (r == -EACCES || r == -EPERM) {
                fprintf(stderr,
                        "vkdctl: %s: permission denied (root, vkd's user and the members of the "
                        "socket's group may talk to vkd)\n",
                        o->socket);
                return EXIT_UNKNOWN;
        }
        if (r < 0 && r != -ETIMEDOUT && r != -ECONNRESET && r != -EBADMSG && r != -EMSGSIZE)
                fprintf(stderr, "vkdctl: %s: %s\n", o->socket, strerror(-r));
        return is_status ? EXIT_UNKNOWN : EXIT_FAIL;
}

static int cmd_status(const struct opts *o, char **names, int n_names)
{
        json_object *req = json_object_new_object(), *rep = NULL, *svcs, *unknown;
        int r, code = EXIT_OK;

        json_object_object_add(req, "command", json_object_new_string("status"));
        if (n_names) {
                json_object *a = json_object_new_array();
                for (int i = 0; i < n_names; i++)
                        json_object_array_add(a, json_object_new_string(names[i]));
                json_object_object_add(req, "services", a);
        }
        r = ctl_call(o, req, &rep);
        json_object_put(req);
        if (r < 0)
                return not_reachable(o, r, true, false);
        if (!reply_ok(rep)) {
                if (o->json)
                        print_json(rep);
                else
                        fprintf(stderr, "vkdctl: %s\n", get_str(rep, "error", "failed"));
                code = EXIT_UNKNOWN; /* the status could not be learnt */
                goto out;
        }
        svcs = get(rep, "services");
        unknown = get(rep, "unknown_services");
        if (o->json) {
                print_json(rep);
        } else {
                print_daemon(o, get(rep, "daemon"));
                for (size_t i = 0; svcs && i < json_object_array_length(svcs); i++)
                        print_service(o, json_object_array_get_idx(svcs, i));
        }
        if (!n_names) {
                const char *st = get_str(get(rep, "daemon"), "state", "");
                code = strcmp(st, "stopping") == 0 ? EXIT_NOT_RUNNING : EXIT_OK;
                goto out;
        }
        for (size_t i = 0; svcs && i < json_object_array_length(svcs); i++)
                if (strcmp(get_str(json_object_array_get_idx(svcs, i), "state", ""), "running"))
                        code = EXIT_NOT_RUNNING;
        if (unknown && json_object_array_length(unknown)) {
                for (size_t i = 0; i < json_object_array_length(unknown); i++)
                        fprintf(stderr, "vkdctl: no such service: %s\n",
                                json_object_get_string(json_object_array_get_idx(unknown, i)));
                code = EXIT_UNKNOWN;
        }
out:
        json_object_put(rep);
        return code;
}

static int cmd_services(const struct opts *o)
{
        json_object *req = json_object_new_object(), *rep = NULL, *svcs;
        int r, code = EXIT_OK;

        json_object_object_add(req, "command", json_object_new_string("services"));
        r = ctl_call(o, req, &rep);
        json_object_put(req);
        if (r < 0)
                return not_reachable(o, r, true, false);
        if (o->json)
                print_json(rep);
        if (!reply_ok(rep)) {
                if (!o->json)
                        fprintf(stderr, "vkdctl: %s\n", get_str(rep, "error", "failed"));
                json_object_put(rep);
                return EXIT_UNKNOWN;
        }
        svcs = get(rep, "services");
        if (!o->json) {
                printf("%s%-20s %-9s %-16s %7s  %s%s\n", C_BOLD(o), "SERVICE", "STATE", "MODULE",
                       "WORKERS", "LISTEN", C_RESET(o));
                for (size_t i = 0; svcs && i < json_object_array_length(svcs); i++) {
                        json_object *s = json_object_array_get_idx(svcs, i), *ls;
                        const char *st = get_str(s, "state", "?");

                        printf("%-20s %s%-9s%s %-16s %7llu  ", get_str(s, "name", "?"),
                               state_color(o, st), st, C_RESET(o), get_str(s, "module", "?"),
                               (unsigned long long)get_u64(s, "workers"));
                        ls = get(s, "listeners");
                        for (size_t j = 0; ls && j < json_object_array_length(ls); j++)
                                printf("%s%s", j ? " " : "",
                                       json_object_get_string(json_object_array_get_idx(ls, j)));
                        printf("\n");
                }
        }
        json_object_put(rep);
        return code;
}

/* ------------------------------------------------------------------ metrics */

/*
 * metrics: the status as the Prometheus text exposition format 0.0.4, for a scraper that reads
 * files (node_exporter's textfile collector) or a pipe. Names follow Prometheus conventions:
 * counters end in _total, durations are seconds and sizes bytes; every per-service series has
 * the label service, per-worker series also worker (the worker's index) and generation.
 */

/* A label value with \, " and newline escaped, as the format wants. Static buffer: one value
 * per printf argument list at a time. */
static const char *prom_label(const char *v)
{
        static char buf[4 * 256 + 1];
        size_t n = 0;

        for (; *v && n + 2 < sizeof(buf); v++) {
                if (*v == '\\' || *v == '"' || *v == '\n') {
                        buf[n++] = '\\';
                        buf[n++] = *v == '\n' ? 'n' : *v;
                } else
                        buf[n++] = *v;
        }
        buf[n] = '\0';
        return buf;
}

static void prom_head(const char *name, const char *type, const char *help)
{
        printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One series per service of the counter (or gauge) key of the status' "counters" object. */
struct prom_counter {
        const char *key, *name, *type, *help;
};

static const struct prom_counter prom_counters[] = {
        {"accepted", "vkd_connections_accepted_total", "counter", "Connections accepted."},
        {"active", "vkd_connections_active", "gauge", "Connections open now."},
        {"closed", "vkd_connections_closed_total", "counter", "Connections ended."},
        {"requests", "vkd_requests_total", "counter", "Requests served (vk_request_done)."},
        {"bytes_in", "vkd_received_bytes_total", "counter", "Bytes read from connections."},
        {"bytes_out", "vkd_sent_bytes_total", "counter", "Bytes written to connections."},
        {"errors", "vkd_connection_errors_total", "counter",
         "Connections ended by an uncaught error (the kinds below included)."},
        {"faults", "vkd_faults_total", "counter",
         "Connections ended by SIGSEGV, SIGBUS, SIGFPE or SIGILL."},
        {"cpu_kills", "vkd_cpu_budget_kills_total", "counter",
         "Connections ended for overrunning their CPU budget."},
        {"nomem", "vkd_heap_exhaustions_total", "counter",
         "Connections ended because their heap was exhausted."},
        {"timeouts", "vkd_timeouts_total", "counter", "Connections ended by a timeout."},
        {"service_procs", "vkd_service_processes", "gauge",
         "The module's own service processes running now."},
        {"service_ends", "vkd_service_process_ends_total", "counter",
         "Service processes that ended unasked (each restarts its worker)."},
        {"protects", "vkd_protection_changes_total", "counter",
         "Memory protection changes made around dispatches (isolation's cost)."},
};

static size_t json_len(json_object *a)
{
        return a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

static void prom_latency(json_object *svcs)
{
        const char *name = "vkd_request_duration_seconds";

        prom_head(name, "histogram", "Request latency.");
        for (size_t i = 0; i < json_len(svcs); i++) {
                json_object *s = json_object_array_get_idx(svcs, i);
                json_object *lat = get(s, "latency_us"), *h = get(lat, "histogram");
                size_t n = json_len(h);
                uint64_t cum = 0;
                char svc[1100];

                snprintf(svc, sizeof(svc), "%s", prom_label(get_str(s, "name", "")));
                /* Bucket 0 is under 1 us, bucket b in [2^(b-1), 2^b) us; the last one is open. */
                for (size_t b = 0; b < n; b++) {
                        uint64_t c = json_object_get_uint64(json_object_array_get_idx(h, b));

                        cum += c;
                        if (b + 1 < n)
                                printf("%s_bucket{service=\"%s\",le=\"%.6g\"} %llu\n", name, svc,
                                       (double)(1ULL << b) / 1e6, (unsigned long long)cum);
                }
                printf("%s_bucket{service=\"%s\",le=\"+Inf\"} %llu\n", name, svc,
                       (unsigned long long)cum);
                printf("%s_sum{service=\"%s\"} %.6f\n", name, svc,
                       (double)get_u64(lat, "sum") / 1e6);
                printf("%s_count{service=\"%s\"} %llu\n", name, svc, (unsigned long long)cum);
        }
}

/* The RSS of every worker process of every service (draining ones of an older generation
 * included): labels worker (its index), generation and pid, which tell two apart during a
 * restart. */
static void prom_worker_rss(json_object *svcs)
{
        const char *name = "vkd_worker_resident_memory_bytes";

        prom_head(name, "gauge", "A worker process' RSS.");
        for (size_t i = 0; i < json_len(svcs); i++) {
                json_object *s = json_object_array_get_idx(svcs, i), *ws = get(s, "workers");
                char svc[1100];

                snprintf(svc, sizeof(svc), "%s", prom_label(get_str(s, "name", "")));
                for (size_t j = 0; j < json_len(ws); j++) {
                        json_object *w = json_object_array_get_idx(ws, j);

                        if (!get_u64(w, "pid"))
                                continue;
                        printf("%s{service=\"%s\",worker=\"%llu\",generation=\"%llu\",pid=\"%llu\"}"
                               " "
                               "%llu\n",
                               name, svc, (unsigned long long)get_u64(w, "index"),
                               (unsigned long long)get_u64(w, "generation"),
                               (unsigned long long)get_u64(w, "pid"),
                               (unsigned long long)get_u64(w, "rss"));
                }
        }
}

/* One series per service of a uint64 field of the service's status object. */
static void prom_service_field(json_object *svcs, const char *key, const char *name,
                               const char *type, const char *help)
{
        prom_head(name, type, help);
        for (size_t i = 0; i < json_len(svcs); i++) {
                json_object *s = json_object_array_get_idx(svcs, i);

                printf("%s{service=\"%s\"} %llu\n", name, prom_label(get_str(s, "name", "")),
                       (unsigned long long)get_u64(s, key));
        }
}

static void print_metrics(json_object *rep)
{
        json_object *d = get(rep, "daemon"), *mem = get(d, "memory"), *svcs = get(rep, "services");

        prom_head("vkd_build_info", "gauge", "The daemon's version; always 1.");
        printf("vkd_build_info{version=\"%s\"} 1\n", prom_label(get_str(d, "version", "")));
        prom_head("vkd_config_generation", "gauge",
                  "The running configuration's generation (1 at start, +1 a reload).");
        printf("vkd_config_generation %llu\n", (unsigned long long)get_u64(d, "generation"));
        prom_head("vkd_start_time_seconds", "gauge", "When the daemon started (Unix time).");
        printf("vkd_start_time_seconds %llu\n", (unsigned long long)get_u64(d, "started_at"));
        prom_head("vkd_supervisor_resident_memory_bytes", "gauge", "The supervisor's RSS.");
        printf("vkd_supervisor_resident_memory_bytes %llu\n",
               (unsigned long long)get_u64(mem, "rss"));
        if (get(mem, "allocated")) {
                prom_head("vkd_supervisor_allocated_bytes", "gauge",
                          "Bytes the supervisor's allocator has handed out (jemalloc).");
                printf("vkd_supervisor_allocated_bytes %llu\n",
                       (unsigned long long)get_u64(mem, "allocated"));
                prom_head("vkd_supervisor_allocator_resident_bytes", "gauge",
                          "Bytes the supervisor's allocator keeps resident (jemalloc).");
                printf("vkd_supervisor_allocator_resident_bytes %llu\n",
                       (unsigned long long)get_u64(mem, "resident"));
        }
        for (size_t k = 0; k < sizeof(prom_counters) / sizeof(prom_counters[0]); k++) {
                const struct prom_counter *p = &prom_counters[k];

                prom_head(p->name, p->type, p->help);
                for (size_t i = 0; i < json_len(svcs); i++) {
                        json_object *s = json_object_array_get_idx(svcs, i);

                        printf("%s{service=\"%s\"} %llu\n", p->name,
                               prom_label(get_str(s, "name", "")),
                               (unsigned long long)get_u64(get(s, "counters"), p->key));
                }
        }
        prom_service_field(svcs, "workers_configured", "vkd_workers_configured", "gauge",
                           "Workers= of the service.");
        prom_service_field(svcs, "workers_ready", "vkd_workers_ready", "gauge",
                           "Workers of the service accepting now.");
        prom_service_field(svcs, "restarts", "vkd_worker_restarts_total", "counter",
                           "Worker restarts of the service's running generation.");
        prom_worker_rss(svcs);
        prom_latency(svcs);
}

static int cmd_metrics(const struct opts *o)
{
        json_object *req = json_object_new_object(), *rep = NULL;
        int r, code = EXIT_OK;

        json_object_object_add(req, "command", json_object_new_string("status"));
        r = ctl_call(o, req, &rep);
        json_object_put(req);
        if (r < 0)
                return not_reachable(o, r, true, false);
        if (!reply_ok(rep)) {
                fprintf(stderr, "vkdctl: %s\n", get_str(rep, "error", "failed"));
                code = EXIT_UNKNOWN;
        } else
                print_metrics(rep);
        json_object_put(rep);
        return code;
}

/*
 * check [live|ready]: the two answers an orchestrator's probes want. live: the daemon answers on
 * its control socket, draining or not (a liveness probe that fails during a drain would have
 * the drain killed). ready: the daemon is not stopping and every service of its running
 * generation accepts with all its workers: not failed (an Optional=yes service that could not
 * start included), not starting, no worker down or restarting. Each reason it is not ready is
 * one line on stdout. Exit: 0 yes, 1 not ready, 4 no permission, 7 the daemon does not answer.
 */
static int cmd_check(const struct opts *o, const char *what)
{
        json_object *req = json_object_new_object(), *rep = NULL, *svcs, *daemon, *reasons;
        bool ready_wanted = strcmp(what, "ready") == 0;
        int r, code = EXIT_OK;
        char line[512];

        json_object_object_add(req, "command", json_object_new_string("status"));
        r = ctl_call(o, req, &rep);
        json_object_put(req);
        if (r < 0) {
                if (r == -EACCES || r == -EPERM)
                        return not_reachable(o, r, true, false);
                if (o->json)
                        printf("{\"live\":false,\"ready\":false}\n");
                else
                        printf("not live: vkd does not answer on %s (%s)\n", o->socket,
                               strerror(-r));
                return EXIT_DAEMON_DOWN;
        }
        if (!reply_ok(rep)) {
                fprintf(stderr, "vkdctl: %s\n", get_str(rep, "error", "failed"));
                code = is_permission_error(rep) ? EXIT_UNKNOWN : EXIT_DAEMON_DOWN;
                json_object_put(rep);
                return code;
        }
        reasons = json_object_new_array();
        daemon = get(rep, "daemon");
        svcs = get(rep, "services");
        const char *dst = get_str(daemon, "state", "?");
        uint64_t gen = get_u64(daemon, "generation");
        size_t serving = 0;

        if (strcmp(dst, "running") != 0 && strcmp(dst, "reloading") != 0) {
                snprintf(line, sizeof(line), "vkd is %s", dst);
                json_object_array_add(reasons, json_object_new_string(line));
        }
        for (size_t i = 0; svcs && i < json_object_array_length(svcs); i++) {
                json_object *sv = json_object_array_get_idx(svcs, i);
                const char *st = get_str(sv, "state", "?"), *cause = get_str(sv, "cause", NULL);
                uint64_t rd = get_u64(sv, "workers_ready"), cf = get_u64(sv, "workers_configured");

                /* A service that only a starting or draining generation has is not (or no
                 * longer) part of what this daemon promises to serve. */
                if (get_u64(sv, "generation") != gen)
                        continue;
                if (strcmp(st, "running") != 0)
                        snprintf(line, sizeof(line), "%s: %s%s%s", get_str(sv, "name", "?"), st,
                                 cause ? ": " : "", cause ? cause : "");
                else if (rd < cf)
                        snprintf(line, sizeof(line), "%s: %llu of %llu workers ready",
                                 get_str(sv, "name", "?"), (unsigned long long)rd,
                                 (unsigned long long)cf);
                else {
                        serving++;
                        continue;
                }
                json_object_array_add(reasons, json_object_new_string(line));
        }
        bool ready = json_object_array_length(reasons) == 0;
        if (ready_wanted && !ready)
                code = EXIT_FAIL;
        if (o->json) {
                json_object *out = json_object_new_object();
                json_object_object_add(out, "live", json_object_new_boolean(1));
                json_object_object_add(out, "ready", json_object_new_boolean(ready));
                json_object_object_add(out, "reasons", json_object_get(reasons));
                print_json(out);
                json_object_put(out);
        } else if (!ready_wanted) {
                printf("live: vkd (pid %llu) is %s\n", (unsigned long long)get_u64(daemon, "pid"),
                       dst);
        } else if (ready) {
                printf("ready: %zu service(s) serving with all their workers\n", serving);
        } else {
                for (size_t i = 0; i < json_object_array_length(reasons); i++)
                        printf("not ready: %s\n",
                               json_object_get_string(json_object_array_get_idx(reasons, i)));
        }
        json_object_put(reasons);
        json_object_put(rep);
        return code;
}

/* reload, stop, restart: one request, ok or errors. */
static int cmd_change(const struct opts *o, const char *cmd, const char *service)
{
        json_object *req = json_object_new_object(), *rep = NULL, *errs;
        bool is_stop = strcmp(cmd, "stop") == 0;
        int r, code = EXIT_OK;

        json_object_object_add(req, "command", json_object_new_string(cmd));
        if (service)
                json_object_object_add(req, "service", json_object_new_string(service));
        r = ctl_call(o, req, &rep);
        json_object_put(req);
        if (r < 0)
                return not_reachable(o, r, false, is_stop);
        if (o->json)
                print_json(rep);
        if (!reply_ok(rep)) {
                if (!o->json) {
                        fprintf(stderr, "vkdctl: %s\n", get_str(rep, "error", "failed"));
                        errs = get(rep, "errors");
                        for (size_t i = 0; errs && i < json_object_array_length(errs); i++)
                                fprintf(stderr, "%s\n",
                                        json_object_get_string(json_object_array_get_idx(errs, i)));
                }
                code = is_permission_error(rep) ? EXIT_UNKNOWN
                       : get(rep, "unknown_service") &&
                                       json_object_get_boolean(get(rep, "unknown_service"))
                               ? EXIT_UNKNOWN
                               : EXIT_FAIL;
                json_object_put(rep);
                return code;
        }
        json_object_put(rep);
        if (is_stop && !o->no_wait) {
                /* The daemon unlinks its socket as it exits: wait for that, bounded. */
                int64_t deadline = now_ms() + o->timeout_ms;
                for (;;) {
                        int fd = ctl_connect(o->socket);
                        if (fd < 0)
                                break;
                        close(fd);
                        if (now_ms() > deadline) {
                                fprintf(stderr, "vkdctl: vkd is still draining after %d s\n",
                                        o->timeout_ms / 1000);
                                return EXIT_FAIL;
                        }
                        usleep(50 * 1000);
                }
        }
        if (!o->json)
                printf("vkd: %s%s%s: done\n", cmd, service ? " " : "", service ? service : "");
        return code;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
                {"timeout", required_argument, NULL, 't'}, {"no-wait", no_argument, NULL, 'W'},
                {"help", no_argument, NULL, 'h'},          {0},
        };
        struct opts o = {0};
        const char *cmd;
        int c, timeout_s = 0;

        while ((c = getopt_long(argc, argv, "s:jt:h", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        o.socket = optarg;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 't':
                        timeout_s = atoi(optarg);
                        if (timeout_s <= 0) {
                                fprintf(stderr, "vkdctl: --timeout wants seconds > 0\n");
                                return EXIT_USAGE;
                        }
                        break;
                case 'W':
                        o.no_wait = true;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_OK;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        /* GNU getopt_long() permutes: options may follow the command (vkdctl status --json). */
        int n_args = 0;
        char **args = calloc((size_t)argc + 1, sizeof(*args));
        if (!args)
                return EXIT_FAIL;
        for (int i = optind; i < argc; i++) {
                if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
                        o.json = true;
                else if (strcmp(argv[i], "--no-wait") == 0)
                        o.no_wait = true;
                else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage(stdout);
                        free(args);
                        return EXIT_OK;
                } else
                        args[n_args++] = argv[i];
        }
        if (!n_args) {
                usage(stderr);
                free(args);
                return EXIT_USAGE;
        }
        if (!o.socket)
                o.socket = default_socket();
        const char *term = getenv("TERM");
        o.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
        cmd = args[0];
        bool slow = !strcmp(cmd, "reload") || !strcmp(cmd, "restart") || !strcmp(cmd, "stop");
        o.timeout_ms = (timeout_s ? timeout_s : slow ? 120 : 10) * 1000;

        int code;
        if (strcmp(cmd, "status") == 0) {
                code = cmd_status(&o, args + 1, n_args - 1);
        } else if (strcmp(cmd, "check") == 0 && n_args <= 2 &&
                   (n_args == 1 || !strcmp(args[1], "live") || !strcmp(args[1], "ready"))) {
                code = cmd_check(&o, n_args == 2 ? args[1] : "ready");
        } else if (strcmp(cmd, "metrics") == 0 && n_args == 1) {
                code = cmd_metrics(&o);
        } else if (strcmp(cmd, "services") == 0 && n_args == 1) {
                code = cmd_services(&o);
        } else if ((strcmp(cmd, "reload") == 0 || strcmp(cmd, "stop") == 0) && n_args == 1) {
                code = cmd_change(&o, cmd, NULL);
        } else if (strcmp(cmd, "restart") == 0 && n_args == 2) {
                code = cmd_change(&o, cmd, args[1]);
        } else {
                fprintf(stderr, "vkdctl: unknown command or wrong arguments: %s\n", cmd);
                usage(stderr);
                code = EXIT_USAGE;
        }
        free(args);
        return code;
}

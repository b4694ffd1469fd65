/*
 * The stand-alone host: argument parsing, one listening socket, the module's
 * init, the kernel loop. `listening HOST:PORT` on stdout (with the port the
 * OS chose for port 0) is its readiness signal.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "standalone.h"
#include "vk_kernel.h"

#define MAX_SET 64

static struct vk_kernel *kernel;

/* The service's own process (a store) ending unasked leaves every connection waiting for it:
 * end the program, as the daemon ends that worker, so clients see a close, not a wedge. */
static void on_service_exit(void *ctx, uint64_t pid, const struct vk_error *err)
{
        const struct vk_exit_detail *d = vk_kernel_exit_detail(ctx);
        if (!d->is_service || d->told)
                return;
        fprintf(stderr, "vkd: the service's own process ended (%s); exiting\n",
                err ? err->msg : "it returned");
        _exit(1);
}

static void on_signal(int sig)
{
        vk_kernel_stop(kernel);
}

/* Binds host:port ("127.0.0.1:0", "[::1]:8080", "*:80"); returns the fd or
 * -errno, and the bound address in name. */
static int listen_on(const char *spec, char *name, size_t namelen)
{
        char host[256];
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host)
                return -EINVAL;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = 0;
        char *h = host;
        if (h[0] == '[' && h[strlen(h) - 1] == ']') {
                h[strlen(h) - 1] = 0;
                h++;
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV},
                        *ai;
        if (getaddrinfo(*h && strcmp(h, "*") ? h : NULL, colon + 1, &hints, &ai) != 0)
                return -EINVAL;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1, r = 0;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0)
                r = -errno;
        freeaddrinfo(ai);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char addr[INET6_ADDRSTRLEN], port[16];
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        getnameinfo((struct sockaddr *)&ss, sl, addr, sizeof addr, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        snprintf(name, namelen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", addr, port);
        return fd;
}

static void usage(FILE *f, const char *prog, const struct vk_module *mod)
{
        fprintf(f,
                "usage: %s [--listen HOST:PORT] [--set KEY=VALUE]... [--poller epoll|poll]\n"
                "       [--isolation isolated|unprivileged|privileged] [--cpu-budget-ms N|off]\n"
                "       [--heap-size BYTES] [--ring-size BYTES] [--max-conns N] [--stats]\n"
                "Runs the %s service (version %s) on one TCP listener, or on stdin/stdout.\n",
                prog, mod->name, mod->version ? mod->version : "?");
        if (mod->keys) {
                fprintf(f, "Module keys (--set):\n");
                for (const struct vk_module_key *k = mod->keys; k->name; k++)
                        fprintf(f, "  %-20s %s\n", k->name, k->help ? k->help : "");
        }
}

int vk_standalone_main(int argc, char **argv, const struct vk_module *mod)
{
        static const struct option opts[] = {
                {"listen", required_argument, NULL, 'l'},
                {"set", required_argument, NULL, 's'},
                {"poller", required_argument, NULL, 'p'},
                {"isolation", required_argument, NULL, 'i'},
                {"cpu-budget-ms", required_argument, NULL, 'c'},
                {"heap-size", required_argument, NULL, 'H'},
                {"ring-size", required_argument, NULL, 'R'},
                {"max-conns", required_argument, NULL, 'm'},
                {"stats", no_argument, NULL, 'S'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct vk_kernel_config cfg = {0};
        struct vk_module_kv kv[MAX_SET];
        size_t nkv = 0;
        const char *listen_spec = NULL, *prog = argv[0];
        int c, stats = 0;
        while ((c = getopt_long(argc, argv, "l:s:p:i:c:H:R:m:h", opts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        listen_spec = optarg;
                        break;
                case 's': {
                        char *eq = strchr(optarg, '=');
                        if (!eq || nkv == MAX_SET) {
                                fprintf(stderr, "%s: --set wants KEY=VALUE\n", prog);
                                return 2;
                        }
                        *eq = 0;
                        kv[nkv++] = (struct vk_module_kv){optarg, eq + 1, "--set", (unsigned)nkv};
                        break;
                }
                case 'p':
                        cfg.poller = optarg;
                        break;
                case 'i': {
                        int iso = vk_isolation_parse(optarg);
                        if (iso < 0) {
                                fprintf(stderr, "%s: unknown isolation %s\n", prog, optarg);
                                return 2;
                        }
                        cfg.isolation = (enum vk_isolation)iso;
                        break;
                }
                case 'c':
                        cfg.cpu_budget_ms = strcmp(optarg, "off")
                                                    ? (unsigned)strtoul(optarg, NULL, 0)
                                                    : VK_CPU_BUDGET_OFF;
                        break;
                case 'S':
                        stats = 1;
                        break;
                case 'H':
                        cfg.heap_size = strtoul(optarg, NULL, 0);
                        break;
                case 'R':
                        cfg.ring_size = strtoul(optarg, NULL, 0);
                        break;
                case 'm':
                        cfg.max_procs = (unsigned)strtoul(optarg, NULL, 0);
                        break;
                case 'h':
                        usage(stdout, prog, mod);
                        return 0;
                default:
                        usage(stderr, prog, mod);
                        return 2;
                }
        }
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        void *state = NULL;
        char err[2048] = "", *line, *at;
        if (mod->init && mod->init(kv, nkv, &state, err, sizeof err) < 0) {
                /* one problem a line */
                for (line = strtok_r(err, "\n", &at); line; line = strtok_r(NULL, "\n", &at))
                        fprintf(stderr, "%s: %s\n", prog, line);
                if (!err[0])
                        fprintf(stderr, "%s: module init failed\n", prog);
                return 1;
        }
        int r = vk_kernel_new(&cfg, &kernel);
        if (r < 0) {
                fprintf(stderr, "%s: cannot start the kernel: %s\n", prog, strerror(-r));
                return 1;
        }
        if (mod->service) {
                int64_t pid = vk_kernel_spawn(kernel, mod->service, &state, sizeof state, -1, -1);
                if (pid < 0) {
                        fprintf(stderr, "%s: cannot start the service process: %s\n", prog,
                                strerror((int)-pid));
                        return 1;
                }
                vk_kernel_set_service(kernel, (uint64_t)pid);
                vk_kernel_on_exit(kernel, on_service_exit, kernel);
        }
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        if (listen_spec) {
                char name[300];
                int fd = listen_on(listen_spec, name, sizeof name);
                if (fd < 0) {
                        fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, listen_spec,
                                strerror(-fd));
                        return 1;
                }
                r = vk_kernel_listen(kernel, fd, mod->main, &state, sizeof state);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", prog, strerror(-r));
                        return 1;
                }
                printf("listening %s\n", name);
                fflush(stdout);
        } else {
                int64_t pid = vk_kernel_spawn(kernel, mod->main, &state, sizeof state, 0, 1);
                if (pid < 0) {
                        fprintf(stderr, "%s: %s\n", prog, strerror((int)-pid));
                        return 1;
                }
        }
        r = vk_kernel_run(kernel);
        if (stats) {
                struct vk_kernel_stats st;
                vk_kernel_stats(kernel, &st);
                const char *base = strrchr(prog, '/');
                /* one line of key=value fields, for scripts (tests/bench/isolation.sh) */
                fprintf(stderr,
                        "%s: stats protection=%s poller=%s spawned=%llu failed=%llu faults=%llu "
                        "cpu_kills=%llu dispatches=%llu polls=%llu protects=%llu requests=%llu "
                        "bytes_in=%llu bytes_out=%llu\n",
                        base ? base + 1 : prog, vk_kernel_protection(kernel),
                        vk_kernel_poller(kernel), (unsigned long long)st.spawned,
                        (unsigned long long)st.failed, (unsigned long long)st.faults,
                        (unsigned long long)st.cpu_kills, (unsigned long long)st.dispatches,
                        (unsigned long long)st.polls, (unsigned long long)st.protects,
                        (unsigned long long)st.requests, (unsigned long long)st.bytes_in,
                        (unsigned long long)st.bytes_out);
        }
        vk_kernel_free(kernel);
        if (mod->fini)
                mod->fini(state);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", prog, strerror(-r));
                return 1;
        }
        return 0;
}

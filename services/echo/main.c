/*
 * vkd-echo: the echo service outside the daemon. With --listen it is a TCP
 * server, one virtual process per connection on one kernel; without, it
 * echoes stdin to stdout. When it accepts it prints `listening HOST:PORT`
 * (the port the OS chose for port 0) as its readiness signal.
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

#include "echo.h"
#include "vk_kernel.h"

static struct vk_kernel *kernel;

static void on_signal(int sig)
{
        vk_kernel_stop(kernel);
}

/* Binds host:port ("127.0.0.1:0", "[::1]:8080"); returns the fd or -errno. */
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

static void usage(FILE *f)
{
        fprintf(f, "usage: vkd-echo [--listen HOST:PORT] [--poller epoll|poll] "
                   "[--heap-size BYTES] [--ring-size BYTES] [--max-conns N]\n"
                   "Echoes every line back: on stdin/stdout, or to each TCP client.\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"listen", required_argument, NULL, 'l'},
                {"poller", required_argument, NULL, 'p'},
                {"heap-size", required_argument, NULL, 'H'},
                {"ring-size", required_argument, NULL, 'R'},
                {"max-conns", required_argument, NULL, 'm'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct vk_kernel_config cfg = {0};
        const char *listen_spec = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "l:p:H:R:m:h", opts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        listen_spec = optarg;
                        break;
                case 'p':
                        cfg.poller = optarg;
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
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        int r = vk_kernel_new(&cfg, &kernel);
        if (r < 0) {
                fprintf(stderr, "vkd-echo: cannot start the kernel: %s\n", strerror(-r));
                return 1;
        }
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        if (listen_spec) {
                char name[300];
                int fd = listen_on(listen_spec, name, sizeof name);
                if (fd < 0) {
                        fprintf(stderr, "vkd-echo: cannot listen on %s: %s\n", listen_spec,
                                strerror(-fd));
                        return 1;
                }
                r = vk_kernel_listen(kernel, fd, echo_main, NULL, 0);
                if (r < 0) {
                        fprintf(stderr, "vkd-echo: %s\n", strerror(-r));
                        return 1;
                }
                printf("listening %s\n", name);
                fflush(stdout);
        } else {
                int64_t pid = vk_kernel_spawn(kernel, echo_main, NULL, 0, 0, 1);
                if (pid < 0) {
                        fprintf(stderr, "vkd-echo: %s\n", strerror((int)-pid));
                        return 1;
                }
        }
        r = vk_kernel_run(kernel);
        vk_kernel_free(kernel);
        if (r < 0) {
                fprintf(stderr, "vkd-echo: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

/*
 * Helpers shared by vkd's test and benchmark tools; see bench.h for the
 * contracts. Nothing here prints: the programs decide what to say.
 */
#include "bench.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* A process tree larger than this is not a server we benchmark. */
#define PROC_TREE_MAX 1024

int bench_addr_parse(const char *text, bool passive, struct bench_addr *ret)
{
        char host[256];
        const char *port;
        size_t hlen;

        if (text[0] == '[') {
                const char *end = strchr(text, ']');
                if (!end || end[1] != ':')
                        return -EINVAL;
                text++;
                hlen = (size_t)(end - text);
                port = end + 2;
        } else {
                const char *colon = strrchr(text, ':');
                if (!colon)
                        return -EINVAL;
                hlen = (size_t)(colon - text);
                port = colon + 1;
        }
        /* getaddrinfo() would take port 99999 and quietly wrap it. */
        uint64_t portnum;
        if (hlen >= sizeof(host) || bench_parse_u64(port, 0, 65535, &portnum) < 0)
                return -EINVAL;
        memcpy(host, text, hlen);
        host[hlen] = '\0';

        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
        };
        struct addrinfo *res = NULL;
        if (getaddrinfo(hlen ? host : NULL, port, &hints, &res) != 0 || !res)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        memcpy(&ret->ss, res->ai_addr, res->ai_addrlen);
        ret->len = res->ai_addrlen;
        freeaddrinfo(res);
        return 0;
}

void bench_addr_format(const struct bench_addr *addr, char *buf, size_t size)
{
        char host[NI_MAXHOST], serv[NI_MAXSERV];

        if (getnameinfo((const struct sockaddr *)&addr->ss, addr->len, host, sizeof(host), serv,
                        sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
                snprintf(buf, size, "?");
                return;
        }
        if (addr->ss.ss_family == AF_INET6)
                snprintf(buf, size, "[%s]:%s", host, serv);
        else
                snprintf(buf, size, "%s:%s", host, serv);
}

int64_t bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_raise_nofile(uint64_t *ret_limit)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur != rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        *ret_limit = rl.rlim_cur;
        return 0;
}

int bench_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *ret)
{
        char *end;

        /* strtoull would accept "-1" and leading blanks: demand digits only. */
        if (!isdigit((unsigned char)text[0]))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || *end != '\0')
                return errno ? -errno : -EINVAL;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

uint64_t bench_mix64(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

void bench_rng_seed(struct bench_rng *rng, uint64_t seed)
{
        rng->s = bench_mix64(seed);
        if (rng->s == 0)
                rng->s = 1;
}

uint64_t bench_rng_next(struct bench_rng *rng)
{
        uint64_t x = rng->s;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng->s = x;
        return x * 0x2545f4914f6cdd1dull;
}

uint64_t bench_rng_below(struct bench_rng *rng, uint64_t n)
{
        /* The high bits are the good ones; modulo bias is irrelevant here. */
        return (bench_rng_next(rng) >> 11) % n;
}

void bench_stream_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len)
{
        /* Word w of the stream is mix64(key + w); its bytes go out little end first. */
        uint64_t w = off >> 3;
        unsigned skip = off & 7;

        while (len) {
                uint64_t v = bench_mix64(key + w) >> (8 * skip);
                size_t n = 8 - skip;
                if (n > len)
                        n = len;
                for (size_t i = 0; i < n; i++)
                        buf[i] = (uint8_t)(v >> (8 * i));
                buf += n;
                len -= n;
                skip = 0;
                w++;
        }
}

/* Appends the children of every thread of pid to tree[*n..]; stops when full. */
static void proc_add_children(pid_t pid, pid_t *tree, size_t *n)
{
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d)) && *n < PROC_TREE_MAX) {
                if (de->d_name[0] == '.')
                        continue;
                char cpath[96];
                snprintf(cpath, sizeof(cpath), "/proc/%d/task/%.20s/children", (int)pid,
                         de->d_name);
                FILE *f = fopen(cpath, "re");
                if (!f)
                        continue;
                int child;
                while (*n < PROC_TREE_MAX && fscanf(f, "%d", &child) == 1)
                        tree[(*n)++] = child;
                fclose(f);
        }
        closedir(d);
}

/* Lists pid and its descendants (breadth first) into tree; returns how many. */
static size_t proc_tree(pid_t pid, pid_t *tree)
{
        size_t n = 0;

        tree[n++] = pid;
        for (size_t i = 0; i < n && n < PROC_TREE_MAX; i++)
                proc_add_children(tree[i], tree, &n);
        return n;
}

static int proc_rss_one(pid_t pid, uint64_t *ret_kb)
{
        char path[64], line[256];

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        *ret_kb = 0; /* a zombie has no VmRSS line */
        while (fgets(line, sizeof(line), f)) {
                unsigned long long kb;
                if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) {
                        *ret_kb = kb;
                        break;
                }
        }
        fclose(f);
        return 0;
}

int bench_proc_rss_kb(pid_t pid, uint64_t *ret_kb)
{
        pid_t tree[PROC_TREE_MAX];
        size_t n = proc_tree(pid, tree);
        uint64_t sum = 0;

        for (size_t i = 0; i < n; i++) {
                uint64_t kb = 0;
                int r = proc_rss_one(tree[i], &kb);
                if (r < 0 && i == 0)
                        return r;
                if (r == 0)
                        sum += kb;
        }
        *ret_kb = sum;
        return 0;
}

int bench_proc_nfds(pid_t pid, uint64_t *ret_count)
{
        pid_t tree[PROC_TREE_MAX];
        size_t n = proc_tree(pid, tree);
        uint64_t sum = 0;

        for (size_t i = 0; i < n; i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/fd", (int)tree[i]);
                DIR *d = opendir(path);
                if (!d) {
                        if (i == 0)
                                return -errno;
                        continue;
                }
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                sum++;
                closedir(d);
        }
        *ret_count = sum;
        return 0;
}

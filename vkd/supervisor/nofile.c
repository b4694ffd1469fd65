/*
 * The open-file limit of the daemon and its workers (see nofile.h): raised at start, and
 * checked against what each generation of the configuration can hold.
 */
#include "nofile.h"

#include <errno.h>
#include <sys/resource.h>

#include "log.h"

/* A worker's own descriptors besides connections: poller, wake pipe, status pipe, the
 * figures' mapping, stdio, and what a module opens for itself (Redis' append-only file). */
#define NOFILE_WORKER_OWN 32
/* The supervisor's own: stdio, signal pipe, control socket and its clients, the journal. */
#define NOFILE_SUPERVISOR_OWN 64

long long nofile_raise(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur != rl.rlim_max) {
                rlim_t want = rl.rlim_max;

                rl.rlim_cur = want;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        return rl.rlim_cur == RLIM_INFINITY ? (long long)(~0ULL >> 1) : (long long)rl.rlim_cur;
}

unsigned long long nofile_need(const struct conf *c, const struct conf_service **ret_service)
{
        unsigned long long sup = NOFILE_SUPERVISOR_OWN, most = 0;
        const struct conf_service *which = NULL;

        for (size_t i = 0; i < c->n_services; i++) {
                const struct conf_service *s = c->services[i];
                unsigned workers = c->daemon.workers;
                unsigned long long w;

                if (s->workers && s->workers < workers)
                        workers = s->workers;
                w = (unsigned long long)s->max_connections + s->n_listen + NOFILE_WORKER_OWN;
                if (w > most) {
                        most = w;
                        which = s;
                }
                sup += s->n_listen + 2ULL * workers;
        }
        if (sup > most) {
                most = sup;
                which = NULL;
        }
        if (ret_service)
                *ret_service = which;
        return most;
}

void nofile_check(const struct conf *c)
{
        static unsigned long long warned_need, warned_limit;
        const struct conf_service *s;
        unsigned long long need = nofile_need(c, &s);
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
            rl.rlim_cur >= need)
                return;
        if (need == warned_need && rl.rlim_cur == warned_limit)
                return;
        warned_need = need;
        warned_limit = rl.rlim_cur;
        if (s)
                log_warning(s->name,
                            "open-file limit %llu (hard %llu) is below the %llu a worker may need "
                            "(MaxConnections=%u, one descriptor a connection, %zu listener(s) and "
                            "%d of its own); accepting beyond it fails with EMFILE: raise "
                            "the hard limit (LimitNOFILE=, --ulimit nofile=) or lower "
                            "MaxConnections=",
                            (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, need,
                            s->max_connections, s->n_listen, NOFILE_WORKER_OWN);
        else
                log_warning(NULL,
                            "open-file limit %llu (hard %llu) is below the %llu the supervisor "
                            "may need for its listeners and workers; raise the hard limit "
                            "(LimitNOFILE=, --ulimit nofile=)",
                            (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, need);
}

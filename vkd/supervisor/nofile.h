/*
 * The open-file limit: vkd raises its own soft RLIMIT_NOFILE to the hard one at start (the
 * workers inherit it), and says so when even that is too small for what the configuration lets
 * the services hold. A container engine or a login shell often starts a daemon at a soft limit
 * of 1024, far below a busy worker's MaxConnections=; without a word the excess connections
 * only fail to be accepted.
 */
#ifndef VKD_SUPERVISOR_NOFILE_H
#define VKD_SUPERVISOR_NOFILE_H

#include "conf.h"

/* Raises the soft RLIMIT_NOFILE to the hard limit. Returns the resulting soft limit, or -errno
 * (the limit is then unchanged). Logs nothing. */
long long nofile_raise(void);

/*
 * The descriptors one process of c may need at most: a worker holds one descriptor per
 * connection (its socket) up to MaxConnections=, plus its listeners and a fixed few of its
 * own (poller, wake pipe, status pipe, the module's files); the supervisor holds every
 * listener and a status pipe per worker, twice over during a reload. Stores the service whose
 * workers need the most in *ret_service (NULL when the supervisor needs more).
 */
unsigned long long nofile_need(const struct conf *c, const struct conf_service **ret_service);

/* Logs one warning, naming the numbers, when the soft RLIMIT_NOFILE is below
 * nofile_need(c); the same shortfall is not reported twice (a reload repeats it only
 * when the need or the limit changed). */
void nofile_check(const struct conf *c);

#endif

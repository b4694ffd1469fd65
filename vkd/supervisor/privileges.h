/*
 * The privilege drop a worker makes before it loads any module: supplementary groups, gid, uid,
 * a check that root cannot be regained, then PR_SET_NO_NEW_PRIVS. Runs in the worker only; the
 * supervisor keeps its identity so it can fork workers for any User=.
 */
#ifndef VKD_SUPERVISOR_PRIVILEGES_H
#define VKD_SUPERVISOR_PRIVILEGES_H

#include <stddef.h>

#include "conf.h"

/*
 * Becomes creds->uid/gid when running as root and creds->user is set (the only supplementary
 * group is the gid), verifies that setuid(0) now fails, and in every case sets
 * PR_SET_NO_NEW_PRIVS so nothing the worker execs can gain privileges. Not root, or no user
 * configured: the identity is kept. Returns 0, or -errno with a message in err.
 */
int privileges_drop(const struct conf_creds *creds, char *err, size_t errlen);

/* Whether a worker for creds will run under another identity than the configured one (not root
 * and a User= that is not us): the supervisor warns once. */
int privileges_cannot_switch(const struct conf_creds *creds);

#endif

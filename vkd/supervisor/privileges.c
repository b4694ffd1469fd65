/*
 * Dropping privileges in a worker (see privileges.h). The order is the one that works: groups
 * first, while we still may change them, then the gid, then the uid; afterwards both the real
 * and saved ids are the target, so setuid(0) must fail, which is checked rather than assumed.
 */
#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int privileges_cannot_switch(const struct conf_creds *creds)
{
        return creds->user && geteuid() != 0 && geteuid() != creds->uid;
}

static int no_new_privs(char *err, size_t errlen)
{
#ifdef __linux__
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot set PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
                return r;
        }
#endif
        return 0;
}

static int switch_user(const struct conf_creds *creds, char *err, size_t errlen)
{
        const char *what;
        gid_t gid = creds->gid;
        int r;

        what = "setgroups";
        if (setgroups(1, &gid) < 0)
                goto fail;
        what = "setresgid";
        if (setresgid(gid, gid, gid) < 0)
                goto fail;
        what = "setresuid";
        if (setresuid(creds->uid, creds->uid, creds->uid) < 0)
                goto fail;
        if (creds->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
                snprintf(err, errlen, "root could be regained after switching to user %s (uid %u)",
                         creds->user, (unsigned)creds->uid);
                return -EPERM;
        }
        if (getuid() != creds->uid || geteuid() != creds->uid || getgid() != gid ||
            getegid() != gid) {
                snprintf(err, errlen, "identity did not change to %s:%s", creds->user,
                         creds->group);
                return -EPERM;
        }
        return 0;
fail:
        r = -errno;
        snprintf(err, errlen, "cannot switch to user %s, group %s: %s: %s", creds->user,
                 creds->group, what, strerror(-r));
        return r;
}

int privileges_drop(const struct conf_creds *creds, char *err, size_t errlen)
{
        if (creds->user && geteuid() == 0) {
                int r = switch_user(creds, err, errlen);
                if (r < 0)
                        return r;
        }
        return no_new_privs(err, errlen);
}

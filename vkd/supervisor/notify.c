/*
 * sd_notify() wrappers (see notify.h). sd_notify() itself returns 0 and sends nothing when
 * $NOTIFY_SOCKET is unset, which is what makes a hand-started vkd quiet. The environment is
 * left in place (unset_environment = 0) so every later state change reaches the manager too;
 * workers never call these.
 */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef VKD_WITH_SYSTEMD
#include <systemd/sd-daemon.h>

static int notify_send(const char *msg)
{
        return sd_notify(0, msg);
}
#else
static int notify_send(const char *msg)
{
        (void)msg;
        return 0;
}
#endif

int notify_ready(const char *status)
{
        char msg[512];

        if (!status)
                return notify_send("READY=1");
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
        return notify_send(msg);
}

int notify_reloading(void)
{
        struct timespec ts;
        char msg[128];

        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
                 (unsigned long long)ts.tv_sec * 1000000ULL +
                         (unsigned long long)ts.tv_nsec / 1000ULL);
        return notify_send(msg);
}

int notify_stopping(void)
{
        return notify_send("STOPPING=1");
}

bool notify_enabled(void)
{
#ifdef VKD_WITH_SYSTEMD
        const char *e = getenv("NOTIFY_SOCKET");
        return e && *e;
#else
        return false;
#endif
}

int notify_status(const char *status)
{
        char msg[512];

        snprintf(msg, sizeof(msg), "STATUS=%s", status);
        return notify_send(msg);
}

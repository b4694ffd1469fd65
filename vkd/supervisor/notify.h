/*
 * Readiness and state for the service manager: sd_notify() messages READY=1, RELOADING=1,
 * STOPPING=1 and STATUS=. Without $NOTIFY_SOCKET (started by hand) nothing is sent, and in a
 * build without libsystemd every call is a no-op that succeeds.
 */
#ifndef VKD_SUPERVISOR_NOTIFY_H
#define VKD_SUPERVISOR_NOTIFY_H

#include <stdbool.h>

/* Sends "READY=1" and a STATUS= line (status may be NULL). Returns >= 0 or -errno. */
int notify_ready(const char *status);

/* Sends "RELOADING=1" with MONOTONIC_USEC= (what Type=notify-reload expects). */
int notify_reloading(void);

/* Sends "STOPPING=1". */
int notify_stopping(void);

/* Sends "STATUS=<status>". */
int notify_status(const char *status);

/* True when a service manager listens ($NOTIFY_SOCKET is set, libsystemd built in). */
bool notify_enabled(void);

#endif

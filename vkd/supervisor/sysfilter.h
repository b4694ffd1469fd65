/*
 * The system call allow-list of a worker, installed after its module's init
 * and before its first accept (SystemCallFilter=yes, the default): a module
 * that calls anything else (execve, ptrace, fork...) kills its worker with
 * SIGSYS, which the supervisor reports as a fault of that service and
 * restarts; other services, in their own workers, never notice.
 */
#ifndef VKD_SUPERVISOR_SYSFILTER_H
#define VKD_SUPERVISOR_SYSFILTER_H

#include <stddef.h>

/* Installs the filter in the calling process (irreversible). Returns 0, or
 * -errno with a message in err; -ENOSYS when built without libseccomp. */
int sysfilter_install(char *err, size_t errlen);

#endif

/*
 * The module loader, used in workers only (after the privilege drop; the supervisor only peeks at
 * a module file's flags): dlopen()s a service's
 * module, checks its descriptor against the daemon's ABI, and runs its init with the service's
 * [Module] keys. Errors are written as "file:line: Module: NAME: what is wrong" so the
 * supervisor can report them like configuration errors.
 */
#ifndef VKD_SUPERVISOR_MODULE_H
#define VKD_SUPERVISOR_MODULE_H

#include <limits.h>
#include <stddef.h>

#include <vk/module.h>

#include "conf.h"

struct module {
        void *handle;
        struct vk_module desc; /* the module's descriptor, read up to its own size */
        void *state;           /* what init returned */
        int initialized;
        char path[PATH_MAX];
};

/*
 * Resolves the module file of s (an absolute Module= path, else <dir>/<name>.so), loads it and
 * checks the descriptor: the VK_MODULE_SYMBOL symbol must exist, its size must cover every
 * required field, its ABI major must equal VK_ABI_MAJOR, and main must be set. m is
 * caller-allocated and fully overwritten. Returns 0, or -errno with the message in err (m is
 * then unloaded).
 */
int module_load(struct module *m, const char *dir, const struct conf_service *s, char *err,
                size_t errlen);

/* Checks the [Module] keys of s against the ones the module declares and calls its init (if
 * any) with the declared ones, so both kinds of problem are found in one call. Returns 0, or
 * -errno with every problem in err, one a line, each as "file:line: key: what is wrong". */
int module_init(struct module *m, const struct conf_service *s, char *err, size_t errlen);

/*
 * The descriptor's flags (VK_MODULE_*), read from the module file of s without loading it (no
 * module code runs: the supervisor uses it). Returns 0 and *flags, or -errno (no such file, not
 * a 64-bit ELF module of this ABI major: the worker that loads it will say what is wrong).
 */
int module_peek_flags(const char *dir, const struct conf_service *s, uint32_t *flags);

/* Calls fini if init ran, and closes the module. Accepts an unloaded module. */
void module_unload(struct module *m);

#endif

/*
 * The module ABI: what a service module (`<name>.so`) exports so the vkd
 * daemon can load it. One versioned descriptor, found with dlsym under the
 * name VK_MODULE_SYMBOL, read only up to its own `size`, with spare slots for
 * growth. A module built for another ABI major version is refused at load
 * with a message naming both versions; a newer minor is accepted.
 *
 *      #include <vk/module.h>
 *
 *      static void conn(struct vk_thread *that) { ... }
 *
 *      VK_MODULE(.name = "echo", .version = "1.0", .main = conn);
 *
 * The daemon calls init once per worker process, after it dropped
 * privileges, with the service's [Module] keys; then every accepted
 * connection becomes a virtual process whose main thread runs `main`. The
 * first member of `main`'s frame receives the `void *` state init returned.
 * A module may also name a `service` coroutine: the host runs it as one
 * process per worker before accepting (vk_service_pid() finds it).
 */
#ifndef VK_MODULE_H
#define VK_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include <vk/vk.h>

#define VK_MODULE_SYMBOL "vk_module"

/* Flags (ABI 1.2). ONE_WORKER: the module's state is whole only in one process (a service
 * process that owns a keyspace, say): the daemon runs one worker for it whatever its Workers=,
 * and refuses an explicit Workers= above 1 for it. The daemon reads the flags from the module
 * file without loading it, so they must be a constant in the descriptor. */
#define VK_MODULE_ONE_WORKER 0x1u
#define VK_MODULE_FLAGS_KNOWN VK_MODULE_ONE_WORKER

/* One `Key=value` of the service's [Module] section, in file order. */
struct vk_module_kv {
        const char *key;
        const char *value;
        const char *file; /* for error messages: file:line */
        unsigned line;
};

/* A key the module accepts, for validation and documentation. */
struct vk_module_key {
        const char *name;
        const char *help;
};

struct vk_module {
        uint32_t abi_major; /* VK_ABI_MAJOR the module was built with */
        uint32_t abi_minor;
        uint32_t size;  /* sizeof(struct vk_module) the module was built with */
        uint32_t flags; /* VK_MODULE_* below, or 0 */
        const char *name;
        const char *version;
        /* Keys the [Module] section may hold, ending with {NULL}; NULL: none. */
        const struct vk_module_key *keys;
        /* Optional. Parses the keys (only the declared ones, when keys is
         * set) and prepares the module's state. Returns 0 and sets
         * *ret_state, or -errno and writes into err every problem found,
         * one a line, each naming "file:line: key:" where a key is at
         * fault. Called after the privilege drop; may allocate with malloc. */
        int (*init)(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                    size_t errlen);
        /* Optional. Frees the state when the worker stops. */
        void (*fini)(void *state);
        /* The connection coroutine. Required. */
        vk_thread_fn *main;
        /* Optional (ABI 1.1): the service's own process, one per worker,
         * started before the first connection with the state as the first
         * member of its frame; connections reach it with vk_service_pid()
         * and messages (a store that owns a keyspace, say). */
        vk_thread_fn *service;
        void *spare[7];
};

#define VK_MODULE(...)                                                        \
        __attribute__((visibility("default")))                                \
        const struct vk_module vk_module = {.abi_major = VK_ABI_MAJOR,        \
                                            .abi_minor = VK_ABI_MINOR,        \
                                            .size = sizeof(struct vk_module), \
                                            __VA_ARGS__}

#endif

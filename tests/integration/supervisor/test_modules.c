/*
 * Broken service modules for the supervisor's tests, one per way a module can be refused. The
 * same file is built several times, each with one TESTMOD_* macro (see supervisor.cmake).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <vk/module.h>

__attribute__((unused)) static void conn(struct vk_thread *that)
{
        struct {
                int unused;
        } * self;
        vk_begin();
        vk_end();
}

#if defined(TESTMOD_ABI2)
/* Built for a future major version of the ABI. */
__attribute__((visibility("default"))) const struct vk_module vk_module = {
        .abi_major = VK_ABI_MAJOR + 1,
        .abi_minor = 0,
        .size = sizeof(struct vk_module),
        .name = "abi2",
        .main = conn,
};
#elif defined(TESTMOD_NOSYM)
/* A shared object, but no descriptor. */
__attribute__((visibility("default"))) const int not_a_module = 1;
#elif defined(TESTMOD_NOMAIN)
VK_MODULE(.name = "nomain", .version = "0");
#elif defined(TESTMOD_SMALL)
/* Claims a descriptor too small to hold the required fields. */
__attribute__((visibility("default"))) const struct vk_module vk_module = {
        .abi_major = VK_ABI_MAJOR,
        .abi_minor = 0,
        .size = 8,
        .name = "small",
        .main = conn,
};
#elif defined(TESTMOD_INITFAIL)
static const struct vk_module_key keys[] = {{"Greeting", "what to say"}, {NULL, NULL}};

static int init(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err, size_t errlen)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(kv[i].value, "fail") == 0) {
                        snprintf(err, errlen, "%s:%u: %s: refusing \"fail\"", kv[i].file,
                                 kv[i].line, kv[i].key);
                        return -EINVAL;
                }
        *ret_state = NULL;
        return 0;
}

VK_MODULE(.name = "initfail", .version = "0", .keys = keys, .init = init, .main = conn);
#elif defined(TESTMOD_EXECVE)
#include <unistd.h>
/* Echoes lines, but a line "exec" makes it call execve(): a system call no
 * worker may make (SystemCallFilter=). */
static void exec_conn(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[64];
        } *self;
        vk_begin();
        for (;;) {
                vk_readline(self->n, self->line, sizeof self->line);
                if (self->n <= 0)
                        break;
                if (self->n >= 4 && !memcmp(self->line, "exec", 4)) {
                        char *const argv[] = {"/bin/true", NULL};
                        execve(argv[0], argv, argv + 1);
                }
                vk_write(self->line, self->n);
        }
        vk_end();
}

VK_MODULE(.name = "execve", .version = "0", .main = exec_conn);
#else
#error "build with one TESTMOD_* macro"
#endif

/*
 * Broken service modules for the supervisor's tests, one per way a module can be refused. The
 * same file is built several times, each with one TESTMOD_* macro (see supervisor.cmake).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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
#elif defined(TESTMOD_MINOR)
/* Built for a later minor version: it may use thread fields this vkd lacks. */
__attribute__((visibility("default"))) const struct vk_module vk_module = {
        .abi_major = VK_ABI_MAJOR,
        .abi_minor = VK_ABI_MINOR + 1,
        .size = sizeof(struct vk_module),
        .name = "minor",
        .main = conn,
};
#elif defined(TESTMOD_FLAGS)
/* Asks for a flag this vkd does not know (from a later minor version, say). */
VK_MODULE(.name = "flags", .version = "0", .main = conn, .flags = 0x80000000u);
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
 * worker may make (SystemCallFilter=). The path does not exist, so no other
 * program ever runs: were execve let through it would fail with ENOENT and
 * the worker would answer, instead of dying of the filter itself. */
static void exec_conn(struct vk_thread *that)
{
        struct {
                ssize_t n;
                char line[64];
        } * self;
        vk_begin();
        for (;;) {
                vk_readline(self->n, self->line, sizeof self->line);
                if (self->n <= 0)
                        break;
                if (self->n >= 4 && !memcmp(self->line, "exec", 4)) {
                        char *const argv[] = {"/nonexistent/vkd-no-such-program", NULL};
                        execve(argv[0], argv, argv + 1);
                        memcpy(self->line, "execve returned\n", 16);
                        self->n = 16;
                }
                vk_write(self->line, self->n);
        }
        vk_end();
}

VK_MODULE(.name = "execve", .version = "0", .main = exec_conn);
#elif defined(TESTMOD_HOSTILE)
#include <stdint.h>
/*
 * Echoes lines; a command line makes the connection misbehave in one way (containment):
 *   segv  a wild write        loop   a runaway loop       nomem  a frame larger than the heap
 *   raise an uncaught error   fd     its input's descriptor overwritten, then a read
 *   ring  its input ring's buffer pointer overwritten    self   its frame pointer overwritten
 *   size  its output ring's size overwritten, then a write
 *   store a message that makes the service's own process fault
 *   mloop a runaway loop that spends its time inside the allocator (libc, not module code)
 */
static volatile int *volatile wild = (volatile int *)(uintptr_t)16;

static void hostile_conn(struct vk_thread *that)
{
        struct {
                void *state;
                ssize_t n;
                char line[64];
                char *big;
        } * self;
        vk_begin();
        for (;;) {
                vk_readline(self->n, self->line, sizeof self->line);
                if (self->n <= 0)
                        break;
                self->line[self->n - 1] = 0;
                if (!strcmp(self->line, "segv"))
                        *wild = 1;
                if (!strcmp(self->line, "loop"))
                        for (volatile unsigned long i = 1; i; i++)
                                ;
                if (!strcmp(self->line, "mloop"))
                        for (volatile unsigned long i = 1; i; i++)
                                free(malloc((size_t)(64 + i % 512) << 10));
                if (!strcmp(self->line, "nomem"))
                        vk_alloc_or_raise(self->big, 1u << 24);
                if (!strcmp(self->line, "raise"))
                        vk_raise(EPROTO, "the hostile module raised this");
                if (!strcmp(self->line, "fd"))
                        that->in->fd = 1 << 20;
                if (!strcmp(self->line, "ring"))
                        that->in->ring.buf = (char *)(uintptr_t)4096;
                if (!strcmp(self->line, "size"))
                        that->out->ring.size = 1u << 31;
                if (!strcmp(self->line, "self")) {
                        that->self = (void *)(uintptr_t)32;
                        vk_yield();
                }
                if (!strcmp(self->line, "store"))
                        vk_send(vk_service_pid(that), "die", 3);
                self->line[self->n - 1] = '\n';
                vk_write(self->line, self->n);
                vk_flush();
        }
        vk_end();
}

/* The service's own process: faults on a message "die". */
static void hostile_service(struct vk_thread *that)
{
        struct {
                void *state;
                ssize_t n;
                uint64_t from;
                char msg[16];
        } * self;
        vk_begin();
        for (;;) {
                vk_receive(self->n, self->from, self->msg, sizeof self->msg);
                if (self->n == 3 && !memcmp(self->msg, "die", 3))
                        wild[2] = 1;
        }
        vk_end();
}

VK_MODULE(.name = "hostile", .version = "0", .main = hostile_conn, .service = hostile_service);
#else
#error "build with one TESTMOD_* macro"
#endif

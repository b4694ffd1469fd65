/*
 * A service module for the control socket's tests: a line echo that counts each line as one
 * request (vk_request_done), so a test knows exactly how many requests the daemon must report,
 * and that dereferences NULL when a line says "crash", so a fault can be caused on demand.
 */
#include <stddef.h>
#include <string.h>

#include <vk/module.h>

/* A store through NULL, on purpose: SIGSEGV, the kernel ends this connection
 * and counts a fault. UBSan (sanitizer builds) would stop it first. */
__attribute__((no_sanitize("undefined"))) static void crash(void)
{
        volatile int *volatile p = NULL;
        *p = 1;
}

static void conn(struct vk_thread *that)
{
        struct {
                char line[256];
                ssize_t n;
                uint64_t started;
        } * self;
        vk_begin();
        for (;;) {
                vk_readline(self->n, self->line, sizeof(self->line));
                if (self->n <= 0)
                        break;
                self->started = vk_now(that);
                if (self->n >= 5 && memcmp(self->line, "crash", 5) == 0) {
                        crash();
                }
                vk_write(self->line, self->n);
                vk_flush();
                vk_request_done(that, self->started);
        }
        vk_end();
}

VK_MODULE(.name = "ctltest", .version = "1.2.3", .main = conn);

/*
 * hello: a complete vkd service module. It greets each connection with its Greeting= (from the
 * service's [Module] section, default "hello"), then answers every line it receives with
 * "<Greeting>, <line>" until the client closes.
 *
 * Build it against the installed headers:  make        (see Makefile)
 * Run it:                                  see README.md
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vk/module.h>

/* The module's state: made once per worker by init, read by every connection. */
struct hello {
        char greeting[64];
};

static const struct vk_module_key hello_keys[] = {
        {"Greeting", "the word each line is answered with (default: hello)"},
        {NULL},
};

/* Runs in each worker after it dropped its privileges. vkd has already refused keys that are
 * not in hello_keys; the values are ours to check. */
static int hello_init(const struct vk_module_kv *kv, size_t n, void **ret_state, char *err,
                      size_t errlen)
{
        struct hello *h = calloc(1, sizeof(*h));

        if (!h)
                return -ENOMEM;
        strcpy(h->greeting, "hello");
        for (size_t i = 0; i < n; i++) {
                if (strlen(kv[i].value) >= sizeof(h->greeting)) {
                        snprintf(err, errlen, "%s:%u: %s: longer than %zu bytes", kv[i].file,
                                 kv[i].line, kv[i].key, sizeof(h->greeting) - 1);
                        free(h);
                        return -EINVAL;
                }
                strcpy(h->greeting, kv[i].value);
        }
        *ret_state = h;
        return 0;
}

static void hello_fini(void *state)
{
        free(state);
}

/* One connection. Everything that must survive a blocking op lives in the frame `self`. */
static void hello_main(struct vk_thread *that)
{
        struct {
                const struct hello *h; /* the first member gets init's state */
                char line[256];
                ssize_t n;
        } *self;
        vk_begin();
        vk_printf("%s! send a line.\n", self->h->greeting);
        for (;;) {
                vk_readline(self->n, self->line, sizeof(self->line));
                if (self->n == 0)
                        break; /* the client closed */
                vk_printf("%s, %.*s", self->h->greeting, (int)self->n, self->line);
        }
        vk_end();
}

VK_MODULE(.name = "hello", .version = "1.0", .keys = hello_keys, .init = hello_init,
          .fini = hello_fini, .main = hello_main);

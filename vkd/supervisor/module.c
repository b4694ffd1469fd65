/*
 * Loading service modules (see module.h). The descriptor is copied into a zeroed struct of
 * our own size and only `size` bytes are read from the module, so a module built against an
 * older, smaller descriptor of the same major version gets its missing fields as NULL, and a
 * newer, larger one is read only as far as we understand it.
 */
#include "module.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every field up to and including main is required to be present. */
#define MODULE_SIZE_MIN (offsetof(struct vk_module, main) + sizeof(vk_thread_fn *))

static int module_fail(struct module *m, const struct conf_service *s, char *err, size_t errlen,
                       int r, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int module_fail(struct module *m, const struct conf_service *s, char *err, size_t errlen,
                       int r, const char *fmt, ...)
{
        va_list ap;
        int n;

        /* A bare name says where it was looked for; a path already says it. */
        if (s->module_is_path || !m->path[0])
                n = snprintf(err, errlen, "%s:%u: Module: %s: ", s->file, s->module_line,
                             s->module);
        else
                n = snprintf(err, errlen, "%s:%u: Module: %s (%s): ", s->file, s->module_line,
                             s->module, m->path);
        if (n >= 0 && (size_t)n < errlen) {
                va_start(ap, fmt);
                vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
                va_end(ap);
        }
        module_unload(m);
        return r;
}

/* The module file of s: an absolute Module= path, else <dir>/<name>.so. */
static int module_path(char *path, size_t size, const char *dir, const struct conf_service *s)
{
        int n = s->module_is_path ? snprintf(path, size, "%s", s->module)
                                  : snprintf(path, size, "%s/%s.so", dir, s->module);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool read_at(int fd, void *buf, size_t n, uint64_t off)
{
        return pread(fd, buf, n, (off_t)off) == (ssize_t)n;
}

/* The file offset of the dynamic symbol name in a 64-bit ELF file, or 0. */
static uint64_t elf_symbol_offset(int fd, const char *name)
{
        Elf64_Ehdr eh;
        Elf64_Shdr sym, str, sh;

        if (!read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
            eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr))
                return 0;
        for (unsigned i = 0; i < eh.e_shnum; i++) {
                if (!read_at(fd, &sym, sizeof(sym), eh.e_shoff + (uint64_t)i * sizeof(sym)))
                        return 0;
                if (sym.sh_type != SHT_DYNSYM)
                        continue;
                if (sym.sh_link >= eh.e_shnum || sym.sh_entsize != sizeof(Elf64_Sym) ||
                    !read_at(fd, &str, sizeof(str), eh.e_shoff + sym.sh_link * sizeof(str)))
                        return 0;
                for (uint64_t j = 0; j < sym.sh_size / sizeof(Elf64_Sym); j++) {
                        Elf64_Sym e;
                        char got[64];
                        size_t len = strlen(name) + 1;

                        if (!read_at(fd, &e, sizeof(e), sym.sh_offset + j * sizeof(e)))
                                return 0;
                        if (e.st_name >= str.sh_size || len > sizeof(got) ||
                            e.st_shndx == SHN_UNDEF || e.st_shndx >= eh.e_shnum ||
                            !read_at(fd, got, len, str.sh_offset + e.st_name) ||
                            memcmp(got, name, len))
                                continue;
                        if (!read_at(fd, &sh, sizeof(sh),
                                     eh.e_shoff + (uint64_t)e.st_shndx * sizeof(sh)) ||
                            sh.sh_type != SHT_PROGBITS || e.st_value < sh.sh_addr)
                                return 0;
                        return sh.sh_offset + (e.st_value - sh.sh_addr);
                }
        }
        return 0;
}

int module_peek_flags(const char *dir, const struct conf_service *s, uint32_t *flags)
{
        char path[PATH_MAX];
        struct vk_module d;
        uint64_t off;
        int fd, r = -ENOEXEC;

        if (module_path(path, sizeof(path), dir, s) < 0)
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        off = elf_symbol_offset(fd, VK_MODULE_SYMBOL);
        /* abi_major, abi_minor, size, flags: plain words, stored in the file as built. */
        if (off && read_at(fd, &d, offsetof(struct vk_module, name), off) &&
            d.abi_major == VK_ABI_MAJOR) {
                *flags = d.flags;
                r = 0;
        }
        close(fd);
        return r;
}

int module_load(struct module *m, const char *dir, const struct conf_service *s, char *err,
                size_t errlen)
{
        const struct vk_module *d;

        memset(m, 0, sizeof(*m));
        if (module_path(m->path, sizeof(m->path), dir, s) < 0)
                return module_fail(m, s, err, errlen, -ENAMETOOLONG, "module path too long");

        /* RTLD_NOW: an unresolved symbol (a vk_ function this daemon lacks) fails here, with
         * the symbol's name, rather than as a crash on the first connection. */
        m->handle = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
        if (!m->handle) {
                const char *why = dlerror();
                size_t len = strlen(m->path);

                /* dlerror() repeats the path the prefix already shows. */
                if (why && strncmp(why, m->path, len) == 0 && strncmp(why + len, ": ", 2) == 0)
                        why += len + 2;
                return module_fail(m, s, err, errlen, -ENOENT, "cannot load: %s",
                                   why ? why : "unknown error");
        }
        dlerror();
        d = dlsym(m->handle, VK_MODULE_SYMBOL);
        if (!d)
                return module_fail(m, s, err, errlen, -ENOEXEC,
                                   "exports no \"%s\" descriptor: not a vkd module",
                                   VK_MODULE_SYMBOL);
        if (d->abi_major != VK_ABI_MAJOR)
                return module_fail(m, s, err, errlen, -EPROTO,
                                   "built for module ABI %u.%u, this vkd speaks %u.%u",
                                   d->abi_major, d->abi_minor, VK_ABI_MAJOR, VK_ABI_MINOR);
        /* A later minor version may use what this vkd lacks: fields of struct
         * vk_thread past the end of the ones this kernel allocates, say. */
        if (d->abi_minor > VK_ABI_MINOR)
                return module_fail(
                        m, s, err, errlen, -EPROTO,
                        "built for module ABI %u.%u, newer than the %u.%u this vkd speaks",
                        d->abi_major, d->abi_minor, VK_ABI_MAJOR, VK_ABI_MINOR);
        if (d->size < MODULE_SIZE_MIN)
                return module_fail(m, s, err, errlen, -EPROTO,
                                   "has a descriptor of %u bytes, at least %zu are needed", d->size,
                                   MODULE_SIZE_MIN);
        if (d->flags & ~VK_MODULE_FLAGS_KNOWN)
                return module_fail(m, s, err, errlen, -EPROTO,
                                   "has flags 0x%x this vkd does not know (module ABI %u.%u, "
                                   "this vkd speaks %u.%u)",
                                   d->flags & ~VK_MODULE_FLAGS_KNOWN, d->abi_major, d->abi_minor,
                                   VK_ABI_MAJOR, VK_ABI_MINOR);
        memcpy(&m->desc, d, d->size < sizeof(m->desc) ? d->size : sizeof(m->desc));
        if (!m->desc.main)
                return module_fail(m, s, err, errlen, -EPROTO,
                                   "has no connection coroutine (main is NULL)");
        return 0;
}

/* Appends one line to the lines already in err; what does not fit is cut. */
static void module_err_line(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void module_err_line(char *err, size_t errlen, const char *fmt, ...)
{
        size_t at = strnlen(err, errlen);
        va_list ap;

        if (at && at + 1 < errlen)
                err[at++] = '\n';
        if (at + 1 >= errlen)
                return;
        va_start(ap, fmt);
        vsnprintf(err + at, errlen - at, fmt, ap);
        va_end(ap);
}

/* Whether key is one the module declares. */
static bool module_declares(const struct module *m, const char *key)
{
        for (const struct vk_module_key *k = m->desc.keys; k && k->name; k++)
                if (strcmp(k->name, key) == 0)
                        return true;
        return false;
}

int module_init(struct module *m, const struct conf_service *s, char *err, size_t errlen)
{
        struct vk_module_kv *kv = NULL;
        size_t n = 0, flen = strlen(s->file);
        char why[4096] = "";
        int r = 0, ri;

        if (errlen)
                err[0] = 0;
        /* A key the module does not declare is refused here when the module declares its keys,
         * so a typo in [Module] is an error like one in [Service]; every one is named. A module
         * declaring none takes what its init accepts, or nothing without init. */
        for (size_t i = 0; i < s->n_module_args; i++) {
                const struct conf_kv *a = &s->module_args[i];

                if (module_declares(m, a->key) || (!m->desc.keys && m->desc.init))
                        continue;
                if (m->desc.init)
                        module_err_line(err, errlen,
                                        "%s:%u: %s: unknown key in [Module] for "
                                        "module %s",
                                        s->file, a->line, a->key, s->module);
                else
                        module_err_line(err, errlen,
                                        "%s:%u: %s: unknown key in [Module] "
                                        "(module %s takes %s)",
                                        s->file, a->line, a->key, s->module,
                                        m->desc.keys ? "other keys" : "no keys");
                r = -EINVAL;
        }
        if (!m->desc.init)
                return r;
        /* init still sees the keys it declared, so their values are checked in the same run. */
        if (s->n_module_args) {
                kv = calloc(s->n_module_args, sizeof(*kv));
                if (!kv)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_module_args; i++) {
                const struct conf_kv *a = &s->module_args[i];

                if (m->desc.keys && !module_declares(m, a->key))
                        continue;
                kv[n++] = (struct vk_module_kv){
                        .key = a->key, .value = a->value, .file = a->file, .line = a->line};
        }
        ri = m->desc.init(kv, n, &m->state, why, sizeof(why));
        free(kv);
        if (ri >= 0) {
                m->initialized = 1;
                return r;
        }
        why[sizeof(why) - 1] = 0;
        if (!why[0])
                snprintf(why, sizeof(why), "%s", strerror(-ri));
        /* One problem a line; a line that names its own place in this file stands as it is. */
        for (char *line = why, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (strncmp(line, s->file, flen) == 0 && line[flen] == ':')
                        module_err_line(err, errlen, "%s", line);
                else if (line[0])
                        module_err_line(err, errlen, "%s:%u: Module: %s: init failed: %s", s->file,
                                        s->module_line, s->module, line);
        }
        return r < 0 ? r : ri;
}

void module_unload(struct module *m)
{
        if (m->initialized && m->desc.fini)
                m->desc.fini(m->state);
        m->initialized = 0;
        m->state = NULL;
        if (m->handle)
                dlclose(m->handle);
        m->handle = NULL;
}

/*
 * The life cycle of a kernel: its arena (all kernel state in one mapping
 * that can be write-protected), creation and teardown, and the host's
 * accessors.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "kern.h"

/* Life cycle. */

static const struct poller_backend *backend_named(const char *name)
{
        static const struct poller_backend *const all[] = {
#ifdef __linux__
                &poller_epoll,
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
                &poller_kqueue,
#endif
                &poller_poll,
        };
        if (!name || !*name)
                return all[0];
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
                if (!strcmp(all[i]->name, name))
                        return all[i];
        return NULL;
}

static size_t arena_take(size_t *at, size_t size)
{
        size_t off = (*at + 63) & ~(size_t)63;
        *at = off + size;
        return off;
}

int vk_kernel_new(const struct vk_kernel_config *cfg_in, struct vk_kernel **ret)
{
        struct vk_kernel_config cfg = {0};
        if (cfg_in)
                cfg = *cfg_in;
        if (!cfg.heap_size)
                cfg.heap_size = 64 * 1024;
        if (!cfg.ring_size)
                cfg.ring_size = 16 * 1024;
        if (!cfg.max_procs)
                cfg.max_procs = 16384;
        if (!cfg.hibernate_ms)
                cfg.hibernate_ms = 1000;
        if (!cfg.slice_us)
                cfg.slice_us = 200;
        if (!cfg.poller)
                cfg.poller = getenv("VKD_POLLER");
        size_t rs = cfg.ring_size;
        if ((rs & (rs - 1)) || rs < 256 || rs > (1u << 30) || cfg.heap_size < 2 * rs + 4096 ||
            cfg.heap_size > (1u << 30) || cfg.max_procs > (1u << 24) ||
            cfg.isolation > VK_ISOLATION_PRIVILEGED)
                return -EINVAL;
        const struct poller_backend *pb = backend_named(cfg.poller);
        if (!pb)
                return -EINVAL;

        /* One mapping for all kernel state, sized up front (untouched pages
         * cost nothing), so it can be write-protected as a whole. */
        struct rlimit rl;
        rlim_t max_fds = 1 << 20;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
            rl.rlim_max < max_fds)
                max_fds = rl.rlim_max < 1024 ? 1024 : rl.rlim_max;
        /* Small tables first, then the descriptor table (sized by the
         * descriptor limit, up to 40 MiB), then the kernel zone, carved from
         * its front: what a worker touches stays in few huge pages. */
        size_t len = 0;
        size_t off_k = arena_take(&len, sizeof(struct vk_kernel));
        size_t off_timers = arena_take(&len, cfg.max_procs * sizeof(struct kproc *));
        size_t off_free = arena_take(&len, cfg.max_procs * sizeof(uint32_t));
        size_t off_procs = arena_take(&len, cfg.max_procs * sizeof(struct kproc));
        size_t off_fds = arena_take(&len, (size_t)max_fds * sizeof(struct kfd));
        /* The kernel zone: staged messages (a 4 KiB block per process, and
         * bursts), listeners, the poller's tables; reserved, not committed. */
        size_t mail_len = (size_t)cfg.max_procs * 4096 + ((size_t)128 << 20);
        size_t off_mail = arena_take(&len, mail_len + KZONE_COMMIT);
        off_mail = (off_mail + KZONE_COMMIT - 1) & ~(KZONE_COMMIT - 1);
        int huge = cfg.isolation == VK_ISOLATION_UNPRIVILEGED;
        char *arena = isolate_arena_map(&len, &huge);
        if (!arena)
                return -errno;
        struct vk_kernel *k = (struct vk_kernel *)(arena + off_k);
        int r;
        k->arena = arena;
        k->arena_len = len;
        k->arena_huge = (uint8_t)huge;
        k->cfg = cfg;
        k->idle_ns = (uint64_t)cfg.hibernate_ms * KERN_NS_PER_MS;
        k->idle_limit_ns = (uint64_t)cfg.idle_limit_ms * KERN_NS_PER_MS;
        if (getrandom(&k->seal_key, sizeof k->seal_key, GRND_NONBLOCK) != sizeof k->seal_key)
                k->seal_key = kern_now_ns() ^ (uint64_t)(uintptr_t)k;
        k->pb = pb;
        k->procs = (struct kproc *)(arena + off_procs);
        k->fds = (struct kfd *)(arena + off_fds);
        k->nfds = (int)max_fds;
        k->timers = (struct kproc **)(arena + off_timers);
        kzone_init(&k->zone, arena + off_mail, mail_len);
        k->timers_cap = cfg.max_procs;
        k->wake_pipe[0] = k->wake_pipe[1] = -1;
        k->pkey = -1;
        r = heap_pool_init(&k->pool, cfg.heap_size, cfg.max_procs, (uint32_t *)(arena + off_free));
        if (r == 0)
                r = heap_store_init(&k->store, cfg.max_procs, &k->zone);
        if (r < 0)
                goto fail;
        r = pb->open(&k->pl, &k->zone);
        if (r < 0)
                goto fail;
        if (pipe2(k->wake_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        r = pb->arm(k->pl, k->wake_pipe[0], POLLER_IN);
        if (r < 0)
                goto fail;
        /* The kernel's own, and the worker's standard streams (stderr is the
         * journal's stream under systemd): a corrupt record naming one of
         * them is refused (trust_fd), never read, written or closed. */
        int own[7] = {k->wake_pipe[0], k->wake_pipe[1], pb->fileno(k->pl), k->store.fd, 0, 1, 2};
        for (int i = 0; i < 7; i++)
                if (own[i] >= 0 && own[i] < k->nfds)
                        k->fds[own[i]].kernel = 1;
        r = tls_init(k);
        if (r < 0)
                goto fail;
        r = isolate_init(k);
        if (r < 0)
                goto fail;
        r = fault_init(k);
        if (r < 0) {
                fault_fini(k);
                goto fail;
        }
        k->faults_on = 1;
        /* A peer that resets while we write must be an EPIPE, not a signal. */
        signal(SIGPIPE, SIG_IGN);
        k->now = kern_now_ns();
        *ret = k;
        return 0;
fail:
        vk_kernel_free(k);
        return r;
}

struct vk_kernel *vk_kernel_free(struct vk_kernel *k)
{
        if (!k)
                return NULL;
        k->on_exit = NULL;
        for (uint32_t i = 0; i < k->pool.used; i++) {
                struct kproc *kp = &k->procs[i];
                if (!kp->alive)
                        continue;
                isolate_open(k, kp);
                if (kp->unborn)
                        proc_birth(k, kp);
                idle_wake(k, kp, kp->p);
                proc_exit(k, kp, NULL);
        }
        listen_close_all(k);
        tls_fini(k);
        if (k->faults_on)
                fault_fini(k);
        if (k->pl)
                k->pb->close(k->pl);
        if (k->wake_pipe[0] >= 0)
                close(k->wake_pipe[0]);
        if (k->wake_pipe[1] >= 0)
                close(k->wake_pipe[1]);
#if defined(__linux__) && defined(PKEY_DISABLE_WRITE)
        if (k->pkey >= 0) {
                if (k->pkey < 32)
                        fault_pkeys &= ~(1u << k->pkey);
                pkey_free(k->pkey);
        }
#endif
        heap_pool_free(&k->pool);
        heap_store_free(&k->store);
        munmap(k->arena, k->arena_len);
        return NULL;
}

void vk_kernel_set_service(struct vk_kernel *k, uint64_t pid)
{
        k->service_pid = pid;
}

void vk_kernel_on_exit(struct vk_kernel *k, vk_exit_fn *fn, void *ctx)
{
        k->on_exit = fn;
        k->on_exit_ctx = ctx;
}

const struct vk_exit_detail *vk_kernel_exit_detail(const struct vk_kernel *k)
{
        return &k->exit_detail;
}

const char *vk_kernel_poller(const struct vk_kernel *k)
{
        return k->pb->name;
}

void vk_kernel_stats(const struct vk_kernel *k, struct vk_kernel_stats *ret)
{
        *ret = k->stats;
}

void vk_kernel_on_tick(struct vk_kernel *k, vk_tick_fn *fn, void *ctx, unsigned period_ms)
{
        k->on_tick = fn;
        k->on_tick_ctx = ctx;
        k->tick_ns = (uint64_t)(period_ms ? period_ms : 1000) * KERN_NS_PER_MS;
        k->next_tick = k->now + k->tick_ns;
}

/*
 * Processes: the descriptor table, spawning, the first dispatch that lays
 * out a heap (proc_birth), binding sockets a process opened, lookup by pid,
 * and the end of a process, which closes what it held and wipes its heap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kern.h"

/* Descriptor table. */

/* The table is sized for the descriptor limit when the kernel starts. */
int kfd_reserve(struct vk_kernel *k, int fd)
{
        return fd < k->nfds ? 0 : -EMFILE;
}

void kfd_close(struct vk_kernel *k, int fd)
{
        if (fd < 0)
                return;
        k->pb->forget(k->pl, fd, 1);
        tls_close(k, fd);
        if (fd < k->nfds)
                memset(&k->fds[fd], 0, sizeof k->fds[fd]);
        close(fd);
}

/* Processes. */

/* Ends a process: closes its descriptors, returns its heap. `fault`: why a
 * fault or runaway ended it (its heap is not trusted), else NULL. */
void proc_exit(struct vk_kernel *k, struct kproc *kp, const struct fault_info *fault)
{
        struct vk_proc *p = kp->p;
        struct vk_error err = {0};
        /* From kernel memory: after a fault the heap's copy may be anything. */
        uint64_t pid = kproc_pid(kp);
        if (!fault) {
                k->stats.bytes_in += p->bytes_in;
                k->stats.bytes_out += p->bytes_out;
        }
        if (fault) {
                err.code = fault->code;
                memcpy(err.msg, fault->msg, sizeof err.msg);
                if (fault->code == EFAULT)
                        k->stats.faults++;
                else if (fault->code == ETIME)
                        k->stats.cpu_kills++;
        } else {
                err = p->exit_err;
                err.msg[sizeof err.msg - 1] = 0; /* the heap's copy: terminated here */
        }
        struct vk_exit_detail *d = &k->exit_detail;
        memset(d, 0, sizeof *d);
        d->is_service = pid == k->service_pid;
        d->told = d->is_service && k->service_told;
        if (fault) {
                d->cause = fault->code == ETIME       ? VK_EXIT_CPU
                           : fault->code == ETIMEDOUT ? VK_EXIT_IDLE
                           : fault->corrupt           ? VK_EXIT_CORRUPT
                                                      : VK_EXIT_FAULT;
                d->addr = fault->addr;
                d->pc = fault->pc;
        } else if (err.code) {
                d->cause = err.code == ENOMEM ? VK_EXIT_NOMEM : VK_EXIT_ERROR;
        }
        if (err.code && kp->fd_in >= 0) {
                socklen_t len = sizeof d->peer;
                if (getpeername(kp->fd_in, (struct sockaddr *)&d->peer, &len) < 0)
                        d->peer.ss_family = AF_UNSPEC;
        }
        if (kp->fd_out != kp->fd_in)
                kfd_close(k, kp->fd_out);
        kfd_close(k, kp->fd_in);
        for (int i = 0; i < VK_SOCKETS_MAX; i++)
                if (kp->extra[i])
                        kfd_close(k, kp->extra[i] - 1);
        /* Descriptors the process owned. After a fault the heap that lists
         * them is not trusted: never close one the kernel or another process
         * holds. */
        for (int i = 0; i < VK_OWNED_FDS + VK_SOCKETS_MAX; i++) {
                int fd = (i < VK_OWNED_FDS ? p->owned[i] : p->unbound[i - VK_OWNED_FDS]) - 1;
                if (fd < 0 || fd >= k->nfds || k->fds[fd].kernel || k->fds[fd].server ||
                    (k->fds[fd].proc && k->fds[fd].proc != kp))
                        continue;
                close(fd);
        }
        timer_remove(k, kp);
        idle_remove(k, kp);
        idle_wake(k, kp, NULL); /* still hibernating: its stored front goes */
        kz_free(&k->zone, kp->mail);
        kp->mail = NULL;
        kp->mail_len = 0;
        k->stats.exited++;
        if (err.code == ENOMEM)
                k->stats.nomem++;
        else if (err.code == ETIMEDOUT)
                k->stats.timeouts++;
        k->stats.active--;
        /* The service's process told to end as the worker stops is no failure. */
        if (err.code && !d->told)
                k->stats.failed++;
        kp->alive = 0;
        kp->p = NULL; /* its heap stays open or closed: see isolate_switch */
        /* Wiped for the next occupant, unless privileged (trusted, and
         * readable by any other process anyway). */
        if (kp->isolation != VK_ISOLATION_PRIVILEGED) {
                if (fault)
                        madvise(p, k->pool.slot_size, MADV_DONTNEED);
                else
                        heap_scrub(p, k->pool.slot_size);
        }
        heap_pool_put(&k->pool, kp->slot);
        if (k->on_exit)
                k->on_exit(k->on_exit_ctx, pid, err.code ? &err : NULL);
}

void kfd_bind(struct vk_kernel *k, int fd, struct kproc *kp, struct vk_pipe *rx, struct vk_pipe *tx)
{
        struct kfd *f = &k->fds[fd];
        memset(f, 0, sizeof *f);
        f->proc = kp;
        f->next_pending = -1;
        if (rx)
                f->rx = rx;
        if (tx)
                f->tx = tx;
}

/*
 * Spawning writes only kernel memory: the slot, the descriptors, the run
 * queue. The heap is set up by the process's first dispatch (proc_birth),
 * when the switch has opened it anyway, so a spawn costs no protection change
 * and the last occupant's heap, if still open, is closed by that switch
 * before anything else can run beside it.
 */
int64_t proc_spawn(struct vk_kernel *k, vk_thread_fn *fn, const void *arg, size_t arglen, int fd_in,
                   int fd_out, enum vk_isolation isolation)
{
        uint32_t slot;
        int r;
        char *base = NULL, *argcopy = NULL;
        int has_io = fd_in >= 0 && fd_out >= 0;
        if (arglen > k->pool.slot_size) {
                r = -E2BIG;
                goto fail;
        }
        if (k->stats.active >= k->cfg.max_procs || !(base = heap_pool_get(&k->pool, &slot))) {
                r = -EAGAIN;
                goto fail;
        }
        struct kproc *kp = &k->procs[slot];
        if (has_io && (r = kfd_reserve(k, fd_in > fd_out ? fd_in : fd_out)) < 0)
                goto fail_slot;
        if (arglen > sizeof kp->argbuf && !(argcopy = kz_realloc(&k->zone, NULL, arglen))) {
                r = -ENOMEM;
                goto fail_slot;
        }
        uint8_t prot_none = kp->prot_none;
        uint32_t gen = kp->gen + 1;
        memset(kp, 0, sizeof *kp);
        kp->prot_none = prot_none;
        kp->gen = gen;
        kp->p = (struct vk_proc *)base;
        kp->slot = slot;
        kp->isolation = (uint8_t)isolation;
        kp->fd_in = fd_in;
        kp->fd_out = fd_out;
        kp->alive = 1;
        kp->unborn = 1;
        kp->pending = -1;
        kp->fn = fn;
        kp->arg = argcopy ? argcopy : kp->argbuf;
        kp->arglen = (uint32_t)arglen;
        if (arglen)
                memcpy(kp->arg, arg, arglen);
        if (has_io) {
                kfd_bind(k, fd_in, kp, NULL, NULL);
                if (fd_out != fd_in)
                        kfd_bind(k, fd_out, kp, NULL, NULL);
        }
        k->stats.spawned++;
        k->stats.active++;
        proc_ready(k, kp);
        return (int64_t)kproc_pid(kp);

fail_slot:
        heap_pool_put(&k->pool, slot);
fail:
        tls_close(k, fd_in);
        if (fd_in >= 0)
                close(fd_in);
        if (fd_out >= 0 && fd_out != fd_in)
                close(fd_out);
        return r;
}

static void proc_forget_arg(struct vk_kernel *k, struct kproc *kp)
{
        if (kp->arg != kp->argbuf)
                kz_free(&k->zone, kp->arg);
        kp->arg = NULL;
}

/* Sets up a spawned process's heap, open: its header, its stdio socket and
 * main thread. A heap too small for them ends the process with ENOMEM. */
void proc_birth(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        struct vk_socket *s = NULL;
        struct vk_thread *t;
        kp->unborn = 0;
        heap_init(p, k->pool.slot_size);
        p->kernel = k;
        p->ring_size = (uint32_t)k->cfg.ring_size;
        p->pid = kproc_pid(kp);
        if (kp->fd_in >= 0 && kp->fd_out >= 0) {
                s = vk_malloc(p, sizeof *s);
                if (!s || pipe_init_fd(p, &s->rx, kp->fd_in, 0, k->cfg.ring_size) < 0 ||
                    pipe_init_fd(p, &s->tx, kp->fd_out, 1, k->cfg.ring_size) < 0)
                        goto nomem;
                s->next = NULL;
                s->bound = 1;
                s->spawned = 1;
                s->connecting = 0;
                s->alias = -1;
                p->sockets = s;
                k->fds[kp->fd_in].rx = &s->rx;
                k->fds[kp->fd_out].tx = &s->tx;
        }
        kp->ring_off = p->low;
        t = thread_new(p, kp->fn, kp->arg, kp->arglen);
        proc_forget_arg(k, kp);
        if (!t)
                goto nomem;
        t->is_main = 1;
        t->in = s ? &s->rx : NULL;
        t->out = s ? &s->tx : NULL;
        p->main = t;
        thread_ready(t);
        return;
nomem:
        proc_forget_arg(k, kp);
        p->exiting = 1;
        p->exit_err.code = ENOMEM;
        static const char why[] = "no room in its heap for its sockets and main thread";
        _Static_assert(sizeof why <= sizeof p->exit_err.msg, "message too long");
        memcpy(p->exit_err.msg, why, sizeof why);
}

int64_t vk_kernel_spawn(struct vk_kernel *k, vk_thread_fn *fn, const void *arg, size_t arglen,
                        int fd_in, int fd_out)
{
        vk_kernel_module_code(k, (const void *)fn);
        return proc_spawn(k, fn, arg, arglen, fd_in, fd_out, k->cfg.isolation);
}

/* Moves the events the poller reported for f into the process's pipes. */
void proc_bind_sockets(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        unsigned n = 0;
        p->new_sockets = 0;
        /* Sockets it closed (vk_socket_close): each must be one of its own. */
        for (int j = 0; j < VK_SOCKETS_MAX; j++) {
                int fd = p->closing[j] - 1, i = 0;
                if (fd < 0)
                        continue;
                p->closing[j] = 0;
                while (i < VK_SOCKETS_MAX && kp->extra[i] != fd + 1)
                        i++;
                if (i == VK_SOCKETS_MAX)
                        trust_fail("descriptor of a closed socket");
                kp->extra[i] = 0;
                kfd_close(k, fd);
        }
        for (struct vk_socket *s = trust_next_socket(p->sockets, &n); s;
             s = trust_next_socket(s->next, &n)) {
                if (s->bound)
                        continue;
                s->bound = 1;
                int fd = s->rx.fd, i = 0;
                /* What the process opened is nobody's yet (trust_socket checked
                 * that it is not the kernel's, a listener or another
                 * process's); one of its own named again is a corrupt record. */
                if (fd < 0 || s->tx.fd != fd || k->fds[fd].proc)
                        trust_fail("descriptor of a new socket");
                while (i < VK_SOCKETS_MAX && kp->extra[i])
                        i++;
                if (i == VK_SOCKETS_MAX) {
                        for (int j = 0; j < VK_SOCKETS_MAX; j++)
                                if (p->unbound[j] == fd + 1)
                                        p->unbound[j] = 0;
                        close(fd);
                        s->rx.fd = s->tx.fd = -1;
                        s->rx.err = s->tx.err = EMFILE;
                        s->rx.flags |= VK_PIPE_EOF;
                        s->tx.flags |= VK_PIPE_CLOSED;
                        if (s->rx.reader)
                                thread_ready(s->rx.reader);
                        if (s->tx.writer)
                                thread_ready(s->tx.writer);
                        continue;
                }
                kp->extra[i] = fd + 1;
                kfd_bind(k, fd, kp, &s->rx, &s->tx);
                /* the kernel's table owns it now, not the process's list */
                for (int j = 0; j < VK_SOCKETS_MAX; j++)
                        if (p->unbound[j] == fd + 1)
                                p->unbound[j] = 0;
        }
}

/* Takes the process's poller requests out of its heap. */
struct kproc *proc_lookup(struct vk_kernel *k, uint64_t pid)
{
        uint32_t slot = (uint32_t)(pid & 0xffffff);
        if (slot >= k->pool.used)
                return NULL;
        struct kproc *kp = &k->procs[slot];
        return kp->alive && kp->gen == (uint32_t)(pid >> 24) ? kp : NULL;
}

/* Appends a message to kp's staging buffer; 0, or -ENOBUFS (dropped). */

void proc_reap(struct vk_kernel *k, struct kproc *kp)
{
        struct fault_info why = {.code = ETIMEDOUT};
        snprintf(why.msg, sizeof why.msg, "not scheduled for %u ms: ended by the kernel",
                 k->cfg.idle_limit_ms);
        isolate_open(k, kp); /* its records are read (and checked) as it ends */
        proc_exit(k, kp, &why);
}

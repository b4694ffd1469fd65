/*
 * The scheduler: processes, the run queue, dispatch, the timer heap, the
 * accept loop and the poll loop of one kernel (one per worker OS process).
 *
 * Two levels: ready processes wait in a FIFO; a dispatch runs the ready
 * threads of one process back to back until they all block (bounded by a
 * budget for fairness), so whatever a process switch costs is paid once per
 * batch. Before a dispatch the kernel delivers the process's pending events
 * into its heap; after it, it takes the process's requests out (descriptors
 * to arm, deadlines, exit). The poller is called only when nothing is ready.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kern.h"

#define SCHED_BUDGET 64       /* thread resumptions per dispatch, or per check of the slice */
#define SCHED_ACCEPT_BATCH 64 /* connections accepted per listener per loop */
#define SCHED_EVENTS 256
/* Free heap slots kept warm for new processes; the rest are given back. */
#define SCHED_WARM_SLOTS 256

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Descriptor table. */

/* The table is sized for the descriptor limit when the kernel starts. */
static int fds_reserve(struct vk_kernel *k, int fd)
{
        return fd < k->nfds ? 0 : -EMFILE;
}

static void fd_close(struct vk_kernel *k, int fd)
{
        if (fd < 0)
                return;
        k->pb->forget(k->pl, fd, 1);
        if (fd < k->nfds)
                memset(&k->fds[fd], 0, sizeof k->fds[fd]);
        close(fd);
}

/* ------------------------------------------------------------------ */
/* Run queue and timers (kernel memory only). */

static void runq_push(struct vk_kernel *k, struct kproc *kp)
{
        if (kp->queued)
                return;
        kp->queued = 1;
        kp->next_run = NULL;
        if (k->runq_tail)
                k->runq_tail->next_run = kp;
        else
                k->runq_head = kp;
        k->runq_tail = kp;
}

static struct kproc *runq_pop(struct vk_kernel *k)
{
        struct kproc *kp = k->runq_head;
        if (!kp)
                return NULL;
        k->runq_head = kp->next_run;
        if (!k->runq_head)
                k->runq_tail = NULL;
        kp->queued = 0;
        return kp;
}

static void timer_swap(struct vk_kernel *k, uint32_t a, uint32_t b)
{
        struct kproc *t = k->timers[a];
        k->timers[a] = k->timers[b];
        k->timers[b] = t;
        k->timers[a]->timer_idx = a + 1;
        k->timers[b]->timer_idx = b + 1;
}

static void timer_up(struct vk_kernel *k, uint32_t i)
{
        while (i > 0) {
                uint32_t parent = (i - 1) / 2;
                if (k->timers[parent]->timer_when <= k->timers[i]->timer_when)
                        break;
                timer_swap(k, i, parent);
                i = parent;
        }
}

static void timer_down(struct vk_kernel *k, uint32_t i)
{
        for (;;) {
                uint32_t l = 2 * i + 1, r = l + 1, m = i;
                if (l < k->ntimers && k->timers[l]->timer_when < k->timers[m]->timer_when)
                        m = l;
                if (r < k->ntimers && k->timers[r]->timer_when < k->timers[m]->timer_when)
                        m = r;
                if (m == i)
                        return;
                timer_swap(k, i, m);
                i = m;
        }
}

static void timer_remove(struct vk_kernel *k, struct kproc *kp)
{
        if (!kp->timer_idx)
                return;
        uint32_t i = kp->timer_idx - 1;
        k->ntimers--;
        if (i != k->ntimers) {
                timer_swap(k, i, k->ntimers);
                timer_down(k, i);
                timer_up(k, i);
        }
        kp->timer_idx = 0;
        kp->timer_when = 0;
}

static int timer_set(struct vk_kernel *k, struct kproc *kp, uint64_t when)
{
        if (kp->timer_idx) {
                kp->timer_when = when;
                timer_up(k, kp->timer_idx - 1);
                return 0;
        }
        if (k->ntimers == k->timers_cap)
                return -ENOMEM; /* cannot happen: one entry per process at most */
        kp->timer_when = when;
        k->timers[k->ntimers++] = kp;
        kp->timer_idx = k->ntimers;
        timer_up(k, k->ntimers - 1);
        return 0;
}

/* After a dispatch in which deadlines changed: keep the process's entry at
 * or before its earliest deadline. A later deadline leaves the entry where it
 * is; it fires early, finds nothing due, and is set again. This keeps the
 * keep-alive pattern (a deadline renewed on every request) off the heap. */
static void timers_update(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        uint64_t min = UINT64_MAX;
        p->timers_dirty = 0;
        for (struct vk_thread *t = p->threads; t; t = t->next)
                if (t->deadline && t->state == VK_THREAD_BLOCKED && t->deadline < min)
                        min = t->deadline;
        if (min == UINT64_MAX)
                return;
        if (!kp->timer_idx || min < kp->timer_when)
                timer_set(k, kp, min);
}

static void timers_expire(struct vk_kernel *k)
{
        while (k->ntimers && k->timers[0]->timer_when <= k->now) {
                struct kproc *kp = k->timers[0];
                timer_remove(k, kp);
                kp->timer_fired = 1;
                runq_push(k, kp);
        }
}

/* ------------------------------------------------------------------ */
/* Idle memory. Ring pages are faulted in when bytes arrive. A process whose
 * rings are empty and whose threads all wait, for the configured idle time
 * (hibernate_ms), hibernates: the used front of its heap (header, threads,
 * frames: typically well under a page) is copied into the hibernation store
 * (protected like a heap), and the whole slot is given back in one madvise.
 * Its next dispatch copies it back to the same addresses, so every pointer
 * stays valid. This happens when the worker is about to sleep, never on the
 * request path; an idle connection then costs its copy, not a page. */

#define SCHED_TRIM_BATCH 1024 /* processes hibernated per sleep */

static void hibernate(struct vk_kernel *k, struct kproc *kp)
{
        char *base = (char *)kp->p;
        uint32_t top, ref = 0;
        isolate_open(k, kp);
        /* Its rings are empty and their pages go back: nothing in them for
         * the scrub at its end (heap_scrub) to wipe, or to fault in again. */
        for (struct vk_socket *s = kp->p->sockets; s; s = s->next)
                s->rx.ring.hwm = s->tx.ring.hwm = 0;
        top = kp->p->top;
        if (top <= HEAP_STORE_MAX)
                ref = heap_store_put(&k->store, base, top, &k->stats.protects);
        if (ref) {
                kp->saved = ref;
                kp->saved_len = top;
                madvise(base, k->pool.slot_size, MADV_DONTNEED);
        } else {
                madvise(base + kp->ring_off, k->pool.slot_size - kp->ring_off, MADV_DONTNEED);
        }
        isolate_close(k, kp);
}

/* Called with the heap open (dst NULL: the process is ending, only the
 * store's chunk is freed). */
static void wake_up(struct vk_kernel *k, struct kproc *kp, void *dst)
{
        if (!kp->saved)
                return;
        heap_store_take(&k->store, kp->saved, dst, kp->saved_len, &k->stats.protects);
        heap_store_seal(&k->store, &k->stats.protects);
        kp->saved = 0;
        kp->saved_len = 0;
}

static void idle_remove(struct vk_kernel *k, struct kproc *kp)
{
        if (!kp->idle_since)
                return;
        if (kp->idle_prev)
                kp->idle_prev->idle_next = kp->idle_next;
        else
                k->idle_head = kp->idle_next;
        if (kp->idle_next)
                kp->idle_next->idle_prev = kp->idle_prev;
        else
                k->idle_tail = kp->idle_prev;
        kp->idle_prev = kp->idle_next = NULL;
        kp->idle_since = 0;
}

static int rings_empty(const struct vk_proc *p)
{
        for (const struct vk_socket *s = p->sockets; s; s = s->next)
                if (ring_len(&s->rx.ring) || ring_len(&s->tx.ring))
                        return 0;
        return 1;
}

/* After a dispatch: rings that carried bytes and are empty now start their
 * idle clock. */
static void idle_note(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        if (!rings_empty(p))
                return;
        kp->idle_since = k->now ? k->now : 1;
        kp->idle_prev = k->idle_tail;
        kp->idle_next = NULL;
        if (k->idle_tail)
                k->idle_tail->idle_next = kp;
        else
                k->idle_head = kp;
        k->idle_tail = kp;
}

static void idle_trim(struct vk_kernel *k)
{
        struct kproc *kp;
        for (int n = 0; n < SCHED_TRIM_BATCH && (kp = k->idle_head) &&
                        kp->idle_since + k->idle_ns <= k->now;
             n++) {
                idle_remove(k, kp);
                hibernate(k, kp);
        }
        heap_store_seal(&k->store, &k->stats.protects);
        heap_pool_trim(&k->pool, SCHED_WARM_SLOTS);
}

/* ------------------------------------------------------------------ */
/* Processes. */

/* Ends a process: closes its descriptors, returns its heap. `fault`: why a
 * fault or runaway ended it (its heap is not trusted), else NULL. */
static void proc_exit(struct vk_kernel *k, struct kproc *kp, const struct fault_info *fault)
{
        struct vk_proc *p = kp->p;
        struct vk_error err = {0};
        /* From kernel memory: after a fault the heap's copy may be anything. */
        uint64_t pid = ((uint64_t)kp->gen << 24) | kp->slot;
        if (!fault) {
                k->stats.bytes_in += p->bytes_in;
                k->stats.bytes_out += p->bytes_out;
        }
        if (fault) {
                err.code = fault->code;
                memcpy(err.msg, fault->msg, sizeof err.msg);
                if (fault->code == EFAULT)
                        k->stats.faults++;
                else
                        k->stats.cpu_kills++;
        } else {
                err = p->exit_err;
        }
        if (kp->fd_out != kp->fd_in)
                fd_close(k, kp->fd_out);
        fd_close(k, kp->fd_in);
        for (int i = 0; i < VK_SOCKETS_MAX; i++)
                if (kp->extra[i])
                        fd_close(k, kp->extra[i] - 1);
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
        wake_up(k, kp, NULL); /* still hibernating: its stored front goes */
        kz_free(&k->zone, kp->mail);
        kp->mail = NULL;
        kp->mail_len = 0;
        k->stats.exited++;
        if (err.code == ENOMEM)
                k->stats.nomem++;
        else if (err.code == ETIMEDOUT)
                k->stats.timeouts++;
        k->stats.active--;
        if (err.code)
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

static void fd_bind(struct vk_kernel *k, int fd, struct kproc *kp, struct vk_pipe *rx,
                    struct vk_pipe *tx)
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
static int64_t proc_spawn(struct vk_kernel *k, vk_thread_fn *fn, const void *arg, size_t arglen,
                          int fd_in, int fd_out, enum vk_isolation isolation)
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
        if (has_io && (r = fds_reserve(k, fd_in > fd_out ? fd_in : fd_out)) < 0)
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
                fd_bind(k, fd_in, kp, NULL, NULL);
                if (fd_out != fd_in)
                        fd_bind(k, fd_out, kp, NULL, NULL);
        }
        k->stats.spawned++;
        k->stats.active++;
        runq_push(k, kp);
        return (int64_t)(((uint64_t)gen << 24) | slot);

fail_slot:
        heap_pool_put(&k->pool, slot);
fail:
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
static void proc_birth(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        struct vk_socket *s = NULL;
        struct vk_thread *t;
        kp->unborn = 0;
        heap_init(p, k->pool.slot_size);
        p->kernel = k;
        p->ring_size = (uint32_t)k->cfg.ring_size;
        p->pid = ((uint64_t)kp->gen << 24) | kp->slot;
        if (kp->fd_in >= 0 && kp->fd_out >= 0) {
                s = vk_malloc(p, sizeof *s);
                if (!s || pipe_init_fd(p, &s->rx, kp->fd_in, 0, k->cfg.ring_size) < 0 ||
                    pipe_init_fd(p, &s->tx, kp->fd_out, 1, k->cfg.ring_size) < 0)
                        goto nomem;
                s->next = NULL;
                s->bound = 1;
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
        return proc_spawn(k, fn, arg, arglen, fd_in, fd_out, k->cfg.isolation);
}

/* Moves the events the poller reported for f into the process's pipes. */
static void deliver(struct vk_kernel *k, struct vk_proc *p, struct kfd *f, uint32_t ev)
{
        struct vk_pipe *x = f->rx;
        if (x && (ev & (POLLER_IN | POLLER_HUP | POLLER_ERR))) {
                x->flags |= VK_PIPE_READY;
                if (ev & (POLLER_HUP | POLLER_ERR))
                        x->flags |= VK_PIPE_RDHUP;
                if (k->pb->oneshot)
                        x->flags &= (uint16_t)~VK_PIPE_ARMED;
                x->flags &= (uint16_t)~VK_PIPE_WANT;
                if (x->reader)
                        thread_ready(x->reader);
        }
        x = f->tx;
        if (x && (ev & (POLLER_OUT | POLLER_HUP | POLLER_ERR))) {
                x->flags |= VK_PIPE_READY;
                if (k->pb->oneshot)
                        x->flags &= (uint16_t)~VK_PIPE_ARMED;
                x->flags &= (uint16_t)~VK_PIPE_WANT;
                /* Output left behind by a lazy flush leaves now. */
                if (ring_len(&x->ring) && pipe_drain(p, x) == -EAGAIN)
                        pipe_want(p, x);
                if (x->writer)
                        thread_ready(x->writer);
        }
}

/* Binds the sockets the process opened (vk_socket_open) to it in the
 * descriptor table, so their events reach it and teardown closes them. */
static void bind_new_sockets(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        p->new_sockets = 0;
        for (struct vk_socket *s = p->sockets; s; s = s->next) {
                if (s->bound)
                        continue;
                s->bound = 1;
                int fd = s->rx.fd, i = 0;
                while (i < VK_SOCKETS_MAX && kp->extra[i])
                        i++;
                if (i == VK_SOCKETS_MAX || fds_reserve(k, fd) < 0 || k->fds[fd].proc ||
                    k->fds[fd].server || k->fds[fd].kernel) {
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
                fd_bind(k, fd, kp, &s->rx, &s->tx);
                /* the kernel's table owns it now, not the process's list */
                for (int j = 0; j < VK_SOCKETS_MAX; j++)
                        if (p->unbound[j] == fd + 1)
                                p->unbound[j] = 0;
        }
}

/* Takes the process's poller requests out of its heap. */
static void arm_dirty(struct vk_kernel *k, struct vk_proc *p)
{
        struct vk_pipe *x;
        while ((x = p->dirty)) {
                p->dirty = x->next_dirty;
                x->flags &= (uint16_t)~VK_PIPE_DIRTY;
                if (x->flags & VK_PIPE_ARMED || x->fd < 0)
                        continue;
                struct kfd *f = &k->fds[x->fd];
                uint32_t ev = 0;
                /* An edge-triggered poller is armed once for both directions;
                 * a one-shot one only for what is awaited. */
                if (f->rx && (!k->pb->oneshot || (f->rx->flags & VK_PIPE_WANT)))
                        ev |= POLLER_IN;
                if (f->tx && (!k->pb->oneshot || (f->tx->flags & VK_PIPE_WANT)))
                        ev |= POLLER_OUT;
                int r = k->pb->arm(k->pl, x->fd, ev);
                if (r == 0) {
                        if (f->rx && (ev & POLLER_IN))
                                f->rx->flags |= VK_PIPE_ARMED;
                        if (f->tx && (ev & POLLER_OUT))
                                f->tx->flags |= VK_PIPE_ARMED;
                        continue;
                }
                /* Not pollable (or the poller failed): treat it as always
                 * ready and let the syscall itself say what is wrong. */
                x->flags &= (uint16_t)~VK_PIPE_POLLABLE;
                x->flags |= VK_PIPE_READY;
                if (x->reader)
                        thread_ready(x->reader);
                if (x->writer)
                        thread_ready(x->writer);
        }
}

/* ------------------------------------------------------------------ */
/* Messages: the kernel side. After a dispatch, the process's outbox is
 * emptied into the staging buffers of the receivers (kernel memory); before
 * a receiver's dispatch, what fits is copied into its inbox. Two copies, no
 * shared memory, and a batch of messages costs one switch each way. */

static struct kproc *proc_lookup(struct vk_kernel *k, uint64_t pid)
{
        uint32_t slot = (uint32_t)(pid & 0xffffff);
        if (slot >= k->pool.used)
                return NULL;
        struct kproc *kp = &k->procs[slot];
        return kp->alive && kp->gen == (uint32_t)(pid >> 24) ? kp : NULL;
}

/* Appends a message to kp's staging buffer; 0, or -ENOBUFS (dropped). */
static int mail_stage(struct vk_kernel *k, struct kproc *kp, const struct msg_head *h,
                      struct vk_ring *from_ring)
{
        uint32_t body = h->len == MSG_BOUNCE ? 0 : h->len;
        uint32_t need = (uint32_t)sizeof *h + body;
        if (kp->mail_len + need > MSG_STAGE_MAX) {
                k->stats.msgs_dropped++;
                if (from_ring)
                        ring_consume(from_ring, body);
                return -ENOBUFS;
        }
        if (kp->mail_len + need > kz_size(kp->mail)) {
                char *m = kz_realloc(&k->zone, kp->mail, kp->mail_len + need);
                if (!m) {
                        k->stats.msgs_dropped++;
                        if (from_ring)
                                ring_consume(from_ring, body);
                        return -ENOBUFS;
                }
                kp->mail = m;
        }
        memcpy(kp->mail + kp->mail_len, h, sizeof *h);
        if (body)
                ring_read(from_ring, kp->mail + kp->mail_len + sizeof *h, body);
        kp->mail_len += need;
        return 0;
}

/* After a dispatch, with the heap open. */
static void mail_out(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        struct vk_ring *out = p->outbox;
        if (!out || !ring_len(out))
                return;
        while (ring_len(out) >= sizeof(struct msg_head)) {
                struct msg_head h;
                ring_read(out, &h, sizeof h);
                struct kproc *dst = proc_lookup(k, h.peer);
                if (!dst) {
                        /* gone: the sender learns it from its inbox */
                        ring_consume(out, h.len);
                        struct msg_head b = {.len = MSG_BOUNCE, .peer = h.peer};
                        mail_stage(k, kp, &b, NULL);
                        continue;
                }
                h.peer = p->pid;
                if (mail_stage(k, dst, &h, out) == 0 && dst != kp)
                        runq_push(k, dst);
        }
        if (p->sender) {
                thread_ready(p->sender);
                p->sender = NULL;
        }
}

/* Before a dispatch, with the heap open: staged messages into the inbox. */
static void mail_in(struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        struct vk_ring *in = p->inbox;
        uint32_t at = 0;
        if (!kp->mail_len || !in)
                return;
        while (at < kp->mail_len) {
                struct msg_head h; /* messages are packed: headers are unaligned */
                memcpy(&h, kp->mail + at, sizeof h);
                uint32_t need = (uint32_t)sizeof h + (h.len == MSG_BOUNCE ? 0 : h.len);
                if (ring_space(in) < need)
                        break;
                ring_write(in, kp->mail + at, need);
                at += need;
        }
        if (!at)
                return;
        memmove(kp->mail, kp->mail + at, kp->mail_len - at);
        kp->mail_len -= at;
        if (p->receiver) {
                thread_ready(p->receiver);
                p->receiver = NULL;
        }
}

/* Takes the figures a dispatch left in the heap into the kernel's. */
static void harvest(struct vk_kernel *k, struct vk_proc *p)
{
        k->stats.bytes_in += p->bytes_in;
        k->stats.bytes_out += p->bytes_out;
        p->bytes_in = p->bytes_out = 0;
        if (!p->nreq)
                return;
        k->stats.requests += p->nreq;
        p->nreq = 0;
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++) {
                k->stats.latency[i] += p->lat[i];
                p->lat[i] = 0;
        }
}

/* Runs the ready threads of one process. A fault or a runaway loop in them
 * comes back through sigsetjmp and ends the process alone. */
static void dispatch(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        k->stats.dispatches++;
        /* Deadlines the threads set are relative to this: a clock left from
         * the last poll would shorten them by every dispatch run since. */
        k->now = now_ns();
        idle_remove(k, kp);
        isolate_switch(k, kp);
        if (kp->unborn)
                proc_birth(k, kp);
        wake_up(k, kp, kp->p);
        mail_in(kp);
        while (kp->pending >= 0) {
                struct kfd *f = &k->fds[kp->pending];
                uint32_t ev = f->revents;
                kp->pending = f->next_pending;
                f->next_pending = -1;
                f->pending = 0;
                f->revents = 0;
                deliver(k, p, f, ev);
        }
        if (kp->timer_fired) {
                kp->timer_fired = 0;
                /* Due threads wake in deadline order, not in list order: pick
                 * the earliest each time (waking clears its deadline). */
                for (;;) {
                        struct vk_thread *due = NULL;
                        for (struct vk_thread *t = p->threads; t; t = t->next)
                                if (t->deadline && t->deadline <= k->now &&
                                    t->state == VK_THREAD_BLOCKED &&
                                    (!due || t->deadline < due->deadline))
                                        due = t;
                        if (!due)
                                break;
                        thread_timeout(due);
                }
                p->timers_dirty = 1;
        }
        fault_dispatch_seq++;
        if (sigsetjmp(fault_jmp, 0)) {
                isolate_leave(k, kp);
                proc_exit(k, kp, &fault_last);
                return;
        }
        isolate_enter(k, kp);
        fault_in_dispatch = 1;
        /*
         * Dispatch aggregation: the process runs its ready threads back to
         * back, SCHED_BUDGET resumptions at a time. A privileged one yields
         * then (a switch costs it next to nothing); a protected one goes on
         * while its slice lasts, since each switch costs it two to four
         * protection changes (microseconds) that a longer run amortizes:
         * a pipelining client's whole batch, not a budget's worth of it.
         */
        for (unsigned budget = SCHED_BUDGET; !p->exiting; budget--) {
                if (!budget) {
                        if (kp->isolation == VK_ISOLATION_PRIVILEGED ||
                            now_ns() - k->now >= k->cfg.slice_us * KERN_NS_PER_US)
                                break;
                        budget = SCHED_BUDGET;
                }
                struct vk_thread *t = p->runq_head;
                if (!t)
                        break;
                p->runq_head = t->next_ready;
                if (!p->runq_head)
                        p->runq_tail = NULL;
                t->queued = 0;
                if (t->state != VK_THREAD_READY)
                        continue;
                fault_thread = t;
                t->fn(t);
        }
        fault_in_dispatch = 0;
        isolate_leave(k, kp);
        harvest(k, p);
        mail_out(k, kp); /* what a process sent as it ended still goes */
        if (p->new_sockets)
                bind_new_sockets(k, kp);
        if (p->exiting) {
                proc_exit(k, kp, NULL);
                return;
        }
        arm_dirty(k, p);
        if (p->timers_dirty)
                timers_update(k, kp);
        /* Mail that arrived for a thread that only now waits for it. */
        if (kp->mail_len && p->receiver && p->inbox && ring_space(p->inbox))
                mail_in(kp);
        if (p->runq_head)
                runq_push(k, kp);
        else
                idle_note(k, kp);
}

/* ------------------------------------------------------------------ */
/* Listeners. */

int vk_kernel_listen(struct vk_kernel *k, int fd, vk_thread_fn *fn, const void *arg,
                     size_t arglen)
{
        return vk_kernel_listen_with(k, fd, fn, arg, arglen, k->cfg.isolation);
}

int vk_kernel_listen_with(struct vk_kernel *k, int fd, vk_thread_fn *fn, const void *arg,
                          size_t arglen, enum vk_isolation isolation)
{
        /* In kernel memory: a listener's function and argument are what
         * every new connection runs. */
        struct kserver *s = kz_calloc(&k->zone, sizeof *s);
        if (!s)
                return -ENOMEM;
        if (arglen) {
                s->arg = kz_calloc(&k->zone, arglen);
                if (!s->arg) {
                        kz_free(&k->zone, s);
                        return -ENOMEM;
                }
                memcpy(s->arg, arg, arglen);
        }
        int r = fds_reserve(k, fd);
        if (r == 0)
                r = k->pb->arm(k->pl, fd, POLLER_IN | POLLER_EXCLUSIVE);
        if (r < 0) {
                kz_free(&k->zone, s->arg);
                kz_free(&k->zone, s);
                return r;
        }
        s->fd = fd;
        s->isolation = (uint8_t)isolation;
        s->fn = fn;
        s->arglen = arglen;
        s->ready = 1; /* connections may already be waiting */
        s->next = k->servers;
        k->servers = s;
        memset(&k->fds[fd], 0, sizeof k->fds[fd]);
        k->fds[fd].server = s;
        k->fds[fd].next_pending = -1;
        return 0;
}

static void accept_ready(struct vk_kernel *k)
{
        static const int one = 1;
        for (struct kserver *s = k->servers; s; s = s->next) {
                for (int n = 0; s->ready && n < SCHED_ACCEPT_BATCH; n++) {
                        if (k->stats.active >= k->cfg.max_procs)
                                return; /* stays ready: retried when a process ends */
                        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (fd < 0) {
                                if (errno == EINTR || errno == ECONNABORTED)
                                        continue;
                                /* EAGAIN, or out of descriptors/memory: wait for
                                 * the next edge rather than spin. */
                                s->ready = 0;
                                if (k->pb->oneshot)
                                        k->pb->arm(k->pl, s->fd, POLLER_IN);
                                break;
                        }
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        proc_spawn(k, s->fn, s->arg, s->arglen, fd, fd, s->isolation);
                }
        }
}

static void servers_close(struct vk_kernel *k)
{
        struct kserver *s;
        while ((s = k->servers)) {
                k->servers = s->next;
                k->pb->forget(k->pl, s->fd, 0);
                memset(&k->fds[s->fd], 0, sizeof k->fds[s->fd]);
                kz_free(&k->zone, s->arg);
                kz_free(&k->zone, s);
        }
}

/* ------------------------------------------------------------------ */
/* The loop. */

static void route(struct vk_kernel *k, const struct poller_event *e)
{
        if (e->fd == k->wake_pipe[0]) {
                char buf[64];
                while (read(e->fd, buf, sizeof buf) > 0)
                        ;
                k->stop_requested = 1; /* the pipe's only writer is vk_kernel_stop() */
                if (k->pb->oneshot)
                        k->pb->arm(k->pl, e->fd, POLLER_IN);
                return;
        }
        if (e->fd < 0 || e->fd >= k->nfds)
                return;
        struct kfd *f = &k->fds[e->fd];
        if (f->server) {
                f->server->ready = 1;
                return;
        }
        struct kproc *kp = f->proc;
        if (!kp || !kp->alive)
                return;
        f->revents |= e->events;
        if (!f->pending) {
                f->pending = 1;
                f->next_pending = kp->pending;
                kp->pending = e->fd;
        }
        runq_push(k, kp);
}

static int servers_ready(const struct vk_kernel *k)
{
        if (k->stats.active >= k->cfg.max_procs)
                return 0;
        for (const struct kserver *s = k->servers; s; s = s->next)
                if (s->ready)
                        return 1;
        return 0;
}

static int poll_timeout(const struct vk_kernel *k)
{
        if (k->runq_head || servers_ready(k))
                return 0;
        uint64_t when = UINT64_MAX;
        if (k->ntimers)
                when = k->timers[0]->timer_when;
        if (k->idle_head && k->idle_head->idle_since + k->idle_ns < when)
                when = k->idle_head->idle_since + k->idle_ns;
        if (k->on_tick && k->next_tick < when)
                when = k->next_tick;
        if (when == UINT64_MAX)
                return -1;
        if (when <= k->now)
                return 0;
        uint64_t ms = (when - k->now + KERN_NS_PER_MS - 1) / KERN_NS_PER_MS;
        return ms > 60000 ? 60000 : (int)ms;
}

/* Stopping, and only the service's own process is left: it is told with
 * ECANCELED raised in its main thread, so its finally block can save what it
 * must (an append-only file, say) and end. */
static void stop_service(struct vk_kernel *k)
{
        k->service_told = 1;
        struct kproc *kp = proc_lookup(k, k->service_pid);
        if (!kp)
                return;
        isolate_open(k, kp);
        if (kp->unborn)
                proc_birth(k, kp);
        wake_up(k, kp, kp->p);
        if (kp->p->main)
                vk_raise_at(kp->p->main, ECANCELED, "the worker is stopping");
        if (kp->p->runq_head)
                runq_push(k, kp);
        isolate_close(k, kp);
}

int vk_kernel_run(struct vk_kernel *k)
{
        struct poller_event ev[SCHED_EVENTS];
        k->now = now_ns();
        for (;;) {
                if (k->stop_requested && !k->stopping) {
                        k->stopping = 1;
                        servers_close(k);
                }
                accept_ready(k);
                struct kproc *kp;
                struct kproc *last = k->runq_tail;
                /* One pass over what is ready now; processes made ready by
                 * this pass run after the next poll, so I/O is not starved. */
                while ((kp = runq_pop(k))) {
                        if (kp->alive)
                                dispatch(k, kp);
                        if (kp == last)
                                break;
                }
                if (!k->stats.active && !k->runq_head && (k->stopping || !k->servers))
                        return 0;
                if (k->stopping && k->stats.active == 1 && !k->service_told)
                        stop_service(k);
                if (!k->runq_head) /* about to sleep: a good moment to give memory back */
                        idle_trim(k);
                if (k->on_tick && k->now >= k->next_tick) {
                        k->next_tick = k->now + k->tick_ns;
                        k->on_tick(k->on_tick_ctx);
                }
                int timeout = poll_timeout(k);
                int n = k->pb->wait(k->pl, timeout, ev, SCHED_EVENTS);
                k->stats.polls++;
                if (n < 0 && n != -EINTR)
                        return n;
                k->now = now_ns();
                for (int i = 0; i < n; i++)
                        route(k, &ev[i]);
                timers_expire(k);
        }
}

/* Only a byte down the wake pipe: a signal handler may run while an
 * unprivileged process is dispatched and kernel memory is read-only, so a
 * store here would fault (and end that process instead of stopping). The
 * loop sets stop_requested when it drains the pipe. */
void vk_kernel_stop(struct vk_kernel *k)
{
        int saved = errno;
        /* From a signal handler the arena's key denies even reading it. */
        unsigned long rights = fault_rights_open();
        if (write(k->wake_pipe[1], "", 1) < 0) {
                /* full pipe: a wake-up is already pending */
        }
        fault_rights_restore(rights);
        errno = saved;
}

/* ------------------------------------------------------------------ */
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
                r = heap_store_init(&k->store, cfg.max_procs);
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
        int own[3] = {k->wake_pipe[0], k->wake_pipe[1], pb->fileno(k->pl)};
        for (int i = 0; i < 3; i++)
                if (own[i] >= 0 && own[i] < k->nfds)
                        k->fds[own[i]].kernel = 1;
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
        k->now = now_ns();
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
                wake_up(k, kp, kp->p);
                proc_exit(k, kp, NULL);
        }
        servers_close(k);
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

uint64_t vk_kernel_latency_quantile(const struct vk_kernel_stats *st, double q)
{
        uint64_t total = 0, seen = 0;
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++)
                total += st->latency[i];
        if (!total)
                return 0;
        uint64_t want = (uint64_t)(q * (double)total);
        if (want >= total)
                want = total - 1;
        for (int i = 0; i < VK_LATENCY_BUCKETS; i++) {
                seen += st->latency[i];
                if (seen > want)
                        return (1ull << i) * 1000; /* bucket i ends at 2^i us */
        }
        return (1ull << (VK_LATENCY_BUCKETS - 1)) * 1000;
}

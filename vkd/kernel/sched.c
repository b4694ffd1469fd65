/*
 * The scheduler: the run queue, dispatch and the poll loop of one kernel
 * (one per worker OS process). Processes are in proc.c, timers in timer.c,
 * messages in mail.c, listeners in listen.c, idle memory in idle.c.
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

#define SCHED_BUDGET 64 /* thread resumptions per dispatch, or per check of the slice */
#define SCHED_EVENTS 256

/* ------------------------------------------------------------------ */
/* Run queue and timers (kernel memory only). */

void proc_ready(struct vk_kernel *k, struct kproc *kp)
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

static struct kproc *proc_next(struct vk_kernel *k)
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
static void deliver(struct vk_kernel *k, struct vk_proc *p, struct kfd *f, uint32_t ev)
{
        struct vk_pipe *x = trust_pipe(f->rx);
        /* Over TLS either direction may wait for the other (a handshake
         * reads while the module writes, a read may have to write): any
         * edge retries both, and a wrong guess costs one WANT_* back. */
        if (x && (ev & (POLLER_IN | POLLER_OUT)) && tls_of(k, x->fd))
                ev |= POLLER_IN | POLLER_OUT;
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
        x = trust_pipe(f->tx);
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
static void arm_dirty(struct vk_kernel *k, struct vk_proc *p)
{
        struct vk_pipe *x;
        unsigned n = 0;
        while ((x = trust_pipe(p->dirty))) {
                /* each pollable pipe once: two per socket */
                if (++n > 2 * (VK_SOCKETS_MAX + 1))
                        trust_fail("list of pipes to arm");
                p->dirty = x->next_dirty;
                x->flags &= (uint16_t)~VK_PIPE_DIRTY;
                if (x->flags & VK_PIPE_ARMED || x->fd < 0)
                        continue;
                struct kfd *f = &k->fds[trust_fd(x->fd, 1)];
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

static void harvest(struct vk_kernel *k, struct vk_proc *p)
{
        k->stats.bytes_in += p->bytes_in;
        k->stats.bytes_out += p->bytes_out;
        p->bytes_in = p->bytes_out = 0;
        if (!p->nreq)
                return;
        k->stats.requests += p->nreq;
        p->nreq = 0;
        k->stats.latency_sum_us += p->lat_sum_us;
        p->lat_sum_us = 0;
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
        volatile int running = 0; /* in its threads: unprivileged, the arena is read-only */
        k->stats.dispatches++;
        /* Deadlines the threads set are relative to this: a clock left from
         * the last poll would shorten them by every dispatch run since. */
        k->now = kern_now_ns();
        kp->last_run = k->now;
        idle_remove(k, kp);
        isolate_switch(k, kp);
        if (kp->unborn)
                proc_birth(k, kp);
        idle_wake(k, kp, kp->p);
        /*
         * From here the kernel reads what the process may have written: a
         * hardware fault or a runaway loop in its threads, and a corrupt
         * record the kernel finds before, during or after them (trust.c),
         * come back here and end this process alone.
         */
        kern_act_for(k, kp);
        fault_dispatch_seq++;
        if (sigsetjmp(fault_jmp, 0)) {
                if (running)
                        isolate_leave(k, kp);
                proc_exit(k, kp, &fault_last);
                kern_act_done();
                return;
        }
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
                        unsigned n = 0;
                        for (struct vk_thread *t = trust_next_thread(p->threads, &n, TRUST_THREADS);
                             t; t = trust_next_thread(t->next, &n, TRUST_THREADS))
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
        isolate_enter(k, kp);
        running = 1;
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
                            kern_now_ns() - k->now >= k->cfg.slice_us * KERN_NS_PER_US)
                                break;
                        budget = SCHED_BUDGET;
                }
                struct vk_thread *t = trust_thread(p->runq_head);
                if (!t)
                        break;
                p->runq_head = t->next_ready;
                if (!p->runq_head)
                        p->runq_tail = NULL;
                t->queued = 0;
                if (t->state != VK_THREAD_READY)
                        continue;
                if (t->fn_seal != thread_seal(k, t))
                        trust_fail("thread function");
                fault_thread = t;
                t->fn(t);
        }
        fault_in_dispatch = 0;
        isolate_leave(k, kp);
        running = 0;
        trust_settle();
        harvest(k, p);
        kp->front_end = p->top_max; /* where a revoke splits: isolate.c */
        kp->rings_start = p->low;
        mail_out(k, kp); /* what a process sent as it ended still goes */
        if (p->new_sockets)
                proc_bind_sockets(k, kp);
        trust_settle();
        if (p->exiting) {
                proc_exit(k, kp, NULL);
                kern_act_done();
                return;
        }
        arm_dirty(k, p);
        if (p->timers_dirty)
                timers_update(k, kp);
        timers_limit(k, kp);
        /* Mail that arrived for a thread that only now waits for it. */
        if (kp->mail_len && p->receiver && p->inbox)
                mail_in(kp);
        if (p->runq_head)
                proc_ready(k, kp);
        else
                idle_note(k, kp);
        kern_act_done();
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
        proc_ready(k, kp);
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
        idle_wake(k, kp, kp->p);
        kern_act_for(k, kp);
        if (sigsetjmp(fault_jmp, 0)) {
                proc_exit(k, kp, &fault_last);
                kern_act_done();
                isolate_close(k, kp);
                return;
        }
        struct vk_thread *main = trust_thread(kp->p->main);
        if (main)
                vk_raise_at(main, ECANCELED, "the worker is stopping");
        if (kp->p->runq_head)
                proc_ready(k, kp);
        kern_act_done();
        isolate_close(k, kp);
}

int vk_kernel_run(struct vk_kernel *k)
{
        struct poller_event ev[SCHED_EVENTS];
        k->now = kern_now_ns();
        for (;;) {
                if (k->stop_requested && !k->stopping) {
                        k->stopping = 1;
                        listen_stop_all(k);
                }
                listen_accept(k);
                struct kproc *kp;
                struct kproc *last = k->runq_tail;
                /* One pass over what is ready now; processes made ready by
                 * this pass run after the next poll, so I/O is not starved. */
                while ((kp = proc_next(k))) {
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
                k->now = kern_now_ns();
                for (int i = 0; i < n; i++)
                        route(k, &ev[i]);
                if (n == SCHED_EVENTS)
                        listen_try_all(k);
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

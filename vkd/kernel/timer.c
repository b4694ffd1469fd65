/*
 * The timer heap of one kernel: a binary min-heap of processes by their
 * earliest deadline, in kernel memory only. A process has at most one entry,
 * set after a dispatch in which its threads changed deadlines.
 */
#include "kern.h"

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

void timer_remove(struct vk_kernel *k, struct kproc *kp)
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

int timer_set(struct vk_kernel *k, struct kproc *kp, uint64_t when)
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
void timers_update(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        uint64_t min = UINT64_MAX;
        unsigned n = 0;
        p->timers_dirty = 0;
        for (struct vk_thread *t = trust_next_thread(p->threads, &n, TRUST_THREADS); t;
             t = trust_next_thread(t->next, &n, TRUST_THREADS))
                if (t->deadline && t->state == VK_THREAD_BLOCKED && t->deadline < min)
                        min = t->deadline;
        if (min == UINT64_MAX)
                return;
        if (!kp->thread_when || min < kp->thread_when)
                kp->thread_when = min;
        if (!kp->timer_idx || min < kp->timer_when)
                timer_set(k, kp, min);
}

/* After a dispatch, with the kernel's idle limit on: the process has an
 * entry no later than the limit (an earlier one moves it on when it fires). */
void timers_limit(struct vk_kernel *k, struct kproc *kp)
{
        if (!k->idle_limit_ns || kproc_pid(kp) == k->service_pid)
                return;
        /* Also under a later deadline: one its heap made up could be years away. */
        uint64_t limit = kp->last_run + k->idle_limit_ns;
        if (!kp->timer_idx || kp->timer_when > limit)
                timer_set(k, kp, limit);
}

void timers_expire(struct vk_kernel *k)
{
        while (k->ntimers && k->timers[0]->timer_when <= k->now) {
                struct kproc *kp = k->timers[0];
                timer_remove(k, kp);
                if (kp->thread_when && kp->thread_when <= k->now) {
                        kp->thread_when = 0;
                        kp->timer_fired = 1;
                        proc_ready(k, kp);
                        continue;
                }
                /* Only the idle limit is due: kernel records decide, never the heap. */
                uint64_t limit = kp->last_run + k->idle_limit_ns;
                if (!k->idle_limit_ns || kproc_pid(kp) == k->service_pid)
                        continue;
                if (limit <= k->now && !kp->queued && !kp->unborn) {
                        proc_reap(k, kp);
                        continue;
                }
                if (limit <= k->now)
                        limit = k->now + k->idle_limit_ns;
                timer_set(k, kp,
                          kp->thread_when && kp->thread_when < limit ? kp->thread_when : limit);
        }
}

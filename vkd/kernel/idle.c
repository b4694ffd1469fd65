/*
 * Idle memory: hibernation of processes whose rings stayed empty, and the
 * warm pool of free heap slots.
 */
#include <sys/mman.h>

#include "kern.h"

/* Idle memory. Ring pages are faulted in when bytes arrive. A process whose
 * rings are empty and whose threads all wait, for the configured idle time
 * (hibernate_ms), hibernates: the used front of its heap (header, threads,
 * frames: typically well under a page) is copied into the hibernation store
 * (protected like a heap), and the whole slot is given back in one madvise.
 * Its next dispatch copies it back to the same addresses, so every pointer
 * stays valid. This happens when the worker is about to sleep, never on the
 * request path; an idle connection then costs its copy, not a page. */

#define IDLE_TRIM_BATCH 1024 /* processes hibernated per sleep */
/* Free heap slots kept warm for new processes; the rest are given back. */
#define IDLE_WARM_SLOTS 256

static void hibernate(struct vk_kernel *k, struct kproc *kp)
{
        char *base = (char *)kp->p;
        uint32_t top, ref = 0;
        isolate_open(k, kp);
        /* Its rings are empty and their pages go back: nothing in them for
         * the scrub at its end (heap_scrub) to wipe, or to fault in again. */
        /* The list was checked after the process last ran (idle_note) and
         * nothing ran in it since; the walk stays bounded and inside anyway. */
        unsigned n = 0;
        for (struct vk_socket *s = kp->p->sockets;
             s && n++ <= VK_SOCKETS_MAX && (char *)s >= base &&
             (char *)(s + 1) <= base + k->pool.slot_size;
             s = s->next)
                s->rx.ring.hwm = s->tx.ring.hwm = 0;
        top = kp->p->top;
        /* The heap's word for its front: one that cannot be (a stray write
         * over it) keeps the front in place; the process finds out itself. */
        if (top >= sizeof(struct vk_proc) && top <= HEAP_STORE_MAX)
                ref = heap_store_put(&k->store, base, top);
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
void idle_wake(struct vk_kernel *k, struct kproc *kp, void *dst)
{
        if (!kp->saved)
                return;
        heap_store_take(&k->store, kp->saved, dst, kp->saved_len);
        kp->saved = 0;
        kp->saved_len = 0;
}

void idle_remove(struct vk_kernel *k, struct kproc *kp)
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
        unsigned n = 0;
        for (const struct vk_socket *s = trust_next_socket(p->sockets, &n); s;
             s = trust_next_socket(s->next, &n))
                if (ring_len(&s->rx.ring) || ring_len(&s->tx.ring))
                        return 0;
        return 1;
}

/* After a dispatch: rings that carried bytes and are empty now start their
 * idle clock. */
void idle_note(struct vk_kernel *k, struct kproc *kp)
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

void idle_trim(struct vk_kernel *k)
{
        struct kproc *kp;
        for (int n = 0;
             n < IDLE_TRIM_BATCH && (kp = k->idle_head) && kp->idle_since + k->idle_ns <= k->now;
             n++) {
                idle_remove(k, kp);
                hibernate(k, kp);
        }
        heap_pool_trim(&k->pool, IDLE_WARM_SLOTS);
}

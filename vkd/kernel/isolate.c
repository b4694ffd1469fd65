/*
 * Memory protection around a dispatch. An isolated process's heap is
 * PROT_NONE except while it runs, so a stray pointer from anywhere else
 * faults instead of corrupting it. While an unprivileged process runs, the
 * kernel arena is write-protected: with a memory protection key when the CPU
 * has them (a WRPKRU instruction, no system call), else with mprotect.
 *
 * Costs per process switch, in system calls: privileged 0, isolated 2 (close
 * one heap, open the next), unprivileged 2 with pkeys or 4 without. Dispatch
 * aggregation pays them once for every ready thread of the process, and a
 * process dispatched again with no other in between pays nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kern.h"

#define ARENA_HUGE ((size_t)2 << 20)

/*
 * Without protection keys, an unprivileged dispatch write-protects the arena
 * and opens it again: two mprotect calls whose cost grows with the pages they
 * change. On 4 KiB pages a few dozen resident ones make each call walk and
 * rewrite that many entries and flush the whole TLB (the range is past the
 * kernel's single-page flush ceiling); on 2 MiB pages it is one entry and one
 * flush per huge page touched. The price is memory: each 2 MiB region of the
 * arena a worker touches is resident whole (two of them for the usual
 * layout, see vk_kernel_new), so only unprivileged kernels ask for it.
 * VKD_HUGE_PAGES=0 turns it off (to measure the difference).
 */
int isolate_thp_available(void)
{
#ifdef MADV_HUGEPAGE
        const char *env = getenv("VKD_HUGE_PAGES");
        if (env && !strcmp(env, "0"))
                return 0;
        char buf[128] = "";
        FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
        if (!f)
                return 0;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        return strstr(buf, "[never]") == NULL;
#else
        return 0;
#endif
}

char *isolate_arena_map(size_t *len, int *huge)
{
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        if (*huge)
                *huge = isolate_thp_available();
        size_t align = *huge ? ARENA_HUGE : page;
        size_t n = (*len + align - 1) & ~(align - 1);
        /* Over-allocate by one alignment unit, then trim to an aligned start. */
        size_t over = *huge ? n + align : n;
        char *m = mmap(NULL, over, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
                return NULL;
        char *a = (char *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
        if (a > m)
                munmap(m, (size_t)(a - m));
        if (a + n < m + over)
                munmap(a + n, (size_t)(m + over - (a + n)));
#ifdef MADV_HUGEPAGE
        if (*huge && madvise(a, n, MADV_HUGEPAGE) < 0)
                *huge = 0; /* no THP in this kernel: 4 KiB pages it is */
#endif
        *len = n;
        return a;
}

/* What an unprivileged dispatch flips: the arena up to the end of the kernel
 * zone's committed part (the rest is PROT_NONE anyway). */
static size_t arena_span(const struct vk_kernel *k)
{
        return (size_t)(k->zone.base + k->zone.committed - k->arena);
}

int isolate_init(struct vk_kernel *k)
{
        k->pkey = -1;
#if defined(__linux__) && defined(PKEY_DISABLE_WRITE)
        const char *env = getenv("VKD_PKEYS");
        if (env && !strcmp(env, "0"))
                return 0;
        int key = pkey_alloc(0, 0);
        if (key < 0)
                return 0; /* no PKU on this CPU or kernel: mprotect it is */
        /* The zone's uncommitted tail stays PROT_NONE, under the key too, so
         * that committing it later (plain mprotect) keeps the key. */
        size_t span = arena_span(k);
        if (pkey_mprotect(k->arena, span, PROT_READ | PROT_WRITE, key) < 0 ||
            pkey_mprotect(k->arena + span, k->arena_len - span, PROT_NONE, key) < 0) {
                pkey_mprotect(k->arena, span, PROT_READ | PROT_WRITE, 0);
                pkey_free(key);
                return 0;
        }
        k->pkey = key;
        if (key < 32)
                fault_pkeys |= 1u << key;
#endif
        return 0;
}

/*
 * Taking access away costs a TLB flush of every page between the lowest and
 * the highest present page the call changes (a few microseconds a page on a
 * paravirtualized host, up to the kernel's ceiling of 33, then one full
 * flush), not of the pages present. A connection's heap has two such
 * clusters far apart: its allocator's front (the process record, threads,
 * frames) at the bottom, its rings at the top, so one call over the slot
 * flushes all of it, 16 pages for 64 KiB. Three calls, split where the
 * heap's own words say the clusters end, flush only the two clusters (the
 * middle call changes pages a stray write touched, if any). The words are
 * hints, copied at the end of its last dispatch (reading them here would
 * bring a hibernated heap's pages back): whatever they say, the three
 * calls cover the whole slot, so a heap that lies about them only makes
 * its own switch dearer.
 * (tests/bench/isolation.sh: revoke cost by resident layout.)
 */
static void heap_revoke(struct vk_kernel *k, struct kproc *kp)
{
        char *base = heap_pool_slot(&k->pool, kp->slot);
        size_t slot = k->pool.slot_size, pg = heap_page_size();
        size_t front = ((size_t)kp->front_end + pg - 1) & ~(pg - 1);
        size_t rings = (size_t)kp->rings_start & ~(pg - 1);
        if (!front || front > slot)
                front = slot;
        if (rings < front || rings > slot)
                rings = front;
        mprotect(base, front, PROT_NONE);
        if (rings > front)
                mprotect(base + front, rings - front, PROT_NONE);
        if (slot > rings)
                mprotect(base + rings, slot - rings, PROT_NONE);
}

static void heap_protect(struct vk_kernel *k, struct kproc *kp, int prot)
{
        if (prot == PROT_NONE)
                heap_revoke(k, kp);
        else
                mprotect(heap_pool_slot(&k->pool, kp->slot), k->pool.slot_size, prot);
        kp->prot_none = prot == PROT_NONE;
        k->stats.protects++;
}

/*
 * Dispatches switch heaps lazily. The heap of the process that ran last stays
 * open after its dispatch, while only kernel code runs (the poll, the timers,
 * the host's hooks), and is closed when another process is dispatched, so no
 * process ever runs beside another's open heap. A process dispatched again
 * before any other (the only busy connection, or a batch cut by the budget)
 * pays no system call at all. An ended process's heap is left as it is:
 * closed if it was, and if it was the open one it stays k->open, so the next
 * dispatch of another process closes it like any heap switched away from.
 * No process but the slot's next owner runs beside it, and that one (the
 * pool is LIFO: usually the next connection) finds it open and pays nothing.
 */
void isolate_switch(struct vk_kernel *k, struct kproc *kp)
{
        struct kproc *was = k->open;
        if (was == kp)
                return;
        if (was && !was->prot_none)
                heap_protect(k, was, PROT_NONE);
        k->open = kp->isolation == VK_ISOLATION_PRIVILEGED ? NULL : kp;
        if (kp->prot_none)
                heap_protect(k, kp, PROT_READ | PROT_WRITE);
}

/* The kernel's own visits to a heap outside its dispatch (spawning it,
 * hibernating it, telling it to stop) leave the open one as it is. */
void isolate_open(struct vk_kernel *k, struct kproc *kp)
{
        if (kp->prot_none)
                heap_protect(k, kp, PROT_READ | PROT_WRITE);
}

void isolate_close(struct vk_kernel *k, struct kproc *kp)
{
        if (kp != k->open && kp->isolation != VK_ISOLATION_PRIVILEGED && !kp->prot_none)
                heap_protect(k, kp, PROT_NONE);
}

void isolate_enter(struct vk_kernel *k, struct kproc *kp)
{
        if (kp->isolation != VK_ISOLATION_UNPRIVILEGED)
                return;
        k->stats.protects++; /* counted while still writable */
#if defined(__linux__) && defined(PKEY_DISABLE_WRITE)
        if (k->pkey >= 0) {
                pkey_set(k->pkey, PKEY_DISABLE_WRITE);
                return;
        }
#endif
        mprotect(k->arena, arena_span(k), PROT_READ);
}

void isolate_leave(struct vk_kernel *k, struct kproc *kp)
{
        if (kp->isolation != VK_ISOLATION_UNPRIVILEGED)
                return;
#if defined(__linux__) && defined(PKEY_DISABLE_WRITE)
        if (k->pkey >= 0) {
                pkey_set(k->pkey, 0);
                k->stats.protects++;
                return;
        }
#endif
        mprotect(k->arena, arena_span(k), PROT_READ | PROT_WRITE);
        k->stats.protects++; /* counted once writable again */
}

const char *vk_kernel_protection(const struct vk_kernel *k)
{
        if (k->pkey >= 0)
                return "pkeys";
        return k->arena_huge ? "mprotect-huge" : "mprotect";
}

int vk_isolation_parse(const char *name)
{
        static const char *const names[] = {
                [VK_ISOLATION_ISOLATED] = "isolated",
                [VK_ISOLATION_UNPRIVILEGED] = "unprivileged",
                [VK_ISOLATION_PRIVILEGED] = "privileged",
        };
        for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
                if (!strcmp(name, names[i]))
                        return i;
        return -EINVAL;
}

/*
 * Memory protection around a dispatch. An isolated process's heap is
 * PROT_NONE except while it runs, so a stray pointer from anywhere else
 * faults instead of corrupting it. While an unprivileged process runs, the
 * kernel arena is write-protected: with a memory protection key when the CPU
 * has them (a WRPKRU instruction, no system call), else with mprotect.
 *
 * Costs per dispatch, in system calls: privileged 0, isolated 2 (open and
 * close the heap), unprivileged 2 with pkeys or 4 without. Dispatch
 * aggregation pays them once for every ready thread of the process.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kern.h"

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
        if (pkey_mprotect(k->arena, k->arena_len, PROT_READ | PROT_WRITE, key) < 0) {
                pkey_free(key);
                return 0;
        }
        k->pkey = key;
#endif
        return 0;
}

void isolate_open(struct vk_kernel *k, struct kproc *kp)
{
        if (!kp->prot_none)
                return;
        mprotect(kp->p, k->pool.slot_size, PROT_READ | PROT_WRITE);
        kp->prot_none = 0;
        k->stats.protects++;
}

void isolate_close(struct vk_kernel *k, struct kproc *kp)
{
        if (kp->isolation == VK_ISOLATION_PRIVILEGED || kp->prot_none)
                return;
        mprotect(kp->p, k->pool.slot_size, PROT_NONE);
        kp->prot_none = 1;
        k->stats.protects++;
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
        mprotect(k->arena, k->arena_len, PROT_READ);
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
        mprotect(k->arena, k->arena_len, PROT_READ | PROT_WRITE);
        k->stats.protects++; /* counted once writable again */
}

const char *vk_kernel_protection(const struct vk_kernel *k)
{
        return k->pkey >= 0 ? "pkeys" : "mprotect";
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

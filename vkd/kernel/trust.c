/*
 * The trust boundary. Nothing in a micro-heap is trusted: a module may have
 * written any byte of its own heap, by accident (an overrun of a frame into
 * the pipe beside it) or not. The kernel acts for one process at a time
 * (kern_act_for); every heap record it follows on that process's behalf is
 * checked on the way in: a pointer must lie inside that process's slot, a
 * ring's buffer inside it with a power-of-two size and no more bytes
 * pending than it holds, a descriptor must be that process's in the
 * kernel's table (or one nobody holds: a socket it opened in this very
 * dispatch), a list walk must end within the number of records the heap
 * can hold. A failed check ends that process as a contained fault
 * (trust_fail jumps back to its dispatch), never the kernel, whether it
 * happens in process context (an op) or in kernel context (before or after
 * a dispatch). The checks are a few compares per op; what they cost is in
 * docs/benchmarks.md.
 */
#include <stdio.h>
#include <string.h>

#include "kern.h"

/* Acting for no process, every address holds (see trust_holds). */
KERN_TLS struct kern_for kern_for = {.len = SIZE_MAX};

void kern_act_for(struct vk_kernel *k, struct kproc *kp)
{
        kern_for.k = k;
        kern_for.kp = kp;
        kern_for.lo = (uintptr_t)kp->p;
        kern_for.len = k->pool.slot_size;
        kern_for.max_threads = (unsigned)(kern_for.len / sizeof(struct vk_thread)) + 1;
        kern_for.corrupt = NULL;
}

void trust_fail(const char *what)
{
        fault_in_dispatch = 0;
        memset(&fault_last, 0, sizeof fault_last);
        fault_last.code = EFAULT;
        fault_last.corrupt = 1;
        snprintf(fault_last.msg, sizeof fault_last.msg, "corrupt %s in its heap", what);
        siglongjmp(fault_jmp, 1);
}

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

__thread struct kern_for kern_for;

void kern_act_for(struct vk_kernel *k, struct kproc *kp)
{
        kern_for.k = k;
        kern_for.kp = kp;
        kern_for.lo = (uintptr_t)kp->p;
        kern_for.len = k->pool.slot_size;
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

static void *rec(const void *ptr, size_t n, const char *what)
{
        if (ptr && (((uintptr_t)ptr & 7) || !trust_holds(ptr, n)))
                trust_fail(what);
        return (void *)ptr;
}

struct vk_thread *trust_thread(struct vk_thread *t)
{
        return rec(t, sizeof *t, "thread pointer");
}

int trust_fd(int fd, int strict)
{
        const struct vk_kernel *k = kern_for.k;
        if (!kern_for.kp || fd == -1)
                return fd;
        if (fd < 0 || fd >= k->nfds)
                trust_fail("descriptor number");
        const struct kfd *f = &k->fds[fd];
        if (f->proc == kern_for.kp)
                return fd;
        /* Nobody's: a socket the process opened in this dispatch, not yet
         * bound (proc_bind_sockets binds it after). */
        if (strict || f->proc || f->server || f->kernel)
                trust_fail("descriptor number");
        return fd;
}

struct vk_ring *trust_ring(struct vk_ring *r)
{
        if (!r || !kern_for.kp)
                return r;
        uint32_t size = r->size;
        if ((size & (size - 1)) || r->tail - r->head > size ||
            (size ? !trust_holds(r->buf, size) : r->tail != r->head))
                trust_fail("ring");
        return r;
}

struct vk_pipe *trust_pipe(struct vk_pipe *x)
{
        if (!x || !kern_for.kp)
                return x;
        rec(x, sizeof *x, "pipe pointer");
        trust_ring(&x->ring);
        trust_fd(x->fd, 0);
        return x;
}

struct vk_socket *trust_socket(struct vk_socket *s)
{
        if (!s || !kern_for.kp)
                return s;
        rec(s, sizeof *s, "socket pointer");
        trust_pipe(&s->rx);
        trust_pipe(&s->tx);
        return s;
}

void trust_mailbox(struct vk_ring *r)
{
        rec(r, sizeof *r, "mailbox pointer");
        trust_ring(r);
}

struct vk_proc *trust_proc(struct vk_proc *p)
{
        if (kern_for.kp && (uintptr_t)p != kern_for.lo)
                trust_fail("process pointer");
        return p;
}

unsigned trust_walk_max(size_t record)
{
        return (unsigned)(kern_for.len / record) + 1;
}

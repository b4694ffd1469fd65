/*
 * Messages between processes, the kernel side (the process side is in
 * io.c).
 */
#include <string.h>

#include "kern.h"

/* Messages: the kernel side. After a dispatch, the process's outbox is
 * emptied into the staging buffers of the receivers (kernel memory); before
 * a receiver's dispatch, what fits is copied into its inbox. Two copies, no
 * shared memory, and a batch of messages costs one switch each way. */

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
void mail_out(struct vk_kernel *k, struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        struct vk_ring *out = p->outbox;
        if (!out)
                return;
        trust_mailbox(out);
        if (!ring_len(out))
                return;
        while (ring_len(out) >= sizeof(struct msg_head)) {
                struct msg_head h;
                ring_read(out, &h, sizeof h);
                if (h.len > ring_len(out))
                        trust_fail("message length");
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
                        proc_ready(k, dst);
        }
        if (p->sender) {
                thread_ready(p->sender);
                p->sender = NULL;
        }
}

/* Before a dispatch, with the heap open: staged messages into the inbox. */
void mail_in(struct kproc *kp)
{
        struct vk_proc *p = kp->p;
        struct vk_ring *in = p->inbox;
        uint32_t at = 0;
        if (!kp->mail_len || !in)
                return;
        trust_mailbox(in);
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

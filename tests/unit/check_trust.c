/*
 * check_trust: the kernel trusts nothing a process can write. A hostile
 * process corrupts one record of its own micro-heap that the kernel acts on
 * (descriptor numbers, ring pointers, sizes and counters, list links,
 * thread, frame and mailbox pointers), then does ordinary I/O; beside it a
 * good pair of processes ping-pongs over a socketpair. In every isolation
 * mode the hostile process must end alone (a contained fault, EFAULT, where
 * the corruption reaches the kernel; a clean end where the kernel ignores
 * the record), the kernel must not fault (a fault kills this forked case),
 * and every ping must come back intact: no byte leaves or enters another
 * process's descriptor, and the kernel's memory is never written on the
 * hostile process's behalf.
 */
#include "kernel_test.h"

enum kind {
        T_IN_FD_HUGE,       /* input descriptor far past the table */
        T_IN_FD_OTHER,      /* input descriptor: the good process's socket */
        T_OUT_FD_OTHER,     /* output descriptor: the good process's socket */
        T_OUT_FD_KERNEL,    /* output descriptor: the kernel's wake pipe */
        T_OUT_FD_STDERR,    /* output descriptor: the worker's stderr */
        T_IN_FD_AFTER,      /* the blocked input's descriptor, once it is on the dirty list */
        T_RING_BUF_KERNEL,  /* input ring buffer: kernel memory */
        T_RING_BUF_WILD,    /* input ring buffer: an unmapped address */
        T_RING_SIZE,        /* output ring size: 2 GiB */
        T_RING_TAIL,        /* output ring: 2 GiB pending */
        T_DRAIN_KERNEL,     /* output pending in kernel memory when the poller says writable */
        T_READER_KERNEL,    /* the blocked reader: a thread in kernel memory */
        T_READER_WILD,      /* the blocked reader: an unmapped address */
        T_DIRTY_WILD,       /* the dirty list head: an unmapped address */
        T_DIRTY_CYCLE,      /* the dirty list: a cycle */
        T_RUNQ_KERNEL,      /* the thread run queue: a thread in kernel memory */
        T_THREADS_CYCLE,    /* the list of threads: a cycle (walked for deadlines) */
        T_THREADS_WILD,     /* the list of threads: an unmapped address */
        T_OUTBOX_LEN,       /* a sent message's length: past the outbox */
        T_OUTBOX_BUF,       /* the outbox ring buffer: kernel memory */
        T_INBOX_BUF,        /* the inbox ring buffer: kernel memory */
        T_SOCKETS_CYCLE,    /* the list of sockets: a cycle (walked when idle) */
        T_SOCKETS_WILD,     /* the list of sockets: an unmapped address */
        T_NEWSOCK_FD_OTHER, /* a socket it opened names the good process's socket */
        T_OWNED_OTHER,      /* an owned descriptor: the good process's socket */
        T_HEAP_TOP,         /* the allocator's top: past the heap */
        T_PROC_KERNEL,      /* the thread's process pointer: kernel memory */
        T_KERNEL_WILD,      /* the process's kernel pointer: an unmapped address */
        T_SELF_WILD,        /* the frame pointer: an unmapped address */
        T_JOIN_KERNEL,      /* vk_join() of a thread in kernel memory */
        T_FN_WILD,          /* a thread's function: an unmapped address */
        T_TOP_AFTER,        /* the allocator's top: 0, while it hibernates */
        T_COUNT
};

static const char *const kind_names[T_COUNT] = {
        "in-fd-huge",   "in-fd-other",     "out-fd-other",  "out-fd-kernel", "out-fd-stderr",
        "in-fd-after",  "ring-buf-kernel", "ring-buf-wild", "ring-size",     "ring-tail",
        "drain-kernel", "reader-kernel",   "reader-wild",   "dirty-wild",    "dirty-cycle",
        "runq-kernel",  "threads-cycle",   "threads-wild",  "outbox-len",    "outbox-buf",
        "inbox-buf",    "sockets-cycle",   "sockets-wild",  "newsock-other", "owned-other",
        "heap-top",     "proc-kernel",     "kernel-wild",   "self-wild",     "join-kernel",
        "fn-wild",      "top-after",
};

/* What the kernel must make of it: a contained fault, or nothing at all. */
static int expected_code(enum kind kind)
{
        switch (kind) {
        case T_KERNEL_WILD:
        case T_OWNED_OTHER:
        case T_TOP_AFTER:
                return 0;
        default:
                return EFAULT;
        }
}

#define WILD ((void *)0x10000ul)

struct hostile_arg {
        int kind;
        int other_fd; /* the good echo process's socket */
        struct vk_kernel *k;
};

static struct vk_socket *first_socket(struct vk_thread *that)
{
        return that->proc->sockets;
}

/* Corruptions made by the main thread before its first op. */
static void corrupt_before(struct vk_thread *that, const struct hostile_arg *a)
{
        struct vk_proc *p = that->proc;
        void *kmem = a->k;
        switch (a->kind) {
        case T_IN_FD_HUGE:
                that->in->fd = (1 << 24) + 5;
                break;
        case T_IN_FD_OTHER:
                that->in->fd = a->other_fd;
                break;
        case T_OUT_FD_OTHER:
                that->out->fd = a->other_fd;
                break;
        case T_OUT_FD_KERNEL:
                that->out->fd = a->k->wake_pipe[1];
                break;
        case T_OUT_FD_STDERR:
                that->out->fd = 2;
                break;
        case T_RING_BUF_KERNEL:
                that->in->ring.buf = kmem;
                break;
        case T_RING_BUF_WILD:
                that->in->ring.buf = WILD;
                break;
        case T_RING_SIZE:
                that->out->ring.size = 1u << 31;
                break;
        case T_RING_TAIL:
                that->out->ring.tail = that->out->ring.head + 0x7fffffffu;
                break;
        case T_SOCKETS_CYCLE:
                first_socket(that)->next = first_socket(that);
                break;
        case T_SOCKETS_WILD:
                p->sockets = WILD;
                break;
        case T_OWNED_OTHER:
                p->owned[0] = a->other_fd + 1;
                break;
        case T_HEAP_TOP:
                p->top = p->size + 4096;
                p->low = p->size + 65536;
                break;
        case T_PROC_KERNEL:
                that->proc = kmem;
                break;
        case T_KERNEL_WILD:
                p->kernel = WILD;
                break;
        default:
                break;
        }
}

/* Corruptions made by a child thread while the main thread is blocked on
 * its first read (its input pipe is on the dirty list, it is the reader). */
static void corrupt_after(struct vk_thread *that, const struct hostile_arg *a)
{
        struct vk_proc *p = that->proc;
        struct vk_thread *main = p->main;
        struct vk_pipe *in = main->in, *out = main->out;
        void *kmem = a->k;
        switch (a->kind) {
        case T_IN_FD_AFTER:
                in->fd = a->other_fd;
                break;
        case T_DRAIN_KERNEL:
                out->ring.buf = kmem;
                out->ring.tail = out->ring.head + 64;
                out->flags &= (uint16_t)~VK_PIPE_READY;
                break;
        case T_READER_KERNEL:
                in->reader = kmem;
                break;
        case T_READER_WILD:
                in->reader = WILD;
                break;
        case T_DIRTY_WILD:
                p->dirty = WILD;
                break;
        case T_DIRTY_CYCLE:
                if (p->dirty)
                        p->dirty->next_dirty = p->dirty;
                break;
        case T_RUNQ_KERNEL:
                p->runq_head = p->runq_tail = kmem;
                break;
        case T_THREADS_CYCLE:
                p->threads->next = p->threads;
                break;
        case T_THREADS_WILD:
                p->threads = WILD;
                break;
        default:
                break;
        }
}

static void child_fn(struct vk_thread *that)
{
        struct {
                struct hostile_arg a;
        } * self;
        vk_begin();
        corrupt_after(that, &self->a);
        vk_end();
}

static void hostile(struct vk_thread *that)
{
        struct {
                struct hostile_arg a;
                char buf[64];
                ssize_t n;
                uint64_t from;
                struct vk_thread *child;
                struct vk_socket *s;
        } * self;
        vk_begin();
        vk_set_timeout(that, 3000);
        corrupt_before(that, &self->a);
        if (self->a.kind == T_HEAP_TOP || self->a.kind == T_PROC_KERNEL) {
                char *m = vk_malloc(that->proc, 4096);
                if (m)
                        memset(m, 0x5a, 4096); /* where the allocator said */
        }
        if (self->a.kind == T_NEWSOCK_FD_OTHER) {
                self->s = vk_socket_open(that, dup(that->in->fd));
                if (self->s)
                        self->s->rx.fd = self->s->tx.fd = self->a.other_fd;
        }
        if (self->a.kind == T_SELF_WILD)
                that->self = WILD;
        if (self->a.kind == T_JOIN_KERNEL) {
                self->child = (struct vk_thread *)(void *)self->a.k;
                vk_join(self->child);
        }
        self->child = vk_spawn(child_fn, &self->a, sizeof self->a);
        if (self->a.kind == T_FN_WILD && self->child)
                self->child->fn = WILD;
        vk_readsome(self->n, self->buf, sizeof self->buf);
        vk_write("x", 1);
        vk_flush();
        vk_send(vk_pid(that), "message", 8);
        if (self->a.kind == T_OUTBOX_LEN) {
                struct vk_ring *r = that->proc->outbox;
                struct msg_head h;
                memcpy(&h, r->buf + (r->head & (r->size - 1)), sizeof h);
                h.len = 1u << 20;
                memcpy(r->buf + (r->head & (r->size - 1)), &h, sizeof h);
        }
        if (self->a.kind == T_OUTBOX_BUF)
                that->proc->outbox->buf = (char *)self->a.k;
        vk_receive(self->n, self->from, self->buf, sizeof self->buf);
        if (self->a.kind == T_INBOX_BUF) {
                that->proc->inbox->buf = (char *)self->a.k;
                vk_send(vk_pid(that), "message", 8);
                vk_receive(self->n, self->from, self->buf, sizeof self->buf);
        }
        if (self->a.kind == T_TOP_AFTER)
                that->proc->top = 0; /* then it idles 30 ms: it hibernates */
        vk_readsome(self->n, self->buf, sizeof self->buf);
        vk_sleep(1);
        vk_end();
}

/* The hostile process's peer: bytes now and a little later, then reads
 * until the hostile end is gone. */
static void feeder(struct vk_thread *that)
{
        struct {
                char buf[64];
                ssize_t n;
        } * self;
        vk_begin();
        vk_set_timeout(that, 3000);
        vk_write("a", 1);
        vk_flush();
        vk_sleep(30);
        vk_write("bcd", 3);
        vk_flush();
        do
                vk_readsome(self->n, self->buf, sizeof self->buf);
        while (self->n > 0);
        vk_end();
}

/* The good client: PINGS round trips through the echo process, every byte
 * checked, paced so that they span the hostile process's life. */
#define PINGS 40
static unsigned pings_ok;

static void pinger(struct vk_thread *that)
{
        struct {
                unsigned i;
                char want[16], got[16];
                ssize_t n;
        } * self;
        vk_begin();
        vk_set_timeout(that, 3000);
        for (self->i = 0; self->i < PINGS; self->i++) {
                snprintf(self->want, sizeof self->want, "ping %08u\n", self->i);
                vk_write(self->want, 14);
                vk_flush();
                vk_read(self->n, self->got, 14);
                if (self->n == 14 && !memcmp(self->got, self->want, 14))
                        pings_ok++;
                vk_sleep(2);
        }
        vk_close_write();
        vk_end();
}

static const enum vk_isolation modes[] = {
        VK_ISOLATION_ISOLATED,
        VK_ISOLATION_UNPRIVILEGED,
        VK_ISOLATION_PRIVILEGED,
};
static const char *const mode_names[] = {"isolated", "unprivileged", "privileged"};

START_TEST(corrupted_record_ends_only_its_process)
{
        enum kind kind = (enum kind)(_i / 3);
        struct vk_kernel_config cfg = {.isolation = modes[_i % 3],
                                       .cpu_budget_ms = 1000,
                                       .heap_size = 128 * 1024,
                                       /* idle processes hibernate while the feeder waits */
                                       .hibernate_ms = 1};
        int e1, e2, h1, h2;
        kt_kernel_with(&cfg);
        kt_pair_kk(&e1, &e2);
        kt_pair_kk(&h1, &h2);
        pings_ok = 0;
        int64_t echo = kt_spawn(kt_echo, NULL, 0, e1);
        int64_t ping = kt_spawn(pinger, NULL, 0, e2);
        struct hostile_arg a = {.kind = (int)kind, .other_fd = e1, .k = kt.k};
        int64_t bad = kt_spawn(hostile, &a, sizeof a, h1);
        kt_spawn(feeder, NULL, 0, h2);
        kt_run();
        const struct kt_exit *x = kt_exit_of(bad);
        int want = expected_code(kind);
        ck_assert_msg(want ? x->code == want : x->code == 0,
                      "%s (%s): the hostile process ended with %d (%s), expected %d",
                      kind_names[kind], mode_names[_i % 3], x->code, x->msg, want);
        ck_assert_msg(pings_ok == PINGS, "%s (%s): %u of %d pings came back intact",
                      kind_names[kind], mode_names[_i % 3], pings_ok, PINGS);
        ck_assert_int_eq(kt_exit_of(echo)->code, 0);
        ck_assert_int_eq(kt_exit_of(ping)->code, 0);
        /* The kernel still runs processes. */
        int f1, f2;
        char buf[16];
        kt_pair(&f1, &f2);
        kt_spawn(kt_echo, NULL, 0, f1);
        kt_write_all(f2, "after\n", 6);
        shutdown(f2, SHUT_WR);
        kt_run();
        ck_assert_int_eq(kt_read_all(f2, buf, sizeof buf), 6);
        ck_assert_str_eq(buf, "after\n");
        close(f2);
}
END_TEST

static Suite *trust_suite(void)
{
        Suite *s = suite_create("trust");
        TCase *tc = kt_tcase(s, "corrupt");
        tcase_add_loop_test(tc, corrupted_record_ends_only_its_process, 0, T_COUNT * 3);
        return s;
}

KT_MAIN(trust_suite)

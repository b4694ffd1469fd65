/*
 * Virtual threads: creation, frames, the per-process run queue, ending,
 * joining and the delivery of errors between threads of one process.
 * Everything here runs in process context and touches only the heap.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kern.h"

struct vk_thread *thread_new(struct vk_proc *p, vk_thread_fn *fn, const void *arg, size_t arglen)
{
        struct vk_thread *t = vk_malloc(p, sizeof *t);
        if (!t)
                return NULL;
        memset(t, 0, sizeof *t);
        if (arglen) {
                t->arg = vk_malloc(p, arglen);
                if (!t->arg) {
                        vk_free(p, t);
                        return NULL;
                }
                memcpy(t->arg, arg, arglen);
                t->arglen = arglen;
        }
        t->fn = fn;
        t->proc = p;
        t->fn_seal = thread_seal(proc_kernel(p), t);
        t->state = VK_THREAD_PAUSED;
        t->next = p->threads;
        if (p->threads)
                p->threads->prev = t;
        p->threads = t;
        return t;
}

static void thread_free(struct vk_thread *t)
{
        struct vk_proc *p = kern_proc(t);
        struct vk_thread *prev = trust_thread(t->prev), *next = trust_thread(t->next);
        if (prev)
                prev->next = next;
        else
                p->threads = next;
        if (next)
                next->prev = prev;
        /* Free in reverse order of allocation so the stack can pop. */
        vk_free(p, t->self);
        vk_free(p, t->arg);
        vk_free(p, t);
}

static void runq_push(struct vk_proc *p, struct vk_thread *t)
{
        if (t->queued)
                return;
        t->queued = 1;
        t->next_ready = NULL;
        if (trust_thread(p->runq_tail))
                p->runq_tail->next_ready = t;
        else
                p->runq_head = t;
        p->runq_tail = t;
}

static void unblock(struct vk_thread *t)
{
        struct vk_pipe *x = trust_rec(t->blocked_on, sizeof *x, "pipe pointer");
        if (x) {
                if (x->reader == t)
                        x->reader = NULL;
                if (x->writer == t)
                        x->writer = NULL;
                t->blocked_on = NULL;
        }
        t->deadline = 0;
        t->sleeping = 0;
        if (t->msg_wait) {
                struct vk_proc *p = kern_proc(t);
                if (p->receiver == t)
                        p->receiver = NULL;
                if (p->sender == t)
                        p->sender = NULL;
                t->msg_wait = 0;
        }
}

void thread_ready(struct vk_thread *t)
{
        trust_thread(t);
        if (t->state == VK_THREAD_DONE)
                return;
        unblock(t);
        t->state = VK_THREAD_READY;
        runq_push(kern_proc(t), t);
}

void vk__requeue(struct vk_thread *that)
{
        that->state = VK_THREAD_READY;
        runq_push(kern_proc(that), that);
}

void thread_timeout(struct vk_thread *t)
{
        if (t->sleeping)
                thread_ready(t);
        else
                vk_raise_at(t, ETIMEDOUT, "deadline passed");
}

void *vk__frame(struct vk_thread *that, size_t size)
{
        struct vk_proc *p = kern_proc(that);
        void *self = vk_malloc(p, size ? size : 1);
        if (!self) {
                vk__set_error(that, ENOMEM, 0,
                              "heap full: a frame of %zu bytes does not fit the %u-byte heap", size,
                              p->size);
                vk__thread_end(that);
                return NULL;
        }
        memset(self, 0, size);
        if (that->arg) {
                if (!trust_holds(that->arg, that->arglen < size ? that->arglen : size))
                        trust_fail("thread argument");
                /* The frame now holds the arguments; the copy is released (it
                 * pops from the stack together with the frame). */
                memcpy(self, that->arg, that->arglen < size ? that->arglen : size);
                vk_free(p, that->arg);
                that->arg = NULL;
        }
        that->self = self;
        that->pc = 0;
        return self;
}

void vk__set_error(struct vk_thread *that, int code, int line, const char *fmt, ...)
{
        va_list ap;
        that->err.code = code ? code : EIO;
        that->err.line = line;
        va_start(ap, fmt);
        vsnprintf(that->err.msg, sizeof that->err.msg, fmt, ap);
        va_end(ap);
}

const char *vk__strerror(int code)
{
        return strerror(code);
}

size_t vk__strlen(const char *s)
{
        return strlen(s);
}

void vk_raise_at(struct vk_thread *t, int code, const char *msg)
{
        unsigned n = 0;
        trust_thread(t);
        if (t->state == VK_THREAD_DONE)
                return;
        /* t stops waiting in vk_join(): a child that ends later must pass its
         * error up the parent chain, not to a joiner that moved on (or ended). */
        for (struct vk_thread *c = trust_next_thread(kern_proc(t)->threads, &n, TRUST_THREADS); c;
             c = trust_next_thread(c->next, &n, TRUST_THREADS))
                if (c->joiner == t)
                        c->joiner = NULL;
        vk__set_error(t, code, 0, "%s", msg);
        t->lower_pc = t->pc;
        t->pc = t->catch_pc ? t->catch_pc : VK_PC_FINALLY;
        thread_ready(t);
}

void vk__thread_end(struct vk_thread *that)
{
        struct vk_proc *p = kern_proc(that);
        that->state = VK_THREAD_DONE;
        unblock(that);
        if (that->owns_in) {
                /* The writer of a responder's input learns it is gone. */
                trust_rec(that->in, sizeof *that->in, "pipe pointer");
                that->in->flags |= VK_PIPE_CLOSED;
                if (that->in->writer)
                        thread_ready(that->in->writer);
        }
        if (that->is_main) {
                p->exiting = 1;
                if (that->err.code)
                        p->exit_err = that->err;
                return;
        }
        if (that->joiner) {
                thread_ready(that->joiner);
                return;
        }
        if (that->err.code) {
                /* Nobody awaits this thread: its parent gets the error, or the
                 * process ends with it. An error is never dropped. */
                unsigned n = 0;
                struct vk_thread *up = trust_next_thread(that->parent, &n, "parent of a thread");
                while (up && up->state == VK_THREAD_DONE)
                        up = trust_next_thread(up->parent, &n, "parent of a thread");
                if (up) {
                        vk_raise_at(up, that->err.code, that->err.msg);
                } else {
                        p->exiting = 1;
                        p->exit_err = that->err;
                }
        }
}

struct vk_thread *vk__spawn(struct vk_thread *that, vk_thread_fn *fn, const void *arg,
                            size_t arglen, int responder)
{
        struct vk_proc *p = kern_proc(that);
        struct vk_thread *t = thread_new(p, fn, arg, arglen);
        if (!t)
                return NULL;
        t->parent = that;
        t->in = that->in;
        t->out = that->out;
        if (responder) {
                struct vk_pipe *x = vk_malloc(p, sizeof *x);
                size_t rs = 4096;
                char *buf = x ? vk_malloc(p, rs) : NULL;
                if (!buf) {
                        vk_free(p, x);
                        thread_free(t);
                        return NULL;
                }
                memset(x, 0, sizeof *x);
                x->fd = -1;
                x->ring.buf = buf;
                x->ring.size = (uint32_t)rs;
                t->in = x;
                t->owns_in = 1;
                that->out = x;
        }
        thread_ready(t);
        return t;
}

void vk_play(struct vk_thread *t)
{
        trust_thread(t);
        if (t->state == VK_THREAD_PAUSED)
                thread_ready(t);
}

int vk_is_done(const struct vk_thread *t)
{
        return t->state == VK_THREAD_DONE;
}

ssize_t vk__join(struct vk_thread *that, struct vk_thread *t)
{
        trust_thread(t);
        if (t->state != VK_THREAD_DONE) {
                /* No flush here: the child runs next and shares the output, so
                 * it leaves when the child waits (flushing per join sent every
                 * pipelined HTTP response in a writev of its own: 0.11x). */
                t->joiner = that;
                that->state = VK_THREAD_BLOCKED;
                return -EAGAIN;
        }
        if (t->err.code)
                that->err = t->err;
        thread_free(t);
        return 0;
}

void vk_set_timeout(struct vk_thread *that, uint64_t ms)
{
        that->timeout_ns = ms * KERN_NS_PER_MS;
}

void vk_set_deadline(struct vk_thread *that, uint64_t ms)
{
        that->deadline_at = ms ? proc_kernel(kern_proc(that))->now + ms * KERN_NS_PER_MS : 0;
}

void vk__sleep(struct vk_thread *that, uint64_t ms)
{
        struct vk_proc *p = kern_proc(that);
        flush_before_wait(that);
        that->state = VK_THREAD_BLOCKED;
        that->sleeping = 1;
        that->deadline = proc_kernel(p)->now + ms * KERN_NS_PER_MS;
        if (!that->deadline)
                that->deadline = 1;
        p->timers_dirty = 1;
}

uint64_t vk_now(const struct vk_thread *that)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vk_request_done(struct vk_thread *that, uint64_t started)
{
        struct vk_proc *p = kern_proc(that);
        uint64_t us = (vk_now(that) - started) / 1000, rest = us;
        unsigned b = 0;
        while (rest && b < VK_LATENCY_BUCKETS - 1) {
                rest >>= 1;
                b++;
        }
        p->nreq++;
        if (p->lat[b] < UINT16_MAX) {
                p->lat[b]++;
                p->lat_sum_us += us;
        }
}

void vk__pause(struct vk_thread *that)
{
        flush_before_wait(that);
        that->state = VK_THREAD_PAUSED;
}

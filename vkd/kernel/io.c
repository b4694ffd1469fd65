/*
 * The blocking I/O ops on a thread's stdio pipes. Each returns what the op
 * produced, or -EAGAIN after marking the thread blocked (the macro in vk.h
 * then yields and calls it again), or another -errno. Progress across yields
 * is kept in that->op_done. Runs in process context: touches only the heap,
 * and leaves requests for the poller on the process's dirty list.
 *
 * Readiness is deduced rather than polled: a readv that fills less than the
 * free space, or a writev that leaves bytes behind, means the next call would
 * block, so the pipe waits for the poller's edge without a wasted syscall.
 */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kern.h"

int pipe_init_fd(struct vk_proc *p, struct vk_pipe *x, int fd, int output, size_t ring_size)
{
        struct stat st;
        memset(x, 0, sizeof *x);
        x->fd = fd;
        x->ring.size = (uint32_t)ring_size;
        x->ring.buf = ring_size ? heap_ring_alloc(p, ring_size) : NULL;
        if (ring_size && !x->ring.buf)
                return -ENOMEM;
        x->flags = VK_PIPE_READY | (output ? VK_PIPE_OUTPUT : 0);
        if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
                x->flags |= VK_PIPE_POLLABLE;
        return 0;
}

/* Asks the kernel to arm x's descriptor once this dispatch ends. */
void pipe_want(struct vk_proc *p, struct vk_pipe *x)
{
        x->flags |= VK_PIPE_WANT;
        if (x->flags & (VK_PIPE_ARMED | VK_PIPE_DIRTY) || !(x->flags & VK_PIPE_POLLABLE))
                return;
        x->flags |= VK_PIPE_DIRTY;
        x->next_dirty = p->dirty;
        p->dirty = x;
}

/* Marks the thread blocked, with its deadline if it has one. Whatever it
 * wrote leaves first: no wait holds back output. */
static ssize_t wait_here(struct vk_thread *that)
{
        struct vk_proc *p = kern_proc(that);
        flush_before_wait(that);
        that->state = VK_THREAD_BLOCKED;
        if ((that->timeout_ns || that->deadline_at) && !that->deadline) {
                uint64_t d = that->timeout_ns ? proc_kernel(p)->now + that->timeout_ns : 0;
                if (that->deadline_at && (!d || that->deadline_at < d))
                        d = that->deadline_at;
                that->deadline = d;
                p->timers_dirty = 1;
        }
        return -EAGAIN;
}

static ssize_t block(struct vk_thread *that, struct vk_pipe *x, int writer)
{
        if (writer)
                x->writer = that;
        else
                x->reader = that;
        that->blocked_on = x;
        if (x->fd >= 0)
                pipe_want(kern_proc(that), x);
        return wait_here(that);
}

static void wake(struct vk_thread *t)
{
        if (t)
                thread_ready(t);
}

static ssize_t tls_fill(struct vk_proc *p, struct vk_pipe *x, struct ssl_st *tls, struct iovec *iov,
                        int n);

/* Reads from the descriptor into free ring space. Returns bytes read, 0 at
 * end of stream, -EAGAIN, or -errno (also kept in x->err). */
static ssize_t pipe_fill(struct vk_proc *p, struct vk_pipe *x)
{
        struct iovec iov[2];
        trust_pipe(x); /* the buffer and descriptor of a system call */
        if (!(x->flags & VK_PIPE_READY))
                return -EAGAIN;
        uint32_t space = ring_space(&x->ring);
        int n = ring_space_iov(&x->ring, iov);
        if (!n)
                return -ENOBUFS;
        struct ssl_st *tls = tls_of(proc_kernel(p), x->fd);
        if (tls)
                return tls_fill(p, x, tls, iov, n);
        for (;;) {
                ssize_t r = readv(x->fd, iov, n);
                if (r > 0) {
                        ring_produce(&x->ring, (uint32_t)r);
                        p->bytes_in += (uint64_t)r;
                        if ((uint32_t)r < space && (x->flags & VK_PIPE_POLLABLE) &&
                            !(x->flags & VK_PIPE_RDHUP))
                                x->flags &= ~VK_PIPE_READY;
                        return r;
                }
                if (r == 0) {
                        x->flags |= VK_PIPE_EOF;
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        x->flags &= ~VK_PIPE_READY;
                        return -EAGAIN;
                }
                x->err = errno;
                return -errno;
        }
}

/* pipe_fill over TLS: records decrypted into the ring until it is full or
 * the socket has no more. OpenSSL may hold decrypted bytes the socket no
 * longer shows, so readiness is given up only when it says so. */
static ssize_t tls_fill(struct vk_proc *p, struct vk_pipe *x, struct ssl_st *tls, struct iovec *iov,
                        int n)
{
        ssize_t got = 0;
        for (int i = 0; i < n; i++) {
                ssize_t r = tls_read(tls, iov[i].iov_base, iov[i].iov_len);
                if (r > 0) {
                        ring_produce(&x->ring, (uint32_t)r);
                        p->bytes_in += (uint64_t)r;
                        got += r;
                        if ((size_t)r < iov[i].iov_len)
                                break;
                        continue;
                }
                if (got)
                        break; /* what was read first; the rest on the next call */
                if (r == 0) {
                        x->flags |= VK_PIPE_EOF;
                        return 0;
                }
                if (r == -EAGAIN) {
                        x->flags &= (uint16_t)~VK_PIPE_READY;
                        return -EAGAIN;
                }
                x->err = (int)-r;
                return r;
        }
        return got;
}

ssize_t pipe_drain(struct vk_proc *p, struct vk_pipe *x)
{
        struct iovec iov[2];
        trust_pipe(x); /* the buffer and descriptor of a system call */
        /* Over TLS each write is one or more records, and a short one says
         * nothing of the socket: OpenSSL tells when it would block. */
        struct ssl_st *tls = tls_of(proc_kernel(p), x->fd);
        for (;;) {
                int n = ring_data_iov(&x->ring, iov, UINT32_MAX);
                if (!n)
                        return 0;
                if (x->err)
                        return -x->err;
                if (!(x->flags & VK_PIPE_READY))
                        return -EAGAIN;
                ssize_t w;
                if (tls && (w = tls_write(tls, iov[0].iov_base, iov[0].iov_len)) < 0) {
                        errno = (int)-w;
                        w = -1;
                } else if (!tls) {
                        w = writev(x->fd, iov, n);
                }
                if (w > 0) {
                        ring_consume(&x->ring, (uint32_t)w);
                        p->bytes_out += (uint64_t)w;
                        if (!tls && ring_len(&x->ring) && (x->flags & VK_PIPE_POLLABLE)) {
                                x->flags &= ~VK_PIPE_READY;
                                return -EAGAIN;
                        }
                        continue;
                }
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        x->flags &= ~VK_PIPE_READY;
                        return -EAGAIN;
                }
                x->err = w < 0 ? errno : EIO;
                return -x->err;
        }
}

/* Bytes readable before the next message boundary. */
static uint32_t readable(const struct vk_pipe *x)
{
        uint32_t avail = ring_len(&x->ring);
        if ((x->flags & VK_PIPE_HUP) && avail > x->hup_left)
                avail = x->hup_left;
        return avail;
}

static void consumed(struct vk_pipe *x, uint32_t n)
{
        if (x->flags & VK_PIPE_HUP)
                x->hup_left -= n;
        if (x->fd < 0 && n)
                wake(x->writer);
}

/* Lazy flush: output leaves when its thread is about to wait (for input, a
 * timer, a message, another thread), so responses to pipelined requests go
 * out together in one writev. What cannot be written then is flushed by the
 * kernel when the descriptor becomes writable. */
void flush_before_wait(struct vk_thread *that)
{
        struct vk_pipe *out = that->out;
        if (out && out->fd >= 0 && ring_len(&out->ring) &&
            pipe_drain(kern_proc(that), out) == -EAGAIN)
                pipe_want(kern_proc(that), out);
}

/* Waits until more than `have` bytes are readable, or no more can come (a
 * message boundary, end of stream, or a full ring). Returns 0, -EAGAIN
 * (blocked) or -errno. */
static ssize_t fill_past(struct vk_thread *that, struct vk_pipe *x, size_t have)
{
        for (;;) {
                if (readable(x) > have || !ring_space(&x->ring) ||
                    (x->flags & (VK_PIPE_HUP | VK_PIPE_EOF)))
                        return 0;
                if (x->err)
                        return -x->err;
                if (x->fd < 0)
                        return block(that, x, 0);
                ssize_t r = pipe_fill(kern_proc(that), x);
                if (r == -EAGAIN)
                        return block(that, x, 0);
                if (r < 0)
                        return r;
        }
}

/* Makes input available: returns 1 when bytes are buffered, 0 at a boundary
 * or end of stream, or -EAGAIN (blocked) / -errno. */
static ssize_t input(struct vk_thread *that, struct vk_pipe *x)
{
        ssize_t r = fill_past(that, x, 0);
        return r < 0 ? r : readable(x) ? 1 : 0;
}

ssize_t vk__read(struct vk_thread *that, void *buf, size_t len, int how)
{
        struct vk_pipe *x = that->in;
        if (!x)
                return -EBADF;
        while (that->op_done < len) {
                ssize_t r = input(that, x);
                if (r <= 0)
                        return r < 0 ? r : (ssize_t)that->op_done;
                uint32_t n = readable(x);
                if (n > len - that->op_done)
                        n = (uint32_t)(len - that->op_done);
                int line_end = 0;
                if (how == VK__READ_LINE) {
                        int64_t nl = ring_find(&x->ring, '\n', n);
                        if (nl >= 0) {
                                n = (uint32_t)nl + 1;
                                line_end = 1;
                        }
                }
                ring_read(&x->ring, (char *)buf + that->op_done, n);
                consumed(x, n);
                that->op_done += n;
                if (line_end || how == VK__READ_SOME)
                        break;
        }
        return (ssize_t)that->op_done;
}

ssize_t vk__pollread(struct vk_thread *that)
{
        struct vk_pipe *x = that->in;
        if (!x)
                return -EBADF;
        ssize_t r = input(that, x);
        return r <= 0 ? r : (ssize_t)readable(x);
}

ssize_t vk__readhup(struct vk_thread *that)
{
        struct vk_pipe *x = that->in;
        if (!x)
                return -EBADF;
        if (x->fd >= 0)
                return 0;
        uint32_t n = readable(x);
        ring_consume(&x->ring, n);
        consumed(x, n);
        if (x->flags & VK_PIPE_HUP) {
                x->flags &= ~VK_PIPE_HUP;
                wake(x->writer);
                return 0;
        }
        if (x->flags & VK_PIPE_EOF)
                return 0;
        return block(that, x, 0);
}

int vk_at_hup(const struct vk_thread *that)
{
        const struct vk_pipe *x = that->in;
        if (!x)
                return 1;
        return !readable(x) && (x->flags & (VK_PIPE_HUP | VK_PIPE_EOF));
}

int vk_at_eof(const struct vk_thread *that)
{
        const struct vk_pipe *x = that->in;
        if (!x)
                return 1;
        return !ring_len(&x->ring) && (x->flags & VK_PIPE_EOF);
}

static ssize_t output_error(const struct vk_pipe *x)
{
        if (x->flags & VK_PIPE_CLOSED)
                return -EPIPE;
        return x->err ? -x->err : 0;
}

ssize_t vk__write(struct vk_thread *that, const void *buf, size_t len)
{
        struct vk_pipe *x = that->out;
        if (!x)
                return -EBADF;
        for (;;) {
                ssize_t e = output_error(x);
                if (e)
                        return e;
                if (that->op_done < len) {
                        size_t want = len - that->op_done;
                        uint32_t n = ring_write(&x->ring, (const char *)buf + that->op_done,
                                                want > UINT32_MAX ? UINT32_MAX : (uint32_t)want);
                        that->op_done += n;
                        if (n && x->fd < 0)
                                wake(x->reader);
                }
                if (that->op_done == len)
                        return (ssize_t)len;
                if (x->fd < 0)
                        return block(that, x, 1);
                ssize_t r = pipe_drain(kern_proc(that), x);
                if (r == -EAGAIN)
                        return block(that, x, 1);
                if (r < 0)
                        return r;
        }
}

ssize_t vk__printf(struct vk_thread *that, const char *fmt, ...)
{
        char small[256], *s = small;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t)n >= sizeof small) {
                s = vk_malloc(kern_proc(that), (size_t)n + 1);
                if (!s)
                        return -ENOMEM;
                va_start(ap, fmt);
                vsnprintf(s, (size_t)n + 1, fmt, ap);
                va_end(ap);
        }
        /* If this blocks, the next call formats the same text again and goes
         * on from that->op_done: the arguments are frame fields. */
        ssize_t r = vk__write(that, s, (size_t)n);
        if (s != small)
                vk_free(kern_proc(that), s);
        return r;
}

int vk__out_pending(const struct vk_thread *that)
{
        const struct vk_pipe *x = that->out;
        return x && x->fd >= 0 && ring_len(&x->ring) && !x->err;
}

ssize_t vk__flush(struct vk_thread *that)
{
        struct vk_pipe *x = that->out;
        if (!x || x->fd < 0)
                return 0;
        ssize_t r = pipe_drain(kern_proc(that), x);
        if (r == -EAGAIN)
                return block(that, x, 1);
        return r;
}

ssize_t vk__hup(struct vk_thread *that)
{
        struct vk_pipe *x = that->out;
        if (!x)
                return -EBADF;
        if (x->fd >= 0)
                return vk__flush(that);
        ssize_t e = output_error(x);
        if (e)
                return e;
        if (x->flags & VK_PIPE_HUP)
                return block(that, x, 1); /* the reader has not passed the last one */
        x->hup_left = ring_len(&x->ring);
        x->flags |= VK_PIPE_HUP;
        wake(x->reader);
        return 0;
}

ssize_t vk__forward(struct vk_thread *that, size_t len)
{
        struct vk_pipe *in = that->in, *out = that->out;
        if (!in || !out)
                return -EBADF;
        while (!len || that->op_done < len) {
                ssize_t r = input(that, in);
                if (r <= 0)
                        return r < 0 ? r : (ssize_t)that->op_done;
                r = output_error(out);
                if (r)
                        return r;
                uint32_t n = readable(in);
                if (len && n > len - that->op_done)
                        n = (uint32_t)(len - that->op_done);
                uint32_t moved = ring_move(&out->ring, &in->ring, n);
                if (moved) {
                        consumed(in, moved);
                        that->op_done += moved;
                        if (out->fd < 0)
                                wake(out->reader);
                        continue;
                }
                if (out->fd < 0)
                        return block(that, out, 1);
                r = pipe_drain(kern_proc(that), out);
                if (r == -EAGAIN)
                        return block(that, out, 1);
                if (r < 0)
                        return r;
        }
        return (ssize_t)that->op_done;
}

ssize_t vk__close_write(struct vk_thread *that)
{
        struct vk_pipe *x = that->out;
        if (!x)
                return -EBADF;
        if (x->flags & VK_PIPE_CLOSED)
                return 0;
        ssize_t r = vk__flush(that);
        if (r < 0)
                return r;
        x->flags |= VK_PIPE_CLOSED;
        if (x->fd >= 0) {
                struct ssl_st *tls = tls_of(proc_kernel(kern_proc(that)), x->fd);
                if (tls)
                        tls_shutdown(tls);             /* close_notify before the FIN */
                shutdown(trust_fd(x->fd, 0), SHUT_WR); /* not a socket: nothing to shut */
        } else {
                x->flags |= VK_PIPE_EOF;
                wake(x->reader);
        }
        return 0;
}

void vk_close_read(struct vk_thread *that)
{
        struct vk_pipe *x = that->in;
        if (!x)
                return;
        ring_consume(&x->ring, ring_len(&x->ring));
        x->flags |= VK_PIPE_EOF;
        x->flags &= ~VK_PIPE_HUP;
        if (x->fd >= 0) {
                shutdown(trust_fd(x->fd, 0), SHUT_RD);
        } else {
                x->flags |= VK_PIPE_CLOSED;
                wake(x->writer);
        }
}

ssize_t vk__peek(struct vk_thread *that, const char **ptr, size_t have)
{
        struct vk_pipe *x = that->in;
        if (!x)
                return -EBADF;
        ssize_t r = fill_past(that, x, have);
        if (r < 0)
                return r;
        ring_linearize(&x->ring);
        *ptr = x->ring.buf + (x->ring.head & (x->ring.size - 1));
        return (ssize_t)readable(x);
}

void vk_consume(struct vk_thread *that, size_t n)
{
        struct vk_pipe *x = that->in;
        uint32_t avail = readable(x);
        if (n > avail)
                n = avail;
        ring_consume(&x->ring, (uint32_t)n);
        consumed(x, (uint32_t)n);
}

/* vk_sendfile over TLS: the file's bytes must be encrypted, so they pass
 * through the output ring (pread into it, then records out of it). */
static ssize_t tls_sendfile(struct vk_thread *that, struct vk_pipe *x, int fd, off_t off,
                            size_t len)
{
        struct iovec iov[2];
        while (that->op_done < len) {
                int n = ring_space_iov(&x->ring, iov);
                if (n) {
                        size_t want = len - that->op_done;
                        if (iov[0].iov_len > want)
                                iov[0].iov_len = want;
                        ssize_t r = pread(fd, iov[0].iov_base, iov[0].iov_len,
                                          off + (off_t)that->op_done);
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r < 0)
                                return -errno;
                        if (r == 0)
                                break; /* the file is shorter than asked */
                        ring_produce(&x->ring, (uint32_t)r);
                        that->op_done += (size_t)r;
                }
                ssize_t w = pipe_drain(kern_proc(that), x);
                if (w == -EAGAIN && !ring_space(&x->ring))
                        return block(that, x, 1);
                if (w < 0 && w != -EAGAIN)
                        return w;
        }
        return (ssize_t)that->op_done;
}

ssize_t vk__sendfile(struct vk_thread *that, int fd, off_t off, size_t len)
{
        struct vk_pipe *x = that->out;
        if (!x || x->fd < 0)
                return -EBADF;
        ssize_t e = output_error(x);
        if (e)
                return e;
        /* What was written before goes first. */
        ssize_t r = pipe_drain(kern_proc(that), x);
        if (r == -EAGAIN)
                return block(that, x, 1);
        if (r < 0)
                return r;
        if (tls_of(proc_kernel(kern_proc(that)), x->fd))
                return tls_sendfile(that, x, fd, off, len);
        while (that->op_done < len) {
                if (!(x->flags & VK_PIPE_READY))
                        return block(that, x, 1);
                off_t at = off + (off_t)that->op_done;
                ssize_t w = sendfile(trust_fd(x->fd, 0), fd, &at, len - that->op_done);
                if (w > 0) {
                        that->op_done += (size_t)w;
                        kern_proc(that)->bytes_out += (uint64_t)w;
                        continue;
                }
                if (w == 0)
                        break; /* the file is shorter than asked */
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        x->flags &= (uint16_t)~VK_PIPE_READY;
                        return block(that, x, 1);
                }
                return -errno;
        }
        return (ssize_t)that->op_done;
}

void vk_truncate_input(struct vk_thread *that, size_t keep)
{
        struct vk_pipe *x = that->in;
        uint32_t len = ring_len(&x->ring);
        if (keep >= len)
                return;
        x->ring.tail = x->ring.head + (uint32_t)keep;
        if (x->flags & VK_PIPE_HUP)
                x->hup_left = x->hup_left > keep ? (uint32_t)keep : x->hup_left;
        if (!keep)
                x->ring.head = x->ring.tail = 0;
}

int vk_own_fd(struct vk_thread *that, int fd)
{
        struct vk_proc *p = kern_proc(that);
        for (int i = 0; i < VK_OWNED_FDS; i++) {
                if (!p->owned[i]) {
                        p->owned[i] = fd + 1;
                        return 0;
                }
        }
        return -EMFILE;
}

void vk_close_fd(struct vk_thread *that, int fd)
{
        struct vk_proc *p = kern_proc(that);
        for (int i = 0; i < VK_OWNED_FDS; i++) {
                if (p->owned[i] == fd + 1) {
                        p->owned[i] = 0;
                        close(fd);
                        return;
                }
        }
}

/* ------------------------------------------------------------------ */
/* Messages: the process side. The kernel moves them between outboxes and
 * inboxes between dispatches (sched.c). */

uint64_t vk_pid(const struct vk_thread *that)
{
        return kern_proc(that)->pid;
}

uint64_t vk_service_pid(const struct vk_thread *that)
{
        return proc_kernel(kern_proc(that))->service_pid;
}

static struct vk_ring *mailbox(struct vk_proc *p)
{
        size_t size = proc_kernel(p)->cfg.ring_size;
        struct vk_ring *r = vk_malloc(p, sizeof *r + size);
        if (!r)
                return NULL;
        r->buf = (char *)(r + 1);
        r->size = (uint32_t)size;
        r->head = r->tail = r->hwm = 0;
        return r;
}

ssize_t vk__send(struct vk_thread *that, uint64_t to, const void *buf, size_t len)
{
        struct vk_proc *p = kern_proc(that);
        if (!p->outbox && !(p->outbox = mailbox(p)))
                return -ENOMEM;
        trust_mailbox(p->outbox);
        struct msg_head h = {.len = (uint32_t)len, .peer = to};
        if (len > p->outbox->size - sizeof h || len >= MSG_BOUNCE)
                return -EMSGSIZE;
        if (ring_space(p->outbox) < sizeof h + len) {
                p->sender = that;
                that->msg_wait = 2;
                return wait_here(that);
        }
        ring_write(p->outbox, &h, sizeof h);
        ring_write(p->outbox, buf, (uint32_t)len);
        return 0;
}

ssize_t vk__receive(struct vk_thread *that, uint64_t *from, void *buf, size_t cap)
{
        struct vk_proc *p = kern_proc(that);
        struct msg_head h;
        if (!p->inbox && !(p->inbox = mailbox(p)))
                return -ENOMEM;
        trust_mailbox(p->inbox);
        if (!ring_len(p->inbox)) {
                p->receiver = that;
                that->msg_wait = 1;
                return wait_here(that);
        }
        ring_read(p->inbox, &h, sizeof h);
        *from = h.peer;
        if (h.len == MSG_BOUNCE)
                return -ESRCH;
        if (h.len > ring_len(p->inbox))
                trust_fail("message length");
        uint32_t n = h.len < cap ? h.len : (uint32_t)cap;
        ring_read(p->inbox, buf, n);
        if (h.len > n)
                ring_consume(p->inbox, h.len - n);
        return (ssize_t)h.len;
}

int vk_has_message(const struct vk_thread *that)
{
        const struct vk_proc *p = kern_proc(that);
        return p->inbox && ring_len(p->inbox);
}

/* ------------------------------------------------------------------ */
/* More sockets. Opened in process context; the kernel binds the descriptor
 * to the process after the dispatch (sched.c: bind_new_sockets). */

/* ring_size 0: a listener, which moves no bytes. */
static struct vk_socket *socket_open(struct vk_thread *that, int fd, uint32_t ring_size)
{
        struct vk_proc *p = kern_proc(that);
        int slot = 0;
        while (slot < VK_SOCKETS_MAX && p->unbound[slot])
                slot++;
        if (p->extra_sockets >= VK_SOCKETS_MAX || slot == VK_SOCKETS_MAX) {
                close(fd);
                errno = EMFILE;
                return NULL;
        }
        struct vk_socket *s = vk_malloc(p, sizeof *s);
        if (!s) {
                close(fd);
                errno = ENOMEM;
                return NULL;
        }
        /* Until the kernel binds it after this dispatch, this list is what
         * closes it if the process ends first (even by a fault). */
        p->unbound[slot] = fd + 1;
        p->extra_sockets++;
        if (pipe_init_fd(p, &s->rx, fd, 0, ring_size) < 0 ||
            pipe_init_fd(p, &s->tx, fd, 1, ring_size) < 0) {
                /* ring space is not given back: the process is short of heap */
                vk_free(p, s);
                p->unbound[slot] = 0;
                p->extra_sockets--;
                close(fd);
                errno = ENOMEM;
                return NULL;
        }
        s->bound = 0;
        s->spawned = 0;
        s->connecting = 0;
        s->alias = -1;
        /* after the first socket, which the process was spawned with */
        struct vk_socket **at = &p->sockets;
        unsigned n = 0;
        while (trust_next_socket(*at, &n))
                at = &(*at)->next;
        s->next = NULL;
        *at = s;
        p->new_sockets = 1;
        return s;
}

struct vk_socket *vk_socket_open(struct vk_thread *that, int fd)
{
        return socket_open(that, fd, kern_proc(that)->ring_size);
}

/* A closed socket's ring: wiped (the next socket, or the slot's next
 * occupant, must not read it), then first on the list for the next one. */
static void ring_give_back(struct vk_proc *p, struct vk_ring *r)
{
        if (!r->buf || r->size != p->ring_size || !trust_holds(r->buf, r->size))
                return;
        memset(r->buf, 0, r->hwm < r->size ? r->hwm : r->size);
        memcpy(r->buf, &p->free_rings, sizeof p->free_rings);
        p->free_rings = r->buf;
}

int vk_socket_close(struct vk_thread *that, struct vk_socket *sock)
{
        struct vk_proc *p = kern_proc(that);
        struct vk_socket *s = trust_socket(sock), **at = &p->sockets;
        unsigned n = 0;
        if (!s || s->spawned)
                return -EINVAL; /* the process's own connection ends with it */
        while (trust_next_socket(*at, &n) && *at != s)
                at = &(*at)->next;
        if (*at != s)
                return -EINVAL;
        if (s->rx.reader || s->tx.writer)
                return -EBUSY;
        int fd = s->rx.fd;
        *at = s->next;
        if (fd >= 0) {
                int i = 0;
                for (i = 0; i < VK_SOCKETS_MAX && p->unbound[i] != fd + 1; i++)
                        ;
                if (i < VK_SOCKETS_MAX) { /* not bound yet: nobody else knows it */
                        p->unbound[i] = 0;
                        close(trust_fd(fd, 0));
                } else { /* the kernel's table holds it: closed after this dispatch */
                        for (i = 0; i < VK_SOCKETS_MAX && p->closing[i]; i++)
                                ;
                        if (i == VK_SOCKETS_MAX)
                                trust_fail("list of sockets to close");
                        p->closing[i] = fd + 1;
                        p->new_sockets = 1;
                }
        }
        if (that->in == &s->rx || that->out == &s->tx)
                vk_use(that, NULL);
        ring_give_back(p, &s->rx.ring);
        ring_give_back(p, &s->tx.ring);
        vk_free(p, s);
        p->extra_sockets--;
        return 0;
}

void vk_use(struct vk_thread *that, struct vk_socket *sock)
{
        if (!sock)
                sock = kern_proc(that)->sockets;
        that->in = sock ? &sock->rx : NULL;
        that->out = sock ? &sock->tx : NULL;
}

ssize_t vk__connect(struct vk_thread *that, struct vk_socket **sock, const struct sockaddr *addr,
                    unsigned addrlen)
{
        struct vk_socket *s = trust_socket(*sock);
        if (that->op_done == 0) {
                int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return -errno;
                if (connect(fd, addr, (socklen_t)addrlen) < 0 && errno != EINPROGRESS) {
                        int e = errno;
                        close(fd);
                        return -e;
                }
                s = vk_socket_open(that, fd);
                if (!s)
                        return -errno; /* EMFILE: as many open as a process may hold */
                *sock = s;
                s->connecting = 1;
                s->tx.flags &= (uint16_t)~VK_PIPE_READY; /* writable means connected */
                that->op_done = 1;
        }
        if (!(s->tx.flags & VK_PIPE_READY))
                return block(that, &s->tx, 1);
        int err = 0;
        socklen_t len = sizeof err;
        s->connecting = 0;
        if (getsockopt(trust_fd(s->tx.fd, 0), SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        if (err) {
                s->rx.err = s->tx.err = err;
                return -err;
        }
        return 0;
}

ssize_t vk__accept(struct vk_thread *that, int listen_fd)
{
        struct vk_proc *p = kern_proc(that);
        /* The listener is watched through a socket of its own, opened on the
         * first call and kept: its read side's readiness is the backlog's. */
        struct vk_socket *s;
        unsigned n = 0;
        for (s = trust_next_socket(p->sockets, &n); s; s = trust_next_socket(s->next, &n))
                if (s->alias == listen_fd)
                        break;
        if (!s) {
                int dup = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0);
                if (dup < 0)
                        return -errno;
                /* the process owns (and closes) the duplicate, not the caller's */
                s = socket_open(that, dup, 0);
                if (!s)
                        return -ENOMEM;
                s->alias = listen_fd;
        }
        for (;;) {
                int fd = accept4(trust_fd(s->rx.fd, 0), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0)
                        return fd;
                if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        s->rx.flags &= (uint16_t)~VK_PIPE_READY;
                        return block(that, &s->rx, 0);
                }
                return -errno;
        }
}

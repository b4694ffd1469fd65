/*
 * The vkd virtual kernel as a service author sees it: virtual threads
 * (stackless coroutines), their errors, and the blocking I/O ops.
 *
 * A virtual thread is a plain C function `void fn(struct vk_thread *that)`
 * whose body sits between vk_begin() and vk_end(). Every blocking op is a
 * `return` to the scheduler and a jump back to the same place when the thread
 * is resumed, so C locals do not survive a blocking op: keep state in the
 * frame `self`, a struct the function declares itself and the kernel
 * allocates in the process's micro-heap on the first run:
 *
 *      void echo(struct vk_thread *that)
 *      {
 *              struct {
 *                      char line[256];
 *                      ssize_t n;
 *              } *self;
 *              vk_begin();
 *              for (;;) {
 *                      vk_readline(self->n, self->line, sizeof self->line);
 *                      if (self->n == 0)
 *                              break;
 *                      vk_write(self->line, self->n);
 *              }
 *              vk_end();
 *      }
 *
 * Rules that follow from the implementation (a switch over resume points):
 *  - no blocking op inside a `switch` statement of your own;
 *  - no `_cleanup_` locals, and no C local read after a blocking op;
 *  - arguments of an op are evaluated again each time it resumes, so pass
 *    frame fields or constants;
 *  - an error raised inside the finally block enters it again from its top:
 *    guard work that may raise there with a flag in the frame.
 * Ops marked "yields" may suspend the thread; the others never do.
 */
#ifndef VK_VK_H
#define VK_VK_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VK_ABI_MAJOR 1
#define VK_ABI_MINOR 3

#define VK_LATENCY_BUCKETS 32

struct vk_thread;
struct vk_proc;
struct vk_pipe;
struct vk_socket;
struct sockaddr;

typedef void vk_thread_fn(struct vk_thread *that);

/* ------------------------------------------------------------------ */
/* Data the macros touch directly. Everything lives in the micro-heap. */

/* A byte ring: free-running counters, size a power of two, memory reserved
 * at creation and touched only when bytes pass through it. */
struct vk_ring {
        char *buf;
        uint32_t size;
        uint32_t head; /* next byte to read */
        uint32_t tail; /* next byte to write */
        uint32_t hwm;  /* the kernel's: bytes from buf ever written, what a
                        * reused heap must have wiped (in what was padding) */
};

/* One direction of a byte stream: backed by a descriptor, or an in-heap
 * pipe between two threads of one process. */
struct vk_pipe {
        struct vk_ring ring;
        int fd;                   /* -1 for an in-heap pipe */
        uint16_t flags;           /* VK_PIPE_* */
        uint32_t hup_left;        /* bytes before a pending message boundary (VK_PIPE_HUP) */
        int err;                  /* pending error from the descriptor, positive errno */
        struct vk_thread *reader; /* thread blocked reading */
        struct vk_thread *writer; /* thread blocked writing or flushing */
        struct vk_pipe *next_dirty;
};

#define VK_PIPE_READY 0x01    /* descriptor may have bytes/space: try the syscall */
#define VK_PIPE_EOF 0x02      /* no more bytes will come after the ring drains */
#define VK_PIPE_HUP 0x04      /* a message boundary is pending after hup_left bytes */
#define VK_PIPE_RDHUP 0x08    /* peer shut its side: reads run until 0 */
#define VK_PIPE_CLOSED 0x10   /* this side was shut down (writes fail with EPIPE) */
#define VK_PIPE_ARMED 0x20    /* the poller was asked about this descriptor */
#define VK_PIPE_DIRTY 0x40    /* on the process's list of pipes to arm */
#define VK_PIPE_POLLABLE 0x80 /* the descriptor can be polled (not a regular file) */
#define VK_PIPE_WANT 0x100    /* a thread (or a pending flush) waits on readiness */

struct vk_error {
        int code; /* positive errno value; 0: no error */
        int line; /* source line that raised it */
        char msg[64];
};

enum vk_thread_state {
        VK_THREAD_READY = 1,
        VK_THREAD_BLOCKED,
        VK_THREAD_PAUSED,
        VK_THREAD_DONE,
};

struct vk_thread {
        vk_thread_fn *fn;
        int pc;       /* resume point: 0 not started, VK_PC_FINALLY, else a label */
        int lower_pc; /* where vk_lower() resumes */
        uint8_t state;
        uint8_t queued; /* on the process run queue */
        uint8_t is_main;
        uint8_t sleeping; /* blocked in vk_sleep() */
        uint8_t owns_in;  /* a responder: its input pipe closes when it ends */
        uint8_t msg_wait; /* blocked in vk_receive() (1) or vk_send() (2) */
        void *self;
        void *arg;
        size_t arglen;
        struct vk_proc *proc;
        struct vk_thread *parent; /* gets errors nobody else awaits */
        struct vk_thread *joiner; /* thread waiting for this one to end */
        struct vk_thread *next_ready;
        struct vk_thread *next, *prev; /* all threads of the process */
        struct vk_pipe *in, *out;
        struct vk_pipe *blocked_on; /* pipe whose reader/writer slot holds us */
        uint64_t timeout_ns;        /* deadline applied to each blocking op; 0 none */
        uint64_t deadline_at;       /* absolute deadline for every blocking op; 0 none */
        uint64_t deadline;          /* absolute, while blocked; 0 none */
        size_t op_done;             /* progress of the current multi-step op */
        struct vk_error err;
        uint64_t fn_seal;    /* the kernel's: fn sealed to this thread, checked before each call */
        int catch_pc;        /* inside vk_catch(): where a raised error resumes; 0 none (ABI 1.3) */
        uint8_t finally_ran; /* its finally block ran: a pending error was seen (ABI 1.3) */
};

#define VK_PC_FINALLY (-1)

/* ------------------------------------------------------------------ */
/* Coroutine structure. */

#define VK__CAT2(a, b) a##b
#define VK__CAT(a, b) VK__CAT2(a, b)

/* Starts a coroutine body. Allocates the frame on the first run (raising
 * ENOMEM in the caller's process if the heap is full) and copies the
 * spawn arguments into its first bytes. */
#define vk_begin()                                             \
        do {                                                   \
                if (that->pc == 0) {                           \
                        self = vk__frame(that, sizeof(*self)); \
                        if (!self)                             \
                                return;                        \
                } else {                                       \
                        self = that->self;                     \
                }                                              \
        } while (0);                                           \
        vk__resume:                                            \
        switch (that->pc) {                                    \
        case 0:

/* Ends a coroutine body. A pending error that no finally block lowered is
 * delivered to the thread's joiner, else its parent, else it ends the
 * process. The main thread and responders flush their output before they
 * end (a responder's output is what was its caller's): always when no error
 * is pending, and with one pending once the finally block ran (what it wrote,
 * an error reply say, goes out; then the error ends the thread). Output of a
 * thread without a finally block is dropped on an error. Yields. */
#define vk_end()                                                                                  \
        goto vk__end;                                                                             \
        default:                                                                                  \
        vk__end:;                                                                                 \
                }                                                                                 \
                if ((that->is_main || that->owns_in) && (!that->err.code || that->finally_ran) && \
                    vk__out_pending(that)) {                                                      \
                        that->pc = -2;                                                            \
                        do {                                                                      \
                                if (vk__flush(that) != -EAGAIN)                                   \
                                        break;                                                    \
                                return;                                                           \
                        } while (0);                                                              \
                }                                                                                 \
                vk__thread_end(that);                                                             \
                return;                                                                           \
                goto vk__resume

#define vk__yield_at(n)         \
        do {                    \
                that->pc = (n); \
                return;         \
        case (n):;              \
        } while (0)

/* Suspends the current thread at this point; whoever made it blocked or
 * ready has already recorded why. */
#define vk__yield() vk__yield_at(__COUNTER__ + 1)

/* Yields: lets the other ready threads of the process (and then the other
 * processes) run, and continues afterwards. */
#define vk_yield()                 \
        do {                       \
                vk__requeue(that); \
                vk__yield();       \
        } while (0)

/* The block that runs after the body ends normally or when an error is
 * raised: vk_error() tells which. At most one per coroutine. */
#define vk_finally()        \
        goto vk__finally;   \
        case VK_PC_FINALLY: \
        vk__finally:        \
                that->finally_ran = 1

/* ------------------------------------------------------------------ */
/* Errors. */

#define vk__raise_at(n)                                                     \
        do {                                                                \
                that->lower_pc = (n);                                       \
                that->pc = that->catch_pc ? that->catch_pc : VK_PC_FINALLY; \
                goto vk__resume;                                            \
        case (n):;                                                          \
        } while (0)

/* Raises error `code` (a positive errno value) with a message: control
 * continues in this coroutine's finally block, or the thread ends and the
 * error goes to whoever awaits it. */
#define vk_raise(code, msg)                                         \
        do {                                                        \
                vk__set_error(that, (code), __LINE__, "%s", (msg)); \
                vk__raise_at(__COUNTER__ + 1);                      \
        } while (0)

/* Like vk_raise() with a printf-style message. */
#define vk_raisef(code, ...)                                        \
        do {                                                        \
                vk__set_error(that, (code), __LINE__, __VA_ARGS__); \
                vk__raise_at(__COUNTER__ + 1);                      \
        } while (0)

/* Inside a finally block: clears the error and resumes right after the point
 * that raised it. */
#define vk_lower()                         \
        do {                               \
                that->err.code = 0;        \
                that->pc = that->lower_pc; \
                goto vk__resume;           \
        } while (0)

/* Catch and continue: runs the statement(s) `...` (blocking ops are fine);
 * if one of them raises, control continues right after vk_catch() instead of
 * in the finally block, with the error cleared and `errvar` (an int lvalue, a
 * frame field) set to its positive errno value; else `errvar` is 0. The message
 * stays readable in that->err.msg until the next error. Re-raise what you do
 * not handle:
 *
 *      vk_catch(self->err, vk_receive(self->n, self->from, self->buf, sizeof self->buf));
 *      if (self->err == ESRCH)
 *              continue;               (the peer is gone: forget it, go on)
 *      if (self->err)
 *              vk_raise(self->err, "receive failed");
 *
 * Errors raised at the thread by vk_raise_at() while it is inside are caught
 * too. Not nestable, and not for use in a finally block. */
#define vk_catch(errvar, ...) vk__catch(errvar, __COUNTER__ + 1, __VA_ARGS__)
#define vk__catch(errvar, n, ...)                  \
        do {                                       \
                that->catch_pc = (n);              \
                __VA_ARGS__;                       \
                that->catch_pc = 0;                \
                (errvar) = 0;                      \
                if (0) {                           \
                case (n):                          \
                        that->catch_pc = 0;        \
                        (errvar) = that->err.code; \
                        that->err.code = 0;        \
                }                                  \
        } while (0)

/* The pending error of this thread, or NULL. */
static inline const struct vk_error *vk__error(const struct vk_thread *t)
{
        return t->err.code ? &t->err : NULL;
}
#define vk_error() vk__error(that)

/* Clears the pending error (it is handled): the thread ends normally. */
#define vk_clear_error() ((void)(that->err.code = 0))

/* Raises `code` at another thread of the same process: it continues in its
 * finally block (or ends) next time it runs, whatever it was blocked on. */
void vk_raise_at(struct vk_thread *t, int code, const char *msg);

/* ------------------------------------------------------------------ */
/* Threads. */

/* Creates a ready child thread running fn in the same process, sharing the
 * caller's stdio. arg (arglen bytes, may be NULL) is copied into the first
 * bytes of the child's frame. Evaluates to the thread or NULL (ENOMEM). */
#define vk_spawn(fn, arg, arglen) vk__spawn(that, (fn), (arg), (arglen), 0)

/* Like vk_spawn(), but the child is a responder: the caller's output is piped
 * into the child's input, and the child writes to what was the caller's
 * output. The pipe (with a 4 KiB ring) lives until the process ends: spawn
 * responders per connection, not per request. Evaluates to the thread or
 * NULL (ENOMEM). */
#define vk_responder(fn, arg, arglen) vk__spawn(that, (fn), (arg), (arglen), 1)

/* Makes a paused or not yet started thread ready. Never yields. */
void vk_play(struct vk_thread *t);

/* Yields until another thread calls vk_play() on this one. */
#define vk_pause()               \
        do {                     \
                vk__pause(that); \
                vk__yield();     \
        } while (0)

/* Yields until thread t ends; its uncaught error is raised here. Frees t.
 * t is evaluated again each time the thread resumes, so it must be an lvalue
 * (a frame field): `vk_join(vk_spawn(...))` or `vk_call(vk_spawn(...))` would
 * spawn a thread per resumption, and does not compile (`&(t)` needs an
 * lvalue). */
#define vk_join(t)                                     \
        do {                                           \
                (void)&(t);                            \
                while (vk__join(that, (t)) == -EAGAIN) \
                        vk__yield();                   \
                if (that->err.code)                    \
                        vk__raise_at(__COUNTER__ + 1); \
        } while (0)

/* Plays t and joins it (t: an lvalue, see vk_join()). Yields. */
#define vk_call(t)          \
        do {                \
                vk_play(t); \
                vk_join(t); \
        } while (0)

/* 1 if t has ended. */
int vk_is_done(const struct vk_thread *t);

/* Sets a deadline for each following blocking op of this thread: an op still
 * blocked after `ms` milliseconds raises ETIMEDOUT. 0 turns it off. */
void vk_set_timeout(struct vk_thread *that, uint64_t ms);

/* Sets one deadline, `ms` milliseconds from now, for all following blocking
 * ops together (a budget for a whole exchange, e.g. reading a request head
 * however slowly it trickles in): past it they raise ETIMEDOUT. 0 clears it. */
void vk_set_deadline(struct vk_thread *that, uint64_t ms);

/* Yields for at least `ms` milliseconds. */
#define vk_sleep(ms)                   \
        do {                           \
                vk__sleep(that, (ms)); \
                vk__yield();           \
        } while (0)

/* ------------------------------------------------------------------ */
/* Memory: the process micro-heap. */

/* Allocates n bytes (16-byte aligned) from the process heap. Returns NULL
 * when the heap is full; prefer vk_alloc_or_raise() in coroutines. */
void *vk_malloc(struct vk_proc *p, size_t n);
/* Frees a block from vk_malloc(); NULL is fine. */
void vk_free(struct vk_proc *p, void *ptr);

#define vk_alloc_or_raise(lhs, n)                                                      \
        do {                                                                           \
                if (!((lhs) = vk_malloc(that->proc, (n))))                             \
                        vk_raisef(ENOMEM, "heap full: %zu bytes needed", (size_t)(n)); \
        } while (0)

/* ------------------------------------------------------------------ */
/* I/O on the thread's stdio. Every op yields. Descriptor errors raise. */

#define vk__op(rc, call)                                                       \
        do {                                                                   \
                that->op_done = 0;                                             \
                while (((rc) = (call)) == -EAGAIN)                             \
                        vk__yield();                                           \
                if ((rc) < 0)                                                  \
                        vk_raisef((int)-(rc), "%s", vk__strerror((int)-(rc))); \
        } while (0)

/* Reads exactly len bytes into buf, fewer only at end of stream or at a
 * message boundary (vk_hup()). rc (an lvalue) gets the count. */
#define vk_read(rc, buf, len) vk__op(rc, vk__read(that, (buf), (len), VK__READ_ALL))
/* Reads what is there, at least 1 byte, at most len; 0 at end of stream. */
#define vk_readsome(rc, buf, len) vk__op(rc, vk__read(that, (buf), (len), VK__READ_SOME))
/* Reads up to and including '\n', at most len bytes; 0 at end of stream. */
#define vk_readline(rc, buf, len) vk__op(rc, vk__read(that, (buf), (len), VK__READ_LINE))
/* Waits until input is readable (bytes buffered, end of stream or a
 * boundary); rc gets the number of bytes buffered. */
#define vk_pollread(rc) vk__op(rc, vk__pollread(that))
/* Zero-copy input for parsers. Waits until more than `have` bytes are
 * buffered (or end of stream, or the ring is full), then makes the buffered
 * bytes contiguous and points `ptr` (an lvalue, const char *) at them; rc
 * gets their number. The bytes stay in the ring until vk_consume(). rc ==
 * have means no more will come: end of stream, a boundary, or a full ring. */
#define vk_peek(rc, ptr, have) vk__op(rc, vk__peek(that, &(ptr), (have)))
/* Drops n bytes from the front of the input (after vk_peek). Never yields. */
void vk_consume(struct vk_thread *that, size_t n);
/* Keeps only the first `keep` buffered input bytes (after a parser rewrote
 * the span vk_peek gave it in place, e.g. a chunked decoder). Never yields. */
void vk_truncate_input(struct vk_thread *that, size_t keep);

/* Sends len bytes of file descriptor fd from offset off after the buffered
 * output, with sendfile(2) where it applies; rc gets the count sent (less
 * only at the end of the file). */
#define vk_sendfile(rc, fd, off, len) vk__op(rc, vk__sendfile(that, (fd), (off), (len)))

/* Ends the current message: drops what is left of it up to the boundary set
 * by the writer's vk_hup() (waiting for the boundary if it has not come),
 * then reads continue with the next message. On a descriptor: no-op. */
#define vk_readhup()                               \
        do {                                       \
                ssize_t vk__rc;                    \
                vk__op(vk__rc, vk__readhup(that)); \
        } while (0)
/* 1 if the input is at a message boundary or at end of stream. */
int vk_at_hup(const struct vk_thread *that);
/* 1 if the input reached end of stream (nothing buffered, peer done). */
int vk_at_eof(const struct vk_thread *that);

/* Writes len bytes (buffered in the output ring; flushed when it fills, when
 * the thread blocks on input, or by vk_flush()). */
#define vk_write(buf, len)                                     \
        do {                                                   \
                ssize_t vk__rc;                                \
                vk__op(vk__rc, vk__write(that, (buf), (len))); \
        } while (0)
/* Writes a NUL-terminated string. */
#define vk_puts(s) vk_write((s), vk__strlen(s))
/* Writes printf-style (any length: long text is formatted into the heap). */
#define vk_printf(...)                                         \
        do {                                                   \
                ssize_t vk__rc;                                \
                vk__op(vk__rc, vk__printf(that, __VA_ARGS__)); \
        } while (0)
/* Waits until every buffered output byte was handed to the descriptor. */
#define vk_flush()                               \
        do {                                     \
                ssize_t vk__rc;                  \
                vk__op(vk__rc, vk__flush(that)); \
        } while (0)
/* Marks a message boundary after the bytes written so far (see vk_readhup). */
#define vk_hup()                               \
        do {                                   \
                ssize_t vk__rc;                \
                vk__op(vk__rc, vk__hup(that)); \
        } while (0)
/* Copies input to output until end of stream, or len bytes if len > 0;
 * rc gets the count. */
#define vk_forward(rc, len) vk__op(rc, vk__forward(that, (len)))
/* Flushes, then shuts down the output side (the reader sees end of stream). */
#define vk_close_write()                               \
        do {                                           \
                ssize_t vk__rc;                        \
                vk__op(vk__rc, vk__close_write(that)); \
        } while (0)
/* Shuts down the input side: further reads see end of stream. Never yields. */
void vk_close_read(struct vk_thread *that);

/* ------------------------------------------------------------------ */
/* Messages between processes. A process shares no memory with another:
 * messages are copied by the kernel between dispatches (batched: a process
 * that sends ten messages and then waits costs one switch each way). */

/* This process's id (what vk_receive() reports as a sender). */
uint64_t vk_pid(const struct vk_thread *that);
/* The id of the service's own process (the module's `service` coroutine),
 * or 0 when it has none. */
uint64_t vk_service_pid(const struct vk_thread *that);

/* Queues len bytes as one message to process `to`; yields while the outbox
 * is full. A message larger than the mailbox raises EMSGSIZE. */
#define vk_send(to, buf, len)                                       \
        do {                                                        \
                ssize_t vk__rc;                                     \
                vk__op(vk__rc, vk__send(that, (to), (buf), (len))); \
        } while (0)
/* Waits for the next message, copies at most cap bytes of it into buf; rc
 * gets its whole length and from (a uint64_t lvalue) its sender. Yields.
 * Raises like every op: ESRCH when a message this process sent could not be
 * delivered because its receiver is gone (from is set to that process first:
 * catch it with vk_catch() to forget the peer and go on), ENOMEM when the
 * heap has no room for the mailbox (RingSize bytes). */
#define vk_receive(rc, from, buf, cap) vk__op(rc, vk__receive(that, &(from), (buf), (cap)))
/* 1 if a message is waiting (vk_receive() would not block). */
int vk_has_message(const struct vk_thread *that);

/* Monotonic clock in nanoseconds. */
uint64_t vk_now(const struct vk_thread *that);
/* Counts one request of the service, begun at `started` (vk_now()), in the
 * kernel's figures: request count and latency histogram. Never yields. */
void vk_request_done(struct vk_thread *that, uint64_t started);

/* ------------------------------------------------------------------ */
/* More sockets than stdio: a process may hold VK_SOCKETS_MAX more. */

#define VK_SOCKETS_MAX 8

/* Makes a connected, non-blocking socket descriptor part of the process
 * (its two rings, 2 x RingSize, come from the heap, or from a socket it
 * closed; closed when the process ends). Evaluates to the socket, or NULL
 * with errno ENOMEM (heap full) or EMFILE (VK_SOCKETS_MAX open already); the
 * descriptor is closed then. Never yields. */
struct vk_socket *vk_socket_open(struct vk_thread *that, int fd);

/* Closes a socket the process opened (vk_socket_open, vk_connect, not the
 * one it was spawned with): its descriptor now or after this dispatch, its
 * rings wiped and kept for the next socket it opens. Output not yet flushed
 * is dropped (vk_flush() first); no thread may use the socket afterwards
 * (the calling thread's stdio goes back to the first socket if it was this
 * one). Returns 0, -EBUSY while a thread waits on it, -EINVAL for a socket
 * that is not one it opened. Never yields. */
int vk_socket_close(struct vk_thread *that, struct vk_socket *sock);

/* Connects to addr (TCP or unix) without blocking the worker: sock (a
 * struct vk_socket * lvalue) gets the new socket, usable with vk_use().
 * Raises the connect error (ECONNREFUSED, ETIMEDOUT with a deadline...). */
#define vk_connect(sock, addr, addrlen)                                        \
        do {                                                                   \
                ssize_t vk__rc;                                                \
                vk__op(vk__rc, vk__connect(that, &(sock), (addr), (addrlen))); \
        } while (0)

/* Waits for a connection on a listening socket descriptor (non-blocking,
 * opened by the service) and accepts it: rc gets the new descriptor (give it
 * to vk_socket_open(), or to another process). */
#define vk_accept(rc, listen_fd) vk__op(rc, vk__accept(that, (listen_fd)))

/* Makes sock the thread's stdio (in and out); NULL restores the process's
 * first socket. Never yields. */
void vk_use(struct vk_thread *that, struct vk_socket *sock);

/* Hands a descriptor the thread opened (a file, say) to its process: it is
 * closed when the process ends, however it ends. At most VK_OWNED_FDS at a
 * time. Returns 0 or -EMFILE. Never yields. */
#define VK_OWNED_FDS 4
int vk_own_fd(struct vk_thread *that, int fd);
/* Closes a descriptor given to vk_own_fd() and forgets it. Never yields. */
void vk_close_fd(struct vk_thread *that, int fd);

/* ------------------------------------------------------------------ */
/* Internals the macros expand to. Not for direct use. */

enum { VK__READ_ALL, VK__READ_SOME, VK__READ_LINE };

void *vk__frame(struct vk_thread *that, size_t size);
void vk__thread_end(struct vk_thread *that);
void vk__requeue(struct vk_thread *that);
void vk__set_error(struct vk_thread *that, int code, int line, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
const char *vk__strerror(int code);
struct vk_thread *vk__spawn(struct vk_thread *that, vk_thread_fn *fn, const void *arg,
                            size_t arglen, int responder);
ssize_t vk__join(struct vk_thread *that, struct vk_thread *t);
void vk__sleep(struct vk_thread *that, uint64_t ms);
void vk__pause(struct vk_thread *that);
ssize_t vk__read(struct vk_thread *that, void *buf, size_t len, int how);
ssize_t vk__pollread(struct vk_thread *that);
ssize_t vk__readhup(struct vk_thread *that);
ssize_t vk__write(struct vk_thread *that, const void *buf, size_t len);
ssize_t vk__printf(struct vk_thread *that, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
ssize_t vk__flush(struct vk_thread *that);
ssize_t vk__hup(struct vk_thread *that);
ssize_t vk__forward(struct vk_thread *that, size_t len);
ssize_t vk__peek(struct vk_thread *that, const char **ptr, size_t have);
ssize_t vk__send(struct vk_thread *that, uint64_t to, const void *buf, size_t len);
ssize_t vk__connect(struct vk_thread *that, struct vk_socket **sock, const struct sockaddr *addr,
                    unsigned addrlen);
ssize_t vk__accept(struct vk_thread *that, int listen_fd);
ssize_t vk__receive(struct vk_thread *that, uint64_t *from, void *buf, size_t cap);
ssize_t vk__sendfile(struct vk_thread *that, int fd, off_t off, size_t len);
ssize_t vk__close_write(struct vk_thread *that);
int vk__out_pending(const struct vk_thread *that);
size_t vk__strlen(const char *s);

#endif

/*
 * The redis service's two kinds of virtual process.
 *
 * The store (one per worker, the module's `service`) owns the keyspace in
 * ordinary memory and runs every command; it never touches a socket. Each
 * connection process parses RESP where it lies in its socket ring, packs all
 * the complete commands it finds into messages to the store, then takes the
 * replies back in order and writes them: 16 pipelined commands cost one
 * process switch each way and leave in one writev. Nothing is shared between
 * the processes; the kernel copies the messages.
 *
 * Messages are bounded by the mailbox (the kernel's ring size). A reply
 * longer than one message is sent in parts, each asked for with 'N', so a
 * connection never has more than one part in flight; a command too large for
 * the connection's ring or argv goes to the store raw, in acknowledged parts,
 * and the store parses it. So a 1 MB GET or SET works with 4 KiB rings.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vk/module.h>

#include "db_int.h"
#include "redis_int.h"


/* ------------------------------------------------------------------ */
/* The store's state (malloc'd: it outgrows any micro-heap). */

#define CLIENT_BUCKETS 1024

struct store {
        const struct redis_conf *conf;
        struct rdb db;
        struct rclient *clients[CLIENT_BUCKETS];
        char *rx;
        size_t rxcap;
        size_t max; /* largest message a mailbox takes (from the connections' hellos) */
        struct resp_arg *argv;
        size_t argv_cap;
        char ack[8];
        uint64_t refuse; /* a connection to answer -OOM and close: no memory for it */
        /* append-only file */
        int aof_fd;
        struct rbuf aof;
        int64_t aof_synced_ms;
        bool aof_dirty;
};

static struct rclient **client_slot(struct store *s, uint64_t pid)
{
        struct rclient **pp = &s->clients[(pid ^ (pid >> 24)) % CLIENT_BUCKETS];
        while (*pp && (*pp)->pid != pid)
                pp = &(*pp)->next;
        return pp;
}

/* The client of connection pid, made on its first message; NULL (and the
 * connection is refused) when out of memory. */
static struct rclient *client_get(struct store *s, uint64_t pid)
{
        struct rclient **pp = client_slot(s, pid);
        if (*pp)
                return *pp;
        struct rclient *c = zcalloc(sizeof *c);
        if (!c || rbuf_reserve(&c->out, 256) < 0) {
                zfree(c);
                s->refuse = pid;
                return NULL;
        }
        c->pid = pid;
        c->id = s->db.next_client_id++;
        c->proto = RESP2;
        c->out.len = 1; /* room for the message header: see chunk() */
        c->sent_to = 1;
        c->flags = 0;
        *pp = c;
        s->db.clients++;
        s->db.st.connections++;
        return c;
}

/* Forgets c's large command, parsed or not. */
static void big_free(struct rclient *c)
{
        zfree(c->big_parser);
        c->big_parser = NULL;
        zfree(c->big_argv);
        c->big_argv = NULL;
        free(c->big.p);
        c->big = (struct rbuf){0};
}

static void client_drop(struct store *s, uint64_t pid)
{
        struct rclient **pp = client_slot(s, pid);
        struct rclient *c = *pp;
        if (!c)
                return;
        *pp = c->next;
        big_free(c);
        rclient_release(c);
        zfree(c);
        s->db.clients--;
}

/* c's next reply is -OOM; if even that has no room, c is closed. */
static void reply_oom(struct rclient *c)
{
        size_t n = sizeof RDB_E_OOM - 1;
        if (rbuf_reserve(&c->out, n + 2) < 0) {
                c->flags |= RC_CLOSING;
                return;
        }
        c->out.len += resp_add_error(c->out.p + c->out.len, c->out.cap - c->out.len, RDB_E_OOM, n);
}

/* ------------------------------------------------------------------ */
/* Append-only file. */

static int aof_path(const struct redis_conf *conf, char *buf, size_t len)
{
        int n = snprintf(buf, len, "%s/%s", conf->dir, conf->aof_name);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Replays the file into the keyspace; a torn or corrupt tail is cut off. */
static int aof_load(struct store *s)
{
        char path[700];
        if (aof_path(s->conf, path, sizeof path) < 0)
                return -ENAMETOOLONG;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_APPEND, 0644);
        if (fd < 0) {
                fprintf(stderr, "<3>redis: %s: %s\n", path, strerror(errno));
                return -errno;
        }
        struct stat sb;
        if (fstat(fd, &sb) < 0) {
                close(fd);
                return -errno;
        }
        size_t size = (size_t)sb.st_size, good = 0, cmds = 0;
        char *data = size ? malloc(size) : NULL;
        if (size && !data) {
                close(fd);
                return -ENOMEM;
        }
        size_t got = 0;
        while (got < size) {
                ssize_t r = pread(fd, data + got, size - got, (off_t)got);
                if (r <= 0)
                        break;
                got += (size_t)r;
        }
        size = got;
        struct resp_parser p;
        struct resp_limits lim = s->conf->limits;
        resp_parser_init(&p, &lim);
        struct rclient c = {.proto = RESP2};
        struct rbuf out = {0};
        size_t cap = 16;
        /* MaxMemory= refuses new writes, not the data already written. */
        uint64_t maxmemory = s->db.cfg.maxmemory;
        s->db.cfg.maxmemory = 0;
        struct resp_arg *argv = malloc(cap * sizeof *argv);
        int err = argv ? 0 : -ENOMEM;
        while (good < size && !err) {
                struct resp_command cmd = {.argv = argv, .argv_cap = cap};
                ssize_t r = resp_parse(&p, data + good, size - good, &cmd);
                while (r == -ENOBUFS && cmd.argc > cap) {
                        struct resp_arg *a = realloc(argv, 2 * cap * sizeof *argv);
                        if (!a) {
                                err = -ENOMEM;
                                break;
                        }
                        argv = a;
                        cap *= 2;
                        cmd.argv = argv;
                        cmd.argv_cap = cap;
                        r = resp_parse(&p, data + good, size - good, &cmd);
                }
                if (err || r <= 0 || data[good] != '*')
                        break;
                out.len = 0;
                rdb_exec(&s->db, &c, cmd.argv, cmd.argc, &out);
                if (out.len > 4 && !memcmp(out.p, "-OOM", 4))
                        err = -ENOMEM; /* the data does not fit: refuse to run without it */
                good += (size_t)r;
                cmds++;
        }
        if (err) {
                fprintf(stderr, "<3>redis: %s: out of memory replaying command %zu\n", path, cmds);
                close(fd);
        } else if (good < size) {
                fprintf(stderr,
                        "<4>redis: %s: torn or bad record at byte %zu of %zu: truncated "
                        "after %zu commands\n",
                        path, good, size, cmds);
                if (ftruncate(fd, (off_t)good) < 0) {
                        err = -errno;
                        fprintf(stderr, "<3>redis: %s: truncate: %s\n", path, strerror(errno));
                        close(fd);
                }
        }
        rclient_release(&c);
        rbuf_free(&out);
        free(argv);
        free(data);
        s->db.cfg.maxmemory = maxmemory;
        if (err)
                return err;
        s->aof_fd = fd;
        s->db.dirty = 0;
        s->db.st.commands = 0;
        return 0;
}

static void aof_feed(struct store *s, const struct resp_arg *argv, size_t argc)
{
        if (s->aof_fd < 0)
                return;
        if (s->db.prop_argc) {
                /* the command rewrote itself (absolute expiry times) */
                struct resp_arg a[8];
                size_t n = s->db.prop_argc < 8 ? s->db.prop_argc : 8;
                const char *p = s->db.prop.p;
                for (size_t i = 0; i < n; i++) {
                        uint32_t l;
                        memcpy(&l, p, sizeof l);
                        a[i] = (struct resp_arg){p + sizeof l, l};
                        p += sizeof l + l;
                }
                rdb_append_multibulk(&s->aof, a, n);
        } else {
                if (s->db.log_argc) /* the command ran out of memory after these */
                        argc = s->db.log_argc;
                rdb_append_multibulk(&s->aof, argv, argc);
        }
        s->db.prop_argc = 0;
}

/* Writes what commands logged; before their replies leave, as Redis does. */
static void aof_write(struct store *s)
{
        if (s->aof_fd < 0 || !s->aof.len)
                return;
        size_t done = 0;
        while (done < s->aof.len) {
                ssize_t r = write(s->aof_fd, s->aof.p + done, s->aof.len - done);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "<3>redis: AOF write: %s\n", strerror(errno));
                        break;
                }
                done += (size_t)r;
        }
        s->aof.len = 0;
        s->aof_dirty = true;
        if (s->conf->fsync == FSYNC_ALWAYS) {
                fdatasync(s->aof_fd);
                s->aof_dirty = false;
        }
}

/* ------------------------------------------------------------------ */
/* The store: messages in, commands run, replies out. */

/* To a connection the store has no memory for: R_DONE | R_CLOSE, -OOM. */
static const char oom_close[] = "\x05" RDB_E_OOM "\r\n";
_Static_assert((R_DONE | R_CLOSE) == 0x05, "oom_close starts with R_DONE | R_CLOSE");

/* Room a command's rewritten form (aof_feed) may need beyond the command:
 * INCRBYFLOAT's result, an absolute time. */
#define PROP_ROOM (RESP_LDSTR_SIZE + 64)

static void exec_one(struct store *s, struct rclient *c, const struct resp_arg *argv, size_t argc)
{
        if (c->flags & RC_CLOSING)
                return;
        /* Room in the log first: a write that ran is always logged. */
        if (s->aof_fd >= 0 &&
            rbuf_reserve(&s->aof, rdb_multibulk_size(argv, argc) + PROP_ROOM) < 0) {
                s->aof.failed = false;
                return reply_oom(c);
        }
        int f = rdb_exec(&s->db, c, argv, argc, &c->out);
        if (f & RDB_WRITE)
                aof_feed(s, argv, argc);
        if (f & RDB_CLOSE)
                c->flags |= RC_CLOSING;
}

/* Runs the commands of a 'C' message. */
static void run_batch(struct store *s, struct rclient *c, const char *m, size_t n)
{
        const char *end = m + n;
        uint32_t argc, len;
        m += 2;
        while (end - m >= 4) {
                memcpy(&argc, m, 4);
                m += 4;
                struct resp_arg *a = s->argv;
                if (argc > s->argv_cap && (a = zrealloc(s->argv, 2 * argc * sizeof *a))) {
                        s->argv = a;
                        s->argv_cap = 2 * argc;
                }
                for (uint32_t i = 0; i < argc; i++) {
                        memcpy(&len, m, 4);
                        if (i < s->argv_cap)
                                s->argv[i] = (struct resp_arg){m + 4, len};
                        m += 4 + len;
                }
                if (argc > s->argv_cap)
                        reply_oom(c);
                else
                        exec_one(s, c, s->argv, argc);
        }
}

/* A part of a large command ('P'): parse what has come so far. Fills s->ack. */
static void run_part(struct store *s, struct rclient *c, const char *m, size_t n)
{
        uint32_t used = (uint32_t)n;
        uint8_t flags = R_ACK;
        char *scratch = NULL;
        ssize_t r = -ENOMEM;
        if (!c->big_parser) {
                c->big_parser = zmalloc(sizeof *c->big_parser);
                c->big_cap = 16;
                c->big_argv = zmalloc(c->big_cap * sizeof *c->big_argv);
                c->big.len = 0;
                if (!c->big_parser || !c->big_argv)
                        goto out;
                resp_parser_init(c->big_parser, &s->conf->limits);
        }
        /* Not counted as data (plain realloc): MaxMemory= judges the keyspace,
         * and a large SET must not refuse itself. */
        if (c->big.cap - c->big.len < n) {
                size_t cap = c->big.cap ? c->big.cap : 4096;
                while (cap - c->big.len < n)
                        cap *= 2;
                char *b = realloc(c->big.p, cap);
                if (!b)
                        goto out;
                c->big.p = b;
                c->big.cap = cap;
        }
        memcpy(c->big.p + c->big.len, m, n);
        c->big.len += n;
        struct resp_command cmd = {.argv = c->big_argv, .argv_cap = c->big_cap};
        for (;;) {
                r = resp_parse(c->big_parser, c->big.p, c->big.len, &cmd);
                if (r != -ENOBUFS)
                        break;
                r = -ENOMEM;
                if (cmd.argc > c->big_cap) {
                        size_t cap = c->big_cap * 2;
                        while (cap < cmd.argc && cap < (1u << 20))
                                cap *= 2;
                        struct resp_arg *a = zrealloc(c->big_argv, cap * sizeof *a);
                        if (!a)
                                goto out;
                        c->big_argv = a;
                        c->big_cap = cap;
                        cmd.argv = c->big_argv;
                        cmd.argv_cap = cap;
                }
                if (cmd.scratch_len > cmd.scratch_cap) {
                        char *b = zrealloc(scratch, cmd.scratch_len);
                        if (!b)
                                goto out;
                        scratch = b;
                        cmd.scratch = scratch;
                        cmd.scratch_cap = cmd.scratch_len;
                }
        }
        if (r >= 0) {
                used = (uint32_t)(n - (c->big.len - (size_t)r));
                exec_one(s, c, cmd.argv, cmd.argc);
                c->flags |= RC_BATCH_DONE;
                flags |= R_CMDDONE;
        }
out:
        if (r == -EPROTO || r == -ENOMEM) {
                /* answered, and the rest of the command is not read: close */
                const char *e = r == -EPROTO ? resp_parser_error(c->big_parser) : RDB_E_OOM;
                if (rbuf_reserve(&c->out, strlen(e) + 16) == 0)
                        c->out.len += resp_add_error(c->out.p + c->out.len, c->out.cap - c->out.len,
                                                     e, strlen(e));
                c->flags |= RC_CLOSING | RC_BATCH_DONE;
                flags |= R_CMDDONE;
        }
        if (flags & R_CMDDONE)
                big_free(c);
        zfree(scratch);
        s->ack[0] = (char)flags;
        memcpy(s->ack + 1, &used, 4);
}

/* Handles one message; returns the client to send to, or NULL. */
static struct rclient *handle(struct store *s, uint64_t from, ssize_t n)
{
        if (n == -ESRCH) { /* a reply to a connection that is gone */
                client_drop(s, from);
                return NULL;
        }
        if (n < 1)
                return NULL;
        const char *m = s->rx;
        struct rclient *c = NULL;
        s->ack[0] = 0;
        if ((size_t)n > s->rxcap) { /* cut short: rx could not grow for it */
                if (m[0] != 'X')
                        s->refuse = from;
                return NULL;
        }
        if (m[0] != 'X' && !(c = client_get(s, from)))
                return NULL;
        switch (m[0]) {
        case 'H': {
                uint32_t max = 0;
                if (n >= 5)
                        memcpy(&max, m + 1, 4);
                if (max > s->max && s->rxcap < max + REDIS_MSG_OVERHEAD) {
                        char *rx = malloc(max + REDIS_MSG_OVERHEAD);
                        if (!rx) /* this connection's large messages will be refused */
                                return NULL;
                        free(s->rx);
                        s->rx = rx;
                        s->rxcap = max + REDIS_MSG_OVERHEAD;
                }
                if (max > s->max)
                        s->max = max;
                return NULL;
        }
        case 'C':
                s->db.st.net_in += (uint64_t)n;
                run_batch(s, c, m, (size_t)n);
                if (m[1] & MSG_END)
                        c->flags |= RC_BATCH_DONE;
                aof_write(s);
                return c->flags & RC_BATCH_DONE ? c : NULL;
        case 'P':
                s->db.st.net_in += (uint64_t)n;
                run_part(s, c, m + 1, (size_t)n - 1);
                aof_write(s);
                return c;
        case 'N':
                c->flags &= ~RC_AWAITING;
                return c;
        case 'X':
                client_drop(s, from);
                return NULL;
        }
        return NULL;
}

/* The next reply message for c in ret and ret_len, or 0 when nothing is due.
 * The message is built in place: its header byte overwrites the reply byte
 * just before the part, which an earlier message already carried. */
static int chunk(struct store *s, struct rclient *c, char **ret, size_t *ret_len)
{
        if (c->flags & RC_AWAITING)
                return 0;
        size_t pending = c->out.len - c->sent_to;
        size_t room = (s->max ? s->max : 4096) - REDIS_MSG_OVERHEAD;
        uint8_t flags = 0;
        size_t take = pending;
        if (pending > room) {
                take = room;
                flags = R_MORE;
        } else if (c->flags & RC_BATCH_DONE) {
                flags = R_DONE | (c->flags & RC_CLOSING ? R_CLOSE : 0);
        } else if (!pending) {
                return 0;
        }
        char *p = c->out.p + c->sent_to - 1;
        p[0] = (char)flags;
        *ret = p;
        *ret_len = take + 1;
        return 1;
}

/* After chunk()'s message was queued. */
static void chunk_sent(struct store *s, struct rclient *c, size_t len)
{
        s->db.st.net_out += len - 1;
        c->sent_to += len - 1;
        if (c->sent_to < c->out.len) {
                c->flags |= RC_AWAITING;
                return;
        }
        c->out.len = c->sent_to = 1;
        c->flags &= ~RC_BATCH_DONE;
        struct rbuf small = {0};
        if (c->out.cap > 65536 && rbuf_reserve(&small, 256) == 0) {
                /* a big reply left: give its memory back */
                rbuf_free(&c->out);
                c->out = small;
                c->out.len = c->sent_to = 1;
        }
}

/* NULL when out of memory. */
static struct store *store_new(const struct redis_conf *conf)
{
        struct store *s = zcalloc(sizeof *s);
        if (!s)
                return NULL;
        s->conf = conf;
        rdb_init(&s->db, &conf->db);
        s->rxcap = 65536;
        s->rx = malloc(s->rxcap);
        s->argv_cap = 64;
        s->argv = zmalloc(s->argv_cap * sizeof *s->argv);
        s->aof_fd = -1;
        if (!s->rx || !s->argv) {
                free(s->rx);
                zfree(s->argv);
                rdb_free(&s->db);
                zfree(s);
                return NULL;
        }
        return s;
}

/* The store's timer: active expiry ten times a second, AOF fsync every
 * second. */
static void store_cron(struct vk_thread *that)
{
        struct {
                struct store *s;
                int ticks;
        } * self;
        vk_begin();
        for (;;) {
                vk_sleep(100);
                rdb_active_expire(&self->s->db, 5000);
                if (++self->ticks % 10 == 0 && self->s->aof_fd >= 0 && self->s->aof_dirty &&
                    self->s->conf->fsync == FSYNC_EVERYSEC) {
                        fdatasync(self->s->aof_fd);
                        self->s->aof_dirty = false;
                }
        }
        vk_end();
}

void redis_store(struct vk_thread *that)
{
        struct {
                const struct redis_conf *conf;
                struct store *s;
                ssize_t n;
                uint64_t from;
                struct rclient *c;
                char *msg;
                size_t len;
                struct vk_thread *cron;
        } * self;
        vk_begin();
        self->s = store_new(self->conf);
        if (!self->s)
                vk_raise(ENOMEM, "no memory for the redis store");
        if (self->conf->db.appendonly && aof_load(self->s) < 0)
                vk_raise(EIO, "cannot load the append-only file");
        self->cron = vk_spawn(store_cron, &self->s, sizeof self->s);
        if (!self->cron)
                vk_raise(ENOMEM, "no memory for the store's timer");
        vk_play(self->cron);
        for (;;) {
                vk_receive(self->n, self->from, self->s->rx, self->s->rxcap);
                self->c = handle(self->s, self->from, self->n);
                if (self->s->refuse) {
                        vk_send(self->s->refuse, oom_close, sizeof oom_close - 1);
                        self->s->refuse = 0;
                }
                if (!self->c)
                        continue;
                if (self->s->ack[0]) {
                        vk_send(self->c->pid, self->s->ack, 5);
                        self->s->ack[0] = 0;
                        if (!(self->c->flags & RC_BATCH_DONE))
                                continue;
                }
                while (chunk(self->s, self->c, &self->msg, &self->len)) {
                        vk_send(self->c->pid, self->msg, self->len);
                        chunk_sent(self->s, self->c, self->len);
                }
        }
        vk_finally();
        /* A stopping worker raises ECANCELED here once every connection has
         * ended: save the append-only file and end. */
        if (vk_error() && vk_error()->code == ECANCELED)
                vk_clear_error();
        if (self->s) {
                if (self->s->aof_fd >= 0) {
                        aof_write(self->s);
                        fdatasync(self->s->aof_fd);
                        close(self->s->aof_fd);
                }
                for (size_t i = 0; i < CLIENT_BUCKETS; i++)
                        while (self->s->clients[i])
                                client_drop(self->s, self->s->clients[i]->pid);
                rdb_free(&self->s->db);
                zfree(self->s->argv);
                free(self->s->rx);
                rbuf_free(&self->s->aof);
                zfree(self->s);
                self->s = NULL;
        }
        vk_end();
}

/* ------------------------------------------------------------------ */
/* A connection. */

#define CONN_ARGV 128

/* Bytes of argv packed as in a 'C' message. */
static size_t packed_size(const struct resp_command *cmd)
{
        size_t n = 4;
        for (size_t i = 0; i < cmd->argc; i++)
                n += 4 + cmd->argv[i].len;
        return n;
}

static size_t pack(char *out, const struct resp_command *cmd)
{
        uint32_t v = (uint32_t)cmd->argc;
        char *p = out;
        memcpy(p, &v, 4);
        p += 4;
        for (size_t i = 0; i < cmd->argc; i++) {
                v = (uint32_t)cmd->argv[i].len;
                memcpy(p, &v, 4);
                memcpy(p + 4, cmd->argv[i].ptr, v);
                p += 4 + v;
        }
        return (size_t)(p - out);
}

/* In redis_conn: receives the replies to what was sent, in order (a long
 * one comes in parts, each asked for in turn), and writes them to the
 * client. Yields. */
#define conn_replies()                                                                            \
        do {                                                                                      \
                vk_receive(self->n, self->store, self->buf, self->max + REDIS_MSG_OVERHEAD);      \
                if (self->n < 1)                                                                  \
                        vk_raise(EPIPE, "the redis store is gone");                               \
                self->flags = (uint8_t)self->buf[0];                                              \
                if (self->n > 1)                                                                  \
                        vk_write(self->buf + 1, (size_t)self->n - 1);                             \
                if (self->flags & R_MORE) {                                                       \
                        self->buf[0] = 'N';                                                       \
                        vk_send(self->store, self->buf, 1);                                       \
                }                                                                                 \
        } while (!(self->flags & R_DONE))

void redis_conn(struct vk_thread *that)
{
        struct {
                const struct redis_conf *conf;
                struct resp_parser parser;
                struct resp_command cmd;
                struct resp_arg argv[CONN_ARGV];
                uint64_t store;
                size_t max; /* largest message payload */
                char *buf;  /* a message being built, or received */
                size_t mlen;
                const char *p; /* the input, in the socket ring */
                ssize_t n, have, r;
                size_t off;     /* input bytes taken by the batch */
                unsigned batch; /* commands in the batch */
                uint8_t flags;  /* of the last reply message */
                uint8_t big, perr, closing;
                uint32_t used;
                uint64_t started;
        } * self;
        vk_begin();
        self->store = vk_service_pid(that);
        if (!self->store) {
                vk_puts("-ERR the redis store is not running (the host did not start the "
                        "module's service process)\r\n");
                goto out;
        }
        self->max = that->in->ring.size - REDIS_MSG_OVERHEAD;
        vk_alloc_or_raise(self->buf, self->max + REDIS_MSG_OVERHEAD);
        resp_parser_init(&self->parser, &self->conf->limits);
        self->cmd.argv = self->argv;
        self->cmd.argv_cap = CONN_ARGV;
        self->buf[0] = 'H';
        memcpy(self->buf + 1, &(uint32_t){(uint32_t)(self->max + REDIS_MSG_OVERHEAD)}, 4);
        vk_send(self->store, self->buf, 5);
        self->have = 0;
        for (;;) {
                vk_peek(self->n, self->p, (size_t)self->have);
                if (self->n == self->have) {
                        /* nothing more will come: end of stream, or a full ring
                         * holding part of one command too large for it */
                        if (self->n == 0 || vk_at_eof(that))
                                break;
                        self->big = 1;
                        goto big;
                }
                self->started = vk_now(that);
                /* Every complete command in the ring goes into the batch. */
                self->off = 0;
                self->batch = 0;
                self->buf[0] = 'C';
                self->buf[1] = 0;
                self->mlen = 2;
                for (;;) {
                        self->r = resp_parse(&self->parser, self->p + self->off,
                                             (size_t)self->n - self->off, &self->cmd);
                        if (self->r == -EAGAIN)
                                break;
                        if (self->r == -EPROTO) {
                                self->perr = 1;
                                break;
                        }
                        if (self->r == -ENOBUFS ||
                            (self->r > 0 && packed_size(&self->cmd) > self->max - 2)) {
                                /* too many arguments or too large to pack: the
                                 * store parses this one from the raw bytes */
                                self->big = 1;
                                break;
                        }
                        if (self->r < 0) {
                                self->perr = 1;
                                break;
                        }
                        if (self->cmd.argc) {
                                if (self->mlen + packed_size(&self->cmd) > self->max) {
                                        vk_send(self->store, self->buf, self->mlen);
                                        self->mlen = 2;
                                }
                                self->mlen += pack(self->buf + self->mlen, &self->cmd);
                                self->batch++;
                        }
                        self->off += (size_t)self->r;
                }
                vk_consume(that, self->off);
                self->have = (ssize_t)((size_t)self->n - self->off);
                if (self->big)
                        self->have = 0;
                if (self->batch) {
                        self->buf[1] = MSG_END;
                        vk_send(self->store, self->buf, self->mlen);
                        conn_replies();
                        for (; self->batch; self->batch--)
                                vk_request_done(that, self->started);
                        if (self->flags & R_CLOSE)
                                break;
                }
                if (self->perr) {
                        self->r = (ssize_t)resp_add_error(self->buf, self->max,
                                                          resp_parser_error(&self->parser),
                                                          strlen(resp_parser_error(&self->parser)));
                        vk_write(self->buf, (size_t)self->r);
                        break;
                }
                if (!self->big)
                        continue;
        big:
                /* A command the store parses: raw parts, each acknowledged with
                 * how much of it the command used. */
                resp_parser_reset(&self->parser);
                self->big = 0;
                self->have = 0;
                for (;;) {
                        vk_peek(self->n, self->p, 0);
                        if (self->n == 0)
                                goto out;
                        if ((size_t)self->n > self->max - 1)
                                self->n = (ssize_t)self->max - 1;
                        self->buf[0] = 'P';
                        memcpy(self->buf + 1, self->p, (size_t)self->n);
                        vk_send(self->store, self->buf, (size_t)self->n + 1);
                        vk_receive(self->r, self->store, self->buf, self->max + REDIS_MSG_OVERHEAD);
                        if (self->r < 5 || !(self->buf[0] & R_ACK))
                                vk_raise(EPIPE, "the redis store is gone");
                        memcpy(&self->used, self->buf + 1, 4);
                        vk_consume(that, self->used);
                        if (self->buf[0] & R_CMDDONE)
                                break;
                }
                conn_replies();
                vk_request_done(that, vk_now(that));
                if (self->flags & R_CLOSE)
                        break;
        }
out:
        vk_finally();
        if (self->store && self->buf) {
                /* goodbye, so the store forgets this client at once */
                self->buf[0] = 'X';
                vk__send(that, self->store, self->buf, 1);
        }
        vk_clear_error();
        vk_end();
}

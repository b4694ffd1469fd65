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
#include <stdarg.h>
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
        /* The message being run: its client, and (a 'C' batch) the commands
         * not yet run, or (s->part) the client's large command. They stay
         * while a command is paused between slices (rdb_busy). */
        struct rclient *cur;
        const char *bat, *bat_end;
        bool bat_last, part;
        const struct resp_arg *cur_argv; /* the command running */
        size_t cur_argc;
        /* append-only file */
        int aof_fd;
        struct rbuf aof;
        int64_t aof_synced_ms;
        bool aof_dirty;
        struct replay *replay; /* while the file is loaded */
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
        zfree(c->big_scratch);
        c->big_scratch = NULL;
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

/* One line on stderr about the store: "<N>redis: ..." when stderr is the journal
 * ($JOURNAL_STREAM names it), which reads the priority and adds "vkd[pid]:"; elsewhere
 * (a container engine, a terminal) the daemon's plain form, "vkd[pid]: redis: ...". Keeps
 * errno. */
static void store_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void store_log(int prio, const char *fmt, ...)
{
        static int journal = -1;
        int saved = errno; /* callers return -errno after the line */
        char msg[1024];
        va_list ap;

        if (journal < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
                          st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
        }
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (journal)
                fprintf(stderr, "<%d>redis: %s\n", prio, msg);
        else
                fprintf(stderr, "vkd[%ld]: redis: %s\n", (long)getpid(), msg);
        errno = saved;
}

static int aof_path(const struct redis_conf *conf, char *buf, size_t len)
{
        int n = snprintf(buf, len, "%s/%s", conf->dir, conf->aof_name);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The append-only file being replayed at start, a slice at a time. */
struct replay {
        char path[700];
        int fd;
        char *data;
        size_t size, good, cmds;
        size_t multi_at; /* where the last MULTI record starts */
        struct resp_parser p;
        struct resp_arg *argv;
        size_t cap;
        struct rclient c;
        struct rbuf out;
        uint64_t maxmemory; /* MaxMemory=, off while the data comes back */
};

static void replay_free(struct store *s)
{
        struct replay *l = s->replay;
        if (!l)
                return;
        if (l->fd >= 0 && s->aof_fd != l->fd)
                close(l->fd);
        s->db.cfg.maxmemory = l->maxmemory;
        rclient_release(&l->c);
        rbuf_free(&l->out);
        free(l->argv);
        free(l->data);
        free(l);
        s->replay = NULL;
}

/* Opens and reads the file for aof_replay(). */
static int aof_open(struct store *s)
{
        struct replay *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        s->replay = l;
        l->fd = -1;
        l->c.proto = RESP2;
        /* MaxMemory= refuses new writes, not the data already written. */
        l->maxmemory = s->db.cfg.maxmemory;
        s->db.cfg.maxmemory = 0;
        if (aof_path(s->conf, l->path, sizeof l->path) < 0)
                return -ENAMETOOLONG;
        l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC | O_APPEND, 0644);
        if (l->fd < 0) {
                store_log(3, "%s: %s", l->path, strerror(errno));
                return -errno;
        }
        struct stat sb;
        if (fstat(l->fd, &sb) < 0)
                return -errno;
        l->cap = 16;
        l->argv = malloc(l->cap * sizeof *l->argv);
        l->data = sb.st_size ? malloc((size_t)sb.st_size) : NULL;
        if (!l->argv || (sb.st_size && !l->data))
                return -ENOMEM;
        while (l->size < (size_t)sb.st_size) {
                ssize_t r = pread(l->fd, l->data + l->size, (size_t)sb.st_size - l->size,
                                  (off_t)l->size);
                if (r <= 0)
                        break;
                l->size += (size_t)r;
        }
        struct resp_limits lim = s->conf->limits;
        resp_parser_init(&l->p, &lim);
        return 0;
}

/* The end of the replay: a torn or corrupt tail is cut off. */
static int replay_done(struct store *s, int err)
{
        struct replay *l = s->replay;
        if (!err && rclient_in_multi(&l->c))
                l->good = l->multi_at; /* a MULTI without its EXEC: none of it stays */
        if (err) {
                store_log(3, "%s: out of memory replaying command %zu", l->path, l->cmds);
        } else if (l->good < l->size) {
                store_log(4,
                          "%s: torn or bad record at byte %zu of %zu: truncated "
                          "after %zu commands",
                          l->path, l->good, l->size, l->cmds);
                if (ftruncate(l->fd, (off_t)l->good) < 0) {
                        err = -errno;
                        store_log(3, "%s: truncate: %s", l->path, strerror(errno));
                }
        }
        if (!err) {
                s->aof_fd = l->fd;
                s->db.aof_size = s->db.aof_base_size = l->good;
                s->db.dirty = 0;
                s->db.st.commands = 0;
        }
        replay_free(s);
        return err;
}

/* Replays the file into the keyspace for about a slice: 1 while some is
 * left (call again after yielding), 0 once loaded, or -errno. */
static int aof_replay(struct store *s)
{
        struct replay *l = s->replay;
        uint64_t t0 = rdb_monotonic_us();
        int f = rdb_busy(&s->db) ? rdb_resume(&s->db) : 0;
        for (unsigned n = 1;; n++) {
                if (f & RDB_MORE)
                        return 1;
                if (l->out.len > 4 && !memcmp(l->out.p, "-OOM", 4))
                        return replay_done(s, -ENOMEM); /* refuse to run without the data */
                l->out.len = 0;
                if (n % 64 == 0 && rdb_monotonic_us() - t0 >= s->db.cfg.slice_us)
                        return 1;
                struct resp_command cmd = {.argv = l->argv, .argv_cap = l->cap};
                ssize_t r = resp_parse(&l->p, l->data + l->good, l->size - l->good, &cmd);
                while (r == -ENOBUFS && cmd.argc > l->cap) {
                        /* to the count the parser saw at once: doubling parsed a
                         * 100,000-argument SADD 13 times, past a small CPU budget */
                        size_t cap = cmd.argc > 2 * l->cap ? cmd.argc : 2 * l->cap;
                        struct resp_arg *a = realloc(l->argv, cap * sizeof *a);
                        if (!a)
                                return replay_done(s, -ENOMEM);
                        l->argv = cmd.argv = a;
                        l->cap = cmd.argv_cap = cap;
                        r = resp_parse(&l->p, l->data + l->good, l->size - l->good, &cmd);
                }
                if (r <= 0 || l->data[l->good] != '*')
                        return replay_done(s, 0);
                if (!rclient_in_multi(&l->c))
                        l->multi_at = l->good;
                l->good += (size_t)r;
                l->cmds++;
                f = rdb_exec(&s->db, &l->c, cmd.argv, cmd.argc, &l->out);
        }
}

static void aof_feed(struct store *s, const struct resp_arg *argv, size_t argc)
{
        if (s->aof_fd < 0)
                return;
        struct rbuf *tx = &s->db.txlog;
        if (tx->len || tx->failed) { /* an EXEC: its writes between MULTI and EXEC */
                if (!tx->failed && rbuf_reserve(&s->aof, tx->len) == 0) {
                        memcpy(s->aof.p + s->aof.len, tx->p, tx->len);
                        s->aof.len += tx->len;
                } else {
                        s->aof.failed = false;
                        s->db.aof_write_failed = true;
                }
                tx->len = 0;
                tx->failed = false;
                s->db.prop_argc = 0;
                return;
        }
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
                        store_log(3, "AOF write: %s", strerror(errno));
                        break;
                }
                done += (size_t)r;
        }
        s->db.aof_size += done;
        s->db.aof_write_failed = done < s->aof.len;
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

/* What follows a command, once it has run to its end. */
static void exec_done(struct store *s, struct rclient *c, int f)
{
        if (f & RDB_WRITE)
                aof_feed(s, s->cur_argv, s->cur_argc);
        if (f & RDB_CLOSE)
                c->flags |= RC_CLOSING;
}

/* Runs one command for c; true if it paused (rdb_busy: see store_step). */
static bool exec_one(struct store *s, struct rclient *c, const struct resp_arg *argv, size_t argc)
{
        if (c->flags & RC_CLOSING)
                return false;
        /* Room in the log first: a write that ran is always logged. */
        if (s->aof_fd >= 0 &&
            rbuf_reserve(&s->aof, rdb_multibulk_size(argv, argc) + PROP_ROOM) < 0) {
                s->aof.failed = false;
                reply_oom(c);
                return false;
        }
        s->cur_argv = argv;
        s->cur_argc = argc;
        int f = rdb_exec(&s->db, c, argv, argc, &c->out);
        if (f & RDB_MORE)
                return true;
        exec_done(s, c, f);
        return false;
}

/* Runs the commands of the current 'C' message from where it stands; true
 * if one paused. */
static bool run_batch(struct store *s, struct rclient *c)
{
        uint32_t argc, len;
        while (s->bat_end - s->bat >= 4) {
                const char *m = s->bat;
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
                s->bat = m;
                if (argc > s->argv_cap)
                        reply_oom(c);
                else if (exec_one(s, c, s->argv, argc))
                        return true;
        }
        return false;
}

/*
 * Goes on with the current message (s->cur's batch, or its large command if
 * s->part) from where it stands. Returns the client to answer once the
 * message is done, or NULL: nothing to send yet, or a command paused after
 * its slice (rdb_busy), to be called again once the worker had its turn.
 */
static struct rclient *store_step(struct store *s)
{
        struct rclient *c = s->cur;
        if (rdb_busy(&s->db)) {
                int f = rdb_resume(&s->db);
                if (f & RDB_MORE)
                        return NULL;
                exec_done(s, c, f);
        } else if (s->part && exec_one(s, c, c->big_argv, c->big_argc)) {
                return NULL;
        }
        if (s->part) {
                big_free(c);
                c->flags |= RC_BATCH_DONE;
        } else if (run_batch(s, c)) {
                return NULL;
        } else if (s->bat_last) {
                c->flags |= RC_BATCH_DONE;
        }
        aof_write(s);
        s->cur = NULL;
        return c->flags & RC_BATCH_DONE ? c : NULL;
}

/* A part of a large command ('P'): parse what has come so far. Fills s->ack;
 * returns true when the command is whole (in c->big_argv), to be run. */
static bool run_part(struct store *s, struct rclient *c, const char *m, size_t n)
{
        uint32_t used = (uint32_t)n;
        uint8_t flags = R_ACK;
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
                        char *b = zrealloc(c->big_scratch, cmd.scratch_len);
                        if (!b)
                                goto out;
                        c->big_scratch = b;
                        cmd.scratch = b;
                        cmd.scratch_cap = cmd.scratch_len;
                }
        }
        if (r >= 0) {
                used = (uint32_t)(n - (c->big.len - (size_t)r));
                c->big_argc = cmd.argc;
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
                big_free(c);
        }
        s->ack[0] = (char)flags;
        memcpy(s->ack + 1, &used, 4);
        return r >= 0;
}

/* Handles one message; returns the client to send to, or NULL. */
static struct rclient *handle(struct store *s, uint64_t from, ssize_t n)
{
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
                s->cur = c;
                s->part = false;
                s->bat = m + 2;
                s->bat_end = m + n;
                s->bat_last = m[1] & MSG_END;
                return store_step(s);
        case 'P':
                s->db.st.net_in += (uint64_t)n;
                if (!run_part(s, c, m + 1, (size_t)n - 1))
                        return c;
                s->cur = c;
                s->part = true;
                return store_step(s);
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
                if (!rdb_busy(&self->s->db)) { /* else a paused command owns the keyspace */
                        rdb_active_expire(&self->s->db, 5000);
                        rdb_lazyfree(&self->s->db, self->s->db.cfg.slice_us);
                }
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
                int r;
                int err;
        } * self;
        vk_begin();
        self->s = store_new(self->conf);
        if (!self->s)
                vk_raise(ENOMEM, "no memory for the redis store");
        if (self->conf->db.appendonly) {
                /* A slice at a time: a large file must not look like a runaway
                 * loop to the kernel's CPU budget. */
                self->r = aof_open(self->s);
                while (!self->r && (self->r = aof_replay(self->s)) > 0) {
                        vk_sleep(0);
                        self->r = 0;
                }
                if (self->r < 0)
                        vk_raise(EIO, "cannot load the append-only file");
        }
        self->cron = vk_spawn(store_cron, &self->s, sizeof self->s);
        if (!self->cron)
                vk_raise(ENOMEM, "no memory for the store's timer");
        vk_play(self->cron);
        for (;;) {
                /* Large values wait to be freed: a slice at a time while no
                 * mail waits (the timer frees some in any case). */
                while (self->s->db.garbage && !vk_has_message(that)) {
                        rdb_lazyfree(&self->s->db, self->s->db.cfg.slice_us);
                        vk_sleep(0);
                }
                vk_catch(self->err, vk_receive(self->n, self->from, self->s->rx, self->s->rxcap));
                if (self->err == ESRCH) { /* a reply to a connection that is gone */
                        client_drop(self->s, self->from);
                        continue;
                }
                if (self->err)
                        vk_raise(self->err, "the redis store cannot receive");
                self->c = handle(self->s, self->from, self->n);
                /* A long command runs a slice per dispatch, so that none nears
                 * the kernel's CPU budget and the worker's other processes run
                 * in between. vk_sleep(0), not vk_yield(): a yielding process
                 * keeps its dispatch for up to 64 resumptions. */
                while (rdb_busy(&self->s->db)) {
                        vk_sleep(0);
                        self->c = store_step(self->s);
                }
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
                replay_free(self->s);
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
#define conn_replies()                                                                       \
        do {                                                                                 \
                vk_receive(self->n, self->store, self->buf, self->max + REDIS_MSG_OVERHEAD); \
                if (self->n < 1)                                                             \
                        vk_raise(EPIPE, "the redis store is gone");                          \
                self->flags = (uint8_t)self->buf[0];                                         \
                if (self->n > 1)                                                             \
                        vk_write(self->buf + 1, (size_t)self->n - 1);                        \
                if (self->flags & R_MORE) {                                                  \
                        self->buf[0] = 'N';                                                  \
                        vk_send(self->store, self->buf, 1);                                  \
                }                                                                            \
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

/*
 * Log lines for the supervisor and its workers (see log.h). Formatting happens in a stack
 * buffer and leaves in one write(2): stderr is shared by every process of the daemon, and
 * journald splits on newlines, so a line must never be torn or merged with another.
 */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static int log_level = LOG_PRI_INFO;
static log_tap_fn *log_tap;
static void *log_tap_ctx;

void log_set_tap(log_tap_fn *fn, void *ctx)
{
        log_tap = fn;
        log_tap_ctx = ctx;
}

void log_set_level(int level)
{
        log_level = level < 0 ? 0 : level > 7 ? 7 : level;
}

/* True when stderr is the journal ($JOURNAL_STREAM names its device and inode, as systemd
 * recommends checking): journald adds "vkd[pid]:" itself and reads the "<N>" priority prefix.
 * Anywhere else (a terminal, a container engine's pipe, a file) "<N>" is noise that no one
 * parses, so the line is plain. */
static bool log_to_journal(void)
{
        static int known = -1;
        if (known < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                known = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 &&
                        fstat(STDERR_FILENO, &st) == 0 && st.st_dev == (dev_t)dev &&
                        st.st_ino == (ino_t)ino;
        }
        return known;
}

void log_vmsg(int prio, const char *service, const char *fmt, va_list ap)
{
        char line[LOG_LINE_MAX];
        int saved = errno;
        int n, m;

        if (log_tap && prio <= LOG_PRI_ERR) {
                va_list aq;
                int k = service ? snprintf(line, sizeof(line), "%s: ", service) : 0;

                if (k < 0 || (size_t)k >= sizeof(line))
                        k = 0;
                va_copy(aq, ap);
                vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, aq);
                va_end(aq);
                log_tap(log_tap_ctx, prio, line);
        }
        if (prio > log_level)
                return;
        if (log_to_journal())
                n = service ? snprintf(line, sizeof(line), "<%d>%s: ", prio, service)
                            : snprintf(line, sizeof(line), "<%d>", prio);
        else if (service)
                n = snprintf(line, sizeof(line), "vkd[%ld]: %s: ", (long)getpid(), service);
        else
                n = snprintf(line, sizeof(line), "vkd[%ld]: ", (long)getpid());
        if (n < 0 || (size_t)n >= sizeof(line))
                n = 0;
        m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
        if (m < 0)
                m = 0;
        n += m;
        if ((size_t)n > sizeof(line) - 2)
                n = sizeof(line) - 2; /* truncated: keep room for the newline */
        for (int i = 0; i < n; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        line[n++] = '\n';
        for (const char *p = line; n > 0;) {
                ssize_t w = write(STDERR_FILENO, p, (size_t)n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break;
                p += w;
                n -= (int)w;
        }
        errno = saved;
}

void log_msg(int prio, const char *service, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        log_vmsg(prio, service, fmt, ap);
        va_end(ap);
}

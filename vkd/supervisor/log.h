/*
 * The daemon's log: one line per event on stderr. When stderr is the journal ($JOURNAL_STREAM
 * matches it) a line is "<N>service: message", where <N> is the sd-daemon priority prefix (0
 * emerg .. 7 debug) that journald turns into the priority; anywhere else (a terminal, a
 * container engine, a file) it is the plain "vkd[pid]: service: message". Lines below the
 * LogLevel= are dropped. Each line is one write(2), so the supervisor and its workers, which
 * share stderr, never interleave within a line.
 */
#ifndef VKD_SUPERVISOR_LOG_H
#define VKD_SUPERVISOR_LOG_H

#include <stdarg.h>

enum {
        LOG_PRI_ERR = 3,
        LOG_PRI_WARNING = 4,
        LOG_PRI_NOTICE = 5,
        LOG_PRI_INFO = 6,
        LOG_PRI_DEBUG = 7,
};

/* Sets the lowest priority that is written (0..7; values outside are clamped). */
void log_set_level(int level);

/* Writes one line. service may be NULL for daemon-wide events. Newlines in the message become
 * spaces, so an event is always one line. Keeps errno. */
void log_msg(int prio, const char *service, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void log_vmsg(int prio, const char *service, const char *fmt, va_list ap);

/*
 * A tap sees every line of priority err or worse that is logged while it is set, whatever the
 * LogLevel=, as "service: message" or "message" (for a reload to report its errors to the
 * client that asked for it). NULL removes it. A forked child must remove it.
 */
typedef void log_tap_fn(void *ctx, int prio, const char *line);
void log_set_tap(log_tap_fn *fn, void *ctx);

#define log_err(svc, ...) log_msg(LOG_PRI_ERR, (svc), __VA_ARGS__)
#define log_warning(svc, ...) log_msg(LOG_PRI_WARNING, (svc), __VA_ARGS__)
#define log_notice(svc, ...) log_msg(LOG_PRI_NOTICE, (svc), __VA_ARGS__)
#define log_info(svc, ...) log_msg(LOG_PRI_INFO, (svc), __VA_ARGS__)
#define log_debug(svc, ...) log_msg(LOG_PRI_DEBUG, (svc), __VA_ARGS__)

#endif

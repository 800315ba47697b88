/* log.h — leveled logging and the access log, to stderr.
 *
 * One line per call, written with a single write(2) so lines from different threads
 * never interleave. Lines start with an ISO-8601 UTC time and the level. The access log
 * has one line per HTTP request; it never prints headers (so never Authorization), and
 * paths are escaped so a client cannot forge log lines. Any thread.
 */
#ifndef XD_SERVER_LOG_H
#define XD_SERVER_LOG_H

enum { XD_LOG_DEBUG = 0, XD_LOG_INFO = 1, XD_LOG_WARN = 2, XD_LOG_ERROR = 3 };

/* Messages below level are dropped. Call before threads start (plain store). */
void xd_log_set_level(int level);
int xd_log_enabled(int level);
/* "debug" | "info" | "warn" | "error" -> level, or -1. */
int xd_log_level_parse(const char *s);
const char *xd_log_level_name(int level);

void xd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The access log line (info level):
 *   <time> access rid=<id> method=<M> path=<P> model=<name|-> status=<N> ms=<duration>
 * model may be NULL or "". */
void xd_log_access(const char *rid, const char *method, const char *path, const char *model, int status,
                   double ms);

#endif

/* log.c — see log.h. Formats into a stack buffer and writes it in one call. */
#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_level = XD_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void xd_log_set_level(int level) { log_level = level; }
int xd_log_enabled(int level) { return level >= log_level; }

int xd_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

const char *xd_log_level_name(int level) {
  return level >= 0 && level < 4 ? level_names[level] : "?";
}

/* "2026-11-29T07:42:30.123Z" into buf (at least 32 bytes); returns its length. */
static size_t format_time(char *buf, size_t cap) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
  return n;
}

/* Writes the whole line; a short write to stderr is retried, an error is dropped
 * (there is nowhere left to report it). */
static void emit(const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, buf, n);
    if (w <= 0) return;
    buf += w;
    n -= (size_t)w;
  }
}

/* Copies s into out (cap bytes, NUL-terminated) with control characters, spaces, quotes
 * and non-ASCII bytes as \xNN, so one request is always exactly one log line. */
static const char *escape(char *out, size_t cap, const char *s) {
  size_t pos = 0;
  for (size_t i = 0; s && s[i] && pos + 5 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      snprintf(out + pos, cap - pos, "\\x%02x", c);
      pos += 4;
    } else {
      out[pos++] = (char)c;
    }
  }
  out[pos] = '\0';
  return out;
}

void xd_log(int level, const char *fmt, ...) {
  if (!xd_log_enabled(level)) return;
  char buf[2048];
  size_t n = format_time(buf, sizeof buf);
  n += (size_t)snprintf(buf + n, sizeof buf - n, " %-5s ", xd_log_level_name(level));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof buf - n, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += (size_t)m;
  if (n > sizeof buf - 2) n = sizeof buf - 2; /* truncated: keep room for the newline */
  buf[n++] = '\n';
  emit(buf, n);
}

void xd_log_access(const char *rid, const char *method, const char *path, const char *model, int status,
                   double ms) {
  if (!xd_log_enabled(XD_LOG_INFO)) return;
  char t[40], r[72], m[40], p[520], mo[72], buf[1024];
  format_time(t, sizeof t);
  int n = snprintf(buf, sizeof buf, "%s access rid=%s method=%s path=%s model=%s status=%d ms=%.3f\n", t,
                   escape(r, sizeof r, rid), escape(m, sizeof m, method), escape(p, sizeof p, path),
                   escape(mo, sizeof mo, model && *model ? model : "-"), status, ms);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) { /* cannot happen with the bounds above; keep the newline anyway */
    n = sizeof buf - 1;
    buf[n - 1] = '\n';
  }
  emit(buf, (size_t)n);
}

/* status.c — status names, error filling, cancellation checks. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *xd_strerror(int code) {
  switch (code) {
#define XD_STATUS_CASE(name, value, text) \
  case name:                              \
    return text;
    XD_STATUS_LIST(XD_STATUS_CASE)
#undef XD_STATUS_CASE
  }
  return "unknown error";
}

void xd_error_clear(xd_error_t *err) {
  if (!err) return;
  err->code = XD_OK;
  err->field[0] = '\0';
  err->text[0] = '\0';
}

int xd_error_set(xd_error_t *err, int code, const char *field, const char *fmt, ...) {
  if (!err) return code;
  err->code = code;
  snprintf(err->field, sizeof err->field, "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof err->text, fmt, ap);
  va_end(ap);
  return code;
}

void xd_error_prefix_field(xd_error_t *err, const char *prefix) {
  if (!err || !prefix || !*prefix) return;
  char buf[2 * XD_ERROR_FIELD_MAX + 2];
  const char *sep = (err->field[0] == '\0' || err->field[0] == '[') ? "" : ".";
  snprintf(buf, sizeof buf, "%s%s%s", prefix, sep, err->field);
  /* An absurdly deep path is truncated, keeping its start. */
  size_t n = strlen(buf);
  if (n >= sizeof err->field) n = sizeof err->field - 1;
  memcpy(err->field, buf, n);
  err->field[n] = '\0';
}

int64_t xd_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int xd_cancel_check(const xd_cancel_t *c) {
  if (!c) return XD_OK;
  if (c->flag && atomic_load_explicit(c->flag, memory_order_relaxed)) return XD_ECANCELED;
  if (c->deadline_ns && xd_now_ns() > c->deadline_ns) return XD_ETIMEDOUT;
  return XD_OK;
}

/* json_guard.c — see json_guard.h. */
#include "api/json_guard.h"

/* Per-value heap cost in bytes (jansson 2.14 on glibc, including the parent's slot and
 * malloc's overhead; rounded up). A string's text adds its length. */
enum { COST_OBJECT = 240, COST_ARRAY = 144, COST_NUMBER = 48, COST_STRING = 96, COST_LITERAL = 16 };

size_t xd_json_guard_estimate(const char *buf, size_t len, size_t stop_at) {
  size_t est = 0;
  size_t i = 0;
  while (i < len) {
    unsigned char c = (unsigned char)buf[i];
    if (c == '"') { /* a string (or an object's key): skip to its closing quote */
      size_t start = ++i;
      while (i < len && buf[i] != '"') i += buf[i] == '\\' ? 2 : 1;
      est += COST_STRING + (i < len ? i - start : len - start);
      i++;
    } else if (c == '{') {
      est += COST_OBJECT;
      i++;
    } else if (c == '[') {
      est += COST_ARRAY;
      i++;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      est += COST_NUMBER;
      while (i < len && ((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '-' || buf[i] == '+' || buf[i] == '.' ||
                         buf[i] == 'e' || buf[i] == 'E'))
        i++;
    } else if (c == 't' || c == 'f' || c == 'n') {
      est += COST_LITERAL;
      while (i < len && buf[i] >= 'a' && buf[i] <= 'z') i++;
    } else {
      i++;
    }
    if (est > stop_at) break;
  }
  return est;
}

int xd_json_guard(const char *buf, size_t len, xd_error_t *err) {
  size_t limit = len > XD_JSON_GUARD_FLOOR / XD_JSON_GUARD_RATIO ? len * XD_JSON_GUARD_RATIO : XD_JSON_GUARD_FLOOR;
  size_t est = xd_json_guard_estimate(buf, len, limit);
  if (est <= limit) return XD_OK;
  return xd_error_set(err, XD_ETOOBIG, NULL,
                      "the JSON body (%zu bytes) has too many small values: decoding it would take over %zu bytes "
                      "(more than %d times its size); send fewer, larger values",
                      len, limit, XD_JSON_GUARD_RATIO);
}

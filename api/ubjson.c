/* ubjson.c — bounded UBJSON -> jansson, and the NaN-literal cleaner (see ubjson.h). */
#include "api/ubjson.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

typedef struct rd {
  const unsigned char *p;
  size_t len, pos;
  xd_error_t *err;
} rd_t;

static int fail(rd_t *r, const char *what) {
  return xd_error_set(r->err, XD_EFORMAT, "", "invalid UBJSON at byte %zu: %s", r->pos, what);
}

static int need(rd_t *r, size_t n) { return r->len - r->pos >= n ? XD_OK : fail(r, "truncated"); }

static int byte(rd_t *r, unsigned char *c) {
  if (need(r, 1) != XD_OK) return XD_EFORMAT;
  *c = r->p[r->pos++];
  return XD_OK;
}

/* Big-endian unsigned of n bytes. */
static uint64_t be(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* An integer of marker type t. */
static int read_int(rd_t *r, unsigned char t, int64_t *v) {
  size_t n = t == 'i' || t == 'U' ? 1 : t == 'I' ? 2 : t == 'l' ? 4 : t == 'L' ? 8 : 0;
  if (!n) return fail(r, "expected an integer marker");
  if (need(r, n) != XD_OK) return XD_EFORMAT;
  uint64_t u = be(r->p + r->pos, n);
  r->pos += n;
  if (t == 'U')
    *v = (int64_t)u;
  else if (n == 1)
    *v = (int8_t)u;
  else if (n == 2)
    *v = (int16_t)u;
  else if (n == 4)
    *v = (int32_t)u;
  else
    *v = (int64_t)u;
  return XD_OK;
}

/* A length: an integer with its own marker, >= 0 and at most the bytes left. */
static int read_len(rd_t *r, size_t *n) {
  unsigned char t;
  int64_t v;
  if (byte(r, &t) != XD_OK || read_int(r, t, &v) != XD_OK) return XD_EFORMAT;
  if (v < 0) return fail(r, "negative length");
  *n = (size_t)v;
  return XD_OK;
}

static int value(rd_t *r, unsigned char t, int depth, json_t **out);

static json_t *real_or_null(double x) { return isfinite(x) ? json_real(x) : json_null(); }

/* Containers: [ or { already read. Optional $type then #count, else items until ] / }. */
static int container(rd_t *r, int is_obj, int depth, json_t **out) {
  if (depth >= XD_UBJ_MAX_DEPTH) return fail(r, "nested too deeply");
  unsigned char type = 0;
  size_t count = SIZE_MAX;
  if (r->pos < r->len && r->p[r->pos] == '$') {
    r->pos++;
    if (byte(r, &type) != XD_OK) return XD_EFORMAT;
    if (r->pos >= r->len || r->p[r->pos] != '#') return fail(r, "a typed container needs a count");
  }
  if (r->pos < r->len && r->p[r->pos] == '#') {
    r->pos++;
    if (read_len(r, &count) != XD_OK) return XD_EFORMAT;
    int empty = type == 'Z' || type == 'T' || type == 'F' || type == 'N';
    if (empty ? count > XD_UBJ_MAX_EMPTY : count > r->len - r->pos) return fail(r, "count larger than the data");
  }
  json_t *c = is_obj ? json_object() : json_array();
  if (!c) return xd_error_set(r->err, XD_ENOMEM, "", "out of memory");
  int rc = XD_OK;
  for (size_t i = 0; i < count; i++) {
    if (count == SIZE_MAX) {
      if (r->pos >= r->len) {
        rc = fail(r, "unterminated container");
        break;
      }
      if (r->p[r->pos] == (is_obj ? '}' : ']')) {
        r->pos++;
        break;
      }
      if (r->p[r->pos] == 'N') { /* no-op */
        r->pos++;
        continue;
      }
    }
    char *key = NULL;
    if (is_obj) {
      size_t kl;
      if ((rc = read_len(r, &kl)) != XD_OK) break;
      if ((rc = need(r, kl)) != XD_OK) break;
      if (!(key = xd_strndup((const char *)r->p + r->pos, kl))) {
        rc = xd_error_set(r->err, XD_ENOMEM, "", "out of memory");
        break;
      }
      r->pos += kl;
    }
    unsigned char t = type;
    json_t *v = NULL;
    if (!t && (rc = byte(r, &t)) != XD_OK) {
      xd_free(key);
      break;
    }
    rc = value(r, t, depth + 1, &v);
    if (rc == XD_OK) {
      int bad = is_obj ? json_object_set_new(c, key, v) : json_array_append_new(c, v);
      if (bad) rc = xd_error_set(r->err, XD_ENOMEM, "", "out of memory");
    }
    xd_free(key);
    if (rc != XD_OK) break;
  }
  if (rc != XD_OK) {
    json_decref(c);
    return rc;
  }
  *out = c;
  return XD_OK;
}

static int value(rd_t *r, unsigned char t, int depth, json_t **out) {
  int64_t iv;
  size_t n;
  *out = NULL;
  switch (t) {
    case 'Z':
      *out = json_null();
      break;
    case 'T':
      *out = json_true();
      break;
    case 'F':
      *out = json_false();
      break;
    case 'i':
    case 'U':
    case 'I':
    case 'l':
    case 'L':
      if (read_int(r, t, &iv) != XD_OK) return XD_EFORMAT;
      *out = json_integer((json_int_t)iv);
      break;
    case 'd': {
      if (need(r, 4) != XD_OK) return XD_EFORMAT;
      uint32_t u = (uint32_t)be(r->p + r->pos, 4);
      float f;
      memcpy(&f, &u, 4);
      r->pos += 4;
      *out = real_or_null((double)f);
      break;
    }
    case 'D': {
      if (need(r, 8) != XD_OK) return XD_EFORMAT;
      uint64_t u = be(r->p + r->pos, 8);
      double x;
      memcpy(&x, &u, 8);
      r->pos += 8;
      *out = real_or_null(x);
      break;
    }
    case 'C': {
      unsigned char c;
      if (byte(r, &c) != XD_OK) return XD_EFORMAT;
      char s[2] = {(char)c, 0};
      *out = json_stringn(s, 1);
      if (!*out) return fail(r, "invalid char");
      break;
    }
    case 'S':
    case 'H': {
      if (read_len(r, &n) != XD_OK || need(r, n) != XD_OK) return XD_EFORMAT;
      const char *s = (const char *)r->p + r->pos;
      r->pos += n;
      if (t == 'H') {
        char buf[64];
        if (n == 0 || n >= sizeof buf) return fail(r, "invalid high-precision number");
        memcpy(buf, s, n);
        buf[n] = 0;
        char *end;
        double x = strtod(buf, &end);
        if (*end) return fail(r, "invalid high-precision number");
        *out = real_or_null(x);
      } else {
        *out = json_stringn(s, n);
        if (!*out) return fail(r, "string is not valid UTF-8");
      }
      break;
    }
    case '[':
      return container(r, 0, depth, out);
    case '{':
      return container(r, 1, depth, out);
    default:
      r->pos--;
      return fail(r, "unknown marker");
  }
  if (!*out) return xd_error_set(r->err, XD_ENOMEM, "", "out of memory");
  return XD_OK;
}

int xd_ubjson_sniff(const void *data, size_t len) {
  const unsigned char *p = data;
  return len >= 2 && p[0] == '{' && strchr("iUIlL$#}", p[1]) != NULL && p[1] != 0;
}

int xd_ubjson_decode(const void *data, size_t len, json_t **out, xd_error_t *err) {
  rd_t r = {data, len, 0, err};
  unsigned char t;
  *out = NULL;
  if (byte(&r, &t) != XD_OK) return XD_EFORMAT;
  int rc = value(&r, t, 0, out);
  if (rc == XD_OK && r.pos != len) {
    json_decref(*out);
    *out = NULL;
    return fail(&r, "trailing bytes after the value");
  }
  return rc;
}

int xd_json_clean_nonfinite(const char *src, size_t len, char **out, size_t *out_len) {
  /* "null" is no longer than any literal it replaces ("NaN" is 3: pad with a space) */
  char *d = xd_malloc(len + len / 3 + 2);
  if (!d) return XD_ENOMEM;
  size_t o = 0;
  int in_str = 0;
  for (size_t i = 0; i < len;) {
    char c = src[i];
    if (in_str) {
      d[o++] = c;
      i++;
      if (c == '\\' && i < len)
        d[o++] = src[i++];
      else if (c == '"')
        in_str = 0;
      continue;
    }
    if (c == '"') in_str = 1;
    size_t k = 0;
    if (len - i >= 3 && memcmp(src + i, "NaN", 3) == 0)
      k = 3;
    else if (len - i >= 8 && memcmp(src + i, "Infinity", 8) == 0)
      k = 8;
    else if (len - i >= 9 && memcmp(src + i, "-Infinity", 9) == 0)
      k = 9;
    if (k) {
      memcpy(d + o, "null", 4);
      o += 4;
      i += k;
      continue;
    }
    d[o++] = c;
    i++;
  }
  d[o] = 0;
  *out = d;
  *out_len = o;
  return XD_OK;
}

/* jsonout.c — compact JSON text with shortest round-trip reals (jsonout.h). */
#include "api/jsonout.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/alloc.h"
#include "api/numbody.h"
#include "core/alloc.h"

#define MAX_DEPTH 2048

/* Writes sign, digits d[0..n) (no trailing zeros, n >= 1) and decimal exponent e (the
 * value is 0.d * 10^(e+1), i.e. d[0] is the 10^e digit) as printf's "%.{p}g" does. */
static int format_g(char *buf, int neg, const char *d, int n, int e, int p) {
  char *o = buf;
  if (neg) *o++ = '-';
  if (e < -4 || e >= p) { /* d.ddde[+-]XX */
    *o++ = d[0];
    if (n > 1) {
      *o++ = '.';
      memcpy(o, d + 1, (size_t)n - 1);
      o += n - 1;
    }
    int ae = e < 0 ? -e : e; /* "e%c%02d" by hand: snprintf per small number shows in profiles */
    *o++ = 'e';
    *o++ = e < 0 ? '-' : '+';
    if (ae >= 100) *o++ = (char)('0' + ae / 100);
    *o++ = (char)('0' + ae / 10 % 10);
    *o++ = (char)('0' + ae % 10);
  } else if (e < 0) { /* 0.000ddd */
    *o++ = '0';
    *o++ = '.';
    for (int i = 0; i < -e - 1; i++) *o++ = '0';
    memcpy(o, d, (size_t)n);
    o += n;
  } else { /* ddd[.ddd] */
    for (int i = 0; i <= e; i++) *o++ = i < n ? d[i] : '0';
    if (n > e + 1) {
      *o++ = '.';
      memcpy(o, d + e + 1, (size_t)(n - e - 1));
      o += n - e - 1;
    }
  }
  *o = '\0';
  return (int)(o - buf);
}

/* The 17 significant digits of |x| correctly rounded (as printf's "%.16e" gives them) and
 * its decimal exponent, without printf where that is safe: |x|·10^k with 10^k exact in the
 * x87's 64-bit significand (k up to 27) is one rounding away from the true product, within
 * 0.006 of it at 17 digits, so rounding it to an integer is right unless its fraction lies
 * that close to one half; then (and for |x| outside 1e-11..1e43, and where long double is
 * no wider than double) the caller asks printf. printf costs ~0.3 µs a number, most of
 * the time spent writing an image's attributions. Returns 0 when it cannot tell. */
static int digits17(double x, char d17[17], int *e10) {
#if LDBL_MANT_DIG >= 64
  static const long double p10[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
                                      1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L,
                                      1e20L, 1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
  double ax = fabs(x);
  if (!(ax >= 1e-11 && ax < 1e43)) return 0; /* 0, NaN, and out of the exact range */
  int be;
  frexp(ax, &be);                           /* ax in [2^(be-1), 2^be) */
  int e = (int)floor((be - 1) * 0.30102999566398120); /* floor(log10 ax), or one less */
  for (int pass = 0; pass < 2; pass++) {
    int k = 16 - e;
    if (k > 27 || k < -27) return 0;
    long double y = k >= 0 ? (long double)ax * p10[k] : (long double)ax / p10[-k];
    if (y >= 1e17L) { /* e was one short */
      e++;
      continue;
    }
    long double f = floorl(y), frac = y - f;
    if (frac > 0.494L && frac < 0.506L) return 0; /* too close to a tie to tell */
    uint64_t u = (uint64_t)f + (frac > 0.5L);
    if (u >= 100000000000000000ULL) { /* rounded up to 10^17 */
      u /= 10;
      e++;
    }
    if (u < 10000000000000000ULL) return 0; /* cannot happen for ax >= 10^e */
    for (int i = 16; i >= 0; i--, u /= 10) d17[i] = (char)('0' + u % 10);
    *e10 = e;
    return 1;
  }
  return 0;
#else
  (void)x, (void)d17, (void)e10;
  return 0;
#endif
}

size_t xd_json_format_real(double x, char buf[32]) {
  /* One printf of the 17 significant digits (always enough to read back x), then the 15-
   * and 16-digit roundings of those digits, each kept only when strtod reads it back as
   * x: the same text as "%.15g", "%.16g", "%.17g" tried in turn, with printf (the
   * expensive part) called once instead of up to three times. Where the digit after the
   * cut is a 5 the printed digits cannot tell which way the value rounds, so printf
   * rounds it. */
  char d17[17];
  int neg = signbit(x) != 0, e;
  if (!digits17(x, d17, &e)) {
    char sci[40];
    snprintf(sci, sizeof sci, "%.16e", x); /* [-]d.dddddddddddddddde[+-]XX */
    const char *p = sci + neg;
    d17[0] = p[0];
    memcpy(d17 + 1, p + 2, 16);
    e = atoi(p + 19);
  }
  int len = 0;
  for (int prec = 15; prec <= 17; prec++) {
    char d[18];
    int ee = e, n = prec;
    memcpy(d, d17, (size_t)prec);
    if (prec < 17 && d17[prec] == '5') {
      /* A tie in the printed digits may not be one in the binary value: let printf round
       * the value itself (the digits past the 17th decide). */
      len = snprintf(buf, 32, prec == 15 ? "%.15g" : "%.16g", x);
      if (strtod(buf, NULL) == x) break;
      continue;
    }
    if (prec < 17 && d17[prec] > '5') { /* round up on the decimal digits */
      int i = prec - 1;
      while (i >= 0 && d[i] == '9') d[i--] = '0';
      if (i >= 0) d[i]++;
      else { /* 99..9 -> 100..0 */
        d[0] = '1';
        ee++;
      }
    }
    while (n > 1 && d[n - 1] == '0') n--;
    len = format_g(buf, neg, d, n, ee, prec);
    if (prec == 17) break;
    /* reads back as x? one exact IEEE operation when it can be (api/numbody.h) */
    uint64_t m = 0;
    for (int i = 0; i < n; i++) m = m * 10 + (uint64_t)(d[i] - '0');
    double back;
    if (xd_decimal_exact(m, ee - (n - 1), &back) ? (neg ? -back : back) == x : strtod(buf, NULL) == x) break;
  }
  /* As jansson's jsonp_dtostr: reads as a real, not an integer ("1.0", "-0.0")... */
  if (!strchr(buf, '.') && !strchr(buf, 'e')) {
    memcpy(buf + len, ".0", 3);
    len += 2;
  }
  /* ...and the exponent without '+' or leading zeros: "1e+20" -> "1e20", "1e-05" -> "1e-5" */
  char *start = strchr(buf, 'e');
  if (start) {
    start++;
    char *end = start + 1;
    if (*start == '-') start++;
    while (*end == '0') end++;
    if (end != start) {
      memmove(start, end, (size_t)len + 1 - (size_t)(end - buf));
      len -= (int)(end - start);
    }
  }
  return (size_t)len;
}

typedef struct out {
  char *p;
  size_t n, cap;
  int oom;
  const xd_cancel_t *cancel; /* checked every PRINT_CHECK_EVERY numbers */
  size_t numbers;
  int rc; /* cancel's status once it fired */
} out_t;

#define PRINT_CHECK_EVERY 4096

/* 0, or -1 with o->rc set when cancel fired. */
static int count_number(out_t *o) {
  if (!o->cancel || ++o->numbers % PRINT_CHECK_EVERY) return 0;
  o->rc = xd_cancel_check(o->cancel);
  return o->rc == XD_OK ? 0 : -1;
}

static void put(out_t *o, const char *s, size_t n) {
  if (o->oom) return;
  if (o->n + n + 1 > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->n + n + 1) cap *= 2;
    char *q = xd_malloc(cap);
    if (!q) {
      o->oom = 1;
      xd_json_oom_note(); /* the answer is then a 500, as for jansson's own failures */
      return;
    }
    if (o->n) memcpy(q, o->p, o->n);
    xd_free(o->p);
    o->p = q;
    o->cap = cap;
  }
  memcpy(o->p + o->n, s, n);
  o->n += n;
}

/* jansson's escapes (dump.c, without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH). */
static void put_string(out_t *o, const char *s, size_t n) {
  put(o, "\"", 1);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    put(o, s + run, i - run);
    run = i + 1;
    char esc[8];
    switch (c) {
    case '"': put(o, "\\\"", 2); break;
    case '\\': put(o, "\\\\", 2); break;
    case '\b': put(o, "\\b", 2); break;
    case '\f': put(o, "\\f", 2); break;
    case '\n': put(o, "\\n", 2); break;
    case '\r': put(o, "\\r", 2); break;
    case '\t': put(o, "\\t", 2); break;
    default:
      snprintf(esc, sizeof esc, "\\u%04X", c);
      put(o, esc, 6);
    }
  }
  put(o, s + run, n - run);
  put(o, "\"", 1);
}

static int dump(out_t *o, const json_t *v, int depth) {
  char buf[40];
  if (depth > MAX_DEPTH) return -1;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    put(o, "{", 1);
    const char *k;
    json_t *x;
    int first = 1;
    json_object_foreach((json_t *)v, k, x) {
      if (!first) put(o, ",", 1);
      first = 0;
      put_string(o, k, strlen(k));
      put(o, ":", 1);
      if (dump(o, x, depth + 1) != 0) return -1;
    }
    put(o, "}", 1);
    break;
  }
  case JSON_ARRAY:
    put(o, "[", 1);
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i) put(o, ",", 1);
      if (dump(o, json_array_get(v, i), depth + 1) != 0) return -1;
    }
    put(o, "]", 1);
    break;
  case JSON_STRING: put_string(o, json_string_value(v), json_string_length(v)); break;
  case JSON_INTEGER:
    if (count_number(o)) return -1;
    put(o, buf, (size_t)snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v)));
    break;
  case JSON_REAL:
    if (count_number(o)) return -1;
    put(o, buf, xd_json_format_real(json_real_value(v), buf));
    break;
  case JSON_TRUE: put(o, "true", 4); break;
  case JSON_FALSE: put(o, "false", 5); break;
  case JSON_NULL: put(o, "null", 4); break;
  }
  return 0;
}

char *xd_json_print(const json_t *v) {
  int rc;
  return xd_json_print_cancel(v, NULL, &rc);
}

char *xd_json_print_cancel(const json_t *v, const xd_cancel_t *cancel, int *rc) {
  out_t o = {.cancel = cancel};
  *rc = XD_OK;
  if (!v || dump(&o, v, 0) != 0 || (put(&o, "", 0), o.oom)) {
    xd_free(o.p);
    *rc = o.rc != XD_OK ? o.rc : XD_ENOMEM;
    return NULL;
  }
  o.p[o.n] = '\0';
  return o.p;
}

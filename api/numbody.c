/* numbody.c — the strict-subset JSON reader of numbody.h. */
#include "api/numbody.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

int xd_decimal_exact(uint64_t m, int k, double *out) {
  static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  if (m >= (UINT64_C(1) << 53) || k < -22 || k > 22) return 0;
  *out = k < 0 ? (double)m / p10[-k] : (double)m * p10[k];
  return 1;
}

typedef struct cur {
  const char *p, *end;
} cur_t;

/* JSON whitespace, as jansson's lexer skips it. */
static void ws(cur_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* After a member or element: 1 at a ',' (another follows), 0 at close (the end), -1 else. */
static int after_item(cur_t *c, char close) {
  ws(c);
  if (c->p < c->end && (*c->p == ',' || *c->p == close)) return *c->p++ == ',';
  return -1;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* A string of printable ASCII without escapes: the only strings the fast path takes. */
static int string(cur_t *c, const char **s, size_t *n) {
  if (c->p >= c->end || *c->p != '"') return 0;
  const char *b = ++c->p;
  while (c->p < c->end && *c->p != '"') {
    unsigned char ch = (unsigned char)*c->p;
    if (ch < 0x20 || ch > 0x7e || ch == '\\') return 0;
    c->p++;
  }
  if (c->p >= c->end) return 0;
  *s = b;
  *n = (size_t)(c->p - b);
  c->p++;
  return 1;
}

/* One number by JSON's grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, read as
 * jansson reads it. Returns 0 for anything else, or a value jansson refuses. */
static int number(cur_t *c, double *x, int *is_int, int64_t *ival) {
  const char *b = c->p, *p = c->p;
  int real = 0;
  if (p < c->end && *p == '-') p++;
  if (p >= c->end || !is_digit(*p)) return 0;
  if (*p == '0') p++;
  else
    while (p < c->end && is_digit(*p)) p++;
  if (p < c->end && *p == '.') {
    real = 1;
    if (++p >= c->end || !is_digit(*p)) return 0;
    while (p < c->end && is_digit(*p)) p++;
  }
  if (p < c->end && (*p == 'e' || *p == 'E')) {
    real = 1;
    p++;
    if (p < c->end && (*p == '+' || *p == '-')) p++;
    if (p >= c->end || !is_digit(*p)) return 0;
    while (p < c->end && is_digit(*p)) p++;
  }
  size_t n = (size_t)(p - b);
  if (real) {
    /* Most literals are short decimals: few digits and a small exponent, exact in one
     * IEEE operation (xd_decimal_exact), which is what strtod returns for them. */
    const char *q = b;
    int neg = *q == '-', sig = 0, k = 0, ok = 1;
    uint64_t m = 0;
    q += neg;
    for (; q < p && is_digit(*q); q++)
      if (m || *q != '0') {
        if (++sig > 19) ok = 0;
        else m = m * 10 + (uint64_t)(*q - '0');
      }
    if (q < p && *q == '.')
      for (q++; q < p && is_digit(*q); q++, k--)
        if (m || *q != '0') {
          if (++sig > 19) ok = 0;
          else m = m * 10 + (uint64_t)(*q - '0');
        }
    if (q < p) { /* the exponent */
      int eneg = 0, e = 0, ed = 0;
      q++;
      if (*q == '-' || *q == '+') eneg = *q++ == '-';
      for (; q < p; q++)
        if (++ed > 4) ok = 0;
        else e = e * 10 + (*q - '0');
      k += eneg ? -e : e;
    }
    double v;
    if (ok && xd_decimal_exact(m, k, &v)) {
      *x = neg ? -v : v;
      *is_int = 0;
      c->p = p;
      return 1;
    }
  }
  char tok[64];
  if (n >= sizeof tok) return 0; /* long literals: jansson's reading */
  memcpy(tok, b, n);
  tok[n] = '\0';
  errno = 0;
  if (real) {
    double v = strtod(tok, NULL);
    if (isinf(v)) return 0; /* jansson: "real number overflow" */
    *x = v;
  } else {
    long long v = strtoll(tok, NULL, 10);
    if (errno == ERANGE) return 0; /* jansson: "too big integer" */
    *x = (double)v;                 /* jansson: json_number_value of an integer */
    if (ival) *ival = v;
  }
  *is_int = !real;
  c->p = p;
  return 1;
}

typedef struct rows {
  double *x;
  unsigned char *is_int;
  size_t n, cap;
} rows_t;

static int push(rows_t *r, double x, int is_int, size_t max) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    if (cap > max) cap = max;
    if (r->n == cap) return 0;
    double *nx = xd_malloc(cap * sizeof *nx);
    unsigned char *ni = xd_malloc(cap);
    if (!nx || !ni) {
      xd_free(nx);
      xd_free(ni);
      return 0;
    }
    if (r->n) {
      memcpy(nx, r->x, r->n * sizeof *nx);
      memcpy(ni, r->is_int, r->n);
    }
    xd_free(r->x);
    xd_free(r->is_int);
    r->x = nx;
    r->is_int = ni;
    r->cap = cap;
  }
  r->x[r->n] = x;
  r->is_int[r->n++] = (unsigned char)is_int;
  return 1;
}

/* [[n, n, ...], [n, ...], ...]: at least one row, every row as long as the first. */
static int rows(cur_t *c, xd_numbody_value_t *v, size_t max) {
  rows_t r = {0};
  size_t nrows = 0, row_len = 0;
  if (c->p >= c->end || *c->p != '[') return 0;
  c->p++;
  for (;;) {
    ws(c);
    if (c->p >= c->end || *c->p != '[') goto fail;
    c->p++;
    size_t k = 0;
    for (;;) {
      ws(c);
      double x;
      int is_int;
      if (!number(c, &x, &is_int, NULL) || !push(&r, x, is_int, max)) goto fail;
      k++;
      int more = after_item(c, ']');
      if (more < 0) goto fail;
      if (!more) break;
    }
    if (nrows == 0) row_len = k;
    else if (k != row_len) goto fail;
    nrows++;
    int more = after_item(c, ']');
    if (more < 0) goto fail;
    if (!more) break;
  }
  v->kind = XD_NB_ROWS;
  v->n_rows = nrows;
  v->row_len = row_len;
  v->x = r.x;
  v->is_int = r.is_int;
  return 1;
fail:
  xd_free(r.x);
  xd_free(r.is_int);
  return 0;
}

void xd_numbody_deinit(xd_numbody_t *nb) {
  for (int k = 0; k < XD_NUMBODY_MAX_KEYS; k++) {
    xd_free(nb->v[k].x);
    xd_free(nb->v[k].is_int);
  }
  memset(nb, 0, sizeof *nb);
}

int xd_numbody_parse(const char *buf, size_t len, const char *const *keys, size_t max_values, xd_numbody_t *out) {
  memset(out, 0, sizeof *out);
  if (!buf) return 0;
  cur_t c = {buf, buf + len};
  ws(&c);
  if (c.p >= c.end || *c.p != '{') return 0;
  c.p++;
  ws(&c);
  if (c.p < c.end && *c.p == '}') return 0; /* an empty body: nothing to do fast */
  for (;;) {
    const char *k;
    size_t kn;
    ws(&c);
    if (!string(&c, &k, &kn)) goto fail;
    int slot = -1;
    for (int i = 0; keys[i] && i < XD_NUMBODY_MAX_KEYS; i++)
      if (strlen(keys[i]) == kn && memcmp(keys[i], k, kn) == 0) slot = i;
    if (slot < 0 || out->v[slot].kind != XD_NB_ABSENT) goto fail; /* unknown or repeated key */
    ws(&c);
    if (c.p >= c.end || *c.p != ':') goto fail;
    c.p++;
    ws(&c);
    xd_numbody_value_t *v = &out->v[slot];
    if (c.p >= c.end) goto fail;
    if (*c.p == '"') {
      if (!string(&c, &v->str, &v->str_len)) goto fail;
      v->kind = XD_NB_STRING;
    } else if (*c.p == '[') {
      if (!rows(&c, v, max_values)) goto fail;
    } else {
      double x;
      int is_int;
      if (!number(&c, &x, &is_int, &v->integer) || !is_int) goto fail;
      v->kind = XD_NB_INTEGER;
    }
    int more = after_item(&c, '}');
    if (more < 0) goto fail;
    if (!more) break;
  }
  ws(&c);
  if (c.p != c.end) goto fail; /* trailing bytes: jansson's error */
  return 1;
fail:
  xd_numbody_deinit(out);
  return 0;
}

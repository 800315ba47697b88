/* gop.c — the operator table's lookup and the helpers every row shares (gop.h):
 * attribute access, numpy broadcasting and its reverse (summing a gradient back over
 * the broadcast axes). */
#include "core/gop.h"

#include "core/hotloop.h"

#include <stdio.h>
#include <string.h>

static const xd_gop_t *const tables[] = {xd_gop_light_rows, xd_gop_reduce_rows, xd_gop_shape_rows, xd_gop_index_rows,
                                          xd_gop_kern_rows};

const xd_gop_t *xd_gop_find(const char *op_type) {
  if (!op_type) return NULL;
  for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
    for (const xd_gop_t *r = tables[t]; r->name; r++)
      if (strcmp(r->name, op_type) == 0) return r;
  return NULL;
}

const char *xd_gop_names(void) {
  static _Thread_local char buf[1400];
  size_t o = 0;
  buf[0] = 0;
  for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
    for (const xd_gop_t *r = tables[t]; r->name && o + 40 < sizeof buf; r++)
      o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", o ? ", " : "", r->name);
  return buf;
}

/* ---- attributes ---------------------------------------------------------------------------- */

const xd_gattr_t *xd_gattr_find(const xd_gattrs_t *a, const char *name) {
  for (size_t i = 0; a && i < a->n; i++)
    if (strcmp(a->a[i].name, name) == 0) return &a->a[i];
  return NULL;
}

int64_t xd_gattr_int(const xd_gattrs_t *a, const char *name, int64_t def) {
  const xd_gattr_t *x = xd_gattr_find(a, name);
  return x && x->type == XD_GATTR_INT ? x->i : def;
}

double xd_gattr_float(const xd_gattrs_t *a, const char *name, double def) {
  const xd_gattr_t *x = xd_gattr_find(a, name);
  return x && x->type == XD_GATTR_FLOAT ? x->f : x && x->type == XD_GATTR_INT ? (double)x->i : def;
}

int xd_gattr_ints(const xd_gattrs_t *a, const char *name, int64_t *out, size_t max, size_t *n, xd_error_t *err) {
  const xd_gattr_t *x = xd_gattr_find(a, name);
  *n = 0;
  if (!x || x->type != XD_GATTR_INTS) return XD_OK;
  if (x->n > max) return xd_error_set(err, XD_EINVAL, name, "attribute %s has %zu values (at most %zu)", name, x->n, max);
  memcpy(out, x->ints, x->n * sizeof *out);
  *n = x->n;
  return XD_OK;
}

int xd_gattr_str_is(const xd_gattrs_t *a, const char *name, const char *s, int *present) {
  const xd_gattr_t *x = xd_gattr_find(a, name);
  int p = x && x->type == XD_GATTR_STRING;
  if (present) *present = p;
  return p && x->n == strlen(s) && memcmp(x->s, s, x->n) == 0;
}

/* ---- shapes ---------------------------------------------------------------------------------- */

int xd_gop_broadcast(const xd_tensor_t *a, const xd_tensor_t *b, xd_tensor_t *out, xd_error_t *err) {
  size_t r = a->rank > b->rank ? a->rank : b->rank;
  out->rank = r;
  for (size_t i = 0; i < r; i++) {
    int64_t da = i + a->rank >= r ? a->dims[i + a->rank - r] : 1;
    int64_t db = i + b->rank >= r ? b->dims[i + b->rank - r] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[96], sb[96];
      xd_tensor_shape_str(a, sa, sizeof sa);
      xd_tensor_shape_str(b, sb, sizeof sb);
      return xd_error_set(err, XD_EINVAL, NULL, "shapes %s and %s do not broadcast", sa, sb);
    }
    out->dims[i] = da == 1 ? db : da;
  }
  return XD_OK;
}

int xd_gop_axis(int64_t axis, size_t r, const char *what, size_t *out, xd_error_t *err) {
  int64_t a = axis < 0 ? axis + (int64_t)r : axis;
  if (a < 0 || a >= (int64_t)(r ? r : 1))
    return xd_error_set(err, XD_EINVAL, what, "%s %lld is out of range for a tensor of rank %zu", what,
                        (long long)axis, r);
  *out = (size_t)a;
  return XD_OK;
}

void xd_gop_same(const xd_tensor_t *in, xd_tensor_t *out, xd_dtype_t dt) {
  out->rank = in->rank;
  memcpy(out->dims, in->dims, sizeof out->dims);
  out->dtype = dt;
}

#define UNBROADCAST(T, NAME)                                                                                  \
  XD_HOT_LOOP static void NAME##_into(T *restrict acc, const T *restrict g, size_t n) {                     \
    for (size_t i = 0; i < n; i++) acc[i] += g[i];                                                          \
  }                                                                                                         \
  XD_HOT_LOOP static void NAME(const xd_tensor_t *full, const T *g, const xd_tensor_t *small, T *acc) {     \
    size_t n = xd_tensor_numel(full), r = full->rank, m = xd_tensor_numel(small);                           \
    if (m == n) { /* same element count: same layout (broadcasting only adds 1s) */                         \
      NAME##_into(acc, g, n);                                                                               \
      return;                                                                                               \
    }                                                                                                       \
    if (m == 1) {                                                                                           \
      double s = 0;                                                                                         \
      for (size_t i = 0; i < n; i++) s += g[i];                                                             \
      acc[0] += (T)s;                                                                                       \
      return;                                                                                               \
    }                                                                                                       \
    size_t st[XD_TENSOR_MAX_RANK], idx[XD_TENSOR_MAX_RANK] = {0};                                           \
    size_t s = 1;                                                                                           \
    for (size_t i = r; i-- > 0;) { /* small's stride in full's coordinates, 0 on broadcast axes */          \
      size_t si = i + small->rank >= r ? i + small->rank - r : (size_t)-1;                                  \
      int64_t d = si != (size_t)-1 ? small->dims[si] : 1;                                                   \
      st[i] = d == 1 ? 0 : s;                                                                               \
      s *= (size_t)d;                                                                                       \
    }                                                                                                       \
    size_t inner = r ? (size_t)full->dims[r - 1] : 1, outer = n / (inner ? inner : 1), o = 0;               \
    size_t si = r ? st[r - 1] : 0;                                                                          \
    for (size_t it = 0; it < outer; it++) {                                                                 \
      size_t base = 0;                                                                                      \
      for (size_t d = 0; d + 1 < r; d++) base += idx[d] * st[d];                                            \
      if (si == 0 && inner >= 16) { /* a sum along the row: 8 partial sums, vectorized */                   \
        T ps[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                                 \
        size_t i = 0;                                                                                       \
        for (; i + 8 <= inner; i += 8)                                                                      \
          for (size_t q = 0; q < 8; q++) ps[q] += g[o + i + q];                                             \
        T sum = ((ps[0] + ps[1]) + (ps[2] + ps[3])) + ((ps[4] + ps[5]) + (ps[6] + ps[7]));                  \
        for (; i < inner; i++) sum += g[o + i];                                                             \
        acc[base] += sum;                                                                                   \
        o += inner;                                                                                         \
      } else {                                                                                              \
        for (size_t i = 0; i < inner; i++) acc[base + i * si] += g[o++];                                    \
      }                                                                                                     \
      for (size_t d = r - 1; d-- > 0;) {                                                                    \
        if (++idx[d] < (size_t)full->dims[d]) break;                                                        \
        idx[d] = 0;                                                                                         \
      }                                                                                                     \
    }                                                                                                       \
  }
UNBROADCAST(float, unbroadcast_f)
UNBROADCAST(double, unbroadcast_d)

void xd_gop_unbroadcast_add(const xd_tensor_t *full, const void *g, const xd_tensor_t *small, void *acc) {
  if (full->dtype == XD_DT_F32) unbroadcast_f(full, g, small, acc);
  else unbroadcast_d(full, g, small, acc);
}

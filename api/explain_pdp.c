/* explain_pdp.c — POST /explain/pdp: partial dependence and ICE (scikit-learn
 * partial_dependence, method="brute"; core/pdp.h).
 *
 * The decoder validates every field, builds the grids (sorting the data column is cheap;
 * no model evaluation) so that a degenerate grid is a 400 before anything is queued, and
 * splits the grid points into parts for the worker pool. The response follows
 * scikit-learn's shapes: average (outputs, g0[, g1]) and individual (outputs, rows,
 * g0[, g1]). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/graph_rows.h"
#include "api/endpoints.h"
#include "api/importance.h"
#include "api/alloc.h"
#include "core/alloc.h"
#include "core/pdp.h"

/* ICE values one response may carry: beyond this the JSON alone would be hundreds of MB. */
#define XD_PDP_MAX_INDIVIDUAL 5000000ULL

enum { KIND_AVERAGE, KIND_INDIVIDUAL, KIND_BOTH };
static const char *const kind_names[] = {"average", "individual", "both", NULL};

typedef struct pdp_state {
  xd_model_entry_t *entry;
  const xd_model_t *m;
  int kind;
  xd_imp_data_t data;
  xd_pdp_t pdp;
} pdp_state_t;

static void pdp_free(void *state) {
  pdp_state_t *s = state;
  if (!s) return;
  xd_pdp_deinit(&s->pdp);
  xd_imp_data_deinit(&s->data);
  if (s->entry) xd_model_entry_release(s->entry);
  xd_free(s);
}

static int pdp_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  pdp_state_t *s = state;
  return xd_pdp_run(&s->pdp, part, cancel, err);
}

/* values (n_points) as g0 numbers, or g0 lists of g1 numbers for a pair. */
static json_t *grid_block(const xd_pdp_t *p, const double *values) {
  if (p->n_feat == 1) return xd_json_reals(values, p->n_points);
  return xd_json_matrix(values, p->n_grid[0], p->n_grid[1]);
}

/* The answer's members before the results, in the answer's order: model, features,
 * feature_indices, kind, grid_values, outputs (a request's answer and a shard's header). */
static int put_header(const pdp_state_t *s, json_t *body) {
  const xd_pdp_t *p = &s->pdp;
  const xd_feature_t *fs = xd_model_features(s->m);
  json_t *names = json_array(), *idx = json_array(), *grids = json_array(), *outs = json_array();
  int bad = !names || !idx || !grids || !outs;
  for (size_t f = 0; !bad && f < p->n_feat; f++) {
    size_t j = p->feat[f];
    bad |= json_array_append_new(names, json_string(fs[j].name));
    bad |= json_array_append_new(idx, json_integer((json_int_t)j));
    json_t *g = json_array();
    for (size_t q = 0; g && q < p->n_grid[f]; q++)
      bad |= json_array_append_new(g, xd_json_feature_value(s->m, j, p->grid[f][q]));
    bad |= json_array_append_new(grids, g); /* NULL g: -1 */
  }
  char *const *classes = xd_model_classes(s->m);
  for (size_t o = 0; !bad && o < p->n_out; o++)
    bad |= json_array_append_new(outs, classes ? json_string(classes[p->out_first + o]) : json_string("value"));
  bad |= json_object_set_new(body, "model", json_string(s->entry->name));
  bad |= json_object_set_new(body, "features", names); /* each set_new takes its value, NULL too */
  bad |= json_object_set_new(body, "feature_indices", idx);
  bad |= json_object_set_new(body, "kind", json_string(kind_names[s->kind]));
  bad |= json_object_set_new(body, "grid_values", grids);
  bad |= json_object_set_new(body, "outputs", outs);
  return bad ? XD_ENOMEM : XD_OK;
}

/* ICE values encoded between two checks of the deadline (a few ms of work). */
#define PDP_ENCODE_CHECK_EVERY 4096

static json_t *pdp_encode(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  pdp_state_t *s = state;
  const xd_pdp_t *p = &s->pdp;
  json_t *body = json_object();
  json_t *avg = NULL, *ind = NULL;
  if (!body || put_header(s, body) != XD_OK) goto nomem;
  int bad = 0;
  if (s->kind != KIND_INDIVIDUAL) {
    avg = json_array();
    if (!avg) goto nomem;
    for (size_t o = 0; o < p->n_out; o++)
      bad |= json_array_append_new(avg, grid_block(p, p->average + o * p->n_points));
  }
  if (s->kind != KIND_AVERAGE) {
    ind = json_array();
    if (!ind) goto nomem;
    for (size_t o = 0; o < p->n_out; o++) {
      json_t *rows = json_array();
      if (!rows) goto nomem;
      if (json_array_append_new(ind, rows)) goto nomem; /* owned by ind from here: freed with it */
      size_t since_check = 0;
      for (size_t i = 0; i < p->n; i++) {
        bad |= json_array_append_new(rows, grid_block(p, p->individual + (o * p->n + i) * p->n_points));
        if ((since_check += p->n_points) >= PDP_ENCODE_CHECK_EVERY) { /* ~90 MB of JSON at the bound */
          since_check = 0;
          int rc = xd_cancel_check(cancel);
          if (rc != XD_OK) {
            xd_error_set(err, rc, NULL, "the request %s while its answer was being built",
                         rc == XD_ETIMEDOUT ? "passed its deadline" : "was canceled");
            goto fail;
          }
        }
      }
    }
  }
  if (avg) bad |= json_object_set_new(body, "average", avg);
  if (ind) bad |= json_object_set_new(body, "individual", ind);
  avg = ind = NULL;
  bad |= json_object_set_new(body, "n_rows", json_integer((json_int_t)p->n));
  if (bad) goto nomem;
  return body;
nomem:
  xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
fail:
  json_decref(body);
  json_decref(avg);
  json_decref(ind);
  return NULL;
}

/* A JSON allocation failure while encoding turns the answer into a 500, a non-finite
 * result into a 400 (api/alloc.h). */
static json_t *pdp_encode_checked(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  unsigned long mark = xd_json_oom_mark(), nf = xd_json_nonfinite_mark();
  json_t *body = xd_json_oom_check(pdp_encode(state, cancel, err), mark, err);
  return xd_json_finite_check(body, nf, err);
}
/* encode (no deadline) for callers without one; the runners call encode_cancel. */
static json_t *pdp_encode_no_deadline(void *state, xd_error_t *err) { return pdp_encode_checked(state, NULL, err); }
static const xd_job_ops_t pdp_ops = {.endpoint = "explain_pdp",
                                     .run = pdp_run,
                                     .encode = pdp_encode_no_deadline,
                                     .encode_cancel = pdp_encode_checked,
                                     .free = pdp_free};

/* One feature reference: a name or an index. */
static int decode_feature(const xd_model_t *m, const json_t *v, const char *field, size_t *out, xd_error_t *err) {
  const size_t d = xd_model_n_features(m);
  if (json_is_integer(v)) {
    json_int_t j = json_integer_value(v);
    if (j < 0 || (size_t)j >= d)
      return xd_error_set(err, XD_EINVAL, field, "feature index %lld is out of range (%zu features)", (long long)j, d);
    *out = (size_t)j;
    return XD_OK;
  }
  if (json_is_string(v)) {
    const xd_feature_t *fs = xd_model_features(m);
    for (size_t j = 0; j < d; j++)
      if (strcmp(fs[j].name, json_string_value(v)) == 0) {
        *out = j;
        return XD_OK;
      }
    return xd_error_set(err, XD_EINVAL, field, "unknown feature '%.100s'", json_string_value(v));
  }
  return xd_error_set(err, XD_EINVAL, field, "must be a feature name or index");
}

/* "features": one feature, or a list of one or two distinct features. */
static int decode_features(const xd_model_t *m, const json_t *body, size_t *feats, size_t *n_feat, xd_error_t *err) {
  const json_t *v = json_object_get(body, "features");
  if (!v || json_is_null(v))
    return xd_error_set(err, XD_EINVAL, "features", "required: one feature or a pair, by name or index");
  if (!json_is_array(v)) {
    *n_feat = 1;
    return decode_feature(m, v, "features", &feats[0], err);
  }
  size_t k = json_array_size(v);
  if (k < 1 || k > 2) return xd_error_set(err, XD_EINVAL, "features", "must name one feature or a pair (got %zu)", k);
  char f[32];
  for (size_t i = 0; i < k; i++) {
    snprintf(f, sizeof f, "features[%zu]", i);
    int rc = decode_feature(m, json_array_get(v, i), f, &feats[i], err);
    if (rc != XD_OK) return rc;
  }
  if (k == 2 && feats[0] == feats[1])
    return xd_error_set(err, XD_EINVAL, "features[1]", "the pair must name two different features");
  *n_feat = k;
  return XD_OK;
}

static int decode_percentiles(const json_t *body, double *lo, double *hi, xd_error_t *err) {
  const json_t *v = json_object_get(body, "percentiles");
  if (!v || json_is_null(v)) return XD_OK;
  if (!json_is_array(v) || json_array_size(v) != 2)
    return xd_error_set(err, XD_EINVAL, "percentiles", "must be a pair [low, high] of fractions in [0, 1]");
  double p[2];
  for (size_t i = 0; i < 2; i++) {
    char f[32];
    snprintf(f, sizeof f, "percentiles[%zu]", i);
    int rc = xd_json_number(json_array_get(v, i), f, &p[i], err);
    if (rc != XD_OK) return rc;
    if (p[i] < 0 || p[i] > 1) return xd_error_set(err, XD_EINVAL, f, "must be in [0, 1]");
  }
  if (!(p[0] < p[1]))
    return xd_error_set(err, XD_EINVAL, "percentiles", "percentiles[0] must be less than percentiles[1]");
  *lo = p[0];
  *hi = p[1];
  return XD_OK;
}

/* The state of a /explain/pdp body: fields checked, data decoded, grids built. results:
 * allocate the answer's arrays (a request); a shard computes block sums instead. */
static int decode_state(xd_api_t *api, const json_t *body, int results, pdp_state_t **out, int64_t *timeout_ms,
                        xd_error_t *err) {
  static const char *const keys[] = {"model", "features", "data", "grid_resolution", "percentiles", "kind",
                                     "timeout_ms", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  pdp_state_t *s = xd_calloc(1, sizeof *s);
  if (!s) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  s->entry = xd_api_model(api, body, err);
  if (!s->entry) {
    rc = err->code ? err->code : XD_ENOTFOUND;
    goto fail;
  }
  s->m = s->entry->model;
  size_t feats[2], n_feat = 0, resolution = 100;
  if ((rc = xd_api_require_tabular(s->m, s->entry->name, "/explain/pdp", err)) != XD_OK) goto fail;
  double lo = 0.05, hi = 0.95;
  if ((rc = decode_features(s->m, body, feats, &n_feat, err)) != XD_OK) goto fail;
  if ((rc = xd_json_opt_size(body, "grid_resolution", 2, lim->max_grid, &resolution, err)) != XD_OK) goto fail;
  if ((rc = decode_percentiles(body, &lo, &hi, err)) != XD_OK) goto fail;
  s->kind = KIND_AVERAGE;
  if ((rc = xd_json_opt_enum(body, "kind", kind_names, &s->kind, err)) != XD_OK) goto fail;
  if ((rc = xd_api_timeout(body, timeout_ms, err)) != XD_OK) goto fail;
  if ((rc = xd_imp_data_decode(api, s->m, s->entry->name, body, 0, &s->data, err)) != XD_OK) goto fail;
  rc = xd_pdp_init(&s->pdp, s->m, s->data.X, s->data.n, feats, n_feat, resolution, lo, hi,
                   results && s->kind != KIND_AVERAGE, lim->max_work_rows, err);
  if (rc != XD_OK) goto fail;
  if (s->kind != KIND_AVERAGE &&
      (uint64_t)s->pdp.n_out * s->pdp.n * s->pdp.n_points > XD_PDP_MAX_INDIVIDUAL) {
    rc = xd_error_set(err, XD_ETOOBIG, "kind",
                      "ICE curves would hold %llu values (outputs x rows x grid points), over the limit of %llu: "
                      "use kind \"average\", fewer rows or a coarser grid",
                      (unsigned long long)s->pdp.n_out * s->pdp.n * s->pdp.n_points,
                      (unsigned long long)XD_PDP_MAX_INDIVIDUAL);
    goto fail;
  }
  *out = s;
  return XD_OK;
fail:
  pdp_free(s);
  return rc;
}

int xd_pdp_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  pdp_state_t *s = NULL;
  int rc = decode_state(api, body, 1, &s, &work->timeout_ms, err);
  if (rc != XD_OK) return rc;
  work->ops = &pdp_ops;
  work->state = s;
  work->n_parts = xd_pdp_parts(&s->pdp);
  work->cost_rows = xd_work_cost(xd_pdp_work_rows(&s->pdp), xd_model_row_cost(s->entry->model));
  work->model = s->entry->name;
  return XD_OK;
}

/* ---- PDP over large data: a part's block sums (docs/jobs.md "PDP over large data") ------ */

#define B_ROWS XD_PDP_SUM_BLOCK

/* Blocks [b0, b1) of nb for shard `shard` of n_shards: contiguous, on block boundaries. */
static void shard_blocks(size_t nb, size_t shard, size_t n_shards, size_t *b0, size_t *b1) {
  *b0 = shard * nb / n_shards;
  *b1 = (shard + 1) * nb / n_shards;
}

int xd_pdp_shard_blocks(xd_api_t *api, const json_t *body, size_t *n_blocks, xd_error_t *err) {
  pdp_state_t *s = NULL;
  int64_t timeout = 0;
  int rc = decode_state(api, body, 0, &s, &timeout, err);
  if (rc != XD_OK) return rc;
  *n_blocks = (s->pdp.n + B_ROWS - 1) / B_ROWS;
  pdp_free(s);
  return XD_OK;
}

int xd_pdp_shard(xd_api_t *api, const json_t *body, size_t shard, size_t n_shards, json_t **out, xd_error_t *err) {
  pdp_state_t *s = NULL;
  int64_t timeout = 0;
  int rc = decode_state(api, body, 0, &s, &timeout, err);
  if (rc != XD_OK) return rc;
  const xd_pdp_t *p = &s->pdp;
  const size_t G = p->n_points, nb = (p->n + B_ROWS - 1) / B_ROWS;
  size_t b0, b1;
  shard_blocks(nb, shard, n_shards, &b0, &b1);
  const size_t r0 = b0 * B_ROWS, r1 = b1 * B_ROWS < p->n ? b1 * B_ROWS : p->n, m = r1 > r0 ? r1 - r0 : 0;
  double *sums = xd_malloc(xd_mul_size(xd_mul_size(p->n_out, G), (b1 - b0 ? b1 - b0 : 1) * sizeof(double)));
  double *ice = s->kind != KIND_AVERAGE && m ? xd_malloc(xd_mul_size(xd_mul_size(p->n_out, m), G * sizeof(double))) : NULL;
  json_t *o = json_object(), *sj = json_array(), *ij = s->kind != KIND_AVERAGE ? json_array() : NULL;
  unsigned long nf = xd_json_nonfinite_mark();
  if (!sums || !o || !sj || (s->kind != KIND_AVERAGE && (!ij || (m && !ice)))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if (m && (rc = xd_pdp_block_sums(p, r0, r1, sums, ice, NULL, err)) != XD_OK) goto done;
  int bad = put_header(s, o) != XD_OK;
  for (size_t q = 0; q < p->n_out; q++) {
    bad |= json_array_append_new(sj, xd_json_matrix(sums + q * G * (b1 - b0), G, b1 - b0));
    if (!ij) continue;
    json_t *rows = json_array();
    for (size_t i = 0; rows && i < m; i++) bad |= json_array_append_new(rows, grid_block(p, ice + (q * m + i) * G));
    bad |= json_array_append_new(ij, rows);
  }
  bad |= json_object_set_new(o, "n_rows", json_integer((json_int_t)p->n));
  bad |= json_object_set_new(o, "block", json_integer(B_ROWS));
  bad |= json_object_set_new(o, "blocks", json_pack("[I,I]", (json_int_t)b0, (json_int_t)b1));
  bad |= json_object_set_new(o, "sums", sj);
  sj = NULL;
  if (ij) bad |= json_object_set_new(o, "individual", ij);
  ij = NULL;
  if (bad) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  *out = xd_json_finite_check(json_pack("{s:o}", "pdp_shard", o), nf, err);
  o = NULL;
  rc = *out ? XD_OK : err->code;
done:
  json_decref(o);
  json_decref(sj);
  json_decref(ij);
  xd_free(sums);
  xd_free(ice);
  pdp_free(s);
  return rc;
}

static int by_first_block(const void *a, const void *b) {
  json_int_t x = json_integer_value(json_array_get(json_object_get(*(json_t *const *)a, "blocks"), 0));
  json_int_t y = json_integer_value(json_array_get(json_object_get(*(json_t *const *)b, "blocks"), 0));
  return x < y ? -1 : x > y;
}

/* The members every shard of one job has alike. */
static const char *const same_members[] = {"model", "features", "feature_indices", "kind", "grid_values", "outputs",
                                           "n_rows", "block", NULL};

json_t *xd_pdp_merge(json_t *const *shards, size_t n, xd_error_t *err) {
  json_t **sh = xd_calloc(n ? n : 1, sizeof *sh), *body = NULL, *avg = NULL, *ind = NULL;
  double *tot = NULL;
  if (!sh) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory"), NULL;
  for (size_t i = 0; i < n; i++) sh[i] = json_object_get(shards[i], "pdp_shard");
  const json_t *h = n ? sh[0] : NULL, *gv = json_object_get(h, "grid_values");
  const size_t nr = (size_t)json_integer_value(json_object_get(h, "n_rows"));
  const size_t n_out = json_array_size(json_object_get(h, "outputs")), n_feat = json_array_size(gv);
  const char *kind = json_string_value(json_object_get(h, "kind"));
  size_t g0 = json_array_size(json_array_get(gv, 0)), g1 = n_feat == 2 ? json_array_size(json_array_get(gv, 1)) : 1;
  const size_t G = g0 * g1;
  for (size_t i = 0; i < n; i++)
    for (const char *const *k = same_members; sh[i] && *k; k++)
      if (!json_equal(json_object_get(sh[i], *k), json_object_get(h, *k))) {
        xd_error_set(err, XD_EINVAL, NULL, "shard %zu is not a PDP shard of the same job (its \"%s\" differs)", i, *k);
        goto done;
      }
  /* sizes as the documents claim them: bounded before any use (a shard file is input) */
  if (!h || nr == 0 || nr > ((size_t)1 << 40) || n_out == 0 || G == 0 || n_feat < 1 || n_feat > 2 || !kind ||
      json_integer_value(json_object_get(h, "block")) != B_ROWS) {
    xd_error_set(err, XD_EINVAL, NULL, "no PDP shards");
    goto done;
  }
  for (size_t i = 0; i < n; i++)
    if (!sh[i]) {
      xd_error_set(err, XD_EINVAL, NULL, "shard %zu is not a PDP shard", i);
      goto done;
    }
  qsort(sh, n, sizeof *sh, by_first_block);
  int want_avg = strcmp(kind, "individual") != 0, want_ind = strcmp(kind, "average") != 0;
  tot = xd_calloc(n_out * G, sizeof *tot);
  ind = want_ind ? json_array() : NULL;
  for (size_t q = 0; ind && q < n_out; q++) json_array_append_new(ind, json_array());
  if (!tot || (want_ind && json_array_size(ind) != n_out)) {
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* totals: the block sums in block order, shard after shard (as xd_pdp_run adds them);
   * the blocks must tile the rows */
  size_t next = 0;
  for (size_t i = 0; i < n; i++) {
    const json_t *bl = json_object_get(sh[i], "blocks"), *sums = json_object_get(sh[i], "sums");
    size_t b0 = (size_t)json_integer_value(json_array_get(bl, 0)), b1 = (size_t)json_integer_value(json_array_get(bl, 1));
    if (b0 != next || b1 < b0 || b1 > (nr + B_ROWS - 1) / B_ROWS || json_array_size(sums) != n_out) {
      xd_error_set(err, XD_EINVAL, NULL, "the shards do not tile the rows: a shard is missing or repeated (expected "
                   "block %zu next)", next);
      goto done;
    }
    size_t rows = (b1 * B_ROWS < nr ? b1 * B_ROWS : nr) - b0 * B_ROWS;
    for (size_t q = 0; q < n_out; q++) {
      const json_t *sq = json_array_get(sums, q);
      for (size_t g = 0; g < G; g++) {
        const json_t *sg = json_array_get(sq, g);
        if (json_array_size(sg) != b1 - b0 || json_array_size(sq) != G) {
          xd_error_set(err, XD_EINVAL, "sums", "shard %zu: output %zu, grid point %zu has the wrong block count", i, q, g);
          goto done;
        }
        for (size_t b = 0; b < b1 - b0; b++) tot[q * G + g] += json_number_value(json_array_get(sg, b));
      }
      if (!want_ind) continue;
      json_t *ri = json_array_get(json_object_get(sh[i], "individual"), q);
      if (json_array_size(ri) != rows || json_array_extend(json_array_get(ind, q), ri)) {
        xd_error_set(err, XD_EINVAL, "individual", "shard %zu: output %zu does not have one ICE curve per row", i, q);
        goto done;
      }
    }
    next = b1;
  }
  if (next != (nr + B_ROWS - 1) / B_ROWS) {
    xd_error_set(err, XD_EINVAL, NULL, "the shards cover %zu of %zu row blocks: a shard is missing", next,
                 (nr + B_ROWS - 1) / B_ROWS);
    goto done;
  }
  avg = json_array();
  for (size_t q = 0; avg && q < n_out; q++) {
    for (size_t g = 0; g < G; g++) tot[q * G + g] = tot[q * G + g] / (double)nr; /* as xd_pdp_run */
    json_array_append_new(avg, n_feat == 1 ? xd_json_reals(tot + q * G, G) : xd_json_matrix(tot + q * G, g0, g1));
  }
  for (size_t g = 0; g < n_out * G; g++)
    if (!isfinite(tot[g])) {
      xd_error_set(err, XD_EINVAL, NULL, "partial dependence overflowed (a non-finite average)");
      goto done;
    }
  body = json_object();
  for (const char *const *k = same_members; body && *k && strcmp(*k, "n_rows"); k++)
    json_object_set(body, *k, json_object_get(h, *k));
  if (body && want_avg) json_object_set(body, "average", avg);
  if (body && want_ind) json_object_set(body, "individual", ind);
  if (body) json_object_set_new(body, "n_rows", json_integer((json_int_t)nr));
  if (!body || !avg) {
    json_decref(body);
    body = NULL;
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
done:
  json_decref(avg);
  json_decref(ind);
  xd_free(sh);
  xd_free(tot);
  return body;
}

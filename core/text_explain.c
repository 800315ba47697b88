/* text_explain.c — gradient attributions and occlusion for text models (see
 * core/text_explain.h and docs/text_explanations.md). */
#include "core/text_explain.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/graph.h"
#include "core/rng.h"

const char *const xd_text_base_names[] = {"pad", "unk", "zeros", "delete", NULL};

enum { ROLE_IDS, ROLE_MASK, ROLE_TYPES, N_ROLES };

/* Bytes of override values plus gradients per engine call (the engine chunks further by its
 * own work memory), and the largest embedding of one text, in doubles. */
size_t xd_text_chunk_bytes = (size_t)32 << 20;
#define TEXT_MAX_ROW ((size_t)1 << 24)
static const char *const role_names[N_ROLES] = {"input_ids", "attention_mask", "token_type_ids"};

double xd_text_output(const xd_model_t *m, const double *z, size_t t, xd_output_kind_t kind, double *dz) {
  xd_act_t act;
  size_t w;
  xd_model_output_tensor(m, &act, &w);
  if (dz)
    for (size_t j = 0; j < w; j++) dz[j] = 0;
  if (act == XD_ACT_SOFTMAX) {
    double mx = -INFINITY, s = 0, pt = 0, rest = 0;
    for (size_t j = 0; j < w; j++) mx = z[j] > mx ? z[j] : mx;
    for (size_t j = 0; j < w; j++) s += exp(z[j] - mx);
    if (kind == XD_OUTPUT_LOGIT) {
      if (dz) dz[t] = 1;
      return z[t];
    }
    pt = exp(z[t] - mx) / s;
    for (size_t j = 0; j < w; j++)
      if (j != t) rest += exp(z[j] - mx) / s; /* 1 - p_t from the other classes: no cancellation */
    for (size_t j = 0; dz && j < w; j++) dz[j] = j == t ? pt * rest : -pt * exp(z[j] - mx) / s;
    return pt;
  }
  if (act == XD_ACT_SIGMOID && w == 1 && xd_model_task(m) == XD_TASK_CLASSIFICATION) {
    double sgn = t == 1 ? 1.0 : -1.0;
    if (kind == XD_OUTPUT_LOGIT) {
      if (dz) dz[0] = sgn;
      return sgn * z[0];
    }
    double p1 = 1 / (1 + exp(-z[0])), p0 = 1 / (1 + exp(z[0]));
    if (dz) dz[0] = sgn * p1 * p0;
    return t == 1 ? p1 : p0;
  }
  if (act == XD_ACT_SIGMOID) { /* multi-label: one sigmoid per output */
    if (kind == XD_OUTPUT_LOGIT) {
      if (dz) dz[t] = 1;
      return z[t];
    }
    double p = 1 / (1 + exp(-z[t]));
    if (dz) dz[t] = p * (1 - p);
    return p;
  }
  if (dz) dz[t] = 1; /* identity: the graph's own outputs */
  return z[t];
}

size_t xd_text_grad_rows(const xd_text_grad_opts_t *o) {
  if (o->method == XD_GRAD_INTEGRATED) return o->steps + 2;
  if (o->method >= XD_GRAD_SMOOTHGRAD) return o->samples;
  return 1;
}

/* Graph inputs for R rows of L tokens (ids, mask, types (R,L)), in graph input order. */
static void text_inputs(const xd_graph_t *g, int64_t *ids, int64_t *mask, int64_t *types, size_t R, size_t L,
                        xd_tensor_t *in) {
  for (size_t i = 0; i < xd_graph_n_inputs(g) && i < N_ROLES; i++) {
    const char *nm = xd_graph_input(g, i)->name;
    memset(&in[i], 0, sizeof in[i]);
    in[i].dtype = XD_DT_I64;
    in[i].rank = 2;
    in[i].dims[0] = (int64_t)R;
    in[i].dims[1] = (int64_t)L;
    in[i].data = !strcmp(nm, role_names[ROLE_MASK]) ? mask : !strcmp(nm, role_names[ROLE_TYPES]) ? types : ids;
  }
}

typedef struct seed_ctx {
  const xd_model_t *m;
  size_t target, width;
  xd_output_kind_t kind;
  double *f; /* (R) explained value of every row */
} seed_ctx_t;

static int seed_rows(void *ctx, size_t row0, size_t n, const double *z, double *seed) {
  seed_ctx_t *c = ctx;
  for (size_t i = 0; i < n; i++)
    c->f[row0 + i] = xd_text_output(c->m, z + i * c->width, c->target, c->kind, seed + i * c->width);
  return XD_OK;
}

/* Standard deviation of the embedding matrix (population), or of the text's own rows
 * when the tensor is not a plain lookup of an initializer. */
static double embedding_std(const xd_model_t *m, const double *ex, size_t cnt) {
  const float *M = NULL;
  size_t V = 0, d = 0;
  const char *auto_emb = xd_graph_embedding(xd_model_graph(m), &M, &V, &d);
  double s = 0, s2 = 0;
  size_t k = 0;
  if (M && auto_emb && !strcmp(auto_emb, xd_model_embedding(m))) {
    for (size_t i = 0; i < V * d; i++) s += M[i];
    double mu = s / (double)(V * d);
    for (size_t i = 0; i < V * d; i++) s2 += (M[i] - mu) * (M[i] - mu);
    return sqrt(s2 / (double)(V * d));
  }
  for (k = 0; k < cnt; k++) s += ex[k];
  double mu = cnt ? s / (double)cnt : 0;
  for (k = 0; k < cnt; k++) s2 += (ex[k] - mu) * (ex[k] - mu);
  return cnt ? sqrt(s2 / (double)cnt) : 0;
}

/* Rows [r0, r1) of the R rows of one text (xd_text_grad_rows): their explained values go
 * to f[r], and *acc (xd_malloc'd, 4·rowsz doubles: Σ w·g (or Σ g), Σ g², e_x, e_b) gets
 * their sums in row order and the text's embedding rows; *rowsz = tokens × d. */
static int grad_rows(const xd_model_t *m, const xd_text_grad_opts_t *o, const xd_tok_encoding_t *row, size_t target,
                     size_t index, size_t r0, size_t r1, double **acc, size_t *rowsz_out, double *f,
                     const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_graph_t *g = xd_model_graph(m);
  const char *emb = xd_model_embedding(m);
  const xd_tokenizer_t *tok = xd_model_tokenizer(m);
  if (!g || !tok || xd_model_input_kind(m) != XD_INPUT_TEXT)
    return xd_error_set(err, XD_EUNSUPPORTED, "model", "not a text model");
  if (!emb)
    return xd_error_set(err, XD_EUNSUPPORTED, "model", "the model has no token-embedding tensor to differentiate at "
                        "(name it in the bundle's input.embedding)");
  size_t L = row->n, W = 0;
  xd_act_t act;
  const char *out_name = xd_model_output_tensor(m, &act, &W);
  if (L == 0) return xd_error_set(err, XD_EINVAL, "instances", "the text has no tokens");
  int ig = o->method == XD_GRAD_INTEGRATED;
  int64_t bid = -1;
  if (ig && o->baseline != XD_TEXT_BASE_ZEROS) {
    bid = o->baseline == XD_TEXT_BASE_PAD ? xd_tokenizer_pad_id(tok) : xd_tokenizer_unk_id(tok);
    if (bid < 0)
      return xd_error_set(err, XD_EINVAL, "baseline", "the tokenizer has no %s token; use \"zeros\"",
                          xd_text_base_names[o->baseline]);
  }
  size_t R = r1 - r0, R0 = 2; /* x and the token baseline; the chunks get their own */
  *acc = NULL;
  int64_t *ids = xd_malloc(xd_mul_size(R0, L) * 3 * sizeof *ids);
  double *E = NULL, *V = NULL, *G = NULL;
  int rc = XD_OK;
  if (!ids) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  int64_t *mask = ids + R0 * L, *types = mask + R0 * L;
  for (size_t r = 0; r < R0; r++)
    for (size_t k = 0; k < L; k++) {
      ids[r * L + k] = row->ids[k];
      mask[r * L + k] = 1;
      types[r * L + k] = row->type_ids ? (int64_t)row->type_ids[k] : 0;
    }
  for (size_t k = 0; bid >= 0 && k < L; k++) /* row 1: the baseline's tokens, specials kept */
    if (!row->special || !row->special[k]) ids[L + k] = bid;
  xd_tensor_t in[N_ROLES], shape;
  text_inputs(g, ids, mask, types, 1, L, in);
  if ((rc = xd_graph_shape(g, in, emb, &shape, err)) != XD_OK) goto done;
  size_t rowsz = 1;
  for (size_t k = 1; k < shape.rank; k++) rowsz *= (size_t)shape.dims[k];
  if (rowsz == 0 || rowsz % L != 0) {
    rc = xd_error_set(err, XD_EUNSUPPORTED, "model", "the embedding tensor '%s' is not [batch][tokens][d]", emb);
    goto done;
  }
  *rowsz_out = rowsz;
  if (rowsz > TEXT_MAX_ROW) {
    rc = xd_error_set(err, XD_ETOOBIG, "instances", "one text's embedding (%zu tokens x %zu) is too large to explain",
                      L, rowsz / L);
    goto done;
  }
  /* rows go to the engine in chunks whose override and gradient stay under xd_text_chunk_bytes */
  size_t C = xd_text_chunk_bytes / (2 * sizeof(double) * rowsz);
  C = C < 1 ? 1 : C > R ? R : C;
  *acc = xd_calloc(xd_mul_size(4, rowsz), sizeof **acc); /* Σ w·g (or Σ g), Σ g², e_x, e_b */
  V = xd_malloc(xd_mul_size(C, rowsz) * sizeof *V);
  G = xd_malloc(xd_mul_size(C, rowsz) * sizeof *G);
  double *z0 = xd_malloc(2 * W * sizeof *z0);
  if (!*acc || !V || !G || !z0) {
    xd_free(z0);
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  double *S1 = *acc, *S2 = S1 + rowsz;
  E = S2 + rowsz;
  /* the embedding rows of x (and of the token baseline) */
  text_inputs(g, ids, mask, types, bid >= 0 ? 2 : 1, L, in);
  xd_graph_run_t run1 = {.inputs = in, .precision = o->precision, .output = out_name, .out = z0, .fetch = emb,
                         .fetch_out = E, .cancel = cancel};
  rc = xd_graph_run(g, &run1, err);
  xd_free(z0);
  int64_t *cids = rc == XD_OK ? xd_malloc(xd_mul_size(xd_mul_size(C, L), 3 * sizeof *cids)) : NULL;
  if (rc == XD_OK && !cids) rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t r = 0; cids && r < C; r++) /* every row of a chunk has x's tokens and a full mask */
    for (size_t k = 0; k < L; k++) {
      cids[r * L + k] = row->ids[k];
      cids[(C + r) * L + k] = 1;
      cids[(2 * C + r) * L + k] = row->type_ids ? (int64_t)row->type_ids[k] : 0;
    }
  const double *ex = E, *eb = E + rowsz; /* eb stays zeros for the "zeros" baseline */
  double sd = o->method >= XD_GRAD_SMOOTHGRAD ? o->noise_stddev * embedding_std(m, ex, rowsz) : 0;
  xd_rng_t rng;
  xd_rng_seed_stream(&rng, o->seed, index);
  for (size_t s0 = 0; rc == XD_OK && s0 < R; s0 += C) {
    size_t c = R - s0 < C ? R - s0 : C;
    for (size_t i = 0; i < c; i++) { /* row r: an IG point, the baseline, x; a noisy copy; or x */
      size_t r = r0 + s0 + i;
      double *v = V + i * rowsz;
      if (ig && r < o->steps)
        for (size_t k = 0; k < rowsz; k++) v[k] = eb[k] + o->alpha[r] * (ex[k] - eb[k]);
      else if (ig && r == o->steps)
        memcpy(v, eb, rowsz * sizeof *v);
      else if (o->method >= XD_GRAD_SMOOTHGRAD)
        for (size_t k = 0; k < rowsz; k++) v[k] = ex[k] + sd * xd_rng_normal(&rng);
      else
        memcpy(v, ex, rowsz * sizeof *v);
    }
    memset(G, 0, xd_mul_size(c, rowsz) * sizeof *G);
    text_inputs(g, cids, cids + C * L, cids + 2 * C * L, c, L, in);
    seed_ctx_t sc = {m, target, W, o->output, f + r0 + s0};
    xd_graph_run_t r2 = {.inputs = in, .precision = o->precision, .output = out_name, .override = emb,
                         .override_values = V, .wrt = emb, .grad = G, .seed_fn = seed_rows, .seed_ctx = &sc,
                         .cancel = cancel};
    if ((rc = xd_graph_run(g, &r2, err)) != XD_OK) break;
    for (size_t i = 0; i < c; i++) {
      size_t r = r0 + s0 + i;
      const double *gr = G + i * rowsz;
      if (ig && r >= o->steps) continue; /* the baseline and x: their outputs only */
      double w = ig ? o->weights[r] : 1;
      if (o->method >= XD_GRAD_SMOOTHGRAD) /* Σ g² is SmoothGrad²'s and VarGrad's only */
        for (size_t k = 0; k < rowsz; k++) {
          S1[k] += w * gr[k];
          S2[k] += gr[k] * gr[k];
        }
      else
        for (size_t k = 0; k < rowsz; k++) S1[k] += w * gr[k];
    }
  }
  xd_free(cids);
done:
  xd_free(ids);
  xd_free(V);
  xd_free(G);
  if (rc != XD_OK) {
    xd_free(*acc);
    *acc = NULL;
  }
  return rc;
}

void xd_text_grad_finish(const xd_text_grad_opts_t *o, size_t L, size_t rowsz, double *const *acc, size_t parts,
                         const double *f, double *attr, double *delta) {
  size_t R = xd_text_grad_rows(o), d = rowsz / L;
  int ig = o->method == XD_GRAD_INTEGRATED;
  double *S1 = acc[0], *S2 = acc[0] + rowsz;
  const double *ex = acc[0] + 2 * rowsz, *eb = ex + rowsz;
  for (size_t p = 1; p < parts; p++) /* the parts' sums, in part order */
    for (size_t k = 0; k < 2 * rowsz; k++) S1[k] += acc[p][k];
  for (size_t t = 0; t < L; t++) {
    double a = 0, ss = 0;
    for (size_t k = 0; k < d; k++) {
      size_t q = t * d + k;
      if (ig) {
        a += (ex[q] - eb[q]) * S1[q];
      } else if (o->method >= XD_GRAD_SMOOTHGRAD) {
        double mu = S1[q] / (double)R, sq = S2[q] / (double)R;
        a += o->method == XD_GRAD_SMOOTHGRAD ? mu : o->method == XD_GRAD_SMOOTHGRAD_SQ ? sq : sq - mu * mu;
      } else {
        a += o->method == XD_GRAD_INPUT_X_GRADIENT ? ex[q] * S1[q] : S1[q];
        ss += S1[q] * S1[q];
      }
    }
    attr[t] = o->method == XD_GRAD_SALIENCY ? sqrt(ss) : a;
  }
  if (ig && delta) {
    double sum = 0;
    for (size_t t = 0; t < L; t++) sum += attr[t];
    *delta = sum - (f[o->steps + 1] - f[o->steps]);
  }
}

int xd_text_grad_part(const xd_model_t *m, const xd_text_grad_opts_t *o, const xd_tok_encoding_t *row, size_t target,
                      size_t index, size_t r0, size_t r1, double **acc, size_t *rowsz, double *f,
                      const xd_cancel_t *cancel, xd_error_t *err) {
  if (o->method != XD_GRAD_INTEGRATED && (r0 != 0 || r1 != xd_text_grad_rows(o))) /* noise draws are sequential */
    return xd_error_set(err, XD_EINVAL, NULL, "only integrated gradients split a text's rows");
  return grad_rows(m, o, row, target, index, r0, r1, acc, rowsz, f, cancel, err);
}

int xd_text_grad_explain(const xd_model_t *m, const xd_text_grad_opts_t *o, const xd_tok_encoding_t *row,
                         size_t target, size_t index, double *attr, double *delta, const xd_cancel_t *cancel,
                         xd_error_t *err) {
  size_t R = xd_text_grad_rows(o), rowsz = 0;
  double *f = xd_calloc(R + 1, sizeof *f), *acc = NULL;
  if (!f) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  int rc = grad_rows(m, o, row, target, index, 0, R, &acc, &rowsz, f, cancel, err);
  if (rc == XD_OK) xd_text_grad_finish(o, row->n, rowsz, &acc, 1, f, attr, delta);
  xd_free(acc);
  xd_free(f);
  return rc;
}

int xd_text_occlusion(const xd_model_t *m, const xd_tok_encoding_t *row, size_t target, xd_text_base_t how,
                      xd_output_kind_t output, double *attr, double *fx, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_tokenizer_t *tok = xd_model_tokenizer(m);
  size_t L = row->n, K = xd_model_n_outputs(m);
  if (!tok || xd_model_input_kind(m) != XD_INPUT_TEXT)
    return xd_error_set(err, XD_EUNSUPPORTED, "model", "not a text model");
  if (output != XD_OUTPUT_PROBABILITY)
    return xd_error_set(err, XD_EINVAL, "output", "occlusion of text explains the probability only");
  if (L == 0) return xd_error_set(err, XD_EINVAL, "instances", "the text has no tokens");
  if (how == XD_TEXT_BASE_DELETE && L < 2)
    return xd_error_set(err, XD_EINVAL, "baseline", "a text of one token cannot lose it (\"delete\")");
  int64_t bid = how == XD_TEXT_BASE_PAD ? xd_tokenizer_pad_id(tok) : how == XD_TEXT_BASE_UNK ? xd_tokenizer_unk_id(tok) : 0;
  if (how == XD_TEXT_BASE_ZEROS) return xd_error_set(err, XD_EINVAL, "baseline", "expected \"pad\", \"unk\" or \"delete\"");
  if (bid < 0)
    return xd_error_set(err, XD_EINVAL, "baseline", "the tokenizer has no %s token", xd_text_base_names[how]);
  size_t R = L + 1;
  xd_tok_encoding_t *v = xd_calloc(R, sizeof *v);
  int64_t *ids = xd_malloc(xd_mul_size(R, L) * sizeof *ids);
  uint32_t *types = xd_malloc(xd_mul_size(R, L) * sizeof *types);
  double *P = xd_malloc(xd_mul_size(R, K) * sizeof *P);
  int rc = XD_OK;
  if (!v || !ids || !types || !P) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t r = 0; r < R; r++) { /* row 0: x; row i+1: token i occluded */
    size_t n = 0;
    for (size_t k = 0; k < L; k++) {
      if (r == k + 1 && how == XD_TEXT_BASE_DELETE) continue;
      ids[r * L + n] = r == k + 1 ? bid : row->ids[k];
      types[r * L + n] = row->type_ids ? row->type_ids[k] : 0;
      n++;
    }
    v[r].n = n;
    v[r].ids = ids + r * L;
    v[r].type_ids = types + r * L;
  }
  if ((rc = xd_model_predict_text(m, v, R, P, cancel, err)) != XD_OK) goto done;
  for (size_t i = 0; i < L; i++) attr[i] = P[target] - P[(i + 1) * K + target];
  if (fx) *fx = P[target];
done:
  xd_free(v);
  xd_free(ids);
  xd_free(types);
  xd_free(P);
  return rc;
}

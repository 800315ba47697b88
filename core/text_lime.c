/* text_lime.c — words of a text, perturbed texts evaluated in batches, and LIME for text
 * (see core/text_lime.h). */
#include "core/text_lime.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "core/tokenizer.h"
#include "core/unicode.h"

/* Texts tokenized and evaluated per xd_model_predict_text call. */
#define EVAL_CHUNK 1024

/* Python's \w on str patterns, as far as core/unicode.h's properties tell it. */
static int py_word(uint32_t c) {
  if (c == '_') return 1;
  if (c < 128) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
  unsigned f = xd_uni_flags(c);
  if (f & XD_UNI_DIGIT) return 1;
  return (f & XD_UNI_ALPHABETIC) && !(f & XD_UNI_MARK);
}

void xd_text_words_deinit(xd_text_words_t *w) {
  xd_free(w->piece_start);
  xd_free(w->piece_end);
  xd_free(w->piece_char);
  xd_free(w->feat_first);
  xd_free(w->feat_pieces);
  xd_free(w->piece_feat);
  memset(w, 0, sizeof *w);
}

static int same_piece(const char *text, const xd_text_words_t *w, size_t a, size_t b) {
  size_t la = w->piece_end[a] - w->piece_start[a], lb = w->piece_end[b] - w->piece_start[b];
  return la == lb && memcmp(text + w->piece_start[a], text + w->piece_start[b], la) == 0;
}

int xd_text_words_split(const char *text, size_t len, int bow, xd_text_words_t *w, xd_error_t *err) {
  memset(w, 0, sizeof *w);
  uint32_t *cp = xd_malloc((len + 1) * sizeof *cp);
  size_t *off = xd_malloc((len + 1) * sizeof *off), bad = 0;
  size_t cap = len + 1;
  w->piece_start = xd_malloc(cap * sizeof *w->piece_start);
  w->piece_end = xd_malloc(cap * sizeof *w->piece_end);
  w->piece_char = xd_malloc(cap * sizeof *w->piece_char);
  size_t *is_word = xd_calloc(cap, sizeof *is_word), *feat_of = xd_malloc(cap * sizeof *feat_of);
  int rc = XD_OK;
  if (!cp || !off || !w->piece_start || !w->piece_end || !w->piece_char || !is_word || !feat_of) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  long nc = xd_utf8_decode(text, len, cp, off, &bad);
  if (nc < 0) {
    rc = xd_error_set(err, XD_EINVAL, "instances", "invalid UTF-8 at byte %zu", bad);
    goto done;
  }
  off[nc] = len;
  size_t np = 0, nwords = 0;
  for (size_t i = 0; i < (size_t)nc;) { /* maximal runs of word / non-word characters */
    int wd = py_word(cp[i]);
    size_t j = i + 1;
    while (j < (size_t)nc && py_word(cp[j]) == wd) j++;
    w->piece_start[np] = off[i];
    w->piece_end[np] = off[j];
    w->piece_char[np] = i;
    is_word[np] = (size_t)wd;
    nwords += (size_t)wd;
    np++;
    i = j;
  }
  w->n_pieces = np;
  if (nwords == 0) {
    rc = xd_error_set(err, XD_EINVAL, "instances", "the text has no word to explain: give a text with at least one word (a \\w+ run)");
    goto done;
  }
  if (nwords > XD_TEXT_MAX_WORDS) {
    rc = xd_error_set(err, XD_EINVAL, "instances", "the text has %zu words, over the limit of %d", nwords,
                      XD_TEXT_MAX_WORDS);
    goto done;
  }
  /* features: distinct words in first-appearance order (bow), or every word position */
  size_t d = 0;
  for (size_t p = 0; p < np; p++) {
    if (!is_word[p]) continue;
    size_t f = d;
    if (bow)
      for (size_t q = 0; q < p; q++)
        if (is_word[q] && same_piece(text, w, p, q)) {
          f = feat_of[q];
          break;
        }
    feat_of[p] = f;
    if (f == d) d++;
  }
  w->d = d;
  w->feat_first = xd_calloc(d + 1, sizeof *w->feat_first);
  w->feat_pieces = xd_malloc(nwords * sizeof *w->feat_pieces);
  if (!w->feat_first || !w->feat_pieces) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t p = 0; p < np; p++)
    if (is_word[p]) w->feat_first[feat_of[p] + 1]++;
  for (size_t f = 0; f < d; f++) w->feat_first[f + 1] += w->feat_first[f];
  size_t *cnt = xd_calloc(d, sizeof *cnt);
  if (!cnt) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t p = 0; p < np; p++)
    if (is_word[p]) {
      size_t f = feat_of[p];
      w->feat_pieces[w->feat_first[f] + cnt[f]++] = p;
    }
  xd_free(cnt);
  for (size_t p = 0; p < np; p++)
    if (!is_word[p]) feat_of[p] = SIZE_MAX;
  w->piece_feat = feat_of;
  feat_of = NULL;
done:
  xd_free(cp);
  xd_free(off);
  xd_free(is_word);
  xd_free(feat_of);
  if (rc != XD_OK) xd_text_words_deinit(w);
  return rc;
}

size_t xd_text_words_render(const xd_text_words_t *w, const char *text, size_t len, const uint8_t *on,
                            const char *mask, char *out) {
  (void)len;
  size_t o = 0, ml = mask ? strlen(mask) : 0;
  for (size_t p = 0; p < w->n_pieces; p++) {
    int off = w->piece_feat[p] != SIZE_MAX && !on[w->piece_feat[p]];
    if (!off) {
      memcpy(out + o, text + w->piece_start[p], w->piece_end[p] - w->piece_start[p]);
      o += w->piece_end[p] - w->piece_start[p];
    } else if (mask) {
      memcpy(out + o, mask, ml);
      o += ml;
    }
  }
  out[o] = 0;
  return o;
}

/* first[i] <- the first row of Z (n, d) equal to row i (i itself when none is). LIME
 * draws few distinct rows where it removes one or two words, or keeps one or two (about
 * a fifth of 5,000 samples on an 18-word text), and a perturbed text's outputs do not
 * depend on the texts evaluated beside it (but for float rounding: BLAS may round a row
 * differently with the batch's size, ~1e-10 of the weights): each is evaluated once. Open addressing on
 * an FNV-1a hash of the row; XD_ENOMEM. */
static int first_rows(const uint8_t *Z, size_t n, size_t d, size_t *first) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  size_t *slot = xd_calloc(cap, sizeof *slot); /* row + 1, 0 empty */
  if (!slot) return XD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *z = Z + i * d;
    uint64_t hv = 14695981039346656037u;
    for (size_t k = 0; k < d; k++) hv = (hv ^ z[k]) * 1099511628211u;
    size_t q = (size_t)(hv ^ hv >> 29) & (cap - 1);
    while (slot[q] && memcmp(Z + (slot[q] - 1) * d, z, d)) q = (q + 1) & (cap - 1);
    if (!slot[q]) slot[q] = i + 1;
    first[i] = slot[q] - 1;
  }
  xd_free(slot);
  return XD_OK;
}

int xd_text_words_eval(const xd_model_t *m, const xd_text_words_t *w, const char *text, size_t len,
                       const uint8_t *Z, size_t n, const char *mask, double *P, const xd_cancel_t *cancel,
                       xd_error_t *err) {
  const xd_tokenizer_t *tok = xd_model_tokenizer(m);
  if (!tok) return xd_error_set(err, XD_EUNSUPPORTED, "model", "not a text model");
  size_t K = xd_model_n_outputs(m), ml = mask ? strlen(mask) : 0, maxlen = xd_model_max_length(m);
  size_t b = n < EVAL_CHUNK ? n : EVAL_CHUNK, nu = 0;
  char *buf = xd_malloc(len + w->n_pieces * ml + 1);
  xd_tok_encoding_t *enc = xd_calloc(b, sizeof *enc), *use = xd_calloc(b, sizeof *use);
  size_t *first = xd_malloc((n ? n : 1) * sizeof *first), *uniq = xd_malloc((n ? n : 1) * sizeof *uniq);
  double *PU = xd_malloc(xd_mul_size(n ? n : 1, K) * sizeof *PU); /* the distinct rows' outputs */
  int64_t fill_id = xd_tokenizer_pad_id(tok);
  uint32_t zero_type = 0;
  if (fill_id < 0) fill_id = xd_tokenizer_unk_id(tok);
  int rc = XD_OK;
  if (!buf || !enc || !use || !first || !uniq || !PU || first_rows(Z, n, w->d, first) != XD_OK) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) /* first[i] becomes the index of its distinct row */
    if (first[i] == i) {
      uniq[nu] = i;
      first[i] = nu++;
    } else {
      first[i] = first[first[i]];
    }
  for (size_t s = 0; s < nu && rc == XD_OK; s += b) {
    size_t c = nu - s < b ? nu - s : b, done_i = 0;
    for (; done_i < c && rc == XD_OK; done_i++) {
      size_t bl = xd_text_words_render(w, text, len, Z + uniq[s + done_i] * w->d, mask, buf);
      rc = xd_tokenizer_encode(tok, buf, bl, maxlen, &enc[done_i], err);
      use[done_i] = enc[done_i];
      if (rc == XD_OK && enc[done_i].n == 0) { /* nothing left: one filler token */
        use[done_i].n = 1;
        use[done_i].ids = &fill_id;
        use[done_i].type_ids = &zero_type;
      }
    }
    if (rc == XD_OK) rc = xd_model_predict_text(m, use, c, PU + s * K, cancel, err);
    for (size_t i = 0; i < done_i; i++) xd_tok_encoding_deinit(&enc[i]);
    memset(enc, 0, b * sizeof *enc);
  }
  for (size_t i = 0; rc == XD_OK && i < n; i++) memcpy(P + i * K, PU + first[i] * K, K * sizeof *P);
  if (rc != XD_OK && err && !err->field[0]) snprintf(err->field, sizeof err->field, "instances");
done:
  xd_free(buf);
  xd_free(enc);
  xd_free(use);
  xd_free(first);
  xd_free(uniq);
  xd_free(PU);
  return rc;
}

int xd_text_lime_sample(const xd_text_words_t *w, const xd_text_lime_opts_t *o, size_t r, uint8_t *Z,
                        xd_error_t *err) {
  size_t n = o->num_samples, d = w->d;
  size_t *idx = xd_malloc((d ? d : 1) * sizeof *idx);
  if (!idx) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  xd_rng_t rng;
  xd_rng_seed_stream(&rng, o->seed, r);
  memset(Z, 1, d);
  for (size_t i = 1; i < n; i++) { /* size = randint(1, d+1) distinct features off */
    uint8_t *z = Z + i * d;
    memset(z, 1, d);
    size_t size = 1 + (size_t)xd_rng_below(&rng, d);
    for (size_t j = 0; j < d; j++) idx[j] = j;
    for (size_t j = 0; j < size; j++) {
      size_t k = j + (size_t)xd_rng_below(&rng, d - j), t = idx[j];
      idx[j] = idx[k];
      idx[k] = t;
      z[idx[j]] = 0;
    }
  }
  xd_free(idx);
  return XD_OK;
}

size_t xd_text_lime_acc_size(const xd_text_words_t *w, size_t L) { return xd_mul_size(L, 3 * w->d + 3); }

int xd_text_lime_fit(const xd_text_words_t *w, const xd_text_lime_opts_t *o, size_t K, const uint8_t *Z,
                     const double *P, const size_t *labels, size_t L, double *acc, xd_error_t *err) {
  size_t n = o->num_samples, d = w->d;
  double *Zd = xd_malloc(xd_mul_size(n, d) * sizeof *Zd);
  double *dist = xd_malloc(n * sizeof *dist), *y = xd_malloc(n * sizeof *y);
  size_t *used = xd_malloc((d ? d : 1) * sizeof *used);
  double *coef = xd_malloc((d ? d : 1) * sizeof *coef);
  int rc = XD_OK;
  if (!Zd || !dist || !y || !used || !coef) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) { /* cosine distance to the all-ones row, x 100 */
    size_t k = 0;
    for (size_t j = 0; j < d; j++) k += Z[i * d + j], Zd[i * d + j] = Z[i * d + j];
    dist[i] = k ? (1.0 - sqrt((double)k / (double)d)) * 100.0 : 100.0;
    if (dist[i] < 0) dist[i] = 0;
  }
  for (size_t l = 0; l < L && rc == XD_OK; l++) {
    for (size_t i = 0; i < n; i++) y[i] = P[i * K + labels[l]];
    xd_lime_fit_out_t fit = {.used = used, .coef = coef};
    rc = xd_lime_fit_neighbourhood(n, d, Zd, y, dist, o->kernel_width, o->feature_selection, o->num_features, &fit,
                                   err);
    if (rc != XD_OK) break;
    double *a = acc + l * (3 * d + 3); /* Σcoef (d), Σcoef² (d), selected (d), intercept, score, local_pred */
    for (size_t j = 0; j < d; j++) {
      a[j] += coef[j];
      a[d + j] += coef[j] * coef[j];
    }
    for (size_t u = 0; u < fit.n_used; u++) a[2 * d + used[u]] = 1;
    a[3 * d] += fit.intercept;
    a[3 * d + 1] += fit.score;
    a[3 * d + 2] += fit.local_pred;
  }
done:
  xd_free(Zd);
  xd_free(dist);
  xd_free(y);
  xd_free(used);
  xd_free(coef);
  return rc;
}

void xd_text_lime_finish(const xd_text_words_t *w, const xd_text_lime_opts_t *o, const double *acc, size_t L,
                         xd_text_lime_out_t *out) {
  size_t d = w->d, R = o->repeats ? o->repeats : 1;
  for (size_t l = 0; l < L; l++) {
    const double *a = acc + l * (3 * d + 3);
    xd_text_lime_out_t *q = &out[l];
    q->n_used = 0;
    for (size_t j = 0; j < d; j++) {
      q->coef[j] = a[j] / (double)R;
      double v = a[d + j] / (double)R - q->coef[j] * q->coef[j];
      q->sd[j] = v > 0 ? sqrt(v) : 0;
      if (a[2 * d + j]) q->used[q->n_used++] = j;
    }
    for (size_t i = 1; i < q->n_used; i++) /* by decreasing |coef|, ties by index (stable) */
      for (size_t k = i; k > 0 && fabs(q->coef[q->used[k]]) > fabs(q->coef[q->used[k - 1]]); k--) {
        size_t t = q->used[k];
        q->used[k] = q->used[k - 1];
        q->used[k - 1] = t;
      }
    q->intercept = a[3 * d] / (double)R;
    q->score = a[3 * d + 1] / (double)R;
    q->local_pred = a[3 * d + 2] / (double)R;
  }
}

int xd_text_lime_check(const xd_text_words_t *w, const xd_text_lime_opts_t *o, xd_error_t *err) {
  size_t n = o->num_samples, d = w->d;
  if (n < 1) return xd_error_set(err, XD_EINVAL, "num_samples", "must be at least 1");
  if ((double)n * (double)d > XD_TEXT_MAX_CELLS)
    return xd_error_set(err, XD_ETOOBIG, "num_samples", "%zu samples x %zu words exceed %.0f cells", n, d,
                        (double)XD_TEXT_MAX_CELLS);
  return XD_OK;
}

int xd_text_lime_explain(const xd_model_t *m, const xd_text_words_t *w, const char *text, size_t len,
                         const xd_text_lime_opts_t *o, const size_t *labels, size_t L, double *probs,
                         xd_text_lime_out_t *out, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t n = o->num_samples, d = w->d, K = xd_model_n_outputs(m), R = o->repeats ? o->repeats : 1;
  int rc = xd_text_lime_check(w, o, err);
  if (rc != XD_OK) return rc;
  uint8_t *Z = xd_malloc(xd_mul_size(n, d) + 1);
  double *P = xd_malloc(xd_mul_size(n, K) * sizeof *P), *acc = xd_calloc(xd_text_lime_acc_size(w, L) + 1, sizeof *acc);
  if (!Z || !P || !acc) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t r = 0; r < R && rc == XD_OK; r++) {
    if ((rc = xd_text_lime_sample(w, o, r, Z, err)) != XD_OK ||
        (rc = xd_text_words_eval(m, w, text, len, Z, n, o->mask, P, cancel, err)) != XD_OK)
      break;
    if (r == 0) memcpy(probs, P, K * sizeof *probs);
    rc = xd_text_lime_fit(w, o, K, Z, P, labels, L, acc, err);
  }
  if (rc == XD_OK) xd_text_lime_finish(w, o, acc, L, out);
done:
  xd_free(Z);
  xd_free(P);
  xd_free(acc);
  return rc;
}

int xd_text_shap_plan(const xd_text_words_t *w, xd_shap_method_t method, size_t nsamples, uint64_t seed,
                      size_t index, xd_shap_plan_t *pl, uint8_t **Zout, size_t *Rout, xd_error_t *err) {
  size_t d = w->d;
  memset(pl, 0, sizeof *pl);
  *Zout = NULL;
  *Rout = 0;
  if (method == XD_SHAP_EXACT && d > XD_SHAP_EXACT_MAX)
    return xd_error_set(err, XD_EINVAL, "method", "exact Shapley values need at most %d words; this text has %zu",
                        XD_SHAP_EXACT_MAX, d);
  double *x = xd_malloc(d * sizeof *x), bgw = 1;
  double *bgx = xd_calloc(d, sizeof *bgx); /* the background: every word hidden */
  uint8_t *Z = NULL;
  int rc = XD_OK;
  if (!x || !bgx) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t j = 0; j < d; j++) x[j] = 1;
  xd_shap_bg_t bg = {.n = 1, .d = d, .X = bgx, .w = &bgw};
  xd_rng_t rng;
  xd_rng_seed_stream(&rng, seed, index);
  if ((rc = xd_shap_plan_init(pl, method == XD_SHAP_EXACT ? XD_SHAP_EXACT : XD_SHAP_KERNEL, x, &bg, nsamples, &rng,
                              err)) != XD_OK)
    goto done;
  size_t R = pl->K + 2; /* the coalitions, then nothing kept, then everything kept */
  if ((double)R * (double)d > XD_TEXT_MAX_CELLS) {
    rc = xd_error_set(err, XD_ETOOBIG, "nsamples", "%zu coalitions x %zu words exceed %.0f cells", R, d,
                      (double)XD_TEXT_MAX_CELLS);
    goto done;
  }
  if (!(Z = xd_calloc(xd_mul_size(R, d) + 1, 1))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t k = 0; k < pl->K; k++)
    for (size_t q = 0; q < pl->M; q++) {
      int on = pl->masks ? pl->masks[k * pl->M + q] : (int)((k >> q) & 1);
      Z[k * d + pl->varying[q]] = (uint8_t)on;
    }
  memset(Z + (R - 1) * d, 1, d);
  *Zout = Z;
  *Rout = R;
  Z = NULL;
done:
  xd_free(x);
  xd_free(bgx);
  xd_free(Z);
  if (rc != XD_OK) xd_shap_plan_deinit(pl);
  return rc;
}

int xd_text_shap_solve(xd_shap_plan_t *pl, const double *P, size_t K, size_t target, xd_shap_link_t link, double *phi,
                       double *expected, double *fx, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t R = pl->K + 2;
  for (size_t k = 0; k < pl->K; k++) pl->ey[k] = P[k * K + target];
  *expected = P[(R - 2) * K + target];
  *fx = P[(R - 1) * K + target];
  return xd_shap_plan_solve(pl, link, *fx, *expected, 0, phi, cancel, err);
}

int xd_text_shap_explain(const xd_model_t *m, const xd_text_words_t *w, const char *text, size_t len,
                         const char *mask, xd_shap_method_t method, size_t nsamples, xd_shap_link_t link,
                         uint64_t seed, size_t index, size_t target, double *phi, double *expected, double *fx,
                         const xd_cancel_t *cancel, xd_error_t *err) {
  size_t K = xd_model_n_outputs(m), R = 0;
  xd_shap_plan_t pl;
  uint8_t *Z = NULL;
  double *P = NULL;
  int rc = xd_text_shap_plan(w, method, nsamples, seed, index, &pl, &Z, &R, err);
  if (rc != XD_OK) return rc;
  if (!(P = xd_malloc(xd_mul_size(R, K) * sizeof *P))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  if ((rc = xd_text_words_eval(m, w, text, len, Z, R, mask, P, cancel, err)) != XD_OK) goto done;
  rc = xd_text_shap_solve(&pl, P, K, target, link, phi, expected, fx, cancel, err);
done:
  xd_shap_plan_deinit(&pl);
  xd_free(Z);
  xd_free(P);
  return rc;
}

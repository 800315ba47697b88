/* explain_text_lime.c — /explain/lime on text models (API.md Part 2; lime_text's
 * semantics, core/text_lime.h). With many texts, one part per text, each evaluating all
 * its perturbed texts in large batches. With one text (under SPLIT_TEXTS), its
 * perturbed texts are split into fixed slices, one part each, so that one text uses
 * every worker: prepare draws every repeat's on/off rows (and resolves top_labels),
 * the parts evaluate their slices, encode fits. The slices depend only on the request,
 * so the answer is the same whatever the worker count. */
#include <stdio.h>
#include <string.h>

#include "api/alloc.h"
#include "api/explain_common.h"
#include "api/explain_text.h"
#include "api/graph_rows.h"
#include "core/alloc.h"
#include "core/text_lime.h"

#define MAX_LABELS 64
/* Split a text's evaluation over parts when the request has fewer texts than this, in
 * slices of at least SLICE_ROWS perturbed texts, at most MAX_SLICES per text, while its
 * on/off rows fit in SPLIT_CELLS bytes. One text only: the slice count is read off the
 * request's texts, and a batch job's chunk must cut its text as the whole request does
 * (xd_work_request_rows), which it can when the whole request is that one text. */
#define SPLIT_TEXTS 2
#define SLICE_ROWS 512
#define MAX_SLICES 8
#define SPLIT_CELLS ((size_t)1 << 24)

typedef struct tlime_job {
  xd_model_entry_t *entry;
  xd_text_lime_opts_t o;
  int bow;
  char *mask;
  size_t labels[MAX_LABELS], n_labels, top_labels;
  size_t n;
  const char **text; /* borrowed from body */
  size_t *len;
  json_t *body;      /* reference kept for the texts */
  xd_tok_encoding_t *rows;
  xd_text_words_t *words;
  size_t *lab;       /* (n, L) labels explained per text */
  size_t *nl;        /* (n) */
  double *probs;     /* (n, K) */
  xd_text_lime_out_t *out; /* (n, L) */
  json_t *warnings;
  /* /explain/shap */
  int shap;
  xd_shap_method_t method;
  xd_shap_link_t link;
  size_t nsamples;
  size_t *target;  /* (n) */
  double **phi;    /* (n) rows of words[i].d */
  double *expected, *fx;
  uint64_t first; /* instance i draws from stream first + i (api/job.h set_first_index) */
  /* split evaluation (LIME): parts per text, and per text the on/off rows and outputs of
   * every repeat, (repeats·num_samples, d) and (·, K) */
  size_t slices;
  uint8_t **Z;
  double **P;
  /* split evaluation (SHAP): per text its plan and its rows (coalitions + 2) */
  xd_shap_plan_t *plans;
  size_t *nrows;
} tlime_job_t;

/* Text i's labels (the given ones, or the top_labels most probable classes of the text
 * itself, its probabilities then in probs) and its answer's arrays. */
static int text_labels(tlime_job_t *j, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  size_t K = xd_model_n_outputs(m), d = j->words[i].d, L = j->n_labels ? j->n_labels : j->top_labels;
  int rc = XD_OK;
  size_t *lab = j->lab + i * MAX_LABELS;
  if (j->n_labels) {
    memcpy(lab, j->labels, L * sizeof *lab);
  } else { /* the top_labels most probable classes of the text itself */
    double *p = j->probs + i * K;
    if ((rc = xd_model_predict_text(m, &j->rows[i], 1, p, cancel, err)) != XD_OK) return rc;
    for (size_t k = 0; k < L; k++) {
      size_t best = K;
      for (size_t c = 0; c < K; c++) {
        int taken = 0;
        for (size_t q = 0; q < k; q++) taken |= lab[q] == c;
        if (!taken && (best == K || p[c] > p[best])) best = c;
      }
      lab[k] = best;
    }
  }
  j->nl[i] = L;
  xd_text_lime_out_t *out = j->out + i * MAX_LABELS;
  for (size_t l = 0; l < L; l++) {
    out[l].used = xd_malloc(d * sizeof *out[l].used);
    out[l].coef = xd_malloc(d * sizeof *out[l].coef);
    out[l].sd = xd_malloc(d * sizeof *out[l].sd);
    if (!out[l].used || !out[l].coef || !out[l].sd) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  return XD_OK;
}

static int tlime_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  tlime_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t K = xd_model_n_outputs(m);
  if (j->slices > 1) { /* slice s of text i's perturbed texts, over every repeat */
    size_t i = part / j->slices, s = part % j->slices;
    if (i >= j->n) return XD_OK;
    size_t N = j->o.num_samples * j->o.repeats, k0 = N * s / j->slices, k1 = N * (s + 1) / j->slices, d = j->words[i].d;
    return xd_text_words_eval(m, &j->words[i], j->text[i], j->len[i], j->Z[i] + k0 * d, k1 - k0, j->o.mask,
                              j->P[i] + k0 * K, cancel, err);
  }
  size_t i = part;
  if (i >= j->n) return XD_OK;
  int rc = text_labels(j, i, cancel, err);
  if (rc != XD_OK) return rc;
  return xd_text_lime_explain(m, &j->words[i], j->text[i], j->len[i], &j->o, j->lab + i * MAX_LABELS, j->nl[i],
                              j->probs + i * K, j->out + i * MAX_LABELS, cancel, err);
}

/* Split evaluation: every text's labels and on/off rows, before the parts. */
static int tlime_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  tlime_job_t *j = state;
  size_t K = xd_model_n_outputs(j->entry->model), R = j->o.repeats, n = j->o.num_samples;
  int rc = XD_OK;
  if (j->slices <= 1) return XD_OK;
  for (size_t i = 0; i < j->n && rc == XD_OK; i++) {
    size_t d = j->words[i].d;
    if ((rc = text_labels(j, i, cancel, err)) != XD_OK || (rc = xd_text_lime_check(&j->words[i], &j->o, err)) != XD_OK)
      break;
    j->Z[i] = xd_malloc(xd_mul_size(xd_mul_size(R, n), d) + 1);
    j->P[i] = xd_malloc(xd_mul_size(xd_mul_size(R, n), K) * sizeof **j->P + 1);
    if (!j->Z[i] || !j->P[i]) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t r = 0; r < R && rc == XD_OK; r++) rc = xd_text_lime_sample(&j->words[i], &j->o, r, j->Z[i] + r * n * d, err);
  }
  return rc;
}

/* Split evaluation: each text's fits, repeat by repeat, once every slice is evaluated. */
static int tlime_fit_all(tlime_job_t *j, xd_error_t *err) {
  size_t K = xd_model_n_outputs(j->entry->model), n = j->o.num_samples;
  int rc = XD_OK;
  for (size_t i = 0; i < j->n && rc == XD_OK; i++) {
    const xd_text_words_t *W = &j->words[i];
    size_t d = W->d, L = j->nl[i];
    double *acc = xd_calloc(xd_text_lime_acc_size(W, L) + 1, sizeof *acc);
    if (!acc) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    for (size_t r = 0; r < j->o.repeats && rc == XD_OK; r++)
      rc = xd_text_lime_fit(W, &j->o, K, j->Z[i] + r * n * d, j->P[i] + r * n * K, j->lab + i * MAX_LABELS, L, acc, err);
    if (rc == XD_OK) {
      xd_text_lime_finish(W, &j->o, acc, L, j->out + i * MAX_LABELS);
      memcpy(j->probs + i * K, j->P[i], K * sizeof *j->P[i]); /* the text itself: row 0 of repeat 0 */
    }
    xd_free(acc);
  }
  return rc;
}

static json_t *word_json(const tlime_job_t *j, size_t i, size_t f, double w, double sd) {
  const xd_text_words_t *W = &j->words[i];
  size_t p0 = W->feat_pieces[W->feat_first[f]];
  json_t *o = json_object(), *pos = json_array();
  for (size_t k = W->feat_first[f]; pos && k < W->feat_first[f + 1]; k++)
    json_array_append_new(pos, json_integer((json_int_t)W->piece_char[W->feat_pieces[k]]));
  json_object_set_new(o, "feature", json_stringn(j->text[i] + W->piece_start[p0], W->piece_end[p0] - W->piece_start[p0]));
  json_object_set_new(o, "feature_index", json_integer((json_int_t)f));
  json_object_set_new(o, "weight", xd_json_real(w));
  if (j->o.repeats > 1) json_object_set_new(o, "std", xd_json_real(sd));
  json_object_set_new(o, "positions", pos);
  return o;
}

static json_t *tlime_encode(void *state, xd_error_t *err) {
  tlime_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  size_t K = xd_model_n_outputs(m);
  if (j->slices > 1 && tlime_fit_all(j, err) != XD_OK) return NULL;
  json_t *o = json_object(), *ex = json_array();
  int bad = !o || !ex;
  for (size_t i = 0; !bad && i < j->n; i++) {
    json_t *e = json_object(), *labs = json_array();
    bad |= !e || !labs;
    for (size_t l = 0; !bad && l < j->nl[i]; l++) {
      const xd_text_lime_out_t *q = &j->out[i * MAX_LABELS + l];
      size_t c = j->lab[i * MAX_LABELS + l];
      json_t *lo = json_object(), *ws = json_array();
      for (size_t u = 0; ws && u < q->n_used; u++)
        bad |= json_array_append_new(ws, word_json(j, i, q->used[u], q->coef[q->used[u]], q->sd[q->used[u]]));
      char *const *cls = xd_model_classes(m);
      bad |= json_object_set_new(lo, "label", cls ? json_string(cls[c]) : json_integer((json_int_t)c));
      bad |= json_object_set_new(lo, "label_index", json_integer((json_int_t)c));
      bad |= json_object_set_new(lo, "intercept", xd_json_real(q->intercept));
      bad |= json_object_set_new(lo, "score", xd_json_real(q->score));
      bad |= json_object_set_new(lo, "local_pred", xd_json_real(q->local_pred));
      bad |= json_object_set_new(lo, "weights", ws);
      bad |= json_array_append_new(labs, lo);
    }
    bad |= json_object_set_new(e, "probabilities", xd_json_reals(j->probs + i * K, K));
    bad |= json_object_set_new(e, "n_words", json_integer((json_int_t)j->words[i].d));
    bad |= json_object_set_new(e, "labels", labs);
    bad |= json_array_append_new(ex, e);
  }
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "seed", xd_explain_seed_json(j->o.seed));
  bad |= json_object_set_new(o, "num_samples", json_integer((json_int_t)j->o.num_samples));
  bad |= json_object_set_new(o, "kernel_width", xd_json_real(j->o.kernel_width));
  bad |= json_object_set_new(o, "bow", json_boolean(j->bow));
  bad |= json_object_set_new(o, "mask_string", j->mask ? json_string(j->mask) : json_null());
  bad |= json_object_set_new(o, "tokens", xd_json_tokens(j->rows, j->n));
  bad |= json_object_set_new(o, "explanations", ex);
  if (json_array_size(j->warnings)) bad |= json_object_set(o, "warnings", j->warnings);
  if (bad) {
    json_decref(o);
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
    return NULL;
  }
  return o;
}

static void tlime_free(void *state) {
  tlime_job_t *j = state;
  if (!j) return;
  xd_model_entry_release(j->entry);
  for (size_t i = 0; j->out && i < j->n * MAX_LABELS; i++) {
    xd_free(j->out[i].used);
    xd_free(j->out[i].coef);
    xd_free(j->out[i].sd);
  }
  for (size_t i = 0; j->words && i < j->n; i++) xd_text_words_deinit(&j->words[i]);
  xd_free(j->words);
  xd_free(j->out);
  xd_free(j->lab);
  xd_free(j->nl);
  xd_free(j->probs);
  xd_free(j->text);
  xd_free(j->len);
  xd_free(j->mask);
  xd_tok_rows_free(j->rows, j->n);
  json_decref(j->warnings);
  json_decref(j->body);
  for (size_t i = 0; j->Z && i < j->n; i++) xd_free(j->Z[i]);
  for (size_t i = 0; j->P && i < j->n; i++) xd_free(j->P[i]);
  xd_free(j->Z);
  xd_free(j->P);
  for (size_t i = 0; j->plans && i < j->n; i++) xd_shap_plan_deinit(&j->plans[i]);
  xd_free(j->plans);
  xd_free(j->nrows);
  for (size_t i = 0; j->phi && i < j->n; i++) xd_free(j->phi[i]);
  xd_free(j->phi);
  xd_free(j->target);
  xd_free(j->expected);
  xd_free(j->fx);
  xd_free(j);
}

XD_JSON_RESULT_GUARDED(tlime_encode_checked, tlime_encode)
static const xd_job_ops_t tlime_ops = {.endpoint = "explain_lime",
                                       .run = tlime_run,
                                       .encode = tlime_encode_checked,
                                       .free = tlime_free,
                                       .prepare = tlime_prepare};

static int decode_labels(const xd_model_t *m, const json_t *body, tlime_job_t *j, xd_error_t *err) {
  json_t *v = json_object_get(body, "labels");
  if (!v || json_is_null(v)) return XD_OK;
  if (!json_is_array(v)) {
    j->n_labels = 1;
    return xd_json_label(m, v, "labels", &j->labels[0], err);
  }
  size_t k = json_array_size(v);
  if (k == 0) return xd_error_set(err, XD_EINVAL, "labels", "must not be empty (leave it out to use top_labels)");
  if (k > MAX_LABELS) return xd_error_set(err, XD_EINVAL, "labels", "at most %d labels", MAX_LABELS);
  for (size_t i = 0; i < k; i++) {
    char f[32];
    snprintf(f, sizeof f, "labels[%zu]", i);
    int rc = xd_json_label(m, json_array_get(v, i), f, &j->labels[i], err);
    if (rc != XD_OK) return rc;
  }
  j->n_labels = k;
  return XD_OK;
}

/* The texts (borrowed from the body, kept referenced), their tokens and their words. */
static int decode_texts(xd_api_t *api, const json_t *body, tlime_job_t *j, uint64_t per_text, const char *what,
                        xd_error_t *err) {
  const xd_limits_t *lim = xd_api_limits(api);
  const xd_model_t *m = j->entry->model;
  int rc;
  if (!(j->warnings = json_array())) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  if ((rc = xd_json_text_rows(m, body, 1, lim->max_rows, &j->rows, &j->n, j->warnings, err)) != XD_OK) return rc;
  uint64_t cost = (uint64_t)j->n * per_text;
  if (cost > lim->max_work_rows)
    return xd_error_set(err, XD_ETOOBIG, what, "%zu texts x %llu perturbed texts each exceed the limit of %llu model rows",
                        j->n, (unsigned long long)per_text, (unsigned long long)lim->max_work_rows);
  j->text = xd_calloc(j->n, sizeof *j->text);
  j->len = xd_calloc(j->n, sizeof *j->len);
  j->words = xd_calloc(j->n, sizeof *j->words);
  j->lab = xd_calloc(xd_mul_size(j->n, MAX_LABELS), sizeof *j->lab);
  j->nl = xd_calloc(j->n, sizeof *j->nl);
  j->probs = xd_calloc(xd_mul_size(j->n, xd_model_n_outputs(m)), sizeof *j->probs);
  j->out = xd_calloc(xd_mul_size(j->n, MAX_LABELS), sizeof *j->out);
  if (!j->text || !j->len || !j->words || !j->lab || !j->nl || !j->probs || !j->out)
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  const json_t *list = json_object_get(body, "instances");
  for (size_t i = 0; i < j->n; i++) {
    const json_t *v = list && !json_is_null(list) ? json_array_get(list, i) : json_object_get(body, "instance");
    j->text[i] = json_string_value(v);
    j->len[i] = json_string_length(v);
    if ((rc = xd_text_words_split(j->text[i], j->len[i], j->bow, &j->words[i], err)) != XD_OK) {
      if (list && !json_is_null(list)) snprintf(err->field, sizeof err->field, "instances[%zu]", i);
      return rc;
    }
  }
  return XD_OK;
}

/* "mask_string": null (remove the words) or a short string. */
static int decode_mask(const json_t *body, tlime_job_t *j, xd_error_t *err) {
  json_t *ms = json_object_get(body, "mask_string");
  if (!ms || json_is_null(ms)) return XD_OK;
  if (!json_is_string(ms)) return xd_error_set(err, XD_EINVAL, "mask_string", "must be a string (or null: remove the words)");
  if (json_string_length(ms) > 256 || strlen(json_string_value(ms)) != json_string_length(ms))
    return xd_error_set(err, XD_EINVAL, "mask_string", "must be at most 256 bytes, without NUL");
  if (!(j->mask = xd_strdup(json_string_value(ms)))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->o.mask = j->mask;
  return XD_OK;
}

int xd_lime_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model",       "instances",         "instance", "num_samples", "num_features",
                                     "labels",      "top_labels",        "kernel_width", "feature_selection",
                                     "bow",         "mask_string",       "repeats",  "seed",        "timeout_ms", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  tlime_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->body = json_incref((json_t *)body);
  j->o = (xd_text_lime_opts_t){.num_samples = 5000, .num_features = 10, .kernel_width = 25,
                               .feature_selection = XD_LIME_FS_AUTO, .repeats = 1};
  j->bow = 1;
  j->top_labels = 1;
  int fs = XD_LIME_FS_AUTO;
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "num_samples", 1, lim->max_samples, &j->o.num_samples, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "num_features", 1, 1000000, &j->o.num_features, err)) != XD_OK ||
      (rc = decode_labels(m, body, j, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "top_labels", 1, xd_model_n_outputs(m) < MAX_LABELS ? xd_model_n_outputs(m) : MAX_LABELS,
                             &j->top_labels, err)) != XD_OK ||
      (rc = xd_json_opt_double(body, "kernel_width", 1e-300, 1e150, &j->o.kernel_width, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "feature_selection", xd_lime_fs_names, &fs, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "bow", &j->bow, err)) != XD_OK ||
      (rc = xd_json_opt_size(body, "repeats", 1, lim->max_repeats, &j->o.repeats, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  json_t *tl = json_object_get(body, "top_labels");
  if (j->n_labels && tl && !json_is_null(tl)) {
    rc = xd_error_set(err, XD_EINVAL, "top_labels", "give labels or top_labels, not both");
    goto fail;
  }
  j->o.feature_selection = (xd_lime_fs_t)fs;
  if ((rc = decode_mask(body, j, err)) != XD_OK) goto fail;
  if ((rc = decode_texts(api, body, j, (uint64_t)j->o.num_samples * j->o.repeats, "num_samples", err)) != XD_OK)
    goto fail;
  uint64_t cost = (uint64_t)j->n * j->o.num_samples * j->o.repeats;
  /* few texts: each one's perturbed texts in fixed slices over the workers */
  j->slices = 1;
  if (xd_work_request_rows(work, j->n) < SPLIT_TEXTS) {
    size_t N = j->o.num_samples * j->o.repeats, maxd = 0, S = N / SLICE_ROWS;
    for (size_t i = 0; i < j->n; i++) maxd = j->words[i].d > maxd ? j->words[i].d : maxd;
    if (S > 1 && (double)N * (double)maxd * (double)j->n <= (double)SPLIT_CELLS) {
      j->slices = S > MAX_SLICES ? MAX_SLICES : S;
      j->Z = xd_calloc(j->n, sizeof *j->Z);
      j->P = xd_calloc(j->n, sizeof *j->P);
      if (!j->Z || !j->P) {
        rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
        goto fail;
      }
    }
  }
  work->ops = &tlime_ops;
  work->state = j;
  work->n_parts = j->n * j->slices;
  work->cost_rows = cost;
  work->model = j->entry->name;
  return XD_OK;
fail:
  tlime_free(j);
  return rc;
}

/* ---- /explain/shap on text ------------------------------------------------------------- */

/* Text i's target: the given one, or the text's own most probable class. */
static int shap_target(tlime_job_t *j, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  const xd_model_t *m = j->entry->model;
  if (j->target[i] != XD_TARGET_PREDICTED) return XD_OK;
  double *p = j->probs + i * xd_model_n_outputs(m);
  int rc = xd_model_predict_text(m, &j->rows[i], 1, p, cancel, err);
  if (rc == XD_OK) j->target[i] = xd_model_argmax(m, p);
  return rc;
}

static int tshap_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  tlime_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  if (j->slices > 1) { /* slice s of text i's coalitions */
    size_t i = part / j->slices, s = part % j->slices, K = xd_model_n_outputs(m);
    if (i >= j->n) return XD_OK;
    size_t N = j->nrows[i], k0 = N * s / j->slices, k1 = N * (s + 1) / j->slices, d = j->words[i].d;
    if (k1 == k0) return XD_OK;
    return xd_text_words_eval(m, &j->words[i], j->text[i], j->len[i], j->Z[i] + k0 * d, k1 - k0, j->mask,
                              j->P[i] + k0 * K, cancel, err);
  }
  size_t i = part;
  if (i >= j->n) return XD_OK;
  int rc = shap_target(j, i, cancel, err);
  if (rc != XD_OK) return rc;
  return xd_text_shap_explain(m, &j->words[i], j->text[i], j->len[i], j->mask, j->method, j->nsamples, j->link,
                              j->o.seed, (size_t)(j->first + i), j->target[i], j->phi[i], &j->expected[i], &j->fx[i], cancel, err);
}

/* Split evaluation: every text's target, plan and coalition rows, before the parts. */
static int tshap_prepare(void *state, const xd_cancel_t *cancel, xd_error_t *err) {
  tlime_job_t *j = state;
  size_t K = xd_model_n_outputs(j->entry->model);
  int rc = XD_OK;
  if (j->slices <= 1) return XD_OK;
  for (size_t i = 0; i < j->n && rc == XD_OK; i++) {
    if ((rc = shap_target(j, i, cancel, err)) != XD_OK ||
        (rc = xd_text_shap_plan(&j->words[i], j->method, j->nsamples, j->o.seed, (size_t)(j->first + i), &j->plans[i], &j->Z[i],
                                &j->nrows[i], err)) != XD_OK)
      break;
    if (!(j->P[i] = xd_malloc(xd_mul_size(j->nrows[i], K) * sizeof **j->P + 1)))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  return rc;
}

static json_t *tshap_encode(void *state, xd_error_t *err) {
  tlime_job_t *j = state;
  for (size_t i = 0; j->slices > 1 && i < j->n; i++) /* split evaluation: the solves, once every slice is in */
    if (xd_text_shap_solve(&j->plans[i], j->P[i], xd_model_n_outputs(j->entry->model), j->target[i], j->link, j->phi[i],
                           &j->expected[i], &j->fx[i], NULL, err) != XD_OK)
      return NULL;
  json_t *o = json_object(), *t = json_array(), *sv = json_array(), *ev = json_array(), *words = json_array();
  int bad = !o || !t || !sv || !ev || !words;
  for (size_t i = 0; !bad && i < j->n; i++) {
    const xd_text_words_t *W = &j->words[i];
    json_t *wl = json_array();
    for (size_t f = 0; wl && f < W->d; f++) {
      json_t *wj = word_json(j, i, f, 0, 0);
      json_object_del(wj, "weight");
      json_object_del(wj, "feature_index");
      bad |= json_array_append_new(wl, wj);
    }
    bad |= json_array_append_new(words, wl);
    bad |= json_array_append_new(t, json_integer((json_int_t)j->target[i]));
    bad |= json_array_append_new(sv, xd_json_reals(j->phi[i], W->d));
    bad |= json_array_append_new(ev, xd_json_real(xd_shap_link(j->link, j->expected[i])));
  }
  bad |= json_object_set_new(o, "model", json_string(j->entry->name));
  bad |= json_object_set_new(o, "method", json_string(j->method == XD_SHAP_EXACT ? "exact" : "kernel"));
  bad |= json_object_set_new(o, "link", json_string(xd_shap_link_names[j->link]));
  bad |= json_object_set_new(o, "targets", t);
  bad |= xd_json_set_target_names(o, j->entry->model, j->target, j->n) != XD_OK;
  bad |= json_object_set_new(o, "tokens", xd_json_tokens(j->rows, j->n));
  bad |= json_object_set_new(o, "words", words);
  bad |= json_object_set_new(o, "expected_value", ev);
  bad |= json_object_set_new(o, "shap_values", sv);
  bad |= json_object_set_new(o, "mask_string", j->mask ? json_string(j->mask) : json_null());
  bad |= json_object_set_new(o, "seed", xd_explain_seed_json(j->o.seed));
  if (json_array_size(j->warnings)) bad |= json_object_set(o, "warnings", j->warnings);
  if (bad) {
    json_decref(o);
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the response");
    return NULL;
  }
  return o;
}

XD_JSON_RESULT_GUARDED(tshap_encode_checked, tshap_encode)
static void tshap_set_first(void *state, uint64_t first) { ((tlime_job_t *)state)->first = first; }
static const xd_job_ops_t tshap_ops = {.endpoint = "explain_shap",
                                       .run = tshap_run,
                                       .encode = tshap_encode_checked,
                                       .free = tlime_free,
                                       .prepare = tshap_prepare,
                                       .set_first_index = tshap_set_first};

int xd_shap_text_decode(xd_api_t *api, const json_t *body, xd_work_t *work, xd_error_t *err) {
  static const char *const keys[] = {"model", "instances", "instance", "target", "nsamples",  "link", "method",
                                     "mask_string", "bow", "seed", "timeout_ms", NULL};
  static const char *const methods[] = {"auto", "kernel", "exact", NULL};
  const xd_limits_t *lim = xd_api_limits(api);
  int rc = xd_json_check_keys(body, keys, NULL, err);
  if (rc != XD_OK) return rc;
  tlime_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->body = json_incref((json_t *)body);
  j->shap = 1;
  j->bow = 1;
  int method = 0, link = XD_SHAP_LINK_IDENTITY;
  if (!(j->entry = xd_api_model(api, body, err))) {
    rc = err->code;
    goto fail;
  }
  const xd_model_t *m = j->entry->model;
  const json_t *ns = json_object_get(body, "nsamples");
  if (ns && json_is_string(ns) && !strcmp(json_string_value(ns), "auto")) ns = NULL;
  if ((rc = xd_api_timeout(body, &work->timeout_ms, err)) != XD_OK ||
      (ns && (rc = xd_json_opt_size(body, "nsamples", 1, lim->max_nsamples, &j->nsamples, err)) != XD_OK) ||
      (rc = xd_json_opt_enum(body, "method", methods, &method, err)) != XD_OK ||
      (rc = xd_json_opt_enum(body, "link", xd_shap_link_names, &link, err)) != XD_OK ||
      (rc = xd_json_opt_bool(body, "bow", &j->bow, err)) != XD_OK || (rc = decode_mask(body, j, err)) != XD_OK ||
      (rc = xd_explain_seed(body, &j->o.seed, err)) != XD_OK)
    goto fail;
  j->method = method == 2 ? XD_SHAP_EXACT : XD_SHAP_KERNEL;
  j->link = (xd_shap_link_t)link;
  size_t per = j->nsamples ? j->nsamples : 2 * 64 + 2048;
  if ((rc = decode_texts(api, body, j, (uint64_t)per + 2, "nsamples", err)) != XD_OK) goto fail;
  j->target = xd_malloc(j->n * sizeof *j->target);
  j->phi = xd_calloc(j->n, sizeof *j->phi);
  j->expected = xd_calloc(j->n, sizeof *j->expected);
  j->fx = xd_calloc(j->n, sizeof *j->fx);
  if (!j->target || !j->phi || !j->expected || !j->fx) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < j->n; i++) {
    if (j->method == XD_SHAP_EXACT && j->words[i].d > XD_SHAP_EXACT_MAX) {
      rc = xd_error_set(err, XD_EINVAL, "method", "exact Shapley values need at most %d words; instance %zu has %zu",
                        XD_SHAP_EXACT_MAX, i, j->words[i].d);
      goto fail;
    }
    if (!(j->phi[i] = xd_calloc(j->words[i].d, sizeof *j->phi[i]))) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
      goto fail;
    }
  }
  if ((rc = xd_explain_targets(m, body, j->n, j->target, err)) != XD_OK) goto fail;
  /* few texts: each one's coalitions in fixed slices over the workers (the slice count
   * from the coalitions the plan will have: every word varies against the all-hidden
   * background) */
  j->slices = 1;
  if (xd_work_request_rows(work, j->n) < SPLIT_TEXTS) {
    size_t maxr = 0, maxd = 0;
    for (size_t i = 0; i < j->n; i++) {
      size_t d = j->words[i].d, all = d < 40 ? ((size_t)1 << d) : SIZE_MAX, k;
      if (j->method == XD_SHAP_EXACT) k = all;
      else k = d <= 1 ? 0 : (j->nsamples ? j->nsamples : 2 * d + 2048) < all - 2 ? (j->nsamples ? j->nsamples : 2 * d + 2048) : all - 2;
      maxr = k + 2 > maxr ? k + 2 : maxr;
      maxd = d > maxd ? d : maxd;
    }
    size_t S = maxr / SLICE_ROWS;
    if (S > 1 && (double)maxr * (double)maxd * (double)j->n <= (double)SPLIT_CELLS) {
      j->slices = S > MAX_SLICES ? MAX_SLICES : S;
      j->Z = xd_calloc(j->n, sizeof *j->Z);
      j->P = xd_calloc(j->n, sizeof *j->P);
      j->plans = xd_calloc(j->n, sizeof *j->plans);
      j->nrows = xd_calloc(j->n, sizeof *j->nrows);
      if (!j->Z || !j->P || !j->plans || !j->nrows) {
        rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
        goto fail;
      }
    }
  }
  work->ops = &tshap_ops;
  work->state = j;
  work->n_parts = j->n * j->slices;
  work->cost_rows = (uint64_t)j->n * (per + 2);
  work->model = j->entry->name;
  return XD_OK;
fail:
  tlime_free(j);
  return rc;
}

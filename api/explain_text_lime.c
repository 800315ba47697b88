/* explain_text_lime.c — /explain/lime on text models (API.md Part 2; lime_text's
 * semantics, core/text_lime.h). One part per text; each part evaluates all its perturbed
 * texts in large batches. */
#include <stdio.h>
#include <string.h>

#include "api/alloc.h"
#include "api/explain_common.h"
#include "api/explain_text.h"
#include "api/graph_rows.h"
#include "core/alloc.h"
#include "core/text_lime.h"

#define MAX_LABELS 64

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
} tlime_job_t;

static int tlime_run(void *state, size_t i, const xd_cancel_t *cancel, xd_error_t *err) {
  tlime_job_t *j = state;
  const xd_model_t *m = j->entry->model;
  if (i >= j->n) return XD_OK;
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
  return xd_text_lime_explain(m, &j->words[i], j->text[i], j->len[i], &j->o, lab, L, j->probs + i * K, out, cancel,
                              err);
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
  xd_free(j);
}

XD_JSON_RESULT_GUARDED(tlime_encode_checked, tlime_encode)
static const xd_job_ops_t tlime_ops = {"explain_lime", tlime_run, tlime_encode_checked, tlime_free};

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
  json_t *ms = json_object_get(body, "mask_string");
  if (ms && !json_is_null(ms)) {
    if (!json_is_string(ms)) {
      rc = xd_error_set(err, XD_EINVAL, "mask_string", "must be a string (or null: remove the words)");
      goto fail;
    }
    if (json_string_length(ms) > 256 || strlen(json_string_value(ms)) != json_string_length(ms)) {
      rc = xd_error_set(err, XD_EINVAL, "mask_string", "must be at most 256 bytes, without NUL");
      goto fail;
    }
    if (!(j->mask = xd_strdup(json_string_value(ms)))) goto nomem;
    j->o.mask = j->mask;
  }
  if (!(j->warnings = json_array())) goto nomem;
  if ((rc = xd_json_text_rows(m, body, 1, lim->max_rows, &j->rows, &j->n, j->warnings, err)) != XD_OK) goto fail;
  uint64_t cost = (uint64_t)j->n * j->o.num_samples * j->o.repeats;
  if (cost > lim->max_work_rows) {
    rc = xd_error_set(err, XD_ETOOBIG, "num_samples", "%zu texts x %zu samples x %zu repeats exceed the limit of %llu "
                      "model rows", j->n, j->o.num_samples, j->o.repeats, (unsigned long long)lim->max_work_rows);
    goto fail;
  }
  j->text = xd_calloc(j->n, sizeof *j->text);
  j->len = xd_calloc(j->n, sizeof *j->len);
  j->words = xd_calloc(j->n, sizeof *j->words);
  j->lab = xd_calloc(xd_mul_size(j->n, MAX_LABELS), sizeof *j->lab);
  j->nl = xd_calloc(j->n, sizeof *j->nl);
  j->probs = xd_calloc(xd_mul_size(j->n, xd_model_n_outputs(m)), sizeof *j->probs);
  j->out = xd_calloc(xd_mul_size(j->n, MAX_LABELS), sizeof *j->out);
  if (!j->text || !j->len || !j->words || !j->lab || !j->nl || !j->probs || !j->out) goto nomem;
  const json_t *list = json_object_get(body, "instances");
  for (size_t i = 0; i < j->n; i++) {
    const json_t *v = list && !json_is_null(list) ? json_array_get(list, i) : json_object_get(body, "instance");
    j->text[i] = json_string_value(v);
    j->len[i] = json_string_length(v);
    if ((rc = xd_text_words_split(j->text[i], j->len[i], j->bow, &j->words[i], err)) != XD_OK) {
      if (list && !json_is_null(list)) snprintf(err->field, sizeof err->field, "instances[%zu]", i);
      goto fail;
    }
  }
  work->ops = &tlime_ops;
  work->state = j;
  work->n_parts = j->n;
  work->cost_rows = cost;
  work->model = j->entry->name;
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
fail:
  tlime_free(j);
  return rc;
}

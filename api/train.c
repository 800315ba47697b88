/* train.c — POST /models/{name}/train (admin): train a dense model from a CSV on the
 * worker pool and store it like an upload (see docs/training.md).
 *
 * Bodies: JSON {"csv": "<text>", "target": ..., options} or {"columns": [...],
 * "rows": [[...]], "target": ..., options}, or raw CSV (Content-Type: text/csv) with the
 * options in the query string (hidden=16,8&epochs=100). The answer carries the training
 * and validation metrics and the stored model's name, version and sha256. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/bundle.h"
#include "api/bundle_write.h"
#include "api/endpoints.h"
#include "api/alloc.h"
#include "api/store.h"
#include "api/utf8.h"
#include "core/alloc.h"
#include "core/sha256.h"
#include "core/train.h"

typedef struct train_job {
  xd_api_t *api;
  char name[XD_MODEL_NAME_MAX + 1];
  char target[256];
  xd_csv_t csv;
  xd_train_options_t opt;
  xd_model_spec_t spec;
  xd_train_result_t res;
  int diagnostics; /* "diagnostics": true adds the loss per epoch to the answer */
} train_job_t;

static int train_run(void *state, size_t part, const xd_cancel_t *cancel, xd_error_t *err) {
  train_job_t *j = state;
  (void)part;
  return xd_train_csv(&j->csv, &j->opt, cancel, &j->spec, &j->res, err);
}

/* Builds the model, writes its bundle atomically into the model folder and serves it. */
static json_t *train_encode(void *state, xd_error_t *err) {
  train_job_t *j = state;
  xd_model_t *m = NULL;
  char *text = NULL;
  if (xd_model_new(&j->spec, &m, err) != XD_OK) return NULL;
  const char *dir = xd_api_config(j->api)->model_dir;
  if (!dir) {
    xd_model_free(m);
    xd_error_set(err, XD_EPERM, NULL, "the server has no model folder to store the model in");
    return NULL;
  }
  /* The bundle stores the model's whole background (xd_train_csv already capped it). */
  text = xd_bundle_encode(m, (size_t)-1, err);
  if (!text) {
    xd_model_free(m);
    return NULL;
  }
  /* Stored like an upload (same version sequence, same lock, same file layout). */
  /* xd_json_loadb: jansson may return a document missing a member when an allocation
   * fails while parsing, and this one is stored. */
  int oom = 0;
  json_t *doc = xd_json_loadb(text, strlen(text), 0, NULL, &oom);
  xd_free(text);
  text = NULL;
  if (!doc) {
    xd_model_free(m);
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding the model");
    return NULL;
  }
  /* The held-out figures ride in the bundle as "x-metrics", which GET /models/{name}
   * shows (api/service.c): they stay with the model across restarts. */
  const xd_train_result_t *rr = &j->res;
  int rcls = rr->task == XD_TASK_CLASSIFICATION;
  json_t *xm = json_pack("{s:s, s:s, s:I, s:I}", "source", "POST /models/{name}/train", "metric",
                         rcls ? "accuracy" : "r2", "train_rows", (json_int_t)rr->n_train, "validation_rows",
                         (json_int_t)rr->n_val);
  if (xm) {
    json_object_set_new(xm, "train", xd_json_real(rr->train_metric));
    json_object_set_new(xm, "validation", xd_json_real(rr->val_metric)); /* null without held-out rows */
    json_object_set_new(xm, "epochs", json_integer((json_int_t)rr->epochs));
    json_object_set_new(xm, "best_epoch", rr->best_epoch ? json_integer((json_int_t)rr->best_epoch) : json_null());
    json_object_set_new(doc, "x-metrics", xm);
  }
  xd_store_stored_t st;
  int rc = xd_store_put(j->api, j->name, doc, NULL, 0, m, NULL, NULL, &st, err);
  json_decref(doc);
  if (rc != XD_OK) return NULL;
  uint64_t version = st.version;
  const char *sha = st.sha256;
  const xd_train_result_t *r = &j->res;
  int cls = r->task == XD_TASK_CLASSIFICATION;
  json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "name", j->name, "version",
                        (json_int_t)version, "sha256", sha, "task", cls ? "classification" : "regression", "metric",
                        cls ? "accuracy" : "r2", "epochs", (json_int_t)r->epochs, "rows", (json_int_t)r->n_rows,
                        "train_rows", (json_int_t)r->n_train, "validation_rows", (json_int_t)r->n_val);
  if (!o) {
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    return NULL;
  }
  json_object_set_new(o, "train_metric", xd_json_real(r->train_metric));
  json_object_set_new(o, "validation_metric", xd_json_real(r->val_metric)); /* null without validation rows */
  if (j->diagnostics) { /* one value per epoch: only when asked for */
    json_object_set_new(o, "train_loss", xd_json_reals(r->train_loss, r->epochs));
    json_object_set_new(o, "validation_loss", r->val_loss ? xd_json_reals(r->val_loss, r->epochs) : json_null());
  }
  json_object_set_new(o, "best_epoch", r->best_epoch ? json_integer((json_int_t)r->best_epoch) : json_null());
  json_object_set_new(o, "stopped_early", json_boolean(r->best_epoch && r->epochs < j->opt.epochs));
  return o;
}

static void train_free(void *state) {
  train_job_t *j = state;
  if (!j) return;
  xd_csv_deinit(&j->csv);
  xd_model_spec_deinit(&j->spec);
  xd_train_result_deinit(&j->res);
  xd_free(j);
}

/* Any JSON allocation failure while encoding turns the answer into a 500 (api/alloc.h). */
XD_JSON_OOM_GUARDED(train_encode_checked, train_encode)
static const xd_job_ops_t train_ops = {
    .endpoint = "train", .run = train_run, .encode = train_encode_checked, .free = train_free};

/* ---- options ---------------------------------------------------------------------------- */

/* Query strings carry every option as text: turn "a=1&hidden=16,8&b=x" into JSON values
 * so that one decoder reads both forms. */
static json_t *query_to_json(const char *q, xd_error_t *err) {
  /* Any JSON allocation that fails below would silently drop an option: watch them all. */
  unsigned long mark = xd_json_oom_mark();
  json_t *o = json_object();
  char buf[2048];
  if (!o) {
    xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    return NULL;
  }
  if (!q) return o;
  if (xd_utf8_valid_prefix(q, strlen(q)) != strlen(q)) { /* jansson would drop such a key silently */
    json_decref(o);
    xd_error_set(err, XD_EINVAL, "query", "the query string is not valid UTF-8");
    return NULL;
  }
  if (strlen(q) >= sizeof buf) {
    json_decref(o);
    xd_error_set(err, XD_EINVAL, "query", "the query string is too long");
    return NULL;
  }
  strcpy(buf, q);
  char *save = NULL;
  for (char *kv = strtok_r(buf, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
    char *eq = strchr(kv, '=');
    const char *v = eq ? eq + 1 : "";
    if (eq) *eq = '\0';
    json_t *jv;
    char *end;
    if (strcmp(kv, "hidden") == 0) {
      jv = json_array();
      char hb[256];
      snprintf(hb, sizeof hb, "%s", v);
      char *s2 = NULL;
      for (char *t = strtok_r(hb, ",[]", &s2); t; t = strtok_r(NULL, ",[]", &s2)) {
        long x = strtol(t, &end, 10);
        json_array_append_new(jv, *end ? json_string(t) : json_integer(x));
      }
    } else if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
      jv = json_boolean(v[0] == 't');
    } else {
      long long x = strtoll(v, &end, 10);
      if (*v && !*end) {
        jv = json_integer(x);
      } else {
        double d = strtod(v, &end);
        jv = *v && !*end ? json_real(d) : json_string(v);
      }
    }
    json_object_set_new(o, kv, jv ? jv : json_null());
  }
  return xd_json_oom_check(o, mark, err);
}

static int decode_options(const json_t *o, xd_train_options_t *opt, char *target, size_t tcap, xd_error_t *err) {
  int rc;
  json_t *t = json_object_get(o, "target");
  if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) >= tcap)
    return xd_error_set(err, XD_EINVAL, "target", "required: the name of the target column");
  snprintf(target, tcap, "%s", json_string_value(t));
  opt->target = target;
  static const char *const tasks[] = {"classification", "regression", NULL};
  int task = -1;
  if ((rc = xd_json_opt_enum(o, "task", tasks, &task, err)) != XD_OK) return rc;
  opt->task = task < 0 ? XD_TRAIN_TASK_AUTO : task == 0 ? XD_TASK_CLASSIFICATION : XD_TASK_REGRESSION;
  json_t *h = json_object_get(o, "hidden");
  if (h) {
    if (!json_is_array(h) || json_array_size(h) > XD_TRAIN_MAX_HIDDEN)
      return xd_error_set(err, XD_EINVAL, "hidden", "must be a list of at most %d layer sizes", XD_TRAIN_MAX_HIDDEN);
    opt->n_hidden = json_array_size(h);
    for (size_t i = 0; i < opt->n_hidden; i++) {
      json_t *x = json_array_get(h, i);
      char f[32];
      snprintf(f, sizeof f, "hidden[%zu]", i);
      if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 4096)
        return xd_error_set(err, XD_EINVAL, f, "a layer size is an integer between 1 and 4096");
      opt->hidden[i] = (size_t)json_integer_value(x);
    }
  }
  json_t *a = json_object_get(o, "activation");
  if (a && (!json_is_string(a) || xd_act_parse(json_string_value(a), &opt->activation) != 0 ||
            opt->activation == XD_ACT_SOFTMAX))
    return xd_error_set(err, XD_EINVAL, "activation", "must be one of relu, leaky_relu, tanh, sigmoid, softplus, gelu, identity");
  if ((rc = xd_json_opt_size(o, "epochs", 1, 10000, &opt->epochs, err)) != XD_OK ||
      (rc = xd_json_opt_size(o, "batch_size", 1, 65536, &opt->batch_size, err)) != XD_OK ||
      (rc = xd_json_opt_double(o, "learning_rate", 1e-8, 10, &opt->learning_rate, err)) != XD_OK ||
      (rc = xd_json_opt_double(o, "l2", 0, 100, &opt->l2, err)) != XD_OK ||
      (rc = xd_json_opt_double(o, "validation_split", 0, 0.9, &opt->validation_split, err)) != XD_OK ||
      (rc = xd_json_opt_size(o, "patience", 0, 10000, &opt->patience, err)) != XD_OK ||
      (rc = xd_json_opt_seed(o, "seed", &opt->seed, NULL, err)) != XD_OK)
    return rc;
  return xd_train_options_check(opt, err);
}

/* {"columns": [...], "rows": [[...]]} -> a CSV table of strings. */
static int table_from_json(const json_t *cols, const json_t *rows, size_t max_rows, xd_csv_t *csv, xd_error_t *err) {
  memset(csv, 0, sizeof *csv);
  if (!json_is_array(cols) || json_array_size(cols) == 0 || json_array_size(cols) > 1024)
    return xd_error_set(err, XD_EINVAL, "columns", "must be a list of 1 to 1024 column names");
  if (!json_is_array(rows) || json_array_size(rows) == 0)
    return xd_error_set(err, XD_EINVAL, "rows", "must be a non-empty list of rows");
  if (json_array_size(rows) > max_rows)
    return xd_error_set(err, XD_ETOOBIG, "rows", "at most %zu rows", max_rows);
  size_t nc = json_array_size(cols), nr = json_array_size(rows);
  csv->header = xd_calloc(nc, sizeof *csv->header);
  csv->rows = xd_calloc(nr, sizeof *csv->rows);
  if (!csv->header || !csv->rows) goto nomem;
  csv->n_cols = nc;
  for (size_t c = 0; c < nc; c++) {
    json_t *v = json_array_get(cols, c);
    char f[32];
    snprintf(f, sizeof f, "columns[%zu]", c);
    if (!json_is_string(v)) {
      xd_csv_deinit(csv);
      return xd_error_set(err, XD_EINVAL, f, "a column name is a string");
    }
    if (!(csv->header[c] = xd_strdup(json_string_value(v)))) goto nomem;
  }
  for (size_t r = 0; r < nr; r++) {
    json_t *row = json_array_get(rows, r);
    char f[48];
    snprintf(f, sizeof f, "rows[%zu]", r);
    if (!json_is_array(row) || json_array_size(row) != nc) {
      xd_csv_deinit(csv);
      return xd_error_set(err, XD_EINVAL, f, "every row has one value per column (%zu)", nc);
    }
    if (!(csv->rows[r] = xd_calloc(nc, sizeof(char *)))) goto nomem;
    csv->n_rows = r + 1;
    for (size_t c = 0; c < nc; c++) {
      json_t *v = json_array_get(row, c);
      char num[40];
      const char *s;
      if (json_is_string(v)) {
        s = json_string_value(v);
      } else if (json_is_number(v) && isfinite(json_number_value(v))) {
        snprintf(num, sizeof num, "%.17g", json_number_value(v));
        s = num;
      } else {
        snprintf(f, sizeof f, "rows[%zu][%zu]", r, c);
        xd_csv_deinit(csv);
        return xd_error_set(err, XD_EINVAL, f, "a value is a finite number or a string");
      }
      if (!(csv->rows[r][c] = xd_strdup(s))) goto nomem;
    }
  }
  return XD_OK;
nomem:
  xd_csv_deinit(csv);
  return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
}

static int train_decode(xd_api_t *api, const xd_api_request_t *req, const char *name, xd_work_t *work, xd_error_t *err) {
  if (!xd_model_name_valid(name))
    return xd_error_set(err, XD_EINVAL, "name", "model names match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
  const char *ct = xd_api_header(req, "Content-Type");
  int is_csv = ct && strncasecmp(ct, "text/csv", 8) == 0;
  train_job_t *j = xd_calloc(1, sizeof *j);
  if (!j) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  j->api = api;
  snprintf(j->name, sizeof j->name, "%.64s", name); /* checked valid above */
  xd_train_options_init(&j->opt);
  j->opt.max_rows = xd_api_limits(api)->max_train_rows;
  j->opt.max_background = xd_api_limits(api)->train_background;
  json_t *o = NULL;
  int rc;
  if (is_csv) {
    if (!(o = query_to_json(req->query, err))) {
      rc = err->code;
      goto fail;
    }
    static const char *const keys[] = {"target", "task", "hidden", "activation", "epochs", "batch_size",
                                       "learning_rate", "l2", "validation_split", "seed", "patience", "diagnostics", "timeout_ms", NULL};
    if ((rc = xd_json_check_keys(o, keys, NULL, err)) != XD_OK) goto fail;
    /* Names and categories become JSON strings (the bundle, the answer): UTF-8 only.
     * (A CSV inside a JSON body is UTF-8 already.) */
    size_t ok = xd_utf8_valid_prefix(req->body ? req->body : "", req->body_len);
    if (ok != req->body_len) {
      rc = xd_error_set(err, XD_EINVAL, "csv", "the CSV is not valid UTF-8 (byte %zu)", ok);
      goto fail;
    }
    if ((rc = xd_csv_parse(req->body, req->body_len, j->opt.max_rows, &j->csv, err)) != XD_OK) {
      snprintf(err->field, sizeof err->field, "csv");
      goto fail;
    }
  } else {
    json_error_t jerr;
    int oom = 0;
    o = xd_json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr, &oom);
    if (oom) {
      rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading the body");
      goto fail;
    }
    if (!o || !json_is_object(o)) {
      rc = xd_error_set(err, XD_EJSON, NULL, "body is not a JSON object (send CSV as text/csv)");
      goto fail;
    }
    static const char *const keys[] = {"csv", "columns", "rows", "target", "task", "hidden", "activation", "epochs",
                                       "batch_size", "learning_rate", "l2", "validation_split", "seed", "patience", "diagnostics", "timeout_ms", NULL};
    if ((rc = xd_json_check_keys(o, keys, NULL, err)) != XD_OK) goto fail;
    json_t *text = json_object_get(o, "csv");
    if (text && (json_object_get(o, "columns") || json_object_get(o, "rows"))) {
      rc = xd_error_set(err, XD_EINVAL, "csv", "give csv, or columns and rows, not both");
      goto fail;
    }
    if (text) {
      if (!json_is_string(text)) {
        rc = xd_error_set(err, XD_EINVAL, "csv", "must be the CSV text, header row first");
        goto fail;
      }
      if ((rc = xd_csv_parse(json_string_value(text), json_string_length(text), j->opt.max_rows, &j->csv, err)) != XD_OK) {
        snprintf(err->field, sizeof err->field, "csv");
        goto fail;
      }
    } else if ((rc = table_from_json(json_object_get(o, "columns"), json_object_get(o, "rows"), j->opt.max_rows,
                                     &j->csv, err)) != XD_OK) {
      goto fail;
    }
  }
  if ((rc = decode_options(o, &j->opt, j->target, sizeof j->target, err)) != XD_OK ||
      (rc = xd_json_opt_bool(o, "diagnostics", &j->diagnostics, err)) != XD_OK)
    goto fail;
  if ((rc = xd_api_timeout(o, &work->timeout_ms, err)) != XD_OK) goto fail;
  json_decref(o);
  work->ops = &train_ops;
  work->state = j;
  work->n_parts = 1;
  work->cost_rows = (uint64_t)j->csv.n_rows * j->opt.epochs;
  work->model = j->name;
  return XD_OK;
fail:
  if (err) { /* the query string is raw bytes, and errors quote its names */
    xd_utf8_sanitize(err->text);
    xd_utf8_sanitize(err->field);
  }
  json_decref(o);
  train_free(j);
  return rc;
}

xd_api_outcome_t xd_train_answer(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                 xd_api_response_t *resp, xd_work_t *work) {
  char name[XD_MODEL_NAME_MAX + 2]; /* an over-long name stays over-long: the name check refuses it */
  xd_route_arg_copy(args->name, args->name_len, name, sizeof name);
  xd_error_t err;
  xd_error_clear(&err);
  if (train_decode(api, req, name, work, &err) == XD_OK) return XD_API_QUEUE;
  xd_api_error(&err, resp);
  return XD_API_RESPOND;
}

/* bundle_trees.c — XGBoost JSON/UBJSON models and explaind's node arrays -> xd_trees_spec_t
 * (see bundle_trees.h; formats in docs/trees.md). */
#include "api/bundle_trees.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/alloc.h"
#include "api/bundle_limits.h"
#include "api/files.h"
#include "api/json.h"
#include "api/ubjson.h"
#include "core/alloc.h"
#include "core/trees.h"

/* ---- objectives: the one table where an XGBoost objective's meaning is decided -------- */

enum { BASE_AS_IS = 0, BASE_LOGIT, BASE_LOG };
enum { TASK_REG = 1, TASK_CLS = 2, TASK_ANY = 3 };

static const struct objective {
  const char *name;
  xd_trees_link_t link; /* margins -> outputs */
  int base;             /* how base_score (stored as the objective's output) becomes a margin */
  int tasks;
} objectives[] = {
    {"binary:logistic", XD_TREES_SIGMOID, BASE_LOGIT, TASK_CLS},
    /* the margin is the log-odds, served as probabilities through the sigmoid; its
     * base_score is a margin already (XGBoost 1.7 does not transform it) */
    {"binary:logitraw", XD_TREES_SIGMOID, BASE_AS_IS, TASK_CLS},
    {"binary:hinge", XD_TREES_HINGE, BASE_AS_IS, TASK_CLS},
    {"multi:softprob", XD_TREES_SOFTMAX, BASE_AS_IS, TASK_CLS},
    /* XGBoost's predict gives the class index; probabilities are the softmax */
    {"multi:softmax", XD_TREES_SOFTMAX, BASE_AS_IS, TASK_CLS},
    {"reg:logistic", XD_TREES_SIGMOID, BASE_LOGIT, TASK_ANY},
    {"reg:squarederror", XD_TREES_IDENTITY, BASE_AS_IS, TASK_REG},
    {"reg:linear", XD_TREES_IDENTITY, BASE_AS_IS, TASK_REG},
    {"reg:pseudohubererror", XD_TREES_IDENTITY, BASE_AS_IS, TASK_REG},
    {"reg:absoluteerror", XD_TREES_IDENTITY, BASE_AS_IS, TASK_REG},
    {"reg:squaredlogerror", XD_TREES_IDENTITY, BASE_AS_IS, TASK_REG},
    {"count:poisson", XD_TREES_EXP, BASE_LOG, TASK_REG},
    {"reg:gamma", XD_TREES_EXP, BASE_LOG, TASK_REG},
    {"reg:tweedie", XD_TREES_EXP, BASE_LOG, TASK_REG},
    {NULL, 0, 0, 0},
};

/* ---- small readers ----------------------------------------------------------------------- */

static int ferr(xd_error_t *err, const char *field, const char *fmt, const char *a) {
  return xd_error_set(err, XD_EFORMAT, field, fmt, a);
}

/* Member key of obj as an array of exactly n values (n == SIZE_MAX: any length, *n_out). */
static const json_t *get_array(const json_t *obj, const char *key, size_t n, const char *prefix, int required,
                               xd_error_t *err, int *rc) {
  char f[XD_ERROR_FIELD_MAX];
  snprintf(f, sizeof f, "%s.%s", prefix, key);
  const json_t *a = json_object_get(obj, key);
  *rc = XD_OK;
  if (!a) {
    if (required) *rc = ferr(err, f, "missing array '%s'", key);
    return NULL;
  }
  if (!json_is_array(a)) {
    *rc = ferr(err, f, "'%s' must be an array", key);
    return NULL;
  }
  if (n != SIZE_MAX && json_array_size(a) != n) {
    *rc = xd_error_set(err, XD_EFORMAT, f, "expected %zu values (one per node), got %zu", n, json_array_size(a));
    return NULL;
  }
  return a;
}

/* Element i of a as a double (null -> NaN when allow_null). */
static int num_at(const json_t *a, size_t i, int allow_null, const char *prefix, const char *key, double *out,
                  xd_error_t *err) {
  const json_t *v = json_array_get(a, i);
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return XD_OK;
  }
  if (allow_null && json_is_null(v)) {
    *out = NAN;
    return XD_OK;
  }
  char f[XD_ERROR_FIELD_MAX];
  snprintf(f, sizeof f, "%s.%s[%zu]", prefix, key, i);
  return xd_error_set(err, XD_EFORMAT, f, "must be a number");
}

/* Element i as an integer in [lo, hi]. */
static int int_at(const json_t *a, size_t i, long long lo, long long hi, const char *prefix, const char *key,
                  long long *out, xd_error_t *err) {
  const json_t *v = json_array_get(a, i);
  char f[XD_ERROR_FIELD_MAX];
  if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi) {
    *out = json_integer_value(v);
    return XD_OK;
  }
  if (json_is_true(v) || json_is_false(v)) { /* default_left as booleans */
    *out = json_is_true(v);
    if (*out >= lo && *out <= hi) return XD_OK;
  }
  snprintf(f, sizeof f, "%s.%s[%zu]", prefix, key, i);
  return xd_error_set(err, XD_EFORMAT, f, "must be an integer between %lld and %lld", lo, hi);
}

/* A number stored as a string ("5E-1", or "[5E-1]" in newer XGBoost) or as a number. */
static int str_number(const json_t *v, const char *field, double *out, xd_error_t *err) {
  if (json_is_number(v)) {
    *out = json_number_value(v);
    return XD_OK;
  }
  if (json_is_string(v)) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", json_string_value(v));
    char *s = buf, *end;
    if (*s == '[') s++;
    size_t l = strlen(s);
    if (l && s[l - 1] == ']') s[--l] = 0;
    double x = strtod(s, &end);
    if (end != s && *end == 0 && isfinite(x)) {
      *out = x;
      return XD_OK;
    }
  }
  return xd_error_set(err, XD_EFORMAT, field, "must be a finite number (or a string holding one)");
}

/* ---- one tree's node arrays (shared by both formats) -------------------------------------- */

/* Reads node arrays of tree object o (prefix "trees[i]") with key names of the format:
 * k_left, k_right, k_feat, k_thr, k_dflt, k_cover, k_gain; leaves have left == -1. For
 * leaf_width > 1 the values come from "value" as rows. The node count is the length of
 * the left array. */
typedef struct keys {
  const char *left, *right, *feat, *thr, *dflt, *cover, *gain, *value;
} keys_t;

static int read_tree(const json_t *o, const char *prefix, const keys_t *K, size_t leaf_width, xd_tree_spec_t *T,
                     xd_error_t *err) {
  int rc;
  if (!json_is_object(o)) return ferr(err, prefix, "a tree must be an object%s", "");
  const json_t *L = get_array(o, K->left, SIZE_MAX, prefix, 1, err, &rc);
  if (!L) return rc;
  size_t n = json_array_size(L);
  char f[XD_ERROR_FIELD_MAX];
  snprintf(f, sizeof f, "%s.%s", prefix, K->left);
  if (n == 0 || n > XD_TREES_MAX_NODES)
    return xd_error_set(err, XD_EFORMAT, f, "a tree has 1 to %u nodes", XD_TREES_MAX_NODES);
  const json_t *R = get_array(o, K->right, n, prefix, 1, err, &rc);
  if (!R) return rc;
  const json_t *F = get_array(o, K->feat, n, prefix, 1, err, &rc);
  if (!F) return rc;
  const json_t *Th = get_array(o, K->thr, n, prefix, 1, err, &rc);
  if (!Th) return rc;
  const json_t *D = get_array(o, K->dflt, n, prefix, 0, err, &rc);
  if (rc) return rc;
  const json_t *C = get_array(o, K->cover, n, prefix, 1, err, &rc);
  if (!C) return rc;
  const json_t *G = get_array(o, K->gain, n, prefix, 0, err, &rc);
  if (rc) return rc;
  const json_t *V = K->value ? get_array(o, K->value, n, prefix, 1, err, &rc) : NULL;
  if (K->value && !V) return rc;
  T->n_nodes = n;
  T->nodes = xd_calloc(n, sizeof *T->nodes);
  T->values = xd_calloc(xd_mul_size(n, leaf_width), sizeof *T->values);
  if (!T->nodes || !T->values) return xd_error_set(err, XD_ENOMEM, prefix, "out of memory");
  for (size_t k = 0; k < n; k++) {
    xd_tree_node_t *nd = &T->nodes[k];
    long long l, r, fe, dl = 0;
    double thr, cov, gain = 0;
    /* child indices: only their type here; range, cycles and sharing are xd_trees_new's
     * to check, which names the node ("trees[3].nodes[17].left") */
    if ((rc = int_at(L, k, -1, INT32_MAX, prefix, K->left, &l, err)) != XD_OK) return rc;
    if ((rc = num_at(C, k, 0, prefix, K->cover, &cov, err)) != XD_OK) return rc;
    nd->cover = cov;
    if (l < 0) { /* leaf: XGBoost keeps the value in split_conditions, ours in "value" */
      nd->feature = -1;
      nd->left = nd->right = -1;
      if (!V) {
        if ((rc = num_at(Th, k, 0, prefix, K->thr, &T->values[k], err)) != XD_OK) return rc;
      } else if (leaf_width == 1) {
        if ((rc = num_at(V, k, 0, prefix, K->value, &T->values[k], err)) != XD_OK) return rc;
      } else {
        const json_t *row = json_array_get(V, k);
        snprintf(f, sizeof f, "%s.%s[%zu]", prefix, K->value, k);
        if (!json_is_array(row) || json_array_size(row) != leaf_width)
          return xd_error_set(err, XD_EFORMAT, f, "expected %zu values (one per output)", leaf_width);
        for (size_t c = 0; c < leaf_width; c++)
          if ((rc = num_at(row, c, 0, f, "", &T->values[k * leaf_width + c], err)) != XD_OK) return rc;
      }
      continue;
    }
    if ((rc = int_at(R, k, -1, INT32_MAX, prefix, K->right, &r, err)) != XD_OK) return rc;
    if ((rc = int_at(F, k, 0, XD_BUNDLE_MAX_FEATURES, prefix, K->feat, &fe, err)) != XD_OK) return rc;
    if ((rc = num_at(Th, k, 1, prefix, K->thr, &thr, err)) != XD_OK) return rc;
    if (D && (rc = int_at(D, k, 0, 1, prefix, K->dflt, &dl, err)) != XD_OK) return rc;
    if (G && (rc = num_at(G, k, 0, prefix, K->gain, &gain, err)) != XD_OK) return rc;
    nd->left = (int32_t)l;
    nd->right = (int32_t)r;
    nd->feature = (int32_t)fe;
    nd->threshold = thr;
    nd->default_left = (uint8_t)dl;
    nd->gain = gain;
  }
  return XD_OK;
}

/* XGBoost's categorical splits: split_type 1 marks them; categories_nodes[i] owns
 * categories[segments[i] .. + sizes[i]) (the categories that go right). */
static int read_categories(const json_t *o, const char *prefix, xd_tree_spec_t *T, xd_error_t *err) {
  int rc;
  size_t n = T->n_nodes;
  const json_t *st = get_array(o, "split_type", n, prefix, 0, err, &rc);
  if (rc) return rc;
  const json_t *cats = get_array(o, "categories", SIZE_MAX, prefix, 0, err, &rc);
  if (rc) return rc;
  const json_t *cn = get_array(o, "categories_nodes", SIZE_MAX, prefix, 0, err, &rc);
  if (rc) return rc;
  size_t m = cn ? json_array_size(cn) : 0;
  const json_t *cs = get_array(o, "categories_segments", cn ? m : SIZE_MAX, prefix, 0, err, &rc);
  if (rc) return rc;
  const json_t *cz = get_array(o, "categories_sizes", cn ? m : SIZE_MAX, prefix, 0, err, &rc);
  if (rc) return rc;
  size_t nc = cats ? json_array_size(cats) : 0;
  if (m && (!cs || !cz || !cats))
    return ferr(err, prefix, "categorical splits need categories, segments and sizes%s", "");
  if (nc) {
    T->cats = xd_malloc(nc * sizeof *T->cats);
    if (!T->cats) return xd_error_set(err, XD_ENOMEM, prefix, "out of memory");
    T->n_cats = nc;
    for (size_t i = 0; i < nc; i++) {
      long long c;
      if ((rc = int_at(cats, i, 0, UINT32_MAX, prefix, "categories", &c, err)) != XD_OK) return rc;
      T->cats[i] = (uint32_t)c;
    }
  }
  for (size_t i = 0; i < m; i++) {
    long long node, seg, size;
    if ((rc = int_at(cn, i, 0, (long long)n - 1, prefix, "categories_nodes", &node, err)) != XD_OK ||
        (rc = int_at(cs, i, 0, (long long)nc, prefix, "categories_segments", &seg, err)) != XD_OK ||
        (rc = int_at(cz, i, 0, (long long)nc - seg, prefix, "categories_sizes", &size, err)) != XD_OK)
      return rc;
    xd_tree_node_t *nd = &T->nodes[node];
    nd->categorical = 1;
    nd->cat_off = (uint32_t)seg;
    nd->cat_len = (uint32_t)size;
  }
  for (size_t k = 0; st && k < n; k++) {
    long long t;
    if ((rc = int_at(st, k, 0, 1, prefix, "split_type", &t, err)) != XD_OK) return rc;
    if (t == 1 && T->nodes[k].feature >= 0 && !T->nodes[k].categorical) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "%s.split_type[%zu]", prefix, k);
      return xd_error_set(err, XD_EFORMAT, f, "categorical split without a category set");
    }
  }
  return XD_OK;
}

/* explaind's categorical splits (optional, per tree): "categories" has one entry per node,
 * null or [] for a numeric split, else the category values of the split's set;
 * "categories_left" (0/1 per node, default 0) says the set goes left rather than right. */
static int read_node_categories(const json_t *o, const char *prefix, xd_tree_spec_t *T, xd_error_t *err) {
  int rc;
  size_t n = T->n_nodes;
  const json_t *C = get_array(o, "categories", n, prefix, 0, err, &rc);
  if (rc || !C) return rc;
  const json_t *CL = get_array(o, "categories_left", n, prefix, 0, err, &rc);
  if (rc) return rc;
  size_t total = 0;
  char f[XD_ERROR_FIELD_MAX];
  for (size_t k = 0; k < n; k++) {
    const json_t *c = json_array_get(C, k);
    snprintf(f, sizeof f, "%s.categories[%zu]", prefix, k);
    if (!json_is_null(c) && !json_is_array(c)) return ferr(err, f, "must be null or a list of category values%s", "");
    total += json_is_array(c) ? json_array_size(c) : 0;
  }
  T->cats = xd_malloc((total ? total : 1) * sizeof *T->cats);
  if (!T->cats) return xd_error_set(err, XD_ENOMEM, prefix, "out of memory");
  for (size_t k = 0; k < n; k++) {
    const json_t *c = json_array_get(C, k);
    if (!json_is_array(c) || json_array_size(c) == 0 || T->nodes[k].feature < 0) continue;
    snprintf(f, sizeof f, "%s.categories[%zu]", prefix, k);
    xd_tree_node_t *nd = &T->nodes[k];
    nd->categorical = 1;
    nd->cat_off = (uint32_t)T->n_cats;
    nd->cat_len = (uint32_t)json_array_size(c);
    for (size_t q = 0; q < json_array_size(c); q++) {
      long long v;
      if ((rc = int_at(c, q, 0, UINT32_MAX, f, "", &v, err)) != XD_OK) return rc;
      T->cats[T->n_cats++] = (uint32_t)v;
    }
    long long left = 0;
    if (CL && (rc = int_at(CL, k, 0, 1, prefix, "categories_left", &left, err)) != XD_OK) return rc;
    nd->set_left = (uint8_t)left;
  }
  return XD_OK;
}

/* ---- XGBoost ----------------------------------------------------------------------------- */

/* names (may be NULL): the bundle's features, checked against the booster's own names
 * when it has them (a DataFrame's columns), so that a reordered bundle is caught. */
static int xgb_decode(const json_t *root, size_t n_features, const xd_feature_t *names, size_t n_classes,
                      xd_trees_spec_t *s, xd_error_t *err) {
  int rc;
  const json_t *learner = json_object_get(root, "learner");
  if (!json_is_object(learner))
    return ferr(err, "trees.xgboost.learner", "an XGBoost model has a 'learner' object%s", "");
  const json_t *obj = json_object_get(json_object_get(learner, "objective"), "name");
  if (!json_is_string(obj)) return ferr(err, "trees.xgboost.learner.objective", "missing objective name%s", "");
  const struct objective *ob = objectives;
  while (ob->name && strcmp(ob->name, json_string_value(obj)) != 0) ob++;
  if (!ob->name)
    return xd_error_set(err, XD_EFORMAT, "trees.xgboost.learner.objective", "objective '%.60s' is not supported",
                        json_string_value(obj));
  int cls = n_classes > 0;
  if (!(ob->tasks & (cls ? TASK_CLS : TASK_REG)))
    return xd_error_set(err, XD_EFORMAT, "task", "objective '%s' does not fit a %s bundle", ob->name,
                        cls ? "classification" : "regression");
  const json_t *mp = json_object_get(learner, "learner_model_param");
  double base_score = 0.5, num_class = 0, num_feature = 0;
  if (!json_is_object(mp)) return ferr(err, "trees.xgboost.learner.learner_model_param", "missing%s", "");
  if ((rc = str_number(json_object_get(mp, "base_score"), "trees.xgboost.learner.learner_model_param.base_score",
                       &base_score, err)) != XD_OK ||
      (rc = str_number(json_object_get(mp, "num_class"), "trees.xgboost.learner.learner_model_param.num_class",
                       &num_class, err)) != XD_OK ||
      (rc = str_number(json_object_get(mp, "num_feature"), "trees.xgboost.learner.learner_model_param.num_feature",
                       &num_feature, err)) != XD_OK)
    return rc;
  if (num_feature != (double)n_features)
    return xd_error_set(err, XD_EFORMAT, "trees.xgboost.learner.learner_model_param.num_feature",
                        "the booster was trained on %.0f features, the bundle names %zu", num_feature, n_features);
  const json_t *fn = json_object_get(learner, "feature_names");
  if (names && json_is_array(fn) && json_array_size(fn) == n_features)
    for (size_t j = 0; j < n_features; j++) {
      const json_t *v = json_array_get(fn, j);
      if (json_is_string(v) && strcmp(json_string_value(v), names[j].name) != 0) {
        char f[XD_ERROR_FIELD_MAX];
        snprintf(f, sizeof f, "trees.xgboost.learner.feature_names[%zu]", j);
        return xd_error_set(err, XD_EFORMAT, f, "the booster's feature %zu is '%.80s', the bundle's '%.80s'", j,
                            json_string_value(v), names[j].name);
      }
    }
  if (!(num_class >= 0 && num_class <= XD_TREES_MAX_GROUPS))
    return ferr(err, "trees.xgboost.learner.learner_model_param.num_class", "out of range%s", "");
  size_t G = num_class > 1 ? (size_t)num_class : 1;
  const json_t *gb = json_object_get(learner, "gradient_booster");
  const json_t *gbn = json_object_get(gb, "name");
  if (!json_is_string(gbn) || strcmp(json_string_value(gbn), "gbtree") != 0)
    return xd_error_set(err, XD_EFORMAT, "trees.xgboost.learner.gradient_booster.name",
                        "booster '%.40s' is not supported (gbtree only)",
                        json_is_string(gbn) ? json_string_value(gbn) : "?");
  const json_t *model = json_object_get(gb, "model");
  const json_t *slv = json_object_get(json_object_get(model, "gbtree_model_param"), "size_leaf_vector");
  double leaf_vector = 0;
  if (slv && (str_number(slv, "trees.xgboost.learner.gradient_booster.model.gbtree_model_param.size_leaf_vector",
                         &leaf_vector, err) != XD_OK ||
              leaf_vector != 0))
    return ferr(err, "trees.xgboost.learner.gradient_booster.model.gbtree_model_param.size_leaf_vector",
                "vector leaves (multi-target trees) are not supported%s", "");
  const json_t *trees = json_object_get(model, "trees"), *info = json_object_get(model, "tree_info");
  if (!json_is_array(trees) || json_array_size(trees) == 0 || json_array_size(trees) > XD_TREES_MAX_TREES)
    return xd_error_set(err, XD_EFORMAT, "trees.xgboost.learner.gradient_booster.model.trees", "expected 1 to %d trees",
                        XD_TREES_MAX_TREES);
  size_t nt = json_array_size(trees);
  if (!json_is_array(info) || json_array_size(info) != nt)
    return ferr(err, "trees.xgboost.learner.gradient_booster.model.tree_info", "expected one group per tree%s", "");
  double base = base_score;
  if (ob->base == BASE_LOGIT) {
    if (!(base_score > 0 && base_score < 1))
      return ferr(err, "trees.xgboost.learner.learner_model_param.base_score", "must be in (0, 1) for this objective%s",
                  "");
    base = log(base_score / (1 - base_score));
  } else if (ob->base == BASE_LOG) {
    if (!(base_score > 0))
      return ferr(err, "trees.xgboost.learner.learner_model_param.base_score", "must be positive for this objective%s",
                  "");
    base = log(base_score);
  }
  s->n_groups = G;
  s->leaf_width = 1;
  s->scale = 1;
  s->link = ob->link;
  s->split = XD_TREES_LT_F32;
  snprintf(s->source, sizeof s->source, "xgboost:%s", ob->name);
  s->base = xd_malloc(G * sizeof *s->base);
  s->trees = xd_calloc(nt, sizeof *s->trees);
  if (!s->base || !s->trees) return xd_error_set(err, XD_ENOMEM, "trees", "out of memory");
  for (size_t g = 0; g < G; g++) s->base[g] = base;
  static const keys_t K = {"left_children", "right_children", "split_indices", "split_conditions",
                           "default_left",  "sum_hessian",    "loss_changes",  NULL};
  for (size_t i = 0; i < nt; i++) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "trees[%zu]", i);
    s->n_trees = i + 1;
    xd_tree_spec_t *T = &s->trees[i];
    long long g;
    if ((rc = int_at(info, i, 0, (long long)G - 1, "trees.xgboost", "tree_info", &g, err)) != XD_OK) return rc;
    T->group = (size_t)g;
    const json_t *o = json_array_get(trees, i);
    if ((rc = read_tree(o, prefix, &K, 1, T, err)) != XD_OK) return rc;
    if ((rc = read_categories(o, prefix, T, err)) != XD_OK) return rc;
  }
  return XD_OK;
}

static int xgb_bytes(const void *data, size_t len, size_t n_features, const xd_feature_t *names, size_t n_classes,
                     xd_trees_spec_t *spec, xd_error_t *err) {
  json_t *root = NULL;
  int rc;
  memset(spec, 0, sizeof *spec);
  if (xd_ubjson_sniff(data, len)) {
    if ((rc = xd_ubjson_decode(data, len, &root, err)) != XD_OK) {
      xd_error_prefix_field(err, "trees.xgboost");
      return rc;
    }
  } else {
    char *clean = NULL;
    size_t cl = 0;
    if (xd_json_clean_nonfinite(data, len, &clean, &cl) != XD_OK)
      return xd_error_set(err, XD_ENOMEM, "trees.xgboost", "out of memory");
    json_error_t je;
    int oom = 0;
    root = xd_json_loadb(clean, cl, 0, &je, &oom);
    xd_free(clean);
    if (oom) return xd_error_set(err, XD_ENOMEM, "trees.xgboost", "out of memory");
    if (!root)
      return xd_error_set(err, XD_EFORMAT, "trees.xgboost", "not valid JSON or UBJSON: %s (line %d, column %d)",
                          je.text, je.line, je.column);
  }
  rc = xgb_decode(root, n_features, names, n_classes, spec, err);
  json_decref(root);
  return rc;
}

int xd_bundle_trees_xgboost_bytes(const void *data, size_t len, size_t n_features, size_t n_classes,
                                  xd_trees_spec_t *spec, xd_error_t *err) {
  return xgb_bytes(data, len, n_features, NULL, n_classes, spec, err);
}

/* ---- explaind's node arrays ---------------------------------------------------------------- */

static const char *const link_names[] = {"identity", "sigmoid", "softmax", "exp", "hinge", NULL};
static const char *const split_names[] = {"lt_f32", "le_f32", "le_f64", NULL};

static int nodes_decode(const json_t *v, xd_model_spec_t *ms, xd_trees_spec_t *s, xd_error_t *err) {
  static const char *const keys[] = {"source", "link",  "split", "n_groups", "leaf_width",
                                     "base",   "scale", "trees", NULL};
  int rc;
  if (!json_is_object(v)) return ferr(err, "trees.nodes", "must be an object%s", "");
  const char *key;
  json_t *x;
  json_object_foreach((json_t *)v, key, x) {
    int ok = 0;
    for (const char *const *k = keys; *k && !ok; k++) ok = strcmp(*k, key) == 0;
    if (!ok) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "trees.nodes.%.60s", key);
      return xd_error_set(err, XD_EFORMAT, f, "unknown key '%.60s'", key);
    }
  }
  int link = -1, split = -1;
  const json_t *jl = json_object_get(v, "link"), *js = json_object_get(v, "split");
  for (int i = 0; json_is_string(jl) && link_names[i]; i++)
    if (!strcmp(link_names[i], json_string_value(jl))) link = i;
  for (int i = 0; json_is_string(js) && split_names[i]; i++)
    if (!strcmp(split_names[i], json_string_value(js))) split = i;
  if (link < 0) return ferr(err, "trees.nodes.link", "must be identity, sigmoid, softmax, exp or hinge%s", "");
  if (split < 0) return ferr(err, "trees.nodes.split", "must be lt_f32, le_f32 or le_f64%s", "");
  const json_t *jg = json_object_get(v, "n_groups"), *jw = json_object_get(v, "leaf_width");
  if (!json_is_integer(jg) || json_integer_value(jg) < 1 || json_integer_value(jg) > XD_TREES_MAX_GROUPS)
    return xd_error_set(err, XD_EFORMAT, "trees.nodes.n_groups", "must be an integer from 1 to %d",
                        XD_TREES_MAX_GROUPS);
  size_t G = (size_t)json_integer_value(jg);
  size_t W = 1;
  if (jw) {
    if (!json_is_integer(jw) || (json_integer_value(jw) != 1 && (size_t)json_integer_value(jw) != G))
      return ferr(err, "trees.nodes.leaf_width", "must be 1 or n_groups%s", "");
    W = (size_t)json_integer_value(jw);
  }
  const json_t *jsrc = json_object_get(v, "source");
  snprintf(s->source, sizeof s->source, "%.63s", json_is_string(jsrc) ? json_string_value(jsrc) : "nodes");
  s->n_groups = G;
  s->leaf_width = W;
  s->link = (xd_trees_link_t)link;
  s->split = (xd_trees_split_t)split;
  s->scale = 1;
  const json_t *jsc = json_object_get(v, "scale");
  if (jsc && (!json_is_number(jsc) || !isfinite(s->scale = json_number_value(jsc))))
    return ferr(err, "trees.nodes.scale", "must be a finite number%s", "");
  s->base = xd_calloc(G, sizeof *s->base);
  if (!s->base) return xd_error_set(err, XD_ENOMEM, "trees", "out of memory");
  const json_t *jb = json_object_get(v, "base");
  if (jb) {
    if (!json_is_array(jb) || json_array_size(jb) != G)
      return xd_error_set(err, XD_EFORMAT, "trees.nodes.base", "expected %zu values (one per group)", G);
    for (size_t g = 0; g < G; g++)
      if ((rc = num_at(jb, g, 0, "trees.nodes", "base", &s->base[g], err)) != XD_OK) return rc;
  }
  const json_t *trees = json_object_get(v, "trees");
  if (!json_is_array(trees) || json_array_size(trees) == 0 || json_array_size(trees) > XD_TREES_MAX_TREES)
    return xd_error_set(err, XD_EFORMAT, "trees.nodes.trees", "expected 1 to %d trees", XD_TREES_MAX_TREES);
  size_t nt = json_array_size(trees);
  s->trees = xd_calloc(nt, sizeof *s->trees);
  if (!s->trees) return xd_error_set(err, XD_ENOMEM, "trees", "out of memory");
  static const keys_t K = {"left", "right", "feature", "threshold", "default_left", "cover", "gain", "value"};
  for (size_t i = 0; i < nt; i++) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "trees[%zu]", i);
    s->n_trees = i + 1;
    const json_t *o = json_array_get(trees, i);
    const json_t *grp = json_object_get(o, "group");
    if (grp) {
      if (!json_is_integer(grp) || json_integer_value(grp) < 0 || (size_t)json_integer_value(grp) >= G)
        return xd_error_set(err, XD_EFORMAT, prefix, "group must be an integer below %zu", G);
      s->trees[i].group = (size_t)json_integer_value(grp);
    }
    if ((rc = read_tree(o, prefix, &K, W, &s->trees[i], err)) != XD_OK) return rc;
    if ((rc = read_node_categories(o, prefix, &s->trees[i], err)) != XD_OK) return rc;
  }
  (void)ms;
  return XD_OK;
}

/* ---- the bundle member ------------------------------------------------------------------------ */

int xd_bundle_trees_decode(const json_t *v, const char *dir, xd_model_spec_t *s, xd_error_t *err) {
  int rc;
  if (!json_is_object(v) || json_object_size(v) != 1)
    return ferr(err, "trees", "must be {\"xgboost\": FILE or model} or {\"nodes\": {...}}%s", "");
  s->trees = xd_calloc(1, sizeof *s->trees);
  if (!s->trees) return xd_error_set(err, XD_ENOMEM, "trees", "out of memory");
  size_t n_classes = s->task == XD_TASK_CLASSIFICATION ? s->n_classes : 0;
  const json_t *x = json_object_get(v, "xgboost"), *nodes = json_object_get(v, "nodes");
  if (nodes) return nodes_decode(nodes, s, s->trees, err);
  if (!x) return ferr(err, "trees", "must be {\"xgboost\": FILE or model} or {\"nodes\": {...}}%s", "");
  if (json_is_object(x)) {
    rc = xgb_decode(x, s->n_features, s->features, n_classes, s->trees, err);
    return rc;
  }
  if (!json_is_string(x)) return ferr(err, "trees.xgboost", "must be a file name or an inline model%s", "");
  const char *name = json_string_value(x);
  if (!dir) return ferr(err, "trees.xgboost", "a file is not allowed here: give the model inline%s", "");
  if (!name[0] || name[0] == '/' || strstr(name, ".."))
    return ferr(err, "trees.xgboost", "must be a relative file name inside the model folder%s", "");
  char path[4096], *data = NULL;
  size_t len = 0;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if ((rc = xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, err)) != XD_OK) {
    xd_error_prefix_field(err, "trees.xgboost");
    if (rc == XD_ENOMEM) return rc;
    return err ? (err->code = XD_EFORMAT) : XD_EFORMAT;
  }
  xd_trees_spec_deinit(s->trees);
  rc = xgb_bytes(data, len, s->n_features, s->features, n_classes, s->trees, err);
  xd_free(data);
  return rc;
}

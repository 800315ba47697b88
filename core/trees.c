/* trees.c — tree ensembles: validating a spec into the flat layout, batched margins, the
 * links, and XGBoost's split importances (get_score). TreeSHAP is in treeshap.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/trees_impl.h"

const char *const xd_trees_link_names[] = {"identity", "sigmoid", "softmax", "exp", "hinge", NULL};

void xd_trees_spec_deinit(xd_trees_spec_t *s) {
  if (!s) return;
  if (s->trees)
    for (size_t i = 0; i < s->n_trees; i++) {
      xd_free(s->trees[i].nodes);
      xd_free(s->trees[i].values);
      xd_free(s->trees[i].cats);
    }
  xd_free(s->trees);
  xd_free(s->base);
  memset(s, 0, sizeof *s);
}

void xd_trees_free(xd_trees_t *t) {
  if (!t) return;
  xd_free(t->nodes);
  xd_free(t->walk);
  xd_free(t->is_cat);
  xd_free(t->cfrac);
  xd_free(t->values);
  xd_free(t->mean);
  xd_free(t->root);
  xd_free(t->group);
  xd_free(t->depth);
  xd_free(t->cats);
  xd_free(t->base);
  xd_free(t);
}

size_t xd_trees_n_groups(const xd_trees_t *t) { return t->n_groups; }
size_t xd_trees_n_trees(const xd_trees_t *t) { return t->n_trees; }
size_t xd_trees_max_depth(const xd_trees_t *t) { return t->max_depth; }
xd_trees_link_t xd_trees_link(const xd_trees_t *t) { return t->link; }
const char *xd_trees_source(const xd_trees_t *t) { return t->source; }

/* ---- validation ------------------------------------------------------------------------- */

#define NODE_ERR(i, k, what, ...)                                                       \
  do {                                                                                  \
    char f_[XD_ERROR_FIELD_MAX];                                                        \
    snprintf(f_, sizeof f_, "trees[%zu].nodes[%zu]%s", (size_t)(i), (size_t)(k), what); \
    return xd_error_set(err, XD_EFORMAT, f_, __VA_ARGS__);                              \
  } while (0)

/* One tree: children in range, every node reached at most once from the root (no cycle,
 * no shared child), depth bounded, numbers finite, features in range, categorical sets in
 * range. *depth receives the tree's depth. seen and stack are scratch of n_nodes. */
static int check_tree(const xd_tree_spec_t *T, size_t ti, size_t n_features, size_t width, uint8_t *seen, size_t *stack,
                      size_t *sdepth, size_t *depth, xd_error_t *err) {
  size_t n = T->n_nodes;
  char f[XD_ERROR_FIELD_MAX];
  if (n == 0) {
    snprintf(f, sizeof f, "trees[%zu].nodes", ti);
    return xd_error_set(err, XD_EFORMAT, f, "a tree needs at least one node");
  }
  memset(seen, 0, n);
  size_t sp = 0;
  stack[sp] = 0;
  sdepth[sp++] = 0;
  seen[0] = 1;
  *depth = 0;
  while (sp) {
    size_t k = stack[--sp], dk = sdepth[sp];
    const xd_tree_node_t *nd = &T->nodes[k];
    if (dk > *depth) *depth = dk;
    if (nd->feature < 0) {
      for (size_t c = 0; c < width; c++)
        if (!isfinite(T->values[k * width + c])) NODE_ERR(ti, k, ".value", "leaf value is not a finite number");
      if (!(nd->cover >= 0) || !isfinite(nd->cover)) NODE_ERR(ti, k, ".cover", "cover must be a finite number >= 0");
      continue;
    }
    if ((size_t)nd->feature >= n_features)
      NODE_ERR(ti, k, ".feature", "feature index %d is out of range: the model has %zu features", (int)nd->feature,
               n_features);
    if (nd->categorical) {
      if ((size_t)nd->cat_off > T->n_cats || (size_t)nd->cat_len > T->n_cats - nd->cat_off)
        NODE_ERR(ti, k, ".categories", "category set is out of range");
    } else if (isnan(nd->threshold)) {
      NODE_ERR(ti, k, ".threshold", "threshold is NaN");
    }
    if (!isfinite(nd->cover) || !(nd->cover >= 0)) NODE_ERR(ti, k, ".cover", "cover must be a finite number >= 0");
    if (!isfinite(nd->gain)) NODE_ERR(ti, k, ".gain", "gain is not a finite number");
    if (dk + 1 > XD_TREES_MAX_DEPTH) NODE_ERR(ti, k, "", "tree is deeper than %d levels", XD_TREES_MAX_DEPTH);
    int32_t ch[2] = {nd->left, nd->right};
    for (int s = 0; s < 2; s++) {
      const char *which = s ? ".right" : ".left";
      if (ch[s] < 0 || (size_t)ch[s] >= n)
        NODE_ERR(ti, k, which, "child index %d is out of range (the tree has %zu nodes)", (int)ch[s], n);
      if (ch[s] == 0 || seen[ch[s]])
        NODE_ERR(ti, k, which, "child %d is reached twice: the nodes do not form a tree (a cycle or a shared child)",
                 (int)ch[s]);
      seen[ch[s]] = 1;
      stack[sp] = (size_t)ch[s];
      sdepth[sp++] = dk + 1;
    }
  }
  return XD_OK;
}

/* Cover-weighted mean leaf value below every node (bottom-up over a reverse preorder). */
static void fill_means(xd_trees_t *t, size_t root, size_t *order, size_t *st) {
  size_t w = t->leaf_width, n = 0, sp = 0;
  st[sp++] = root;
  while (sp) {
    size_t k = st[--sp];
    order[n++] = k;
    if (t->nodes[k].feature >= 0) {
      st[sp++] = (size_t)t->nodes[k].left;
      st[sp++] = (size_t)t->nodes[k].right;
    }
  }
  for (size_t q = n; q-- > 0;) {
    size_t k = order[q];
    const xd_tree_node_t *nd = &t->nodes[k];
    for (size_t c = 0; c < w; c++) {
      if (nd->feature < 0) {
        t->mean[k * w + c] = t->values[k * w + c];
        continue;
      }
      /* weighted by child cover / node cover, the fractions TreeSHAP walks with (the
       * children's covers need not add up to the node's exactly: XGBoost stores float32
       * sums), so that expected + Σ phi is the margin to rounding; a node without cover
       * weighs its children equally */
      size_t l = (size_t)nd->left, r = (size_t)nd->right;
      double p = nd->cover, fl = p > 0 ? t->nodes[l].cover / p : 0.5, fr = p > 0 ? t->nodes[r].cover / p : 0.5;
      t->mean[k * w + c] = fl * t->mean[l * w + c] + fr * t->mean[r * w + c];
    }
  }
}

/* "<=" as "<": the smallest double above t (float32 inputs compare exactly either way). */
static double le_to_lt(double t) { return nextafter(t, INFINITY); }

int xd_trees_new(xd_trees_spec_t *s, size_t n_features, size_t n_outputs, int classification, xd_trees_t **out,
                 xd_error_t *err) {
  *out = NULL;
  xd_trees_t *t = NULL;
  uint8_t *seen = NULL;
  size_t *stack = NULL;
  int rc = XD_OK;
  if (s->n_trees == 0 || s->n_trees > XD_TREES_MAX_TREES) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "an ensemble needs 1 to %d trees", XD_TREES_MAX_TREES);
    goto done;
  }
  if (s->n_groups == 0 || s->n_groups > XD_TREES_MAX_GROUPS || (s->leaf_width != 1 && s->leaf_width != s->n_groups)) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "inconsistent output groups (%zu) and leaf width (%zu)", s->n_groups,
                      s->leaf_width);
    goto done;
  }
  /* the link decides how many outputs the margins make: check it against the bundle */
  size_t want = s->n_groups;
  if (s->link == XD_TREES_SIGMOID || s->link == XD_TREES_HINGE) want = classification ? 2 : 1;
  if ((s->link == XD_TREES_SIGMOID || s->link == XD_TREES_HINGE || s->link == XD_TREES_EXP) && s->n_groups != 1) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "a %s link needs one margin, the model has %zu",
                      xd_trees_link_names[s->link], s->n_groups);
    goto done;
  }
  if ((s->link == XD_TREES_SOFTMAX && !classification) || (s->link == XD_TREES_HINGE && !classification) ||
      (s->link == XD_TREES_EXP && classification)) {
    rc = xd_error_set(err, XD_EFORMAT, "task", "the trees' objective (%s) does not fit a %s bundle", s->source,
                      classification ? "classification" : "regression");
    goto done;
  }
  if (want != n_outputs) {
    rc = xd_error_set(err, XD_EFORMAT, classification ? "classes" : "trees",
                      "the trees (%s) make %zu outputs, the bundle declares %zu", s->source, want, n_outputs);
    goto done;
  }
  for (size_t g = 0; g < s->n_groups; g++)
    if (!isfinite(s->base[g])) {
      rc = xd_error_set(err, XD_EFORMAT, "trees.base_score", "base score is not a finite number");
      goto done;
    }
  if (!isfinite(s->scale)) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "scale is not a finite number");
    goto done;
  }
  size_t total = 0, maxn = 0, ncats = 0;
  for (size_t i = 0; i < s->n_trees; i++) {
    const xd_tree_spec_t *T = &s->trees[i];
    if (T->n_nodes > XD_TREES_MAX_NODES) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "trees[%zu].nodes", i);
      rc = xd_error_set(err, XD_EFORMAT, f, "at most %u nodes per tree", XD_TREES_MAX_NODES);
      goto done;
    }
    if (s->leaf_width == 1 && T->group >= s->n_groups) {
      char f[XD_ERROR_FIELD_MAX];
      snprintf(f, sizeof f, "trees[%zu]", i);
      rc = xd_error_set(err, XD_EFORMAT, f, "output group %zu is out of range (%zu groups)", T->group, s->n_groups);
      goto done;
    }
    total += T->n_nodes;
    ncats += T->n_cats;
    if (T->n_nodes > maxn) maxn = T->n_nodes;
  }
  if (total > XD_TREES_MAX_TOTAL_NODES) {
    rc = xd_error_set(err, XD_EFORMAT, "trees", "%zu nodes in all: at most %u per ensemble", total,
                      XD_TREES_MAX_TOTAL_NODES);
    goto done;
  }
  t = xd_calloc(1, sizeof *t);
  seen = xd_malloc(maxn ? maxn : 1);
  stack = xd_malloc(xd_mul_size(2 * maxn + 2, sizeof *stack));
  if (!t || !seen || !stack) goto nomem;
  t->n_trees = s->n_trees;
  t->n_nodes = total;
  t->n_groups = s->n_groups;
  t->leaf_width = s->leaf_width;
  t->n_features = n_features;
  t->n_outputs = n_outputs;
  t->classification = classification;
  t->scale = s->scale;
  t->link = s->link;
  t->x_to_f32 = s->split != XD_TREES_LE_F64;
  snprintf(t->source, sizeof t->source, "%s", s->source);
  t->nodes = xd_malloc(xd_mul_size(total, sizeof *t->nodes));
  t->values = xd_malloc(xd_mul_size(xd_mul_size(total, s->leaf_width), sizeof *t->values));
  t->mean = xd_malloc(xd_mul_size(xd_mul_size(total, s->leaf_width), sizeof *t->mean));
  t->root = xd_malloc(s->n_trees * sizeof *t->root);
  t->group = xd_malloc(s->n_trees * sizeof *t->group);
  t->depth = xd_malloc(s->n_trees * sizeof *t->depth);
  t->cats = xd_malloc((ncats ? ncats : 1) * sizeof *t->cats);
  t->base = xd_malloc(s->n_groups * sizeof *t->base);
  if (!t->nodes || !t->values || !t->mean || !t->root || !t->group || !t->depth || !t->cats || !t->base) goto nomem;
  memcpy(t->base, s->base, s->n_groups * sizeof *t->base);
  size_t off = 0, coff = 0;
  for (size_t i = 0; i < s->n_trees; i++) {
    const xd_tree_spec_t *T = &s->trees[i];
    if ((rc = check_tree(T, i, n_features, s->leaf_width, seen, stack, stack + maxn + 1, &t->depth[i], err)) != XD_OK)
      goto done;
    if (t->depth[i] > t->max_depth) t->max_depth = t->depth[i];
    t->root[i] = off;
    t->group[i] = s->leaf_width == 1 ? T->group : 0;
    for (size_t k = 0; k < T->n_nodes; k++) {
      xd_tree_node_t nd = T->nodes[k];
      if (nd.feature >= 0) {
        nd.left += (int32_t)off;
        nd.right += (int32_t)off;
        if (nd.categorical) {
          nd.cat_off += (uint32_t)coff;
          /* sorted, so equal sets compare equal and the scan can be reasoned about */
          uint32_t *cs = T->cats + T->nodes[k].cat_off;
          for (uint32_t a = 1; a < nd.cat_len; a++)
            for (uint32_t b = a; b > 0 && cs[b - 1] > cs[b]; b--) {
              uint32_t x = cs[b];
              cs[b] = cs[b - 1];
              cs[b - 1] = x;
            }
        } else if (s->split == XD_TREES_LT_F32) {
          nd.threshold = (double)(float)nd.threshold;
        } else {
          nd.threshold = le_to_lt(nd.threshold);
        }
      } else {
        nd.left = nd.right = -1;
      }
      t->nodes[off + k] = nd;
    }
    memcpy(t->values + off * s->leaf_width, T->values, T->n_nodes * s->leaf_width * sizeof *t->values);
    if (T->n_cats) memcpy(t->cats + coff, T->cats, T->n_cats * sizeof *t->cats);
    off += T->n_nodes;
    coff += T->n_cats;
  }
  for (size_t i = 0; i < s->n_trees; i++) fill_means(t, t->root[i], stack, stack + maxn + 1);
  t->walk = xd_malloc(xd_mul_size(total, sizeof *t->walk));
  t->is_cat = xd_calloc(total, 1);
  t->cfrac = xd_malloc(xd_mul_size(total, sizeof *t->cfrac));
  if (!t->walk || !t->is_cat || !t->cfrac) goto nomem;
  for (size_t i = 0; i < s->n_trees; i++) t->cfrac[t->root[i]] = 1;
  for (size_t k = 0; k < total; k++) {
    const xd_tree_node_t *nd = &t->nodes[k];
    if (nd->feature < 0) continue;
    double p = nd->cover;
    t->cfrac[nd->left] = p > 0 ? t->nodes[nd->left].cover / p : 0.5;
    t->cfrac[nd->right] = p > 0 ? t->nodes[nd->right].cover / p : 0.5;
  }
  for (size_t k = 0; k < total; k++) {
    const xd_tree_node_t *nd = &t->nodes[k];
    xd_walk_node_t *w = &t->walk[k];
    w->feat = nd->feature;
    w->thr = nd->threshold;
    w->left = nd->feature >= 0 ? nd->left : (int32_t)k;
    w->right = nd->right;
    w->dflt = nd->default_left ? nd->left : nd->right;
    t->is_cat[k] = nd->feature >= 0 && nd->categorical;
    t->any_cat |= t->is_cat[k];
  }
  xd_free(seen);
  xd_free(stack);
  xd_trees_spec_deinit(s);
  *out = t;
  return XD_OK;
nomem:
  rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the trees");
done:
  xd_free(seen);
  xd_free(stack);
  xd_trees_free(t);
  xd_trees_spec_deinit(s);
  return rc;
}

/* ---- margins and outputs -------------------------------------------------------------------- */

/* Rows per block: each tree is walked for a whole block before the next tree, so a tree's
 * nodes stay in cache while the block's rows (converted once) go through it. */
#define ROW_BLOCK 64
/* Rows walked in lockstep: their node loads are independent, so the CPU overlaps them
 * instead of waiting for one row's chain of dependent loads at a time. */
#define LANES 8

/* Leaf node reached by row x (already through xd_trees_input) from node k. */
static inline size_t walk_one(const xd_trees_t *t, size_t k, const double *x) {
  const xd_walk_node_t *W = t->walk;
  int32_t f;
  while ((f = W[k].feat) >= 0) {
    if (t->any_cat && t->is_cat[k]) {
      k = xd_trees_route(t, &t->nodes[k], x[f]);
      continue;
    }
    double v = x[f];
    k = (size_t)(v < W[k].thr ? W[k].left : v != v ? W[k].dflt : W[k].right);
  }
  return k;
}

/* Leaves of LANES rows (stride d) in tree tr, walked level by level. */
static inline void walk_lanes(const xd_trees_t *t, size_t tr, const double *R, size_t d, size_t *leaf) {
  const xd_walk_node_t *W = t->walk;
  size_t k[LANES];
  for (int r = 0; r < LANES; r++) k[r] = t->root[tr];
  if (t->any_cat) {
    for (int r = 0; r < LANES; r++) leaf[r] = walk_one(t, k[r], R + (size_t)r * d);
    return;
  }
  for (size_t lv = 0; lv < t->depth[tr]; lv++)
    for (int r = 0; r < LANES; r++) {
      const xd_walk_node_t *w = &W[k[r]];
      /* a leaf points to itself (left), so rows that arrived early stay put */
      double v = w->feat >= 0 ? R[(size_t)r * d + (size_t)w->feat] : -INFINITY;
      k[r] = (size_t)(v < w->thr || w->feat < 0 ? w->left : v != v ? w->dflt : w->right);
    }
  for (int r = 0; r < LANES; r++) leaf[r] = k[r];
}

void xd_trees_margins(const xd_trees_t *t, const double *X, size_t n, size_t d, double *Z) {
  size_t G = t->n_groups, W = t->leaf_width;
  double xb[ROW_BLOCK * 64], *xs = xb, *heap = NULL;
  if (d > 64 && !(xs = heap = xd_malloc(ROW_BLOCK * d * sizeof *xs))) {
    /* no scratch: one row at a time, converting as it goes (slow, but correct) */
    for (size_t i = 0; i < n; i++) {
      for (size_t g = 0; g < G; g++) Z[i * G + g] = 0;
      for (size_t tr = 0; tr < t->n_trees; tr++) {
        size_t k = t->root[tr];
        while (t->nodes[k].feature >= 0)
          k = xd_trees_route(t, &t->nodes[k], xd_trees_input(t, X[i * d + t->nodes[k].feature]));
        for (size_t q = 0; q < W; q++) Z[i * G + (W == 1 ? t->group[tr] : q)] += t->values[k * W + q];
      }
      for (size_t g = 0; g < G; g++) Z[i * G + g] = t->base[g] + t->scale * Z[i * G + g];
    }
    return;
  }
  for (size_t s = 0; s < n; s += ROW_BLOCK) {
    size_t c = n - s < ROW_BLOCK ? n - s : ROW_BLOCK;
    double acc[ROW_BLOCK * 8], *A = G <= 8 ? acc : Z + s * G; /* accumulate in Z for wide models */
    for (size_t i = 0; i < c * G; i++) A[i] = 0;
    for (size_t i = 0; i < c * d; i++) xs[i] = xd_trees_input(t, X[s * d + i]);
    size_t full = c / LANES * LANES, leaf[LANES];
    for (size_t tr = 0; tr < t->n_trees; tr++) {
      size_t g = t->group[tr];
      for (size_t i = 0; i < c; i += LANES) {
        size_t nl = i < full ? LANES : c - i;
        if (nl == LANES)
          walk_lanes(t, tr, xs + i * d, d, leaf);
        else
          for (size_t r = 0; r < nl; r++) leaf[r] = walk_one(t, t->root[tr], xs + (i + r) * d);
        for (size_t r = 0; r < nl; r++) {
          if (W == 1)
            A[(i + r) * G + g] += t->values[leaf[r]];
          else
            for (size_t q = 0; q < W; q++) A[(i + r) * G + q] += t->values[leaf[r] * W + q];
        }
      }
    }
    for (size_t i = 0; i < c; i++)
      for (size_t gg = 0; gg < G; gg++) Z[(s + i) * G + gg] = t->base[gg] + t->scale * A[i * G + gg];
  }
  xd_free(heap);
}

static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

void xd_trees_outputs(const xd_trees_t *t, const double *Z, size_t n, double *out) {
  size_t G = t->n_groups, K = t->n_outputs;
  for (size_t i = 0; i < n; i++) {
    const double *z = Z + i * G;
    double *o = out + i * K;
    switch (t->link) {
      case XD_TREES_IDENTITY:
        for (size_t g = 0; g < G; g++) o[g] = z[g];
        break;
      case XD_TREES_SIGMOID:
        if (t->classification) {
          o[0] = sigmoid(-z[0]); /* not 1-p: keeps a tiny p0's digits */
          o[1] = sigmoid(z[0]);
        } else {
          o[0] = sigmoid(z[0]);
        }
        break;
      case XD_TREES_SOFTMAX: {
        double mx = -INFINITY, sum = 0;
        for (size_t g = 0; g < G; g++) mx = z[g] > mx ? z[g] : mx;
        for (size_t g = 0; g < G; g++) sum += (o[g] = exp(z[g] - mx));
        for (size_t g = 0; g < G; g++) o[g] /= sum;
        break;
      }
      case XD_TREES_EXP:
        o[0] = exp(z[0]);
        break;
      case XD_TREES_HINGE:
        o[1] = z[0] > 0 ? 1.0 : 0.0;
        o[0] = 1.0 - o[1];
        break;
    }
  }
}

int xd_trees_transform(const xd_trees_t *t, double z, double *out) {
  switch (t->link) {
    case XD_TREES_IDENTITY:
      *out = z;
      return XD_OK;
    case XD_TREES_SIGMOID:
      *out = sigmoid(z);
      return XD_OK;
    case XD_TREES_EXP:
      *out = exp(z);
      return XD_OK;
    default:
      return XD_EINVAL;
  }
}

/* ---- split importances ------------------------------------------------------------------------ */

void xd_trees_importance(const xd_trees_t *t, xd_trees_imp_t type, size_t n_features, double *out) {
  double *cnt = xd_calloc(n_features ? n_features : 1, sizeof *cnt);
  for (size_t j = 0; j < n_features; j++) out[j] = 0;
  if (!cnt) return; /* callers allocate first; a failure here leaves zeros, never garbage */
  for (size_t k = 0; k < t->n_nodes; k++) {
    const xd_tree_node_t *nd = &t->nodes[k];
    if (nd->feature < 0 || (size_t)nd->feature >= n_features) continue;
    size_t f = (size_t)nd->feature;
    cnt[f] += 1;
    switch (type) {
      case XD_TREES_IMP_WEIGHT:
        out[f] += 1;
        break;
      case XD_TREES_IMP_GAIN:
      case XD_TREES_IMP_TOTAL_GAIN:
        out[f] += nd->gain;
        break;
      case XD_TREES_IMP_COVER:
      case XD_TREES_IMP_TOTAL_COVER:
        out[f] += nd->cover;
        break;
    }
  }
  if (type == XD_TREES_IMP_GAIN || type == XD_TREES_IMP_COVER)
    for (size_t j = 0; j < n_features; j++) out[j] = cnt[j] > 0 ? out[j] / cnt[j] : 0;
  xd_free(cnt);
}

/* treeshap.c — exact Shapley values of tree ensembles.
 *
 * Path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent individualized feature
 * attribution for tree ensembles", Algorithm 2). The value of a coalition S is the tree's
 * expectation when the features in S are fixed to x and the others are integrated out
 * with the training cover of each branch. Walking the tree once, we keep the path of
 * distinct features met from the root, and for each the fraction of coalitions "without
 * it" that reach here (zero fraction: the cover ratio of the branch taken) and "with it"
 * (one fraction: 1 if x goes this way, else 0). The weights w[k] of the path hold, for
 * every subset size k, the Shapley-weighted share of the coalitions that follow the path
 * (EXTEND adds a feature and updates them in O(depth)); at a leaf, removing feature i from
 * the path (UNWIND, here only its sum) gives the weight of the coalitions without i, and
 * i's value is that sum times (one - zero fraction) times the leaf value. A feature met
 * twice on a path is first removed and re-added with the product of its fractions.
 *
 * Conditioning (for interaction values, as XGBoost's pred_interactions): feature c is
 * held "on" (x's branch only) or "off" (both branches, by cover) and never enters the
 * path; the coalitions' mass carried to each leaf is scaled accordingly.
 *
 * Interventional TreeSHAP (Lundberg et al. 2020, "From local explanations to global
 * understanding with explainable AI for trees"): for one row x and one background row b,
 * v(S) = f(x_S, b_S̄). Walking x and b down a tree together, a node where they part
 * makes its feature "x-side" on the branch x takes and "b-side" on the other (a feature
 * already decided keeps its side). A leaf reached with p x-side and q b-side features is
 * worth its value exactly for the coalitions that contain all x-side features and no
 * b-side one; that game's Shapley values are v·(p-1)! q!/(p+q)! for each x-side feature
 * and -v·p! (q-1)!/(p+q)! for each b-side one.
 *
 * All arithmetic is double (XGBoost uses float: the results agree to ~1e-6 relative).
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "core/trees_impl.h"

typedef struct pel {
  int feat;
  double z, o, w;
} pel_t;

/* 1/k for the small integers the path formulas divide by (paths hold at most
 * XD_TREES_MAX_DEPTH + 2 elements): the walk then multiplies instead of dividing, which
 * more than halved its time. */
static double inv_k[XD_TREES_MAX_DEPTH + 4];
static pthread_once_t inv_once = PTHREAD_ONCE_INIT;
static void inv_init(void) {
  for (size_t k = 1; k < sizeof inv_k / sizeof *inv_k; k++) inv_k[k] = 1.0 / (double)k;
}

/* Adds a feature with fractions (z, o) to path m of len elements (len+1 after). */
static void path_extend(pel_t *m, size_t len, double z, double o, int feat) {
  m[len].feat = feat;
  m[len].z = z;
  m[len].o = o;
  m[len].w = len == 0 ? 1.0 : 0.0;
  double r = inv_k[len + 1];
  for (size_t i = len; i-- > 0;) {
    m[i + 1].w += o * m[i].w * (double)(i + 1) * r;
    m[i].w = z * m[i].w * (double)(len - i) * r;
  }
}

/* Removes element k from path m of len elements (the inverse of extending with it). */
static void path_unwind(pel_t *m, size_t len, size_t k) {
  size_t l = len - 1;
  double z = m[k].z, o = m[k].o, next = m[l].w, r = inv_k[l + 1];
  if (o != 0) {
    double io = 1 / o;
    for (size_t j = l; j-- > 0;) {
      double keep = m[j].w;
      m[j].w = next * (double)(l + 1) * inv_k[j + 1] * io;
      next = keep - m[j].w * z * (double)(l - j) * r;
    }
  } else {
    double iz = 1 / z;
    for (size_t j = l; j-- > 0;) m[j].w = m[j].w * (double)(l + 1) * iz * inv_k[l - j];
  }
  for (size_t j = k; j < l; j++) {
    m[j].feat = m[j + 1].feat;
    m[j].z = m[j + 1].z;
    m[j].o = m[j + 1].o;
  }
}

/* Σ of the weights path_unwind(m, len, k) would leave, without changing m. */
static double path_unwound_sum(const pel_t *m, size_t len, size_t k) {
  size_t l = len - 1;
  double z = m[k].z, o = m[k].o, next = m[l].w, total = 0, r = inv_k[l + 1];
  if (o != 0) {
    double io = (double)(l + 1) / o;
    for (size_t j = l; j-- > 0;) {
      double w = next * inv_k[j + 1] * io;
      total += w;
      next = m[j].w - w * z * (double)(l - j) * r;
    }
  } else {
    double iz = (double)(l + 1) / z;
    for (size_t j = l; j-- > 0;) total += m[j].w * iz * inv_k[l - j];
  }
  return total;
}

typedef struct pd_ctx {
  const xd_trees_t *t;
  const double *x; /* raw row */
  size_t tree, g;
  int cond; /* 0, +1 (feature cond_feat on), -1 (off) */
  int cond_feat;
  double *phi;
} pd_ctx_t;

/* Cover fraction of child c under node k (half each when the node has no cover). */
static double frac(const xd_trees_t *t, size_t k, size_t c) {
  (void)k; /* precomputed at build: cover(c) / cover(k), 0.5 when k has none */
  return t->cfrac[c];
}

static void pd_recurse(const pd_ctx_t *c, size_t k, pel_t *parent, size_t plen, double pz, double po, int pfeat,
                       double cf) {
  const xd_trees_t *t = c->t;
  pel_t *m = parent + plen;
  memcpy(m, parent, plen * sizeof *m);
  size_t len = plen;
  if (!(c->cond != 0 && pfeat == c->cond_feat)) {
    /* A branch no coalition reaches (x goes the other way and the branch has no cover):
     * every weight below is 0, and unwinding it would divide 0 by 0. */
    if (pz == 0 && po == 0) return;
    path_extend(m, len++, pz, po, pfeat);
  }
  if (cf == 0) return;
  const xd_tree_node_t *nd = &t->nodes[k];
  if (nd->feature < 0) {
    double v = t->scale * xd_trees_leaf(t, c->tree, k, c->g) * cf;
    /* For an element x did not follow (one fraction 0), the unwound sum is
     * (l+1)/z · Σ_j w_j/(l-j): the sum is the same for all of them, so it is formed once
     * per leaf and each such element costs O(1) instead of O(depth). */
    size_t l = len - 1;
    double s0 = 0;
    for (size_t j = 0; j < l; j++) s0 += m[j].w * inv_k[l - j];
    for (size_t i = 1; i < len; i++) {
      double sum = m[i].o != 0 ? path_unwound_sum(m, len, i) : s0 * (double)(l + 1) / m[i].z;
      c->phi[m[i].feat] += sum * (m[i].o - m[i].z) * v;
    }
    return;
  }
  size_t hot = xd_trees_route(t, nd, xd_trees_input(t, c->x[nd->feature]));
  size_t cold = hot == (size_t)nd->left ? (size_t)nd->right : (size_t)nd->left;
  double iz = 1, io = 1;
  for (size_t i = 1; i < len; i++)
    if (m[i].feat == nd->feature) {
      iz = m[i].z;
      io = m[i].o;
      path_unwind(m, len--, i);
      break;
    }
  double hot_cf = cf, cold_cf = cf;
  if (c->cond != 0 && nd->feature == c->cond_feat) {
    if (c->cond > 0) {
      cold_cf = 0;
    } else {
      hot_cf *= frac(t, k, hot);
      cold_cf *= frac(t, k, cold);
    }
  }
  pd_recurse(c, hot, m, len, iz * frac(t, k, hot), io, nd->feature, hot_cf);
  pd_recurse(c, cold, m, len, iz * frac(t, k, cold), 0, nd->feature, cold_cf);
}

size_t xd_treeshap_scratch(const xd_trees_t *t) {
  size_t D = t->max_depth + 3;
  /* path elements, in doubles (each element fits in 4 doubles) */
  return (D * (D + 1) / 2 + 1) * (sizeof(pel_t) / sizeof(double) + 1);
}

/* Adds tree `tree`'s path-dependent values (conditioned as cond/cond_feat) to phi. */
static void pd_tree(const xd_trees_t *t, size_t tree, const double *x, size_t g, int cond, int cond_feat, double *phi,
                    double *scratch) {
  pthread_once(&inv_once, inv_init);
  pd_ctx_t c = {t, x, tree, g, cond, cond_feat, phi};
  pd_recurse(&c, t->root[tree], (pel_t *)scratch, 0, 1, 1, -1, 1.0);
}

static int tree_in_group(const xd_trees_t *t, size_t tree, size_t g) {
  return t->leaf_width > 1 || t->group[tree] == g;
}

static double expected_margin(const xd_trees_t *t, size_t g) {
  double e = 0;
  for (size_t tr = 0; tr < t->n_trees; tr++)
    if (tree_in_group(t, tr, g))
      e += t->leaf_width > 1 ? t->mean[t->root[tr] * t->leaf_width + g] : t->mean[t->root[tr]];
  return t->base[g] + t->scale * e;
}

void xd_treeshap_path(const xd_trees_t *t, const double *x, size_t d, size_t g, double *phi, double *expected,
                      double *scratch) {
  for (size_t j = 0; j < d; j++) phi[j] = 0;
  for (size_t tr = 0; tr < t->n_trees; tr++)
    if (tree_in_group(t, tr, g)) pd_tree(t, tr, x, g, 0, -1, phi, scratch);
  *expected = expected_margin(t, g);
}

void xd_treeshap_interactions(const xd_trees_t *t, const double *x, size_t d, size_t g, double *Phi, double *phi,
                              double *expected, double *scratch) {
  double *on = scratch + xd_treeshap_scratch(t), *off = on + d, *used = off + d;
  for (size_t j = 0; j < d * d; j++) Phi[j] = 0;
  xd_treeshap_path(t, x, d, g, phi, expected, scratch);
  for (size_t tr = 0; tr < t->n_trees; tr++) {
    if (!tree_in_group(t, tr, g)) continue;
    /* only the features this tree splits on interact through it */
    for (size_t j = 0; j < d; j++) used[j] = 0;
    size_t first = t->root[tr], last = tr + 1 < t->n_trees ? t->root[tr + 1] : t->n_nodes;
    for (size_t k = first; k < last; k++)
      if (t->nodes[k].feature >= 0) used[t->nodes[k].feature] = 1;
    for (size_t i = 0; i < d; i++) {
      if (!used[i]) continue;
      for (size_t j = 0; j < d; j++) on[j] = off[j] = 0;
      pd_tree(t, tr, x, g, +1, (int)i, on, scratch);
      pd_tree(t, tr, x, g, -1, (int)i, off, scratch);
      for (size_t j = 0; j < d; j++)
        if (j != i) Phi[i * d + j] += (on[j] - off[j]) / 2;
    }
  }
  for (size_t i = 0; i < d; i++) {
    double s = 0;
    for (size_t j = 0; j < d; j++)
      if (j != i) s += Phi[i * d + j];
    Phi[i * d + i] = phi[i] - s;
  }
}

/* ---- interventional ------------------------------------------------------------------------ */

typedef struct iv_ctx {
  const xd_trees_t *t;
  const double *xs, *bs; /* rows through xd_trees_input */
  size_t tree, g;
  double *side;    /* (d) 0 undecided, 1 x-side, 2 b-side */
  int *stack;      /* decided features, in order */
  const double *W; /* (D+1)^2: W[p*(D+1)+q] = p! q! / (p+q+1)! */
  size_t Dw;
  double *phi;
} iv_ctx_t;

static void iv_recurse(iv_ctx_t *c, size_t k, size_t np, size_t nq) {
  const xd_trees_t *t = c->t;
  const xd_tree_node_t *nd = &t->nodes[k];
  if (nd->feature < 0) {
    if (np + nq == 0) return; /* x and b share this leaf: it cancels in every coalition */
    double v = t->scale * xd_trees_leaf(t, c->tree, k, c->g);
    double wp = np ? c->W[(np - 1) * c->Dw + nq] * v : 0, wq = nq ? c->W[np * c->Dw + nq - 1] * v : 0;
    for (size_t s = 0; s < np + nq; s++) {
      int f = c->stack[s];
      if (c->side[f] == 1)
        c->phi[f] += wp;
      else
        c->phi[f] -= wq;
    }
    return;
  }
  int f = nd->feature;
  size_t cx = xd_trees_route(t, nd, c->xs[f]), cb = xd_trees_route(t, nd, c->bs[f]);
  if (cx == cb) {
    iv_recurse(c, cx, np, nq);
  } else if (c->side[f] == 1) {
    iv_recurse(c, cx, np, nq);
  } else if (c->side[f] == 2) {
    iv_recurse(c, cb, np, nq);
  } else {
    c->stack[np + nq] = f;
    c->side[f] = 1;
    iv_recurse(c, cx, np + 1, nq);
    c->side[f] = 2;
    iv_recurse(c, cb, np, nq + 1);
    c->side[f] = 0;
  }
}

size_t xd_treeshap_interv_scratch(const xd_trees_t *t, size_t d) {
  size_t D = t->max_depth + 1;
  return 4 * d + D + D * D + 2;
}

/* Margin g of a row already through xd_trees_input. */
static double margin_of(const xd_trees_t *t, const double *r, size_t g) {
  double s = 0;
  for (size_t tr = 0; tr < t->n_trees; tr++) {
    if (!tree_in_group(t, tr, g)) continue;
    size_t k = t->root[tr];
    while (t->nodes[k].feature >= 0) k = xd_trees_route(t, &t->nodes[k], r[t->nodes[k].feature]);
    s += xd_trees_leaf(t, tr, k, g);
  }
  return t->base[g] + t->scale * s;
}

/* d link / dz at z, for a pair whose margins coincide. */
static double link_slope(const xd_trees_t *t, double z) {
  double p;
  if (t->link == XD_TREES_SIGMOID) {
    xd_trees_transform(t, z, &p);
    return p * (1 - p);
  }
  if (t->link == XD_TREES_EXP) return exp(z);
  return 1;
}

int xd_treeshap_interventional(const xd_trees_t *t, const double *x, const double *B, const double *w, size_t nb,
                               size_t d, size_t g, int transform, double *phi, double *expected, double *scratch) {
  double probe;
  if (transform && xd_trees_transform(t, 0, &probe) != XD_OK) return XD_EINVAL;
  size_t D = t->max_depth + 1;
  double *pp = scratch, *xs = pp + d, *bs = xs + d, *side = bs + d, *Wt = side + d;
  int *stack = (int *)(Wt + D * D);
  for (size_t p = 0; p < D; p++)
    for (size_t q = 0; q < D; q++)
      Wt[p * D + q] = exp(lgamma((double)p + 1) + lgamma((double)q + 1) - lgamma((double)(p + q) + 2));
  for (size_t j = 0; j < d; j++) {
    phi[j] = 0;
    side[j] = 0;
    xs[j] = xd_trees_input(t, x[j]);
  }
  double fx = margin_of(t, xs, g), Fx = fx, e = 0;
  if (transform) xd_trees_transform(t, fx, &Fx);
  iv_ctx_t c = {t, xs, bs, 0, g, side, stack, Wt, D, pp};
  for (size_t b = 0; b < nb; b++) {
    const double *br = B + b * d;
    for (size_t j = 0; j < d; j++) {
      bs[j] = xd_trees_input(t, br[j]);
      pp[j] = 0;
    }
    for (size_t tr = 0; tr < t->n_trees; tr++) {
      if (!tree_in_group(t, tr, g)) continue;
      c.tree = tr;
      iv_recurse(&c, t->root[tr], 0, 0);
    }
    double fb = margin_of(t, bs, g), Fb = fb, r = 1;
    if (transform) {
      xd_trees_transform(t, fb, &Fb);
      r = fx != fb ? (Fx - Fb) / (fx - fb) : link_slope(t, fx);
    }
    for (size_t j = 0; j < d; j++) phi[j] += w[b] * r * pp[j];
    e += w[b] * Fb;
  }
  *expected = e;
  return XD_OK;
}

/* trees_impl.h — the built ensemble's layout, shared by trees.c (building, prediction,
 * importances) and treeshap.c (explanations). Not part of any other module's contract. */
#ifndef XD_TREES_IMPL_H
#define XD_TREES_IMPL_H

#include <math.h>

#include "core/trees.h"

/* The walk's view of a node, 24 bytes: what prediction reads, packed so that more nodes
 * share a cache line than with xd_tree_node_t. A leaf has feat -1 and keeps its node
 * index in left; a categorical split has cat 1 and goes through xd_trees_route. */
typedef struct xd_walk_node {
  double thr;
  int32_t feat;
  int32_t left, right, dflt;
} xd_walk_node_t;

struct xd_trees {
  size_t n_trees, n_nodes, n_groups, leaf_width, n_features, n_outputs;
  int classification;
  xd_tree_node_t *nodes; /* every tree's nodes; children are absolute indices */
  xd_walk_node_t *walk;  /* (n_nodes) the same nodes for prediction */
  uint8_t *is_cat;       /* (n_nodes) 1 for a categorical split */
  double *cfrac;         /* (n_nodes) cover(node) / cover(parent); 0.5 under a node without cover */
  int any_cat;
  double *values; /* (n_nodes, leaf_width) leaf values */
  double *mean;   /* (n_nodes, leaf_width) cover-weighted mean leaf value below the node */
  size_t *root;   /* (n_trees) */
  size_t *group;  /* (n_trees) margin of a leaf_width-1 tree */
  size_t *depth;  /* (n_trees) edges on the longest root-leaf path */
  uint32_t *cats; /* every categorical split's set, sorted per node */
  size_t max_depth;
  double *base; /* (n_groups) */
  double scale;
  int x_to_f32; /* round inputs to float32 before comparing */
  xd_trees_link_t link;
  char source[64];
};

/* The input as the comparisons see it (NaN stays NaN). */
static inline double xd_trees_input(const struct xd_trees *t, double x) { return t->x_to_f32 ? (double)(float)x : x; }

/* Child of internal node nd for input value v (already through xd_trees_input). */
static inline size_t xd_trees_route(const struct xd_trees *t, const xd_tree_node_t *nd, double v) {
  if (isnan(v)) return (size_t)(nd->default_left ? nd->left : nd->right);
  if (nd->categorical) {
    /* A negative category is treated as missing (XGBoost's invalid category); the set is
     * small and sorted: a linear scan beats a search at these sizes. */
    if (v < 0) return (size_t)(nd->default_left ? nd->left : nd->right);
    uint32_t c = v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
    const uint32_t *s = t->cats + nd->cat_off;
    int in = 0;
    for (uint32_t k = 0; k < nd->cat_len && !in; k++) in = s[k] == c;
    return (size_t)(in == !nd->set_left ? nd->right : nd->left);
  }
  return (size_t)(v < nd->threshold ? nd->left : nd->right);
}

/* Leaf value k of margin g for tree i's leaf `leaf` (0 when the tree adds nothing to g). */
static inline double xd_trees_leaf(const struct xd_trees *t, size_t tree, size_t leaf, size_t g) {
  if (t->leaf_width == 1) return t->group[tree] == g ? t->values[leaf] : 0.0;
  return t->values[leaf * t->leaf_width + g];
}

#endif

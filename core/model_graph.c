/* model_graph.c — the graph family: a bundle's "input" and "output" checked against the
 * ONNX graph, image rows and token batches through the graph engine. */
#include "core/model_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

/* Token rows per engine call: a transformer's activations for 64 rows of 128 tokens
 * stay in a few MB. */
#define TEXT_BLOCK 64

/* Roles of a text graph's int64 inputs, matched by name. */
enum { ROLE_IDS, ROLE_MASK, ROLE_TYPES, N_ROLES };
static const char *const role_names[N_ROLES] = {"input_ids", "attention_mask", "token_type_ids"};

struct xd_gmodel {
  xd_graph_spec_t s;      /* owned contents */
  const char *out_name;   /* tensor the output stage reads (borrowed from the graph) */
  size_t width;
  const char *embedding;  /* s.embedding or the graph's own, or NULL */
  size_t n_inputs;        /* image: C*H*W */
  size_t n_graph_inputs;
  int role[N_ROLES];      /* text: role of graph input i */
  int has_mask;
  int64_t fixed_len;      /* text: a fixed sequence dimension, or -1 */
  size_t max_work_memory; /* bytes one graph run may use (0: the engine's default) */
};

void xd_graph_spec_deinit(xd_graph_spec_t *gs) {
  if (!gs) return;
  xd_graph_free(gs->graph);
  xd_tokenizer_free(gs->tokenizer);
  xd_free(gs->embedding);
  xd_free(gs->background_images);
  for (size_t i = 0; gs->background_texts && i < gs->n_background; i++) xd_free(gs->background_texts[i]);
  xd_free(gs->background_texts);
  memset(gs, 0, sizeof *gs);
}

void xd_gmodel_free(xd_gmodel_t *gm) {
  if (!gm) return;
  xd_graph_spec_deinit(&gm->s);
  xd_free(gm);
}

/* "[N, 3, 32, 32]" of a graph tensor description, symbols by name. */
static void dims_str(const xd_graph_info_t *in, char *buf, size_t cap) {
  size_t k = (size_t)snprintf(buf, cap, "[");
  for (size_t d = 0; d < in->rank && k < cap; d++) {
    if (in->dims[d].size >= 0)
      k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)in->dims[d].size);
    else
      k += (size_t)snprintf(buf + k, cap - k, "%s%s", d ? ", " : "", in->dims[d].symbol ? in->dims[d].symbol : "?");
  }
  if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int check_image_input(xd_gmodel_t *gm, xd_error_t *err) {
  const xd_graph_t *g = gm->s.graph;
  const xd_image_prep_t *p = &gm->s.image;
  char shape[128];
  int rc = xd_image_prep_check(p, "input", err);
  if (rc != XD_OK) return rc;
  if (xd_graph_n_inputs(g) != 1)
    return xd_error_set(err, XD_EFORMAT, "input", "an image model's graph has one input [N, C, H, W], this one has %zu",
                        xd_graph_n_inputs(g));
  const xd_graph_info_t *in = xd_graph_input(g, 0);
  dims_str(in, shape, sizeof shape);
  if (in->dtype != XD_DT_F32 || in->rank != 4)
    return xd_error_set(err, XD_EFORMAT, "input", "an image model's graph input is float [N, C, H, W]; '%s' is %s %s",
                        in->name, xd_dtype_name(in->dtype), shape);
  if (in->dims[0].size >= 0)
    return xd_error_set(err, XD_EFORMAT, "input", "the graph input '%s' %s has a fixed batch dimension: export it with a "
                        "dynamic axis 0", in->name, shape);
  static const char *const names[3] = {"input.channels", "input.height", "input.width"};
  size_t want[3] = {p->channels, p->height, p->width};
  for (int d = 0; d < 3; d++)
    if (in->dims[d + 1].size >= 0 && (size_t)in->dims[d + 1].size != want[d])
      return xd_error_set(err, XD_EFORMAT, names[d], "is %zu, but the graph input '%s' is %s", want[d], in->name, shape);
  gm->n_inputs = p->channels * p->height * p->width;
  gm->n_graph_inputs = 1;
  return XD_OK;
}

static int check_text_input(xd_gmodel_t *gm, xd_error_t *err) {
  const xd_graph_t *g = gm->s.graph;
  char shape[128];
  if (!gm->s.tokenizer) return xd_error_set(err, XD_EFORMAT, "input.tokenizer", "a text model needs a tokenizer");
  size_t ns = xd_tokenizer_n_special(gm->s.tokenizer);
  if (gm->s.max_length <= ns || gm->s.max_length > XD_TOK_MAX_LENGTH)
    return xd_error_set(err, XD_EFORMAT, "input.max_length", "must be between %zu and %d", ns + 1, XD_TOK_MAX_LENGTH);
  gm->n_graph_inputs = xd_graph_n_inputs(g);
  gm->fixed_len = -1;
  if (gm->n_graph_inputs > N_ROLES)
    return xd_error_set(err, XD_EFORMAT, "input", "a text model's graph has at most 3 inputs (input_ids, attention_mask, "
                        "token_type_ids); this one has %zu", gm->n_graph_inputs);
  int seen[N_ROLES] = {0};
  for (size_t i = 0; i < gm->n_graph_inputs; i++) {
    const xd_graph_info_t *in = xd_graph_input(g, i);
    int r = -1;
    for (int k = 0; k < N_ROLES; k++)
      if (strcmp(in->name, role_names[k]) == 0) r = k;
    dims_str(in, shape, sizeof shape);
    if (r < 0)
      return xd_error_set(err, XD_EFORMAT, "input", "the graph input '%s' is none of input_ids, attention_mask, "
                          "token_type_ids (a text model's inputs are matched by name)", in->name);
    if (in->dtype != XD_DT_I64 || in->rank != 2)
      return xd_error_set(err, XD_EFORMAT, "input", "the graph input '%s' must be int64 [batch, sequence], not %s %s",
                          in->name, xd_dtype_name(in->dtype), shape);
    if (in->dims[0].size >= 0)
      return xd_error_set(err, XD_EFORMAT, "input", "the graph input '%s' %s has a fixed batch dimension", in->name, shape);
    if (in->dims[1].size >= 0) {
      if (gm->fixed_len >= 0 && gm->fixed_len != in->dims[1].size)
        return xd_error_set(err, XD_EFORMAT, "input", "the graph inputs disagree on the sequence length");
      gm->fixed_len = in->dims[1].size;
    }
    gm->role[i] = r;
    seen[r] = 1;
  }
  if (!seen[ROLE_IDS]) return xd_error_set(err, XD_EFORMAT, "input", "a text model's graph needs an int64 input 'input_ids'");
  gm->has_mask = seen[ROLE_MASK];
  if (gm->fixed_len >= 0) {
    if (!gm->has_mask)
      return xd_error_set(err, XD_EFORMAT, "input", "the graph's sequence length is fixed (%lld) and it has no "
                          "attention_mask to pad with: export it with a dynamic sequence axis", (long long)gm->fixed_len);
    if (gm->s.max_length > (size_t)gm->fixed_len)
      return xd_error_set(err, XD_EFORMAT, "input.max_length", "is %zu, over the graph's fixed sequence length %lld",
                          gm->s.max_length, (long long)gm->fixed_len);
  }
  if (gm->s.embedding) {
    if (!xd_graph_find(g, gm->s.embedding))
      return xd_error_set(err, XD_EFORMAT, "input.embedding", "no tensor '%.100s' in the graph", gm->s.embedding);
    gm->embedding = gm->s.embedding;
  } else {
    gm->embedding = xd_graph_embedding(g, NULL, NULL, NULL);
  }
  return XD_OK;
}

/* Shape inputs for one row (data NULL: shapes only), in graph input order. */
static void probe_inputs(const xd_gmodel_t *gm, size_t n, size_t len, xd_tensor_t *t) {
  for (size_t i = 0; i < gm->n_graph_inputs; i++) {
    memset(&t[i], 0, sizeof t[i]);
    if (gm->s.kind == XD_INPUT_IMAGE) {
      t[i].dtype = XD_DT_F32;
      t[i].rank = 4;
      t[i].dims[0] = (int64_t)n;
      t[i].dims[1] = (int64_t)gm->s.image.channels;
      t[i].dims[2] = (int64_t)gm->s.image.height;
      t[i].dims[3] = (int64_t)gm->s.image.width;
    } else {
      t[i].dtype = XD_DT_I64;
      t[i].rank = 2;
      t[i].dims[0] = (int64_t)n;
      t[i].dims[1] = (int64_t)len;
    }
  }
}

/* The output stage (MODEL_FORMAT "output"): the final Softmax/Sigmoid the graph ends in,
 * or the one "logits" asks the server to apply, read from the logits in double; or the
 * graph's output as it is ("probabilities" without a recognizable final activation). */
static int check_output(xd_gmodel_t *gm, xd_task_t task, size_t n_classes, xd_gmodel_out_t *info, xd_error_t *err) {
  const xd_graph_t *g = gm->s.graph;
  if (xd_graph_n_outputs(g) < 1) return xd_error_set(err, XD_EFORMAT, "onnx", "the graph has no output");
  const char *logits = NULL;
  xd_graph_final_t fin = xd_graph_final(g, &logits);
  xd_tensor_t probe[N_ROLES], shape;
  size_t len = gm->fixed_len >= 0 ? (size_t)gm->fixed_len : 3;
  probe_inputs(gm, 1, len, probe);
  int rc = xd_graph_shape(g, probe, logits, &shape, err);
  if (rc == XD_ENOMEM) return rc;
  if (rc != XD_OK) {
    if (err) err->code = XD_EFORMAT;
    xd_error_prefix_field(err, "onnx");
    return XD_EFORMAT;
  }
  char buf[96];
  xd_tensor_shape_str(&shape, buf, sizeof buf);
  if (shape.rank != 2 || shape.dims[0] != 1 || shape.dims[1] < 1)
    return xd_error_set(err, XD_EFORMAT, "onnx", "the model's output '%s' is %s for one row; expected (batch, outputs)",
                        logits, buf);
  size_t k = (size_t)shape.dims[1];
  int cls = task == XD_TASK_CLASSIFICATION;
  xd_act_t act = XD_ACT_IDENTITY;
  if (fin != XD_GRAPH_FINAL_NONE && gm->s.output_logits)
    return xd_error_set(err, XD_EFORMAT, "output", "the graph ends in a %s: its output is \"probabilities\", not \"logits\"",
                        fin == XD_GRAPH_FINAL_SOFTMAX ? "Softmax" : "Sigmoid");
  if (fin == XD_GRAPH_FINAL_SOFTMAX || (fin == XD_GRAPH_FINAL_NONE && gm->s.output_logits && cls && k > 1))
    act = XD_ACT_SOFTMAX;
  else if (fin == XD_GRAPH_FINAL_SIGMOID || (fin == XD_GRAPH_FINAL_NONE && gm->s.output_logits && k == 1))
    act = XD_ACT_SIGMOID;
  if (cls) {
    if (act == XD_ACT_SIGMOID ? (k != 1 || n_classes != 2) : k != n_classes)
      return xd_error_set(err, XD_EFORMAT, "onnx",
                          "the graph gives %zu output%s per row%s; the bundle has %zu classes%s", k, k == 1 ? "" : "s",
                          act == XD_ACT_SIGMOID ? " through a sigmoid" : "", n_classes,
                          act == XD_ACT_SIGMOID ? " (a sigmoid classifier has 1 output and 2 classes)" : "");
  } else {
    if (k != 1) return xd_error_set(err, XD_EFORMAT, "onnx", "a regression model has 1 output per row, the graph gives %zu", k);
    if (act == XD_ACT_SOFTMAX) return xd_error_set(err, XD_EFORMAT, "onnx", "a softmax makes no sense on one regression output");
  }
  gm->out_name = logits;
  gm->width = k;
  info->n_inputs = gm->n_inputs;
  info->act = act;
  info->width = k;
  return XD_OK;
}

int xd_gmodel_new(xd_graph_spec_t *gs, xd_task_t task, size_t n_classes, xd_gmodel_t **out, xd_gmodel_out_t *info,
                  xd_error_t *err) {
  *out = NULL;
  xd_gmodel_t *gm = xd_calloc(1, sizeof *gm);
  if (!gm) {
    xd_graph_spec_deinit(gs);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the model");
  }
  gm->s = *gs;
  memset(gs, 0, sizeof *gs);
  int rc;
  if (!gm->s.graph) rc = xd_error_set(err, XD_EFORMAT, "onnx", "a graph model needs its ONNX graph");
  else if (gm->s.kind == XD_INPUT_IMAGE) rc = check_image_input(gm, err);
  else if (gm->s.kind == XD_INPUT_TEXT) rc = check_text_input(gm, err);
  else rc = xd_error_set(err, XD_EFORMAT, "input.kind", "must be \"image\" or \"text\"");
  if (rc == XD_OK) rc = check_output(gm, task, n_classes, info, err);
  if (rc != XD_OK) {
    xd_gmodel_free(gm);
    return rc;
  }
  *out = gm;
  return XD_OK;
}

xd_input_kind_t xd_gmodel_kind(const xd_gmodel_t *gm) { return gm->s.kind; }
const xd_graph_t *xd_gmodel_graph(const xd_gmodel_t *gm) { return gm->s.graph; }
const xd_image_prep_t *xd_gmodel_image_prep(const xd_gmodel_t *gm) {
  return gm->s.kind == XD_INPUT_IMAGE ? &gm->s.image : NULL;
}
const xd_tokenizer_t *xd_gmodel_tokenizer(const xd_gmodel_t *gm) { return gm->s.tokenizer; }
size_t xd_gmodel_max_length(const xd_gmodel_t *gm) { return gm->s.max_length; }
const char *xd_gmodel_embedding(const xd_gmodel_t *gm) { return gm->embedding; }
const char *xd_gmodel_output_tensor(const xd_gmodel_t *gm) { return gm->out_name; }
const double *xd_gmodel_background_images(const xd_gmodel_t *gm, size_t *n) {
  *n = gm->s.background_images ? gm->s.n_background : 0;
  return gm->s.background_images;
}
char *const *xd_gmodel_background_texts(const xd_gmodel_t *gm, size_t *n) {
  *n = gm->s.background_texts ? gm->s.n_background : 0;
  return gm->s.background_texts;
}

void xd_gmodel_set_max_work_memory(xd_gmodel_t *gm, size_t bytes) { gm->max_work_memory = bytes; }

double xd_gmodel_flops_per_row(const xd_gmodel_t *gm) {
  xd_tensor_t in[N_ROLES];
  size_t L = gm->fixed_len >= 0 ? (size_t)gm->fixed_len : gm->s.max_length;
  probe_inputs(gm, 1, L ? L : 1, in); /* a text row at its longest: the bound a request may reach */
  double f = 0;
  xd_error_t e;
  return xd_graph_flops_per_row(gm->s.graph, in, &f, &e) == XD_OK ? f : 0;
}

/* ---- images ---------------------------------------------------------------------------- */

int xd_gmodel_forward_image(const xd_gmodel_t *gm, const float *E, size_t n, double *z, const xd_cancel_t *cancel,
                            xd_error_t *err) {
  xd_tensor_t in;
  probe_inputs(gm, n, 0, &in);
  in.data = (void *)E;
  xd_graph_run_t r = {.inputs = &in, .precision = XD_DT_F32, .output = gm->out_name, .out = z, .cancel = cancel,
                      .max_work_memory = gm->max_work_memory};
  return xd_graph_run(gm->s.graph, &r, err);
}

int xd_gmodel_gradient_image(const xd_gmodel_t *gm, xd_dtype_t precision, const double *E, size_t n,
                             int (*seed_fn)(void *ctx, size_t row0, size_t c, const double *z, double *seed), void *ctx,
                             double *G, const xd_cancel_t *cancel, xd_error_t *err) {
  xd_tensor_t in;
  probe_inputs(gm, n, 0, &in);
  in.dtype = XD_DT_F64;
  in.data = (void *)E;
  xd_graph_run_t r = {.inputs = &in,
                      .precision = precision,
                      .output = gm->out_name,
                      .wrt = xd_graph_input(gm->s.graph, 0)->name,
                      .grad = G,
                      .seed_fn = seed_fn,
                      .seed_ctx = ctx,
                      .max_work_memory = gm->max_work_memory,
                      .cancel = cancel};
  return xd_graph_run(gm->s.graph, &r, err);
}

/* Grad-CAM: the layer's values and the gradient there in one run. */
int xd_gmodel_layer_image(const xd_gmodel_t *gm, xd_dtype_t precision, const double *E, size_t n, const char *layer,
                          int (*seed_fn)(void *ctx, size_t row0, size_t c, const double *z, double *seed), void *ctx,
                          double *A, double *dA, const xd_cancel_t *cancel, xd_error_t *err) {
  xd_tensor_t in;
  probe_inputs(gm, n, 0, &in);
  in.dtype = XD_DT_F64;
  in.data = (void *)E;
  xd_graph_run_t r = {.inputs = &in,
                      .precision = precision,
                      .output = gm->out_name,
                      .fetch = layer,
                      .fetch_out = A,
                      .wrt = layer,
                      .grad = dA,
                      .seed_fn = seed_fn,
                      .seed_ctx = ctx,
                      .cancel = cancel};
  return xd_graph_run(gm->s.graph, &r, err);
}

/* The shape of `layer` after the batch dimension, for one image row. */
int xd_gmodel_layer_shape(const xd_gmodel_t *gm, const char *layer, size_t *rank, int64_t *dims, xd_error_t *err) {
  xd_tensor_t in, sh;
  probe_inputs(gm, 1, 0, &in);
  int rc = xd_graph_shape(gm->s.graph, &in, layer, &sh, err);
  if (rc != XD_OK) return rc;
  if (sh.rank < 1 || sh.rank > 4) return xd_error_set(err, XD_EUNSUPPORTED, "layer", "tensor '%s' has rank %zu", layer, sh.rank);
  *rank = sh.rank - 1;
  for (size_t k = 1; k < sh.rank; k++) dims[k - 1] = sh.dims[k];
  return XD_OK;
}

/* ---- token batches ------------------------------------------------------------------- */

typedef struct by_len {
  size_t len, i;
} by_len_t;

static int cmp_len(const void *a, const void *b) {
  const by_len_t *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorting by length (ties in row order) puts rows that pad alike together; the batches
 * depend only on the request, so equal requests give equal answers. */
int xd_gmodel_forward_tokens(const xd_gmodel_t *gm, const xd_tok_encoding_t *rows, size_t n, double *z,
                             const xd_cancel_t *cancel, xd_error_t *err) {
  if (n == 0) return XD_OK;
  size_t maxlen = 0;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].n == 0) {
      char f[32];
      snprintf(f, sizeof f, "rows[%zu]", i);
      return xd_error_set(err, XD_EINVAL, f, "the text has no tokens");
    }
    if (rows[i].n > maxlen) maxlen = rows[i].n;
  }
  size_t L_cap = gm->fixed_len >= 0 ? (size_t)gm->fixed_len : maxlen, b = n < TEXT_BLOCK ? n : TEXT_BLOCK;
  if (maxlen > L_cap) return xd_error_set(err, XD_EINVAL, "rows", "a row has %zu tokens, over the graph's %zu", maxlen, L_cap);
  by_len_t *ord = xd_malloc(n * sizeof *ord);
  int64_t *buf = xd_malloc(xd_mul_size(xd_mul_size(b, L_cap), 3 * sizeof *buf));
  double *zc = xd_malloc(xd_mul_size(b, gm->width) * sizeof *zc);
  int rc = XD_OK;
  if (!ord || !buf || !zc) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory evaluating the model");
    goto done;
  }
  for (size_t i = 0; i < n; i++) ord[i] = (by_len_t){rows[i].n, i};
  qsort(ord, n, sizeof *ord, cmp_len);
  int64_t pad = xd_tokenizer_pad_id(gm->s.tokenizer);
  if (pad < 0) pad = 0; /* masked out: any id does */
  for (size_t s = 0; s < n && rc == XD_OK;) {
    size_t e = s + 1;
    if (gm->has_mask)
      e = s + b < n ? s + b : n;
    else
      while (e < n && e - s < b && ord[e].len == ord[s].len) e++;
    size_t c = e - s, L = gm->fixed_len >= 0 ? (size_t)gm->fixed_len : ord[e - 1].len;
    int64_t *ids = buf, *mask = buf + c * L, *types = buf + 2 * c * L;
    for (size_t r = 0; r < c; r++) {
      const xd_tok_encoding_t *t = &rows[ord[s + r].i];
      for (size_t k = 0; k < L; k++) {
        int in = k < t->n;
        ids[r * L + k] = in ? t->ids[k] : pad;
        mask[r * L + k] = in;
        types[r * L + k] = in ? (int64_t)t->type_ids[k] : 0;
      }
    }
    xd_tensor_t in[N_ROLES];
    probe_inputs(gm, c, L, in);
    for (size_t i = 0; i < gm->n_graph_inputs; i++)
      in[i].data = gm->role[i] == ROLE_IDS ? ids : gm->role[i] == ROLE_MASK ? mask : types;
    xd_graph_run_t run = {.inputs = in, .precision = XD_DT_F32, .output = gm->out_name, .out = zc, .cancel = cancel,
                          .max_work_memory = gm->max_work_memory};
    rc = xd_graph_run(gm->s.graph, &run, err);
    for (size_t r = 0; rc == XD_OK && r < c; r++)
      memcpy(z + ord[s + r].i * gm->width, zc + r * gm->width, gm->width * sizeof *z);
    s = e;
  }
done:
  xd_free(ord);
  xd_free(buf);
  xd_free(zc);
  return rc;
}

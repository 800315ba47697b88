/* text_explain.h — attributions for text models (graph family, input kind TEXT), per
 * token of the tokenized text, special tokens included (docs/text_explanations.md).
 *
 * Gradients are taken at the token-embedding output (xd_model_embedding): the graph runs
 * with that tensor overridden by the rows to differentiate at, so positional embeddings,
 * the attention mask and everything downstream stay the network's own (Captum's
 * LayerIntegratedGradients on the embedding layer). Every IG step (or noisy copy) of a
 * text is one row of a single double-precision graph run, which the engine chunks by
 * memory; the output (softmax/sigmoid of the float logits) and its derivative are formed
 * in double from the logits. Occlusion replaces (or deletes) one token at a time and
 * evaluates all variants in one batched xd_model_predict_text call.
 *
 * Pure computation on caller memory; any thread.
 */
#ifndef XD_TEXT_EXPLAIN_H
#define XD_TEXT_EXPLAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/gradient.h"
#include "core/model.h"
#include "core/tokenizer.h"

/* What a token becomes in the baseline (IG) or when occluded. */
typedef enum xd_text_base {
  XD_TEXT_BASE_PAD = 0, /* the pad token (special tokens kept) */
  XD_TEXT_BASE_UNK,     /* the unknown token (special tokens kept) */
  XD_TEXT_BASE_ZEROS,   /* IG only: a zero embedding row for every token */
  XD_TEXT_BASE_DELETE   /* occlusion only: the token is removed */
} xd_text_base_t;
extern const char *const xd_text_base_names[]; /* "pad", "unk", "zeros", "delete" */

typedef struct xd_text_grad_opts {
  xd_grad_method_t method;
  xd_output_kind_t output;
  xd_text_base_t baseline;    /* IG: pad, unk or zeros */
  size_t steps;               /* IG quadrature points */
  const double *alpha, *weights; /* IG: xd_grad_quadrature(steps), borrowed */
  size_t samples;             /* SmoothGrad family */
  double noise_stddev;        /* fraction of the embedding matrix's std */
  uint64_t seed;              /* text i draws from stream i */
  /* Rows [rows_begin, rows_end) of the text's xd_text_grad_rows only (rows_end 0: all), for
   * a text split into sub-parts on several workers: attr and delta are then the range's
   * share, and the shares of contiguous ranges covering every row add up to the whole
   * (IG, SmoothGrad and SmoothGrad² are linear in the summed gradients, and f(x), f(b)
   * count in the range holding their rows; not VarGrad, whose variance is not). */
  size_t rows_begin, rows_end;
} xd_text_grad_opts_t;

/* Bytes of override values and gradients per engine call (32 MiB; tests lower it to make
 * a text's rows go in several chunks). */
extern size_t xd_text_chunk_bytes;

/* Model rows one text costs (for cost limits). */
size_t xd_text_grad_rows(const xd_text_grad_opts_t *o);

/* Explains one tokenized text (row index `index` in the request, for the noise stream)
 * for output `target`: attr (row->n) per token; delta (IG only, may be NULL) =
 * Σ attr − (f(x) − f(baseline)). Returns XD_OK, XD_EUNSUPPORTED (no embedding tensor,
 * field "model"), XD_EINVAL (no pad/unk token for that baseline, field "baseline"),
 * XD_ETOOBIG, XD_ENOMEM or a cancel status. */
int xd_text_grad_explain(const xd_model_t *m, const xd_text_grad_opts_t *o, const xd_tok_encoding_t *row,
                         size_t target, size_t index, double *attr, double *delta, const xd_cancel_t *cancel,
                         xd_error_t *err);

/* Occlusion, window 1, stride 1: attr[i] = f(x) − f(x with token i replaced by the pad or
 * unknown token, or deleted), every position including the special tokens; *fx gets
 * f(x) (may be NULL). Output is the probability of target (or its logit). */
int xd_text_occlusion(const xd_model_t *m, const xd_tok_encoding_t *row, size_t target, xd_text_base_t how,
                      xd_output_kind_t output, double *attr, double *fx, const xd_cancel_t *cancel, xd_error_t *err);

/* The explained scalar of one row of the output tensor z (width values, as
 * xd_model_output_tensor reads): probability (or logit) of class t; dz (width, may be
 * NULL) gets its derivative w.r.t. z, all in double. */
double xd_text_output(const xd_model_t *m, const double *z, size_t t, xd_output_kind_t kind, double *dz);

#endif

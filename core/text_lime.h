/* text_lime.h — LIME for text (lime_text.LimeTextExplainer) and Kernel SHAP over words,
 * on a text model (docs/text_explanations.md).
 *
 * Words. The raw string is split by \W+ keeping the separators (IndexedString): a word is
 * a maximal run of word characters — Python's str-pattern \w: letters, digits and '_',
 * here Alphabetic non-mark code points, Nd digits and '_' (core/unicode.h; Python also
 * counts No numbers such as '²' and not circled letters — the difference is documented).
 * With bow the features are the distinct words in first-appearance order, each owning
 * all its positions; without, every word position is a feature. A perturbed text is the
 * raw string with the pieces of the off features removed, or each replaced by mask.
 *
 * Evaluation: every distinct perturbed text is tokenized once and all of them go to
 * xd_model_predict_text in large chunks (padded batches, or equal-length groups); a
 * repeated on/off row takes its first occurrence's outputs. A text
 * left with no tokens is evaluated as the single pad (else unknown) token.
 * Pure computation on caller memory; any thread.
 */
#ifndef XD_TEXT_LIME_H
#define XD_TEXT_LIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/lime.h"
#include "core/shap.h"
#include "core/model.h"

/* Bound on the words of one text (features). */
#define XD_TEXT_MAX_WORDS 4096
/* Bound on samples x words of one explanation (the on/off matrix and the fit's copies). */
#define XD_TEXT_MAX_CELLS ((size_t)1 << 24)

typedef struct xd_text_words {
  size_t n_pieces;
  size_t *piece_start, *piece_end; /* byte ranges into the text */
  size_t *piece_char;              /* code point offset of each piece */
  size_t *piece_feat;              /* feature of each piece, SIZE_MAX for separators */
  size_t d;                        /* features */
  size_t *feat_first;              /* (d+1) CSR of each feature's pieces */
  size_t *feat_pieces;
} xd_text_words_t;

/* Splits text[0..len) (valid UTF-8). Returns XD_OK, XD_EINVAL (no word at all, or over
 * XD_TEXT_MAX_WORDS words; field "instances") or XD_ENOMEM. */
int xd_text_words_split(const char *text, size_t len, int bow, xd_text_words_t *w, xd_error_t *err);
void xd_text_words_deinit(xd_text_words_t *w);
/* The text with feature j kept when on[j] != 0, removed (mask NULL) or replaced by mask
 * otherwise; out must hold len + (pieces) * strlen(mask) + 1 bytes; returns its length. */
size_t xd_text_words_render(const xd_text_words_t *w, const char *text, size_t len, const uint8_t *on,
                            const char *mask, char *out);

/* Evaluates n on/off rows Z (n, d) of 0/1 bytes -> P (n, n_outputs) probabilities. */
int xd_text_words_eval(const xd_model_t *m, const xd_text_words_t *w, const char *text, size_t len,
                       const uint8_t *Z, size_t n, const char *mask, double *P, const xd_cancel_t *cancel,
                       xd_error_t *err);

typedef struct xd_text_lime_opts {
  size_t num_samples, num_features;
  double kernel_width;  /* 25 */
  xd_lime_fs_t feature_selection;
  const char *mask;     /* NULL: remove */
  uint64_t seed;        /* repeat r uses stream r */
  size_t repeats;
} xd_text_lime_opts_t;

/* One label's explanation: coef (d) mean over repeats, sd (d) their std (population),
 * intercept/score/local_pred means; used (d) the features of the first repeat's
 * selection order... sorted by |mean coef| over every feature selected in any repeat. */
typedef struct xd_text_lime_out {
  double intercept, score, local_pred;
  size_t n_used;
  size_t *used; /* (d) */
  double *coef, *sd; /* (d) */
} xd_text_lime_out_t;

/* The steps of xd_text_lime_explain, for callers that spread the evaluation over
 * several workers (api/explain_text_lime.c): check the sizes; draw repeat r's on/off
 * rows Z (num_samples, d) from stream r of the seed; (evaluate any slices of them with
 * xd_text_words_eval into P (num_samples, K)); add the repeat's fits of the L labels into
 * acc (xd_text_lime_acc_size doubles, zeroed once); after the last repeat, finish: the
 * means, stds and order into out. */
int xd_text_lime_check(const xd_text_words_t *w, const xd_text_lime_opts_t *o, xd_error_t *err);
int xd_text_lime_sample(const xd_text_words_t *w, const xd_text_lime_opts_t *o, size_t r, uint8_t *Z,
                        xd_error_t *err);
size_t xd_text_lime_acc_size(const xd_text_words_t *w, size_t L);
int xd_text_lime_fit(const xd_text_words_t *w, const xd_text_lime_opts_t *o, size_t K, const uint8_t *Z,
                     const double *P, const size_t *labels, size_t L, double *acc, xd_error_t *err);
void xd_text_lime_finish(const xd_text_words_t *w, const xd_text_lime_opts_t *o, const double *acc, size_t L,
                         xd_text_lime_out_t *out);

/* Explains labels (L of them) of one text: out[l] preallocated with d entries each
 * (d = w->d). probs (n_outputs) gets the text's own probabilities. */
int xd_text_lime_explain(const xd_model_t *m, const xd_text_words_t *w, const char *text, size_t len,
                         const xd_text_lime_opts_t *o, const size_t *labels, size_t L, double *probs,
                         xd_text_lime_out_t *out, const xd_cancel_t *cancel, xd_error_t *err);

#endif

/* Kernel SHAP over the words of one text (players = features of w): a coalition keeps
 * its words and removes (or masks) the others; v(∅) = f(everything hidden) is the
 * expected value. method XD_SHAP_KERNEL (nsamples 0 = auto, 2d + 2048, capped at 2^d − 2:
 * then every coalition) or XD_SHAP_EXACT (d <= XD_SHAP_EXACT_MAX). All coalitions are
 * evaluated in batched predict_text calls. phi (d); *expected, *fx (link applied by the
 * solver's convention: values before the link). Efficiency: link(expected) + Σ phi =
 * link(fx). */
int xd_text_shap_explain(const xd_model_t *m, const xd_text_words_t *w, const char *text, size_t len,
                         const char *mask, xd_shap_method_t method, size_t nsamples, xd_shap_link_t link,
                         uint64_t seed, size_t index, size_t target, double *phi, double *expected, double *fx,
                         const xd_cancel_t *cancel, xd_error_t *err);

/* Its steps, for callers that spread the evaluation over workers: the plan (stream index
 * of seed) and the on/off rows Z (R, d) of every coalition, then nothing kept, then
 * everything kept (*Z xd_malloc'd, R = pl->K + 2; pl deinit by the caller on success);
 * then, with P (R, K) their outputs (xd_text_words_eval, any slices), phi, expected, fx. */
int xd_text_shap_plan(const xd_text_words_t *w, xd_shap_method_t method, size_t nsamples, uint64_t seed,
                      size_t index, xd_shap_plan_t *pl, uint8_t **Z, size_t *R, xd_error_t *err);
int xd_text_shap_solve(xd_shap_plan_t *pl, const double *P, size_t K, size_t target, xd_shap_link_t link, double *phi,
                       double *expected, double *fx, const xd_cancel_t *cancel, xd_error_t *err);

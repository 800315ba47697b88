/* kern_rnn.c — ONNX GRU and LSTM (layout 0, default activations), forward and backward.
 *
 * Fast path, per direction: the input projection of every time step is one GEMM,
 * X (seq·batch, input) · Wᵀ, with the biases folded in; each step then does one product
 * over the batch, H_prev (batch, hidden) · Rᵀ, and the gate arithmetic. The step's
 * product is small (torch's text GRUs: 50 rows, 96 × 32), so for hidden widths that
 * fill vectors it is a register-blocked kernel here (F(mm) in kern_rnn.inc), not a
 * BLAS call that would spend as long packing as multiplying; a GRU step with
 * linear_before_reset then takes its three activations in one pass (xd_vgru_step_f).
 * GRU without linear_before_reset needs r before its candidate's recurrent product, so
 * it makes two products per step (z and r, then h on r ⊙ H_prev).
 *
 * Backward recomputes the forward of one direction into scratch, keeping each step's
 * gate activations and states by time index, then walks time backwards collecting the
 * gates' pre-activation gradients for every step; dX, dW, dR and the biases then come
 * from one GEMM each over all steps (backpropagation through time). A GRU's forward
 * leaves every direction's gates and states in its own slot of scratch, and the graph
 * keeps that scratch for the backward of the same rows (xd_gop_env_t.scratch_kept): the
 * backward then starts from them instead of recomputing the forward.
 *
 * The naive twins compute every gate unit with its own dot products. The float and
 * double kernels come from one body, core/kern_rnn.inc, included twice.
 */
#include "core/kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/hotloop.h"
#include "core/mat.h"
#include "core/vmath.h"

int xd_rnn_shape_init(const xd_rnn_shape_t *s, xd_error_t *err) {
  if (s->seq == 0 || s->batch == 0 || s->input == 0 || s->hidden == 0)
    return xd_error_set(err, XD_EINVAL, "X", "a recurrent layer needs non-empty sequence, batch, input and hidden");
  if (s->ndir != 1 && s->ndir != 2)
    return xd_error_set(err, XD_EINVAL, "direction", "num_directions is 1 or 2, not %zu", s->ndir);
  if (s->reverse && s->ndir != 1)
    return xd_error_set(err, XD_EINVAL, "direction", "reverse is a single direction");
  return XD_OK;
}

/* Scratch, in elements, with G gates: shared by the directions the gates' gradients, one
 * step's recurrent product, two (batch, hidden) carries, a temporary and a row of zeros,
 * R and W of one direction transposed; then `slots` sets of states, each the
 * time-indexed gate activations, an extra per-step state (GRU: its candidate's recurrent
 * term; LSTM: the cell after the step), the hidden state before each step and after the
 * last. A GRU has a slot per direction: its forward leaves every direction's states for
 * the backward. */
static size_t rnn_scratch(const xd_rnn_shape_t *s, size_t G, size_t extra_states, size_t slots) {
  size_t SB = s->seq * s->batch, B = s->batch, h = s->hidden;
  size_t shared = SB * G * h + B * G * h + 4 * B * h + G * h * (h + s->input);
  return shared + slots * (SB * G * h + SB * h * extra_states + (SB + B) * h);
}

/* A GRU's forward also finds the distinct rows of X (a text model's X repeats a few token
 * embeddings: LIME's thousands of perturbed texts hold a text's twenty words) and projects
 * only those: hash slots (a power of two, at least twice the rows) and per row its distinct
 * index, as uint32, then the distinct rows themselves. */
static size_t xrows_cap(size_t SB) {
  size_t P = 16;
  while (P < 2 * SB) P *= 2;
  return P;
}
static size_t xrows_scratch(const xd_rnn_shape_t *s) {
  size_t SB = s->seq * s->batch;
  return xrows_cap(SB) + SB + 1 + SB * s->input; /* (in elements of 4 bytes or more) */
}

size_t xd_gru_scratch(const xd_rnn_shape_t *s) { return rnn_scratch(s, 3, 1, s->ndir) + xrows_scratch(s); }
size_t xd_lstm_scratch(const xd_rnn_shape_t *s) { return rnn_scratch(s, 4, 1, 1); }

/* Time index of processing step k for direction d. */
static size_t step_time(const xd_rnn_shape_t *s, size_t d, size_t k) {
  int back = d == 1 || s->reverse;
  return back ? s->seq - 1 - k : k;
}

/* tanh in float: glibc's tanhf goes through expm1f and was 60% of a GRU's forward. An
 * odd Taylor polynomial below 1/16 (next term under 1e-12), (1 - e)/(1 + e) with
 * e = exp(-2|v|) above: a few ulp, which float runs can afford, the float backward
 * included (the double path runs libm's tanh). */
static inline float tanh_fast(float v) {
  float a = fabsf(v);
  if (a < 0.0625f) {
    float v2 = v * v;
    return v * (1.0f + v2 * (-1.0f / 3 + v2 * (2.0f / 15 + v2 * (-17.0f / 315))));
  }
  float e = expf(-2 * a), t = (1 - e) / (1 + e);
  return v < 0 ? -t : t;
}

#define T float
#define F(name) name##_f
#define FN(name) name##_f_naive
#define GEMM xd_sgemm
#define EXP expf
#define TANH tanh_fast
#define VSIG xd_vsigmoid_f /* GRU gates: core/vmath.h */
#define VTANH xd_vtanh_f
#define VGRU xd_vgru_step_f
#include "core/kern_rnn.inc"
#undef T
#undef F
#undef FN
#undef GEMM
#undef EXP
#undef TANH
#undef VSIG
#undef VTANH
#undef VGRU

#define T double
#define F(name) name##_d
#define FN(name) name##_d_naive
#define GEMM xd_dgemm
#define EXP exp
#define TANH tanh
#include "core/kern_rnn.inc"
#undef T
#undef F
#undef FN
#undef GEMM
#undef EXP
#undef TANH

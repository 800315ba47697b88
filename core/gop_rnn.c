/* gop_rnn.c — the GRU and LSTM rows of the operator table (core/gop_kern.h), over
 * core/kern.h's recurrent kernels.
 *
 * Supported: what torch.onnx.export emits — layout 0, the default activations, no clip,
 * LSTM without input_forget, sequence_lens absent or every sequence full length. Anything
 * else is refused at load with the attribute named, rather than computed differently.
 */
#include <assert.h>
#include <string.h>

#include "core/gop_kern.h"
#include "core/kern.h"

typedef struct rnn_params {
  int64_t hidden;
  int lstm, ndir, reverse, lbr;
} rnn_params_t;
static_assert(sizeof(rnn_params_t) <= XD_GOP_PARAMS, "rnn_params_t fits the node's params");

static int rnn_parse(xd_gnode_t *nd, const xd_gattrs_t *a, int lstm, xd_error_t *err) {
  rnn_params_t *p = (rnn_params_t *)nd->params;
  memset(p, 0, sizeof *p);
  p->lstm = lstm;
  p->hidden = xd_gattr_int(a, "hidden_size", 0);
  if (p->hidden < 1 || p->hidden > 1 << 16)
    return xd_error_set(err, XD_EINVAL, "hidden_size", "hidden_size must be given, between 1 and 65536");
  int present = 0;
  p->ndir = 1;
  if (xd_gattr_str_is(a, "direction", "bidirectional", &present))
    p->ndir = 2;
  else if (xd_gattr_str_is(a, "direction", "reverse", NULL))
    p->reverse = 1;
  else if (present && !xd_gattr_str_is(a, "direction", "forward", NULL))
    return xd_error_set(err, XD_EINVAL, "direction", "direction is forward, reverse or bidirectional");
  p->lbr = xd_gattr_int(a, "linear_before_reset", 0) != 0;
  if (xd_gattr_int(a, "layout", 0) != 0)
    return xd_error_set(err, XD_EUNSUPPORTED, "layout", "only layout 0 (sequence first) is supported");
  if (xd_gattr_int(a, "input_forget", 0) != 0)
    return xd_error_set(err, XD_EUNSUPPORTED, "input_forget", "input_forget is not supported");
  if (xd_gattr_find(a, "clip")) return xd_error_set(err, XD_EUNSUPPORTED, "clip", "clip is not supported");
  if (xd_gattr_find(a, "activations") || xd_gattr_find(a, "activation_alpha") || xd_gattr_find(a, "activation_beta"))
    return xd_error_set(err, XD_EUNSUPPORTED, "activations", "only the default activations are supported");
  return XD_OK;
}

int xd_gop__gru_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) { return rnn_parse(nd, a, 0, err); }
int xd_gop__lstm_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err) { return rnn_parse(nd, a, 1, err); }

static int dims_are(const xd_tensor_t *t, size_t rank, const int64_t *d) {
  if (t->rank != rank) return 0;
  for (size_t i = 0; i < rank; i++)
    if (t->dims[i] != d[i]) return 0;
  return 1;
}

/* The kernel's shape from X and the attributes, with every other input checked. */
static int rnn_shape(const xd_gnode_t *nd, xd_gtv_t in, xd_rnn_shape_t *s, xd_error_t *err) {
  const rnn_params_t *p = (const rnn_params_t *)nd->params;
  const xd_tensor_t *x = in[0];
  static const char *names[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
  size_t nin = nd->n_in < 8 ? nd->n_in : 8;
  for (size_t k = 0; k < nin; k++)
    if (k != 4 && in[k] && !xd_dtype_is_float(in[k]->dtype))
      return xd_error_set(err, XD_EINVAL, names[k], "%s must be a float tensor", names[k]);
  if (x->rank != 3) return xd_error_set(err, XD_EINVAL, "X", "X must be (seq_length, batch_size, input_size)");
  memset(s, 0, sizeof *s);
  s->seq = (size_t)x->dims[0];
  s->batch = (size_t)x->dims[1];
  s->input = (size_t)x->dims[2];
  s->hidden = (size_t)p->hidden;
  s->ndir = (size_t)p->ndir;
  s->reverse = p->reverse;
  s->linear_before_reset = p->lbr;
  int rc = xd_rnn_shape_init(s, err);
  if (rc) return rc;
  int64_t G = p->lstm ? 4 : 3, h = p->hidden, nd_ = p->ndir, B = x->dims[1];
  int64_t dw[] = {nd_, G * h, x->dims[2]}, dr[] = {nd_, G * h, h}, db[] = {nd_, 2 * G * h}, dh[] = {nd_, B, h},
          dp[] = {nd_, 3 * h};
  if (!dims_are(in[1], 3, dw)) return xd_error_set(err, XD_EINVAL, "W", "W must be (num_directions, %lld, input_size)", (long long)(G * h));
  if (!dims_are(in[2], 3, dr)) return xd_error_set(err, XD_EINVAL, "R", "R must be (num_directions, %lld, hidden_size)", (long long)(G * h));
  if (nin > 3 && in[3] && !dims_are(in[3], 2, db)) return xd_error_set(err, XD_EINVAL, "B", "B must be (num_directions, %lld)", (long long)(2 * G * h));
  if (nin > 5 && in[5] && !dims_are(in[5], 3, dh)) return xd_error_set(err, XD_EINVAL, "initial_h", "initial_h must be (num_directions, batch_size, hidden_size)");
  if (nin > 6 && in[6] && !dims_are(in[6], 3, dh)) return xd_error_set(err, XD_EINVAL, "initial_c", "initial_c must be (num_directions, batch_size, hidden_size)");
  if (nin > 7 && in[7] && !dims_are(in[7], 2, dp)) return xd_error_set(err, XD_EINVAL, "P", "P must be (num_directions, %lld)", (long long)(3 * h));
  if (nin > 4 && in[4]) {
    const xd_tensor_t *sl = in[4];
    if (sl->rank != 1 || sl->dims[0] != B)
      return xd_error_set(err, XD_EINVAL, "sequence_lens", "sequence_lens must have one length per batch row");
    for (size_t i = 0; sl->data && i < (size_t)B; i++)
      if (xd_tensor_get_i(sl, i) != x->dims[0])
        return xd_error_set(err, XD_EUNSUPPORTED, "sequence_lens", "sequences shorter than seq_length are not supported");
  }
  return XD_OK;
}

#define IN(k) (nd->n_in > (k) && in[k] ? in[k] : NULL)
#define OUTP(k) (nd->n_out > (k) ? out[k] : NULL)

int xd_gop__rnn_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err) {
  const rnn_params_t *p = (const rnn_params_t *)nd->params;
  xd_rnn_shape_t s;
  int rc = rnn_shape(nd, in, &s, err);
  if (rc) return rc;
  out[0]->dtype = env->fdt;
  out[0]->rank = 4;
  out[0]->dims[0] = (int64_t)s.seq;
  out[0]->dims[1] = (int64_t)s.ndir;
  out[0]->dims[2] = (int64_t)s.batch;
  out[0]->dims[3] = (int64_t)s.hidden;
  for (size_t k = 1; k < nd->n_out; k++) {
    out[k]->dtype = env->fdt;
    out[k]->rank = 3;
    out[k]->dims[0] = (int64_t)s.ndir;
    out[k]->dims[1] = (int64_t)s.batch;
    out[k]->dims[2] = (int64_t)s.hidden;
  }
  size_t n = p->lstm ? xd_lstm_scratch(&s) : xd_gru_scratch(&s);
  env->scratch = env->scratch_bwd = n * xd_dtype_size(env->fdt);
  env->scratch_kept = !p->lstm; /* the GRU's backward reads the gates its forward left there */
  return XD_OK;
}

#define PF(t) ((t) ? (float *)(t)->data : NULL)
#define PD(t) ((t) ? (double *)(t)->data : NULL)

int xd_gop__rnn_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch) {
  const rnn_params_t *p = (const rnn_params_t *)nd->params;
  xd_rnn_shape_t s;
  if (rnn_shape(nd, in, &s, NULL)) return XD_EINVAL;
  if (in[0]->dtype == XD_DT_F32) {
    if (p->lstm)
      xd_lstm_forward_f(&s, PF(in[0]), PF(in[1]), PF(in[2]), PF(IN(3)), PF(IN(7)), PF(IN(5)), PF(IN(6)), PF(OUTP(0)),
                        PF(OUTP(1)), PF(OUTP(2)), scratch);
    else
      xd_gru_forward_f(&s, PF(in[0]), PF(in[1]), PF(in[2]), PF(IN(3)), PF(IN(5)), PF(OUTP(0)), PF(OUTP(1)), scratch);
  } else {
    if (p->lstm)
      xd_lstm_forward_d(&s, PD(in[0]), PD(in[1]), PD(in[2]), PD(IN(3)), PD(IN(7)), PD(IN(5)), PD(IN(6)), PD(OUTP(0)),
                        PD(OUTP(1)), PD(OUTP(2)), scratch);
    else
      xd_gru_forward_d(&s, PD(in[0]), PD(in[1]), PD(in[2]), PD(IN(3)), PD(IN(5)), PD(OUTP(0)), PD(OUTP(1)), scratch);
  }
  return XD_OK;
}

int xd_gop__rnn_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                         void *scratch) {
  const rnn_params_t *p = (const rnn_params_t *)nd->params;
  xd_rnn_shape_t s;
  if (rnn_shape(nd, in, &s, NULL)) return XD_EINVAL;
  int any = 0;
  for (size_t k = 0; k < nd->n_out && k < 3; k++) any |= dout[k] != NULL;
  if (!any) return XD_OK;
  if (in[0]->dtype == XD_DT_F32) {
#define DIN(k) (nd->n_in > (k) && in[k] ? PF(din[k]) : NULL)
#define DOUT(k) (nd->n_out > (k) ? PF(dout[k]) : NULL)
    if (p->lstm)
      xd_lstm_backward_f(&s, PF(in[0]), PF(in[1]), PF(in[2]), PF(IN(3)), PF(IN(7)), PF(IN(5)), PF(IN(6)), DOUT(0),
                         DOUT(1), DOUT(2), DIN(0), DIN(1), DIN(2), DIN(3), DIN(7), DIN(5), DIN(6), scratch);
    else
      xd_gru_backward_f(&s, PF(in[0]), PF(in[1]), PF(in[2]), PF(IN(3)), PF(IN(5)), DOUT(0), DOUT(1), DIN(0), DIN(1),
                        DIN(2), DIN(3), DIN(5), scratch, 1);
    return XD_OK;
#undef DIN
#undef DOUT
  }
#define DIN(k) (nd->n_in > (k) && in[k] ? PD(din[k]) : NULL)
#define DOUT(k) (nd->n_out > (k) ? PD(dout[k]) : NULL)
  if (p->lstm)
    xd_lstm_backward_d(&s, PD(in[0]), PD(in[1]), PD(in[2]), PD(IN(3)), PD(IN(7)), PD(IN(5)), PD(IN(6)), DOUT(0),
                       DOUT(1), DOUT(2), DIN(0), DIN(1), DIN(2), DIN(3), DIN(7), DIN(5), DIN(6), scratch);
  else
    xd_gru_backward_d(&s, PD(in[0]), PD(in[1]), PD(in[2]), PD(IN(3)), PD(IN(5)), DOUT(0), DOUT(1), DIN(0), DIN(1),
                      DIN(2), DIN(3), DIN(5), scratch, 1);
  return XD_OK;
#undef DIN
#undef DOUT
}

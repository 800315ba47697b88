/* gop_kern.h — internal to core/gop_kern.c and core/gop_rnn.c; not a contract.
 *
 * The GRU and LSTM rows live in their own file (they are half of the adapters' code);
 * gop_kern.c puts them in its table through XD_GOP_RNN_ROWS. */
#ifndef XD_GOP_KERN_H
#define XD_GOP_KERN_H

#include "core/gop.h"

int xd_gop__gru_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err);
int xd_gop__lstm_parse(xd_gnode_t *nd, const xd_gattrs_t *a, xd_error_t *err);
int xd_gop__rnn_infer(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gop_env_t *env, xd_error_t *err);
int xd_gop__rnn_forward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, void *scratch);
int xd_gop__rnn_backward(const xd_gnode_t *nd, xd_gtv_t in, xd_gtv_t out, xd_gtv_t dout, xd_gtv_t din,
                         void *scratch);

/* Inputs: X, W, R, B, sequence_lens, initial_h (, initial_c, P); outputs Y, Y_h (, Y_c). */
#define XD_GOP_RNN_ROWS                                                                                      \
  {"GRU", 3, 6, 1, 2, 0, xd_gop__gru_parse, xd_gop__rnn_infer, xd_gop__rnn_forward, xd_gop__rnn_backward}, \
      {"LSTM", 3, 8, 1, 3, 0, xd_gop__lstm_parse, xd_gop__rnn_infer, xd_gop__rnn_forward, xd_gop__rnn_backward}

#endif

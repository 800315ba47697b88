/* test_kern_rnn.c — the GRU and LSTM kernels (core/kern.h): fast against the naive
 * twins, float against double, every backward (x, W, R, B, peepholes, initial states)
 * against central finite differences in double, on forward, reverse and bidirectional
 * layers, with and without biases, peepholes and initial states. PyTorch's outputs for
 * the exported layouts are in tests/test_kern_golden.c. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/kern.h"
#include "tests/kern_testlib.h"
#include "tests/test.h"

/* ---- GRU and LSTM ---------------------------------------------------------------------------- */

typedef struct rnn_case {
  size_t seq, batch, input, hidden, ndir;
  int reverse, lbr, with_b, with_h0, with_p;
} rnn_case_t;

static const rnn_case_t rnn_cases[] = {
    {4, 2, 3, 5, 1, 0, 1, 1, 1, 1}, /* torch's GRU (linear_before_reset 1) */
    {3, 1, 2, 4, 1, 0, 0, 1, 1, 0}, /* ONNX default GRU, batch 1 */
    {5, 3, 1, 2, 2, 0, 1, 1, 0, 1}, /* bidirectional, input 1, zero initial state */
    {3, 2, 4, 3, 2, 0, 0, 0, 1, 0}, /* bidirectional, no bias */
    {4, 2, 3, 2, 1, 1, 1, 1, 1, 1}, /* reverse */
    {1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, /* one of everything */
    /* hidden widths the step kernel (F(mm) in core/kern_rnn.inc) takes itself rather than
     * handing to GEMM; batch 5: a block of 4 rows and one row alone */
    {3, 5, 4, 32, 2, 0, 1, 1, 1, 0}, /* torch's bidirectional GRU */
    {3, 5, 2, 16, 1, 1, 0, 1, 0, 1}, /* ONNX default, reverse, no bias */
};

typedef struct rnn_ctx {
  xd_rnn_shape_t s;
  int lstm;
  double *x, *w, *r, *b, *p, *h0, *c0, *y, *yh, *yc, *gy, *gyh, *gyc, *scr;
  size_t ny, nh;
} rnn_ctx_t;

static double rnn_loss(void *q) {
  rnn_ctx_t *c = q;
  if (c->lstm)
    xd_lstm_forward_d(&c->s, c->x, c->w, c->r, c->b, c->p, c->h0, c->c0, c->y, c->yh, c->yc, c->scr);
  else
    xd_gru_forward_d(&c->s, c->x, c->w, c->r, c->b, c->h0, c->y, c->yh, c->scr);
  return dot(c->y, c->gy, c->ny) + dot(c->yh, c->gyh, c->nh) + (c->lstm ? dot(c->yc, c->gyc, c->nh) : 0);
}

static void rnn_case_run(const rnn_case_t *k, int lstm, size_t ci) {
  rnn_ctx_t c;
  memset(&c, 0, sizeof c);
  c.s = (xd_rnn_shape_t){k->seq, k->batch, k->input, k->hidden, k->ndir, k->reverse, k->lbr};
  c.lstm = lstm;
  xd_error_t err;
  CHECK(xd_rnn_shape_init(&c.s, &err) == XD_OK);
  size_t G = lstm ? 4 : 3, h = k->hidden, nd = k->ndir;
  size_t nx = k->seq * k->batch * k->input, nw = nd * G * h * k->input, nr = nd * G * h * h, nb = nd * 2 * G * h,
         np = nd * 3 * h;
  c.ny = k->seq * nd * k->batch * h;
  c.nh = nd * k->batch * h;
  c.x = dvec(nx);
  c.w = dvec(nw);
  c.r = dvec(nr);
  c.b = k->with_b ? dvec(nb) : NULL;
  c.p = lstm && k->with_p ? dvec(np) : NULL;
  c.h0 = k->with_h0 ? dvec(c.nh) : NULL;
  c.c0 = lstm && k->with_h0 ? dvec(c.nh) : NULL;
  c.y = dzeros(c.ny);
  c.yh = dzeros(c.nh);
  c.yc = dzeros(c.nh);
  c.gy = dvec(c.ny);
  c.gyh = dvec(c.nh);
  c.gyc = dvec(c.nh);
  size_t nscr = lstm ? xd_lstm_scratch(&c.s) : xd_gru_scratch(&c.s);
  c.scr = dzeros(nscr);
  /* fast vs naive, double and float */
  double *yn = dzeros(c.ny), *yhn = dzeros(c.nh), *ycn = dzeros(c.nh);
  rnn_loss(&c);
  if (lstm)
    xd_lstm_forward_d_naive(&c.s, c.x, c.w, c.r, c.b, c.p, c.h0, c.c0, yn, yhn, ycn);
  else
    xd_gru_forward_d_naive(&c.s, c.x, c.w, c.r, c.b, c.h0, yn, yhn);
  CHECK_MSG(max_rel_diff_dd(c.y, yn, c.ny) < 1e-13, "%s case %zu y", lstm ? "lstm" : "gru", ci);
  CHECK_MSG(max_rel_diff_dd(c.yh, yhn, c.nh) < 1e-13, "%s case %zu yh", lstm ? "lstm" : "gru", ci);
  if (lstm) CHECK_MSG(max_rel_diff_dd(c.yc, ycn, c.nh) < 1e-13, "lstm case %zu yc", ci);
  float *xf = fcopy(c.x, nx), *wf = fcopy(c.w, nw), *rf = fcopy(c.r, nr), *bf = c.b ? fcopy(c.b, nb) : NULL,
        *pf = c.p ? fcopy(c.p, np) : NULL, *h0f = c.h0 ? fcopy(c.h0, c.nh) : NULL,
        *c0f = c.c0 ? fcopy(c.c0, c.nh) : NULL, *yf = xd_malloc(c.ny * 4), *yhf = xd_malloc(c.nh * 4),
        *ycf = xd_malloc(c.nh * 4), *sf = xd_malloc(nscr * 4);
  if (lstm)
    xd_lstm_forward_f(&c.s, xf, wf, rf, bf, pf, h0f, c0f, yf, yhf, ycf, sf);
  else
    xd_gru_forward_f(&c.s, xf, wf, rf, bf, h0f, yf, yhf, sf);
  CHECK_MSG(max_rel_diff_fd(yf, yn, c.ny) < 1e-5, "case %zu float", ci);
  CHECK_MSG(max_rel_diff_fd(yhf, yhn, c.nh) < 1e-5, "case %zu float yh", ci);
  if (lstm)
    xd_lstm_forward_f_naive(&c.s, xf, wf, rf, bf, pf, h0f, c0f, yf, yhf, ycf);
  else
    xd_gru_forward_f_naive(&c.s, xf, wf, rf, bf, h0f, yf, yhf);
  CHECK_MSG(max_rel_diff_fd(yf, yn, c.ny) < 1e-5, "case %zu float naive", ci);
  /* backward against finite differences, every input */
  double *dx = dzeros(nx), *dw = dzeros(nw), *dr = dzeros(nr), *db = dzeros(nb), *dp = dzeros(np),
         *dh0 = dzeros(c.nh), *dc0 = dzeros(c.nh);
  if (lstm)
    xd_lstm_backward_d(&c.s, c.x, c.w, c.r, c.b, c.p, c.h0, c.c0, c.gy, c.gyh, c.gyc, dx, dw, dr, db, dp, dh0, dc0,
                       c.scr);
  else
    xd_gru_backward_d(&c.s, c.x, c.w, c.r, c.b, c.h0, c.gy, c.gyh, dx, dw, dr, db, dh0, c.scr, 0);
  const char *what = lstm ? "lstm" : "gru";
  CHECK_MSG(fd_check(rnn_loss, &c, c.x, nx, dx, 40) < FD_TOL, "%s case %zu dx", what, ci);
  CHECK_MSG(fd_check(rnn_loss, &c, c.w, nw, dw, 40) < FD_TOL, "%s case %zu dw", what, ci);
  CHECK_MSG(fd_check(rnn_loss, &c, c.r, nr, dr, 40) < FD_TOL, "%s case %zu dr", what, ci);
  if (c.b) CHECK_MSG(fd_check(rnn_loss, &c, c.b, nb, db, 40) < FD_TOL, "%s case %zu db", what, ci);
  if (c.p) CHECK_MSG(fd_check(rnn_loss, &c, c.p, np, dp, 40) < FD_TOL, "%s case %zu dp", what, ci);
  if (c.h0) CHECK_MSG(fd_check(rnn_loss, &c, c.h0, c.nh, dh0, 40) < FD_TOL, "%s case %zu dh0", what, ci);
  if (c.c0) CHECK_MSG(fd_check(rnn_loss, &c, c.c0, c.nh, dc0, 40) < FD_TOL, "%s case %zu dc0", what, ci);
  /* only Y_h wanted (dy NULL): still right, and it accumulates */
  double *dx2 = dcopy(dx, nx);
  if (lstm)
    xd_lstm_backward_d(&c.s, c.x, c.w, c.r, c.b, c.p, c.h0, c.c0, NULL, c.gyh, NULL, dx2, NULL, NULL, NULL, NULL,
                       NULL, NULL, c.scr);
  else
    xd_gru_backward_d(&c.s, c.x, c.w, c.r, c.b, c.h0, NULL, c.gyh, dx2, NULL, NULL, NULL, NULL, c.scr, 0);
  for (size_t i = 0; i < nx; i++) dx2[i] -= dx[i];
  double *keep_gy = c.gy, *keep_gyc = c.gyc;
  c.gy = dzeros(c.ny);
  c.gyc = dzeros(c.nh);
  CHECK_MSG(fd_check(rnn_loss, &c, c.x, nx, dx2, 40) < FD_TOL, "%s case %zu dx from yh only", what, ci);
  xd_free(c.gy);
  xd_free(c.gyc);
  c.gy = keep_gy;
  c.gyc = keep_gyc;
  if (!lstm) { /* backward from the states the forward left in scratch: the same gradients */
    rnn_loss(&c);
    double *ex = dzeros(nx), *ew = dzeros(nw), *er = dzeros(nr), *eb = dzeros(nb), *eh0 = dzeros(c.nh);
    xd_gru_backward_d(&c.s, c.x, c.w, c.r, c.b, c.h0, c.gy, c.gyh, ex, ew, er, eb, eh0, c.scr, 1);
    CHECK_MSG(max_rel_diff_dd(ex, dx, nx) < 1e-12, "gru case %zu dx from kept states", ci);
    CHECK_MSG(max_rel_diff_dd(ew, dw, nw) < 1e-12, "gru case %zu dw from kept states", ci);
    CHECK_MSG(max_rel_diff_dd(er, dr, nr) < 1e-12, "gru case %zu dr from kept states", ci);
    if (c.b) CHECK_MSG(max_rel_diff_dd(eb, db, nb) < 1e-12, "gru case %zu db from kept states", ci);
    if (c.h0) CHECK_MSG(max_rel_diff_dd(eh0, dh0, c.nh) < 1e-12, "gru case %zu dh0 from kept states", ci);
    float *gyf = fcopy(c.gy, c.ny), *gyhf = fcopy(c.gyh, c.nh), *fx1 = xd_calloc(nx, 4), *fx2 = xd_calloc(nx, 4),
          *fr1 = xd_calloc(nr, 4), *fr2 = xd_calloc(nr, 4);
    xd_gru_backward_f(&c.s, xf, wf, rf, bf, h0f, gyf, gyhf, fx1, NULL, fr1, NULL, NULL, sf, 0);
    xd_gru_forward_f(&c.s, xf, wf, rf, bf, h0f, yf, yhf, sf);
    xd_gru_backward_f(&c.s, xf, wf, rf, bf, h0f, gyf, gyhf, fx2, NULL, fr2, NULL, NULL, sf, 1);
    CHECK_MSG(max_rel_diff_fd(fx1, dx, nx) < 1e-4, "gru case %zu float dx", ci);
    CHECK_MSG(max_rel_diff_fd(fr1, dr, nr) < 1e-4, "gru case %zu float dr", ci);
    CHECK_MSG(!memcmp(fx1, fx2, nx * 4) && !memcmp(fr1, fr2, nr * 4), "gru case %zu float: kept states, other bits",
              ci);
    double *all2[] = {ex, ew, er, eb, eh0};
    for (size_t i = 0; i < sizeof all2 / sizeof *all2; i++) xd_free(all2[i]);
    float *all2f[] = {gyf, gyhf, fx1, fx2, fr1, fr2};
    for (size_t i = 0; i < sizeof all2f / sizeof *all2f; i++) xd_free(all2f[i]);
  }
  double *all[] = {c.x, c.w, c.r, c.b, c.p, c.h0, c.c0, c.y, c.yh, c.yc, c.gy, c.gyh, c.gyc, c.scr, yn, yhn, ycn,
                   dx, dw, dr, db, dp, dh0, dc0, dx2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) xd_free(all[i]);
  float *allf[] = {xf, wf, rf, bf, pf, h0f, c0f, yf, yhf, ycf, sf};
  for (size_t i = 0; i < sizeof allf / sizeof *allf; i++) xd_free(allf[i]);
}

TEST(gru_matches_naive_and_fd) {
  for (size_t ci = 0; ci < sizeof rnn_cases / sizeof *rnn_cases; ci++) rnn_case_run(&rnn_cases[ci], 0, ci);
}

TEST(lstm_matches_naive_and_fd) {
  for (size_t ci = 0; ci < sizeof rnn_cases / sizeof *rnn_cases; ci++) rnn_case_run(&rnn_cases[ci], 1, ci);
}

/* X made of a few repeated rows (token embeddings), which the GRU's forward projects once
 * each: the same outputs as the naive twin, and its backward from the kept states gives
 * the bits of one that recomputes the forward (projecting X whole). */
TEST(gru_repeated_rows) {
  xd_rnn_shape_t s = {5, 6, 4, 32, 2, 0, 1};
  size_t G = 3 * s.hidden, nx = s.seq * s.batch * s.input, nw = s.ndir * G * s.input, nr = s.ndir * G * s.hidden,
         nb = s.ndir * 2 * G, ny = s.seq * s.ndir * s.batch * s.hidden, nh = s.ndir * s.batch * s.hidden;
  double *x = dvec(nx), *w = dvec(nw), *r = dvec(nr), *b = dvec(nb), *yn = dzeros(ny), *yhn = dzeros(nh);
  for (size_t i = 0; i < s.seq * s.batch; i++) /* rows 0, 1, 2 of three words, over and over */
    memcpy(x + i * s.input, x + (i * 7 % 3) * s.input, s.input * sizeof *x);
  xd_gru_forward_d_naive(&s, x, w, r, b, NULL, yn, yhn);
  size_t nscr = xd_gru_scratch(&s);
  double *scr = dzeros(nscr), *y = dzeros(ny), *yh = dzeros(nh);
  xd_gru_forward_d(&s, x, w, r, b, NULL, y, yh, scr);
  CHECK(max_rel_diff_dd(y, yn, ny) < 1e-13 && max_rel_diff_dd(yh, yhn, nh) < 1e-13);
  float *xf = fcopy(x, nx), *wf = fcopy(w, nw), *rf = fcopy(r, nr), *bf = fcopy(b, nb), *yf = xd_malloc(ny * 4),
        *yhf = xd_malloc(nh * 4), *sf = xd_malloc(nscr * 4), *gyhf = fcopy(yn, nh), *d1 = xd_calloc(nx, 4),
        *d2 = xd_calloc(nx, 4);
  xd_gru_forward_f(&s, xf, wf, rf, bf, NULL, yf, yhf, sf);
  CHECK(max_rel_diff_fd(yf, yn, ny) < 1e-5 && max_rel_diff_fd(yhf, yhn, nh) < 1e-5);
  xd_gru_backward_f(&s, xf, wf, rf, bf, NULL, NULL, gyhf, d1, NULL, NULL, NULL, NULL, sf, 1);
  xd_gru_backward_f(&s, xf, wf, rf, bf, NULL, NULL, gyhf, d2, NULL, NULL, NULL, NULL, sf, 0);
  CHECK(!memcmp(d1, d2, nx * 4));
  double *all[] = {x, w, r, b, yn, yhn, scr, y, yh};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) xd_free(all[i]);
  float *allf[] = {xf, wf, rf, bf, yf, yhf, sf, gyhf, d1, d2};
  for (size_t i = 0; i < sizeof allf / sizeof *allf; i++) xd_free(allf[i]);
}

TEST(rnn_shape_rejects) {
  xd_error_t err;
  xd_rnn_shape_t s = {3, 2, 4, 5, 2, 1, 0};
  CHECK(xd_rnn_shape_init(&s, &err) == XD_EINVAL);
  s = (xd_rnn_shape_t){3, 2, 4, 5, 3, 0, 0};
  CHECK(xd_rnn_shape_init(&s, &err) == XD_EINVAL);
  s = (xd_rnn_shape_t){0, 2, 4, 5, 1, 0, 0};
  CHECK(xd_rnn_shape_init(&s, &err) == XD_EINVAL);
}

int main(void) {
  xd_rng_seed(&rng, 20261203);
  RUN(gru_matches_naive_and_fd);
  RUN(lstm_matches_naive_and_fd);
  RUN(gru_repeated_rows);
  RUN(rnn_shape_rejects);
  return TEST_REPORT();
}

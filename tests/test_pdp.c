/* test_pdp.c — partial dependence and ICE: grids against scipy's mquantiles (golden),
 * the closed form of a linear model, average = mean of individual, output selection,
 * and independence from the order in which parts run. */
#include <jansson.h>
#include <string.h>

#include "core/pdp.h"
#include "tests/imp_fixtures.h"
#include "tests/test.h"

static const char *demo[] = {"breast_cancer", "credit", "iris", "wine", "diabetes"};

static int run_parts(xd_pdp_t *p, int reverse) {
  size_t np = xd_pdp_parts(p);
  xd_error_t err;
  for (size_t q = 0; q < np; q++)
    if (xd_pdp_run(p, reverse ? np - 1 - q : q, NULL, &err) != XD_OK) {
      fprintf(stderr, "pdp part: %s\n", err.text);
      return -1;
    }
  return 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* scipy.stats.mstats.mquantiles(col, prob=[0.05, 0.95]) frozen by tools/make_models.py,
 * and the grid built from it: its first and last points are those quantiles exactly
 * (numpy.linspace sets the end point), or the unique values when there are fewer than
 * grid_resolution of them. */
TEST(grid_matches_mquantiles_golden) {
  for (size_t q = 0; q < 5; q++) {
    char path[256];
    snprintf(path, sizeof path, "tests/golden/stats_%s.json", demo[q]);
    json_error_t jerr;
    json_t *g = json_load_file(path, 0, &jerr);
    CHECK_MSG(g != NULL, "%s: %s", path, jerr.text);
    xd_model_t *m = fx_demo(demo[q]);
    CHECK(m != NULL);
    if (!g || !m) continue;
    const xd_dataset_t *bg = xd_model_background(m);
    const size_t d = xd_model_n_features(m), n = bg->n;
    json_t *feats = json_object_get(g, "features");
    CHECK(json_array_size(feats) == d);
    double *col = xd_calloc(n, sizeof *col);
    size_t checked = 0;
    for (size_t j = 0; j < d; j++) {
      json_t *f = json_array_get(feats, j);
      json_t *mq = json_object_get(f, "mquantiles_05_95");
      if (!mq) continue; /* categorical */
      double lo = json_number_value(json_array_get(mq, 0)), hi = json_number_value(json_array_get(mq, 1));
      for (size_t i = 0; i < n; i++) col[i] = bg->X[i * d + j];
      qsort(col, n, sizeof *col, cmp_d);
      CHECK_CLOSE(xd_pdp_mquantile(col, n, 0.05, 0.4, 0.4), lo, 1e-12, 1e-12);
      CHECK_CLOSE(xd_pdp_mquantile(col, n, 0.95, 0.4, 0.4), hi, 1e-12, 1e-12);
      size_t u = 1;
      for (size_t i = 1; i < n; i++) u += col[i] != col[i - 1];
      double *v = NULL;
      size_t nv = 0;
      xd_error_t err;
      int rc = xd_pdp_grid(m, bg->X, n, j, 100, 0.05, 0.95, &v, &nv, &err);
      CHECK(rc == XD_OK);
      if (rc != XD_OK) continue;
      if (u < 100) {
        CHECK(nv == u);
        CHECK(v[0] == col[0] && v[nv - 1] == col[n - 1]);
      } else {
        CHECK(nv == 100);
        CHECK_CLOSE(v[0], lo, 1e-12, 1e-12);
        CHECK_CLOSE(v[99], hi, 1e-12, 1e-12);
        for (size_t i = 1; i < nv; i++) CHECK(v[i] > v[i - 1]);
        CHECK_CLOSE(v[50], lo + 50 * (hi - lo) / 99, 1e-12, 1e-12);
      }
      xd_free(v);
      checked++;
    }
    CHECK(checked > 0);
    xd_free(col);
    json_decref(g);
    xd_model_free(m);
  }
}

/* PD of f = w·x + c along x_j is the line w_j·v + (c + mean over rows of the rest). */
TEST(linear_model_pdp_is_a_line_with_slope_w) {
  const size_t d = 3, n = 200;
  const double w[] = {1.5, -2.0, 0.25};
  const double c = 0.7;
  xd_model_t *m = fx_linear(d, w, c);
  double *X = xd_calloc(n * d, sizeof *X);
  xd_rng_t r;
  xd_rng_seed(&r, 3);
  fx_normal(&r, X, n, d, NULL, NULL);
  for (size_t j = 0; j < d; j++) {
    xd_pdp_t p;
    CHECK(xd_pdp_init(&p, m, X, n, &j, 1, 20, 0.05, 0.95, 1, 0, NULL) == XD_OK);
    CHECK(p.n_out == 1 && p.out_first == 0 && p.n_points == 20);
    CHECK(run_parts(&p, 0) == 0);
    double rest = c;
    for (size_t i = 0; i < n; i++)
      for (size_t k = 0; k < d; k++)
        if (k != j) rest += w[k] * X[i * d + k] / (double)n;
    for (size_t g = 0; g < p.n_points; g++) {
      /* predictions run in float GEMMs: single-precision tolerance */
      CHECK_NEAR(p.average[g], w[j] * p.grid[0][g] + rest, 1e-5);
      if (g) CHECK_NEAR((p.average[g] - p.average[g - 1]) / (p.grid[0][g] - p.grid[0][g - 1]), w[j], 1e-4);
    }
    /* ICE curves of an additive model are parallel: each is the PD shifted */
    for (size_t i = 0; i < n; i++) {
      double shift = p.individual[i * p.n_points] - p.average[0];
      for (size_t g = 1; g < p.n_points; g++) CHECK_NEAR(p.individual[i * p.n_points + g] - p.average[g], shift, 1e-5);
    }
    xd_pdp_deinit(&p);
  }
  /* a pair: the cartesian grid, first feature slowest */
  size_t pair[2] = {0, 2};
  xd_pdp_t p;
  CHECK(xd_pdp_init(&p, m, X, n, pair, 2, 5, 0.05, 0.95, 0, 0, NULL) == XD_OK);
  CHECK(p.n_points == 25 && p.individual == NULL);
  CHECK(run_parts(&p, 1) == 0);
  double rest = c;
  for (size_t i = 0; i < n; i++) rest += w[1] * X[i * d + 1] / (double)n;
  for (size_t a = 0; a < 5; a++)
    for (size_t b = 0; b < 5; b++)
      CHECK_NEAR(p.average[a * 5 + b], w[0] * p.grid[0][a] + w[2] * p.grid[1][b] + rest, 1e-5);
  xd_pdp_deinit(&p);
  xd_free(X);
  xd_model_free(m);
}

/* average == mean over rows of individual, for every demo model, output and point; and
 * the answer does not depend on the order of the parts. */
TEST(average_is_mean_of_individual) {
  for (size_t q = 0; q < 5; q++) {
    xd_model_t *m = fx_demo(demo[q]);
    CHECK(m != NULL);
    if (!m) continue;
    const xd_dataset_t *bg = xd_model_background(m);
    size_t j = xd_model_n_features(m) - 1;
    xd_pdp_t a, b;
    CHECK(xd_pdp_init(&a, m, bg->X, bg->n, &j, 1, 100, 0.05, 0.95, 1, 0, NULL) == XD_OK);
    CHECK(xd_pdp_init(&b, m, bg->X, bg->n, &j, 1, 100, 0.05, 0.95, 1, 0, NULL) == XD_OK);
    CHECK(run_parts(&a, 0) == 0 && run_parts(&b, 1) == 0);
    const size_t G = a.n_points, n = a.n;
    for (size_t o = 0; o < a.n_out; o++)
      for (size_t g = 0; g < G; g++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += a.individual[(o * n + i) * G + g];
        CHECK_NEAR(a.average[o * G + g], s / (double)n, 1e-12);
      }
    CHECK(memcmp(a.average, b.average, a.n_out * G * sizeof(double)) == 0);
    CHECK(memcmp(a.individual, b.individual, a.n_out * n * G * sizeof(double)) == 0);
    /* outputs: binary -> positive class only; multiclass -> all, summing to 1 */
    size_t k = xd_model_n_outputs(m);
    if (xd_model_task(m) == XD_TASK_REGRESSION)
      CHECK(a.n_out == 1 && a.out_first == 0);
    else if (k == 2)
      CHECK(a.n_out == 1 && a.out_first == 1);
    else {
      CHECK(a.n_out == k && a.out_first == 0);
      for (size_t g = 0; g < G; g++) {
        double s = 0;
        for (size_t o = 0; o < k; o++) s += a.average[o * G + g];
        CHECK_NEAR(s, 1.0, 1e-9);
      }
    }
    xd_pdp_deinit(&a);
    xd_pdp_deinit(&b);
    xd_model_free(m);
  }
}

/* Categorical features use every category; few unique values are used as they are. */
TEST(categorical_and_unique_grids) {
  xd_model_t *m = fx_demo("credit");
  CHECK(m != NULL);
  if (!m) return;
  const xd_dataset_t *bg = xd_model_background(m);
  double *v = NULL;
  size_t nv = 0;
  CHECK(xd_pdp_grid(m, bg->X, bg->n, 4, 100, 0.05, 0.95, &v, &nv, NULL) == XD_OK); /* region */
  CHECK(nv == 4);
  for (size_t c = 0; c < nv; c++) CHECK(v[c] == (double)c);
  xd_free(v);
  /* late_payments takes few integer values: the grid is those values */
  CHECK(xd_pdp_grid(m, bg->X, bg->n, 5, 100, 0.05, 0.95, &v, &nv, NULL) == XD_OK);
  CHECK(nv >= 2 && nv < 100);
  for (size_t i = 1; i < nv; i++) CHECK(v[i] > v[i - 1]);
  xd_free(v);
  xd_model_free(m);
}

/* scikit-learn refuses a grid whose two quantiles are numpy.allclose. */
TEST(degenerate_percentiles_are_refused) {
  const double w[] = {1.0};
  xd_model_t *m = fx_linear(1, w, 0);
  const size_t n = 1000;
  double *X = xd_calloc(n, sizeof *X);
  for (size_t i = 950; i < n; i++) X[i] = (double)(i - 949); /* 950 zeros, 50 distinct */
  double *v = NULL;
  size_t nv = 0;
  xd_error_t err;
  xd_error_clear(&err);
  CHECK(xd_pdp_grid(m, X, n, 0, 10, 0.05, 0.90, &v, &nv, &err) == XD_EINVAL);
  CHECK(strcmp(err.field, "percentiles") == 0);
  CHECK(v == NULL);
  /* wider percentiles reach the distinct values */
  CHECK(xd_pdp_grid(m, X, n, 0, 10, 0.05, 1.0, &v, &nv, NULL) == XD_OK);
  CHECK(nv == 10 && v[0] == 0 && v[9] == 50);
  xd_free(v);
  /* work bound: n x points over the limit is refused before allocating results */
  xd_pdp_t p;
  size_t j = 0;
  CHECK(xd_pdp_init(&p, m, X, n, &j, 1, 10, 0.05, 1.0, 1, 5000, &err) == XD_ETOOBIG);
  xd_free(X);
  xd_model_free(m);
}

/* Any failed allocation gives XD_ENOMEM and leaks nothing (ASan in make asan). */
TEST(allocation_failures_are_clean) {
  xd_model_t *m = fx_demo("iris");
  CHECK(m != NULL);
  if (!m) return;
  const xd_dataset_t *bg = xd_model_background(m);
  size_t feats[2] = {0, 3};
  int injected_any = 0;
  for (long k = 1; k < 400; k++) {
    long before = xd_alloc_failures();
    xd_alloc_fail_after(k);
    xd_pdp_t p;
    xd_error_t err;
    int rc = xd_pdp_init(&p, m, bg->X, bg->n, feats, 2, 12, 0.05, 0.95, 1, 0, &err);
    if (rc == XD_OK) {
      for (size_t q = 0; q < xd_pdp_parts(&p) && rc == XD_OK; q++) rc = xd_pdp_run(&p, q, NULL, &err);
      xd_pdp_deinit(&p);
    }
    xd_alloc_fail_after(0);
    int injected = xd_alloc_failures() > before;
    CHECK_MSG(injected ? rc == XD_ENOMEM : rc == XD_OK, "allocation %ld: rc %d", k, rc);
    injected_any |= injected;
    if (!injected) break;
  }
  CHECK(injected_any);
  xd_model_free(m);
}

int main(void) {
  RUN(grid_matches_mquantiles_golden);
  RUN(linear_model_pdp_is_a_line_with_slope_w);
  RUN(average_is_mean_of_individual);
  RUN(categorical_and_unique_grids);
  RUN(degenerate_percentiles_are_refused);
  RUN(allocation_failures_are_clean);
  return TEST_REPORT();
}

/* test_core.c — the small core modules: BLAS twins on awkward shapes, rng, sha256, CSV,
 * percentiles, status helpers. */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/dataset.h"
#include "core/dense.h"
#include "core/mat.h"
#include "core/rng.h"
#include "core/sha256.h"
#include "core/stats.h"
#include "tests/test.h"

static void fill(xd_rng_t *r, float *a, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] = (float)(xd_rng_uniform(r) * 2 - 1);
}
static void filld(xd_rng_t *r, double *a, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] = xd_rng_uniform(r) * 2 - 1;
}

/* Shapes that trip blocked kernels: vectors, K = 1, odd and prime sizes. */
static const size_t shapes[][3] = {{1, 1, 1}, {1, 37, 5}, {37, 1, 5}, {5, 7, 1}, {13, 17, 19}, {64, 3, 31}, {129, 65, 33}};

TEST(sgemm_nt_matches_naive) {
  xd_rng_t r;
  xd_rng_seed(&r, 1);
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    float *A = xd_malloc(M * K * 4), *B = xd_malloc(N * K * 4), *C1 = xd_malloc(M * N * 4), *C2 = xd_malloc(M * N * 4);
    fill(&r, A, M * K);
    fill(&r, B, N * K);
    fill(&r, C1, M * N);
    memcpy(C2, C1, M * N * 4);
    xd_sgemm_nt(M, N, K, A, B, 0.5f, C1);
    xd_sgemm_nt_naive(M, N, K, A, B, 0.5f, C2);
    for (size_t i = 0; i < M * N; i++) CHECK_NEAR(C1[i], C2[i], 1e-4);
    xd_free(A), xd_free(B), xd_free(C1), xd_free(C2);
  }
}

TEST(dgemm_twins_match_naive) {
  xd_rng_t r;
  xd_rng_seed(&r, 3);
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    double *A = xd_malloc(M * K * 8), *B = xd_malloc(K * N * 8), *C1 = xd_malloc(M * N * 8), *C2 = xd_malloc(M * N * 8);
    filld(&r, A, M * K);
    filld(&r, B, K * N);
    filld(&r, C1, M * N);
    memcpy(C2, C1, M * N * 8);
    xd_dgemm_nt(M, N, K, A, B, 1.0, C1); /* B read as (N,K) */
    xd_dgemm_nt_naive(M, N, K, A, B, 1.0, C2);
    for (size_t i = 0; i < M * N; i++) CHECK_NEAR(C1[i], C2[i], 1e-12);
    xd_dgemm_nn(M, N, K, A, B, 0.0, C1);
    xd_dgemm_nn_naive(M, N, K, A, B, 0.0, C2);
    for (size_t i = 0; i < M * N; i++) CHECK_NEAR(C1[i], C2[i], 1e-12);
    /* A read as (K,M) */
    xd_dgemm_tn(M, N, K, A, B, 0.0, C1);
    xd_dgemm_tn_naive(M, N, K, A, B, 0.0, C2);
    for (size_t i = 0; i < M * N; i++) CHECK_NEAR(C1[i], C2[i], 1e-12);
    xd_free(A), xd_free(B), xd_free(C1), xd_free(C2);
  }
}

TEST(lapack_solvers) {
  /* SPD system with a known solution, two right-hand sides. */
  double A[9] = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2}, x[6] = {1, -2, 0.5, 3, 0, -1}, B[6];
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 2; k++) {
      B[i * 2 + k] = 0;
      for (int j = 0; j < 3; j++) B[i * 2 + k] += A[i * 3 + j] * x[j * 2 + k];
    }
  double Af[9];
  memcpy(Af, A, sizeof A);
  CHECK(xd_dposv(3, 2, Af, B) == 0);
  for (int i = 0; i < 6; i++) CHECK_NEAR(B[i], x[i], 1e-12);
  /* Overdetermined least squares: y = 2 + 3t exactly on 4 points. */
  double M[8] = {1, 0, 1, 1, 1, 2, 1, 3}, y[4] = {2, 5, 8, 11};
  CHECK(xd_dgels(4, 2, 1, M, y) == 0);
  CHECK_NEAR(y[0], 2, 1e-12);
  CHECK_NEAR(y[1], 3, 1e-12);
  double S[4] = {1, 2, 2, 1}, b[2] = {1, 1}; /* indefinite: not positive definite */
  CHECK(xd_dposv(2, 1, S, b) > 0);
}

TEST(rng_is_deterministic_and_streams_differ) {
  xd_rng_t a, b, c;
  xd_rng_seed(&a, 42);
  xd_rng_seed(&b, 42);
  xd_rng_seed_stream(&c, 42, 1);
  int same = 1, diff = 0;
  for (int i = 0; i < 100; i++) {
    uint64_t x = xd_rng_next(&a), y = xd_rng_next(&b), z = xd_rng_next(&c);
    same &= x == y;
    diff += x != z;
  }
  CHECK(same);
  CHECK(diff == 100);
}

TEST(rng_distributions) {
  xd_rng_t r;
  xd_rng_seed(&r, 7);
  double s = 0, ss = 0;
  const int n = 200000;
  for (int i = 0; i < n; i++) {
    double z = xd_rng_normal(&r);
    s += z;
    ss += z * z;
  }
  CHECK_NEAR(s / n, 0, 0.01);
  CHECK_NEAR(ss / n, 1, 0.02);
  int hist[5] = {0};
  for (int i = 0; i < 50000; i++) {
    uint64_t k = xd_rng_below(&r, 5);
    CHECK(k < 5);
    if (k < 5) hist[k]++;
  }
  for (int k = 0; k < 5; k++) CHECK_NEAR(hist[k] / 50000.0, 0.2, 0.01);
  /* truncated normal stays inside and has the right mean on [0, inf): sqrt(2/pi) */
  double m = 0;
  for (int i = 0; i < n; i++) {
    double z = xd_rng_truncnorm(&r, 0, INFINITY);
    CHECK(z >= 0);
    m += z;
  }
  CHECK_NEAR(m / n, sqrt(2 / M_PI), 0.01);
  for (int i = 0; i < 1000; i++) {
    double z = xd_rng_truncnorm(&r, 7.5, 9); /* far tail */
    CHECK(z >= 7.5 && z <= 9);
    z = xd_rng_truncnorm(&r, -3, -2.5);
    CHECK(z >= -3 && z <= -2.5);
  }
  CHECK_NEAR(xd_norm_ppf(0.975), 1.959963984540054, 1e-12);
  CHECK_NEAR(xd_norm_ppf(1e-10), -6.361340902404056, 1e-9);
  double cdf[3] = {0.2, 0.2, 1.0}; /* index 1 has zero weight */
  for (int i = 0; i < 1000; i++) CHECK(xd_rng_choice_cdf(&r, cdf, 3) != 1);
}

TEST(sha256_known_vectors) {
  char h[65];
  xd_sha256_hex("abc", 3, h);
  CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
  xd_sha256_hex("", 0, h);
  CHECK(strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes: two-block padding */
  xd_sha256_hex(m, strlen(m), h);
  CHECK(strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
}

TEST(csv_parses_quotes_crlf_and_rejects_ragged) {
  const char *t = "a,\"b,c\",d\r\n1,\"x \"\"q\"\"\",3\r\n\r\n4,5,6\n";
  xd_csv_t c;
  xd_error_t err;
  CHECK(xd_csv_parse(t, strlen(t), 100, &c, &err) == XD_OK);
  CHECK(c.n_cols == 3 && c.n_rows == 2);
  CHECK(strcmp(c.header[1], "b,c") == 0);
  CHECK(strcmp(c.rows[0][1], "x \"q\"") == 0);
  CHECK(strcmp(c.rows[1][2], "6") == 0);
  xd_csv_deinit(&c);
  const char *bad = "a,b\n1,2,3\n";
  CHECK(xd_csv_parse(bad, strlen(bad), 100, &c, &err) == XD_EINVAL);
  CHECK(strstr(err.text, "line 2") != NULL);
  const char *unterminated = "a,b\n\"1,2\n";
  CHECK(xd_csv_parse(unterminated, strlen(unterminated), 100, &c, &err) == XD_EINVAL);
  const char *many = "a\n1\n2\n3\n";
  CHECK(xd_csv_parse(many, strlen(many), 2, &c, &err) == XD_ETOOBIG);
  CHECK(xd_csv_parse("", 0, 2, &c, &err) == XD_EINVAL);
  double v;
  CHECK(xd_parse_number(" 2.5e1 ", &v) == 0 && v == 25);
  CHECK(xd_parse_number("nan", &v) != 0);
  CHECK(xd_parse_number("1e999", &v) != 0);
  CHECK(xd_parse_number("3x", &v) != 0);
}

TEST(percentiles_follow_numpy_linear) {
  double s[5] = {1, 2, 3, 4, 10};
  CHECK_NEAR(xd_percentile_sorted(s, 5, 25), 2, 1e-15);
  CHECK_NEAR(xd_percentile_sorted(s, 5, 90), 7.6, 1e-12); /* np.percentile([1,2,3,4,10],90) */
  CHECK_NEAR(xd_percentile_sorted(s, 5, 100), 10, 0);
  CHECK_NEAR(xd_percentile_sorted(s, 1, 50), 1, 0);
  xd_bins_t b;
  double col[6] = {0, 0, 0, 1, 2, 3}, e[2] = {0, 1.5};
  xd_bins_fill(&b, col, 6, e, 2);
  CHECK(b.count[0] == 3 && b.count[1] == 1 && b.count[2] == 2); /* v <= edge goes left */
  CHECK_NEAR(b.mean[2], 2.5, 1e-15);
  CHECK_NEAR(b.std[2], 0.5, 1e-15);
  CHECK(b.min[0] == 0 && b.max[2] == 3 && b.min[1] == 0 && b.max[1] == 1.5);
}

TEST(alloc_failure_injection) {
  xd_alloc_fail_after(2);
  void *a = xd_malloc(8), *b = xd_malloc(8), *c = xd_malloc(8);
  CHECK(a != NULL && b == NULL && c != NULL);
  xd_free(a), xd_free(c);
  CHECK(xd_mul_size((size_t)1 << 40, (size_t)1 << 40) == 0);
}

TEST(status_helpers) {
  xd_error_t e;
  CHECK(xd_error_set(&e, XD_EINVAL, "x", "bad %d", 3) == XD_EINVAL);
  xd_error_prefix_field(&e, "layers[1]");
  CHECK(strcmp(e.field, "layers[1].x") == 0);
  CHECK(strcmp(xd_strerror(XD_ETIMEDOUT), "deadline exceeded") == 0);
  atomic_int flag = 0;
  xd_cancel_t c = {&flag, 0};
  CHECK(xd_cancel_check(&c) == XD_OK);
  atomic_store(&flag, 1);
  CHECK(xd_cancel_check(&c) == XD_ECANCELED);
  xd_cancel_t d = {NULL, xd_now_ns() - 1};
  CHECK(xd_cancel_check(&d) == XD_ETIMEDOUT);
}

int main(void) {
  xd_blas_init();
  RUN(sgemm_nt_matches_naive);
  RUN(dgemm_twins_match_naive);
  RUN(lapack_solvers);
  RUN(rng_is_deterministic_and_streams_differ);
  RUN(rng_distributions);
  RUN(sha256_known_vectors);
  RUN(csv_parses_quotes_crlf_and_rejects_ragged);
  RUN(percentiles_follow_numpy_linear);
  RUN(alloc_failure_injection);
  RUN(status_helpers);
  return TEST_REPORT();
}

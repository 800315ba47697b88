/* mat.c — BLAS/LAPACK wrappers over OpenBLAS, with naive twins.
 *
 * LAPACK is called through its Fortran symbols (dposv_, dgels_): Debian's OpenBLAS is
 * built NO_LAPACKE, but exports the Fortran LAPACK, so no second library is needed.
 * Fortran is column-major: a row-major symmetric matrix is its own transpose, and for
 * dgels we hand over the transpose and ask for 'T'. */
#include "core/mat.h"

#include <cblas.h>
#include <string.h>

#include "core/alloc.h"

extern void openblas_set_num_threads(int);
extern int openblas_get_parallel(void);
extern char *openblas_get_config(void);
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info);
extern void dgels_(const char *trans, const int *m, const int *n, const int *nrhs, double *a, const int *lda,
                   double *b, const int *ldb, double *work, const int *lwork, int *info);

void xd_blas_init(void) { openblas_set_num_threads(1); }
int xd_blas_threadsafe(void) { return openblas_get_parallel() != 0; }
const char *xd_blas_config(void) { return openblas_get_config(); }

/* ---- C = A·Bᵀ ------------------------------------------------------------------ */

void xd_sgemm_nt(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B, (int)K,
              beta, C, (int)N);
}

void xd_sgemm_nt_naive(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += (double)A[i * K + k] * B[j * K + k];
      C[i * N + j] = (float)(s + (beta != 0 ? (double)beta * C[i * N + j] : 0));
    }
}

void xd_dgemm_nt(size_t M, size_t N, size_t K, const double *A, const double *B, double beta, double *C) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0, A, (int)K, B, (int)K,
              beta, C, (int)N);
}

void xd_dgemm_nt_naive(size_t M, size_t N, size_t K, const double *A, const double *B, double beta,
                       double *C) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += A[i * K + k] * B[j * K + k];
      C[i * N + j] = s + (beta != 0 ? beta * C[i * N + j] : 0);
    }
}

/* ---- C = A·B -------------------------------------------------------------------- */

void xd_sgemm_nn(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B, (int)N,
              beta, C, (int)N);
}

void xd_sgemm_nn_naive(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += (double)A[i * K + k] * B[k * N + j];
      C[i * N + j] = (float)(s + (beta != 0 ? (double)beta * C[i * N + j] : 0));
    }
}

void xd_dgemm_nn(size_t M, size_t N, size_t K, const double *A, const double *B, double beta, double *C) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0, A, (int)K, B, (int)N,
              beta, C, (int)N);
}

void xd_dgemm_nn_naive(size_t M, size_t N, size_t K, const double *A, const double *B, double beta,
                       double *C) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
      C[i * N + j] = s + (beta != 0 ? beta * C[i * N + j] : 0);
    }
}

/* ---- C = Aᵀ·B ------------------------------------------------------------------- */

void xd_dgemm_tn(size_t M, size_t N, size_t K, const double *A, const double *B, double beta, double *C) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0, A, (int)M, B, (int)N,
              beta, C, (int)N);
}

void xd_dgemm_tn_naive(size_t M, size_t N, size_t K, const double *A, const double *B, double beta,
                       double *C) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++) s += A[k * M + i] * B[k * N + j];
      C[i * N + j] = s + (beta != 0 ? beta * C[i * N + j] : 0);
    }
}

/* ---- C = alpha·op(A)·op(B) + beta·C, strided ----------------------------------------- */

void xd_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) { /* nothing to multiply: BLAS would reject the strides */
    for (size_t i = 0; i < M; i++)
      for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta != 0 ? beta * C[i * ldc + j] : 0;
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void xd_sgemm_naive(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                    size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++)
        s += (double)(transA ? A[k * lda + i] : A[i * lda + k]) * (transB ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = (float)((double)alpha * s + (beta != 0 ? (double)beta * C[i * ldc + j] : 0));
    }
}

void xd_dgemm(int transA, int transB, size_t M, size_t N, size_t K, double alpha, const double *A, size_t lda,
              const double *B, size_t ldb, double beta, double *C, size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) { /* nothing to multiply: BLAS would reject the strides */
    for (size_t i = 0; i < M; i++)
      for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta != 0 ? beta * C[i * ldc + j] : 0;
    return;
  }
  cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void xd_dgemm_naive(int transA, int transB, size_t M, size_t N, size_t K, double alpha, const double *A,
                    size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc) {
  for (size_t i = 0; i < M; i++)
    for (size_t j = 0; j < N; j++) {
      double s = 0;
      for (size_t k = 0; k < K; k++)
        s += (transA ? A[k * lda + i] : A[i * lda + k]) * (transB ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * s + (beta != 0 ? beta * C[i * ldc + j] : 0);
    }
}

/* ---- LAPACK ------------------------------------------------------------------------ */

int xd_dposv(size_t n, size_t nrhs, double *A, double *B) {
  /* A is symmetric, so row-major A is column-major A. B must be handed over column-major:
   * transpose it in and out when it has more than one column. */
  int in = (int)n, inrhs = (int)nrhs, info = 0;
  if (nrhs == 1) {
    dposv_("L", &in, &inrhs, A, &in, B, &in, &info);
    return info;
  }
  double *Bt = xd_malloc(xd_mul_size(n, nrhs) * sizeof *Bt);
  if (!Bt) return -1;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < nrhs; j++) Bt[j * n + i] = B[i * nrhs + j];
  dposv_("L", &in, &inrhs, A, &in, Bt, &in, &info);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < nrhs; j++) B[i * nrhs + j] = Bt[j * n + i];
  xd_free(Bt);
  return info;
}

int xd_dgels(size_t m, size_t n, size_t nrhs, double *A, double *B) {
  /* Row-major A (m,n) is column-major Aᵀ (n,m): solve with trans='T'. B is handed over
   * column-major with leading dimension max(m,n). */
  int im = (int)n, in = (int)m, inrhs = (int)nrhs, info = 0;
  size_t ldb = m > n ? m : n;
  int ildb = (int)ldb, lwork = -1;
  double wq;
  double *Bt = xd_malloc(xd_mul_size(ldb, nrhs) * sizeof *Bt);
  if (!Bt) return -1;
  for (size_t i = 0; i < ldb; i++)
    for (size_t j = 0; j < nrhs; j++) Bt[j * ldb + i] = B[i * nrhs + j];
  dgels_("T", &im, &in, &inrhs, A, &im, Bt, &ildb, &wq, &lwork, &info);
  lwork = (int)wq;
  double *work = info == 0 ? xd_malloc((size_t)(lwork > 1 ? lwork : 1) * sizeof *work) : NULL;
  if (work) {
    dgels_("T", &im, &in, &inrhs, A, &im, Bt, &ildb, work, &lwork, &info);
    for (size_t i = 0; i < ldb; i++)
      for (size_t j = 0; j < nrhs; j++) B[i * nrhs + j] = Bt[j * ldb + i];
  } else if (info == 0) {
    info = -1;
  }
  xd_free(work);
  xd_free(Bt);
  return info;
}

/* mat.h — the BLAS calls of explaind, each with a plain-loop twin for the tests.
 *
 * All matrices are row-major and dense. Shapes are written (rows, cols).
 * OpenBLAS runs single-threaded inside each worker (xd_blas_init): parallelism comes
 * from the worker pool, so concurrent callers never fight over BLAS threads.
 * Every function here may be called from any thread at once.
 */
#ifndef XD_MAT_H
#define XD_MAT_H

#include <stddef.h>

/* Sets OpenBLAS to one thread. Call once at start-up, before any worker exists. */
void xd_blas_init(void);
/* 1 when the linked OpenBLAS is safe for concurrent callers (the pthread or OpenMP
 * build); 0 for the serial build, which returns wrong sgemm results under concurrency. */
int xd_blas_threadsafe(void);
/* OpenBLAS's own configuration string (static storage). */
const char *xd_blas_config(void);

/* C (M,N) = A (M,K) · B(N,K)ᵀ + beta·C — a dense layer forward: X·Wᵀ. */
void xd_sgemm_nt(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C);
void xd_sgemm_nt_naive(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C);
void xd_dgemm_nt(size_t M, size_t N, size_t K, const double *A, const double *B, double beta, double *C);
void xd_dgemm_nt_naive(size_t M, size_t N, size_t K, const double *A, const double *B, double beta,
                       double *C);

/* C (M,N) = A (M,K) · B (K,N) + beta·C — a dense layer backward: dY·W. */
void xd_sgemm_nn(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C);
void xd_sgemm_nn_naive(size_t M, size_t N, size_t K, const float *A, const float *B, float beta, float *C);
void xd_dgemm_nn(size_t M, size_t N, size_t K, const double *A, const double *B, double beta, double *C);
void xd_dgemm_nn_naive(size_t M, size_t N, size_t K, const double *A, const double *B, double beta,
                       double *C);

/* C (M,N) = A (K,M)ᵀ · B (K,N) + beta·C — normal equations XᵀX, XᵀY. */
void xd_dgemm_tn(size_t M, size_t N, size_t K, const double *A, const double *B, double beta, double *C);
void xd_dgemm_tn_naive(size_t M, size_t N, size_t K, const double *A, const double *B, double beta,
                       double *C);

/* General strided GEMM, the form the graph kernels need (sub-blocks of gate matrices,
 * column slices): C (M,N) = alpha·op(A)·op(B) + beta·C with op(X) = Xᵀ when the trans
 * flag is set. op(A) is (M,K), op(B) is (K,N); lda, ldb, ldc are the row strides of A,
 * B, C as stored (row-major). beta = 0 never reads C. */
void xd_sgemm(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
              const float *B, size_t ldb, float beta, float *C, size_t ldc);
void xd_sgemm_naive(int transA, int transB, size_t M, size_t N, size_t K, float alpha, const float *A,
                    size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
void xd_dgemm(int transA, int transB, size_t M, size_t N, size_t K, double alpha, const double *A, size_t lda,
              const double *B, size_t ldb, double beta, double *C, size_t ldc);
void xd_dgemm_naive(int transA, int transB, size_t M, size_t N, size_t K, double alpha, const double *A,
                    size_t lda, const double *B, size_t ldb, double beta, double *C, size_t ldc);

/* Solves A x = b for symmetric positive definite A (n,n) with nrhs right-hand sides
 * B (n,nrhs), row-major, in place (LAPACK dposv). A is overwritten by its Cholesky
 * factor, B by the solution. Returns 0, or >0 when A is not positive definite. */
int xd_dposv(size_t n, size_t nrhs, double *A, double *B);

/* Least squares min ||A x - b|| for A (m,n) row-major, B (max(m,n), nrhs) in place
 * (LAPACK dgels, A of full rank). Returns 0 or the LAPACK info. */
int xd_dgels(size_t m, size_t n, size_t nrhs, double *A, double *B);

#endif

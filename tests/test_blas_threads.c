/* test_blas_threads.c — the linked OpenBLAS is safe for concurrent callers.
 *
 * Debian's serial OpenBLAS 0.3.21 returns silently wrong sgemm results when several
 * threads call it at once (docs/serving.md §6.3: wrong at 4+ threads with 96x96 matrices); the
 * pthread build with one BLAS thread is correct. This runs xd_sgemm_nt from 8 threads,
 * 200 times each on 96x96 matrices, and checks every result against the naive twin. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/mat.h"
#include "tests/test.h"

enum { THREADS = 8, ITERS = 200, N = 96 };

typedef struct worker {
  pthread_t t;
  unsigned seed;
  int bad; /* results that differed from the naive product */
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  float *A = malloc(sizeof(float) * N * N), *B = malloc(sizeof(float) * N * N);
  float *C = malloc(sizeof(float) * N * N), *R = malloc(sizeof(float) * N * N);
  unsigned s = w->seed;
  for (int i = 0; i < N * N; i++) {
    s = s * 1103515245u + 12345u; /* this thread's own inputs: a wrong result cannot match by luck */
    A[i] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
    s = s * 1103515245u + 12345u;
    B[i] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
  }
  xd_sgemm_nt_naive(N, N, N, A, B, 0.0f, R); /* the same inputs every iteration: one reference */
  for (int it = 0; it < ITERS; it++) {
    memset(C, 0xff, sizeof(float) * N * N); /* NaN: a skipped write cannot pass */
    xd_sgemm_nt(N, N, N, A, B, 0.0f, C);
    for (int i = 0; i < N * N; i++)
      if (!(fabsf(C[i] - R[i]) <= 1e-3f * (1.0f + fabsf(R[i])))) {
        w->bad++;
        break;
      }
  }
  free(A);
  free(B);
  free(C);
  free(R);
  return NULL;
}

TEST(blas_is_threadsafe_build) {
  xd_blas_init();
  CHECK_MSG(xd_blas_threadsafe() == 1, "OpenBLAS config: %s", xd_blas_config());
}

TEST(concurrent_sgemm_matches_naive) {
  worker_t w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker_t){.seed = 1234u + 7919u * (unsigned)i};
    pthread_create(&w[i].t, NULL, worker_main, &w[i]);
  }
  int bad = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(w[i].t, NULL);
    bad += w[i].bad;
  }
  CHECK_MSG(bad == 0, "%d of %d concurrent sgemm results were wrong", bad, THREADS * ITERS);
}

int main(void) {
  RUN(blas_is_threadsafe_build);
  RUN(concurrent_sgemm_matches_naive);
  return TEST_REPORT();
}

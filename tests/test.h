/* test.h — the tiny test harness every tests/test_*.c uses.
 *
 * Each test file is its own program (a crash in one cannot hide another's results):
 *   TEST(name) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-9); }
 *   int main(void) { RUN(name); ...; return TEST_REPORT(); }
 * A test passes when none of its checks failed. TEST_REPORT prints the closing line
 * "N passed, N failed" and returns the exit status.
 */
#ifndef XD_TEST_H
#define XD_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int xd_test_passed, xd_test_failed, xd_test_cur_failed;
static const char *xd_test_cur_name = "";

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      xd_test_cur_failed++;                                                               \
      fprintf(stderr, "  FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, xd_test_cur_name, #cond); \
    }                                                                                     \
  } while (0)

#define CHECK_MSG(cond, ...)                                                           \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      xd_test_cur_failed++;                                                            \
      fprintf(stderr, "  FAIL %s:%d [%s]: %s: ", __FILE__, __LINE__, xd_test_cur_name, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                    \
      fprintf(stderr, "\n");                                                           \
    }                                                                                  \
  } while (0)

/* |a-b| <= tol, NaN-safe (NaN never passes). */
#define CHECK_NEAR(a, b, tol)                                                                       \
  do {                                                                                              \
    double xd_a_ = (double)(a), xd_b_ = (double)(b);                                                \
    if (!(fabs(xd_a_ - xd_b_) <= (tol))) {                                                          \
      xd_test_cur_failed++;                                                                         \
      fprintf(stderr, "  FAIL %s:%d [%s]: %s = %.17g, %s = %.17g, tol %g\n", __FILE__, __LINE__,    \
              xd_test_cur_name, #a, xd_a_, #b, xd_b_, (double)(tol));                               \
    }                                                                                               \
  } while (0)

/* Relative closeness: |a-b| <= rtol*max(|a|,|b|) + atol. */
#define CHECK_CLOSE(a, b, rtol, atol)                                                                 \
  do {                                                                                                \
    double xd_a_ = (double)(a), xd_b_ = (double)(b);                                                  \
    double xd_m_ = fabs(xd_a_) > fabs(xd_b_) ? fabs(xd_a_) : fabs(xd_b_);                             \
    if (!(fabs(xd_a_ - xd_b_) <= (rtol) * xd_m_ + (atol))) {                                          \
      xd_test_cur_failed++;                                                                           \
      fprintf(stderr, "  FAIL %s:%d [%s]: %s = %.17g, %s = %.17g\n", __FILE__, __LINE__,              \
              xd_test_cur_name, #a, xd_a_, #b, xd_b_);                                                \
    }                                                                                                 \
  } while (0)

#define RUN(name)                                         \
  do {                                                    \
    xd_test_cur_name = #name;                             \
    xd_test_cur_failed = 0;                               \
    name();                                               \
    if (xd_test_cur_failed) {                             \
      xd_test_failed++;                                   \
      fprintf(stderr, "FAIL %s\n", #name);                \
    } else {                                              \
      xd_test_passed++;                                   \
      fprintf(stderr, "ok   %s\n", #name);                \
    }                                                     \
  } while (0)

#define TEST_REPORT() \
  (printf("%d passed, %d failed\n", xd_test_passed, xd_test_failed), xd_test_failed ? 1 : 0)

#endif

/* hotloop.h — XD_HOT_LOOP, the attribute of core/'s elementwise hot loops. */
#ifndef XD_HOTLOOP_H
#define XD_HOTLOOP_H

/* Elementwise hot loops: vectorized, and with GCC also cloned for AVX-512 and AVX2 and
 * picked at load time (ifunc), since the build targets baseline x86-64. Their operations
 * (copies, max with 0, a subtract then a multiply, conversions) are exact IEEE steps that
 * no FMA can fuse, so every clone gives the same bits. No memset/memcpy pattern calls:
 * a call per short row costs more than the row. */
/* Not under ThreadSanitizer: an ifunc resolver runs before TSan's runtime is ready and
 * crashes the process at load (as core/lime_fit.c's popcnt clone). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define XD_HOT_LOOP                                          \
  __attribute__((target_clones("avx512f", "avx2", "default"), \
                 optimize("tree-vectorize", "no-tree-loop-distribute-patterns")))
#elif defined(__GNUC__) && !defined(__clang__)
#define XD_HOT_LOOP __attribute__((optimize("tree-vectorize", "no-tree-loop-distribute-patterns")))
#else
#define XD_HOT_LOOP /* clang vectorizes at -O2 and has no optimize attribute */
#endif

/* Loops with a multiply then an add that an FMA would fuse (different bits on AVX2
 * machines): vectorized for the baseline (SSE2, which has no FMA) only, never cloned. */
#if defined(__GNUC__) && !defined(__clang__)
#define XD_VEC_LOOP __attribute__((optimize("tree-vectorize", "no-tree-loop-distribute-patterns")))
#else
#define XD_VEC_LOOP
#endif

#endif

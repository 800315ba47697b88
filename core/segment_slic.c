/* segment_slic.c — SLIC superpixels (Achanta et al. 2012) with the behaviour of
 * scikit-image 0.19's skimage.segmentation.slic for 2-D images without a mask
 * (slic_zero off, spacing 1, start_label 0). See segment.h and docs/segmentation.md.
 *
 * Steps, in scikit-image's order:
 *   1. rescale the whole image (all channels) so that its min..max becomes 0..1;
 *   2. RGB -> CIELAB (a gray image as R = G = B, as lime's gray2rgb);
 *   3. Gaussian smoothing with sigma on the Lab planes;
 *   4. colours divided by compactness; centres on regular_grid((1, H, W), n_segments);
 *   5. k-means rounds: every centre claims the pixels of its window of ±2 grid steps
 *      (the grid recomputed for the actual number of centres, as _slic_cython does) whose
 *      distance colour² + space²/step² is strictly smaller than their current best (so
 *      the lower centre index wins ties); stop early when no pixel changed; centres move
 *      to the means of their pixels (a centre left without pixels is dropped: scikit-image
 *      divides 0 by 0 and its NaN centre never wins a pixel again);
 *   6. connectivity: components in raster order by breadth-first search; a component
 *      smaller than min_size takes the label of the last different labelled neighbour its
 *      search met; a search stops at max_size pixels (the rest becomes a new component). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/segment.h"

/* ---- scikit-image's util.regular_grid for the shape (1, H, W) --------------------------- */

typedef struct grid {
  int start_y, start_x, step_y, step_x;
} grid_t;

/* numpy.round: half to even */
static int round_even(double v) {
  double r = nearbyint(v); /* the default rounding mode is to nearest, ties to even */
  return (int)r;
}

static grid_t regular_grid(int H, int W, double n_points) {
  grid_t g = {0, 0, 1, 1};
  double space = (double)H * W;
  if (space <= n_points) return g;
  /* the dimensions sorted ascending: depth 1, then the shorter side, then the longer */
  double a = H <= W ? H : W, b = H <= W ? W : H;
  double st1, st2;
  /* the cube root step (space/n)^(1/3) exceeds the depth 1, so the depth is fixed at 1 and
   * the two sides get sqrt(space/n); if the shorter side cannot hold that step it is fixed
   * at its length and the longer side gets b/n */
  st1 = st2 = pow(space / n_points, 0.5);
  if (!(a >= st1 && b >= st2)) {
    st1 = a;
    st2 = pow(b / n_points, 1.0);
  }
  int start1 = (int)floor(st1 / 2), start2 = (int)floor(st2 / 2);
  int step1 = round_even(st1), step2 = round_even(st2);
  if (H <= W) g = (grid_t){start1, start2, step1, step2};
  else g = (grid_t){start2, start1, step2, step1};
  if (g.step_y < 1) g.step_y = 1; /* not reached for n_points >= 1; keeps loops finite */
  if (g.step_x < 1) g.step_x = 1;
  return g;
}

/* ---- k-means ------------------------------------------------------------------------------ */

/* img [C][H][W] scaled colours; ctr [K][2 + C] (y, x, colours); lab [H][W] out. */
static int kmeans(const double *img, int C, int H, int W, double *ctr, int K, double step, int max_iter,
                  int32_t *lab, double *dist, double *acc, size_t *cnt, const xd_cancel_t *cancel) {
  size_t n = (size_t)H * W;
  int F = 2 + C;
  grid_t wg = regular_grid(H, W, (double)K);
  double spatial_weight = 1.0 / (step * step);
  for (size_t i = 0; i < n; i++) lab[i] = -1;
  for (int it = 0; it < max_iter; it++) {
    int rc = xd_cancel_check(cancel);
    if (rc) return rc;
    int change = 0;
    for (size_t i = 0; i < n; i++) dist[i] = INFINITY;
    for (int k = 0; k < K; k++) {
      const double *c = ctr + (size_t)k * F;
      if (isnan(c[0])) continue; /* a dropped centre */
      double cy = c[0], cx = c[1];
      int y0 = (int)fmax(cy - 2 * wg.step_y, 0), y1 = (int)fmin(cy + 2 * wg.step_y + 1, H);
      int x0 = (int)fmax(cx - 2 * wg.step_x, 0), x1 = (int)fmin(cx + 2 * wg.step_x + 1, W);
      for (int y = y0; y < y1; y++) {
        double dy = cy - y;
        dy *= dy;
        for (int x = x0; x < x1; x++) {
          double dx = cx - x, d = (dy + dx * dx) * spatial_weight;
          size_t i = (size_t)y * W + x;
          for (int ch = 0; ch < C; ch++) {
            double t = img[ch * n + i] - c[2 + ch];
            d += t * t;
          }
          if (dist[i] > d) {
            lab[i] = k;
            dist[i] = d;
            change = 1;
          }
        }
      }
    }
    if (!change) break;
    memset(acc, 0, (size_t)K * F * sizeof *acc);
    memset(cnt, 0, (size_t)K * sizeof *cnt);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        size_t i = (size_t)y * W + x;
        if (lab[i] < 0) continue;
        double *a = acc + (size_t)lab[i] * F;
        cnt[lab[i]]++;
        a[0] += y;
        a[1] += x;
        for (int ch = 0; ch < C; ch++) a[2 + ch] += img[ch * n + i];
      }
    for (int k = 0; k < K; k++)
      for (int f = 0; f < F; f++) ctr[(size_t)k * F + f] = cnt[k] ? acc[(size_t)k * F + f] / (double)cnt[k] : NAN;
  }
  return XD_OK;
}

/* ---- connectivity -------------------------------------------------------------------------- */

/* seg [H][W] labels >= 0 -> out [H][W] connected labels from 0; queue holds max_size
 * pixel indices. Returns the number of labels. */
static int connectivity(const int32_t *seg, int H, int W, int min_size, int max_size, int32_t *out, size_t *queue) {
  static const int ddy[4] = {0, 0, 1, -1}, ddx[4] = {1, -1, 0, 0};
  size_t n = (size_t)H * W;
  int next = 0;
  for (size_t i = 0; i < n; i++) out[i] = -1;
  for (size_t s = 0; s < n; s++) {
    if (out[s] >= 0) continue;
    int adjacent = next, label = seg[s];
    out[s] = next;
    size_t size = 1, visited = 0;
    queue[0] = s;
    while (visited < size && size < (size_t)max_size) {
      int y = (int)(queue[visited] / W), x = (int)(queue[visited] % W);
      for (int d = 0; d < 4; d++) {
        int yy = y + ddy[d], xx = x + ddx[d];
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        size_t j = (size_t)yy * W + xx;
        if (seg[j] == label && out[j] < 0) {
          out[j] = next;
          queue[size++] = j;
          if (size >= (size_t)max_size) break;
        } else if (out[j] >= 0 && out[j] != next) {
          adjacent = out[j];
        }
      }
      visited++;
    }
    if (size < (size_t)min_size) {
      for (size_t q = 0; q < size; q++) out[queue[q]] = adjacent;
    } else {
      next++;
    }
  }
  /* a first component too small with no labelled neighbour keeps label `next` without
   * advancing it, so the labels are 0..next-1, or 0..next when that happened last */
  int used = next;
  for (size_t i = 0; i < n; i++)
    if (out[i] >= used) used = out[i] + 1;
  return used;
}

/* ---- entry point ---------------------------------------------------------------------------- */

int xd_segment_slic(const xd_segment_params_t *p, const float *img, int C, int H, int W, int32_t *labels,
                    int *n_segments, const xd_cancel_t *cancel, xd_error_t *err) {
  size_t n = (size_t)H * W;
  int rc = XD_ENOMEM;
  double *planes = NULL, *scratch = NULL, *ctr = NULL, *dist = NULL, *acc = NULL;
  size_t *cnt = NULL, *queue = NULL;
  int32_t *km = NULL;

  /* 1-2. min-max rescale of every channel together, then Lab */
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < (size_t)C * n; i++) {
    lo = fmin(lo, img[i]);
    hi = fmax(hi, img[i]);
  }
  double scale = hi - lo > 0 ? 1.0 / (hi - lo) : 1.0;
  planes = xd_malloc(xd_mul_size(3 * n, sizeof *planes));
  scratch = xd_malloc(xd_mul_size(xd_segment_gaussian_scratch(p->sigma, H, W), sizeof *scratch));
  if (!planes || !scratch) goto done;
  int Cp = xd_segment_prepare(img, C, H, W, -lo, scale, p->convert2lab, planes);
  /* 3. smoothing; 4. colour weight */
  xd_segment_gaussian(planes, Cp, H, W, p->sigma, scratch);
  for (size_t i = 0; i < (size_t)Cp * n; i++) planes[i] /= p->compactness;

  /* 4. centres on the grid */
  grid_t g = regular_grid(H, W, (double)p->n_segments);
  int ny = (H - g.start_y + g.step_y - 1) / g.step_y, nx = (W - g.start_x + g.step_x - 1) / g.step_x;
  int K = ny * nx, F = 2 + Cp;
  double step = fmax(1.0, fmax(g.step_y, g.step_x));
  ctr = xd_malloc(xd_mul_size((size_t)K * F, sizeof *ctr));
  acc = xd_malloc(xd_mul_size((size_t)K * F, sizeof *acc));
  cnt = xd_malloc(xd_mul_size((size_t)K, sizeof *cnt));
  dist = xd_malloc(xd_mul_size(n, sizeof *dist));
  km = xd_malloc(xd_mul_size(n, sizeof *km));
  if (!ctr || !acc || !cnt || !dist || !km) goto done;
  for (int iy = 0; iy < ny; iy++)
    for (int ix = 0; ix < nx; ix++) {
      double *c = ctr + ((size_t)iy * nx + ix) * F;
      c[0] = g.start_y + iy * g.step_y;
      c[1] = g.start_x + ix * g.step_x;
      for (int ch = 0; ch < Cp; ch++) c[2 + ch] = 0; /* scikit-image starts colours at 0 */
    }

  /* 5. k-means */
  rc = kmeans(planes, Cp, H, W, ctr, K, step, p->max_num_iter, km, dist, acc, cnt, cancel);
  if (rc) {
    xd_error_set(err, rc, NULL, "segmentation stopped: %s", xd_strerror(rc));
    goto done;
  }

  /* 6. connectivity, or a plain renumbering of the clusters that kept pixels */
  if (p->enforce_connectivity) {
    double segment_size = (double)n / K;
    int min_size = (int)(p->min_size_factor * segment_size), max_size = (int)(p->max_size_factor * segment_size);
    if (max_size < 1) max_size = 1;
    queue = xd_malloc(xd_mul_size((size_t)max_size, sizeof *queue));
    if (!queue) {
      rc = XD_ENOMEM;
      goto done;
    }
    *n_segments = connectivity(km, H, W, min_size, max_size, labels, queue);
  } else {
    memcpy(labels, km, n * sizeof *labels);
    int s = xd_segment_relabel(labels, n);
    if (s < 0) {
      rc = XD_ENOMEM;
      goto done;
    }
    *n_segments = s;
  }
  rc = XD_OK;
done:
  if (rc == XD_ENOMEM) xd_error_set(err, rc, NULL, "out of memory while segmenting a %d×%d image", H, W);
  xd_free(planes);
  xd_free(scratch);
  xd_free(ctr);
  xd_free(acc);
  xd_free(cnt);
  xd_free(dist);
  xd_free(km);
  xd_free(queue);
  return rc;
}

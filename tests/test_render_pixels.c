/* test_render_pixels.c — the pixels of `"render": true`, decoded from the answers' PNGs
 * with libspng directly and compared, every pixel, with a computation written here from
 * the definition in docs/image_explanations.md ("How the pixels are made"):
 *
 *   - colours come from web/colormaps.js, the 8-bit tables tools/make_colormaps.py writes
 *     from matplotlib (not from core/render_cmap.c): their ends are matplotlib's published
 *     viridis and coolwarm colours, coolwarm's centre entry is gray, and each entry equals
 *     xd_render_color's (the page's legend is the server's);
 *   - a known map through xd_render_heatmap: value v -> entry min(floor(t·256), 255) of
 *     t = (v − lo)/(hi − lo), over [−m, m] (signed) or [min, max]; 0 is the neutral gray;
 *     the overlay is round(0.5·picture + 0.5·colour); the legend strip (2 white rows, the
 *     bar, black ticks at lo, 0, hi);
 *   - the API (models/shapes, in process): integrated gradients, saliency, Grad-CAM and
 *     occlusion over a picture sent as raw pixels: size W × (H + strip), 8-bit RGB, every
 *     pixel from the answer's own heatmaps and the picture, and "legends" = the range;
 *   - LIME and Kernel SHAP with given segments (a scikit-image slic map): the PNG is the
 *     picture with exactly the pixels of find_boundaries(mask, mode="outer") of the 5
 *     strongest positive segments in yellow, where find_boundaries is written here as
 *     scikit-image and scipy compute it (whole-image dilations and erosions, scipy's
 *     separable minimum through double) and checked first against scikit-image's own
 *     outputs in tests/golden/segment/;
 *   - GET /models/shapes?background=N answers the bundle's pictures, pixel for pixel.
 * Run from the repository root. */
#include <jansson.h>
#include <math.h>
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/registry.h"
#include "api/store.h"
#include "core/alloc.h"
#include "core/base64.h"
#include "core/mat.h"
#include "core/render.h"
#include "tests/test.h"

#define SEG_DIR "tests/golden/segment/"
#define H 32
#define W 32
#define C 3

static uint8_t viridis[256][3], coolwarm[256][3];
static xd_api_t *api;
static xd_registry_t *reg;

/* ---- the reference colour tables: web/colormaps.js -------------------------------------- */

static int read_table(const char *js, const char *key, uint8_t tab[256][3]) {
  const char *p = strstr(js, key);
  if (!p || !(p = strchr(p, '\n'))) return -1;
  for (int i = 0; i < 256; i++) {
    int r, g, b, n = 0;
    if (!(p = strchr(p, '[')) || sscanf(p, "[%d,%d,%d]%n", &r, &g, &b, &n) != 3 || n == 0) return -1;
    if (r < 0 || r > 255 || g < 0 || g > 255 || b < 0 || b > 255) return -1;
    tab[i][0] = (uint8_t)r, tab[i][1] = (uint8_t)g, tab[i][2] = (uint8_t)b;
    p += n;
  }
  return 0;
}

static int load_tables(void) {
  FILE *f = fopen("web/colormaps.js", "r");
  if (!f) return -1;
  static char js[65536];
  size_t n = fread(js, 1, sizeof js - 1, f);
  fclose(f);
  js[n] = 0;
  return read_table(js, "viridis: [", viridis) || read_table(js, "coolwarm: [", coolwarm) ? -1 : 0;
}

/* The colour of v in [lo, hi] (the definition; the middle when the range is empty). */
static const uint8_t *ref_colour(int signed_map, double v, double lo, double hi) {
  double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
  int k = t > 0 ? (int)floor(t * 256) : 0;
  if (k > 255) k = 255;
  return signed_map ? coolwarm[k] : viridis[k];
}

static uint8_t blend(uint8_t picture, uint8_t colour) { return (uint8_t)lround(0.5 * picture + 0.5 * colour); }

static int same(const uint8_t *a, const uint8_t *b) { return a[0] == b[0] && a[1] == b[1] && a[2] == b[2]; }

TEST(tables_are_matplotlibs_and_the_servers) {
  static const uint8_t v0[3] = {68, 1, 84}, v1[3] = {253, 231, 37}, c0[3] = {59, 76, 192}, c1[3] = {180, 4, 38};
  CHECK(same(viridis[0], v0) && same(viridis[255], v1)); /* #440154, #fde725 */
  CHECK(same(coolwarm[0], c0) && same(coolwarm[255], c1)); /* Moreland's cool and warm ends */
  const uint8_t *mid = coolwarm[128];                     /* the centre: light and gray */
  CHECK(abs(mid[0] - mid[1]) <= 3 && abs(mid[1] - mid[2]) <= 3 && mid[0] > 200);
  int differ = 0;
  for (int i = 0; i < 256; i++) {
    uint8_t c[3];
    xd_render_color(XD_RENDER_VIRIDIS, (i + 0.5) / 256, c);
    differ += !same(c, viridis[i]);
    xd_render_color(XD_RENDER_COOLWARM, (i + 0.5) / 256, c);
    differ += !same(c, coolwarm[i]);
  }
  CHECK_MSG(differ == 0, "%d entries of web/colormaps.js differ from the server's", differ);
}

/* ---- a known map through the renderer ---------------------------------------------------- */

/* The strip under a W-wide picture of height h: 2 white rows, the bar, 3 tick rows. */
static int strip_mismatches(const uint8_t *s, int w, int h, int signed_map, double lo, double hi) {
  int L = h / 6 < 8 ? 8 : h / 6 > 32 ? 32 : h / 6, bad = 0;
  static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
  int x_zero = lo <= 0 && 0 <= hi ? (int)lround((0 - lo) / (hi - lo) * (w - 1)) : -1;
  for (int y = 0; y < L; y++)
    for (int x = 0; x < w; x++) {
      const uint8_t *p = s + ((size_t)y * w + x) * 3, *want;
      if (y < 2) want = white;
      else if (y < L - 3) want = ref_colour(signed_map, x, 0, w - 1);
      else want = x == 0 || x == w - 1 || x == x_zero ? black : white;
      bad += !same(p, want);
    }
  return bad;
}

TEST(known_map_pixels) {
  enum { h = 12, w = 40 };
  float heat[h * w];
  uint8_t base[h * w * 3];
  for (int i = 0; i < h * w; i++) {
    heat[i] = (float)((i % 41) - 15) / 8.0f; /* -1.875 .. 3.125, exact 0 at i % 41 == 15 */
    for (int c = 0; c < 3; c++) base[i * 3 + c] = (uint8_t)((i * 7 + c * 91) % 256);
  }
  int L = xd_render_legend_height(h);
  CHECK(L == 8);
  uint8_t *out = malloc((size_t)(h + L) * w * 3), *pure = malloc((size_t)h * w * 3);
  for (int signed_map = 0; signed_map < 2; signed_map++) {
    double lo = signed_map ? -3.125 : -1.875, hi = 3.125;
    xd_render_options_t o = {signed_map, 0.5, 1};
    xd_render_legend_t lg;
    CHECK(xd_render_heatmap(&o, heat, h, w, base, out, &lg, NULL) == XD_OK);
    CHECK(lg.lo == lo && lg.hi == hi);
    int bad = 0;
    for (int i = 0; i < h * w; i++) {
      const uint8_t *col = ref_colour(signed_map, heat[i], lo, hi);
      for (int c = 0; c < 3; c++) bad += out[i * 3 + c] != blend(base[i * 3 + c], col[c]);
    }
    CHECK_MSG(bad == 0, "signed %d: %d overlay values differ", signed_map, bad);
    CHECK_MSG(strip_mismatches(out + (size_t)h * w * 3, w, h, signed_map, lo, hi) == 0, "signed %d: strip", signed_map);
    /* without a picture: the pure colours; with the diverging map 0 is the gray centre */
    xd_render_options_t pure_o = {signed_map, 0.5, 0};
    CHECK(xd_render_heatmap(&pure_o, heat, h, w, NULL, pure, NULL, NULL) == XD_OK);
    bad = 0;
    for (int i = 0; i < h * w; i++) bad += !same(pure + i * 3, ref_colour(signed_map, heat[i], lo, hi));
    CHECK_MSG(bad == 0, "signed %d: %d pure colours differ", signed_map, bad);
    if (signed_map) CHECK(same(pure + 15 * 3, coolwarm[128]) && heat[15] == 0);
  }
  free(out);
  free(pure);
}

/* ---- find_boundaries(mode="outer") as scikit-image and scipy compute it ------------------ */

/* Each neighbour index clamped to the image: scipy's "reflect" mode for 3-wide windows. */
static int clampi(int v, int n) { return v < 0 ? 0 : v >= n ? n - 1 : v; }

/* labels [h][w] (int64 as lime's mask is) -> out [h][w] 0/1. With background b:
 *   boundaries = dilation(labels, cross) != erosion(labels, cross)
 *   adjacent   = dilation(labels, square) != erosion(labels with b -> INT64_MAX, square)
 *   out        = boundaries & (labels == b | (adjacent & labels != b))
 * scipy's square erosion is a minimum along axis 0, then along axis 1, each 1-D pass
 * computed in double: INT64_MAX becomes 2^63, which converts back as INT64_MIN. */
static void ref_find_boundaries_outer(const int64_t *lab, int h, int w, int64_t b, uint8_t *out) {
  size_t n = (size_t)h * w;
  int64_t *dil_c = malloc(n * 8), *ero_c = malloc(n * 8), *dil_s = malloc(n * 8), *inv = malloc(n * 8),
          *ero0 = malloc(n * 8), *ero_s = malloc(n * 8);
  for (size_t i = 0; i < n; i++) inv[i] = lab[i] == b ? INT64_MAX : lab[i];
#define AT(a, y, x) (a)[(size_t)clampi(y, h) * w + clampi(x, w)]
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      static const int cross[5][2] = {{0, 0}, {-1, 0}, {1, 0}, {0, -1}, {0, 1}};
      int64_t mx = INT64_MIN, mn = INT64_MAX, mx8 = INT64_MIN;
      for (int k = 0; k < 5; k++) {
        int64_t v = AT(lab, y + cross[k][0], x + cross[k][1]);
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
      }
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) mx8 = AT(lab, y + dy, x + dx) > mx8 ? AT(lab, y + dy, x + dx) : mx8;
      dil_c[(size_t)y * w + x] = mx, ero_c[(size_t)y * w + x] = mn, dil_s[(size_t)y * w + x] = mx8;
      /* axis 0: the minimum of the vertical window, through double */
      int64_t m0 = INT64_MAX;
      for (int dy = -1; dy <= 1; dy++) m0 = AT(inv, y + dy, x) < m0 ? AT(inv, y + dy, x) : m0;
      double d = (double)m0;
      ero0[(size_t)y * w + x] = d >= 9223372036854775807.0 ? INT64_MIN : (int64_t)d;
    }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) { /* axis 1 */
      int64_t m1 = INT64_MAX;
      for (int dx = -1; dx <= 1; dx++) m1 = AT(ero0, y, x + dx) < m1 ? AT(ero0, y, x + dx) : m1;
      ero_s[(size_t)y * w + x] = m1;
    }
#undef AT
  for (size_t i = 0; i < n; i++) {
    int bg = lab[i] == b, adjacent = dil_s[i] != ero_s[i] && !bg;
    out[i] = dil_c[i] != ero_c[i] && (bg || adjacent);
  }
  free(dil_c), free(ero_c), free(dil_s), free(inv), free(ero0), free(ero_s);
}

static int64_t *read_lab(const char *file, int *h, int *w) {
  char path[256];
  snprintf(path, sizeof path, SEG_DIR "%s", file);
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  int64_t *lab = NULL;
  if (fscanf(f, "%d %d", h, w) == 2 && *h > 0 && *w > 0 && *h <= 4096 && *w <= 4096) {
    lab = malloc((size_t)*h * *w * sizeof *lab);
    for (size_t i = 0; lab && i < (size_t)*h * *w; i++) {
      long long v;
      if (fscanf(f, "%lld", &v) != 1) {
        free(lab);
        lab = NULL;
      } else {
        lab[i] = v;
      }
    }
  }
  fclose(f);
  return lab;
}

/* The reference equals scikit-image on every "outer" and "outer_mask" case it wrote. */
TEST(reference_outline_is_scikit_images) {
  FILE *f = fopen(SEG_DIR "cases.txt", "r");
  CHECK(f != NULL);
  if (!f) return;
  char line[512], lab_file[160], bnd_file[160], chosen[128];
  int cases = 0;
  while (fgets(line, sizeof line, f)) {
    int mask_case = strncmp(line, "outer_mask ", 11) == 0;
    if (mask_case ? sscanf(line, "%*s %159s %127s %159s", lab_file, chosen, bnd_file) != 3
                  : (strncmp(line, "outer ", 6) != 0 || sscanf(line, "%*s %159s %159s", lab_file, bnd_file) != 2))
      continue;
    int h, w, h2, w2;
    int64_t *lab = read_lab(lab_file, &h, &w), *ref = read_lab(bnd_file, &h2, &w2);
    CHECK(lab && ref && h == h2 && w == w2);
    if (lab && ref && h == h2 && w == w2) {
      size_t n = (size_t)h * w;
      if (mask_case) { /* lime's mask: 1 on the listed segments */
        int64_t *mask = calloc(n, sizeof *mask);
        for (char *t = strtok(chosen, ","); t; t = strtok(NULL, ","))
          for (size_t i = 0; i < n; i++) mask[i] |= lab[i] == atoll(t);
        memcpy(lab, mask, n * sizeof *mask);
        free(mask);
      }
      uint8_t *b = malloc(n);
      ref_find_boundaries_outer(lab, h, w, 0, b);
      int bad = 0;
      for (size_t i = 0; i < n; i++) bad += b[i] != (ref[i] != 0);
      CHECK_MSG(bad == 0, "%s: %d pixels differ from scikit-image", bnd_file, bad);
      free(b);
      cases++;
    }
    free(lab);
    free(ref);
  }
  fclose(f);
  CHECK(cases >= 10);
}

/* ---- the API's pictures ------------------------------------------------------------------ */

static uint8_t picture[H][W][C]; /* the instance, 8-bit pixels */

static json_t *instance_json(void) {
  json_t *img = json_array();
  for (int c = 0; c < C; c++) {
    json_t *rows = json_array();
    for (int y = 0; y < H; y++) {
      json_t *r = json_array();
      for (int x = 0; x < W; x++) json_array_append_new(r, json_integer(picture[y][x][c]));
      json_array_append_new(rows, r);
    }
    json_array_append_new(img, rows);
  }
  return img;
}

static int call(const char *path, json_t *body, json_t **out) {
  char *text = json_dumps(body, JSON_COMPACT);
  xd_api_request_t req = {"POST", path, NULL, text, text ? strlen(text) : 0, NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  *out = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
  int status = resp.status;
  if (status != 200) fprintf(stderr, "  %s: %d %.*s\n", path, status, (int)resp.body_len, resp.body ? resp.body : "");
  xd_api_response_deinit(&resp);
  free(text);
  json_decref(body);
  return status;
}

/* The first PNG of the answer as 8-bit RGB (malloc'd), its size in *w, *h; NULL when it
 * is not an 8-bit RGB PNG. */
static uint8_t *decode_png(const json_t *answer, uint32_t *w, uint32_t *h) {
  const char *b64 = json_string_value(json_array_get(json_object_get(answer, "images"), 0));
  uint8_t *png = NULL, *rgb = NULL;
  size_t len = 0, size = 0;
  xd_error_t err;
  if (!b64 || xd_base64_decode(b64, strlen(b64), &png, &len, &err) != XD_OK) return NULL;
  spng_ctx *ctx = spng_ctx_new(0);
  struct spng_ihdr ihdr;
  if (ctx && spng_set_png_buffer(ctx, png, len) == 0 && spng_get_ihdr(ctx, &ihdr) == 0 && ihdr.bit_depth == 8 &&
      ihdr.color_type == SPNG_COLOR_TYPE_TRUECOLOR && spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size) == 0 &&
      (rgb = malloc(size)) && spng_decode_image(ctx, rgb, size, SPNG_FMT_RGB8, 0) == 0) {
    *w = ihdr.width, *h = ihdr.height;
  } else {
    free(rgb);
    rgb = NULL;
  }
  spng_ctx_free(ctx);
  xd_free(png);
  return rgb;
}

/* A heatmap answer's PNG against the picture and the answer's own heatmap. */
static void check_heat_picture(const char *what, const json_t *a, int signed_map) {
  uint32_t w = 0, h = 0;
  uint8_t *rgb = decode_png(a, &w, &h);
  int L = xd_render_legend_height(H);
  CHECK_MSG(rgb && w == W && h == (uint32_t)(H + L), "%s: %ux%u", what, w, h);
  const json_t *hm = json_array_get(json_object_get(a, "heatmaps"), 0);
  float heat[H * W];
  double lo = INFINITY, hi = -INFINITY;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) { /* the server draws the map in float */
      heat[y * W + x] = (float)json_number_value(json_array_get(json_array_get(hm, y), x));
      lo = fmin(lo, heat[y * W + x]), hi = fmax(hi, heat[y * W + x]);
    }
  if (signed_map) hi = fmax(fabs(lo), fabs(hi)), lo = -hi;
  const json_t *lg = json_array_get(json_object_get(a, "legends"), 0);
  CHECK_MSG(json_number_value(json_object_get(lg, "min")) == lo && json_number_value(json_object_get(lg, "max")) == hi &&
                strcmp(json_string_value(json_object_get(lg, "colormap")) ?: "", signed_map ? "coolwarm" : "viridis") == 0,
            "%s: legends", what);
  CHECK_MSG(hi > lo, "%s: a flat map", what);
  if (!rgb || w != W || h != (uint32_t)(H + L)) {
    free(rgb);
    return;
  }
  int bad = 0, first = -1;
  for (int i = 0; i < H * W; i++) {
    const uint8_t *col = ref_colour(signed_map, heat[i], lo, hi);
    for (int c = 0; c < 3; c++)
      if (rgb[i * 3 + c] != blend(picture[i / W][i % W][c], col[c])) bad++, first = first < 0 ? i : first;
  }
  CHECK_MSG(bad == 0, "%s: %d values differ (first at pixel %d)", what, bad, first);
  CHECK_MSG(strip_mismatches(rgb + (size_t)H * W * 3, W, H, signed_map, lo, hi) == 0, "%s: legend strip", what);
  free(rgb);
}

TEST(api_heatmap_pictures) {
  static const struct {
    const char *path, *method;
    int signed_map;
  } cases[] = {
      {"/explain/gradient", "integrated_gradients", 1},
      {"/explain/gradient", "saliency", 0},
      {"/explain/gradient", "input_x_gradient", 1},
      {"/explain/gradient", "grad_cam", 0}, /* relu: unsigned */
      {"/explain/occlusion", NULL, 1},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    json_t *body = json_pack("{s:s, s:o, s:b}", "model", "shapes", "instance", instance_json(), "render", 1), *a = NULL;
    if (cases[k].method) json_object_set_new(body, "method", json_string(cases[k].method));
    CHECK(call(cases[k].path, body, &a) == 200);
    check_heat_picture(cases[k].method ? cases[k].method : "occlusion", a, cases[k].signed_map);
    json_decref(a);
  }
}

/* LIME and Kernel SHAP with the given slic map: the picture, with the outline of the
 * 5 strongest positive segments in yellow, exactly. */
TEST(api_outline_pictures) {
  int h, w;
  int64_t *seg = read_lab("shapes32_rgb.slic0.lab", &h, &w);
  CHECK(seg && h == H && w == W);
  if (!seg || h != H || w != W) {
    free(seg);
    return;
  }
  int S = 0;
  for (int i = 0; i < H * W; i++) S = seg[i] + 1 > S ? (int)seg[i] + 1 : S;
  for (int shap = 0; shap < 2; shap++) {
    json_t *segs = json_array();
    for (int y = 0; y < H; y++) {
      json_t *r = json_array();
      for (int x = 0; x < W; x++) json_array_append_new(r, json_integer(seg[y * W + x]));
      json_array_append_new(segs, r);
    }
    json_t *body = json_pack("{s:s, s:o, s:b, s:o, s:i}", "model", "shapes", "instance", instance_json(), "render", 1,
                             "segments", segs, "seed", 3), *a = NULL;
    if (!shap) json_object_set_new(body, "num_samples", json_integer(400));
    CHECK(call(shap ? "/explain/shap" : "/explain/lime", body, &a) == 200);
    /* the weights per segment */
    double *wt = calloc((size_t)S, sizeof *wt);
    if (shap) {
      const json_t *sv = json_array_get(json_object_get(a, "shap_values"), 0);
      CHECK(json_array_size(sv) == (size_t)S);
      for (int s = 0; s < S; s++) wt[s] = json_number_value(json_array_get(sv, s));
    } else {
      const json_t *ws = json_object_get(json_array_get(json_object_get(json_array_get(json_object_get(a, "explanations"), 0),
                                                                        "labels"), 0), "weights");
      for (size_t k = 0; k < json_array_size(ws); k++) {
        int s = (int)json_integer_value(json_object_get(json_array_get(ws, k), "segment"));
        if (s >= 0 && s < S) wt[s] = json_number_value(json_object_get(json_array_get(ws, k), "weight"));
      }
    }
    /* lime's get_image_and_mask(positive_only=True, num_features=5): the 5 largest
     * positive weights (ties: the lower segment) */
    int64_t mask_of[1024] = {0}, mask[H * W];
    int chosen = 0;
    for (; chosen < 5; chosen++) {
      int best = -1;
      for (int s = 0; s < S && s < 1024; s++)
        if (!mask_of[s] && wt[s] > 0 && (best < 0 || wt[s] > wt[best])) best = s;
      if (best < 0) break;
      mask_of[best] = 1;
    }
    CHECK_MSG(chosen >= 2, "%s: only %d positive segments", shap ? "shap" : "lime", chosen);
    for (int i = 0; i < H * W; i++) mask[i] = mask_of[seg[i]];
    uint8_t bnd[H * W];
    ref_find_boundaries_outer(mask, H, W, 0, bnd);
    uint32_t pw = 0, ph = 0;
    uint8_t *rgb = decode_png(a, &pw, &ph);
    CHECK_MSG(rgb && pw == W && ph == H, "%ux%u", pw, ph);
    int bad = 0, outlined = 0;
    for (int i = 0; rgb && pw == W && ph == H && i < H * W; i++) {
      static const uint8_t yellow[3] = {255, 255, 0};
      outlined += bnd[i];
      bad += !same(rgb + i * 3, bnd[i] ? yellow : picture[i / W][i % W]);
    }
    CHECK_MSG(bad == 0 && outlined > 0, "%s: %d pixels differ (%d outlined)", shap ? "shap" : "lime", bad, outlined);
    free(rgb);
    free(wt);
    json_decref(a);
  }
  free(seg);
}

/* The PNG bytes png[len] as 8-bit RGB (malloc'd) of size w x h, or NULL. */
static uint8_t *png_rgb(const uint8_t *png, size_t len, uint32_t *w, uint32_t *h) {
  spng_ctx *ctx = spng_ctx_new(0);
  struct spng_ihdr ihdr;
  size_t size = 0;
  uint8_t *rgb = NULL;
  if (ctx && spng_set_png_buffer(ctx, png, len) == 0 && spng_get_ihdr(ctx, &ihdr) == 0 &&
      spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size) == 0 && (rgb = malloc(size)) &&
      spng_decode_image(ctx, rgb, size, SPNG_FMT_RGB8, 0) == 0) {
    *w = ihdr.width, *h = ihdr.height;
  } else {
    free(rgb);
    rgb = NULL;
  }
  spng_ctx_free(ctx);
  return rgb;
}

/* GET /models/shapes?background=3: the bundle's pictures 0, 5 and 10 of 16 (evenly spaced)
 * as {"b64": PNG} rows whose pixels are the files' (the image view picks from them). */
TEST(api_background_pictures_are_the_bundles) {
  xd_api_request_t req = {"GET", "/models/shapes", "background=3", NULL, 0, NULL, NULL};
  xd_api_response_t resp;
  memset(&resp, 0, sizeof resp);
  xd_api_handle_sync(api, &req, &resp, NULL);
  CHECK(resp.status == 200);
  json_t *a = resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
  xd_api_response_deinit(&resp);
  const json_t *bg = json_object_get(a, "background");
  CHECK(json_array_size(bg) == 3);
  for (size_t k = 0; k < json_array_size(bg); k++) {
    const json_t *row = json_array_get(bg, k);
    const char *b64 = json_string_value(json_object_get(row, "b64"));
    CHECK(json_object_size(row) == 1 && b64);
    uint8_t *png = NULL;
    size_t len = 0;
    xd_error_t err;
    uint32_t w = 0, h = 0, fw = 0, fh = 0;
    uint8_t *got = b64 && xd_base64_decode(b64, strlen(b64), &png, &len, &err) == XD_OK ? png_rgb(png, len, &w, &h) : NULL;
    xd_free(png);
    char path[64];
    snprintf(path, sizeof path, "models/shapes/bg/%zu.png", k * 16 / 3);
    FILE *f = fopen(path, "rb");
    static uint8_t file[1 << 16];
    size_t n = f ? fread(file, 1, sizeof file, f) : 0;
    if (f) fclose(f);
    uint8_t *want = png_rgb(file, n, &fw, &fh);
    CHECK_MSG(got && want && w == fw && h == fh && memcmp(got, want, (size_t)w * h * 3) == 0, "%s differs", path);
    free(got);
    free(want);
  }
  json_decref(a);
}

int main(void) {
  /* the picture: a noisy background, a square and a bright bar (a deterministic pattern) */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int c = 0; c < C; c++) {
        unsigned v = (unsigned)(y * 131 + x * 71 + c * 29) * 2654435761u;
        picture[y][x][c] = (uint8_t)(90 + (v >> 27) * 3 + c * 20);
        if (y >= 8 && y < 20 && x >= 6 && x < 18) picture[y][x][c] = (uint8_t)(c == 2 ? 200 : 40);
        if (x == 25 && y > 4 && y < 28) picture[y][x][c] = 240;
      }
  CHECK_MSG(load_tables() == 0, "web/colormaps.js is missing or malformed (run from the repository root)");
  RUN(tables_are_matplotlibs_and_the_servers);
  RUN(known_map_pixels);
  RUN(reference_outline_is_scikit_images);
  /* the API with models/shapes alone */
  char dir[] = "/tmp/xd-render-pixels-XXXXXX", link_path[64], target[4096];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(link_path, sizeof link_path, "%s/shapes", dir);
  CHECK(getcwd(target, sizeof target - 16) != NULL);
  strcat(target, "/models/shapes");
  CHECK(symlink(target, link_path) == 0);
  xd_blas_init();
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  xd_registry_new(&reg);
  xd_api_new(&cfg, reg, &api);
  CHECK(xd_api_load_dir(api, dir, NULL, NULL) == 1);
  xd_api_set_ready(api, 1);
  RUN(api_heatmap_pictures);
  RUN(api_outline_pictures);
  RUN(api_background_pictures_are_the_bundles);
  xd_api_free(api);
  xd_registry_free(reg);
  unlink(link_path);
  rmdir(dir);
  return TEST_REPORT();
}

/* image.c — PNG (libspng) and JPEG (TurboJPEG) decoding with bounds checked from the
 * header, channel conversion, torch-equal bilinear resizing, normalization, and PNG
 * encoding. See image.h for the definitions followed. */
#include "core/image.h"

#include <math.h>
#include <spng.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>

#include "core/alloc.h"

/* libspng (and the zlib inside it) allocates through ours, so fault injection reaches
 * its buffers too. zlib reports a failed allocation as a stream error, which libspng
 * passes on as SPNG_EZLIB_INIT or SPNG_EIDAT_STREAM, indistinguishable from corrupt
 * data: the wrappers note the failure on this thread so the decoder can answer ENOMEM. */
static _Thread_local int png_oom;
static void *png_malloc(size_t n) {
  void *p = xd_malloc(n);
  png_oom |= !p;
  return p;
}
static void *png_realloc(void *q, size_t n) {
  void *p = xd_realloc(q, n);
  png_oom |= !p;
  return p;
}
static void *png_calloc(size_t c, size_t n) {
  void *p = xd_calloc(c, n);
  png_oom |= !p;
  return p;
}
static struct spng_alloc spng_xd_alloc = {png_malloc, png_realloc, png_calloc, xd_free};

/* Chunk bounds for libspng: no legitimate picture needs a 16 MB ancillary chunk, and a
 * file that declares one should not make us allocate it. */
#define PNG_CHUNK_MAX ((size_t)16 << 20)
#define PNG_CACHE_MAX ((size_t)32 << 20)

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

xd_image_format_t xd_image_sniff(const uint8_t *buf, size_t len) {
  if (len >= 8 && memcmp(buf, png_sig, 8) == 0) return XD_IMAGE_PNG;
  if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return XD_IMAGE_JPEG;
  return XD_IMAGE_UNKNOWN;
}

/* Width, height and channels against the built-in bounds and the byte limit (0 = none)
 * of `bytes_per_pixel` decoder bytes per pixel. */
static int check_size(size_t w, size_t h, size_t bytes_per_pixel, size_t max_bytes, xd_error_t *err) {
  if (w == 0 || h == 0) return xd_error_set(err, XD_EINVAL, NULL, "the image is empty (%zu x %zu pixels)", w, h);
  if (w > XD_IMAGE_MAX_SIDE || h > XD_IMAGE_MAX_SIDE || w * h > XD_IMAGE_MAX_PIXELS)
    return xd_error_set(err, XD_ETOOBIG, NULL, "the image is %zu x %zu pixels; at most %d on a side and %zu pixels", w,
                        h, XD_IMAGE_MAX_SIDE, XD_IMAGE_MAX_PIXELS);
  if (max_bytes && w * h * bytes_per_pixel > max_bytes)
    return xd_error_set(err, XD_ETOOBIG, NULL, "the image is %zu x %zu pixels, over the limit of %zu decoded bytes", w,
                        h, max_bytes);
  return XD_OK;
}

/* ---- PNG -------------------------------------------------------------------------- */

/* A decoder context over buf with our bounds; NULL on no memory. */
static spng_ctx *png_ctx(const uint8_t *buf, size_t len) {
  spng_ctx *ctx = spng_ctx_new2(&spng_xd_alloc, 0);
  if (!ctx) return NULL;
  if (spng_set_image_limits(ctx, XD_IMAGE_MAX_SIDE, XD_IMAGE_MAX_SIDE) || spng_set_chunk_limits(ctx, PNG_CHUNK_MAX, PNG_CACHE_MAX) ||
      spng_set_png_buffer(ctx, buf, len)) {
    spng_ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Channels kept from a PNG colour type: gray (with or without alpha) -> 1, else 3. */
static size_t png_channels(uint8_t color_type) {
  return color_type == SPNG_COLOR_TYPE_GRAYSCALE || color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ? 1 : 3;
}

static int png_header(spng_ctx *ctx, struct spng_ihdr *ihdr, xd_error_t *err) {
  int e = spng_get_ihdr(ctx, ihdr);
  if (e == SPNG_EMEM || (e && png_oom)) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading a PNG header");
  if (e == SPNG_EWIDTH || e == SPNG_EHEIGHT || e == SPNG_EUSER_WIDTH || e == SPNG_EUSER_HEIGHT)
    return xd_error_set(err, XD_ETOOBIG, NULL, "the PNG is larger than %d pixels on a side", XD_IMAGE_MAX_SIDE);
  if (e) return xd_error_set(err, XD_EINVAL, NULL, "not a valid PNG: %s", spng_strerror(e));
  return XD_OK;
}

/* Decodes to RGB8, which libspng supports for every colour type and depth (palette
 * expanded, alpha dropped, 16-bit reduced); gray pictures then keep one channel. */
static int png_decode(const uint8_t *buf, size_t len, size_t max_bytes, xd_image_t *img, xd_error_t *err) {
  png_oom = 0;
  spng_ctx *ctx = png_ctx(buf, len);
  if (!ctx) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory decoding a PNG");
  struct spng_ihdr ihdr;
  uint8_t *rgb = NULL;
  int rc = png_header(ctx, &ihdr, err);
  if (rc != XD_OK) goto done;
  size_t w = ihdr.width, h = ihdr.height, c = png_channels(ihdr.color_type), need = 0;
  if ((rc = check_size(w, h, 3, max_bytes, err)) != XD_OK) goto done;
  int e = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &need);
  if (e || need != w * h * 3) {
    rc = xd_error_set(err, XD_EINVAL, NULL, "not a valid PNG: %s", e ? spng_strerror(e) : "unexpected size");
    goto done;
  }
  if (!(rgb = xd_malloc(need))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory decoding a PNG");
    goto done;
  }
  if ((e = spng_decode_image(ctx, rgb, need, SPNG_FMT_RGB8, 0)) != 0) {
    rc = e == SPNG_EMEM || png_oom ? xd_error_set(err, XD_ENOMEM, NULL, "out of memory decoding a PNG")
                        : xd_error_set(err, XD_EINVAL, NULL, "corrupt or truncated PNG: %s", spng_strerror(e));
    goto done;
  }
  if (c == 1) /* gray: R = G = B; keep one, in place */
    for (size_t i = 0; i < w * h; i++) rgb[i] = rgb[3 * i];
  img->width = w;
  img->height = h;
  img->channels = c;
  img->pixels = rgb;
  rgb = NULL;
done:
  xd_free(rgb);
  spng_ctx_free(ctx);
  return rc;
}

/* ---- JPEG ------------------------------------------------------------------------- */

/* Header of a JPEG: size and the channels we decode it to (gray stays gray; every
 * colour JPEG becomes RGB; CMYK/YCCK are refused, a model has no such input). */
static int jpeg_header(tjhandle tj, const uint8_t *buf, size_t len, size_t *w, size_t *h, size_t *c,
                       xd_error_t *err) {
  int wi = 0, hi = 0, sub = 0, cs = 0;
  if (len > (size_t)0xffffffffu) return xd_error_set(err, XD_ETOOBIG, NULL, "the JPEG file is over 4 GB");
  if (tjDecompressHeader3(tj, buf, (unsigned long)len, &wi, &hi, &sub, &cs) != 0)
    return xd_error_set(err, XD_EINVAL, NULL, "not a valid JPEG: %s", tjGetErrorStr2(tj));
  if (cs == TJCS_CMYK || cs == TJCS_YCCK)
    return xd_error_set(err, XD_EINVAL, NULL, "CMYK JPEGs are not supported: send RGB or grayscale");
  if (wi <= 0 || hi <= 0) return xd_error_set(err, XD_EINVAL, NULL, "not a valid JPEG: empty image");
  *w = (size_t)wi;
  *h = (size_t)hi;
  *c = cs == TJCS_GRAY ? 1 : 3;
  return XD_OK;
}

static int jpeg_decode(const uint8_t *buf, size_t len, size_t max_bytes, xd_image_t *img, xd_error_t *err) {
  tjhandle tj = tjInitDecompress();
  if (!tj) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory decoding a JPEG");
  uint8_t *px = NULL;
  size_t w = 0, h = 0, c = 0;
  int rc = jpeg_header(tj, buf, len, &w, &h, &c, err);
  if (rc == XD_OK) rc = check_size(w, h, c, max_bytes, err);
  if (rc != XD_OK) goto done;
  if (!(px = xd_malloc(w * h * c))) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory decoding a JPEG");
    goto done;
  }
  /* STOPONWARNING: a truncated file is an error (Pillow refuses it too) rather than a
   * picture padded with gray; LIMITSCANS bounds progressive files' work. */
  if (tjDecompress2(tj, buf, (unsigned long)len, px, (int)w, 0, (int)h, c == 1 ? TJPF_GRAY : TJPF_RGB,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
    rc = xd_error_set(err, XD_EINVAL, NULL, "corrupt or truncated JPEG: %s", tjGetErrorStr2(tj));
    goto done;
  }
  img->width = w;
  img->height = h;
  img->channels = c;
  img->pixels = px;
  px = NULL;
done:
  xd_free(px);
  tjDestroy(tj);
  return rc;
}

/* ---- entry points ----------------------------------------------------------------- */

int xd_image_probe(const uint8_t *buf, size_t len, size_t *width, size_t *height, size_t *channels,
                   xd_error_t *err) {
  int rc;
  size_t w = 0, h = 0, c = 0;
  switch (xd_image_sniff(buf, len)) {
  case XD_IMAGE_PNG: {
    png_oom = 0;
    spng_ctx *ctx = png_ctx(buf, len);
    if (!ctx) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading a PNG header");
    struct spng_ihdr ihdr;
    rc = png_header(ctx, &ihdr, err);
    spng_ctx_free(ctx);
    if (rc != XD_OK) return rc;
    w = ihdr.width, h = ihdr.height, c = png_channels(ihdr.color_type);
    break;
  }
  case XD_IMAGE_JPEG: {
    tjhandle tj = tjInitDecompress();
    if (!tj) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading a JPEG header");
    rc = jpeg_header(tj, buf, len, &w, &h, &c, err);
    tjDestroy(tj);
    if (rc != XD_OK) return rc;
    break;
  }
  default:
    return xd_error_set(err, XD_EINVAL, NULL, "not a PNG or JPEG file");
  }
  if ((rc = check_size(w, h, c, 0, err)) != XD_OK) return rc;
  *width = w;
  *height = h;
  *channels = c;
  return XD_OK;
}

int xd_image_decode(const uint8_t *buf, size_t len, size_t max_bytes, xd_image_t *img, xd_error_t *err) {
  memset(img, 0, sizeof *img);
  switch (xd_image_sniff(buf, len)) {
  case XD_IMAGE_PNG:
    return png_decode(buf, len, max_bytes, img, err);
  case XD_IMAGE_JPEG:
    return jpeg_decode(buf, len, max_bytes, img, err);
  default:
    return xd_error_set(err, XD_EINVAL, NULL, "not a PNG or JPEG file");
  }
}

void xd_image_deinit(xd_image_t *img) {
  if (!img) return;
  xd_free(img->pixels);
  memset(img, 0, sizeof *img);
}

/* ---- resizing and normalization --------------------------------------------------- */

/* Source taps of output index i on an axis of `in` -> `out` samples, torch's
 * compute_indices_weights_linear with align_corners=False: the real source index
 * (i + 0.5) * in/out - 0.5 clamped at 0, its floor i0, the next one i1 (i0 at the last
 * sample), and the weight l of i1 (1 - l of i0). */
typedef struct tap {
  size_t i0, i1;
  double l0, l1;
} tap_t;

static tap_t tap_at(size_t i, size_t in, size_t out) {
  double scale = (double)in / (double)out;
  double r = scale * ((double)i + 0.5) - 0.5;
  if (r < 0) r = 0;
  size_t i0 = (size_t)floor(r);
  if (i0 > in - 1) i0 = in - 1;
  double l = r - (double)i0;
  l = l < 0 ? 0 : l > 1 ? 1 : l;
  tap_t t = {i0, i0 < in - 1 ? i0 + 1 : i0, 1.0 - l, l};
  return t;
}

/* One bilinear sample from the four taps, summed in torch's order (along W first, then
 * H). torch's vectorized kernel fuses some of these multiply-adds, so double results
 * agree with its float64 ones to the last bit or two, not always bit for bit. */
#define BILERP(V, ty, tx)                                                                                   \
  (((V((ty).i0, (tx).i0)) * (tx).l0 + (V((ty).i0, (tx).i1)) * (tx).l1) * (ty).l0 +                          \
   ((V((ty).i1, (tx).i0)) * (tx).l0 + (V((ty).i1, (tx).i1)) * (tx).l1) * (ty).l1)

void xd_image_resize(const double *src, size_t C, size_t h, size_t w, double *dst, size_t H, size_t W) {
  for (size_t c = 0; c < C; c++) {
    const double *s = src + c * h * w;
    double *d = dst + c * H * W;
    for (size_t y = 0; y < H; y++) {
      tap_t ty = tap_at(y, h, H);
      for (size_t x = 0; x < W; x++) {
        tap_t tx = tap_at(x, w, W);
#define PV(yy, xx) s[(yy) * w + (xx)]
        d[y * W + x] = BILERP(PV, ty, tx);
#undef PV
      }
    }
  }
}

int xd_image_prep_check(const xd_image_prep_t *p, const char *field, xd_error_t *err) {
  char f[XD_ERROR_FIELD_MAX];
  snprintf(f, sizeof f, "%s.channels", field);
  if (p->channels != 1 && p->channels != 3) return xd_error_set(err, XD_EFORMAT, f, "must be 1 (gray) or 3 (RGB)");
  snprintf(f, sizeof f, "%s.height", field);
  if (p->height < 1 || p->height > XD_IMAGE_MAX_SIDE)
    return xd_error_set(err, XD_EFORMAT, f, "must be between 1 and %d", XD_IMAGE_MAX_SIDE);
  snprintf(f, sizeof f, "%s.width", field);
  if (p->width < 1 || p->width > XD_IMAGE_MAX_SIDE)
    return xd_error_set(err, XD_EFORMAT, f, "must be between 1 and %d", XD_IMAGE_MAX_SIDE);
  snprintf(f, sizeof f, "%s.scale", field);
  if (!isfinite(p->scale) || p->scale == 0) return xd_error_set(err, XD_EFORMAT, f, "must be a finite non-zero number");
  for (size_t c = 0; c < p->channels; c++) {
    snprintf(f, sizeof f, "%s.mean[%zu]", field, c);
    if (!isfinite(p->mean[c])) return xd_error_set(err, XD_EFORMAT, f, "must be a finite number");
    snprintf(f, sizeof f, "%s.std[%zu]", field, c);
    if (!isfinite(p->std[c]) || p->std[c] == 0) return xd_error_set(err, XD_EFORMAT, f, "must be a finite non-zero number");
  }
  return XD_OK;
}

void xd_image_normalize(const xd_image_prep_t *p, double *x) {
  size_t hw = p->height * p->width;
  for (size_t c = 0; c < p->channels; c++)
    for (size_t i = 0; i < hw; i++) x[c * hw + i] = (x[c * hw + i] * p->scale - p->mean[c]) / p->std[c];
}

/* Luma of an RGB pixel (ITU-R 601, Pillow's "L" weights). */
static inline double luma(const uint8_t *q) { return 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2]; }

int xd_image_to_input(const xd_image_t *img, const xd_image_prep_t *p, double *x, xd_error_t *err) {
  size_t w = img->width, h = img->height, sc = img->channels, H = p->height, W = p->width;
  const uint8_t *px = img->pixels;
  if (sc != 1 && sc != 3) return xd_error_set(err, XD_EINVAL, NULL, "an image has 1 or 3 channels, not %zu", sc);
  /* The sample of model channel c at source pixel (yy, xx), converted on the fly: no
   * converted copy of a possibly large source picture is made. */
  for (size_t c = 0; c < p->channels; c++) {
    double *d = x + c * H * W;
    for (size_t y = 0; y < H; y++) {
      tap_t ty = tap_at(y, h, H);
      for (size_t xo = 0; xo < W; xo++) {
        tap_t tx = tap_at(xo, w, W);
        if (sc == p->channels) {
#define PV(yy, xx) ((double)px[((yy) * w + (xx)) * sc + c])
          d[y * W + xo] = BILERP(PV, ty, tx);
#undef PV
        } else if (sc == 1) {
#define PV(yy, xx) ((double)px[(yy) * w + (xx)])
          d[y * W + xo] = BILERP(PV, ty, tx);
#undef PV
        } else {
#define PV(yy, xx) luma(px + ((yy) * w + (xx)) * 3)
          d[y * W + xo] = BILERP(PV, ty, tx);
#undef PV
        }
      }
    }
  }
  xd_image_normalize(p, x);
  return XD_OK;
}

/* ---- PNG encoding ----------------------------------------------------------------- */

int xd_image_encode_png(const uint8_t *pixels, size_t width, size_t height, size_t channels, uint8_t **out,
                        size_t *out_len, xd_error_t *err) {
  static const uint8_t color_type[5] = {0, SPNG_COLOR_TYPE_GRAYSCALE, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA,
                                        SPNG_COLOR_TYPE_TRUECOLOR, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA};
  *out = NULL;
  *out_len = 0;
  if (channels < 1 || channels > 4) return xd_error_set(err, XD_EINVAL, NULL, "a PNG has 1 to 4 channels, not %zu", channels);
  int rc = check_size(width, height, channels, 0, err);
  if (rc != XD_OK) return rc;
  png_oom = 0;
  spng_ctx *ctx = spng_ctx_new2(&spng_xd_alloc, SPNG_CTX_ENCODER);
  if (!ctx) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding a PNG");
  struct spng_ihdr ihdr = {.width = (uint32_t)width, .height = (uint32_t)height, .bit_depth = 8,
                           .color_type = color_type[channels]};
  int e = spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  if (!e) e = spng_set_ihdr(ctx, &ihdr);
  if (!e) e = spng_encode_image(ctx, pixels, width * height * channels, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  size_t n = 0;
  uint8_t *buf = e ? NULL : spng_get_png_buffer(ctx, &n, &e);
  spng_ctx_free(ctx);
  if (!buf)
    return e == SPNG_EMEM || e == 0 || png_oom ? xd_error_set(err, XD_ENOMEM, NULL, "out of memory encoding a PNG")
                                    : xd_error_set(err, XD_EINVAL, NULL, "PNG encoding failed: %s", spng_strerror(e));
  *out = buf; /* allocated by libspng through xd_malloc */
  *out_len = n;
  return XD_OK;
}

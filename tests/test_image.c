/* test_image.c — core/image.h and core/base64.h: decoding equals Pillow's pixels, the
 * model input equals torch's bilinear resize and normalization (tools/make_image_fixtures.py
 * froze both in tests/golden/image/), corrupt, truncated and oversized files give errors,
 * PNG encoding round-trips, allocation failures are clean. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/base64.h"
#include "core/image.h"
#include "tests/test.h"

#define DIR "tests/golden/image/"

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static json_t *golden(void) {
  static json_t *g;
  if (!g) {
    json_error_t e;
    g = json_load_file(DIR "image.json", 0, &e);
    if (!g) fprintf(stderr, "cannot read " DIR "image.json: %s\n", e.text);
  }
  return g;
}

static double *doubles(json_t *a, size_t *n) {
  *n = json_array_size(a);
  double *v = malloc((*n ? *n : 1) * sizeof *v);
  for (size_t i = 0; i < *n; i++) v[i] = json_number_value(json_array_get(a, i));
  return v;
}

static int decode_file(const char *name, xd_image_t *img) {
  char path[256];
  snprintf(path, sizeof path, DIR "%s", name);
  size_t n = 0;
  uint8_t *b = slurp(path, &n);
  if (!b) return XD_ENOTFOUND;
  xd_error_t err = {0};
  int rc = xd_image_decode(b, n, 0, img, &err);
  if (rc != XD_OK) fprintf(stderr, "  %s: %s\n", name, err.text);
  free(b);
  return rc;
}

/* Every fixture decodes to exactly Pillow's pixels (JPEG too: same libjpeg-turbo
 * settings), and the header probe agrees with the decode. */
TEST(decode_equals_pillow) {
  json_t *g = golden();
  CHECK(g != NULL);
  if (!g) return;
  size_t i;
  json_t *f;
  json_array_foreach(json_object_get(g, "files"), i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    xd_image_t img;
    int rc = decode_file(name, &img);
    CHECK_MSG(rc == XD_OK, "%s", name);
    if (rc != XD_OK) continue;
    size_t w = json_integer_value(json_object_get(f, "width")), h = json_integer_value(json_object_get(f, "height")),
           c = json_integer_value(json_object_get(f, "channels"));
    CHECK_MSG(img.width == w && img.height == h && img.channels == c, "%s: %zux%zux%zu, want %zux%zux%zu", name,
              img.width, img.height, img.channels, w, h, c);
    json_t *px = json_object_get(f, "pixels");
    size_t bad = 0, first = 0;
    if (img.width == w && img.height == h && img.channels == c)
      for (size_t k = 0; k < w * h * c; k++)
        if (img.pixels[k] != json_integer_value(json_array_get(px, k)) && bad++ == 0) first = k;
    CHECK_MSG(bad == 0, "%s: %zu pixels differ from Pillow's, first at %zu", name, bad, first);
    char path[256];
    snprintf(path, sizeof path, DIR "%s", name);
    size_t n = 0, pw = 0, ph = 0, pc = 0;
    uint8_t *b = slurp(path, &n);
    xd_error_t err = {0};
    CHECK(xd_image_probe(b, n, &pw, &ph, &pc, &err) == XD_OK);
    CHECK(pw == w && ph == h && pc == c);
    free(b);
    xd_image_deinit(&img);
  }
}

/* Channel conversion, resizing and normalization equal torch (float64) on every case. */
TEST(model_input_equals_torch) {
  json_t *g = golden();
  if (!g) {
    CHECK(g != NULL);
    return;
  }
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(g, "resize"), i, c) {
    const char *name = json_string_value(json_object_get(c, "file"));
    xd_image_t img;
    if (decode_file(name, &img) != XD_OK) {
      CHECK_MSG(0, "%s", name);
      continue;
    }
    xd_image_prep_t p = {.channels = json_integer_value(json_object_get(c, "channels")),
                         .height = json_integer_value(json_object_get(c, "height")),
                         .width = json_integer_value(json_object_get(c, "width")),
                         .scale = json_number_value(json_object_get(c, "scale"))};
    for (size_t k = 0; k < p.channels; k++) {
      p.mean[k] = json_number_value(json_array_get(json_object_get(c, "mean"), k));
      p.std[k] = json_number_value(json_array_get(json_object_get(c, "std"), k));
    }
    xd_error_t err = {0};
    CHECK(xd_image_prep_check(&p, "input", &err) == XD_OK);
    size_t n = 0;
    double *want = doubles(json_object_get(c, "x"), &n);
    CHECK(n == p.channels * p.height * p.width);
    double *x = malloc(n * sizeof *x);
    CHECK(xd_image_to_input(&img, &p, x, &err) == XD_OK);
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
      double d = fabs(x[k] - want[k]) / (1 + fabs(want[k]));
      worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst <= 1e-12, "case %zu (%s -> %zux%zux%zu): worst relative difference %g", i, name, p.channels,
              p.height, p.width, worst);
    free(x);
    free(want);
    xd_image_deinit(&img);
  }
}

/* Resizing double planes equals torch's float64 F.interpolate to the last bits (the
 * same taps and weights; torch's vectorized kernel fuses some multiply-adds, so a few
 * values differ in their last place). */
TEST(resize_planes_equal_torch) {
  json_t *g = golden();
  if (!g) {
    CHECK(g != NULL);
    return;
  }
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(g, "planes"), i, c) {
    size_t C = json_integer_value(json_object_get(c, "c")), h = json_integer_value(json_object_get(c, "h")),
           w = json_integer_value(json_object_get(c, "w")), H = json_integer_value(json_object_get(c, "H")),
           W = json_integer_value(json_object_get(c, "W")), ns, nd;
    double *src = doubles(json_object_get(c, "src"), &ns), *want = doubles(json_object_get(c, "dst"), &nd);
    CHECK(ns == C * h * w && nd == C * H * W);
    double *dst = malloc(nd * sizeof *dst);
    xd_image_resize(src, C, h, w, dst, H, W);
    double worst = 0;
    for (size_t k = 0; k < nd; k++) {
      double d = fabs(dst[k] - want[k]) / (1 + fabs(want[k]));
      worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst <= 1e-14, "planes case %zu: worst relative difference %g from torch", i, worst);
    free(src);
    free(want);
    free(dst);
  }
}

/* Every truncation of every fixture is an error or a full decode, never a crash; a
 * flipped byte in PNG image data is caught by its checksums. */
TEST(corrupt_and_truncated) {
  static const char *names[] = {"rgb.png", "palette.png", "gray16.png", "rgb.jpg", "progressive.jpg", "gray.jpg"};
  for (size_t f = 0; f < sizeof names / sizeof *names; f++) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", names[f]);
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    CHECK(b != NULL);
    if (!b) continue;
    size_t errors = 0;
    for (size_t len = 0; len < n; len++) {
      xd_image_t img;
      xd_error_t err = {0};
      int rc = xd_image_decode(b, len, 0, &img, &err);
      if (rc != XD_OK) {
        CHECK(rc == XD_EINVAL);
        CHECK(err.text[0] != 0);
        CHECK(img.pixels == NULL);
        errors++;
      }
      xd_image_deinit(&img);
    }
    /* the last bytes (PNG IEND, JPEG EOI) may go unread; everything well before must fail */
    CHECK_MSG(errors + 16 >= n, "%s: only %zu of %zu truncations were errors", names[f], errors, n);
    free(b);
  }
  size_t n = 0;
  uint8_t *b = slurp(DIR "rgb.png", &n);
  /* the first IDAT's data starts after the signature (8), IHDR (25) and its own header (8) */
  size_t at = 0;
  for (size_t k = 8; k + 4 < n; k++)
    if (memcmp(b + k, "IDAT", 4) == 0) {
      at = k + 4 + 10;
      break;
    }
  CHECK(at > 0 && at < n);
  b[at] ^= 0x55;
  xd_image_t img;
  xd_error_t err = {0};
  CHECK(xd_image_decode(b, n, 0, &img, &err) == XD_EINVAL);
  free(b);
  static const uint8_t junk[] = "GIF89a.............................";
  CHECK(xd_image_decode(junk, sizeof junk, 0, &img, &err) == XD_EINVAL);
  CHECK(strstr(err.text, "PNG or JPEG") != NULL);
  CHECK(xd_image_decode(junk, 0, 0, &img, &err) == XD_EINVAL);
}

/* CRC-32 of PNG chunks, to forge headers in the bound tests. */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG with a valid IHDR of w x h RGB and nothing after it. */
static size_t forged_png(uint8_t *b, uint32_t w, uint32_t h) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(b, sig, 8);
  put32(b + 8, 13);
  memcpy(b + 12, "IHDR", 4);
  put32(b + 16, w);
  put32(b + 20, h);
  b[24] = 8, b[25] = 2, b[26] = 0, b[27] = 0, b[28] = 0;
  put32(b + 29, crc32_png(b + 12, 17));
  return 33;
}

/* Oversized pictures are refused from the header, before any pixel memory: the forged
 * files hold no image data at all, so reaching the decoder would be a different error. */
TEST(bounds_from_header) {
  uint8_t b[64];
  xd_image_t img;
  xd_error_t err = {0};
  size_t n = forged_png(b, 5000, 10), w, h, c;
  CHECK(xd_image_decode(b, n, 0, &img, &err) == XD_ETOOBIG);
  CHECK(xd_image_probe(b, n, &w, &h, &c, &err) == XD_ETOOBIG);
  n = forged_png(b, 4096, 4097);
  CHECK(xd_image_decode(b, n, 0, &img, &err) == XD_ETOOBIG);
  n = forged_png(b, 4000, 4000);
  CHECK(xd_image_probe(b, n, &w, &h, &c, &err) == XD_OK && w == 4000 && h == 4000 && c == 3);
  CHECK(xd_image_decode(b, n, 1000, &img, &err) == XD_ETOOBIG); /* the caller's byte limit */
  CHECK(strstr(err.text, "1000") != NULL);
  CHECK(img.pixels == NULL);
  /* a JPEG whose frame header claims 60000 x 60000 */
  size_t jn = 0;
  uint8_t *j = slurp(DIR "rgb.jpg", &jn);
  CHECK(j != NULL);
  for (size_t k = 2; j && k + 9 < jn; k++)
    if (j[k] == 0xff && j[k + 1] == 0xc0) { /* SOF0: length(2) precision(1) height(2) width(2) */
      j[k + 5] = 0xea, j[k + 6] = 0x60, j[k + 7] = 0xea, j[k + 8] = 0x60;
      break;
    }
  CHECK(xd_image_decode(j, jn, 0, &img, &err) == XD_ETOOBIG);
  CHECK(img.pixels == NULL);
  free(j);
  /* a picture within the limit, the limit just at its size */
  size_t pn = 0;
  uint8_t *p = slurp(DIR "rgb.png", &pn);
  CHECK(xd_image_decode(p, pn, 13 * 9 * 3, &img, &err) == XD_OK);
  xd_image_deinit(&img);
  CHECK(xd_image_decode(p, pn, 13 * 9 * 3 - 1, &img, &err) == XD_ETOOBIG);
  free(p);
}

/* PNG encoding in every channel count decodes back to the same pixels (alpha dropped,
 * gray kept gray). */
TEST(png_encode_round_trip) {
  for (size_t ch = 1; ch <= 4; ch++) {
    size_t w = 7, h = 5;
    uint8_t px[7 * 5 * 4];
    for (size_t k = 0; k < w * h * ch; k++) px[k] = (uint8_t)(k * 37 + ch);
    uint8_t *png = NULL;
    size_t n = 0;
    xd_error_t err = {0};
    CHECK(xd_image_encode_png(px, w, h, ch, &png, &n, &err) == XD_OK);
    CHECK(xd_image_sniff(png, n) == XD_IMAGE_PNG);
    xd_image_t img;
    CHECK(xd_image_decode(png, n, 0, &img, &err) == XD_OK);
    size_t want_c = ch <= 2 ? 1 : 3;
    CHECK(img.width == w && img.height == h && img.channels == want_c);
    size_t bad = 0;
    for (size_t i = 0; img.pixels && i < w * h; i++)
      for (size_t c = 0; c < want_c; c++) bad += img.pixels[i * want_c + c] != px[i * ch + c];
    CHECK_MSG(bad == 0, "%zu channels: %zu samples differ", ch, bad);
    xd_image_deinit(&img);
    xd_free(png);
  }
  uint8_t *png = NULL;
  size_t n = 0;
  xd_error_t err = {0};
  uint8_t px[4] = {0};
  CHECK(xd_image_encode_png(px, 1, 1, 5, &png, &n, &err) == XD_EINVAL);
  CHECK(xd_image_encode_png(px, 0, 1, 1, &png, &n, &err) == XD_EINVAL);
}

TEST(base64) {
  static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) { /* RFC 4648 section 10 */
    size_t n = 0;
    char *e = xd_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), &n);
    CHECK(e && strcmp(e, enc[i]) == 0 && n == strlen(enc[i]));
    uint8_t *d = NULL;
    xd_error_t err = {0};
    CHECK(xd_base64_decode(enc[i], strlen(enc[i]), &d, &n, &err) == XD_OK);
    CHECK(n == strlen(plain[i]) && memcmp(d, plain[i], n) == 0);
    xd_free(d);
    xd_free(e);
  }
  uint8_t *d = NULL;
  size_t n = 0;
  xd_error_t err = {0};
  CHECK(xd_base64_decode("Zm9v\nYmFy", 9, &d, &n, &err) == XD_OK && n == 6); /* wrapped lines */
  xd_free(d);
  CHECK(xd_base64_decode("Zm9vYg", 6, &d, &n, &err) == XD_OK && n == 4); /* no padding */
  xd_free(d);
  CHECK(xd_base64_decode("-_-_", 4, &d, &n, &err) == XD_OK && n == 3 && d[0] == 0xfb); /* URL-safe */
  xd_free(d);
  CHECK(xd_base64_decode("Zm9v*mFy", 8, &d, &n, &err) == XD_EINVAL && d == NULL);
  CHECK(strstr(err.text, "character 4") != NULL);
  CHECK(xd_base64_decode("Zm9vY", 5, &d, &n, &err) == XD_EINVAL);
  CHECK(xd_base64_decode("Zg==Zg==", 8, &d, &n, &err) == XD_EINVAL);
}

/* Every allocation of a decode, a conversion and an encode may fail: each failure is
 * XD_ENOMEM (or a decoder error) with nothing leaked (ASan checks the leaks). */
TEST(allocation_failures) {
  static const char *names[] = {"rgb.png", "palette.png", "rgb.jpg"};
  for (size_t f = 0; f < 3; f++) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s", names[f]);
    size_t n = 0;
    uint8_t *b = slurp(path, &n);
    int ok = 0;
    for (long k = 1; k < 200 && !ok; k++) {
      xd_image_t img;
      xd_error_t err = {0};
      xd_alloc_fail_after(k);
      int rc = xd_image_decode(b, n, 0, &img, &err);
      xd_alloc_fail_after(0);
      if (rc == XD_OK) ok = 1;
      else CHECK_MSG(rc == XD_ENOMEM, "%s at allocation %ld: %d (%s)", names[f], k, rc, err.text);
      xd_image_deinit(&img);
    }
    CHECK(ok);
    free(b);
  }
  uint8_t px[16 * 16 * 3] = {1};
  int ok = 0;
  for (long k = 1; k < 200 && !ok; k++) {
    uint8_t *png = NULL;
    size_t n = 0;
    xd_error_t err = {0};
    xd_alloc_fail_after(k);
    int rc = xd_image_encode_png(px, 16, 16, 3, &png, &n, &err);
    xd_alloc_fail_after(0);
    if (rc == XD_OK) ok = 1;
    else CHECK_MSG(rc == XD_ENOMEM, "encoding at allocation %ld: %d (%s)", k, rc, err.text);
    xd_free(png);
  }
  CHECK(ok);
}

int main(void) {
  RUN(decode_equals_pillow);
  RUN(model_input_equals_torch);
  RUN(resize_planes_equal_torch);
  RUN(corrupt_and_truncated);
  RUN(bounds_from_header);
  RUN(png_encode_round_trip);
  RUN(base64);
  RUN(allocation_failures);
  json_decref(golden());
  return TEST_REPORT();
}

/* fuzz_image.c — PNG and JPEG decoding from untrusted bytes (the {"b64": ...} image rows
 * and bundle background pictures), then conversion into a small model input and PNG
 * re-encoding of what was decoded. The byte limit keeps one input's work small. */
#include "core/alloc.h"
#include "core/image.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  xd_image_t img;
  xd_error_t err;
  size_t w, h, c;
  (void)xd_image_probe(data, size, &w, &h, &c, &err);
  if (xd_image_decode(data, size, (size_t)1 << 22, &img, &err) != XD_OK) return 0;
  xd_image_prep_t p = {.channels = img.channels == 1 ? 3 : 1, .height = 5, .width = 7, .scale = 1.0 / 255,
                       .mean = {0.5, 0.5, 0.5}, .std = {0.25, 0.25, 0.25}};
  double x[3 * 5 * 7];
  (void)xd_image_to_input(&img, &p, x, &err);
  if (img.width * img.height <= 4096) {
    uint8_t *png = NULL;
    size_t n = 0;
    if (xd_image_encode_png(img.pixels, img.width, img.height, img.channels, &png, &n, &err) == XD_OK) xd_free(png);
  }
  xd_image_deinit(&img);
  return 0;
}

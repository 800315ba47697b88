/* image.h — model inputs from pictures: PNG and JPEG decoding from memory, channel
 * conversion, bilinear resizing and per-channel normalization into a [C][H][W] row; PNG
 * encoding for rendered heatmaps.
 *
 * Decoding reads the header first and bounds width, height and channels (XD_IMAGE_MAX_SIDE,
 * XD_IMAGE_MAX_PIXELS, and the caller's byte limit) before it allocates anything, so a
 * small file that claims a huge picture costs nothing. PNG goes through libspng (every
 * colour type and bit depth, decoded to 8 bits per channel; 16-bit samples keep their
 * high byte), JPEG through libjpeg-turbo's TurboJPEG API with its default (accurate
 * integer) DCT and fancy upsampling, the settings Pillow uses, so pixels equal Pillow's.
 *
 * Resizing is torch's F.interpolate(mode="bilinear", align_corners=False,
 * antialias=False): output pixel i samples the source at (i + 0.5) * in/out - 0.5,
 * clamped below at 0, between its two neighbours (the last one repeated at the edge).
 * Shrinking does not average the pixels it skips (no antialiasing), as torch.
 *
 * Everything here is reentrant; no global state. Pixel buffers are xd_malloc'd.
 */
#ifndef XD_IMAGE_H
#define XD_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Bounds on a decoded picture, checked against the header before decoding. */
#define XD_IMAGE_MAX_SIDE 4096
#define XD_IMAGE_MAX_PIXELS ((size_t)4096 * 4096)
/* Channels of a model image: gray or RGB. */
#define XD_IMAGE_MAX_CHANNELS 3

typedef enum xd_image_format { XD_IMAGE_UNKNOWN = 0, XD_IMAGE_PNG = 1, XD_IMAGE_JPEG = 2 } xd_image_format_t;

/* A decoded picture: height x width pixels of `channels` interleaved 8-bit samples
 * (1 = gray, 3 = RGB; alpha is dropped at decoding), rows top to bottom. */
typedef struct xd_image {
  size_t width, height, channels;
  uint8_t *pixels; /* (height, width, channels), xd_malloc'd */
} xd_image_t;

/* The format from the first bytes (PNG signature or JPEG SOI marker). */
xd_image_format_t xd_image_sniff(const uint8_t *buf, size_t len);

/* Reads only the header of a PNG or JPEG: width, height and the channels the decoder
 * will produce (1 or 3). Returns XD_OK, XD_EINVAL (not an image, corrupt header, CMYK
 * JPEG) or XD_ETOOBIG (over XD_IMAGE_MAX_SIDE / XD_IMAGE_MAX_PIXELS), err filled. */
int xd_image_probe(const uint8_t *buf, size_t len, size_t *width, size_t *height, size_t *channels,
                   xd_error_t *err);

/* Decodes a PNG or JPEG held in buf[0..len). max_bytes bounds the decoder's pixel
 * memory (0 = only the built-in bounds); the check is made from the header, before any
 * pixel buffer exists. On XD_OK *img owns its pixels (xd_image_deinit). Errors:
 * XD_EINVAL (corrupt or truncated file, with the decoder's reason), XD_ETOOBIG,
 * XD_ENOMEM. *img is zeroed on failure. */
int xd_image_decode(const uint8_t *buf, size_t len, size_t max_bytes, xd_image_t *img, xd_error_t *err);
void xd_image_deinit(xd_image_t *img);

/* Bilinear resize of C planes (C, h, w) to (C, H, W), torch's align_corners=False
 * without antialiasing (see the file comment). h, w, H, W >= 1. No allocation. */
void xd_image_resize(const double *src, size_t C, size_t h, size_t w, double *dst, size_t H, size_t W);

/* What a model expects: channels (1 or 3), height, width, and the normalization
 * (p * scale - mean[c]) / std[c]; mean and std have `channels` entries. */
typedef struct xd_image_prep {
  size_t channels, height, width;
  double scale;
  double mean[XD_IMAGE_MAX_CHANNELS], std[XD_IMAGE_MAX_CHANNELS];
} xd_image_prep_t;

/* Checks a prep (channels 1 or 3, sizes in 1..XD_IMAGE_MAX_SIDE, finite scale/mean, std
 * finite and non-zero). field names the prep in errors ("input"). */
int xd_image_prep_check(const xd_image_prep_t *p, const char *field, xd_error_t *err);

/* A decoded picture -> the model's input row x (channels * height * width), [C][H][W]:
 * converted to the model's channels (gray -> RGB repeats the gray value; RGB -> gray is
 * ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B, Pillow's "L" without its rounding),
 * resized when its size differs, then normalized. Returns XD_OK or XD_ENOMEM. */
int xd_image_to_input(const xd_image_t *img, const xd_image_prep_t *p, double *x, xd_error_t *err);

/* Normalizes pixel values in place: x (channels, height, width) of raw pixel values p
 * becomes (p * scale - mean[c]) / std[c]. */
void xd_image_normalize(const xd_image_prep_t *p, double *x);

/* Encodes height x width pixels of `channels` interleaved 8-bit samples (1 gray, 2 gray +
 * alpha, 3 RGB, 4 RGBA) as a PNG. On XD_OK *out is xd_malloc'd (xd_free) with *out_len
 * bytes. Errors: XD_EINVAL (bad sizes), XD_ENOMEM. */
int xd_image_encode_png(const uint8_t *pixels, size_t width, size_t height, size_t channels, uint8_t **out,
                        size_t *out_len, xd_error_t *err);

#endif

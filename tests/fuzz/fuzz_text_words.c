/* fuzz_text_words.c — the word splitter of LIME/SHAP on text (core/text_lime.h) on
 * untrusted request text. Input: byte 0 picks bow and a keep-pattern, the rest is the
 * text. Checks: pieces tile the text in order, every feature owns at least one word
 * piece, and rendering with everything kept gives the text back. */
#include <stdlib.h>
#include <string.h>

#include "core/text_lime.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int bow = data[0] & 1;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  xd_text_words_t w;
  xd_error_t err;
  if (xd_text_words_split(text, len, bow, &w, &err) != XD_OK) return 0;
  size_t at = 0;
  for (size_t p = 0; p < w.n_pieces; p++) {
    if (w.piece_start[p] != at || w.piece_end[p] <= at) __builtin_trap();
    at = w.piece_end[p];
  }
  if (at != len || w.d == 0) __builtin_trap();
  for (size_t f = 0; f < w.d; f++)
    if (w.feat_first[f + 1] <= w.feat_first[f]) __builtin_trap();
  uint8_t *on = malloc(w.d);
  char *out = malloc(len + w.n_pieces * 3 + 1);
  if (on && out) {
    memset(on, 1, w.d);
    if (xd_text_words_render(&w, text, len, on, NULL, out) != len || memcmp(out, text, len)) __builtin_trap();
    for (size_t f = 0; f < w.d; f++) on[f] = (uint8_t)((data[0] >> (1 + f % 7)) & 1);
    if (xd_text_words_render(&w, text, len, on, "[M]", out) > len + w.n_pieces * 3) __builtin_trap();
  }
  free(on);
  free(out);
  xd_text_words_deinit(&w);
  return 0;
}

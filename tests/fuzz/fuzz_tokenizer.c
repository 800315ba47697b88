/* fuzz_tokenizer.c — a tokenizer.json document and a text from untrusted bytes (a bundle's
 * "tokenizer" and the text rows of requests). Input: the document, a NUL byte, then the
 * text; without a NUL the bytes are a text for a fixed WordPiece tokenizer, so the
 * normalizers and the model see arbitrary text too. */
#include <string.h>

#include "api/tokenizer_json.h"
#include "tests/fuzz/fuzz.h"

static const char fixed[] =
    "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"max_input_chars_per_word\": 20, \"vocab\": "
    "{\"[UNK]\": 0, \"[CLS]\": 1, \"[SEP]\": 2, \"a\": 3, \"##a\": 4, \"ab\": 5, \"##b\": 6, \"\\u00e9\": 7, \"##\\u0301\": 8}},"
    " \"added_tokens\": [{\"id\": 1, \"content\": \"[CLS]\", \"special\": true}],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"BertNormalizer\"}, {\"type\": \"NFD\"},"
    " {\"type\": \"Lowercase\"}, {\"type\": \"StripAccents\"}]},"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"}, {\"type\": "
    "\"BertPreTokenizer\"}]},"
    " \"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 2], \"cls\": [\"[CLS]\", 1]}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *nul = memchr(data, 0, size);
  const char *doc = nul ? (const char *)data : fixed;
  size_t doc_len = nul ? (size_t)(nul - (const char *)data) : sizeof fixed - 1;
  const char *text = nul ? nul + 1 : (const char *)data;
  size_t text_len = nul ? size - doc_len - 1 : size;
  xd_tokenizer_t *t = NULL;
  xd_error_t err;
  if (xd_tokenizer_json_load(doc, doc_len, &t, &err) != XD_OK) return 0;
  xd_tok_encoding_t e;
  for (size_t max_length = 0; max_length < 9; max_length += 8)
    if (xd_tokenizer_encode(t, text, text_len, max_length, &e, &err) == XD_OK) {
      for (size_t i = 0; i < e.n; i++)
        if (!e.tokens[i] || (!e.special[i] && (e.start[i] > e.end[i] || e.end[i] > text_len))) __builtin_trap();
      xd_tok_encoding_deinit(&e);
    }
  xd_tokenizer_free(t);
  return 0;
}

/* test_tokenizer.c — core/tokenizer.h and api/tokenizer_json.c against Hugging Face's
 * tokenizers library: ids, token strings, offsets (code points of the original text;
 * none for the post-processor's special tokens) and truncation.
 *
 * Two levels: the outputs frozen by tools/make_tokenizer_fixtures.py in
 * tests/golden/tokenizer/expected.json (always run), and the library itself run now
 * through tests/tokref (its Node bindings, `make tokref-deps`) on texts generated here
 * from a fixed seed, with the fixtures and with the demo models' tokenizers — a
 * differential test over characters the frozen list does not hold. Without node or the package the live level prints itself skipped (a failure when
 * CI=true). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/tokenizer_json.h"
#include "core/alloc.h"
#include "core/unicode.h"
#include "tests/test.h"

#define DIR "tests/golden/tokenizer/"
static const char *names[] = {"bert_uncased", "bert_cased", "bert_strip", "wordlevel", "wordlevel_plain"};
#define N_NAMES (sizeof names / sizeof *names)

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  b[*n] = 0;
  fclose(f);
  return b;
}

/* A fixture by name, or any tokenizer.json by path (a name with a '/'). */
static void path_of(const char *name, char *path, size_t cap) {
  if (strchr(name, '/'))
    snprintf(path, cap, "%s", name);
  else
    snprintf(path, cap, DIR "%s.json", name);
}

static xd_tokenizer_t *load(const char *name) {
  char path[256];
  path_of(name, path, sizeof path);
  size_t n = 0;
  char *b = slurp(path, &n);
  if (!b) return NULL;
  xd_tokenizer_t *t = NULL;
  xd_error_t err = {0};
  if (xd_tokenizer_json_load(b, n, &t, &err) != XD_OK) fprintf(stderr, "  %s: %s: %s\n", name, err.field, err.text);
  free(b);
  return t;
}

/* Compares our encoding of text with the library's (one element of its output). Returns
 * the number of mismatches, printing the first. */
static int compare(const xd_tokenizer_t *t, const char *name, const char *text, size_t len, size_t max_length,
                   json_t *want) {
  xd_tok_encoding_t e;
  xd_error_t err = {0};
  int rc = xd_tokenizer_encode(t, text, len, max_length, &e, &err);
  if (rc != XD_OK) {
    fprintf(stderr, "  %s %s: encode failed: %s\n", name, text, err.text);
    return 1;
  }
  json_t *ids = json_object_get(want, "ids"), *toks = json_object_get(want, "tokens"),
         *offs = json_object_get(want, "offsets"), *sp = json_object_get(want, "special");
  int bad = 0;
  if (e.n != json_array_size(ids)) bad = 1;
  for (size_t i = 0; !bad && i < e.n; i++) {
    json_t *o = json_array_get(offs, i);
    int special = (int)json_integer_value(json_array_get(sp, i));
    if (e.ids[i] != json_integer_value(json_array_get(ids, i)) ||
        strcmp(e.tokens[i], json_string_value(json_array_get(toks, i))) != 0 || e.special[i] != special)
      bad = 1;
    else if (special ? e.start[i] != XD_TOK_NO_OFFSET || e.end[i] != XD_TOK_NO_OFFSET
                     : e.start[i] != (size_t)json_integer_value(json_array_get(o, 0)) ||
                           e.end[i] != (size_t)json_integer_value(json_array_get(o, 1)))
      bad = 1;
  }
  if (bad) {
    fprintf(stderr, "  %s, max_length %zu, text \"%s\":\n    ours:", name, max_length, text);
    for (size_t i = 0; i < e.n; i++)
      fprintf(stderr, " %s/%lld(%ld,%ld)", e.tokens[i], (long long)e.ids[i], (long)e.start[i], (long)e.end[i]);
    char *w = json_dumps(want, JSON_COMPACT);
    fprintf(stderr, "\n    want: %s\n", w);
    free(w);
  }
  if (!bad && max_length) {
    size_t full = e.n_untruncated;
    if (e.truncated != (full > max_length) || e.n > max_length) bad = 1;
  }
  xd_tok_encoding_deinit(&e);
  return bad;
}

/* The frozen reference outputs, untruncated and truncated. */
TEST(frozen_reference) {
  json_error_t je;
  json_t *g = json_load_file(DIR "expected.json", JSON_ALLOW_NUL, &je);
  CHECK(g != NULL);
  if (!g) return;
  json_t *texts = json_object_get(g, "texts");
  size_t max_length = json_integer_value(json_object_get(g, "max_length"));
  for (size_t k = 0; k < N_NAMES; k++) {
    xd_tokenizer_t *t = load(names[k]);
    CHECK_MSG(t != NULL, "%s", names[k]);
    if (!t) continue;
    json_t *ref = json_object_get(json_object_get(g, "tokenizers"), names[k]);
    int bad = 0;
    for (size_t i = 0; i < json_array_size(texts); i++) {
      const char *text = json_string_value(json_array_get(texts, i));
      size_t len = json_string_length(json_array_get(texts, i));
      bad += compare(t, names[k], text, len, 0, json_array_get(json_object_get(ref, "full"), i));
      bad += compare(t, names[k], text, len, max_length, json_array_get(json_object_get(ref, "truncated"), i));
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu encodings differ", names[k], bad, 2 * json_array_size(texts));
    xd_tokenizer_free(t);
  }
  json_decref(g);
}

/* Random texts from a pool of characters chosen to exercise every rule: cased and
 * accented letters, combining marks of several classes, CJK, Hangul, punctuation,
 * spaces of several kinds, controls, added tokens, vocabulary fragments. */
static void random_text(uint64_t *s, char *out, size_t cap) {
  static const char *pool[] = {"a", "e", "i", "o", "u", "t", "h", "s", "ing", "the ", "movie ", "great ", "un", "able",
                               "A", "É", "Ü", "ß", "İ", "Σ", "ﬁ", "\u0301", "\u0308", "\u0315", "\u05ae", "\u0300",
                               "我", "爱", "中", "한", "국", " ", "  ", "\t", "\n", "\u00a0", "\u3000", ".", ",", "!",
                               "'", "-", "_", "…", "«", "¿", "\x01", "\x07", "\u200b", "\u200d", "\ufffd",
                               "[MASK]", "[CLS]", "[UNK", "12", "3", "😀", "ñ", "ç", "Ⓐ", "½", "ी", "ं"};
  size_t n = 0, k = (*s >> 33) % 24;
  for (size_t i = 0; i < k; i++) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    const char *p = pool[(*s >> 33) % (sizeof pool / sizeof *pool)];
    size_t m = p[0] ? strlen(p) : 0;
    if (n + m + 1 >= cap) break;
    memcpy(out + n, p, m);
    n += m;
  }
  out[n] = 0;
}

/* The library run now on generated texts (needs node and tests/tokref/node_modules). */
TEST(live_reference) {
  const char *ci = getenv("CI");
  int have = access("tests/tokref/node_modules/tokenizers/package.json", R_OK) == 0 &&
             system("node --version >/dev/null 2>&1") == 0;
  if (!have) {
    printf("live_reference: skipped (no node or tests/tokref/node_modules: make tokref-deps)\n");
    CHECK(!(ci && strcmp(ci, "true") == 0));
    return;
  }
  enum { N = 300 };
  static char texts[N][256];
  uint64_t seed = 42;
  for (size_t i = 0; i < N; i++) random_text(&seed, texts[i], sizeof texts[i]);
  /* the fixtures, and the demo models' own tokenizers */
  static const char *live[N_NAMES + 2];
  for (size_t k = 0; k < N_NAMES; k++) live[k] = names[k];
  live[N_NAMES] = "models/reviews_bert/tokenizer.json";
  live[N_NAMES + 1] = "models/reviews_gru/tokenizer.json";
  for (size_t k = 0; k < N_NAMES + 2; k++) {
    for (size_t ml = 0; ml < 2; ml++) {
      size_t max_length = ml ? 7 : 0;
      json_t *req = json_object(), *arr = json_array();
      char path[256];
      path_of(live[k], path, sizeof path);
      json_object_set_new(req, "tokenizer", json_string(path));
      json_object_set_new(req, "max_length", json_integer((json_int_t)max_length));
      for (size_t i = 0; i < N; i++) json_array_append_new(arr, json_string(texts[i]));
      json_object_set_new(req, "texts", arr);
      char tmp[] = "/tmp/xd-tokref-XXXXXX";
      int fd = mkstemp(tmp);
      CHECK(fd >= 0);
      if (fd < 0) return;
      close(fd);
      json_dump_file(req, tmp, JSON_COMPACT);
      json_decref(req);
      char cmd[512];
      snprintf(cmd, sizeof cmd, "node tests/tokref/encode.mjs < %s", tmp);
      FILE *p = popen(cmd, "r");
      json_error_t je;
      json_t *out = p ? json_loadf(p, 0, &je) : NULL;
      if (p) pclose(p);
      unlink(tmp);
      CHECK_MSG(json_array_size(out) == N, "%s: node gave no answer", live[k]);
      xd_tokenizer_t *t = load(live[k]);
      int bad = 0;
      for (size_t i = 0; t && i < json_array_size(out); i++) bad += compare(t, live[k], texts[i], strlen(texts[i]), max_length, json_array_get(out, i));
      CHECK_MSG(bad == 0, "%s (max_length %zu): %d of %d generated texts differ", live[k], max_length, bad, N);
      xd_tokenizer_free(t);
      json_decref(out);
    }
  }
}

TEST(invalid_utf8_and_bounds) {
  xd_tokenizer_t *t = load("bert_uncased");
  CHECK(t != NULL);
  if (!t) return;
  xd_tok_encoding_t e;
  xd_error_t err = {0};
  CHECK(xd_tokenizer_encode(t, "ok \xc3\x28 no", 8, 0, &e, &err) == XD_EINVAL);
  CHECK(strstr(err.text, "UTF-8") && strstr(err.text, "byte 3"));
  CHECK(e.ids == NULL);
  CHECK(xd_tokenizer_encode(t, "\xed\xa0\x80", 3, 0, &e, &err) == XD_EINVAL); /* a surrogate */
  CHECK(xd_tokenizer_encode(t, "\xc0\xaf", 2, 0, &e, &err) == XD_EINVAL);     /* overlong */
  CHECK(xd_tokenizer_encode(t, "ok", 2, 2, &e, &err) == XD_EINVAL);           /* no room beside [CLS] [SEP] */
  CHECK(xd_tokenizer_encode(t, "ok ok ok", 8, 3, &e, &err) == XD_OK);
  CHECK(e.n == 3 && e.truncated && e.n_untruncated == 5);
  xd_tok_encoding_deinit(&e);
  CHECK(xd_tokenizer_pad_id(t) == 0 && strcmp(xd_tokenizer_pad_token(t), "[PAD]") == 0);
  CHECK(xd_tokenizer_unk_id(t) == 1 && xd_tokenizer_n_special(t) == 2);
  CHECK(xd_tokenizer_token_id(t, "movie") >= 0 && xd_tokenizer_token_id(t, "nope") == -1);
  CHECK(strcmp(xd_tokenizer_id_token(t, xd_tokenizer_token_id(t, "movie")), "movie") == 0);
  xd_tokenizer_free(t);
}

/* Errors name the path inside tokenizer.json. */
static void expect_error(const char *json, const char *field, const char *words) {
  xd_tokenizer_t *t = NULL;
  xd_error_t err = {0};
  int rc = xd_tokenizer_json_load(json, strlen(json), &t, &err);
  CHECK_MSG(rc != XD_OK && t == NULL, "%s: accepted", json);
  CHECK_MSG(strcmp(err.field, field) == 0, "field '%s', want '%s' (%s)", err.field, field, err.text);
  CHECK_MSG(strstr(err.text, words) != NULL, "text '%s' lacks '%s'", err.text, words);
}

TEST(decoder_errors) {
  expect_error("[]", "", "object");
  expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "model.type", "BPE");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}, \"unk_token\": \"u\"}}", "model.vocab", "empty");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": -1}, \"unk_token\": \"a\"}}", "model.vocab.a", "id");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"u\"}}", "model.unk_token",
               "not in the vocabulary");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0, \"b\": 0}, \"unk_token\": \"a\"}}",
               "model.vocab[1]", "both");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\"}, "
               "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}]}}",
               "normalizer.normalizers[0].type", "NFKC");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\"}, "
               "\"pre_tokenizer\": {\"type\": \"ByteLevel\"}}",
               "pre_tokenizer.type", "ByteLevel");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\"}, "
               "\"added_tokens\": [{\"id\": 1, \"content\": \"<m>\", \"lstrip\": true}]}",
               "added_tokens[0].lstrip", "lstrip");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\"}, "
               "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"[X]\"}},"
               "{\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {}}}",
               "post_processor.single[0]", "[X]");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\"}, \"extra\": 1}", "extra",
               "unknown key");
  expect_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, \"unk_token\": \"a\", "
               "\"max_input_chars_per_word\": 0}}",
               "model.max_input_chars_per_word", "1..");
  expect_error("{\"model\": {\"type\": \"WordLevel\", \"vocab\": {\"a\": 0, \"\\u00ff\\u00fe\": 1}, \"unk_token\": \"a\"}, "
               "\"padding\": {\"pad_token\": \"[P]\"}}",
               "padding.pad_token", "not a token");
  expect_error("not json", "", "not JSON");
}

/* Every allocation of loading and encoding may fail: a clean XD_ENOMEM each time. */
TEST(allocation_failures) {
  size_t n = 0;
  char *b = slurp(DIR "bert_uncased.json", &n);
  CHECK(b != NULL);
  int ok = 0;
  for (long k = 1; k < 5000 && !ok; k++) {
    xd_tokenizer_t *t = NULL;
    xd_error_t err = {0};
    xd_alloc_fail_after(k);
    int rc = xd_tokenizer_json_load(b, n, &t, &err);
    if (rc == XD_OK) {
      xd_tok_encoding_t e;
      rc = xd_tokenizer_encode(t, "Café 我爱 don't [MASK] unwatchable", strlen("Café 我爱 don't [MASK] unwatchable"), 0,
                               &e, &err);
      if (rc == XD_OK) {
        ok = 1;
        xd_tok_encoding_deinit(&e);
      }
    }
    xd_alloc_fail_after(0);
    if (!ok) CHECK_MSG(rc == XD_ENOMEM, "allocation %ld: %d %s", k, rc, err.text);
    xd_tokenizer_free(t);
  }
  CHECK(ok);
  free(b);
}

TEST(unicode_tables) {
  uint32_t o[4];
  CHECK(xd_uni_decompose(0xE9, o) == 2 && o[0] == 'e' && o[1] == 0x301);
  CHECK(xd_uni_decompose(0xD55C, o) == 3 && o[0] == 0x1112 && o[1] == 0x1161 && o[2] == 0x11AB); /* 한 */
  CHECK(xd_uni_decompose(0x1E09, o) == 3);                                                      /* ḉ */
  CHECK(xd_uni_lower(0x130, o) == 2 && o[0] == 'i' && o[1] == 0x307);
  CHECK(xd_uni_lower(0x3A3, o) == 1 && o[0] == 0x3C3);
  CHECK(xd_uni_ccc(0x301) == 230 && xd_uni_ccc(0x315) == 232 && xd_uni_ccc('a') == 0);
  CHECK(xd_uni_flags(0x3000) & XD_UNI_WHITE_SPACE);
  CHECK(xd_uni_flags(0x200B) & XD_UNI_OTHER);
  CHECK(xd_uni_is_word(0x24B6) && xd_uni_is_word('_') && xd_uni_is_word(0x200D) && !xd_uni_is_word('-'));
  char u[4];
  uint32_t cp[4];
  for (uint32_t c = 1; c < 0x110000; c += 97) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    size_t m = xd_utf8_encode(c, u);
    CHECK(xd_utf8_decode(u, m, cp, NULL, NULL) == 1 && cp[0] == c);
  }
}

int main(void) {
  RUN(frozen_reference);
  RUN(live_reference);
  RUN(invalid_utf8_and_bounds);
  RUN(decoder_errors);
  RUN(allocation_failures);
  RUN(unicode_tables);
  return TEST_REPORT();
}

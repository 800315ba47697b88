/* test_bundle_graph.c — image and text bundles (api/bundle_graph.c, core/model_graph.c):
 * every mistake is a load error naming its bundle path, and the graph must fit the input
 * kind. The demo graphs (models/shapes, models/reviews_gru) are reused with bundles
 * written here. */
#include <jansson.h>
#include <string.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "tests/test.h"

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

static char *cnn, *gru;
static size_t cnn_len, gru_len;

/* Decodes bundle text (an upload when dir is NULL: the graph is given as bytes). */
static int load(const char *json, const char *dir, const char *onnx, size_t onnx_len, xd_error_t *err) {
  xd_model_t *m = NULL;
  int rc = dir ? xd_bundle_decode(json, strlen(json), dir, &m, err)
               : xd_bundle_decode_onnx(json, strlen(json), onnx, onnx_len, NULL, &m, err);
  xd_model_free(m);
  return rc;
}

#define IMG_HEAD "{\"format\": \"explaind.model/v1\", \"task\": \"classification\", \"classes\": [\"square\", \"circle\", \"triangle\"], "
#define IMG_INPUT "\"input\": {\"kind\": \"image\", \"channels\": 3, \"height\": 32, \"width\": 32, \"scale\": 0.00392156862745098, \"mean\": [0.5, 0.5, 0.5], \"std\": 0.25}"

static void expect(const char *json, const char *dir, int image, const char *field, const char *words) {
  xd_error_t err = {0};
  int rc = load(json, dir, image ? cnn : gru, image ? cnn_len : gru_len, &err);
  CHECK_MSG(rc == XD_EFORMAT, "rc %d for %.120s", rc, json);
  CHECK_MSG(strcmp(err.field, field) == 0, "field '%s', want '%s' (%s)", err.field, field, err.text);
  CHECK_MSG(strstr(err.text, words) != NULL, "'%s' lacks '%s'", err.text, words);
}

TEST(image_bundles) {
  xd_error_t err = {0};
  CHECK(load(IMG_HEAD IMG_INPUT "}", NULL, cnn, cnn_len, &err) == XD_OK);
  CHECK(load(IMG_HEAD IMG_INPUT ", \"background\": {\"images\": [\"bg/0.png\", \"bg/1.png\"]}, \"onnx\": \"model.onnx\"}",
             "models/shapes", NULL, 0, &err) == XD_OK);
  expect(IMG_HEAD "\"input\": {\"kind\": \"image\", \"channels\": 1, \"height\": 32, \"width\": 32}}", NULL, 1,
         "input.channels", "[batch, 3, 32, 32]");
  expect(IMG_HEAD "\"input\": {\"kind\": \"image\", \"channels\": 3, \"height\": 28, \"width\": 32}}", NULL, 1,
         "input.height", "is 28");
  expect(IMG_HEAD "\"input\": {\"kind\": \"image\", \"channels\": 2, \"height\": 32, \"width\": 32}}", NULL, 1,
         "input.channels", "1 (gray) or 3");
  expect(IMG_HEAD "\"input\": {\"kind\": \"image\", \"channels\": 3, \"height\": 32, \"width\": 32, \"std\": [1, 0, 1]}}",
         NULL, 1, "input.std[1]", "non-zero");
  expect(IMG_HEAD "\"input\": {\"kind\": \"image\", \"channels\": 3, \"height\": 32, \"width\": 32, \"mean\": [1, 2]}}", NULL,
         1, "input.mean", "3 numbers");
  expect(IMG_HEAD "\"input\": {\"kind\": \"image\", \"channels\": 3, \"height\": 32, \"width\": 32, \"colour\": 1}}", NULL,
         1, "input.colour", "unknown key");
  expect(IMG_HEAD "\"input\": {\"kind\": \"video\"}}", NULL, 1, "input.kind", "\"image\" or \"text\"");
  expect(IMG_HEAD IMG_INPUT ", \"output\": \"logits\"}", NULL, 1, "output", "Softmax");
  expect(IMG_HEAD IMG_INPUT ", \"output\": \"scores\"}", NULL, 1, "output", "\"probabilities\" or \"logits\"");
  expect(IMG_HEAD IMG_INPUT ", \"features\": [{\"name\": \"x\"}]}", NULL, 1, "features", "no features");
  expect("{\"format\": \"explaind.model/v1\", \"task\": \"classification\", \"classes\": [\"a\", \"b\"], " IMG_INPUT "}",
         NULL, 1, "onnx", "2 classes");
  expect(IMG_HEAD IMG_INPUT ", \"background\": {\"images\": [\"bg/0.png\", \"model.json\"]}, \"onnx\": \"model.onnx\"}",
         "models/shapes", 1, "background.images[1]", "PNG or JPEG");
  expect(IMG_HEAD IMG_INPUT ", \"background\": {\"images\": [\"../iris/model.json\"]}, \"onnx\": \"model.onnx\"}",
         "models/shapes", 1, "background.images[0]", "relative file name");
  expect(IMG_HEAD IMG_INPUT ", \"background\": {\"images\": [\"bg/0.png\"]}}", NULL, 1, "background.images[0]",
         "not allowed here");
  expect(IMG_HEAD IMG_INPUT ", \"background\": {\"images\": [{\"b64\": \"iVBORw0KGgo=\"}]}}", NULL, 1,
         "background.images[0]", "PNG");
  expect(IMG_HEAD IMG_INPUT ", \"background\": {\"texts\": [\"a\"]}}", NULL, 1, "background.texts", "unknown key");
  /* the text graph under an image input */
  expect(IMG_HEAD IMG_INPUT "}", NULL, 0, "input", "'input_ids' is int64");
}

#define TXT_HEAD "{\"format\": \"explaind.model/v1\", \"task\": \"classification\", \"classes\": [\"negative\", \"positive\"], "

TEST(text_bundles) {
  size_t n = 0;
  char *tok = slurp("models/reviews_gru/tokenizer.json", &n);
  CHECK(tok != NULL);
  if (!tok) return;
  size_t cap = n + 4096;
  char *json = malloc(cap);
  xd_error_t err = {0};
  snprintf(json, cap, TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": %s, \"max_length\": 16}, "
           "\"background\": {\"texts\": [\"great\", \"awful film\"]}}", tok);
  CHECK_MSG(load(json, NULL, gru, gru_len, &err) == XD_OK, "%s: %s", err.field, err.text);
  CHECK(load(TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": \"tokenizer.json\", \"max_length\": 128, "
             "\"embedding\": \"/word/Gather_output_0\"}, \"onnx\": \"model.onnx\"}",
             "models/reviews_gru", NULL, 0, &err) == XD_OK);
  expect(TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": \"tokenizer.json\", \"max_length\": 128, "
         "\"embedding\": \"nope\"}, \"onnx\": \"model.onnx\"}",
         "models/reviews_gru", 0, "input.embedding", "no tensor 'nope'");
  expect(TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": \"tokenizer.json\"}, \"onnx\": \"model.onnx\"}",
         "models/reviews_gru", 0, "input.max_length", "integer");
  expect(TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": \"missing.json\", \"max_length\": 8}, \"onnx\": \"model.onnx\"}",
         "models/reviews_gru", 0, "input.tokenizer", "cannot open");
  expect(TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": {\"model\": {\"type\": \"WordLevel\", \"vocab\": "
         "{\"a\": 0}, \"unk_token\": \"b\"}}, \"max_length\": 8}}",
         NULL, 0, "input.tokenizer.model.unk_token", "not in the vocabulary");
  expect(TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": {\"model\": {\"type\": \"BPE\"}}, \"max_length\": 8}}", NULL,
         0, "input.tokenizer.model.type", "BPE");
  snprintf(json, cap, TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": %s, \"max_length\": 8}, "
           "\"background\": {\"texts\": [\"fine\", 3]}}", tok);
  expect(json, NULL, 0, "background.texts[1]", "string");
  /* the image graph under a text input: its float input is none of the token inputs */
  snprintf(json, cap, TXT_HEAD "\"input\": {\"kind\": \"text\", \"tokenizer\": %s, \"max_length\": 8}}", tok);
  xd_error_t e2 = {0};
  CHECK(load(json, NULL, cnn, cnn_len, &e2) == XD_EFORMAT);
  CHECK_MSG(strcmp(e2.field, "input") == 0 && strstr(e2.text, "input_ids"), "%s: %s", e2.field, e2.text);
  free(json);
  free(tok);
}

int main(void) {
  cnn = slurp("models/shapes/model.onnx", &cnn_len);
  gru = slurp("models/reviews_gru/model.onnx", &gru_len);
  if (!cnn || !gru) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  RUN(image_bundles);
  RUN(text_bundles);
  free(cnn);
  free(gru);
  return TEST_REPORT();
}

/* test_numbody.c — the request decoder's fast path (api/numbody.h, xd_predict_fast)
 * against jansson on the same inputs: whatever the fast path takes, it reads to the same
 * doubles, bit for bit (-0 included), and turns into the same /predict answer; whatever
 * jansson refuses or reads differently (out of range, non-finite, off-grammar, nested,
 * escaped), the fast path leaves to jansson. The lists name the inputs the fast path must
 * take, so the test fails if it takes nothing. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/alloc.h"
#include "api/api.h"
#include "api/bundle.h"
#include "api/endpoints.h"
#include "api/jsonout.h"
#include "api/numbody.h"
#include "core/alloc.h"
#include "tests/test.h"

static const char *const KEYS[] = {"model", "instances", "timeout_ms", NULL};

/* Reads body both ways. Returns 1 when the fast path took it (and then checks jansson read
 * every number to the same bits), 0 when it left it (and jansson's reading is not
 * checked here: the router uses jansson's then). */
static int both_ways(const char *body, size_t len) {
  xd_numbody_t nb;
  int fast = xd_numbody_parse(body, len, KEYS, len, &nb);
  json_error_t jerr;
  json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (fast) {
    CHECK_MSG(doc != NULL, "fast path took what jansson refuses (%s): %.*s", doc ? "" : jerr.text, (int)len, body);
    json_t *rows = json_object_get(doc, "instances");
    const xd_numbody_value_t *v = &nb.v[1];
    if (doc && v->kind == XD_NB_ROWS) {
      CHECK(json_array_size(rows) == v->n_rows);
      for (size_t i = 0; i < v->n_rows && i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        CHECK(json_array_size(row) == v->row_len);
        for (size_t k = 0; k < v->row_len && k < json_array_size(row); k++) {
          json_t *x = json_array_get(row, k);
          double want = json_number_value(x), got = v->x[i * v->row_len + k];
          CHECK_MSG(memcmp(&want, &got, sizeof want) == 0, "%.*s [%zu][%zu]: fast %.17g, jansson %.17g", (int)len, body,
                    i, k, got, want);
          CHECK(v->is_int[i * v->row_len + k] == (json_is_integer(x) ? 1 : 0));
        }
      }
    }
    if (doc && nb.v[0].kind == XD_NB_STRING) {
      const char *m = json_string_value(json_object_get(doc, "model"));
      CHECK(m && strlen(m) == nb.v[0].str_len && memcmp(m, nb.v[0].str, nb.v[0].str_len) == 0);
    }
    if (doc && nb.v[2].kind == XD_NB_INTEGER)
      CHECK(json_integer_value(json_object_get(doc, "timeout_ms")) == nb.v[2].integer);
  }
  xd_numbody_deinit(&nb);
  json_decref(doc);
  return fast;
}

static int number_fast(const char *lit) {
  char body[256];
  int n = snprintf(body, sizeof body, "{\"model\":\"iris\",\"instances\":[[%s,1,2,3]]}", lit);
  return both_ways(body, (size_t)n);
}

TEST(numbers_read_as_jansson_reads_them) {
  /* taken by the fast path, and equal to jansson's reading bit for bit */
  static const char *const taken[] = {
      "0", "-0", "1", "-1", "0.5", "-0.0", "0.0", "1e10", "1E-10", "1e+10", "-1.5E+3", "48.906", "0.1",
      "123456789012345678", "9007199254740993", "9223372036854775807", "-9223372036854775808", "1e308",
      "1.7976931348623157e308", "-1.7976931348623157e308", "4.9e-324", "5e-324", "1e-400", "-1e-400",
      "2.2250738585072011e-308", "0.30000000000000004", "1e0", "100e-2"};
  for (size_t i = 0; i < sizeof taken / sizeof *taken; i++) CHECK_MSG(number_fast(taken[i]), "%s", taken[i]);
  /* left to jansson: it refuses them, or (long literals) reads them its own way */
  static const char *const left[] = {
      "9223372036854775808", "-9223372036854775809", "1e309", "-1e309", "NaN", "Infinity", "-Infinity", "nan",
      "01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "1_000", "--1", "1.5.5", "\"1\"", "null", "true",
      "0.10000000000000000555111512312578270211815834045410156250000000000", "[1]", "{}"};
  for (size_t i = 0; i < sizeof left / sizeof *left; i++) CHECK_MSG(!number_fast(left[i]), "%s", left[i]);
}

/* Random literals of every length and exponent around the fast reading's limits (2^53,
 * 10^22, 19 digits): each read to jansson's bits (both_ways checks). */
TEST(random_literals_read_as_jansson_reads_them) {
  uint64_t s = 12345;
  int taken = 0;
  for (int i = 0; i < 60000; i++) {
    char lit[64];
    int n = 0;
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    if (s & 1) lit[n++] = '-';
    int digits = 1 + (int)((s >> 8) % 20), dot = (int)((s >> 16) % (uint64_t)(digits + 1));
    for (int d = 0; d < digits; d++) {
      if (d == dot && d > 0) lit[n++] = '.';
      lit[n++] = (char)('0' + (s >> (20 + d * 2)) % 10);
      if (d == 0 && lit[n - 1] == '0' && digits > 1 && dot != 1) lit[n - 1] = '7'; /* no leading zero */
    }
    if ((s >> 5) & 1) n += snprintf(lit + n, sizeof lit - (size_t)n, "e%d", (int)((s >> 40) % 61) - 30);
    lit[n] = '\0';
    taken += number_fast(lit);
  }
  CHECK_MSG(taken > 50000, "the fast path took %d of 60000", taken);
}

TEST(whitespace_shapes_and_keys) {
  static const char *const taken[] = {
      " \t\n\r{ \"model\" : \"iris\" , \"instances\" : [ [ 1 , 2 ] , [3,4] ] } \n",
      "{\"instances\":[[1]],\"model\":\"x\"}",
      "{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]],\"timeout_ms\":250}",
      "{\"model\":\"a b/c\",\"instances\":[[1,2],[3,4],[5,6]]}"};
  for (size_t i = 0; i < sizeof taken / sizeof *taken; i++) CHECK_MSG(both_ways(taken[i], strlen(taken[i])), "%s", taken[i]);
  static const char *const left[] = {
      "", "{}", "[]", "{\"model\":\"iris\"}x", "{\"model\":\"iris\",}", "{\"model\":\"iris\",\"instances\":[[1,2],]}",
      "{\"model\":\"iris\",\"instances\":[]}", "{\"model\":\"iris\",\"instances\":[[]]}",
      "{\"model\":\"iris\",\"instances\":[[1,2],[3]]}",                  /* ragged */
      "{\"model\":\"iris\",\"instances\":[[[1,2]]]}",                    /* nested */
      "{\"model\":\"iris\",\"instances\":[{\"a\":1}]}",                  /* rows as objects */
      "{\"model\":\"iris\",\"instances\":[[1,\"east\"]]}",               /* category names */
      "{\"model\":\"iris\",\"instances\":[[1,null]]}", "{\"model\":\"iris\",\"instances\":[1,2]}",
      "{\"model\":\"iris\",\"model\":\"iris\",\"instances\":[[1]]}",      /* duplicate key */
      "{\"model\":\"iris\",\"instances\":[[1]],\"seed\":1}",              /* unknown key */
      "{\"model\":\"ir\\u0069s\",\"instances\":[[1]]}",                   /* escape */
      "{\"model\":\"iris\xc3\xa9\",\"instances\":[[1]]}",                 /* non-ASCII */
      "{\"model\":\"iris\",\"instances\":[[1]],\"timeout_ms\":1.5}", "{\"model\":\"iris\",\"instances\":[[1]],\"timeout_ms\":null}",
      "{\"model\":\"iris\",\"instances\":[[1]]\f}",                        /* not JSON whitespace */
      "{\"model\":\"iris\",\"instances\":[[1]]", "{\"model\":iris,\"instances\":[[1]]}"};
  for (size_t i = 0; i < sizeof left / sizeof *left; i++) CHECK_MSG(!both_ways(left[i], strlen(left[i])), "%s", left[i]);
  /* a NUL inside the body */
  static const char nul[] = "{\"model\":\"iris\",\"instances\":[[1]]}\0";
  CHECK(!both_ways(nul, sizeof nul - 1));
}

/* ---- /predict: the fast job and jansson's job give the same answer ------------------- */

static xd_api_t *demo_api(xd_registry_t **reg) {
  static const char *names[] = {"iris", "credit", "diabetes"};
  xd_registry_new(reg);
  for (size_t i = 0; i < 3; i++) {
    char path[128], sha[65];
    snprintf(path, sizeof path, "models/%s/model.json", names[i]);
    xd_model_t *m = NULL;
    xd_error_t err;
    if (xd_bundle_load_file(path, &m, sha, &err) == XD_OK) xd_registry_put(*reg, names[i], m, sha, path, 0, NULL);
  }
  xd_api_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  xd_limits_default(&cfg.limits);
  cfg.limits.max_rows = 5;
  xd_api_t *api = NULL;
  xd_api_new(&cfg, *reg, &api);
  return api;
}

/* The answer of a job as text, or the error as "code field: text". */
static char *answer(xd_work_t *w, int rc, const xd_error_t *derr) {
  char *s = NULL;
  if (rc != XD_OK) {
    s = malloc(600);
    snprintf(s, 600, "error %d %s: %s", derr->code, derr->field, derr->text);
    return s;
  }
  xd_error_t err;
  xd_error_clear(&err);
  json_t *out = xd_work_run_inline(w, NULL, &err);
  char *t = out ? xd_json_print(out) : NULL;
  s = strdup(t ? t : "(no answer)");
  xd_free(t);
  json_decref(out);
  w->ops->free(w->state);
  return s;
}

TEST(predict_fast_path_gives_the_decoders_answer) {
  xd_registry_t *reg = NULL;
  xd_api_t *api = demo_api(&reg);
  static const struct {
    const char *body;
    int fast;
  } cases[] = {
      {"{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]]}", 1},
      {"{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2],[6.5,3,5.2,2],[-0,0,1e-300,1e2]]}", 1},
      {"{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4,0.2]],\"timeout_ms\":3600000}", 1},
      {"{\"model\":\"diabetes\",\"instances\":[[59,2,32.1,101,157,93.2,38,4,4.8598,87]]}", 1},
      {"{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,0,0,1],[33,41816,0.2156,3,3,1]]}", 1},
      /* errors, and values the decoder reads another way: jansson's path answers them */
      {"{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,0.0,0,1]]}", 0}, /* a real is no category code */
      {"{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,4,0,1]]}", 0},   /* code out of range */
      {"{\"model\":\"credit\",\"instances\":[[33,41816,0.2156,-1,0,1]]}", 0},
      {"{\"model\":\"iris\",\"instances\":[[5.1,3.5,1.4]]}", 0},               /* wrong length */
      {"{\"model\":\"nope\",\"instances\":[[5.1,3.5,1.4,0.2]]}", 0},           /* not loaded */
      {"{\"model\":\"-bad\",\"instances\":[[5.1,3.5,1.4,0.2]]}", 0},           /* bad name */
      {"{\"model\":\"iris\",\"instances\":[[1,2,3,4]],\"timeout_ms\":0}", 0},
      {"{\"model\":\"iris\",\"instances\":[[1,2,3,4]],\"timeout_ms\":3600001}", 0},
      {"{\"model\":\"iris\",\"instances\":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3,4]]}", 0}, /* > max_rows */
      {"{\"model\":\"iris\",\"instances\":[[1e308,1e308,1e308,1e308]]}", 1}, /* overflowing model: both 400 */
  };
  for (size_t i = 0; api && i < sizeof cases / sizeof *cases; i++) {
    const char *b = cases[i].body;
    xd_work_t wf, wd;
    memset(&wf, 0, sizeof wf);
    memset(&wd, 0, sizeof wd);
    int fast = xd_predict_fast(api, b, strlen(b), &wf);
    CHECK_MSG(fast == cases[i].fast, "%s: fast path %s", b, fast ? "took it" : "left it");
    json_t *doc = json_loads(b, JSON_REJECT_DUPLICATES, NULL);
    xd_error_t err;
    xd_error_clear(&err);
    int rc = xd_predict_decode(api, doc, &wd, &err);
    json_decref(doc);
    char *want = answer(&wd, rc, &err);
    if (fast) {
      CHECK_MSG(rc == XD_OK, "%s: the fast path took what the decoder refuses: %s", b, want);
      CHECK(wf.n_parts == wd.n_parts && wf.cost_rows == wd.cost_rows && wf.timeout_ms == wd.timeout_ms);
      CHECK(wf.model && wd.model && strcmp(wf.model, wd.model) == 0);
      char *got = answer(&wf, XD_OK, NULL);
      CHECK_MSG(strcmp(got, want) == 0, "%s:\n  fast    %s\n  decoder %s", b, got, want);
      free(got);
    }
    free(want);
  }
  xd_api_free(api);
  xd_registry_free(reg);
}

/* The same through the router: the README's request answers with shortest numbers. */
TEST(predict_answer_prints_shortest_numbers) {
  xd_registry_t *reg = NULL;
  xd_api_t *api = demo_api(&reg);
  if (!api) return;
  const char *b = "{\"model\":\"diabetes\",\"instances\":[[59,2,32.1,101,157,93.2,38,4,4.8598,87]]}";
  xd_api_request_t q = {.method = "POST", .path = "/predict", .body = b, .body_len = strlen(b)};
  xd_api_response_t r;
  memset(&r, 0, sizeof r);
  xd_api_handle_sync(api, &q, &r, NULL);
  CHECK(r.status == 200);
  json_t *doc = r.body ? json_loads(r.body, 0, NULL) : NULL;
  double p = json_number_value(json_array_get(json_object_get(doc, "predictions"), 0));
  char shortest[32];
  xd_json_format_real(p, shortest);
  CHECK_MSG(r.body && strstr(r.body, shortest) != NULL, "%s does not hold %s", r.body, shortest);
  CHECK(strlen(shortest) <= 18);
  json_decref(doc);
  xd_api_response_deinit(&r);
  xd_api_free(api);
  xd_registry_free(reg);
}

TEST(shortest_reals) {
  static const struct {
    double x;
    const char *text;
  } cases[] = {{48.906, "48.906"}, {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"}, {-0.0, "-0.0"}, {100, "100.0"},
               {1e20, "1e20"}, {1e-5, "1e-5"}, {-1.5e-7, "-1.5e-7"}, {5e-324, "4.94065645841247e-324"},
               {1.7976931348623157e308, "1.7976931348623157e308"}, {0.30000000000000004, "0.30000000000000004"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char b[32];
    xd_json_format_real(cases[i].x, b);
    CHECK_MSG(strcmp(b, cases[i].text) == 0, "%.17g: %s, want %s", cases[i].x, b, cases[i].text);
    CHECK(strtod(b, NULL) == cases[i].x);
  }
  /* the rest of the text as jansson's compact dump */
  json_t *o = json_pack("{s:s, s:[i, f, s, b, n], s:{}}", "m\"x\n\x01/\xc3\xa9", "a", "k", -3, 2.5, "t\\t", 1, "e");
  char *mine = xd_json_print(o), *theirs = json_dumps(o, JSON_COMPACT);
  CHECK_MSG(mine && theirs && strcmp(mine, theirs) == 0, "%s vs %s", mine, theirs);
  xd_free(mine);
  free(theirs);
  json_decref(o);
}

/* printf's shortest of %.15g, %.16g, %.17g that reads back: what the encoder's digit
 * rounding stands in for, with jansson's touches. */
static void reference(double x, char *b) {
  snprintf(b, 32, "%.15g", x);
  if (strtod(b, NULL) != x) snprintf(b, 32, "%.16g", x);
  if (strtod(b, NULL) != x) snprintf(b, 32, "%.17g", x);
  if (!strchr(b, '.') && !strchr(b, 'e')) strcat(b, ".0");
  char *e = strchr(b, 'e');
  if (e) { /* exponent without '+' and leading zeros */
    char tmp[32], *q = tmp, *r = e + 1;
    if (*r == '-') *q++ = *r++;
    else if (*r == '+') r++;
    while (*r == '0' && r[1]) r++;
    strcpy(q, r);
    strcpy(e + 1, tmp);
  }
}

TEST(shortest_reals_match_printf_on_random_doubles) {
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  int differ = 0, n = 0;
  for (int i = 0; i < 300000; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    double x;
    if (i % 3 == 0) { /* any bit pattern */
      memcpy(&x, &s, sizeof x);
      if (!isfinite(x)) continue;
    } else if (i % 3 == 1) { /* a computed value in [0, 1) */
      x = (double)(s >> 11) / 9007199254740992.0;
    } else { /* a short decimal, as clients send them */
      x = (double)(int64_t)(s % 2000001 - 1000000) / 1000.0;
    }
    char mine[32], ref[32];
    xd_json_format_real(x, mine);
    reference(x, ref);
    n++;
    CHECK_MSG(strtod(mine, NULL) == x, "%.17g printed %s", x, mine);
    if (strcmp(mine, ref) != 0 && differ++ < 5) CHECK_MSG(0, "%.17g: %s, printf %s", x, mine, ref);
  }
  CHECK_MSG(differ == 0 && n > 290000, "%d of %d differ from printf's", differ, n);
}

/* Around every power of ten the fast digit path spans (and past its ends), and exact
 * decimal ties: where a wrong exponent guess or a rounding at the edge would show. */
TEST(shortest_reals_at_powers_of_ten_and_ties) {
  int differ = 0;
  for (int k = -14; k <= 46; k++) {
    double p = pow(10, k), xs[6] = {p, nextafter(p, 0), nextafter(p, INFINITY), p * 0.99999999999999994,
                                    p * 5.5, -p * 1.25};
    for (int i = 0; i < 6; i++) {
      char mine[32], ref[32];
      xd_json_format_real(xs[i], mine);
      reference(xs[i], ref);
      if (strcmp(mine, ref) != 0 && differ++ < 5) CHECK_MSG(0, "%.17g: %s, printf %s", xs[i], mine, ref);
    }
  }
  /* halves at the 17th digit: 2^-k has an exact decimal expansion */
  for (int k = 1; k <= 60; k++) {
    double x = ldexp(1.0, -k) + 1.0, y = ldexp(3.0, -k) * 1e5;
    char mine[32], ref[32];
    xd_json_format_real(x, mine);
    reference(x, ref);
    if (strcmp(mine, ref) != 0 && differ++ < 5) CHECK_MSG(0, "%.17g: %s, printf %s", x, mine, ref);
    xd_json_format_real(y, mine);
    reference(y, ref);
    if (strcmp(mine, ref) != 0 && differ++ < 5) CHECK_MSG(0, "%.17g: %s, printf %s", y, mine, ref);
  }
  CHECK(differ == 0);
}

int main(void) {
  xd_api_alloc_init();
  RUN(numbers_read_as_jansson_reads_them);
  RUN(random_literals_read_as_jansson_reads_them);
  RUN(whitespace_shapes_and_keys);
  RUN(predict_fast_path_gives_the_decoders_answer);
  RUN(predict_answer_prints_shortest_numbers);
  RUN(shortest_reals);
  RUN(shortest_reals_match_printf_on_random_doubles);
  RUN(shortest_reals_at_powers_of_ten_and_ties);
  return TEST_REPORT();
}

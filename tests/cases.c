/* cases.c — loading and checking the request suite. */
#include "tests/cases.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b) {
  return strcmp(((const xd_case_t *)a)->name, ((const xd_case_t *)b)->name);
}

size_t xd_cases_load(const char *dir, xd_case_t **out) {
  DIR *d = opendir(dir);
  size_t n = 0, cap = 0;
  xd_case_t *cs = NULL;
  *out = NULL;
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    json_error_t e;
    json_t *spec = json_load_file(path, 0, &e);
    if (!spec) {
      fprintf(stderr, "case %s: %s\n", path, e.text);
      continue;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      cs = realloc(cs, cap * sizeof *cs);
    }
    xd_case_t *c = &cs[n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%.*s", (int)(l - 5), de->d_name);
    c->spec = spec;
    json_t *raw = json_object_get(spec, "body_raw"), *body = json_object_get(spec, "body");
    if (raw) {
      c->body_len = json_string_length(raw);
      c->body = malloc(c->body_len + 1);
      memcpy(c->body, json_string_value(raw), c->body_len + 1);
    } else if (body) {
      c->body = json_dumps(body, JSON_COMPACT);
      c->body_len = strlen(c->body);
    }
  }
  closedir(d);
  qsort(cs, n, sizeof *cs, by_name);
  *out = cs;
  return n;
}

void xd_cases_free(xd_case_t *c, size_t n) {
  for (size_t i = 0; i < n; i++) {
    json_decref(c[i].spec);
    free(c[i].body);
  }
  free(c);
}

int xd_json_subset_tol(const json_t *want, const json_t *got, double tol) {
  if (json_is_object(want)) {
    if (!json_is_object(got)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)want, k, v) if (!xd_json_subset_tol(v, json_object_get(got, k), tol)) return 0;
    return 1;
  }
  if (json_is_array(want)) {
    if (!json_is_array(got) || json_array_size(got) != json_array_size(want)) return 0;
    for (size_t i = 0; i < json_array_size(want); i++)
      if (!xd_json_subset_tol(json_array_get(want, i), json_array_get(got, i), tol)) return 0;
    return 1;
  }
  if (tol > 0 && json_is_real(want) && json_is_number(got)) {
    double a = json_number_value(want), b = json_number_value(got);
    return fabs(a - b) <= tol * (fabs(a) > 1 ? fabs(a) : 1);
  }
  return got && json_equal((json_t *)want, (json_t *)got);
}

int xd_json_subset(const json_t *want, const json_t *got) { return xd_json_subset_tol(want, got, 0); }

/* The value at a JSON pointer ("/probabilities/0"), or NULL. Keys are plain (no ~ escapes). */
static json_t *at(json_t *v, const char *ptr) {
  while (v && *ptr == '/') {
    const char *seg = ++ptr;
    size_t n = strcspn(seg, "/");
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)n, seg);
    v = json_is_array(v) ? json_array_get(v, strtoul(key, NULL, 10)) : json_object_get(v, key);
    ptr += n;
  }
  return v;
}

/* The words by which an error message says what would be valid (docs/API.md, "Errors"). */
static const char *const hint_words[] = {"must",     "expected", "expects", "need",   "one of", "at most",
                                         "at least", "did you mean", "required", "send", "give",   "choose",
                                         "between",  "allowed",  "limit",   "use ",    "only",   NULL};

int xd_error_message_helps(const char *msg) {
  for (const char *const *w = hint_words; *w; w++)
    if (strcasestr(msg, *w)) return 1;
  return 0;
}

int xd_case_check(const xd_case_t *c, int status, const char *body, size_t body_len) {
  int want = (int)json_integer_value(json_object_get(c->spec, "status"));
  json_t *resp = json_loadb(body ? body : "", body_len, 0, NULL);
  int ok = 1;
  if (status != want) {
    fprintf(stderr, "  case %s: status %d, want %d: %.300s\n", c->name, status, want, body ? body : "");
    ok = 0;
  }
  if (!resp || !json_is_object(resp)) {
    fprintf(stderr, "  case %s: response is not a JSON object\n", c->name);
    ok = 0;
  } else if (want >= 400) {
    json_t *e = json_object_get(resp, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *wc = json_string_value(json_object_get(c->spec, "code"));
    if (!code || !wc || strcmp(code, wc) != 0) {
      fprintf(stderr, "  case %s: code %s, want %s\n", c->name, code ? code : "(none)", wc ? wc : "?");
      ok = 0;
    }
    if (!json_string_value(json_object_get(e, "message"))) {
      fprintf(stderr, "  case %s: error has no message\n", c->name);
      ok = 0;
    }
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *wm = json_string_value(json_object_get(c->spec, "message"));
    if (wm && (!msg || !strstr(msg, wm))) {
      fprintf(stderr, "  case %s: message '%s' does not contain '%s'\n", c->name, msg ? msg : "", wm);
      ok = 0;
    }
    if (msg && !xd_error_message_helps(msg)) {
      fprintf(stderr, "  case %s: message '%s' does not say what would be valid\n", c->name, msg);
      ok = 0;
    }
    /* A value of the body was refused: the answer must say which */
    const char *got_field = json_string_value(json_object_get(e, "field"));
    if (code && strcmp(code, "invalid_argument") == 0 && (!got_field || !*got_field)) {
      fprintf(stderr, "  case %s: invalid_argument without a field\n", c->name);
      ok = 0;
    }
    json_t *wf = json_object_get(c->spec, "field");
    const char *field = json_string_value(json_object_get(e, "field"));
    if (wf && (!field || strcmp(field, json_string_value(wf)) != 0)) {
      fprintf(stderr, "  case %s: field %s, want %s\n", c->name, field ? field : "(none)", json_string_value(wf));
      ok = 0;
    }
  } else {
    json_t *sub = json_object_get(c->spec, "response");
    double tol = json_number_value(json_object_get(c->spec, "tolerance"));
    if (sub && !xd_json_subset_tol(sub, resp, tol)) {
      fprintf(stderr, "  case %s: response %.300s does not contain the expected values\n", c->name, body);
      ok = 0;
    }
    /* "equal": [["/a/0", "/a/1"], ...]: parts of the answer that must agree (within tolerance) */
    json_t *pairs = json_object_get(c->spec, "equal");
    for (size_t i = 0; i < json_array_size(pairs); i++) {
      json_t *pr = json_array_get(pairs, i);
      const char *pa = json_string_value(json_array_get(pr, 0)), *pb = json_string_value(json_array_get(pr, 1));
      json_t *a = pa ? at(resp, pa) : NULL, *b = pb ? at(resp, pb) : NULL;
      if (!a || !b || !xd_json_subset_tol(a, b, tol)) {
        fprintf(stderr, "  case %s: %s and %s differ: %.300s\n", c->name, pa ? pa : "?", pb ? pb : "?", body);
        ok = 0;
      }
    }
    if (!sub && !pairs) {
      fprintf(stderr, "  case %s: a valid case must say what the answer holds (response or equal)\n", c->name);
      ok = 0;
    }
  }
  json_decref(resp);
  return ok;
}

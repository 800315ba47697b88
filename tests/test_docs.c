/* test_docs.c — the repository stands on its own: every reference resolves inside it.
 *
 * Checks, over the repository's own text files (run from the repository root, as
 * tests/run.sh does; data folders, fuzz corpora, node_modules and build folders skipped):
 *   - no reference to documents or folders outside the repository, no absolute paths of a
 *     build machine, no personal build folders, no "issue N" labels (forbidden_line);
 *   - in Markdown, the Makefile, shell scripts and bench/, no bare "#N" labels (upstream
 *     issues are cited as owner/repo#N, which is allowed);
 *   - every relative Markdown link in README.md, CONTRIBUTING.md, docs/ and the other .md
 *     files points to a file that exists, and its #anchor, if any, to a heading there;
 *   - every "docs/algorithms.md §N" or "docs/serving.md §N" citation (in code or docs) names
 *     a section that exists.
 * The matchers are tested first on lines built at run time, so that this file itself never
 * contains what it forbids.
 */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test.h"

/* ---- reading files ------------------------------------------------------------------- */

#define MAX_FILE_BYTES (4u << 20)

/* The whole file, NUL-terminated, or NULL (unreadable, too large, or binary: a NUL byte). */
static char *slurp(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      if (cap > MAX_FILE_BYTES + 8192) goto fail;
      char *nb = realloc(buf, cap);
      if (!nb) goto fail;
      buf = nb;
    }
    size_t n = fread(buf + len, 1, 4096, f);
    len += n;
    if (n < 4096) break;
  }
  fclose(f);
  buf[len] = '\0';
  if (memchr(buf, '\0', len)) {
    free(buf);
    return NULL;
  }
  if (len_out) *len_out = len;
  return buf;
fail:
  fclose(f);
  free(buf);
  return NULL;
}

/* ---- which files are the repository's own text --------------------------------------- */

/* Folders that hold data rather than text we write, or things that are not ours. */
static int skip_dir(const char *rel) {
  static const char *const skip[] = {"models", "data", "tests/fuzz/corpus", "tests/fuzz/crashes", "tests/onnx"};
  const char *base = strrchr(rel, '/');
  base = base ? base + 1 : rel;
  if (!strcmp(base, ".git") || !strcmp(base, "node_modules")) return 1;
  if (!strchr(rel, '/') && !strncmp(rel, "build", 5)) return 1; /* build, build-asan, ... */
  const char *b = getenv("BUILD"); /* the build folder tests/run.sh was given, if inside */
  if (b && !strncmp(b, "./", 2)) b += 2;
  if (b && *b && !strncmp(rel, b, strlen(b)) && (rel[strlen(b)] == '\0' || !strcmp(b + strlen(b) - 1, "/"))) return 1;
  for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
    if (!strcmp(rel, skip[i])) return 1;
  return 0;
}

static int skip_file(const char *rel) {
  const char *base = strrchr(rel, '/');
  base = base ? base + 1 : rel;
  if (!strcmp(base, ".git") || !strcmp(base, "package-lock.json")) return 1;
  const char *dot = strrchr(base, '.');
  static const char *const bin_ext[] = {".onnx", ".png", ".jpg", ".ubj", ".csv", ".o", ".a"};
  for (size_t i = 0; dot && i < sizeof bin_ext / sizeof *bin_ext; i++)
    if (!strcmp(dot, bin_ext[i])) return 1;
  return 0;
}

typedef struct {
  char **v;
  size_t n, cap;
} paths_t;

static void paths_add(paths_t *p, const char *s) {
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 256;
    p->v = realloc(p->v, p->cap * sizeof *p->v);
    if (!p->v) abort();
  }
  p->v[p->n++] = strdup(s);
}

static void walk(const char *rel, paths_t *out) {
  DIR *d = opendir(*rel ? rel : ".");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (!skip_dir(path)) walk(path, out);
    } else if (S_ISREG(st.st_mode) && !skip_file(path)) {
      paths_add(out, path);
    }
  }
  closedir(d);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* Files where "#N" can only be a label: prose, the Makefile, scripts, benchmark output. */
static int label_checked(const char *rel) {
  return ends_with(rel, ".md") || !strcmp(rel, "Makefile") || ends_with(rel, ".sh") || !strncmp(rel, "bench/", 6);
}

/* ---- forbidden references ------------------------------------------------------------- */

/* Each pattern is written so that this file does not match it. */
static const struct {
  const char *re;
  const char *why;
} forbidden[] = {
    {"ALGORITHM[S][.]md", "an outside document; cite docs/algorithms.md §N"},
    {"SERVIN[G][.]md", "an outside document; cite docs/serving.md §N"},
    {"/wor[k]/", "an absolute path of a build machine"},
    {"[.][.]/share[d]/", "a folder outside the repository"},
    {"(^|[^A-Za-z0-9_.-])share[d]/(API|MODEL_FORMAT|STYLE|ALGORITHMS|SERVING)", "a folder outside the repository"},
    {"CONTRIBUTING-AGENT[S]", "notes about how the work was organized; see CONTRIBUTING.md"},
    {"[Ii]ssues? #?[0-9]", "an issue label; say what the text is about"},
    {"/tmp/[b]-", "a personal build folder; use make BUILD=<folder>"},
    {"build[-]<", "a personal build folder; use make BUILD=<folder>"},
};
#define N_FORBIDDEN (sizeof forbidden / sizeof *forbidden)
static regex_t forbidden_re[N_FORBIDDEN];

/* The reason the line is forbidden, or NULL. */
static const char *forbidden_line(const char *line) {
  for (size_t i = 0; i < N_FORBIDDEN; i++)
    if (regexec(&forbidden_re[i], line, 0, NULL, 0) == 0) return forbidden[i].why;
  return NULL;
}

/* 1 when the line has a bare "#N" label: '#' and a digit after the start of the line, a
 * space, a tab, '|' or '(' (but not "](#", a link to an anchor). "owner/repo#N" passes. */
static int bare_label(const char *line) {
  for (const char *p = line; (p = strchr(p, '#')); p++) {
    if (p[1] < '0' || p[1] > '9') continue;
    char c = p == line ? ' ' : p[-1];
    if (c == '(' && p - line >= 2 && p[-2] == ']') continue;
    if (c == ' ' || c == '\t' || c == '|' || c == '(') return 1;
  }
  return 0;
}

/* ---- Markdown headings and anchors ----------------------------------------------------- */

/* GitHub's anchor of a heading's text: lower case, only letters, digits, '-' and '_' kept,
 * spaces become '-' (non-ASCII characters are dropped: keep headings ASCII where anchored). */
static void slugify(const char *text, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < cap; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c >= 'A' && c <= 'Z') out[k++] = (char)(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') out[k++] = (char)c;
    else if (c == ' ') out[k++] = '-';
  }
  out[k] = '\0';
}

typedef struct {
  char **slug;    /* anchors, with GitHub's -1, -2 for repeats */
  char **section; /* the heading's leading number ("4", "4.3") or "" */
  size_t n;
} headings_t;

static void headings_free(headings_t *h) {
  for (size_t i = 0; i < h->n; i++) {
    free(h->slug[i]);
    free(h->section[i]);
  }
  free(h->slug);
  free(h->section);
  memset(h, 0, sizeof *h);
}

/* Headings of a Markdown text (outside fenced code). */
static void headings_of(const char *text, headings_t *h) {
  memset(h, 0, sizeof *h);
  size_t cap = 0;
  int fenced = 0;
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len >= 3 && !strncmp(line, "```", 3)) fenced = !fenced;
    else if (!fenced && line[0] == '#') {
      size_t i = 0;
      while (i < len && line[i] == '#') i++;
      if (i < len && line[i] == ' ') {
        const char *t = line + i + 1;
        size_t tn = len - i - 1;
        while (tn && (t[tn - 1] == '#' || t[tn - 1] == ' ' || t[tn - 1] == '\r')) tn--;
        char slug[512], num[32] = "";
        slugify(t, tn, slug, sizeof slug);
        size_t dup = 0;
        for (size_t j = 0; j < h->n; j++) {
          size_t sl = strlen(slug);
          if (!strncmp(h->slug[j], slug, sl) && (h->slug[j][sl] == '\0' || h->slug[j][sl] == '-')) {
            const char *rest = h->slug[j] + sl;
            if (*rest == '\0' || strspn(rest + 1, "0123456789") == strlen(rest + 1)) dup++;
          }
        }
        if (dup) snprintf(slug + strlen(slug), sizeof slug - strlen(slug), "-%zu", dup);
        size_t k = strspn(t, "0123456789.");
        if (k && k < sizeof num) {
          memcpy(num, t, k);
          num[k] = '\0';
          if (num[k - 1] == '.') num[k - 1] = '\0';
        }
        if (h->n == cap) {
          cap = cap ? cap * 2 : 64;
          h->slug = realloc(h->slug, cap * sizeof *h->slug);
          h->section = realloc(h->section, cap * sizeof *h->section);
          if (!h->slug || !h->section) abort();
        }
        h->slug[h->n] = strdup(slug);
        h->section[h->n] = strdup(num);
        h->n++;
      }
    }
    line = end ? end + 1 : line + len;
  }
}

static int has_slug(const headings_t *h, const char *s) {
  for (size_t i = 0; i < h->n; i++)
    if (!strcmp(h->slug[i], s)) return 1;
  return 0;
}

static int has_section(const headings_t *h, const char *s) {
  for (size_t i = 0; i < h->n; i++)
    if (!strcmp(h->section[i], s)) return 1;
  return 0;
}

/* ---- links ----------------------------------------------------------------------------- */

/* Calls fn for each Markdown link target "[..](target)" on a line, code spans excluded. */
static void links_of_line(const char *line, size_t len, void (*fn)(const char *target, void *ctx), void *ctx) {
  int code = 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (line[i] == '`') code = !code;
    if (code || line[i] != ']' || line[i + 1] != '(') continue;
    size_t j = i + 2, k = j;
    while (k < len && line[k] != ')' && line[k] != ' ') k++;
    if (k >= len || line[k] != ')' || k == j) continue;
    char target[1024];
    size_t tn = k - j < sizeof target - 1 ? k - j : sizeof target - 1;
    memcpy(target, line + j, tn);
    target[tn] = '\0';
    fn(target, ctx);
  }
}

typedef struct {
  const char *file; /* the .md file (relative to the root) */
  int line;
  int bad;
} link_ctx_t;

/* Why target (a link in ctx->file) does not resolve, or NULL. */
static const char *link_problem(const char *file, const char *target, char *why, size_t cap) {
  if (!strncmp(target, "http://", 7) || !strncmp(target, "https://", 8) || !strncmp(target, "mailto:", 7))
    return NULL;
  char path[4096];
  const char *hash = strchr(target, '#');
  size_t pn = hash ? (size_t)(hash - target) : strlen(target);
  if (target[0] == '/') {
    snprintf(why, cap, "absolute link");
    return why;
  }
  if (pn == 0) {
    snprintf(path, sizeof path, "%s", file);
  } else {
    const char *slash = strrchr(file, '/');
    int dn = slash ? (int)(slash - file) : 0;
    snprintf(path, sizeof path, "%.*s%s%.*s", dn, file, dn ? "/" : "", (int)pn, target);
  }
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(why, cap, "no such file: %s", path);
    return why;
  }
  if (hash && hash[1] && ends_with(path, ".md") && S_ISREG(st.st_mode)) {
    char *text = slurp(path, NULL);
    headings_t h;
    headings_of(text ? text : "", &h);
    int ok = has_slug(&h, hash + 1);
    headings_free(&h);
    free(text);
    if (!ok) {
      snprintf(why, cap, "no heading for #%s in %s", hash + 1, path);
      return why;
    }
  }
  return NULL;
}

static void check_link(const char *target, void *vctx) {
  link_ctx_t *ctx = vctx;
  char why[4200];
  if (link_problem(ctx->file, target, why, sizeof why)) {
    fprintf(stderr, "  %s:%d: link (%s): %s\n", ctx->file, ctx->line, target, why);
    ctx->bad++;
  }
}

/* ---- section citations ------------------------------------------------------------------ */

static headings_t alg_h, srv_h;

/* For each "algorithms.md" or "serving.md" followed by an optional ')' and a space, then
 * "§N" or "§N.M": 0 when it names an existing section, else 1 (and the section in out). */
static int bad_citations(const char *line, char *out, size_t cap) {
  static const char *const docs[] = {"algorithms.md", "serving.md"};
  const headings_t *hs[] = {&alg_h, &srv_h};
  for (size_t d = 0; d < 2; d++) {
    for (const char *p = line; (p = strstr(p, docs[d])); p++) {
      const char *q = p + strlen(docs[d]);
      if (*q == ')') q++;
      if (*q != ' ') continue;
      q++;
      if (strncmp(q, "\xc2\xa7", 2)) continue; /* § in UTF-8 */
      q += 2;
      size_t k = strspn(q, "0123456789.");
      while (k && q[k - 1] == '.') k--;
      if (!k) continue;
      char num[32];
      snprintf(num, sizeof num, "%.*s", (int)(k < 31 ? k : 31), q);
      if (!has_section(hs[d], num)) {
        snprintf(out, cap, "%s §%s", docs[d], num);
        return 1;
      }
    }
  }
  return 0;
}

/* ---- the matchers, on lines built here ---------------------------------------------------- */

TEST(matchers_flag_what_they_should) {
  char line[256];
  snprintf(line, sizeof line, "see %s%s §2", "ALGORITHMS", ".md");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "(%s%s 4.4)", "SERVING", ".md");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "contract: `../../%s/API.md`", "shared");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "read %swork/%s/API.md", "/", "shared");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "(%s 9)", "issue");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "figures of %s #3-#6", "issues");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "make BUILD=/tmp/%s-me test", "b");
  CHECK(forbidden_line(line) != NULL);
  snprintf(line, sizeof line, "see docs/CONTRIBUTING-%s.md", "AGENTS");
  CHECK(forbidden_line(line) != NULL);
  CHECK(bare_label("| #6: /predict 1 row |"));
  CHECK(bare_label("(lime #709, #464)"));
  CHECK(bare_label("#3 first"));
}

TEST(matchers_pass_legitimate_text) {
  CHECK(forbidden_line("cite docs/algorithms.md §2 and docs/serving.md §4.4") == NULL);
  CHECK(forbidden_line("a shared counter; shared libraries; the shared/ folder of a bundle") == NULL);
  CHECK(forbidden_line("make BUILD=build-asan test; /tmp/explaind-bench.XXXXXX") == NULL);
  CHECK(forbidden_line("this is a known issue with libmicrohttpd 0.9.75") == NULL);
  CHECK(!bare_label("marcotcr/lime#248 and shap/shap#1835"));
  CHECK(!bare_label("[§1 LIME](#1-lime-for-tabular-data-lime)"));
  CHECK(!bare_label("colour `#1f77b4`; #define X 1; # comment"));
}

TEST(slugs_are_githubs) {
  char s[256];
  const char *h = "4. SHAP: Kernel, Linear, Exact";
  slugify(h, strlen(h), s, sizeof s);
  CHECK(!strcmp(s, "4-shap-kernel-linear-exact"));
  h = "Graph models (images, text, any ONNX graph)";
  slugify(h, strlen(h), s, sizeof s);
  CHECK(!strcmp(s, "graph-models-images-text-any-onnx-graph"));
  headings_t hd;
  headings_of("# T\n## 1. One\n### 1.2 Two\n```\n## 9. not a heading\n```\n## Dup\n## Dup\n", &hd);
  CHECK(hd.n == 5);
  CHECK(has_section(&hd, "1") && has_section(&hd, "1.2") && !has_section(&hd, "9"));
  CHECK(has_slug(&hd, "1-one") && has_slug(&hd, "dup") && has_slug(&hd, "dup-1"));
  headings_free(&hd);
}

/* ---- the repository ------------------------------------------------------------------------ */

static paths_t files;

TEST(no_outside_references) {
  size_t hits = 0;
  for (size_t i = 0; i < files.n; i++) {
    char *text = slurp(files.v[i], NULL);
    if (!text) continue;
    int labels = label_checked(files.v[i]), ln = 1;
    for (char *line = text; *line; ln++) {
      char *end = strchr(line, '\n');
      if (end) *end = '\0';
      const char *why = forbidden_line(line);
      if (!why && labels && bare_label(line)) why = "a \"#N\" label; cite upstream issues as owner/repo#N";
      if (why) {
        fprintf(stderr, "  %s:%d: %s\n      %.160s\n", files.v[i], ln, why, line);
        hits++;
      }
      if (!end) break;
      line = end + 1;
    }
    free(text);
  }
  CHECK_MSG(hits == 0, "%zu forbidden references (listed above)", hits);
}

TEST(markdown_links_resolve) {
  size_t bad = 0, md = 0;
  for (size_t i = 0; i < files.n; i++) {
    if (!ends_with(files.v[i], ".md")) continue;
    md++;
    char *text = slurp(files.v[i], NULL);
    if (!text) continue;
    link_ctx_t ctx = {files.v[i], 1, 0};
    int fenced = 0;
    for (char *line = text; *line; ctx.line++) {
      char *end = strchr(line, '\n');
      size_t len = end ? (size_t)(end - line) : strlen(line);
      if (len >= 3 && !strncmp(line, "```", 3)) fenced = !fenced;
      else if (!fenced) links_of_line(line, len, check_link, &ctx);
      if (!end) break;
      line = end + 1;
    }
    bad += (size_t)ctx.bad;
    free(text);
  }
  CHECK_MSG(md >= 10, "only %zu Markdown files found: run from the repository root", md);
  char why[4200]; /* the resolver itself: a missing file or anchor is caught, a good one passes */
  CHECK(link_problem("docs/API.md", "no-such-page.md", why, sizeof why) != NULL);
  CHECK(link_problem("docs/API.md", "MODEL_FORMAT.md#no-such-heading", why, sizeof why) != NULL);
  CHECK(link_problem("docs/API.md", "#no-such-heading", why, sizeof why) != NULL);
  CHECK(link_problem("docs/API.md", "MODEL_FORMAT.md#tree-ensembles", why, sizeof why) == NULL);
  CHECK(link_problem("README.md", "docs/", why, sizeof why) == NULL);
  CHECK_MSG(bad == 0, "%zu dangling links (listed above)", bad);
}

TEST(section_citations_resolve) {
  size_t bad = 0;
  CHECK_MSG(alg_h.n > 20 && srv_h.n > 10, "docs/algorithms.md or docs/serving.md is missing its sections");
  char what[64];
  CHECK(bad_citations("see docs/algorithms.md \xc2\xa7" "99.1 here", what, sizeof what));
  CHECK(bad_citations("[serving.md](serving.md) \xc2\xa7" "42", what, sizeof what));
  CHECK(!bad_citations("docs/algorithms.md \xc2\xa7" "1.5 and docs/serving.md \xc2\xa7" "4.3-4.4", what, sizeof what));
  for (size_t i = 0; i < files.n; i++) {
    char *text = slurp(files.v[i], NULL);
    if (!text) continue;
    int ln = 1;
    for (char *line = text; *line; ln++) {
      char *end = strchr(line, '\n');
      if (end) *end = '\0';
      if (bad_citations(line, what, sizeof what)) {
        fprintf(stderr, "  %s:%d: cites %s, which does not exist\n", files.v[i], ln, what);
        bad++;
      }
      if (!end) break;
      line = end + 1;
    }
    free(text);
  }
  CHECK_MSG(bad == 0, "%zu citations of missing sections (listed above)", bad);
}

TEST(the_maintainer_documents_exist) {
  static const char *const need[] = {"README.md", "CONTRIBUTING.md", "docs/API.md", "docs/MODEL_FORMAT.md",
                                     "docs/algorithms.md", "docs/serving.md"};
  struct stat st;
  for (size_t i = 0; i < sizeof need / sizeof *need; i++) CHECK_MSG(stat(need[i], &st) == 0, "%s is missing", need[i]);
  char gone[64];
  snprintf(gone, sizeof gone, "docs/CONTRIBUTING-%s.md", "AGENTS");
  CHECK_MSG(stat(gone, &st) != 0, "%s should not exist", gone);
}

int main(void) {
  for (size_t i = 0; i < N_FORBIDDEN; i++)
    if (regcomp(&forbidden_re[i], forbidden[i].re, REG_EXTENDED | REG_NOSUB) != 0) {
      fprintf(stderr, "bad pattern %s\n", forbidden[i].re);
      return 2;
    }
  RUN(matchers_flag_what_they_should);
  RUN(matchers_pass_legitimate_text);
  RUN(slugs_are_githubs);

  walk("", &files);
  char *a = slurp("docs/algorithms.md", NULL), *s = slurp("docs/serving.md", NULL);
  headings_of(a ? a : "", &alg_h);
  headings_of(s ? s : "", &srv_h);
  free(a);
  free(s);
  RUN(no_outside_references);
  RUN(markdown_links_resolve);
  RUN(section_citations_resolve);
  RUN(the_maintainer_documents_exist);

  headings_free(&alg_h);
  headings_free(&srv_h);
  for (size_t i = 0; i < files.n; i++) free(files.v[i]);
  free(files.v);
  for (size_t i = 0; i < N_FORBIDDEN; i++) regfree(&forbidden_re[i]);
  return TEST_REPORT();
}

/* test_layers.c — the architecture of api/, checked from the source text.
 *
 * - No include cycle between the modules of api/ (a module is NAME.c with NAME.h): the
 *   router (api.c) depends on the route table, the table on the handlers, the handlers
 *   on context, auth, json and response, and nothing points back up. The checker itself
 *   is tested on a made-up graph with a cycle, so it cannot pass by finding nothing.
 * - No coordination between threads inside api/: a job's parts never wait for each
 *   other (api/job.h's prepare stage does what locks used to). The few files that guard
 *   a shared table (the registry, the metrics series, the model folder, jansson's
 *   one-time set-up) are listed here with the reason; any other thread primitive fails.
 * Run from the repository root.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/files.h"
#include "core/alloc.h"
#include "tests/test.h"

#define MAX_MODULES 128

static char names[MAX_MODULES][64];
static int n_modules;
static unsigned char edge[MAX_MODULES][MAX_MODULES];

static int module_id(const char *name, size_t len) {
  for (int i = 0; i < n_modules; i++)
    if (strlen(names[i]) == len && strncmp(names[i], name, len) == 0) return i;
  if (n_modules == MAX_MODULES || len >= sizeof names[0]) return -1;
  memcpy(names[n_modules], name, len);
  names[n_modules][len] = '\0';
  return n_modules++;
}

static char *read_all(const char *path) {
  char *s = NULL;
  size_t len = 0;
  xd_error_t err;
  return xd_read_file(path, 1u << 20, &s, &len, &err) == XD_OK ? s : NULL;
}

/* Adds the edges of one file: every line `#include "api/X.h"` (X != the file's own). */
static void scan(const char *file) {
  const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  int from = module_id(base, strcspn(base, "."));
  char path[512];
  snprintf(path, sizeof path, "api/%s", base);
  char *s = read_all(path);
  if (!s || from < 0) {
    xd_free(s);
    return;
  }
  for (char *line = s; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    if (strncmp(line, "#include \"api/", 14) != 0) continue;
    const char *t = line + 14;
    int to = module_id(t, strcspn(t, "."));
    if (to >= 0 && to != from) edge[from][to] = 1;
  }
  xd_free(s);
}

/* Depth-first search; returns 1 and writes the cycle ("a -> b -> a") when there is one. */
static int color[MAX_MODULES], stack_[MAX_MODULES], depth;
static int dfs(int u, char *cycle, size_t cap) {
  color[u] = 1;
  stack_[depth++] = u;
  for (int v = 0; v < n_modules; v++) {
    if (!edge[u][v]) continue;
    if (color[v] == 1) {
      size_t l = 0;
      int k = depth - 1;
      while (k > 0 && stack_[k] != v) k--;
      for (; k < depth; k++) l += (size_t)snprintf(cycle + l, l < cap ? cap - l : 0, "%s -> ", names[stack_[k]]);
      snprintf(cycle + (l < cap ? l : cap - 1), l < cap ? cap - l : 1, "%s", names[v]);
      return 1;
    }
    if (color[v] == 0 && dfs(v, cycle, cap)) return 1;
  }
  color[u] = 2;
  depth--;
  return 0;
}

static int find_cycle(char *cycle, size_t cap) {
  memset(color, 0, sizeof color);
  depth = 0;
  for (int u = 0; u < n_modules; u++)
    if (color[u] == 0 && dfs(u, cycle, cap)) return 1;
  return 0;
}

TEST(cycle_finder_finds_a_cycle) {
  n_modules = 0;
  memset(edge, 0, sizeof edge);
  int a = module_id("router", 6), b = module_id("handler", 7), c = module_id("base", 4);
  edge[a][b] = edge[b][c] = 1;
  char cyc[512] = "";
  CHECK(!find_cycle(cyc, sizeof cyc));
  edge[c][a] = 1; /* the base calling back into the router */
  CHECK(find_cycle(cyc, sizeof cyc));
  CHECK_MSG(strstr(cyc, "router") && strstr(cyc, "handler") && strstr(cyc, "base"), "%s", cyc);
}

TEST(no_include_cycle_in_api) {
  n_modules = 0;
  memset(edge, 0, sizeof edge);
  DIR *d = opendir("api");
  CHECK(d != NULL);
  if (!d) return;
  struct dirent *de;
  int files = 0;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l > 2 && (strcmp(de->d_name + l - 2, ".c") == 0 || strcmp(de->d_name + l - 2, ".h") == 0)) {
      scan(de->d_name);
      files++;
    }
  }
  closedir(d);
  CHECK(files > 20);
  char cyc[1024] = "";
  int found = find_cycle(cyc, sizeof cyc);
  CHECK_MSG(!found, "include cycle between api/ modules: %s", cyc);
  /* The router sits on top: no other module includes it. */
  int router = module_id("api", 3);
  for (int u = 0; u < n_modules; u++) CHECK_MSG(!edge[u][router], "api/%s includes api/api.h (the router)", names[u]);
}

/* Files of api/ that may hold a lock, and why: none of them coordinates a job's parts. */
static const struct {
  const char *file, *why;
} allowed[] = {
    {"registry.c", "guards the name -> model table; entries are refcounted with atomics (freed by the last holder)"},
    {"metrics.c", "guards the table of metric series shared by every thread that records"},
    {"store.c", "serializes changes of the model folder (PUT, DELETE, training)"},
    {"alloc.c", "pthread_once: installs jansson's allocator once"},
    {"context.c", "the readiness flag, one atomic int flipped by the main thread"},
};

TEST(no_thread_coordination_in_api) {
  static const char *const prims[] = {"pthread_", "atomic_", "stdatomic.h", "sem_", NULL};
  DIR *d = opendir("api");
  CHECK(d != NULL);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l < 3 || (strcmp(de->d_name + l - 2, ".c") != 0 && strcmp(de->d_name + l - 2, ".h") != 0)) continue;
    char path[512];
    snprintf(path, sizeof path, "api/%s", de->d_name);
    char *s = read_all(path);
    if (!s) continue;
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++) ok |= strcmp(allowed[i].file, de->d_name) == 0;
    /* registry.h declares the refcount; every other header stays free of them */
    ok |= strcmp(de->d_name, "registry.h") == 0;
    for (int p = 0; prims[p] && !ok; p++) CHECK_MSG(!strstr(s, prims[p]), "api/%s uses %s", de->d_name, prims[p]);
    /* waiting on another thread is never allowed in api/, listed files included */
    CHECK_MSG(!strstr(s, "pthread_cond") && !strstr(s, "pthread_barrier"), "api/%s waits on a thread", de->d_name);
    xd_free(s);
  }
  closedir(d);
}

int main(void) {
  RUN(cycle_finder_finds_a_cycle);
  RUN(no_include_cycle_in_api);
  RUN(no_thread_coordination_in_api);
  return TEST_REPORT();
}

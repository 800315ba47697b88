/* replay.c — runs a fuzz target over its committed corpus and crash regressions
 * without libFuzzer. Usage: test_fuzz_<target> [files or dirs...]; with no arguments it
 * reads tests/fuzz/corpus/<target>/ and tests/fuzz/crashes/<target>/. A crash or a
 * sanitizer report ends the program, which the test runner counts as a failure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#ifndef XD_FUZZ_TARGET
#error "compile with -DXD_FUZZ_TARGET=\"name\""
#endif

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (n < 0) {
    fclose(f);
    return -1;
  }
  uint8_t *buf = malloc((size_t)n + 1);
  size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
  fclose(f);
  if (!buf || got != (size_t)n) {
    free(buf);
    return -1;
  }
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  return 0;
}

static size_t replay_path(const char *path, size_t *failed) {
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  if (!S_ISDIR(st.st_mode)) {
    if (replay_file(path) != 0) (*failed)++;
    return 1;
  }
  DIR *d = opendir(path);
  size_t n = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, de->d_name);
    n += replay_path(p, failed);
  }
  if (d) closedir(d);
  return n;
}

int main(int argc, char **argv) {
  size_t n = 0, failed = 0;
  if (argc > 1) {
    for (int i = 1; i < argc; i++) n += replay_path(argv[i], &failed);
  } else {
    n += replay_path("tests/fuzz/corpus/" XD_FUZZ_TARGET, &failed);
    n += replay_path("tests/fuzz/crashes/" XD_FUZZ_TARGET, &failed);
  }
  fprintf(stderr, "%s: replayed %zu inputs\n", XD_FUZZ_TARGET, n);
  /* One test: the corpus replays without a crash (a crash never reaches this line). */
  int ok = n > 0 && failed == 0;
  printf("%d passed, %d failed\n", ok, !ok);
  return ok ? 0 : 1;
}

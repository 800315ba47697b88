/* test_readme.c — the README's examples run as written.
 *
 * Every fenced block of README.md whose info string is "sh runnable" is split into
 * commands: a command is a run of non-comment lines; the comment lines right after it are
 * the output it shows. Each command runs with sh against a fresh server started here (on
 * a copy of models/, with the admin key in EXPLAIND_ADMIN_KEY for the server and the
 * shell alike, $BUILD on the PATH for `explaind`), in a scratch folder that links the
 * repository's models/, data/ and examples/. The one change made to the text: the
 * README's localhost:8080 becomes the test server's address.
 *
 * Each command must exit 0 and answer no {"error": ...}. Where the README shows an
 * output: "# {...}" (or "# [...]") is the exact stdout; "# -> ..." (and the "#   "
 * lines that continue it) describes it, and every quoted string in the description must
 * be in the output as a JSON string. Closing line "N passed, N failed". Run from the
 * repository root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"
#include "tests/test.h"

#define ADMIN "readme-test-admin-key"
#define MAX_CMD 16384

static int port;
static char scratch[] = "/tmp/xd-readme-XXXXXX";
static char repo[1024], bin_dir[2200];

/* s with every "localhost:8080" replaced by the test server's address; malloc'd. */
static char *with_port(const char *s) {
  static const char from[] = "localhost:8080";
  char to[32];
  snprintf(to, sizeof to, "127.0.0.1:%d", port);
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, from)); p += sizeof from - 1) n++;
  char *out = malloc(strlen(s) + n * strlen(to) + 1), *o = out;
  if (!out) return NULL;
  for (const char *p = s;;) {
    const char *q = strstr(p, from);
    if (!q) {
      strcpy(o, p);
      break;
    }
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    o += sprintf(o, "%s", to);
    p = q + sizeof from - 1;
  }
  return out;
}

/* Runs cmd with sh in the scratch folder; stdout into *out (malloc'd). Exit status or -1. */
static int run_cmd(const char *cmd, char **out) {
  char path[256];
  snprintf(path, sizeof path, "%s/cmd.sh", scratch);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "%s\n", cmd);
  fclose(f);
  char line[4096];
  snprintf(line, sizeof line, "cd '%s' && PATH='%s':\"$PATH\" EXPLAIND_ADMIN_KEY=" ADMIN " timeout 300 sh cmd.sh",
           scratch, bin_dir);
  fflush(stdout);
  fflush(stderr);
  FILE *p = popen(line, "r");
  if (!p) return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t k;
  while (buf && (k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += k;
    if (cap - len < 1024) {
      char *g = realloc(buf, cap *= 2);
      if (!g) break;
      buf = g;
    }
  }
  if (buf) buf[len] = '\0';
  int st = pclose(p);
  *out = buf;
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void trim(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r')) s[--n] = '\0';
}

/* One command of the README (its first line number), with what it shows. */
static void check_command(int line_no, const char *cmd, const char *shown) {
  char name[64];
  snprintf(name, sizeof name, "README.md:%d", line_no);
  xd_test_cur_name = name;
  xd_test_cur_failed = 0;
  char *text = with_port(cmd), *out = NULL;
  int rc = text ? run_cmd(text, &out) : -1;
  CHECK_MSG(rc == 0, "exit status %d: %s", rc, cmd);
  CHECK_MSG(out && !strstr(out, "{\"error\":"), "answered an error: %s", out ? out : "");
  if (out && shown[0]) {
    trim(out);
    if (shown[0] == '{' || shown[0] == '[') {
      CHECK_MSG(strcmp(out, shown) == 0, "output differs from the README:\n  got  %s\n  want %s", out, shown);
    } else {
      /* A description: each "quoted" string must be in the output as a JSON string. */
      for (const char *p = strchr(shown, '"'); p; p = strchr(p, '"')) {
        const char *q = strchr(p + 1, '"');
        if (!q) break;
        char want[256];
        size_t n = (size_t)(q - p + 1);
        if (n < sizeof want && !memmem(p, n, "...", 3)) {
          memcpy(want, p, n);
          want[n] = '\0';
          CHECK_MSG(strstr(out, want) != NULL, "the README says the output has %s:\n  got %s", want, out);
        }
        p = q + 1;
      }
    }
  }
  free(out);
  free(text);
  if (xd_test_cur_failed) {
    xd_test_failed++;
    fprintf(stderr, "FAIL %s\n", name);
  } else {
    xd_test_passed++;
    fprintf(stderr, "ok   %s\n", name);
  }
}

/* Walks README.md's runnable blocks; returns the number of commands found. */
static int run_readme(void) {
  FILE *f = fopen("README.md", "r");
  if (!f) return 0;
  static char cmd[MAX_CMD], shown[MAX_CMD];
  char line[4096];
  int in_block = 0, line_no = 0, cmd_line = 0, n = 0, in_shown = 0;
  cmd[0] = shown[0] = '\0';
  while (fgets(line, sizeof line, f)) {
    line_no++;
    if (!in_block) {
      in_block = strncmp(line, "```sh runnable", 14) == 0;
      continue;
    }
    int fence = strncmp(line, "```", 3) == 0, comment = line[0] == '#', blank = line[strspn(line, " \t\n")] == '\0';
    if (in_shown) {
      /* A description continues on "#  " lines; any other line ends it. */
      if (comment && strncmp(line, "#  ", 3) == 0) {
        trim(line);
        strncat(shown, line + 1, sizeof shown - strlen(shown) - 1);
        continue;
      }
      check_command(cmd_line, cmd, shown);
      n++;
      cmd[0] = shown[0] = '\0';
      in_shown = 0;
    }
    if (cmd[0] && (fence || comment || blank)) {
      int exact = comment && (strncmp(line, "# {", 3) == 0 || strncmp(line, "# [", 3) == 0);
      if (exact || (comment && strncmp(line, "# ->", 4) == 0)) {
        trim(line);
        snprintf(shown, sizeof shown, "%s", line + (exact ? 2 : 4));
        if (!exact) {
          in_shown = 1;
          continue;
        }
      }
      check_command(cmd_line, cmd, shown);
      n++;
      cmd[0] = shown[0] = '\0';
      if (exact) continue;
    }
    if (fence) {
      in_block = 0;
      continue;
    }
    if (comment || blank) continue;
    if (!cmd[0]) cmd_line = line_no;
    strncat(cmd, line, sizeof cmd - strlen(cmd) - 1);
  }
  fclose(f);
  return n;
}

int main(void) {
  if (access("README.md", R_OK) != 0 || !getcwd(repo, sizeof repo)) {
    fprintf(stderr, "run from the repository root\n");
    printf("0 passed, 1 failed\n");
    return 1;
  }
  const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
  snprintf(bin_dir, sizeof bin_dir, "%s%s%s", build[0] == '/' ? "" : repo, build[0] == '/' ? "" : "/", build);
  if (!mkdtemp(scratch)) {
    printf("0 passed, 1 failed\n");
    return 1;
  }
  char sh[8192];
  /* The server gets a copy of models/ (the examples upload and train); the commands
   * see the repository's files through links. */
  snprintf(sh, sizeof sh,
           "mkdir '%s/server-models' && cp -R models/. '%s/server-models/' && ln -s '%s/models' '%s/models' && "
           "ln -s '%s/data' '%s/data' && ln -s '%s/examples' '%s/examples'",
           scratch, scratch, repo, scratch, repo, scratch, repo, scratch);
  int ok = system(sh) == 0;
  char model_dir[256];
  snprintf(model_dir, sizeof model_dir, "%s/server-models", scratch);
  const char *args[] = {"--model-dir", model_dir, NULL};
  static const char *const env[] = {"EXPLAIND_ADMIN_KEY=" ADMIN, NULL};
  xd_server_t s;
  if (!ok || xd_server_start(&s, args, env) != 0) {
    fprintf(stderr, "FAIL the server did not start\n");
    xd_test_failed++;
  } else {
    port = s.port;
    int n = run_readme();
    if (n < 10) {
      fprintf(stderr, "FAIL README.md: %d runnable commands found, expected at least 10\n", n);
      xd_test_failed++;
    }
    if (xd_server_stop(&s) != 0) {
      fprintf(stderr, "FAIL the server did not stop cleanly\n");
      xd_test_failed++;
    }
  }
  snprintf(sh, sizeof sh, "rm -rf '%s'", scratch);
  if (system(sh) != 0) fprintf(stderr, "could not remove %s\n", scratch);
  return TEST_REPORT();
}

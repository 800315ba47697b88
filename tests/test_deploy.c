/* test_deploy.c — deploy/ validated offline with the real tools.
 *
 * - Kubernetes manifests (deploy/k8s): tests/deploy/validate.mjs = kubernetes-models'
 *   schema validation plus a strict unknown-field check; the kustomize rendering too
 *   (`kubectl kustomize`, offline). A deliberately broken Deployment must fail, naming
 *   its misspelt fields, its wrong type and its missing required field.
 * - Conventions (tests/deploy/policy.mjs): probes, threads, security, termination
 *   timing, cross-references, nginx.conf vs explaind's settings, and every EXPLAIND_*
 *   variable checked against `explaind --help`. A broken set must fail.
 * - deploy/compose.yaml: `docker-compose config` (Debian's 1.29, no daemon needed); a
 *   broken compose file must fail.
 *
 * Tools come from `make deploy-deps` (node modules in tests/deploy, Debian's
 * docker-compose and kubernetes-client). A missing tool is a skip, printed with the way to get it, except
 * under CI=true, where a tool that deploy-deps installs must be there (a broken install
 * step must not pass as a skip). kubectl is Debian's kubernetes-client (deploy-deps).
 * Closing line: "N passed, N failed, N skipped". Run from the repository root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test.h"

static int n_skipped;

/* Counts a test as skipped with the reason; under CI, a tool that `make deploy-deps`
 * installs (installed = 1) being missing is a failure instead. */
static void skip(const char *name, const char *why, int installed) {
  const char *ci = getenv("CI");
  if (installed && ci && *ci && strcmp(ci, "false") != 0 && strcmp(ci, "0") != 0) {
    xd_test_failed++;
    fprintf(stderr, "FAIL %s: %s (a skip is a failure under CI)\n", name, why);
    return;
  }
  n_skipped++;
  fprintf(stderr, "skip %s: %s\n", name, why);
}

/* Runs cmd through sh with stderr joined to stdout; returns the exit status (-1 when
 * it could not run or died by a signal) and the output in out (malloc'd, owned). */
static int run(const char *cmd, char **out) {
  *out = NULL;
  char full[2048];
  if ((size_t)snprintf(full, sizeof full, "{ %s ; } 2>&1", cmd) >= sizeof full) return -1;
  FILE *p = popen(full, "r");
  if (!p) return -1;
  size_t len = 0, cap = 0;
  char *buf = NULL, chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      char *b = realloc(buf, cap);
      if (!b) break;
      buf = b;
    }
    memcpy(buf + len, chunk, n);
    len += n;
  }
  if (buf) buf[len] = '\0';
  *out = buf ? buf : strdup("");
  int st = pclose(p);
  return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* 1 when sh finds the command. */
static int have(const char *tool) {
  char cmd[256], *out;
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
  int rc = run(cmd, &out);
  free(out);
  return rc == 0;
}

/* Checks that out contains each of the NULL-terminated needles; prints out once if not. */
static void expect_all(const char *out, const char *const *needles) {
  int missing = 0;
  for (int i = 0; needles[i]; i++) {
    int found = strstr(out, needles[i]) != NULL;
    CHECK_MSG(found, "output lacks \"%s\"", needles[i]);
    missing |= !found;
  }
  if (missing) fprintf(stderr, "  --- output ---\n%s", out);
}

static int node_ready = -1; /* node and tests/deploy/node_modules present */

/* 1 when the node tests can run; else records a skip (once per test) and returns 0. */
static int need_node(const char *name) {
  if (node_ready < 0)
    node_ready = have("node") && access("tests/deploy/node_modules/kubernetes-models/package.json", R_OK) == 0 &&
                 access("tests/deploy/node_modules/js-yaml/package.json", R_OK) == 0;
  if (!node_ready) skip(name, "needs node and tests/deploy/node_modules (make deploy-deps)", 1);
  return node_ready;
}

/* ---- Kubernetes manifests --------------------------------------------------------- */

TEST(k8s_manifests_valid_and_strict) {
  char *out;
  int rc = run("node tests/deploy/validate.mjs deploy/k8s/*.yaml", &out);
  CHECK_MSG(rc == 0, "validate.mjs exit status %d", rc);
  static const char *const want[] = {
      "ok   deploy/k8s/deployment.yaml Deployment/explaind",
      "ok   deploy/k8s/service.yaml Service/explaind",
      "ok   deploy/k8s/hpa.yaml HorizontalPodAutoscaler/explaind",
      "ok   deploy/k8s/pdb.yaml PodDisruptionBudget/explaind",
      "ok   deploy/k8s/configmap.yaml ConfigMap/explaind-config",
      "ok   deploy/k8s/pvc.yaml PersistentVolumeClaim/explaind-models",
      "ok   deploy/k8s/kustomization.yaml Kustomization",
      " 0 failed",
      NULL};
  expect_all(out, want);
  free(out);
}

/* The companion check earns its keep: kubernetes-models alone passes misspelt fields. */
TEST(broken_manifest_fails) {
  char *out;
  int rc = run("node tests/deploy/validate.mjs tests/deploy/broken/deployment.yaml", &out);
  CHECK_MSG(rc == 1, "validate.mjs exit status %d on a broken manifest, want 1", rc);
  static const char *const want[] = {
      "FAIL tests/deploy/broken/deployment.yaml Deployment/broken",
      "unknown field \"spec.replicaz\" (did you mean \"replicas\"?)",
      "unknown field \"metadata.labelz\" (did you mean \"labels\"?)",
      "unknown field \"spec.template.spec.containers[0].readinessProbe.httpGet.pathh\"",
      "unknown field \"spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem\"",
      "terminationGracePeriodSeconds must be integer",
      "containers/0 must have required property name",
      NULL};
  expect_all(out, want);
  free(out);
}

TEST(kustomize_render_valid) {
  char *out;
  int rc = run("kubectl kustomize deploy/k8s | node tests/deploy/validate.mjs -", &out);
  CHECK_MSG(rc == 0, "kustomize | validate.mjs exit status %d", rc);
  static const char *const want[] = {"ok   - Deployment/explaind", "ok   - HorizontalPodAutoscaler/explaind",
                                     "6 document(s), 0 failed", NULL};
  expect_all(out, want);
  free(out);
}

/* The sharded batch job (deploy/k8s/batch): valid and strict, its kustomize rendering
 * too, and its conventions (tests/deploy/batch.mjs); a set whose completions disagree
 * with --shard env/N must fail. */
TEST(k8s_batch_job_valid_and_consistent) {
  char *out;
  int rc = run("node tests/deploy/validate.mjs deploy/k8s/batch/*.yaml && kubectl kustomize deploy/k8s/batch | "
               "node tests/deploy/validate.mjs - && node tests/deploy/batch.mjs deploy/k8s/batch deploy/k8s", &out);
  CHECK_MSG(rc == 0, "batch manifests: exit status %d", rc);
  static const char *const want[] = {"ok   deploy/k8s/batch/shards-job.yaml Job/explaind-shards",
                                     "ok   deploy/k8s/batch/merge-job.yaml Job/explaind-merge",
                                     "ok   - Job/explaind-shards",
                                     "ok   shards: one pod per shard, index from JOB_COMPLETION_INDEX",
                                     "ok   merge: every shard file, in order, into one output", "0 failed", NULL};
  expect_all(out, want);
  free(out);
  rc = run("d=$(mktemp -d) && cp deploy/k8s/batch/*.yaml \"$d\" && sed -i 's/completions: 4/completions: 3/' \"$d/shards-job.yaml\" && "
           "node tests/deploy/batch.mjs \"$d\" deploy/k8s; s=$?; rm -rf \"$d\"; exit $s", &out);
  CHECK_MSG(rc == 1, "a broken batch set: exit status %d, want 1", rc);
  static const char *const broken[] = {"FAIL shards: one pod per shard", "completions 3 != N 4", NULL};
  expect_all(out, broken);
  free(out);
}

/* ---- conventions ------------------------------------------------------------------ */

/* Writes `$BUILD/explaind --help` to path; 0 on success. */
static int write_help(const char *path) {
  const char *b = getenv("BUILD");
  char cmd[1024], *out;
  snprintf(cmd, sizeof cmd, "%s/explaind --help > %s", b && *b ? b : "build", path);
  int rc = run(cmd, &out);
  free(out);
  return rc;
}

TEST(deploy_conventions) {
  char help[] = "/tmp/xd-deploy-help.XXXXXX";
  int fd = mkstemp(help);
  CHECK(fd >= 0);
  if (fd < 0) return;
  close(fd);
  CHECK_MSG(write_help(help) == 0, "explaind --help failed");
  char cmd[1024], *out;
  snprintf(cmd, sizeof cmd,
           "node tests/deploy/policy.mjs --k8s deploy/k8s --compose deploy/compose.yaml --nginx deploy/nginx.conf "
           "--help-text %s",
           help);
  int rc = run(cmd, &out);
  CHECK_MSG(rc == 0, "policy.mjs exit status %d", rc);
  static const char *const want[] = {"ok   termination:", "ok   security:", "ok   settings:", "ok   compose:",
                                     "ok   nginx: limits", " 0 failed", NULL};
  expect_all(out, want);
  free(out);

  snprintf(cmd, sizeof cmd, "node tests/deploy/policy.mjs --k8s tests/deploy/broken/k8s --help-text %s", help);
  rc = run(cmd, &out);
  CHECK_MSG(rc == 1, "policy.mjs exit status %d on a broken set, want 1", rc);
  static const char *const bad[] = {"livenessProbe must GET /healthz",
                                    "env OPENBLAS_NUM_THREADS must be \"1\"",
                                    "runAsUser must be a numeric non-zero UID",
                                    "readOnlyRootFilesystem must be true",
                                    "drain timeout 10 s < request timeout 30 s",
                                    "models must be ReadOnlyMany",
                                    "Service selector does not match the pods",
                                    "EXPLAIND_WORKRES is not a variable explaind knows",
                                    NULL};
  expect_all(out, bad);
  free(out);
  unlink(help);
}

/* ---- compose ------------------------------------------------------------------------ */

TEST(compose_config) {
  char *out;
  int rc = run("docker-compose -f deploy/compose.yaml config -q", &out);
  CHECK_MSG(rc == 0, "docker-compose config exit status %d:\n%s", rc, out);
  free(out);
  rc = run("docker-compose -f tests/deploy/broken/compose.yaml config -q", &out);
  CHECK_MSG(rc != 0, "docker-compose accepted the broken compose file");
  static const char *const want[] = {"tset", NULL};
  expect_all(out, want);
  free(out);
}

int main(void) {
  if (need_node("k8s_manifests_valid_and_strict")) RUN(k8s_manifests_valid_and_strict);
  if (need_node("broken_manifest_fails")) RUN(broken_manifest_fails);
  if (!have("kubectl")) skip("kustomize_render_valid", "needs kubectl (make deploy-deps: Debian's kubernetes-client)", 1);
  else if (need_node("kustomize_render_valid")) RUN(kustomize_render_valid);
  if (!have("kubectl")) skip("k8s_batch_job_valid_and_consistent", "needs kubectl (make deploy-deps: Debian's kubernetes-client)", 1);
  else if (need_node("k8s_batch_job_valid_and_consistent")) RUN(k8s_batch_job_valid_and_consistent);
  if (need_node("deploy_conventions")) RUN(deploy_conventions);
  if (!have("docker-compose")) skip("compose_config", "needs Debian's docker-compose (make deploy-deps)", 1);
  else RUN(compose_config);
  printf("%d passed, %d failed, %d skipped\n", xd_test_passed, xd_test_failed, n_skipped);
  return xd_test_failed ? 1 : 0;
}

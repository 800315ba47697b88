/* bench_report.c — turns the JSON lines of bench/run.sh (machine, bench_core, wrk) into
 * bench/RESULTS.md: tables of our figures beside their floors and beside the Python
 * reference figures, speedups, and whether each performance goal is met. It reports;
 * it never fails a goal. Usage: bench_report results.jsonl > RESULTS.md */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *lines; /* every parsed line */

/* ---- lookups ------------------------------------------------------------------------------ */

static json_t *by_kind(const char *kind) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind"));
    if (k && strcmp(k, kind) == 0) return l;
  }
  return NULL;
}

static json_t *by_id(const char *id) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *v = json_string_value(json_object_get(l, "id"));
    if (v && strcmp(v, id) == 0) return l;
  }
  return NULL;
}

static json_t *http(const char *target, int conns, int workers) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind")), *t = json_string_value(json_object_get(l, "target"));
    if (k && t && strcmp(k, "http") == 0 && strcmp(t, target) == 0 &&
        json_integer_value(json_object_get(l, "conns")) == conns &&
        json_integer_value(json_object_get(l, "workers")) == workers)
      return l;
  }
  return NULL;
}

/* Best req/s of a target over every connection count (2xx only: errors subtracted). */
static double best_rps(const char *target, int workers, int *at) {
  size_t i;
  json_t *l;
  double best = NAN;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind")), *t = json_string_value(json_object_get(l, "target"));
    if (!k || !t || strcmp(k, "http") || strcmp(t, target) || json_integer_value(json_object_get(l, "workers")) != workers)
      continue;
    double req = json_number_value(json_object_get(l, "requests")), dur = json_number_value(json_object_get(l, "duration_s"));
    double bad = json_number_value(json_object_get(l, "non2xx")) + json_number_value(json_object_get(l, "socket_errors"));
    double r = dur > 0 ? (req - bad) / dur : NAN;
    if (isnan(best) || r > best) {
      best = r;
      if (at) *at = (int)json_integer_value(json_object_get(l, "conns"));
    }
  }
  return best;
}

static double num(json_t *l, const char *key) {
  json_t *v = l ? json_object_get(l, key) : NULL;
  return v && json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(json_t *l, const char *key) {
  const char *s = l ? json_string_value(json_object_get(l, key)) : NULL;
  return s ? s : "?";
}

/* ---- formatting ----------------------------------------------------------------------------- */

/* A number with 3 significant digits (or "—" when missing), in one of 32 rotating buffers
 * (a printf may take a dozen of them). */
static const char *f3(double v) {
  static char buf[32][32];
  static int k;
  char *b = buf[k++ & 31];
  if (isnan(v) || isinf(v)) return "—";
  double a = fabs(v);
  if (a >= 100) snprintf(b, 32, "%.0f", v);
  else if (a >= 10) snprintf(b, 32, "%.1f", v);
  else if (a >= 1) snprintf(b, 32, "%.2f", v);
  else if (a >= 0.01) snprintf(b, 32, "%.3f", v);
  else snprintf(b, 32, "%.2g", v);
  return b;
}

static const char *fx(double v) { /* speedup / ratio "12.3×" */
  static char buf[8][32];
  static int k;
  char *b = buf[k++ & 7];
  if (isnan(v) || isinf(v)) return "—";
  snprintf(b, 32, "%s×", f3(v));
  return b;
}

static const char *met(int ok, int known) { return !known ? "not measured" : ok ? "**met**" : "not met"; }

static double peak_s, peak_d;

/* ---- sections ------------------------------------------------------------------------------- */

static void machine(void) {
  json_t *m = by_kind("machine"), *b = by_kind("blas"), *p = by_kind("params"), *e = by_kind("end");
  printf("## Machine\n\n| | |\n|---|---|\n");
  printf("| CPU | %s (`/proc/cpuinfo` model name) |\n", str(m, "cpu"));
  printf("| cores | %d (`nproc`); threads per core %s; hypervisor %s (a guest's vCPUs may share physical cores) |\n",
         (int)num(m, "cores"), str(m, "threads_per_core"), str(m, "hypervisor"));
  printf("| memory | %s |\n| kernel | %s |\n| ISA extensions seen | %s |\n", str(m, "memory"), str(m, "kernel"),
         str(m, "isa"));
  printf("| OpenBLAS | `%s`, safe for concurrent callers: %s (openblas_get_config, linked as the server links it) |\n",
         str(b, "openblas_config"), num(b, "openblas_threadsafe") == 1 ? "yes" : "NO");
  printf("| OPENBLAS_CORETYPE | %s (recorded, never set by the suite) |\n", str(m, "coretype"));
  printf("| OPENBLAS_NUM_THREADS | %s (the code calls openblas_set_num_threads(1)) |\n", str(m, "openblas_num_threads"));
  printf("| compiler | %s |\n| wrk | %s |\n| source | %s |\n", str(m, "cc"), str(m, "wrk"), str(m, "git"));
  printf("| load average (1, 5, 15 min) | before %s, after %s |\n", str(m, "load_before"), str(e, "load_after"));
  printf("| date, duration | %s, %s s |\n\n", str(m, "date"), f3(num(e, "seconds")));
  printf("A 2-core machine: during the HTTP runs wrk, the server's network threads and its workers share the "
         "same two cores, so HTTP figures include the load generator's own CPU use.\n\n");
  printf("## Commands\n\n```\nmake BUILD=%s bench      # = BUILD=%s sh bench/run.sh\n", str(p, "build"), str(p, "build"));
  printf("BENCH_SCALE=%g %s/bench/bench_core     # in-process, from the repository root\n", num(p, "scale"),
         str(p, "build"));
  printf("%s/bench/bench_core --bodies DIR       # the request bodies, shared with the HTTP runs\n", str(p, "build"));
  printf("%s/explaind --listen 127.0.0.1:PORT --model-dir models --workers 2 --queue-size 256 --log-level warn\n",
         str(p, "build"));
  printf("%s\n", str(by_kind("wrk_cmd"), "cmd"));
  printf("wrk -t1 -c<conns> -d%gs --timeout 10s -s bench/wrk/get.lua http://127.0.0.1:PORT/healthz\n```\n\n",
         num(p, "duration"));
  printf("Connection counts: %s; %g s per wrk run; the LIME scaling run repeats /explain/lime with `--workers 1`. "
         "`--queue-size 256` keeps admission control (503) out of the throughput figures; "
         "it is tested on its own in tests/. The server is stopped with SIGTERM and its exit status checked.\n\n",
         str(p, "conns"), num(p, "duration"));
}

static void peak(void) {
  json_t *s = by_id("peak_sgemm"), *d = by_id("peak_dgemm");
  peak_s = fmax(num(s, "gflops"), num(s, "gflops_cpu"));
  peak_d = fmax(num(d, "gflops"), num(d, "gflops_cpu"));
  printf("## Machine peak\n\nSingle-thread OpenBLAS (openblas_set_num_threads(1), as in the server), C = A·Bᵀ "
         "with square 2048×2048 matrices (cblas_?gemm RowMajor, NoTrans/Trans), 2·2048³ FLOP per call, one "
         "warm-up call then %d timed calls. The peak used below is the larger of the best call's wall-clock "
         "rate and the rate from the mean process CPU time per call (on a busy machine the wall clock also counts "
         "time the thread was not running; on a quiet one the two agree).\n\n", (int)num(s, "runs"));
  printf("| kernel | best GFLOP/s (wall) | median GFLOP/s (wall) | GFLOP/s (CPU time) | peak used |\n|---|---|---|---|---|\n");
  printf("| sgemm (float) | %s | %s | %s | **%s** |\n", f3(num(s, "gflops")), f3(num(s, "gflops_median")),
         f3(num(s, "gflops_cpu")), f3(peak_s));
  printf("| dgemm (double) | %s | %s | %s | **%s** |\n\n", f3(num(d, "gflops")), f3(num(d, "gflops_median")),
         f3(num(d, "gflops_cpu")), f3(peak_d));
}

static void forward(void) {
  printf("## Dense forward pass (breast_cancer, 30 → 64 → 32 → 2 ReLU MLP, float GEMMs)\n\n");
  printf("`xd_model_predict` from raw double rows (background rows, cycled) to probabilities, one thread; "
         "8,064 FLOP per row.\n\n");
  printf("| rows | median ms | p99 ms | CPU ms | µs per row | GFLOP/s (median) | %% of sgemm peak | GFLOP/s (CPU time) |\n"
         "|---|---|---|---|---|---|---|---|\n");
  static const int rows[] = {1, 100, 5000, 105400};
  for (size_t i = 0; i < 4; i++) {
    char id[32];
    snprintf(id, sizeof id, "forward_%d", rows[i]);
    json_t *l = by_id(id);
    double med = num(l, "median_ms"), gf = num(l, "flop") / (med * 1e6);
    printf("| %d | %s | %s | %s | %s | %s | %s%% | %s |\n", rows[i], f3(med), f3(num(l, "p99_ms")), f3(num(l, "cpu_ms")),
           f3(med * 1e3 / rows[i]), f3(gf), f3(100 * gf / peak_s), f3(num(l, "flop") / (num(l, "cpu_ms") * 1e6)));
  }
  printf("\nWhere the 5,000-row pass goes (each part alone, one thread):\n\n| part | median ms | GFLOP/s |\n|---|---|---|\n");
  const char *parts[] = {"part_encode_5000", "part_gemms_5000", "part_layers_5000", "forward_5000"};
  for (size_t i = 0; i < 4; i++) {
    json_t *l = by_id(parts[i]);
    printf("| %s | %s | %s |\n", str(l, "label"), f3(num(l, "median_ms")), f3(num(l, "flop") / (num(l, "median_ms") * 1e6)));
  }
  printf("\n");
}

/* Python reference per benchmark id prefix (ms per explanation), or NAN. */
static double reference(const char *id, const char **what) {
  static const struct { const char *id, *what; double ms; } r[] = {
      {"lime_disc", "lime 0.2 discretized", 27}, {"lime_cont", "lime 0.2 continuous", 8},
      {"ig_1", "Captum IG", 3.2}, {"ig_100", "Captum IG (chunked)", 50}, {"saliency", "Captum Saliency", 0.15},
      {"smoothgrad", "Captum NoiseTunnel", 2.0}, {"shap", "shap KernelExplainer", 212},
      {"perm", "sklearn permutation_importance", 33}, {"lime", "lime 0.2 discretized", 27},
      {"lime_continuous", "lime 0.2 continuous", 8}, {"importance", "sklearn permutation_importance", 33},
  };
  /* the longest entry that is id itself or a prefix of it followed by '_' */
  size_t best = SIZE_MAX, blen = 0;
  for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
    size_t n = strlen(r[i].id);
    if (n > blen && strncmp(id, r[i].id, n) == 0 && (id[n] == '\0' || id[n] == '_')) best = i, blen = n;
  }
  if (best != SIZE_MAX) {
    if (what) *what = r[best].what;
    return r[best].ms;
  }
  if (what) *what = "—";
  return NAN;
}

static void explain_row(const char *id) {
  json_t *l = by_id(id);
  if (!l) return;
  json_t *f = by_id(str(l, "floor"));
  double med = num(l, "median_ms"), fl = num(f, "median_ms");
  int grad = strcmp(str(f, "kind"), "gradient") == 0;
  double at_peak = num(f, "flop") / ((grad ? peak_d : peak_s) * 1e6);
  const char *what;
  double ref = reference(id, &what);
  printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", str(l, "label"), f3(med), f3(num(l, "p99_ms")),
         f3(num(l, "cpu_ms")), f3(num(l, "per_s")), f3(fl), fx(med / fl), f3(med - fl), f3(at_peak),
         isnan(ref) ? "—" : f3(ref), fx(ref / med));
}

static void explanations(void) {
  printf("## In-process explanations beside their floors\n\n");
  printf("Each case is the real request for breast_cancer run as the server runs it minus HTTP (decode, the "
         "parts on 1 or 2 persistent workers pulling from a shared counter, encode, `json_dumps`), except the "
         "`xd_lime_explain` lines, which call the core directly (2 = two explanations at once from two "
         "threads). The floor is the batched model evaluation the method cannot avoid, on the same number of "
         "threads: `xd_model_predict` over the same number of rows (sampling methods), or the double-precision "
         "forward+backward `xd_model_gradient` (gradient methods). \"above floor\" is everything but the model "
         "evaluation. \"floor at peak\" is the floor's FLOPs at the single-core GEMM peak (sgemm, or dgemm for "
         "gradients). \"CPU ms\" is the process CPU time per operation (all threads), which other load on the "
         "machine does not inflate. Python: the reference libraries' figures (in-process, same MLP in PyTorch, one "
         "core).\n\n");
  printf("| case | median ms | p99 ms | CPU ms | per s | floor ms | × floor | above floor ms | floor at peak ms | "
         "Python ms | speedup |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  const char *ids[] = {"predict_1_t1", "predict_100_t1", "lime_disc_core_t1", "lime_disc_core_t2", "lime_disc_job",
                       "lime_cont_core_t1", "lime_cont_core_t2", "lime_cont_job", "ig_1_t1", "ig_100_t1", "ig_100_t2",
                       "saliency_t1", "smoothgrad_t1", "shap_t1", "shap_t2", "perm_t1", "perm_t2", "pdp_t1", "pdp_t2"};
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) explain_row(ids[i]);
  printf("\nThe floors (2 threads: the rows split in halves, or for LIME two forwards at once):\n\n"
         "| floor | median ms | p99 ms | CPU ms | GFLOP/s (median) |\n|---|---|---|---|---|\n");
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *g = json_string_value(json_object_get(l, "group"));
    if (g && strcmp(g, "floor") == 0)
      printf("| %s | %s | %s | %s | %s |\n", str(l, "label"), f3(num(l, "median_ms")), f3(num(l, "p99_ms")),
             f3(num(l, "cpu_ms")), f3(num(l, "flop") / (num(l, "median_ms") * 1e6)));
  }
  printf("\n");
}

/* The graph kernels (bench_core's "kernels" group): one row per line, as measured. */
static void kernels(void) {
  size_t i;
  json_t *l;
  int any = 0;
  json_array_foreach(lines, i, l) {
    const char *g = json_string_value(json_object_get(l, "group"));
    if (!g || strcmp(g, "kernels")) continue;
    if (!any)
      printf("## Graph kernels (core/kern.h, one thread)\n\n"
             "| kernel | rows | median ms | CPU ms | GFLOP/s (CPU) |\n|---|---|---|---|---|\n");
    any = 1;
    printf("| %s | %d | %s | %s | %s |\n", str(l, "label"), (int)num(l, "rows"), f3(num(l, "median_ms")),
           f3(num(l, "cpu_ms")), f3(num(l, "flop") / (num(l, "cpu_ms") * 1e6)));
  }
  if (any) printf("\n");
}

/* The graph engine on the demo image and text models (bench_graph, kind "graph") beside
 * PyTorch on the same architectures and shapes (bench/graph_torch.py, kind "torch_graph"). */
static json_t *graph_line(const char *kind, const char *target, int threads) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind")), *t = json_string_value(json_object_get(l, "target"));
    if (k && t && !strcmp(k, kind) && !strcmp(t, target) && json_integer_value(json_object_get(l, "threads")) == threads)
      return l;
  }
  return NULL;
}

static void graph_models(void) {
  /* a "_f64" row (explaind's gradient in double) stands beside PyTorch's float row */
  static const char *t[][2] = {{"cnn_forward_256", NULL},
                               {"cnn_gradient_256", NULL},
                               {"cnn_gradient_256_f64", "cnn_gradient_256"},
                               {"bert_forward_64", NULL},
                               {"bert_gradient_64", NULL},
                               {"bert_gradient_64_f64", "bert_gradient_64"},
                               {"gru_forward_64", NULL},
                               {"gru_gradient_64", NULL},
                               {"gru_gradient_64_f64", "gru_gradient_64"}};
  int any = 0;
  for (size_t j = 0; j < sizeof t / sizeof *t; j++) {
    const char *tt = t[j][1] ? t[j][1] : t[j][0];
    json_t *e1 = graph_line("graph", t[j][0], 1), *e2 = graph_line("graph", t[j][0], 2);
    json_t *p1 = graph_line("torch_graph", tt, 1), *p2 = graph_line("torch_graph", tt, 2);
    if (t[j][1] && !e1) continue;
    if (!e1 && !p1) continue;
    if (!any)
      printf("## Graph models beside PyTorch\n\n"
             "models/shapes, models/reviews_bert, models/reviews_gru (bench/bench_graph.c) and PyTorch %s on the "
             "same architectures and input shapes (bench/graph_torch.py, float32). explaind computes gradients in "
             "float (forward and backward; the seed from the logits in double), and in double in the rows marked "
             "float64 (\"precision\": \"float64\"); PyTorch in float. A run of explaind is single-threaded; \"2 at once\" is two runs on two "
             "threads (two requests on two workers), ms per run. PyTorch's 2 threads split one run. CPU ms is "
             "process CPU time per run (independent of other load on the machine). Peak memory is the process's "
             "maximum resident set (PyTorch's includes about %s MB for torch itself).\n\n"
             "| measurement | explaind ms | CPU ms | PyTorch 1 thread ms | CPU ms | PyTorch CPU ÷ explaind CPU | PyTorch 2 threads ms | "
             "explaind 2 at once ms | peak MB explaind | peak MB PyTorch |\n|---|---|---|---|---|---|---|---|---|---|\n",
             p1 ? str(p1, "torch") : "", f3(num(p1, "import_rss_mb")));
    any = 1;
    printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", str(e1 ? e1 : p1, "label"), f3(num(e1, "median_ms")),
           f3(num(e1, "cpu_ms")), f3(num(p1, "median_ms")), f3(num(p1, "cpu_ms")),
           fx(num(p1, "cpu_ms") / num(e1, "cpu_ms")), f3(num(p2, "median_ms")), f3(num(e2, "median_ms")),
           f3(num(e1, "peak_rss_mb")), f3(num(p1, "peak_rss_mb")));
  }
  if (any) printf("\n");
}

static void http_tables(void) {
  printf("## HTTP load (wrk, real server, 127.0.0.1)\n\n");
  printf("req/s counts every answer in the run; non-2xx are answers with status ≥ 400 (wrk's status errors); "
         "socket errors are connect/read/write errors and timeouts.\n\n");
  printf("| target | workers | conns | req/s | p50 ms | p99 ms | mean ms | non-2xx | socket errors |\n"
         "|---|---|---|---|---|---|---|---|---|\n");
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind"));
    if (!k || strcmp(k, "http")) continue;
    printf("| %s %s | %d | %d | %s | %s | %s | %s | %d | %d |\n", str(l, "path"), str(l, "target"),
           (int)num(l, "workers"), (int)num(l, "conns"), f3(num(l, "rps")), f3(num(l, "p50_ms")), f3(num(l, "p99_ms")),
           f3(num(l, "mean_ms")), (int)num(l, "non2xx"), (int)num(l, "socket_errors"));
  }
  printf("\nOver HTTP beside the Python references (one connection, 2 workers, p50):\n\n"
         "| target | p50 ms | Python | Python ms | speedup |\n|---|---|---|---|---|\n");
  const char *t[] = {"lime", "lime_continuous", "ig_1", "ig_100", "saliency", "smoothgrad", "shap", "importance", "pdp"};
  for (size_t j = 0; j < sizeof t / sizeof *t; j++) {
    json_t *h = http(t[j], 1, 2);
    if (!h) continue;
    const char *what;
    double ref = reference(t[j], &what), p50 = num(h, "p50_ms");
    printf("| %s | %s | %s | %s | %s |\n", t[j], f3(p50), what, f3(ref), fx(ref / p50));
  }
  printf("\n");
}

/* SLIC and quickshift (bench_segment) beside scikit-image (bench/segment_skimage.py). */
static json_t *segment_line(const char *kind, const char *id) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind")), *v = json_string_value(json_object_get(l, "id"));
    if (k && v && strcmp(k, kind) == 0 && strcmp(v, id) == 0) return l;
  }
  return NULL;
}

static void segmentation(void) {
  static const char *ids[] = {"slic_32", "slic_224", "quickshift_32", "quickshift_224"};
  if (!segment_line("segment", ids[0])) return;
  json_t *r0 = segment_line("segment_ref", ids[0]);
  printf("## Segmentation (SLIC and quickshift)\n\n`%s/bench/bench_segment` (core/segment.h, one thread) beside "
         "`bench/segment_skimage.py` (%s, Debian's /usr/bin/python3), same 8-bit RGB image and lime's settings: "
         "SLIC n_segments 50, compactness 10, sigma 1; quickshift kernel_size 4, max_dist 200, ratio 0.2. "
         "Wall-clock medians and the median process CPU time of one call (a busy machine inflates the first, "
         "not the second).\n\n", str(by_kind("params"), "build"), r0 ? str(r0, "version") : "scikit-image: not run");
  printf("| case | segments (explaind / scikit-image) | explaind ms | explaind CPU ms | scikit-image ms | scikit-image CPU ms | speedup (CPU) |\n"
         "|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    json_t *m = segment_line("segment", ids[i]), *r = segment_line("segment_ref", ids[i]);
    printf("| %s %dx%d | %d / %d | %s | %s | %s | %s | %s |\n", str(m, "method"), (int)num(m, "side"),
           (int)num(m, "side"), (int)num(m, "segments"), r ? (int)num(r, "segments") : -1, f3(num(m, "median_ms")), f3(num(m, "cpu_ms")), f3(num(r, "median_ms")),
           f3(num(r, "cpu_ms")), fx(num(r, "cpu_ms") / num(m, "cpu_ms")));
  }
  printf("\nThe label maps themselves are compared with scikit-image's by tests/test_segment.c on its fixtures.\n\n");
}

/* Image explanations over HTTP (one 32x32 RGB image, servers with --workers 1 and 2)
 * beside the torch/numpy references of tools/image_explain_reference.py --bench, their
 * floors and the goals. */
static void images(void) {
  static const char *ids[] = {"ig_50", "occlusion_4x4_s2", "lime_1000"};
  static const char *what[] = {"integrated gradients, 50 steps", "occlusion, window 4x4, stride 2",
                               "LIME, 1,000 samples, 16 grid segments"};
  static const double goal_x[] = {10, 20, 20};
  if (!segment_line("image_http", ids[0])) return;
  json_t *r0 = segment_line("image_ref", ids[0]), *fl = by_kind("image_floors");
  double flop = num(fl, "flop_per_image");
  /* forward-pass equivalents each case needs at least: IG 52 rows (50 steps, x, the
   * baseline) of forward + input gradient (2: see below); occlusion 225 windows + x;
   * LIME its distinct sample rows */
  double evals[] = {52 * 2.0, 226, num(fl, "lime_1000_distinct")};
  printf("## Image explanations (models/shapes, one 32x32 RGB image)\n\nMedian wall time of 5 HTTP requests "
         "(curl, after a warm-up) to a server with --workers 1 and one with --workers 2, the server's CPU time "
         "per request (from /proc: on a busy machine the wall time also counts waiting for a core), beside the "
         "float64 references of `tools/image_explain_reference.py --bench` (torch %s, %d thread(s); LIME's steps "
         "with numpy and scikit-learn), which compute the same attributions as the tests compare. One instance "
         "is split into up to 4 sub-parts that both workers run (docs/serving.md).\n\n",
         r0 ? str(r0, "torch") : "not run", r0 ? (int)num(r0, "threads") : 0);
  printf("**Floor**: the model's FLOPs per image counted from its graph (Conv, Gemm, MatMul; %s MFLOP) × the "
         "forward passes the case needs ÷ the single-core sgemm peak (%s GFLOP/s, \"Machine peak\"), on 1 core "
         "and on 2. Integrated gradients: 52 rows (50 steps, the instance, the baseline), each a forward and a "
         "backward pass to the input; attributions need only the gradient with respect to each layer's input, "
         "not its weights, a GEMM of the forward's size per Conv/Gemm, hence 2 forwards per row (training's "
         "figure of 3 counts the weight gradient too). Occlusion: 225 windows + the instance. LIME: the distinct "
         "rows among its 1,000 samples (%s).\n\n",
         f3(flop / 1e6), f3(peak_s), f3(num(fl, "lime_1000_distinct")));
  printf("Each explaind cell: median wall ms / server CPU ms per request / critical path ms (the busiest server "
         "thread's CPU time during the request: the wall time on idle cores apart from HTTP). The speedups are the "
         "reference's wall time over the better of the two servers' wall times, and over the 2-worker server's "
         "critical path; the goal is judged on the wall time.\n\n");
  printf("| case | floor ms, 1 core | floor ms, 2 cores | explaind, 1 worker | explaind, 2 workers | reference ms | "
         "speedup (wall) | speedup (critical path) | goal |\n|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
    json_t *m = segment_line("image_http", ids[i]), *m2 = segment_line("image_http_w2", ids[i]);
    json_t *r = segment_line("image_ref", ids[i]);
    double a = num(m, "median_ms"), a2 = num(m2, "median_ms"), b = num(r, "median_ms");
    double best = isnan(a2) || a < a2 ? a : a2, floor1 = flop * evals[i] / (peak_s * 1e6);
    printf("| %s | %s | %s | %s / %s / %s | %s / %s / %s | %s | %s | %s | %s %.0fx |\n", what[i], f3(floor1),
           f3(floor1 / 2), f3(a), f3(num(m, "cpu_ms")), f3(num(m, "critical_ms")), f3(a2), f3(num(m2, "cpu_ms")),
           f3(num(m2, "critical_ms")), f3(b), fx(b / best), fx(b / num(m2, "critical_ms")),
           met(b / best >= goal_x[i], r != NULL), goal_x[i]);
  }
  printf("\n");
}

/* Text explanations over HTTP (one ~20-word text, bench/run.sh section 2b) beside
 * bench/text_torch.py, with the goals and each figure's floor: the FLOPs the method must
 * spend (bench_graph --text-flops, counted from the graph) at the sgemm peak. */
static json_t *text_flops_of(const char *model) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind")), *m = json_string_value(json_object_get(l, "model"));
    if (k && m && !strcmp(k, "text_flops") && !strcmp(m, model)) return l;
  }
  return NULL;
}

static void texts(void) {
  static const char *models[] = {"reviews_bert", "reviews_gru"};
  static const char *methods[] = {"ig", "lime"};
  static const char *what[] = {"layer integrated gradients, 50 steps", "LIME, 5,000 samples"};
  static const double goal_x[] = {10, 20};
  if (!segment_line("text_http", "ig_reviews_bert") && !segment_line("text_ref", "ig_reviews_bert")) return;
  json_t *r0 = segment_line("text_ref", "ig_reviews_bert");
  printf("## Text explanations (models/reviews_bert and models/reviews_gru, one ~20-word text)\n\n"
         "Median wall time of 5 HTTP requests (curl, after a warm-up, server with --workers 2) beside "
         "`bench/text_torch.py` (PyTorch float32, %d thread(s): Captum-style layer integrated gradients in one "
         "batch; lime_text's algorithm with the classifier on padded batches). The floor is the work the method "
         "needs at the single-core sgemm peak (%s GFLOP/s, \"Machine peak\"), from the FLOPs counted on the graph "
         "(`bench_graph --text-flops`: multiply-adds as two, other nodes one per output element): integrated "
         "gradients 52 rows (50 steps, the text, the baseline) × 2 forward passes on the text's tokens (the forward, "
         "and a backward pass to each layer's input, of the forward's size; no weight gradient), as for images; "
         "LIME the forward "
         "passes of its 5,000 perturbed texts, each at its own token count. On 2 cores the floor halves (one "
         "request's work split over both).\n\n",
         r0 ? (int)num(r0, "threads") : 0, f3(peak_s));
  printf("| model | method | tokens | explaind ms (HTTP) | reference ms | speedup | goal | GFLOP | floor ms, 1 core | "
         "floor ms, 2 cores | explaind ÷ floor (1 core) | speedup at the 1-core floor |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < 2; i++)
    for (size_t j = 0; j < 2; j++) {
      char id[64];
      snprintf(id, sizeof id, "%s_%s", methods[j], models[i]);
      json_t *m = segment_line("text_http", id), *r = segment_line("text_ref", id), *f = text_flops_of(models[i]);
      double a = num(m, "median_ms"), b = num(r, "median_ms");
      double flop = j == 0 ? 2 * 52 * num(f, "forward_flop") : num(f, "lime_flop");
      double floor1 = flop / (peak_s * 1e6);
      printf("| %s | %s | %s | %s | %s | %s | %s %.0fx | %s | %s | %s | %s | %s |\n", models[i], what[j],
             j == 0 ? f3(num(f, "tokens")) : f3(num(f, "lime_mean_tokens")), f3(a), f3(b), fx(b / a),
             met(b / a >= goal_x[j], m && r), goal_x[j], f3(flop / 1e9), f3(floor1), f3(floor1 / 2), fx(a / floor1),
             fx(b / floor1));
    }
  printf("\nLIME's tokens column is the mean token count of its perturbed texts. \"speedup at the 1-core "
         "floor\" is the most a single-core answer could reach: a goal above it needs the request's work on "
         "both cores or less work, not faster kernels.\n\n");
}

static void goal(const char *what, const char *measured, int ok, int known) {
  printf("| %s | %s | %s |\n", what, measured, met(ok, known));
}

static void goals(void) {
  char m[512];
  printf("## Goals (reported, not asserted)\n\n| goal | measured | |\n|---|---|---|\n");
  /* serving throughput and scaling */
  int ch = 0, cp = 0;
  double hz = best_rps("healthz", 2, &ch), p1 = best_rps("predict_1", 2, &cp);
  snprintf(m, sizeof m, "best 2xx req/s: /predict %s (c=%d) vs /healthz %s (c=%d) = %s%%", f3(p1), cp, f3(hz), ch,
           f3(100 * p1 / hz));
  goal("/predict 1 row ≥ 70% of /healthz req/s, same run", m, p1 >= 0.7 * hz, !isnan(hz) && !isnan(p1));
  int c1 = 0, c2 = 0;
  double w1 = best_rps("lime", 1, &c1), w2 = best_rps("lime", 2, &c2);
  json_t *a = by_id("lime_disc_core_t1"), *b = by_id("lime_disc_core_t2");
  snprintf(m, sizeof m,
           "HTTP: %s/s (2 workers, c=%d) vs %s/s (1 worker, c=%d) = %s; in-process: %s vs %s/s = %s "
           "(CPU per explanation %s ms on 2 threads vs %s ms on 1: %s on two idle cores)",
           f3(w2), c2, f3(w1), c1, fx(w2 / w1), f3(num(b, "per_s")), f3(num(a, "per_s")),
           fx(num(b, "per_s") / num(a, "per_s")), f3(num(b, "cpu_ms")), f3(num(a, "cpu_ms")),
           fx(2 * num(a, "cpu_ms") / num(b, "cpu_ms")));
  goal("LIME explanations/s, 2 workers ≥ 1.8× 1 worker", m, w2 >= 1.8 * w1, !isnan(w1) && !isnan(w2));
  json_t *fw = by_id("forward_5000");
  double gf = num(fw, "flop") / (num(fw, "median_ms") * 1e6);
  snprintf(m, sizeof m, "%s GFLOP/s (median wall time) = %s%% of %s (sgemm 2048³, 1 thread); by CPU time %s%%", f3(gf),
           f3(100 * gf / peak_s), f3(peak_s), f3(100 * num(fw, "flop") / (num(fw, "cpu_ms") * 1e6) / peak_s));
  goal("forward pass, 5,000 rows ≥ 50% of single-core peak", m, gf >= 0.5 * peak_s, !isnan(gf) && !isnan(peak_s));
  /* LIME */
  json_t *hl = http("lime", 1, 2);
  double lp = num(hl, "p50_ms");
  snprintf(m, sizeof m, "p50 %s ms over HTTP (c=1) = %s faster than 27 ms (stretch 20×: ≤ 1.35 ms)", f3(lp), fx(27 / lp));
  goal("LIME ≥ 10× lime end to end over HTTP (≤ 2.7 ms)", m, lp <= 2.7, !isnan(lp));
  json_t *fl = by_id("floor_lime_t1");
  double ex = num(a, "median_ms"), flm = num(fl, "median_ms");
  snprintf(m, sizeof m, "explanation %s ms − forward %s ms = %s ms beside %s ms of evaluation", f3(ex), f3(flm),
           f3(ex - flm), f3(flm));
  goal("LIME: everything but model evaluation < the evaluation", m, ex - flm < flm, !isnan(ex) && !isnan(flm));
  /* gradients and Kernel SHAP */
  const char *gt[] = {"ig_1", "ig_100", "saliency", "smoothgrad"};
  for (size_t i = 0; i < 4; i++) {
    json_t *h = http(gt[i], 1, 2);
    const char *what;
    double ref = reference(gt[i], &what), p = num(h, "p50_ms");
    snprintf(m, sizeof m, "p50 %s ms over HTTP (c=1) vs %s %s ms = %s", f3(p), what, f3(ref), fx(ref / p));
    char g[128];
    snprintf(g, sizeof g, "%s ≥ 10× Captum end to end over HTTP (stretch 20×)", gt[i]);
    goal(g, m, ref / p >= 10, !isnan(p));
  }
  json_t *s2 = by_id("shap_t2"), *f2 = by_id("floor_shap_t2"), *f1 = by_id("floor_shap_t1");
  double sm = num(s2, "median_ms");
  snprintf(m, sizeof m, "2 workers %s ms; floor %s ms on 2 threads (%s), %s ms on 1 (%s); %s faster than SHAP's 212 ms",
           f3(sm), f3(num(f2, "median_ms")), fx(sm / num(f2, "median_ms")), f3(num(f1, "median_ms")),
           fx(sm / num(f1, "median_ms")), fx(212 / sm));
  goal("Kernel SHAP within 1.5× of its floor using both cores", m, sm <= 1.5 * num(f2, "median_ms"), !isnan(sm));
  /* permutation importance */
  json_t *hi = http("importance", 1, 2), *pt2 = by_id("perm_t2"), *pf2 = by_id("floor_perm_t2");
  double ip = num(hi, "p50_ms");
  snprintf(m, sizeof m, "p50 %s ms over HTTP (c=1) = %s faster than 33 ms (stretch 8×: ≤ 4.1 ms)", f3(ip), fx(33 / ip));
  goal("permutation importance ≥ 4× sklearn end to end over HTTP", m, 33 / ip >= 4, !isnan(ip));
  snprintf(m, sizeof m, "in-process, 2 workers: %s ms vs floor %s ms = %s", f3(num(pt2, "median_ms")),
           f3(num(pf2, "median_ms")), fx(num(pt2, "median_ms") / num(pf2, "median_ms")));
  goal("permutation importance within 1.5× of its floor", m,
       num(pt2, "median_ms") <= 1.5 * num(pf2, "median_ms"), !isnan(num(pt2, "median_ms")));
  printf("\n");
}

/* Batch jobs (bench/jobs.sh): a job's rows/s beside the same rows as synchronous
 * requests, and /predict's p99 without and during a job. */
static void jobs(void) {
  size_t i;
  json_t *l;
  int any = 0;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind"));
    if (!k || strcmp(k, "jobs") != 0) continue;
    if (!any++) {
      printf("## Batch jobs (bench/jobs.sh, --workers 2)\n\n");
      printf("| job | rows | job: rows/s | one synchronous request: rows/s | one row per request, 2 connections: rows/s |\n");
      printf("|---|---|---|---|---|\n");
    }
    printf("| %s | %d | %.0f | %.0f | %.0f |\n", str(l, "what"), (int)num(l, "rows"), num(l, "job_rows_per_s"),
           num(l, "sync_one_request_rows_per_s"), num(l, "sync_per_row_rows_per_s"));
  }
  json_t *p = by_kind("jobs_p99");
  if (p) {
    if (!any++) printf("## Batch jobs (bench/jobs.sh, --workers 2)\n\n");
    printf("\n/predict (one row, wrk -c2): p99 %.3f ms idle, %.3f ms while a LIME job runs (%.0f and %.0f req/s; "
           "%d job rows done meanwhile)\n", num(p, "idle_p99_ms"), num(p, "during_job_p99_ms"), num(p, "idle_rps"),
           num(p, "during_rps"), (int)num(p, "job_rows_done_meanwhile"));
  }
  if (any) printf("\n");
}

static void status(void) {
  printf("## Server stops and errors\n\n");
  size_t i, n = 0;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *k = json_string_value(json_object_get(l, "kind"));
    if (k && strcmp(k, "server_stop") == 0)
      printf("- server with --workers %d: SIGTERM, exit status %d after %d s%s\n", (int)num(l, "workers"),
             (int)num(l, "exit"), (int)num(l, "seconds"), num(l, "exit") == 0 ? "" : " (**not 0**)");
    if (k && strcmp(k, "error") == 0) {
      printf("- error: %s\n", str(l, "what"));
      n++;
    }
  }
  if (!n) printf("- no errors recorded by the suite\n");
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: bench_report results.jsonl > RESULTS.md\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  lines = json_array();
  char *buf = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&buf, &cap, f)) > 0) {
    json_t *l = json_loads(buf, 0, NULL);
    if (json_is_object(l)) json_array_append_new(lines, l);
    else json_decref(l);
  }
  free(buf);
  fclose(f);
  printf("# explaind benchmark results\n\nWritten by `make bench` (bench/run.sh → bench/bench_report.c); "
         "every figure below comes from the run described here. Medians and p99s are over repeated runs "
         "(in-process: as many as fit the time budget; HTTP: every request of the wrk run).\n\n");
  machine();
  peak();
  goals();
  forward();
  explanations();
  kernels();
  graph_models();
  http_tables();
  segmentation();
  jobs();
  images();
  texts();
  status();
  json_decref(lines);
  return 0;
}

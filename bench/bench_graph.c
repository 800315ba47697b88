/* bench_graph.c — the graph engine (core/graph.h) on the image and text demo models, timed
 * as bench/graph_torch.py times PyTorch on the same architectures and shapes.
 *
 * Prints one JSON object per line (bench/bench_report.c puts them beside torch's):
 *   {"kind":"graph", "target":..., "label":..., "threads":T, "rows":R, "runs":N,
 *    "median_ms":..., "cpu_ms":..., "peak_rss_mb":..., "load_rss_mb":...}
 * Targets (inputs are fixed pseudo-random values: the time of dense kernels does not depend
 * on them):
 *   cnn_forward_256    models/shapes, 256 images, probabilities, float
 *   cnn_gradient_256   the same plus d p[target] / d input per image, forward and backward
 *                      in float (as the server computes gradients by default; the seed
 *                      from the logits in double), target = the most probable class
 *   bert_forward_64    models/reviews_bert, 64 sequences of 32 tokens (mask all ones), float
 *   bert_gradient_64   the same plus d p[target] / d token-embedding output (float)
 *   gru_forward_64     models/reviews_gru, 64 sequences of 20 tokens, float
 *   gru_gradient_64    the same plus the embedding gradient (float)
 *   *_gradient_*_f64   the gradient targets in double ("precision": "float64")
 * threads 1: one run at a time; threads 2: two runs at once on two threads (two requests
 * on two workers; a run itself is single-threaded), median over both threads' runs and
 * CPU time per run. Each target runs in its own forked process, so that peak_rss_mb
 * (ru_maxrss) is its own; load_rss_mb is the resident memory once the graph is loaded.
 *
 * Usage (from the repository root): bench_graph [TARGET | --floors]; BENCH_SCALE=0.2 shortens the
 * budgets. Built by `make bench` into $(BUILD)/bench/bench_graph.
 *
 * bench_graph --text-flops TEXT counts instead of timing: for each demo text model, the
 * floating-point operations (xd_graph_flops_per_row, multiply-adds as two) of one forward
 * pass on TEXT's tokens, and of the 5,000 perturbed texts LIME (seed 0, bow, words removed)
 * evaluates on it, each at its own token count — the work floor of the text-explanation
 * benchmark (bench/run.sh section 2b; bench_report's "Text explanations" table):
 *   {"kind":"text_flops","model":...,"tokens":L,"forward_flop":F,"lime_samples":5000,
 *    "lime_flop":..,"lime_mean_tokens":..} */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/graph.h"
#include "core/lime_image.h"
#include "core/mat.h"
#include "core/model.h"
#include "core/text_lime.h"
#include "core/tokenizer.h"

static double scale = 1.0;

typedef struct target {
  const char *id, *label, *onnx;
  int kind; /* 0 image, 1 text with attention mask, 2 text without */
  int grad; /* 0 forward only; else the precision of the forward and backward: */
  int64_t rows, seq;
} target_t;
enum { FWD = 0, GRAD_F32 = 1, GRAD_F64 = 2 };

static const target_t targets[] = {
    {"cnn_forward_256", "shapes CNN forward, batch 256", "models/shapes/model.onnx", 0, 0, 256, 0},
    {"cnn_gradient_256", "shapes CNN forward + input gradient, batch 256", "models/shapes/model.onnx", 0, GRAD_F32,
     256, 0},
    {"cnn_gradient_256_f64", "shapes CNN forward + input gradient, batch 256, float64", "models/shapes/model.onnx", 0,
     GRAD_F64, 256, 0},
    {"bert_forward_64", "reviews_bert forward, 64 texts of 32 tokens", "models/reviews_bert/model.onnx", 1, 0, 64, 32},
    {"bert_gradient_64", "reviews_bert forward + embedding gradient, 64 texts of 32 tokens",
     "models/reviews_bert/model.onnx", 1, GRAD_F32, 64, 32},
    {"bert_gradient_64_f64", "reviews_bert forward + embedding gradient, 64 texts of 32 tokens, float64",
     "models/reviews_bert/model.onnx", 1, GRAD_F64, 64, 32},
    {"gru_forward_64", "reviews_gru forward, 64 texts of 20 tokens", "models/reviews_gru/model.onnx", 2, 0, 64, 20},
    {"gru_gradient_64", "reviews_gru forward + embedding gradient, 64 texts of 20 tokens",
     "models/reviews_gru/model.onnx", 2, GRAD_F32, 64, 20},
    {"gru_gradient_64_f64", "reviews_gru forward + embedding gradient, 64 texts of 20 tokens, float64",
     "models/reviews_gru/model.onnx", 2, GRAD_F64, 64, 20},
};

typedef struct work {
  const target_t *t;
  const xd_graph_t *g;
  xd_tensor_t in[2];
  const char *wrt;
  size_t out_n, grad_n;
} work_t;

static double now_ms(void) { return (double)xd_now_ns() / 1e6; }

static double cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double rss_mb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* The seed of the gradient: 1 at the most probable class of each row. */
static int seed_argmax(void *ctx, size_t row0, size_t n, const double *outv, double *seed) {
  size_t k = *(const size_t *)ctx;
  for (size_t i = 0; i < n; i++) {
    size_t best = 0;
    for (size_t j = 0; j < k; j++) {
      seed[i * k + j] = 0;
      if (outv[i * k + j] > outv[i * k + best]) best = j;
    }
    seed[i * k + best] = 1;
  }
  return XD_OK;
}

static int run_once(const work_t *w, double *out, double *grad) {
  xd_graph_run_t r;
  memset(&r, 0, sizeof r);
  size_t k = w->out_n / (size_t)w->t->rows;
  r.inputs = w->in;
  r.precision = w->t->grad == GRAD_F64 ? XD_DT_F64 : XD_DT_F32;
  r.out = out;
  if (w->t->grad) {
    r.wrt = w->wrt;
    r.grad = grad;
    r.seed_fn = seed_argmax;
    r.seed_ctx = &k;
  }
  xd_error_t err;
  xd_error_clear(&err);
  int rc = xd_graph_run(w->g, &r, &err);
  if (rc != XD_OK) fprintf(stderr, "bench_graph %s: %s: %s\n", w->t->id, err.field, err.text);
  return rc;
}

typedef struct thread_arg {
  const work_t *w;
  double budget_ms;
  size_t n, cap;
  double *lat;
  int rc;
} thread_arg_t;

static void *loop(void *a) {
  thread_arg_t *ta = a;
  double *out = xd_malloc(ta->w->out_n * sizeof(double));
  double *grad = ta->w->grad_n ? xd_malloc(ta->w->grad_n * sizeof(double)) : NULL;
  ta->rc = run_once(ta->w, out, grad); /* warm-up: first touch, caches */
  double t0 = now_ms();
  while (ta->rc == XD_OK && ta->n < ta->cap && (ta->n < 3 || now_ms() - t0 < ta->budget_ms)) {
    double s = now_ms();
    ta->rc = run_once(ta->w, out, grad);
    ta->lat[ta->n++] = now_ms() - s;
  }
  xd_free(out);
  xd_free(grad);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  void *b = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long len = ftell(f);
    if (len > 0 && fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)len)) && fread(b, 1, (size_t)len, f) != (size_t)len) {
      free(b);
      b = NULL;
    }
    *n = (size_t)len;
  }
  fclose(f);
  return b;
}

/* One target at `threads` threads, in this process; prints its JSON line. */
static int bench_one(const target_t *t, int threads) {
  size_t len = 0;
  void *bytes = slurp(t->onnx, &len);
  if (!bytes) {
    fprintf(stderr, "bench_graph: cannot read %s (run from the repository root)\n", t->onnx);
    return 1;
  }
  xd_graph_t *g = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (xd_graph_from_onnx(bytes, len, &g, &err) != XD_OK) {
    fprintf(stderr, "bench_graph: %s: %s: %s\n", t->onnx, err.field, err.text);
    free(bytes);
    return 1;
  }
  free(bytes);
  work_t w = {.t = t, .g = g};
  size_t vocab = 0, numel;
  float *x = NULL;
  int64_t *ids = NULL, *mask = NULL;
  if (t->kind == 0) {
    numel = (size_t)t->rows * 3 * 32 * 32;
    x = xd_malloc(numel * sizeof(float));
    for (size_t i = 0; i < numel; i++) x[i] = (float)((i * 7919) % 1000) / 250.0f - 2.0f;
    w.in[0] = (xd_tensor_t){XD_DT_F32, 4, {t->rows, 3, 32, 32}, x};
    w.wrt = xd_graph_input(g, 0)->name;
    w.grad_n = t->grad ? numel : 0;
  } else {
    w.wrt = xd_graph_embedding(g, NULL, &vocab, NULL);
    numel = (size_t)(t->rows * t->seq);
    ids = xd_malloc(numel * sizeof(int64_t));
    mask = xd_malloc(numel * sizeof(int64_t));
    for (size_t i = 0; i < numel; i++) ids[i] = 5 + (int64_t)((i * 7919) % (vocab - 5)), mask[i] = 1;
    w.in[0] = (xd_tensor_t){XD_DT_I64, 2, {t->rows, t->seq}, ids};
    w.in[1] = (xd_tensor_t){XD_DT_I64, 2, {t->rows, t->seq}, mask};
    xd_tensor_t shape;
    if (t->grad && xd_graph_shape(g, w.in, w.wrt, &shape, &err) != XD_OK) {
      fprintf(stderr, "bench_graph %s: %s\n", t->id, err.text);
      return 1;
    }
    w.grad_n = t->grad ? xd_tensor_numel(&shape) : 0;
  }
  xd_tensor_t oshape;
  if (xd_graph_shape(g, w.in, xd_graph_output(g, 0)->name, &oshape, &err) != XD_OK) {
    fprintf(stderr, "bench_graph %s: %s\n", t->id, err.text);
    return 1;
  }
  w.out_n = xd_tensor_numel(&oshape);
  double load_rss = rss_mb();
  thread_arg_t ta[2];
  pthread_t th[2];
  for (int i = 0; i < threads; i++) {
    ta[i] = (thread_arg_t){&w, 2000.0 * scale, 0, 200, malloc(200 * sizeof(double)), 0};
  }
  double c0 = cpu_ms();
  for (int i = 1; i < threads; i++) pthread_create(&th[i], NULL, loop, &ta[i]);
  loop(&ta[0]);
  for (int i = 1; i < threads; i++) pthread_join(th[i], NULL);
  double cpu = cpu_ms() - c0;
  size_t n = 0;
  double lat[400];
  int rc = XD_OK;
  for (int i = 0; i < threads; i++) {
    memcpy(lat + n, ta[i].lat, ta[i].n * sizeof(double));
    n += ta[i].n;
    if (ta[i].rc != XD_OK) rc = ta[i].rc;
    free(ta[i].lat);
  }
  if (rc != XD_OK || n == 0) return 1;
  qsort(lat, n, sizeof(double), cmp_d);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  /* CPU per run: the warm-up runs are inside the CPU window too */
  printf("{\"kind\":\"graph\",\"target\":\"%s\",\"label\":\"%s\",\"threads\":%d,\"rows\":%lld,\"runs\":%zu,"
         "\"median_ms\":%.4f,\"cpu_ms\":%.4f,\"peak_rss_mb\":%.1f,\"load_rss_mb\":%.1f}\n",
         t->id, t->label, threads, (long long)t->rows, n, lat[n / 2], cpu / (double)(n + (size_t)threads),
         (double)ru.ru_maxrss / 1024.0, load_rss);
  fflush(stdout);
  xd_free(x);
  xd_free(ids);
  xd_free(mask);
  xd_graph_free(g);
  return 0;
}

/* FLOPs of one forward pass of g on one text of L tokens (every graph input (1, L)). */
static double flops_at(const xd_graph_t *g, size_t L) {
  static int64_t ids[4096], mask[4096];
  xd_tensor_t in[3];
  for (size_t k = 0; k < L && k < 4096; k++) ids[k] = 1, mask[k] = 1;
  for (size_t i = 0; i < xd_graph_n_inputs(g) && i < 3; i++)
    in[i] = (xd_tensor_t){XD_DT_I64, 2, {1, (int64_t)L}, i == 0 ? ids : mask};
  double f = NAN;
  xd_error_t err;
  if (xd_graph_flops_per_row(g, in, &f, &err) != XD_OK) return NAN;
  return f;
}

/* One model: the text's forward FLOPs and LIME's 5,000 perturbed texts (xd_text_lime_explain's
 * sampling: row 0 the text itself, then randint(1, d) distinct words removed). */
static int text_flops(const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "models/%s/model.json", name);
  xd_model_t *m = NULL;
  xd_error_t err;
  char sha[65];
  if (xd_bundle_load_file(path, &m, sha, &err) != XD_OK) {
    fprintf(stderr, "bench_graph: %s: %s\n", path, err.text);
    return 1;
  }
  const xd_graph_t *g = xd_model_graph(m);
  const xd_tokenizer_t *tok = xd_model_tokenizer(m);
  size_t len = strlen(text), maxlen = xd_model_max_length(m), n = 5000;
  xd_tok_encoding_t enc;
  xd_text_words_t w;
  if (!g || !tok || xd_tokenizer_encode(tok, text, len, maxlen, &enc, &err) != XD_OK ||
      xd_text_words_split(text, len, 1, &w, &err) != XD_OK) {
    fprintf(stderr, "bench_graph: %s: %s\n", name, err.text);
    xd_model_free(m);
    return 1;
  }
  size_t L = enc.n, d = w.d;
  xd_tok_encoding_deinit(&enc);
  double fl[4097] = {0}, lime = 0, toks = 0;
  /* LIME's own on/off rows (seed 0, repeat 0), so the floor counts the texts it evaluates */
  xd_text_lime_opts_t lo = {.num_samples = n, .seed = 0, .repeats = 1};
  uint8_t *Z = malloc(n * (d ? d : 1));
  char *buf = malloc(len + 1);
  if (!Z || !buf || xd_text_lime_sample(&w, &lo, 0, Z, &err) != XD_OK) {
    fprintf(stderr, "bench_graph: %s: LIME's samples could not be drawn\n", name);
    free(Z);
    free(buf);
    xd_text_words_deinit(&w);
    xd_model_free(m);
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    const uint8_t *z = Z + i * d;
    size_t bl = xd_text_words_render(&w, text, len, z, NULL, buf);
    if (xd_tokenizer_encode(tok, buf, bl, maxlen, &enc, &err) != XD_OK) break;
    size_t l = enc.n ? enc.n : 1; /* a text with no token left is evaluated as one filler token */
    xd_tok_encoding_deinit(&enc);
    if (l > 4096) l = 4096;
    if (fl[l] == 0) fl[l] = flops_at(g, l);
    lime += fl[l];
    toks += (double)l;
  }
  printf("{\"kind\":\"text_flops\",\"model\":\"%s\",\"tokens\":%zu,\"words\":%zu,\"forward_flop\":%.0f,"
         "\"lime_samples\":%zu,\"lime_flop\":%.0f,\"lime_mean_tokens\":%.2f}\n",
         name, L, d, flops_at(g, L), n, lime, toks / (double)n);
  free(Z);
  free(buf);
  xd_text_words_deinit(&w);
  xd_model_free(m);
  return 0;
}

/* --floors: what the image-explanation floors of bench_report need, one JSON line: the
 * shapes CNN's FLOPs per image counted from its graph (Conv, Gemm, MatMul: 2 per
 * multiply-add; xd_graph_flops_per_row), and how many distinct rows LIME's 1,000 samples
 * over 16 segments with seed 0 are (the request of bench/run.sh section 2c): a model
 * need evaluate each distinct row only once. */
static int floors(void) {
  size_t len = 0;
  void *bytes = slurp("models/shapes/model.onnx", &len);
  xd_graph_t *g = NULL;
  xd_error_t err;
  xd_error_clear(&err);
  if (!bytes || xd_graph_from_onnx(bytes, len, &g, &err) != XD_OK) {
    fprintf(stderr, "bench_graph --floors: models/shapes/model.onnx: %s\n", err.text);
    free(bytes);
    return 1;
  }
  free(bytes);
  float x[3 * 32 * 32] = {0};
  xd_tensor_t in = {XD_DT_F32, 4, {1, 3, 32, 32}, x};
  double flops = 0;
  int rc = xd_graph_flops_per_row(g, &in, &flops, &err);
  xd_graph_free(g);
  if (rc != XD_OK) return 1;
  enum { N = 1000, S = 16 };
  static double Z[N * S], dist[N];
  xd_lime_image_sample(N, S, 0, 0, Z, dist);
  size_t distinct = 0;
  for (size_t i = 0; i < N; i++) {
    int seen = 0;
    for (size_t k = 0; k < i && !seen; k++) seen = !memcmp(Z + i * S, Z + k * S, S * sizeof *Z);
    distinct += !seen;
  }
  printf("{\"kind\":\"image_floors\",\"model\":\"shapes\",\"flop_per_image\":%.0f,\"lime_1000_distinct\":%zu}\n",
         flops, distinct);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "--text-flops") == 0)
    return text_flops("reviews_bert", argv[2]) | text_flops("reviews_gru", argv[2]);
  if (argc > 1 && strcmp(argv[1], "--floors") == 0) return floors();
  const char *sc = getenv("BENCH_SCALE");
  if (sc && atof(sc) > 0) scale = atof(sc);
  xd_blas_init();
  int failed = 0;
  for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
    if (argc > 1 && strcmp(argv[1], targets[i].id) != 0) continue;
    for (int threads = 1; threads <= 2; threads++) {
      fflush(stdout);
      pid_t pid = fork();
      if (pid == 0) _exit(bench_one(&targets[i], threads));
      int st = 0;
      if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("{\"kind\":\"error\",\"what\":\"bench_graph %s threads %d failed\"}\n", targets[i].id, threads);
        failed = 1;
      }
    }
  }
  return failed;
}

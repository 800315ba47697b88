/* cli_bundle.c — `explaind bundle pack DIR -o bundle.json`: a folder bundle made
 * self-contained (docs/models.md, "Packing a folder bundle").
 *
 * A folder bundle (DIR/model.json beside the files it names) loads from --model-dir but
 * cannot be uploaded: an upload cannot name files. Packing inlines them as the bundle
 * format allows (docs/MODEL_FORMAT.md): a CSV background becomes "background": {"rows",
 * "targets"} (categorical values and class names by name, every double printed with 17
 * significant digits, so it reads back exactly), and an "onnx" file becomes "onnx":
 * {"base64": ...}, the form PUT /models/{name} accepts. Every other key, "x-..." keys
 * included, is kept as written. The result is checked before it is written: decoded
 * again with no folder to read from, it must predict bit-identically to the folder
 * bundle on every background row. The output is written atomically (temporary file,
 * rename), or to stdout with "-o -".
 */
#include "server/cli_bundle.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/bundle.h"
#include "api/files.h"
#include "api/bundle_write.h"
#include "core/alloc.h"
#include "core/dataset.h"
#include "core/model.h"
#include "core/status.h"

static const char usage[] =
    "usage: explaind bundle pack DIR [-o FILE]\n"
    "  Writes DIR/model.json (or the bundle file DIR) as one self-contained JSON bundle:\n"
    "  the background CSV and the ONNX graph it names are inlined. FILE defaults to stdout (-).\n";

/* Standard base64 (RFC 4648, with padding) of data[0..n); xd_malloc'd, NUL-terminated. */
static char *base64(const unsigned char *data, size_t n) {
  static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = xd_malloc((n + 2) / 3 * 4 + 1), *p = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)data[i] << 16 | (i + 1 < n ? (unsigned)data[i + 1] << 8 : 0) | (i + 2 < n ? data[i + 2] : 0);
    *p++ = tab[v >> 18 & 63];
    *p++ = tab[v >> 12 & 63];
    *p++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
    *p++ = i + 2 < n ? tab[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

/* 1 when a and b give bit-identical outputs on a's background rows (or have none). */
static int same_predictions(const xd_model_t *a, const xd_model_t *b, xd_error_t *err) {
  const xd_dataset_t *bg = xd_model_background(a);
  size_t n = bg ? bg->n : 0, k = xd_model_n_outputs(a);
  if (n == 0) return 1;
  if (k != xd_model_n_outputs(b) || xd_model_n_features(a) != xd_model_n_features(b)) return 0;
  double *pa = xd_malloc(n * k * sizeof *pa), *pb = xd_malloc(n * k * sizeof *pb);
  int same = pa && pb && xd_model_predict(a, bg->X, n, pa, NULL, err) == XD_OK &&
             xd_model_predict(b, bg->X, n, pb, NULL, err) == XD_OK && memcmp(pa, pb, n * k * sizeof *pa) == 0;
  xd_free(pa);
  xd_free(pb);
  return same;
}

/* Writes text to path atomically (path.tmp, then rename), or to stdout for "-". */
static int write_out(const char *path, const char *text) {
  size_t len = strlen(text);
  if (strcmp(path, "-") == 0) return fwrite(text, 1, len, stdout) == len && fputc('\n', stdout) != EOF ? 0 : -1;
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
  FILE *f = fopen(tmp, "wb");
  if (!f) return -1;
  int bad = fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF;
  bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* Packs the bundle at dir (a folder with model.json, or a bundle file). Returns the exit
 * status: 0, or 1 after printing why. */
static int pack(const char *dir, const char *out) {
  char path[4096], folder[4096];
  struct stat st;
  if (stat(dir, &st) != 0) {
    fprintf(stderr, "explaind bundle pack: %s: no such file or folder\n", dir);
    return 1;
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(folder, sizeof folder, "%s", dir);
    snprintf(path, sizeof path, "%s/model.json", dir);
  } else {
    snprintf(path, sizeof path, "%s", dir);
    snprintf(folder, sizeof folder, "%s", dir);
    char *slash = strrchr(folder, '/');
    if (slash) *slash = '\0';
    else snprintf(folder, sizeof folder, ".");
  }
  xd_error_t err;
  xd_error_clear(&err);
  xd_model_t *m = NULL, *m2 = NULL;
  json_t *root = NULL;
  char *text = NULL, *b64 = NULL, *graph = NULL;
  size_t graph_len = 0;
  int rc = 1;
  /* The folder bundle must load as it is: packing never hides an error. */
  if (xd_bundle_load_file(path, &m, NULL, &err) != XD_OK) {
    fprintf(stderr, "explaind bundle pack: %s: %s%s%s\n", path, err.field[0] ? err.field : "",
            err.field[0] ? ": " : "", err.text);
    goto done;
  }
  json_error_t jerr;
  if (!(root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr))) {
    fprintf(stderr, "explaind bundle pack: %s: %s\n", path, jerr.text);
    goto done;
  }
  json_t *bg = json_object_get(root, "background");
  if (json_is_object(bg) && json_object_get(bg, "csv")) {
    json_t *inl = xd_bundle_background_json(m, SIZE_MAX);
    if (!inl || json_object_set_new(root, "background", inl) != 0) {
      fprintf(stderr, "explaind bundle pack: out of memory inlining the background\n");
      goto done;
    }
  }
  json_t *onnx = json_object_get(root, "onnx");
  if (json_is_string(onnx)) {
    char gpath[8192];
    snprintf(gpath, sizeof gpath, "%s/%s", folder, json_string_value(onnx));
    if (xd_read_file(gpath, XD_BUNDLE_MAX_BYTES, &graph, &graph_len, &err) != XD_OK) {
      fprintf(stderr, "explaind bundle pack: %s: %s\n", gpath, err.text);
      goto done;
    }
    if (!(b64 = base64((const unsigned char *)graph, graph_len)) ||
        json_object_set_new(root, "onnx", json_pack("{s:s}", "base64", b64)) != 0) {
      fprintf(stderr, "explaind bundle pack: out of memory encoding %s\n", gpath);
      goto done;
    }
  }
  if (!(text = json_dumps(root, JSON_PRESERVE_ORDER | JSON_INDENT(1) | JSON_REAL_PRECISION(17)))) {
    fprintf(stderr, "explaind bundle pack: out of memory\n");
    goto done;
  }
  /* Check: the packed text alone (no folder) gives the same model. An inlined graph is
   * decoded as an upload decodes it: the bundle without "onnx", plus the graph bytes. */
  int dec;
  if (graph) {
    json_object_del(root, "onnx");
    char *meta = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    dec = meta ? xd_bundle_decode_onnx(meta, strlen(meta), graph, graph_len, NULL, &m2, &err) : XD_ENOMEM;
    free(meta);
  } else {
    dec = xd_bundle_decode(text, strlen(text), NULL, &m2, &err);
  }
  if (dec != XD_OK) {
    fprintf(stderr, "explaind bundle pack: the packed bundle does not load: %s%s%s\n", err.field[0] ? err.field : "",
            err.field[0] ? ": " : "", err.text);
    goto done;
  }
  if (!same_predictions(m, m2, &err)) {
    fprintf(stderr, "explaind bundle pack: the packed bundle predicts differently from %s\n", path);
    goto done;
  }
  if (write_out(out, text) != 0) {
    fprintf(stderr, "explaind bundle pack: cannot write %s\n", out);
    goto done;
  }
  if (strcmp(out, "-") != 0) {
    const xd_dataset_t *d = xd_model_background(m);
    fprintf(stderr, "packed %s into %s (%zu background rows%s)\n", path, out, d ? d->n : 0,
            graph ? ", ONNX graph inlined" : "");
  }
  rc = 0;
done:
  free(text);
  xd_free(b64);
  xd_free(graph);
  json_decref(root);
  xd_model_free(m);
  xd_model_free(m2);
  return rc;
}

int xd_cli_bundle(int argc, char **argv) {
  /* argv[0] is "bundle" */
  if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (strcmp(argv[1], "pack") != 0) {
    fprintf(stderr, "explaind bundle: unknown command '%s'\n%s", argv[1], usage);
    return 2;
  }
  const char *dir = NULL, *out = "-";
  for (int i = 2; i < argc; i++) {
    if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
      out = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "explaind bundle pack: unknown option '%s'\n%s", argv[i], usage);
      return 2;
    } else if (!dir) {
      dir = argv[i];
    } else {
      fprintf(stderr, "explaind bundle pack: one DIR only\n%s", usage);
      return 2;
    }
  }
  if (!dir) {
    fputs(usage, stderr);
    return 2;
  }
  return pack(dir, out);
}

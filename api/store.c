/* store.c — the model folder and the registry kept in step (store.h).
 *
 * Storage layout in the model folder (docs/models.md):
 *   NAME.json           the bundle, with "x-explaind-version"
 *   NAME.vN.onnx        the ONNX graph of version N, when the model was uploaded as ONNX;
 *                       the bundle names it ("onnx": "NAME.vN.onnx").
 * An upload writes the graph first (atomically, under a name no stored bundle uses yet),
 * then the bundle that names it, then removes the graphs of older versions: a crash at
 * any point leaves the old bundle with its old graph or the new bundle with its new one. */
#include "api/store.h"

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/alloc.h"
#include "api/bundle.h"
#include "api/files.h"
#include "core/alloc.h"
#include "core/sha256.h"

/* Model changes (PUT, DELETE, training) come from the network thread and from workers;
 * this lock makes each check-version-write-serve sequence one step. It guards the folder,
 * not any job: no worker ever waits on it for another worker's part. */
static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;

/* ETag values are the model's sha256 in quotes; If-Match may list several or "*". */
static int etag_matches(const char *header, const char *sha) {
  if (strcmp(header, "*") == 0) return 1;
  char want[80];
  snprintf(want, sizeof want, "\"%s\"", sha);
  return strstr(header, want) != NULL || strcmp(header, sha) == 0;
}

/* 1 when file is NAME.vN.onnx (N decimal digits): the graphs PUT stores for name. The
 * strict form keeps model "a" from touching "a.v2"'s files ("a.v2.v5.onnx"). */
static int is_stored_onnx(const char *file, const char *name) {
  size_t nl = strlen(name);
  if (strncmp(file, name, nl) != 0 || strncmp(file + nl, ".v", 2) != 0) return 0;
  const char *p = file + nl + 2;
  if (!isdigit((unsigned char)*p)) return 0;
  while (isdigit((unsigned char)*p)) p++;
  return strcmp(p, ".onnx") == 0;
}

/* Removes name's stored graphs except keep (NULL: all). */
static void remove_stored_onnx(const char *dir, const char *name, const char *keep) {
  DIR *d = opendir(dir);
  if (!d) return;
  int removed = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (!is_stored_onnx(de->d_name, name) || (keep && strcmp(de->d_name, keep) == 0)) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    removed += unlink(path) == 0;
  }
  closedir(d);
  if (removed) xd_fsync_dir(dir);
}

int xd_store_put(xd_api_t *api, const char *name, json_t *doc, const void *onnx, size_t onnx_len, xd_model_t *m,
                 const char *if_match, const char *if_none, xd_store_stored_t *out, xd_error_t *err) {
  const char *dir = xd_api_config(api)->model_dir;
  char *text = NULL;
  int rc = XD_OK;
  memset(out, 0, sizeof *out);
  if (!dir) {
    xd_model_free(m);
    return xd_error_set(err, XD_EPERM, NULL, "the server has no model folder to persist into");
  }
  pthread_mutex_lock(&store_mu);
  xd_model_entry_t *cur = xd_registry_get(xd_api_registry(api), name);
  if (if_none && strcmp(if_none, "*") == 0 && cur) {
    rc = xd_error_set(err, XD_ECONFLICT, NULL, "a model named '%s' exists (If-None-Match: *)", name);
    goto done;
  }
  if (if_match && (!cur || !etag_matches(if_match, cur->sha256))) {
    rc = xd_error_set(err, XD_ECONFLICT, NULL, "the model has changed (If-Match does not match its ETag)");
    goto done;
  }
  uint64_t version = cur ? cur->version + 1 : 1;
  unsigned long mark = xd_json_oom_mark(); /* a failed set below would store a bundle without it */
  char onnx_file[128] = "";
  if (onnx) {
    /* A name no stored bundle refers to (versions only increase while the bundle exists),
     * written before the bundle that names it. */
    snprintf(onnx_file, sizeof onnx_file, "%s.v%" PRIu64 ".onnx", name, version);
    if ((rc = xd_write_atomic(dir, onnx_file, onnx, onnx_len, err)) != XD_OK) goto done;
    json_object_set_new(doc, "onnx", json_string(onnx_file));
  } else {
    json_object_del(doc, "onnx");
  }
  /* The version travels inside the stored bundle so that it keeps increasing across
   * restarts. */
  json_object_set_new(doc, "x-explaind-version", json_integer((json_int_t)version));
  text = xd_json_oom_mark() == mark ? xd_json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
  if (!text) {
    if (onnx) { /* the new graph is referenced by nothing */
      char op[4096];
      snprintf(op, sizeof op, "%s/%s", dir, onnx_file);
      unlink(op);
    }
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  size_t len = strlen(text);
  xd_sha256_t h; /* = xd_bundle_digest of the stored bundle, without reading the graph back */
  xd_sha256_init(&h);
  xd_sha256_update(&h, text, len);
  if (onnx) xd_sha256_update(&h, onnx, onnx_len);
  xd_sha256_final_hex(&h, out->sha256);
  char file[128], path[4096];
  snprintf(file, sizeof file, "%s.json", name);
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if ((rc = xd_write_atomic(dir, file, text, len, err)) != XD_OK) {
    if (onnx) { /* the new graph is referenced by nothing */
      char op[4096];
      snprintf(op, sizeof op, "%s/%s", dir, onnx_file);
      unlink(op);
    }
    goto done;
  }
  int replaced = 0;
  xd_model_set_max_work_memory(m, xd_api_config(api)->limits.max_work_memory); /* --max-work-memory */
  rc = xd_registry_put(xd_api_registry(api), name, m, out->sha256, path, version, &replaced);
  m = NULL; /* the registry owns it either way */
  if (rc != XD_OK) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  /* The new bundle is durable: older graphs of this name are no longer referenced. */
  remove_stored_onnx(dir, name, onnx ? onnx_file : NULL);
  out->version = version;
  out->replaced = replaced;
done:
  pthread_mutex_unlock(&store_mu);
  xd_model_entry_release(cur);
  xd_model_free(m);
  xd_free(text); /* json_dumps allocates with xd_malloc (api/alloc.h) */
  return rc;
}

int xd_store_delete(xd_api_t *api, const char *name) {
  const char *dir = xd_api_config(api)->model_dir;
  pthread_mutex_lock(&store_mu);
  if (xd_registry_remove(xd_api_registry(api), name) != XD_OK) {
    pthread_mutex_unlock(&store_mu);
    return XD_ENOTFOUND;
  }
  if (dir) {
    /* Bundles first: a crash after this leaves unreferenced graphs, never a bundle
     * without its graph. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s/model.json", dir, name);
    unlink(path);
    xd_fsync_dir(dir);
    remove_stored_onnx(dir, name, NULL);
  }
  pthread_mutex_unlock(&store_mu);
  return XD_OK;
}

/* ---- model directory ------------------------------------------------------------------- */

/* The version a bundle written by PUT carries ("x-explaind-version"), or 0. */
static uint64_t stored_version(const char *data, size_t len) {
  json_t *doc = json_loadb(data, len, 0, NULL);
  json_t *v = json_object_get(doc, "x-explaind-version");
  uint64_t ver = json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
  json_decref(doc);
  return ver;
}

static int load_one(xd_api_t *api, const char *name, const char *path, void (*log)(void *, const char *), void *ctx) {
  xd_model_t *m = NULL;
  char sha[65], msg[1024];
  xd_error_t err;
  xd_error_clear(&err);
  if (!xd_model_name_valid(name)) {
    snprintf(msg, sizeof msg, "skipping %s: '%s' is not a valid model name", path, name);
    if (log) log(ctx, msg);
    return 0;
  }
  char *data = NULL;
  size_t len = 0;
  if (xd_read_file(path, XD_BUNDLE_MAX_BYTES, &data, &len, &err) != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: %s", path, err.text);
    if (log) log(ctx, msg);
    return 0;
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  /* The bundle and the files it names (an ONNX graph, a background CSV): what PUT
   * reports as sha256 for an ONNX upload, and a change to any of them is a new version. */
  xd_bundle_digest(data, len, slash ? dir : ".", sha);
  /* A rescan (SIGHUP) leaves unchanged bundles alone: same bytes, same version. */
  xd_model_entry_t *cur = xd_registry_get(xd_api_registry(api), name);
  int same = cur && strcmp(cur->sha256, sha) == 0;
  xd_model_entry_release(cur);
  if (same) {
    xd_free(data);
    return 1;
  }
  int rc = xd_bundle_decode(data, len, slash ? dir : ".", &m, &err);
  uint64_t version = rc == XD_OK ? stored_version(data, len) : 0;
  xd_free(data);
  if (rc != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: %s%s%s", path, err.field, err.field[0] ? ": " : "", err.text);
    if (log) log(ctx, msg);
    return 0;
  }
  /* A rescan that read a bundle while a PUT of the same name landed may hold the older
   * version: PUT's bundles carry theirs, so never go back to an older one. */
  cur = version ? xd_registry_get(xd_api_registry(api), name) : NULL;
  int stale = cur && cur->version > version;
  xd_model_entry_release(cur);
  if (stale) {
    xd_model_free(m);
    return 1;
  }
  xd_model_set_max_work_memory(m, xd_api_config(api)->limits.max_work_memory); /* --max-work-memory */
  if (xd_registry_put(xd_api_registry(api), name, m, sha, path, version, NULL) != XD_OK) {
    snprintf(msg, sizeof msg, "skipping %s: out of memory", path);
    if (log) log(ctx, msg);
    return 0;
  }
  snprintf(msg, sizeof msg, "loaded model '%s' from %s", name, path);
  if (log) log(ctx, msg);
  return 1;
}

/* Two passes: folders (DIR/NAME/model.json) first, then files (DIR/NAME.json), so that a
 * bundle uploaded with PUT, which is always written as DIR/NAME.json, wins over a
 * folder of the same name whatever order readdir returns. */
int xd_api_load_dir(xd_api_t *api, const char *dir, void (*log)(void *ctx, const char *msg), void *ctx) {
  char msg[1024];
  int loaded = 0;
  for (int pass = 0; pass < 2; pass++) {
    DIR *d = opendir(dir);
    if (!d) {
      snprintf(msg, sizeof msg, "cannot open model directory %s", dir);
      if (log) log(ctx, msg);
      return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      const char *n = de->d_name;
      if (n[0] == '.') continue; /* also skips PUT's temporary files */
      char path[4096], name[256];
      size_t len = strlen(n);
      int is_json = len > 5 && strcmp(n + len - 5, ".json") == 0;
      if (pass == 1 && is_json) {
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), n);
        snprintf(path, sizeof path, "%s/%s", dir, n);
        loaded += load_one(api, name, path, log, ctx);
      } else if (pass == 0 && !is_json) {
        snprintf(path, sizeof path, "%s/%s/model.json", dir, n);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) loaded += load_one(api, n, path, log, ctx);
      }
    }
    closedir(d);
  }
  return loaded;
}

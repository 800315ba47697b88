/* admin.c — API keys, the admin key, and PUT/DELETE /models/{name}.
 *
 * Storage layout in the model folder (docs/models.md):
 *   NAME.json           the bundle, with "x-explaind-version"
 *   NAME.vN.onnx        the ONNX graph of version N, when the model was uploaded as ONNX;
 *                       the bundle names it ("onnx": "NAME.vN.onnx").
 * An upload writes the graph first (atomically, under a name no stored bundle uses yet),
 * then the bundle that names it, then removes the graphs of older versions: a crash at
 * any point leaves the old bundle with its old graph or the new bundle with its new one. */
#include "api/admin.h"
#include "api/alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/bundle.h"
#include "core/alloc.h"
#include "core/sha256.h"

static pthread_mutex_t admin_mu = PTHREAD_MUTEX_INITIALIZER;

int xd_secret_equal(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
  unsigned char diff = (unsigned char)(la != lb);
  /* Walk the longer length over both strings (wrapping the shorter), so neither the
   * position of the first difference nor an early exit leaks through timing. */
  for (size_t i = 0; i < n; i++) {
    unsigned char x = la ? (unsigned char)a[i % la] : 0, y = lb ? (unsigned char)b[i % lb] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

static const char *bearer(const xd_api_request_t *req) {
  const char *h = req->header ? req->header(req->header_ctx, "Authorization") : NULL;
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return NULL;
  h += 7;
  while (*h == ' ') h++;
  return *h ? h : NULL;
}

int xd_auth_check(const xd_api_t *api, const xd_api_request_t *req, int admin, xd_error_t *err) {
  const xd_api_config_t *cfg = xd_api_config(api);
  const char *key = bearer(req);
  int is_admin = key && cfg->admin_key && xd_secret_equal(key, cfg->admin_key);
  int is_reader = 0;
  for (size_t i = 0; key && i < cfg->n_api_keys; i++) is_reader |= xd_secret_equal(key, cfg->api_keys[i]);
  if (admin) {
    if (!cfg->admin_key) return xd_error_set(err, XD_EPERM, NULL, "model management is disabled: start the server with an admin key");
    if (is_admin) return XD_OK;
    if (is_reader) return xd_error_set(err, XD_EPERM, NULL, "this key may not manage models");
    return xd_error_set(err, XD_EUNAUTH, NULL, "an admin key is required (Authorization: Bearer ...)");
  }
  if (cfg->n_api_keys == 0 || is_reader || is_admin) return XD_OK;
  return xd_error_set(err, XD_EUNAUTH, NULL, "an API key is required (Authorization: Bearer ...)");
}

int xd_write_atomic(const char *dir, const char *name, const char *data, size_t len, xd_error_t *err) {
  static atomic_uint counter;
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%d.%u", dir, name, (int)getpid(), atomic_fetch_add(&counter, 1));
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return xd_error_set(err, XD_EIO, NULL, "cannot create %s: %s", tmp, strerror(errno));
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) goto fail;
    off += (size_t)w;
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, dst) != 0) goto fail;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { /* make the rename itself durable */
    fsync(dfd);
    close(dfd);
  }
  return XD_OK;
fail:
  {
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    return xd_error_set(err, XD_EIO, NULL, "cannot write %s: %s", dst, strerror(e));
  }
}

/* ETag values are the model's sha256 in quotes; If-Match may list several or "*". */
static int etag_matches(const char *header, const char *sha) {
  if (strcmp(header, "*") == 0) return 1;
  char want[80];
  snprintf(want, sizeof want, "\"%s\"", sha);
  return strstr(header, want) != NULL || strcmp(header, sha) == 0;
}

static void respond(xd_api_response_t *resp, int code, const char *field, const char *msg) {
  xd_error_t e;
  xd_error_set(&e, code, field, "%s", msg);
  xd_api_error(&e, resp);
}

static void fsync_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { /* make renames and unlinks durable */
    fsync(dfd);
    close(dfd);
  }
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
  if (removed) fsync_dir(dir);
}

int xd_admin_store(xd_api_t *api, const char *name, json_t *doc, const void *onnx, size_t onnx_len, xd_model_t *m,
                   const char *if_match, const char *if_none, xd_admin_stored_t *out, xd_error_t *err) {
  const char *dir = xd_api_config(api)->model_dir;
  char *text = NULL;
  int rc = XD_OK;
  memset(out, 0, sizeof *out);
  if (!dir) {
    xd_model_free(m);
    return xd_error_set(err, XD_EPERM, NULL, "the server has no model folder to persist into");
  }
  pthread_mutex_lock(&admin_mu);
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
  pthread_mutex_unlock(&admin_mu);
  xd_model_entry_release(cur);
  xd_model_free(m);
  xd_free(text); /* json_dumps allocates with xd_malloc (api/alloc.h) */
  return rc;
}

/* ---- PUT -------------------------------------------------------------------------------- */

/* Standard or URL-safe base64, padding optional, whitespace (line breaks) ignored.
 * Returns an xd_malloc'd buffer, or NULL with *bad set to the offset of a bad character
 * (or (size_t)-1 for a bad length or no memory: *nomem then 1). */
static unsigned char *base64_decode(const char *s, size_t n, size_t *out_len, size_t *bad, int *nomem) {
  unsigned char *o = xd_malloc(n / 4 * 3 + 3);
  *nomem = 0;
  *bad = (size_t)-1;
  if (!o) {
    *nomem = 1;
    return NULL;
  }
  uint32_t acc = 0;
  size_t bits = 0, k = 0, pad = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int v;
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      pad++;
      continue;
    }
    if (pad) { /* data after padding */
      *bad = i;
      xd_free(o);
      return NULL;
    }
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else {
      *bad = i;
      xd_free(o);
      return NULL;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[k++] = (unsigned char)(acc >> bits);
    }
  }
  if (bits >= 6 || pad > 2) { /* a lone sixth of a byte: truncated */
    xd_free(o);
    return NULL;
  }
  *out_len = k;
  return o;
}

/* A bundle for PUT: the JSON object, its "x-explaind-version" dropped (a client must not
 * set it). field names the source for errors. */
static json_t *parse_bundle(const char *text, size_t len, const char *field, xd_error_t *err) {
  json_error_t jerr;
  int oom = 0;
  json_t *doc = xd_json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  if (!doc || !json_is_object(doc)) {
    json_decref(doc);
    if (oom)
      xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading the bundle");
    else if (field)
      xd_error_set(err, XD_EINVAL, field, "must be a model bundle: a JSON object without layers and onnx");
    else
      xd_error_set(err, XD_EJSON, NULL, "a model bundle is a JSON object");
    return NULL;
  }
  json_object_del(doc, "x-explaind-version");
  return doc;
}

/* The ONNX upload's metadata header: the bundle JSON itself, or base64 of it. */
static json_t *header_bundle(const char *h, xd_error_t *err) {
  static const char *const field = "X-Explaind-Bundle";
  if (!h) {
    xd_error_set(err, XD_EINVAL, field,
                 "an ONNX body (application/octet-stream) needs its bundle without layers in the X-Explaind-Bundle "
                 "header (JSON or base64 of it)");
    return NULL;
  }
  while (*h == ' ') h++;
  if (*h == '{') return parse_bundle(h, strlen(h), field, err);
  size_t n = 0, bad;
  int nomem;
  unsigned char *raw = base64_decode(h, strlen(h), &n, &bad, &nomem);
  if (!raw) {
    xd_error_set(err, nomem ? XD_ENOMEM : XD_EINVAL, field, "is neither JSON nor base64 of it");
    return NULL;
  }
  json_t *doc = parse_bundle((const char *)raw, n, field, err);
  xd_free(raw);
  return doc;
}

/* JSON form: "onnx": {"base64": "..."} -> the bytes (xd_malloc'd), removed from doc. Returns
 * XD_OK with *bytes NULL when the bundle has no uploaded graph. */
static int take_onnx(json_t *doc, unsigned char **bytes, size_t *len, xd_error_t *err) {
  *bytes = NULL;
  *len = 0;
  json_t *o = json_object_get(doc, "onnx");
  if (!o) return XD_OK;
  if (json_is_string(o))
    return xd_error_set(err, XD_EINVAL, "onnx",
                        "an upload cannot name a file: send the graph as \"onnx\": {\"base64\": \"...\"} or as an "
                        "application/octet-stream body");
  static const char *const keys[] = {"base64", NULL};
  int rc;
  if (!json_is_object(o)) return xd_error_set(err, XD_EINVAL, "onnx", "must be {\"base64\": \"<the .onnx file>\"}");
  if ((rc = xd_json_check_keys(o, keys, "onnx", err)) != XD_OK) return rc;
  json_t *b = json_object_get(o, "base64");
  if (!json_is_string(b) || json_string_length(b) == 0)
    return xd_error_set(err, XD_EINVAL, "onnx.base64", "must be the ONNX file in base64");
  size_t bad;
  int nomem;
  *bytes = base64_decode(json_string_value(b), json_string_length(b), len, &bad, &nomem);
  if (!*bytes) {
    if (nomem) return xd_error_set(err, XD_ENOMEM, "onnx.base64", "out of memory");
    if (bad != (size_t)-1) return xd_error_set(err, XD_EINVAL, "onnx.base64", "not base64: bad character at offset %zu", bad);
    return xd_error_set(err, XD_EINVAL, "onnx.base64", "not base64: truncated");
  }
  json_object_del(doc, "onnx");
  return XD_OK;
}

static int is_type(const char *ct, const char *want) {
  size_t n = strlen(want);
  return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void put_model(xd_api_t *api, const xd_api_request_t *req, const char *name, xd_api_response_t *resp) {
  const char *if_match = req->header ? req->header(req->header_ctx, "If-Match") : NULL;
  const char *if_none = req->header ? req->header(req->header_ctx, "If-None-Match") : NULL;
  const char *ct = req->header ? req->header(req->header_ctx, "Content-Type") : NULL;
  xd_error_t err;
  xd_error_clear(&err);
  json_t *doc = NULL;
  unsigned char *owned = NULL;
  const void *onnx = NULL;
  size_t onnx_len = 0;
  char *meta = NULL;
  xd_model_t *m = NULL;
  int rc;
  if (is_type(ct, "application/octet-stream")) {
    /* The body is the .onnx file; the rest of the bundle rides in a header. */
    if (!(doc = header_bundle(req->header ? req->header(req->header_ctx, "X-Explaind-Bundle") : NULL, &err))) goto fail;
    if (!req->body_len) {
      xd_error_set(&err, XD_EINVAL, "onnx", "the body is empty: send the .onnx file");
      goto fail;
    }
    onnx = req->body;
    onnx_len = req->body_len;
  } else if (!ct || !*ct || is_type(ct, "application/json") || is_type(ct, "application/x-www-form-urlencoded") ||
             is_type(ct, "text/plain")) {
    if (!(doc = parse_bundle(req->body, req->body_len, NULL, &err))) goto fail;
    if (take_onnx(doc, &owned, &onnx_len, &err) != XD_OK) goto fail;
    onnx = owned;
  } else {
    xd_error_set(&err, XD_EMEDIA, NULL, "send a bundle as application/json, or an ONNX file as application/octet-stream");
    goto fail;
  }
  if (!(meta = xd_json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17)))) {
    xd_error_set(&err, XD_ENOMEM, NULL, "out of memory");
    goto fail;
  }
  /* Inline data only (no folder): a stored bundle must stand on its own. */
  rc = onnx ? xd_bundle_decode_onnx(meta, strlen(meta), onnx, onnx_len, NULL, &m, &err)
            : xd_bundle_decode(meta, strlen(meta), NULL, &m, &err);
  if (rc != XD_OK) goto fail;
  xd_admin_stored_t st;
  rc = xd_admin_store(api, name, doc, onnx, onnx_len, m, if_match, if_none, &st, &err);
  m = NULL;
  if (rc != XD_OK) goto fail;
  xd_api_json(resp, st.replaced ? 200 : 201,
              json_pack("{s:s, s:I, s:s}", "name", name, "version", (json_int_t)st.version, "sha256", st.sha256));
  xd_api_add_header(resp, "ETag", "\"%s\"", st.sha256);
  goto out;
fail:
  /* ONNX node and tensor names are arbitrary bytes: the error text must still be JSON. */
  xd_utf8_sanitize(err.text);
  xd_utf8_sanitize(err.field);
  xd_api_error(&err, resp);
out:
  xd_model_free(m);
  xd_free(meta); /* json_dumps allocates with xd_malloc (api/alloc.h) */
  xd_free(owned);
  json_decref(doc);
}

static void delete_model(xd_api_t *api, const char *name, xd_api_response_t *resp) {
  const char *dir = xd_api_config(api)->model_dir;
  pthread_mutex_lock(&admin_mu);
  if (xd_registry_remove(xd_api_registry(api), name) != XD_OK) {
    pthread_mutex_unlock(&admin_mu);
    return respond(resp, XD_ENOTFOUND, "model", "no such model");
  }
  if (dir) {
    /* Bundles first: a crash after this leaves unreferenced graphs, never a bundle
     * without its graph. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s/model.json", dir, name);
    unlink(path);
    fsync_dir(dir);
    remove_stored_onnx(dir, name, NULL);
  }
  pthread_mutex_unlock(&admin_mu);
  resp->status = 204;
  resp->content_type = "application/json";
  resp->body = NULL;
  resp->body_len = 0;
}

void xd_admin_models(xd_api_t *api, const xd_api_request_t *req, const char *name, xd_api_response_t *resp) {
  xd_error_t err;
  if (xd_auth_check(api, req, 1, &err) != XD_OK) return xd_api_error(&err, resp);
  if (!xd_model_name_valid(name)) return respond(resp, XD_EINVAL, "name", "model names match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
  if (strcmp(req->method, "PUT") == 0)
    put_model(api, req, name, resp);
  else
    delete_model(api, name, resp);
}

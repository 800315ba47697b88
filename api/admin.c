/* admin.c — API keys, the admin key, and PUT/DELETE /models/{name}. */
#include "api/admin.h"

#include <errno.h>
#include <fcntl.h>
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

/* ETag values are the bundle's sha256 in quotes; If-Match may list several or "*". */
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

static void put_model(xd_api_t *api, const xd_api_request_t *req, const char *name, xd_api_response_t *resp) {
  const char *dir = xd_api_config(api)->model_dir;
  const char *if_match = req->header ? req->header(req->header_ctx, "If-Match") : NULL;
  const char *if_none = req->header ? req->header(req->header_ctx, "If-None-Match") : NULL;
  xd_error_t err;
  xd_error_clear(&err);
  json_error_t jerr;
  json_t *doc = json_loadb(req->body ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc || !json_is_object(doc)) {
    json_decref(doc);
    return respond(resp, XD_EJSON, NULL, "a model bundle is a JSON object");
  }
  /* The version travels inside the stored bundle so that it keeps increasing across
   * restarts; a client must not set it. */
  json_object_del(doc, "x-explaind-version");
  pthread_mutex_lock(&admin_mu);
  xd_model_entry_t *cur = xd_registry_get(xd_api_registry(api), name);
  char *text = NULL;
  xd_model_t *m = NULL;
  if (if_none && strcmp(if_none, "*") == 0 && cur) {
    respond(resp, XD_ECONFLICT, NULL, "a model of that name exists (If-None-Match: *)");
    goto done;
  }
  if (if_match && (!cur || !etag_matches(if_match, cur->sha256))) {
    respond(resp, XD_ECONFLICT, NULL, "the model has changed (If-Match does not match its ETag)");
    goto done;
  }
  uint64_t version = cur ? cur->version + 1 : 1;
  json_object_set_new(doc, "x-explaind-version", json_integer((json_int_t)version));
  text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
  if (!text) {
    respond(resp, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  size_t len = strlen(text);
  /* Inline data only: a bundle written into the folder must stand on its own. */
  if (xd_bundle_decode(text, len, NULL, &m, &err) != XD_OK) {
    xd_api_error(&err, resp);
    goto done;
  }
  char file[128], sha[65];
  snprintf(file, sizeof file, "%s.json", name);
  xd_sha256_hex(text, len, sha);
  if (!dir) {
    respond(resp, XD_EPERM, NULL, "the server has no model folder to persist into");
    goto done;
  }
  if (xd_write_atomic(dir, file, text, len, &err) != XD_OK) {
    xd_api_error(&err, resp);
    goto done;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int replaced = 0;
  if (xd_registry_put(xd_api_registry(api), name, m, sha, path, version, &replaced) != XD_OK) {
    m = NULL;
    respond(resp, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  m = NULL;
  xd_api_json(resp, replaced ? 200 : 201,
              json_pack("{s:s, s:I, s:s}", "name", name, "version", (json_int_t)version, "sha256", sha));
  xd_api_add_header(resp, "ETag", "\"%s\"", sha);
done:
  pthread_mutex_unlock(&admin_mu);
  xd_model_entry_release(cur);
  xd_model_free(m);
  free(text);
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
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s/model.json", dir, name);
    unlink(path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
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

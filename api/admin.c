/* admin.c — PUT and DELETE /models/{name}: upload or remove a model (the route table
 * gives them the admin scope). The folder and the registry are kept in step by
 * api/store.h; this file reads the upload: a JSON bundle, optionally with its ONNX graph
 * in base64, or an ONNX body with the bundle in the X-Explaind-Bundle header. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/alloc.h"
#include "api/bundle.h"
#include "api/endpoints.h"
#include "api/store.h"
#include "api/utf8.h"
#include "core/alloc.h"

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
  const char *if_match = xd_api_header(req, "If-Match");
  const char *if_none = xd_api_header(req, "If-None-Match");
  const char *ct = xd_api_header(req, "Content-Type");
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
    if (!(doc = header_bundle(xd_api_header(req, "X-Explaind-Bundle"), &err))) goto fail;
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
  xd_store_stored_t st;
  rc = xd_store_put(api, name, doc, onnx, onnx_len, m, if_match, if_none, &st, &err);
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

/* Model names come from the path: checked here, since the route pattern takes any segment. */
static int bad_name(const xd_route_args_t *args, char *name, size_t cap, xd_api_response_t *resp) {
  xd_route_arg_copy(args->name, args->name_len, name, cap);
  if (xd_model_name_valid(name)) return 0;
  xd_api_errorf(resp, XD_EINVAL, "name", "model names match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
  return 1;
}

xd_api_outcome_t xd_admin_put(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                              xd_api_response_t *resp, xd_work_t *work) {
  char name[XD_MODEL_NAME_MAX + 2];
  if (!bad_name(args, name, sizeof name, resp)) put_model(api, req, name, resp);
  return XD_API_RESPOND;
}

xd_api_outcome_t xd_admin_delete(xd_api_t *api, const xd_api_request_t *req, const xd_route_args_t *args,
                                 xd_api_response_t *resp, xd_work_t *work) {
  char name[XD_MODEL_NAME_MAX + 2];
  if (bad_name(args, name, sizeof name, resp)) return XD_API_RESPOND;
  if (xd_store_delete(api, name) != XD_OK)
    xd_api_errorf(resp, XD_ENOTFOUND, "model", "no such model");
  else
    xd_api_empty(resp, 204, "application/json");
  return XD_API_RESPOND;
}

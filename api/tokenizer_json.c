/* tokenizer_json.c — tokenizer.json (jansson) -> xd_tokenizer_spec_t -> xd_tokenizer_new. */
#include "api/tokenizer_json.h"

#include <stdio.h>
#include <string.h>

#include "api/alloc.h"
#include "core/alloc.h"

static int fail(xd_error_t *err, const char *field, const char *what) {
  return xd_error_set(err, XD_EFORMAT, field, "%s", what);
}

/* A non-empty string at v, copied. */
static int str_dup(const json_t *v, const char *field, char **out, xd_error_t *err) {
  if (!json_is_string(v) || json_string_length(v) == 0) return fail(err, field, "must be a non-empty string");
  if (json_string_length(v) > XD_TOK_MAX_TOKEN_BYTES)
    return xd_error_set(err, XD_EFORMAT, field, "is longer than %d bytes", XD_TOK_MAX_TOKEN_BYTES);
  if (memchr(json_string_value(v), 0, json_string_length(v))) return fail(err, field, "must not contain NUL characters");
  if (!(*out = xd_strdup(json_string_value(v)))) return xd_error_set(err, XD_ENOMEM, field, "out of memory");
  return XD_OK;
}

/* An optional boolean (absent or null: *out untouched). */
static int opt_bool(const json_t *obj, const char *key, const char *prefix, int *out, xd_error_t *err) {
  json_t *v = json_object_get(obj, key);
  if (!v || json_is_null(v)) return XD_OK;
  if (!json_is_boolean(v)) {
    char f[XD_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "%s.%s", prefix, key);
    return fail(err, f, "must be true or false");
  }
  *out = json_is_true(v);
  return XD_OK;
}

static int id_of(const json_t *v, const char *field, int64_t *out, xd_error_t *err) {
  if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) >= XD_TOK_MAX_VOCAB)
    return xd_error_set(err, XD_EFORMAT, field, "must be an integer id in 0..%zu", XD_TOK_MAX_VOCAB - 1);
  *out = json_integer_value(v);
  return XD_OK;
}

static const char *type_of(const json_t *obj, const char *field, xd_error_t *err) {
  json_t *t = json_is_object(obj) ? json_object_get(obj, "type") : NULL;
  if (!json_is_string(t)) {
    char f[XD_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "%s.type", field);
    fail(err, json_is_object(obj) ? f : field, "must be an object with a string \"type\"");
    return NULL;
  }
  return json_string_value(t);
}

/* ---- normalizers and pre-tokenizers (Sequence flattened) ------------------------------- */

static int normalizer(const json_t *v, const char *field, int depth, xd_tokenizer_spec_t *s, xd_error_t *err) {
  const char *type = type_of(v, field, err);
  char f[XD_ERROR_FIELD_MAX];
  if (!type) return XD_EFORMAT;
  if (strcmp(type, "Sequence") == 0) {
    json_t *list = json_object_get(v, "normalizers");
    snprintf(f, sizeof f, "%s.normalizers", field);
    if (!json_is_array(list) || depth > 4) return fail(err, f, "must be a list of normalizers");
    for (size_t i = 0; i < json_array_size(list); i++) {
      snprintf(f, sizeof f, "%s.normalizers[%zu]", field, i);
      int rc = normalizer(json_array_get(list, i), f, depth + 1, s, err);
      if (rc != XD_OK) return rc;
    }
    return XD_OK;
  }
  if (s->n_norm == XD_TOK_MAX_STEPS) return xd_error_set(err, XD_EFORMAT, field, "more than %d normalizers", XD_TOK_MAX_STEPS);
  xd_tok_norm_t *n = &s->norm[s->n_norm];
  memset(n, 0, sizeof *n);
  if (strcmp(type, "Lowercase") == 0) n->kind = XD_TOK_NORM_LOWERCASE;
  else if (strcmp(type, "NFD") == 0) n->kind = XD_TOK_NORM_NFD;
  else if (strcmp(type, "StripAccents") == 0) n->kind = XD_TOK_NORM_STRIP_ACCENTS;
  else if (strcmp(type, "BertNormalizer") == 0) {
    n->kind = XD_TOK_NORM_BERT;
    n->clean_text = n->handle_chinese_chars = n->lowercase = 1; /* the library's defaults */
    n->strip_accents = -1;
    int rc = opt_bool(v, "clean_text", field, &n->clean_text, err);
    if (rc == XD_OK) rc = opt_bool(v, "handle_chinese_chars", field, &n->handle_chinese_chars, err);
    if (rc == XD_OK) rc = opt_bool(v, "strip_accents", field, &n->strip_accents, err);
    if (rc == XD_OK) rc = opt_bool(v, "lowercase", field, &n->lowercase, err);
    if (rc != XD_OK) return rc;
  } else {
    snprintf(f, sizeof f, "%s.type", field);
    return xd_error_set(err, XD_EFORMAT, f,
                        "normalizer '%.60s' is not supported (Lowercase, NFD, StripAccents, BertNormalizer, Sequence)", type);
  }
  s->n_norm++;
  return XD_OK;
}

static int pre_tokenizer(const json_t *v, const char *field, int depth, xd_tokenizer_spec_t *s, xd_error_t *err) {
  const char *type = type_of(v, field, err);
  char f[XD_ERROR_FIELD_MAX];
  if (!type) return XD_EFORMAT;
  if (strcmp(type, "Sequence") == 0) {
    json_t *list = json_object_get(v, "pretokenizers");
    snprintf(f, sizeof f, "%s.pretokenizers", field);
    if (!json_is_array(list) || depth > 4) return fail(err, f, "must be a list of pre-tokenizers");
    for (size_t i = 0; i < json_array_size(list); i++) {
      snprintf(f, sizeof f, "%s.pretokenizers[%zu]", field, i);
      int rc = pre_tokenizer(json_array_get(list, i), f, depth + 1, s, err);
      if (rc != XD_OK) return rc;
    }
    return XD_OK;
  }
  if (s->n_pre == XD_TOK_MAX_STEPS) return xd_error_set(err, XD_EFORMAT, field, "more than %d pre-tokenizers", XD_TOK_MAX_STEPS);
  if (strcmp(type, "Whitespace") == 0) s->pre[s->n_pre] = XD_TOK_PRE_WHITESPACE;
  else if (strcmp(type, "WhitespaceSplit") == 0) s->pre[s->n_pre] = XD_TOK_PRE_WHITESPACE_SPLIT;
  else if (strcmp(type, "BertPreTokenizer") == 0) s->pre[s->n_pre] = XD_TOK_PRE_BERT;
  else {
    snprintf(f, sizeof f, "%s.type", field);
    return xd_error_set(err, XD_EFORMAT, f,
                        "pre-tokenizer '%.60s' is not supported (Whitespace, WhitespaceSplit, BertPreTokenizer, Sequence)",
                        type);
  }
  s->n_pre++;
  return XD_OK;
}

/* ---- model -------------------------------------------------------------------------------- */

static int model(const json_t *m, xd_tokenizer_spec_t *s, xd_error_t *err) {
  const char *type = type_of(m, "model", err);
  if (!type) return XD_EFORMAT;
  if (strcmp(type, "WordLevel") == 0) s->model = XD_TOK_MODEL_WORDLEVEL;
  else if (strcmp(type, "WordPiece") == 0) s->model = XD_TOK_MODEL_WORDPIECE;
  else return xd_error_set(err, XD_EFORMAT, "model.type", "model '%.60s' is not supported (WordLevel, WordPiece)", type);
  json_t *vocab = json_object_get(m, "vocab");
  if (!json_is_object(vocab)) return fail(err, "model.vocab", "must be an object {token: id}");
  size_t n = json_object_size(vocab);
  if (n == 0) return fail(err, "model.vocab", "the vocabulary is empty");
  if (n > XD_TOK_MAX_VOCAB) return xd_error_set(err, XD_ETOOBIG, "model.vocab", "more than %zu entries", XD_TOK_MAX_VOCAB);
  if (!(s->vocab = xd_calloc(n, sizeof *s->vocab))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  const char *key;
  json_t *v;
  char f[XD_ERROR_FIELD_MAX];
  json_object_foreach(vocab, key, v) {
    snprintf(f, sizeof f, "model.vocab.%.80s", key);
    int rc = id_of(v, f, &s->vocab[s->n_vocab].id, err);
    if (rc != XD_OK) return rc;
    size_t len = strlen(key);
    if (len == 0 || len > XD_TOK_MAX_TOKEN_BYTES)
      return xd_error_set(err, XD_EFORMAT, f, "a token has 1 to %d bytes", XD_TOK_MAX_TOKEN_BYTES);
    if (!(s->vocab[s->n_vocab].token = xd_strdup(key))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    s->n_vocab++;
  }
  int rc = str_dup(json_object_get(m, "unk_token"), "model.unk_token", &s->unk_token, err);
  if (rc != XD_OK) return rc;
  if (s->model == XD_TOK_MODEL_WORDPIECE) {
    json_t *p = json_object_get(m, "continuing_subword_prefix");
    if (!p || json_is_null(p)) {
      if (!(s->prefix = xd_strdup("##"))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    } else if ((rc = str_dup(p, "model.continuing_subword_prefix", &s->prefix, err)) != XD_OK) {
      return rc;
    }
    json_t *mx = json_object_get(m, "max_input_chars_per_word");
    if (mx && !json_is_null(mx)) {
      if (!json_is_integer(mx) || json_integer_value(mx) < 1 || json_integer_value(mx) > XD_TOK_MAX_WORD_CHARS)
        return xd_error_set(err, XD_EFORMAT, "model.max_input_chars_per_word", "must be an integer in 1..%d",
                            XD_TOK_MAX_WORD_CHARS);
      s->max_input_chars_per_word = (size_t)json_integer_value(mx);
    }
  }
  return XD_OK;
}

/* ---- added tokens, padding, post-processor ---------------------------------------------- */

static int added_tokens(const json_t *a, xd_tokenizer_spec_t *s, xd_error_t *err) {
  if (!a || json_is_null(a)) return XD_OK;
  if (!json_is_array(a)) return fail(err, "added_tokens", "must be a list");
  size_t n = json_array_size(a);
  if (n > XD_TOK_MAX_ADDED) return xd_error_set(err, XD_ETOOBIG, "added_tokens", "more than %d added tokens", XD_TOK_MAX_ADDED);
  if (n && !(s->added = xd_calloc(n, sizeof *s->added))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  char f[XD_ERROR_FIELD_MAX], p[64];
  for (size_t i = 0; i < n; i++) {
    json_t *t = json_array_get(a, i);
    snprintf(p, sizeof p, "added_tokens[%zu]", i);
    if (!json_is_object(t)) return fail(err, p, "must be an object");
    xd_tok_added_t *d = &s->added[s->n_added];
    snprintf(f, sizeof f, "%s.id", p);
    int rc = id_of(json_object_get(t, "id"), f, &d->id, err);
    snprintf(f, sizeof f, "%s.content", p);
    if (rc == XD_OK) rc = str_dup(json_object_get(t, "content"), f, &d->content, err);
    if (rc != XD_OK) return rc;
    s->n_added++;
    rc = opt_bool(t, "special", p, &d->special, err);
    if (rc != XD_OK) return rc;
    /* options that change matching: only the plain form (exact match in the raw text) */
    static const char *const opts[] = {"single_word", "lstrip", "rstrip", "normalized"};
    for (size_t k = 0; k < 4; k++) {
      int on = 0;
      if ((rc = opt_bool(t, opts[k], p, &on, err)) != XD_OK) return rc;
      if (on) {
        snprintf(f, sizeof f, "%s.%s", p, opts[k]);
        return xd_error_set(err, XD_EFORMAT, f, "added token '%.60s': only %s = false is supported", d->content, opts[k]);
      }
    }
  }
  return XD_OK;
}

static int special_entry(const char *name, const json_t *v, xd_tok_special_t *sp, xd_error_t *err) {
  char f[XD_ERROR_FIELD_MAX];
  snprintf(f, sizeof f, "post_processor.special_tokens.%.60s", name);
  if (!(sp->name = xd_strdup(name))) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  json_t *ids = json_object_get(v, "ids"), *toks = json_object_get(v, "tokens");
  if (!json_is_array(ids) || !json_is_array(toks) || json_array_size(ids) != json_array_size(toks) ||
      json_array_size(ids) == 0 || json_array_size(ids) > XD_TOK_MAX_TEMPLATE)
    return fail(err, f, "needs \"ids\" and \"tokens\": lists of the same length, 1 to 16 entries");
  size_t n = json_array_size(ids);
  sp->ids = xd_calloc(n, sizeof *sp->ids);
  sp->tokens = xd_calloc(n, sizeof *sp->tokens);
  if (!sp->ids || !sp->tokens) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  for (size_t k = 0; k < n; k++) {
    int rc = id_of(json_array_get(ids, k), f, &sp->ids[k], err);
    if (rc == XD_OK) rc = str_dup(json_array_get(toks, k), f, &sp->tokens[k], err);
    if (rc != XD_OK) return rc;
    sp->n = k + 1;
  }
  return XD_OK;
}

static int template_processing(const json_t *pp, xd_tokenizer_spec_t *s, xd_error_t *err) {
  json_t *single = json_object_get(pp, "single"), *sts = json_object_get(pp, "special_tokens");
  if (!json_is_array(single) || json_array_size(single) == 0 || json_array_size(single) > XD_TOK_MAX_TEMPLATE)
    return fail(err, "post_processor.single", "must be a list of 1 to 16 pieces");
  if (!json_is_object(sts) || json_object_size(sts) > XD_TOK_MAX_TEMPLATE)
    return fail(err, "post_processor.special_tokens", "must be an object of at most 16 special tokens");
  size_t n = json_array_size(single);
  if (!(s->template_single = xd_calloc(n, sizeof *s->template_single)))
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  char f[XD_ERROR_FIELD_MAX];
  for (size_t i = 0; i < n; i++) {
    json_t *p = json_array_get(single, i), *sp = json_object_get(p, "SpecialToken"), *sq = json_object_get(p, "Sequence");
    snprintf(f, sizeof f, "post_processor.single[%zu]", i);
    json_t *body = sp ? sp : sq;
    if (!json_is_object(p) || json_object_size(p) != 1 || !json_is_object(body))
      return fail(err, f, "must be {\"SpecialToken\": {...}} or {\"Sequence\": {...}}");
    xd_tok_piece_t *d = &s->template_single[i];
    s->n_template = i + 1;
    json_t *ty = json_object_get(body, "type_id");
    if (ty && (!json_is_integer(ty) || json_integer_value(ty) < 0 || json_integer_value(ty) > 255))
      return fail(err, f, "type_id must be an integer in 0..255");
    d->type_id = ty ? (uint32_t)json_integer_value(ty) : 0;
    if (sq) {
      json_t *id = json_object_get(sq, "id");
      if (!json_is_string(id) || strcmp(json_string_value(id), "A") != 0)
        return fail(err, f, "a single-sequence template holds sequence \"A\" only");
      d->is_sequence = 1;
    } else {
      int rc = str_dup(json_object_get(sp, "id"), f, &d->special, err);
      if (rc != XD_OK) return rc;
    }
  }
  if (json_object_size(sts) &&
      !(s->specials = xd_calloc(json_object_size(sts), sizeof *s->specials)))
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  const char *key;
  json_t *v;
  json_object_foreach(sts, key, v) {
    int rc = special_entry(key, v, &s->specials[s->n_specials++], err);
    if (rc != XD_OK) return rc;
  }
  return XD_OK;
}

/* BertProcessing {"sep": ["[SEP]", 102], "cls": ["[CLS]", 101]} is the template
 * [CLS] $A [SEP]. */
static int bert_processing(const json_t *pp, xd_tokenizer_spec_t *s, xd_error_t *err) {
  static const char *const names[2] = {"cls", "sep"};
  if (!(s->template_single = xd_calloc(3, sizeof *s->template_single)) ||
      !(s->specials = xd_calloc(2, sizeof *s->specials)))
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  s->n_template = 3;
  s->template_single[1].is_sequence = 1;
  for (size_t k = 0; k < 2; k++) {
    char f[XD_ERROR_FIELD_MAX];
    snprintf(f, sizeof f, "post_processor.%s", names[k]);
    json_t *v = json_object_get(pp, names[k]);
    if (!json_is_array(v) || json_array_size(v) != 2) return fail(err, f, "must be [token, id]");
    xd_tok_special_t *sp = &s->specials[s->n_specials++];
    sp->ids = xd_calloc(1, sizeof *sp->ids);
    sp->tokens = xd_calloc(1, sizeof *sp->tokens);
    if (!sp->ids || !sp->tokens) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    int rc = str_dup(json_array_get(v, 0), f, &sp->tokens[0], err);
    if (rc == XD_OK) rc = id_of(json_array_get(v, 1), f, &sp->ids[0], err);
    if (rc != XD_OK) return rc;
    sp->n = 1;
    if (!(sp->name = xd_strdup(sp->tokens[0])) ||
        !(s->template_single[k ? 2 : 0].special = xd_strdup(sp->tokens[0])))
      return xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
  }
  return XD_OK;
}

static int post_processor(const json_t *pp, xd_tokenizer_spec_t *s, xd_error_t *err) {
  if (!pp || json_is_null(pp)) return XD_OK;
  const char *type = type_of(pp, "post_processor", err);
  if (!type) return XD_EFORMAT;
  if (strcmp(type, "TemplateProcessing") == 0) return template_processing(pp, s, err);
  if (strcmp(type, "BertProcessing") == 0) return bert_processing(pp, s, err);
  return xd_error_set(err, XD_EFORMAT, "post_processor.type",
                      "post-processor '%.60s' is not supported (TemplateProcessing, BertProcessing)", type);
}

/* ---- entry points ---------------------------------------------------------------------------- */

int xd_tokenizer_json_decode(const json_t *doc, xd_tokenizer_spec_t *s, xd_error_t *err) {
  memset(s, 0, sizeof *s);
  if (!json_is_object(doc)) return fail(err, "", "a tokenizer.json document is an object");
  static const char *const keys[] = {"version", "truncation", "padding", "added_tokens", "normalizer",
                                     "pre_tokenizer", "post_processor", "decoder", "model", NULL};
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)doc, key, v) {
    int ok = 0;
    for (const char *const *k = keys; *k && !ok; k++) ok = strcmp(*k, key) == 0;
    if (!ok) {
      xd_error_set(err, XD_EFORMAT, key, "unknown key '%.60s' in a tokenizer.json", key);
      goto fail;
    }
  }
  int rc = model(json_object_get(doc, "model"), s, err);
  if (rc == XD_OK) rc = added_tokens(json_object_get(doc, "added_tokens"), s, err);
  json_t *nm = json_object_get(doc, "normalizer"), *pt = json_object_get(doc, "pre_tokenizer");
  if (rc == XD_OK && nm && !json_is_null(nm)) rc = normalizer(nm, "normalizer", 0, s, err);
  if (rc == XD_OK && pt && !json_is_null(pt)) rc = pre_tokenizer(pt, "pre_tokenizer", 0, s, err);
  if (rc == XD_OK) rc = post_processor(json_object_get(doc, "post_processor"), s, err);
  json_t *pad = json_object_get(doc, "padding");
  if (rc == XD_OK && pad && !json_is_null(pad)) {
    json_t *pt2 = json_object_get(pad, "pad_token");
    if (pt2) rc = str_dup(pt2, "padding.pad_token", &s->pad_token, err);
  }
  if (rc == XD_OK) return XD_OK;
fail:
  xd_tokenizer_spec_deinit(s);
  return err->code ? err->code : XD_EFORMAT;
}

int xd_tokenizer_json_new(const json_t *doc, xd_tokenizer_t **out, xd_error_t *err) {
  xd_tokenizer_spec_t s;
  *out = NULL;
  int rc = xd_tokenizer_json_decode(doc, &s, err);
  if (rc != XD_OK) return rc;
  return xd_tokenizer_new(&s, out, err);
}

int xd_tokenizer_json_load(const char *data, size_t len, xd_tokenizer_t **out, xd_error_t *err) {
  *out = NULL;
  if (len > XD_TOKENIZER_JSON_MAX_BYTES)
    return xd_error_set(err, XD_ETOOBIG, NULL, "a tokenizer.json is at most %u bytes", XD_TOKENIZER_JSON_MAX_BYTES);
  json_error_t jerr;
  int oom = 0;
  json_t *doc = xd_json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr, &oom);
  if (!doc) {
    if (oom) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading a tokenizer.json");
    return xd_error_set(err, XD_EFORMAT, NULL, "not JSON: %s (line %d)", jerr.text, jerr.line);
  }
  int rc = xd_tokenizer_json_new(doc, out, err);
  json_decref(doc);
  return rc;
}

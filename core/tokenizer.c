/* tokenizer.c — Hugging Face tokenizer.json semantics: added tokens, normalizers with
 * alignments, pre-tokenizers, WordLevel / WordPiece, BERT template, truncation.
 *
 * The reference is the tokenizers library (Rust; its Python and Node bindings): the
 * comments below name the rule each step copies. Normalized text is an array of
 * characters, each with the original range [lo, hi) it is aligned to. This file builds
 * the tokenizer; tokenizer_encode.c runs it. */
#include "core/tokenizer.h"
#include "core/tokenizer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/unicode.h"

/* ---- the tokenizer ------------------------------------------------------------------ */


static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

long xd_tok__vocab_find(const xd_tokenizer_t *t, const char *s, size_t n) {
  size_t mask = t->n_slots - 1;
  for (size_t i = fnv1a(s, n) & mask;; i = (i + 1) & mask) {
    uint32_t v = t->slots[i];
    if (!v) return -1;
    const char *tok = t->s.vocab[v - 1].token;
    if (strncmp(tok, s, n) == 0 && tok[n] == 0) return (long)(v - 1);
  }
}

void xd_tokenizer_spec_deinit(xd_tokenizer_spec_t *s) {
  if (!s) return;
  for (size_t i = 0; s->vocab && i < s->n_vocab; i++) xd_free(s->vocab[i].token);
  xd_free(s->vocab);
  xd_free(s->unk_token);
  xd_free(s->prefix);
  for (size_t i = 0; s->added && i < s->n_added; i++) xd_free(s->added[i].content);
  xd_free(s->added);
  for (size_t i = 0; s->template_single && i < s->n_template; i++) xd_free(s->template_single[i].special);
  xd_free(s->template_single);
  for (size_t i = 0; s->specials && i < s->n_specials; i++) {
    xd_free(s->specials[i].name);
    xd_free(s->specials[i].ids);
    for (size_t k = 0; s->specials[i].tokens && k < s->specials[i].n; k++) xd_free(s->specials[i].tokens[k]);
    xd_free(s->specials[i].tokens);
  }
  xd_free(s->specials);
  xd_free(s->pad_token);
  memset(s, 0, sizeof *s);
}

void xd_tokenizer_free(xd_tokenizer_t *t) {
  if (!t) return;
  xd_tokenizer_spec_deinit(&t->s);
  xd_free(t->slots);
  xd_free(t->id2tok);
  xd_free(t->piece_special);
  xd_free(t);
}

static int valid_utf8(const char *s) {
  size_t n = strlen(s), bad = 0;
  uint32_t *tmp = xd_malloc((n ? n : 1) * sizeof *tmp);
  if (!tmp) return -1;
  long k = xd_utf8_decode(s, n, tmp, NULL, &bad);
  xd_free(tmp);
  return k >= 0;
}

/* Checks one token string: non-empty, bounded, valid UTF-8. */
static int check_token(const char *tok, const char *field, xd_error_t *err) {
  if (!tok || !tok[0]) return xd_error_set(err, XD_EFORMAT, field, "a token cannot be empty");
  if (strlen(tok) > XD_TOK_MAX_TOKEN_BYTES)
    return xd_error_set(err, XD_EFORMAT, field, "token is longer than %d bytes", XD_TOK_MAX_TOKEN_BYTES);
  int v = valid_utf8(tok);
  if (v < 0) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory checking the tokenizer");
  if (!v) return xd_error_set(err, XD_EFORMAT, field, "token is not valid UTF-8");
  return XD_OK;
}

static const xd_tok_special_t *special_named(const xd_tokenizer_spec_t *s, const char *name) {
  for (size_t i = 0; i < s->n_specials; i++)
    if (strcmp(s->specials[i].name, name) == 0) return &s->specials[i];
  return NULL;
}

static int build(xd_tokenizer_t *t, xd_error_t *err) {
  xd_tokenizer_spec_t *s = &t->s;
  char f[XD_ERROR_FIELD_MAX];
  if (s->n_norm > XD_TOK_MAX_STEPS) return xd_error_set(err, XD_EFORMAT, "normalizer", "more than %d steps", XD_TOK_MAX_STEPS);
  if (s->n_pre > XD_TOK_MAX_STEPS)
    return xd_error_set(err, XD_EFORMAT, "pre_tokenizer", "more than %d steps", XD_TOK_MAX_STEPS);
  if (s->n_vocab == 0) return xd_error_set(err, XD_EFORMAT, "model.vocab", "the vocabulary is empty");
  if (s->n_vocab > XD_TOK_MAX_VOCAB)
    return xd_error_set(err, XD_ETOOBIG, "model.vocab", "more than %zu entries", XD_TOK_MAX_VOCAB);
  if (s->n_added > XD_TOK_MAX_ADDED)
    return xd_error_set(err, XD_ETOOBIG, "added_tokens", "more than %d added tokens", XD_TOK_MAX_ADDED);
  if (s->n_template > XD_TOK_MAX_TEMPLATE)
    return xd_error_set(err, XD_ETOOBIG, "post_processor.single", "more than %d pieces", XD_TOK_MAX_TEMPLATE);
  if (s->model == XD_TOK_MODEL_WORDPIECE) {
    if (!s->prefix) return xd_error_set(err, XD_EFORMAT, "model.continuing_subword_prefix", "is required");
    if (strlen(s->prefix) > 32)
      return xd_error_set(err, XD_EFORMAT, "model.continuing_subword_prefix", "is longer than 32 bytes");
    if (s->max_input_chars_per_word == 0) s->max_input_chars_per_word = 100;
    if (s->max_input_chars_per_word > XD_TOK_MAX_WORD_CHARS)
      return xd_error_set(err, XD_EFORMAT, "model.max_input_chars_per_word", "must be at most %d",
                          XD_TOK_MAX_WORD_CHARS);
  }
  int64_t max_id = -1;
  for (size_t i = 0; i < s->n_vocab; i++) {
    snprintf(f, sizeof f, "model.vocab[%zu]", i);
    int rc = check_token(s->vocab[i].token, f, err);
    if (rc != XD_OK) return rc;
    if (s->vocab[i].id < 0 || (size_t)s->vocab[i].id >= XD_TOK_MAX_VOCAB)
      return xd_error_set(err, XD_EFORMAT, f, "id %lld of '%s' is not in 0..%zu", (long long)s->vocab[i].id,
                          s->vocab[i].token, XD_TOK_MAX_VOCAB - 1);
    if (s->vocab[i].id > max_id) max_id = s->vocab[i].id;
    size_t len = strlen(s->vocab[i].token);
    if (len > t->max_tok_bytes) t->max_tok_bytes = len;
  }
  for (size_t i = 0; i < s->n_added; i++) {
    snprintf(f, sizeof f, "added_tokens[%zu].content", i);
    int rc = check_token(s->added[i].content, f, err);
    if (rc != XD_OK) return rc;
    if (s->added[i].id < 0 || (size_t)s->added[i].id >= XD_TOK_MAX_VOCAB)
      return xd_error_set(err, XD_EFORMAT, f, "id %lld is not in 0..%zu", (long long)s->added[i].id, XD_TOK_MAX_VOCAB - 1);
    if (s->added[i].id > max_id) max_id = s->added[i].id;
  }
  /* hash of the vocabulary */
  t->n_slots = 16;
  while (t->n_slots < 2 * s->n_vocab) t->n_slots *= 2;
  t->n_ids = (size_t)max_id + 1;
  t->slots = xd_calloc(t->n_slots, sizeof *t->slots);
  t->id2tok = xd_calloc(t->n_ids, sizeof *t->id2tok);
  if (!t->slots || !t->id2tok) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the tokenizer");
  for (size_t i = 0; i < s->n_vocab; i++) {
    const char *tok = s->vocab[i].token;
    size_t n = strlen(tok), mask = t->n_slots - 1, k = fnv1a(tok, n) & mask;
    if (xd_tok__vocab_find(t, tok, n) >= 0) {
      snprintf(f, sizeof f, "model.vocab[%zu]", i);
      return xd_error_set(err, XD_EFORMAT, f, "duplicate token '%s'", tok);
    }
    if (t->id2tok[s->vocab[i].id]) {
      snprintf(f, sizeof f, "model.vocab[%zu]", i);
      return xd_error_set(err, XD_EFORMAT, f, "id %lld is given to both '%s' and '%s'", (long long)s->vocab[i].id,
                          t->id2tok[s->vocab[i].id], tok);
    }
    while (t->slots[k]) k = (k + 1) & mask;
    t->slots[k] = (uint32_t)i + 1;
    t->id2tok[s->vocab[i].id] = tok;
  }
  t->vocab_size = s->n_vocab;
  for (size_t i = 0; i < s->n_added; i++) {
    const char *c = s->added[i].content, *at = t->id2tok[s->added[i].id];
    if (at && strcmp(at, c) != 0) {
      snprintf(f, sizeof f, "added_tokens[%zu].id", i);
      return xd_error_set(err, XD_EFORMAT, f, "id %lld is '%s' in the vocabulary, not '%s'", (long long)s->added[i].id,
                          at, c);
    }
    if (!at) {
      t->id2tok[s->added[i].id] = c;
      t->vocab_size++;
    }
    t->added_first[(unsigned char)c[0] >> 3] |= (uint8_t)(1u << ((unsigned char)c[0] & 7));
  }
  if (!s->unk_token) return xd_error_set(err, XD_EFORMAT, "model.unk_token", "is required");
  long u = xd_tok__vocab_find(t, s->unk_token, strlen(s->unk_token));
  if (u < 0) return xd_error_set(err, XD_EFORMAT, "model.unk_token", "'%s' is not in the vocabulary", s->unk_token);
  t->unk_id = s->vocab[u].id;
  t->pad_token = s->pad_token ? s->pad_token : "[PAD]";
  t->pad_id = xd_tokenizer_token_id(t, t->pad_token);
  if (t->pad_id < 0) {
    if (s->pad_token) return xd_error_set(err, XD_EFORMAT, "padding.pad_token", "'%s' is not a token", s->pad_token);
    t->pad_token = NULL;
  }
  /* specials and the template */
  for (size_t i = 0; i < s->n_specials; i++) {
    const xd_tok_special_t *sp = &s->specials[i];
    snprintf(f, sizeof f, "post_processor.special_tokens.%s", sp->name);
    if (sp->n == 0 || sp->n > XD_TOK_MAX_TEMPLATE) return xd_error_set(err, XD_EFORMAT, f, "needs 1 to %d ids", XD_TOK_MAX_TEMPLATE);
    for (size_t k = 0; k < sp->n; k++) {
      int rc = check_token(sp->tokens[k], f, err);
      if (rc != XD_OK) return rc;
      if (sp->ids[k] < 0 || (size_t)sp->ids[k] >= XD_TOK_MAX_VOCAB)
        return xd_error_set(err, XD_EFORMAT, f, "id %lld is out of range", (long long)sp->ids[k]);
    }
  }
  if (s->n_template) {
    t->piece_special = xd_calloc(s->n_template, sizeof *t->piece_special);
    if (!t->piece_special) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the tokenizer");
    size_t n_seq = 0;
    for (size_t i = 0; i < s->n_template; i++) {
      const xd_tok_piece_t *p = &s->template_single[i];
      snprintf(f, sizeof f, "post_processor.single[%zu]", i);
      if (p->is_sequence) {
        n_seq++;
        continue;
      }
      const xd_tok_special_t *sp = p->special ? special_named(s, p->special) : NULL;
      if (!sp)
        return xd_error_set(err, XD_EFORMAT, f, "special token '%s' is not in post_processor.special_tokens",
                            p->special ? p->special : "");
      t->piece_special[i] = sp;
      t->n_special += sp->n;
    }
    if (n_seq != 1)
      return xd_error_set(err, XD_EFORMAT, "post_processor.single", "must hold the sequence exactly once, not %zu times", n_seq);
  }
  return XD_OK;
}

int xd_tokenizer_new(xd_tokenizer_spec_t *spec, xd_tokenizer_t **out, xd_error_t *err) {
  *out = NULL;
  xd_tokenizer_t *t = xd_calloc(1, sizeof *t);
  if (!t) {
    xd_tokenizer_spec_deinit(spec);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory building the tokenizer");
  }
  t->s = *spec;
  memset(spec, 0, sizeof *spec);
  int rc = build(t, err);
  if (rc != XD_OK) {
    xd_tokenizer_free(t);
    return rc;
  }
  *out = t;
  return XD_OK;
}

size_t xd_tokenizer_vocab_size(const xd_tokenizer_t *t) { return t->vocab_size; }
const char *xd_tokenizer_unk_token(const xd_tokenizer_t *t) { return t->s.unk_token; }
int64_t xd_tokenizer_unk_id(const xd_tokenizer_t *t) { return t->unk_id; }
const char *xd_tokenizer_pad_token(const xd_tokenizer_t *t) { return t->pad_token; }
int64_t xd_tokenizer_pad_id(const xd_tokenizer_t *t) { return t->pad_id; }
size_t xd_tokenizer_n_special(const xd_tokenizer_t *t) { return t->n_special; }

int64_t xd_tokenizer_token_id(const xd_tokenizer_t *t, const char *token) {
  long v = xd_tok__vocab_find(t, token, strlen(token));
  if (v >= 0) return t->s.vocab[v].id;
  for (size_t i = 0; i < t->s.n_added; i++)
    if (strcmp(t->s.added[i].content, token) == 0) return t->s.added[i].id;
  return -1;
}

const char *xd_tokenizer_id_token(const xd_tokenizer_t *t, int64_t id) {
  return id >= 0 && (size_t)id < t->n_ids ? t->id2tok[id] : NULL;
}


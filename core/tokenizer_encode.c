/* tokenizer_encode.c — one text through the tokenizer: added tokens split off the raw
 * text, each other piece normalized (with alignments), pre-tokenized into words, the
 * words cut by the model, then truncation and the post-processor's template.
 *
 * Alignment rule (the library's NormalizedString::transform): a normalizer emits
 * characters each marked "replaces the next original" (change 0), "replaces it and
 * removes N more" (change -N) or "is inserted" (change +1). A replacing character takes
 * the alignment of the character it consumes; an inserted one takes that of the last
 * character consumed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/tokenizer_int.h"
#include "core/unicode.h"

/* ---- growable arrays -------------------------------------------------------------------- */

typedef struct nch {
  uint32_t c, lo, hi; /* character, original range [lo, hi) in code points */
} nch_t;

typedef struct nstr {
  nch_t *v;
  size_t n, cap;
} nstr_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t max) {
  if (need <= *cap) return XD_OK;
  if (need > max) return XD_ETOOBIG;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  if (c > max) c = max;
  void *q = xd_realloc(*p, xd_mul_size(c, elem));
  if (!q) return XD_ENOMEM;
  *p = q;
  *cap = c;
  return XD_OK;
}

static int push(nstr_t *s, uint32_t c, uint32_t lo, uint32_t hi) {
  int rc = grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v, XD_TOK_MAX_NORMALIZED);
  if (rc != XD_OK) return rc;
  s->v[s->n++] = (nch_t){c, lo, hi};
  return XD_OK;
}

/* ---- normalizers ----------------------------------------------------------------------- */

static int is_bert_whitespace(uint32_t c) {
  return c == '\t' || c == '\n' || c == '\r' || (xd_uni_flags(c) & XD_UNI_WHITE_SPACE);
}

static int is_bert_control(uint32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return 0;
  return (xd_uni_flags(c) & XD_UNI_OTHER) != 0;
}

/* BertNormalizer's "Chinese character": the CJK ideograph blocks. */
static int is_cjk(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Lowercase: each character's full lowercase; extra characters are inserted after it
 * and so share its alignment. */
static int norm_lower(const nstr_t *in, nstr_t *out) {
  uint32_t l[XD_UNI_MAX_LOWER];
  for (size_t i = 0; i < in->n; i++) {
    size_t k = xd_uni_lower(in->v[i].c, l);
    for (size_t j = 0; j < k; j++) {
      int rc = push(out, l[j], in->v[i].lo, in->v[i].hi);
      if (rc != XD_OK) return rc;
    }
  }
  return XD_OK;
}

/* Filter: keeps the characters without any of `flags` (kept ones keep their alignment). */
static int norm_drop(const nstr_t *in, nstr_t *out, unsigned flags) {
  for (size_t i = 0; i < in->n; i++)
    if (!(xd_uni_flags(in->v[i].c) & flags)) {
      int rc = push(out, in->v[i].c, in->v[i].lo, in->v[i].hi);
      if (rc != XD_OK) return rc;
    }
  return XD_OK;
}

typedef struct dch {
  uint32_t c;
  uint8_t ccc;
  int8_t inserted; /* change +1 (not the first character of a decomposition) */
  uint32_t pos;    /* for a stable sort */
} dch_t;

static int cmp_dch(const void *a, const void *b) {
  const dch_t *x = a, *y = b;
  if (x->ccc != y->ccc) return x->ccc < y->ccc ? -1 : 1;
  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* NFD as the unicode-normalization crate's Decompositions iterator: every character's
 * full canonical decomposition (first character change 0, the others +1), then each run
 * of non-starters sorted stably by combining class; the marks travel with their change,
 * and the transform rule then assigns alignments in emission order. */
static int norm_nfd(const nstr_t *in, nstr_t *out, uint32_t piece_lo) {
  dch_t *d = NULL;
  size_t nd = 0, cap = 0;
  int rc = XD_OK;
  uint32_t tmp[XD_UNI_MAX_DECOMP];
  for (size_t i = 0; i < in->n && rc == XD_OK; i++) {
    size_t k = xd_uni_decompose(in->v[i].c, tmp);
    if ((rc = grow((void **)&d, &cap, nd + k, sizeof *d, XD_TOK_MAX_NORMALIZED)) != XD_OK) break;
    for (size_t j = 0; j < k; j++) d[nd + j] = (dch_t){tmp[j], (uint8_t)xd_uni_ccc(tmp[j]), j > 0, (uint32_t)(nd + j)};
    nd += k;
  }
  for (size_t a = 0; rc == XD_OK && a < nd;) {
    if (d[a].ccc == 0) {
      a++;
      continue;
    }
    size_t b = a;
    while (b < nd && d[b].ccc != 0) b++;
    if (b - a > 1) qsort(d + a, b - a, sizeof *d, cmp_dch);
    a = b;
  }
  size_t idx = 0; /* next original (pre-step) character to consume */
  for (size_t j = 0; rc == XD_OK && j < nd; j++) {
    uint32_t lo, hi;
    if (!d[j].inserted) {
      lo = in->v[idx].lo, hi = in->v[idx].hi;
      idx++;
    } else if (idx > 0) {
      lo = in->v[idx - 1].lo, hi = in->v[idx - 1].hi;
    } else {
      lo = hi = piece_lo;
    }
    rc = push(out, d[j].c, lo, hi);
  }
  xd_free(d);
  return rc;
}

/* BertNormalizer's clean_text (drop NUL, U+FFFD and controls; any whitespace becomes a
 * space) and handle_chinese_chars (" c " around each CJK ideograph, all three aligned
 * to it). */
static int norm_bert_clean(const nstr_t *in, nstr_t *out, int clean, int cjk) {
  for (size_t i = 0; i < in->n; i++) {
    uint32_t c = in->v[i].c, lo = in->v[i].lo, hi = in->v[i].hi;
    int rc;
    if (clean) {
      if (c == 0 || c == 0xfffd || is_bert_control(c)) continue;
      if (is_bert_whitespace(c)) c = ' ';
    }
    if (cjk && is_cjk(c)) {
      if ((rc = push(out, ' ', lo, hi)) != XD_OK || (rc = push(out, c, lo, hi)) != XD_OK ||
          (rc = push(out, ' ', lo, hi)) != XD_OK)
        return rc;
    } else if ((rc = push(out, c, lo, hi)) != XD_OK) {
      return rc;
    }
  }
  return XD_OK;
}

/* Applies one step from *cur into *tmp and swaps them. */
#define STEP(call)                     \
  do {                                 \
    tmp->n = 0;                        \
    int rc_ = (call);                  \
    if (rc_ != XD_OK) return rc_;      \
    nstr_t sw_ = *cur;                 \
    *cur = *tmp;                       \
    *tmp = sw_;                        \
  } while (0)

static int normalize(const xd_tokenizer_t *t, nstr_t *cur, nstr_t *tmp, uint32_t piece_lo) {
  for (size_t k = 0; k < t->s.n_norm; k++) {
    const xd_tok_norm_t *nm = &t->s.norm[k];
    switch (nm->kind) {
    case XD_TOK_NORM_LOWERCASE:
      STEP(norm_lower(cur, tmp));
      break;
    case XD_TOK_NORM_NFD:
      STEP(norm_nfd(cur, tmp, piece_lo));
      break;
    case XD_TOK_NORM_STRIP_ACCENTS:
      STEP(norm_drop(cur, tmp, XD_UNI_MARK));
      break;
    case XD_TOK_NORM_BERT: {
      if (nm->clean_text || nm->handle_chinese_chars) STEP(norm_bert_clean(cur, tmp, nm->clean_text, nm->handle_chinese_chars));
      int strip = nm->strip_accents < 0 ? nm->lowercase : nm->strip_accents;
      if (strip) {
        STEP(norm_nfd(cur, tmp, piece_lo));
        STEP(norm_drop(cur, tmp, XD_UNI_MARK_NONSPACING));
      }
      if (nm->lowercase) STEP(norm_lower(cur, tmp));
      break;
    }
    }
  }
  return XD_OK;
}

/* ---- pre-tokenizers ------------------------------------------------------------------- */

typedef struct span {
  size_t a, b; /* [a, b) in normalized characters */
} span_t;

typedef struct spans {
  span_t *v;
  size_t n, cap;
} spans_t;

static int span_push(spans_t *s, size_t a, size_t b) {
  if (a >= b) return XD_OK; /* the library drops empty splits */
  int rc = grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v, XD_TOK_MAX_NORMALIZED);
  if (rc != XD_OK) return rc;
  s->v[s->n++] = (span_t){a, b};
  return XD_OK;
}

static int is_ws(uint32_t c) { return (xd_uni_flags(c) & XD_UNI_WHITE_SPACE) != 0; }
static int is_bert_punct(uint32_t c) {
  return (c < 0x80 && ((c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
                       (c >= 0x7b && c <= 0x7e))) ||
         (xd_uni_flags(c) & XD_UNI_PUNCT);
}

/* One pre-tokenizer over span [a, b) of s, appending the pieces to out. */
static int pre_split(xd_tok_pre_t kind, const nstr_t *s, size_t a, size_t b, spans_t *out) {
  int rc = XD_OK;
  size_t i = a;
  while (i < b && rc == XD_OK) {
    uint32_t c = s->v[i].c;
    size_t j = i + 1;
    switch (kind) {
    case XD_TOK_PRE_WHITESPACE: /* \w+ | [^\w\s]+ ; whitespace removed */
      if (xd_uni_is_word(c)) {
        while (j < b && xd_uni_is_word(s->v[j].c)) j++;
        rc = span_push(out, i, j);
      } else if (!is_ws(c)) {
        while (j < b && !xd_uni_is_word(s->v[j].c) && !is_ws(s->v[j].c)) j++;
        rc = span_push(out, i, j);
      }
      break;
    case XD_TOK_PRE_WHITESPACE_SPLIT: /* runs of non-whitespace */
      if (!is_ws(c)) {
        while (j < b && !is_ws(s->v[j].c)) j++;
        rc = span_push(out, i, j);
      }
      break;
    case XD_TOK_PRE_BERT: /* whitespace removed, each punctuation mark alone */
      if (is_bert_punct(c)) {
        rc = span_push(out, i, j);
      } else if (!is_ws(c)) {
        while (j < b && !is_ws(s->v[j].c) && !is_bert_punct(s->v[j].c)) j++;
        rc = span_push(out, i, j);
      }
      break;
    }
    i = j;
  }
  return rc;
}

/* ---- the encoding under construction --------------------------------------------------- */

typedef struct toks {
  xd_tok_encoding_t *e;
  size_t cap;
} toks_t;

static int tok_push(toks_t *k, int64_t id, const char *tok, size_t lo, size_t hi, int special, uint32_t type_id) {
  xd_tok_encoding_t *e = k->e;
  if (e->n == k->cap) {
    size_t c = k->cap ? 2 * k->cap : 32;
    int64_t *ids = xd_realloc(e->ids, c * sizeof *ids);
    if (ids) e->ids = ids;
    const char **tks = xd_realloc(e->tokens, c * sizeof *tks);
    if (tks) e->tokens = tks;
    size_t *st = xd_realloc(e->start, c * sizeof *st);
    if (st) e->start = st;
    size_t *en = xd_realloc(e->end, c * sizeof *en);
    if (en) e->end = en;
    uint32_t *ty = xd_realloc(e->type_ids, c * sizeof *ty);
    if (ty) e->type_ids = ty;
    uint8_t *sp = xd_realloc(e->special, c * sizeof *sp);
    if (sp) e->special = sp;
    if (!ids || !tks || !st || !en || !ty || !sp) return XD_ENOMEM;
    k->cap = c;
  }
  size_t i = e->n++;
  e->ids[i] = id;
  e->tokens[i] = tok;
  e->start[i] = lo;
  e->end[i] = hi;
  e->type_ids[i] = type_id;
  e->special[i] = (uint8_t)special;
  return XD_OK;
}

/* ---- models ---------------------------------------------------------------------------- */

/* UTF-8 of the characters of one word, and each character's byte offset (n + 1). */
typedef struct word {
  char *buf;
  size_t *off;
  size_t cap_buf, cap_off;
} word_t;

static int word_fill(word_t *w, const nstr_t *s, size_t a, size_t b, size_t prefix_len) {
  size_t n = b - a;
  int rc = grow((void **)&w->buf, &w->cap_buf, prefix_len + 4 * n + 1, 1, (size_t)-1);
  if (rc == XD_OK) rc = grow((void **)&w->off, &w->cap_off, n + 1, sizeof *w->off, (size_t)-1);
  if (rc != XD_OK) return rc;
  size_t p = prefix_len;
  for (size_t i = 0; i < n; i++) {
    w->off[i] = p;
    p += xd_utf8_encode(s->v[a + i].c, w->buf + p);
  }
  w->off[n] = p;
  return XD_OK;
}

static int push_unk(const xd_tokenizer_t *t, toks_t *k, const nstr_t *s, size_t a, size_t b) {
  return tok_push(k, t->unk_id, t->s.unk_token, s->v[a].lo, s->v[b - 1].hi, 0, 0);
}

/* WordLevel: the whole word, or the unknown token. */
static int model_wordlevel(const xd_tokenizer_t *t, toks_t *k, const nstr_t *s, size_t a, size_t b, word_t *w) {
  int rc = word_fill(w, s, a, b, 0);
  if (rc != XD_OK) return rc;
  long v = xd_tok__vocab_find(t, w->buf, w->off[b - a]);
  if (v < 0) return push_unk(t, k, s, a, b);
  return tok_push(k, t->s.vocab[v].id, t->s.vocab[v].token, s->v[a].lo, s->v[b - 1].hi, 0, 0);
}

/* WordPiece (the library's greedy longest-match-first): a word over
 * max_input_chars_per_word characters, or with a part no vocabulary entry matches, is
 * one unknown token. Pieces after the first carry the prefix. Candidates longer than the
 * longest vocabulary entry are skipped without a lookup (they cannot match). */
static int model_wordpiece(const xd_tokenizer_t *t, toks_t *k, const nstr_t *s, size_t a, size_t b, word_t *w) {
  size_t n = b - a, plen = strlen(t->s.prefix);
  if (n > t->s.max_input_chars_per_word) return push_unk(t, k, s, a, b);
  int rc = word_fill(w, s, a, b, plen);
  if (rc != XD_OK) return rc;
  size_t first = k->e->n;
  for (size_t start = 0; start < n;) {
    long found = -1;
    size_t end = n;
    for (; end > start; end--) {
      size_t from = w->off[start], len = w->off[end] - from;
      const char *p = w->buf + from;
      if (start > 0) { /* the prefix goes just before the piece, in the word's buffer */
        len += plen;
        p -= plen;
      }
      if (len > t->max_tok_bytes) continue;
      char save[32];
      if (start > 0) {
        memcpy(save, (char *)p, plen);
        memcpy((char *)p, t->s.prefix, plen);
      }
      found = xd_tok__vocab_find(t, p, len);
      if (start > 0) memcpy((char *)p, save, plen);
      if (found >= 0) break;
    }
    if (found < 0) {
      k->e->n = first; /* the whole word becomes [UNK] */
      return push_unk(t, k, s, a, b);
    }
    rc = tok_push(k, t->s.vocab[found].id, t->s.vocab[found].token, s->v[a + start].lo, s->v[a + end - 1].hi, 0, 0);
    if (rc != XD_OK) return rc;
    start = end;
  }
  return XD_OK;
}

/* ---- one piece of raw text ------------------------------------------------------------- */

typedef struct scratch {
  nstr_t cur, tmp;
  spans_t sp, sp2;
  word_t w;
} scratch_t;

static int encode_piece(const xd_tokenizer_t *t, const uint32_t *cp, size_t lo, size_t hi, toks_t *k, scratch_t *x) {
  x->cur.n = 0;
  for (size_t i = lo; i < hi; i++) {
    int rc = push(&x->cur, cp[i], (uint32_t)i, (uint32_t)i + 1);
    if (rc != XD_OK) return rc;
  }
  int rc = normalize(t, &x->cur, &x->tmp, (uint32_t)lo);
  if (rc != XD_OK) return rc;
  x->sp.n = 0;
  if ((rc = span_push(&x->sp, 0, x->cur.n)) != XD_OK) return rc;
  for (size_t p = 0; p < t->s.n_pre; p++) {
    x->sp2.n = 0;
    for (size_t i = 0; i < x->sp.n && rc == XD_OK; i++) rc = pre_split(t->s.pre[p], &x->cur, x->sp.v[i].a, x->sp.v[i].b, &x->sp2);
    if (rc != XD_OK) return rc;
    spans_t sw = x->sp;
    x->sp = x->sp2;
    x->sp2 = sw;
  }
  for (size_t i = 0; i < x->sp.n && rc == XD_OK; i++) {
    size_t a = x->sp.v[i].a, b = x->sp.v[i].b;
    rc = t->s.model == XD_TOK_MODEL_WORDPIECE ? model_wordpiece(t, k, &x->cur, a, b, &x->w)
                                              : model_wordlevel(t, k, &x->cur, a, b, &x->w);
  }
  return rc;
}

/* The longest added token starting at cp[i], or -1 (the library's leftmost-longest
 * matching over the raw text). */
static long added_at(const xd_tokenizer_t *t, const uint32_t *cp, size_t n, size_t i, size_t *len) {
  long best = -1;
  size_t best_len = 0;
  char enc[4];
  xd_utf8_encode(cp[i], enc);
  if (!(t->added_first[(unsigned char)enc[0] >> 3] & (1u << ((unsigned char)enc[0] & 7)))) {
    *len = 0;
    return -1;
  }
  for (size_t a = 0; a < t->s.n_added; a++) {
    const char *c = t->s.added[a].content;
    size_t j = i, p = 0;
    while (c[p] && j < n) {
      size_t m = xd_utf8_encode(cp[j], enc);
      if (strncmp(c + p, enc, m) != 0) break;
      p += m;
      j++;
    }
    if (!c[p] && j - i > best_len) {
      best = (long)a;
      best_len = j - i;
    }
  }
  *len = best_len;
  return best;
}

/* ---- entry point ------------------------------------------------------------------------ */

void xd_tok_encoding_deinit(xd_tok_encoding_t *e) {
  if (!e) return;
  xd_free(e->ids);
  xd_free(e->tokens);
  xd_free(e->start);
  xd_free(e->end);
  xd_free(e->type_ids);
  xd_free(e->special);
  memset(e, 0, sizeof *e);
}

int xd_tokenizer_encode(const xd_tokenizer_t *t, const char *text, size_t len, size_t max_length,
                        xd_tok_encoding_t *enc, xd_error_t *err) {
  memset(enc, 0, sizeof *enc);
  if (max_length && max_length <= t->n_special)
    return xd_error_set(err, XD_EINVAL, NULL, "max_length %zu leaves no room beside the %zu special tokens", max_length,
                        t->n_special);
  if (len > XD_TOK_MAX_NORMALIZED) return xd_error_set(err, XD_ETOOBIG, NULL, "the text is over %zu bytes", XD_TOK_MAX_NORMALIZED);
  uint32_t *cp = xd_malloc((len ? len : 1) * sizeof *cp);
  if (!cp) return xd_error_set(err, XD_ENOMEM, NULL, "out of memory tokenizing");
  size_t bad = 0;
  long n = xd_utf8_decode(text, len, cp, NULL, &bad);
  int rc = XD_OK;
  scratch_t x;
  memset(&x, 0, sizeof x);
  toks_t seq = {enc, 0};
  if (n < 0) {
    rc = xd_error_set(err, XD_EINVAL, NULL, "is not valid UTF-8 (byte %zu)", bad);
    goto done;
  }
  /* the per-piece buffers sized for the whole text at once (they still grow when the
   * normalizer lengthens it) rather than doubling from 16: LIME tokenizes thousands of
   * perturbed texts per request, and those reallocations were a tenth of its time */
  size_t want = (size_t)n + 16 < XD_TOK_MAX_NORMALIZED ? (size_t)n + 16 : XD_TOK_MAX_NORMALIZED;
  if (grow((void **)&x.cur.v, &x.cur.cap, want, sizeof *x.cur.v, XD_TOK_MAX_NORMALIZED) != XD_OK ||
      grow((void **)&x.tmp.v, &x.tmp.cap, want, sizeof *x.tmp.v, XD_TOK_MAX_NORMALIZED) != XD_OK ||
      grow((void **)&x.sp.v, &x.sp.cap, want, sizeof *x.sp.v, XD_TOK_MAX_NORMALIZED) != XD_OK ||
      grow((void **)&x.sp2.v, &x.sp2.cap, want, sizeof *x.sp2.v, XD_TOK_MAX_NORMALIZED) != XD_OK) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory tokenizing");
    goto done;
  }
  size_t piece = 0;
  for (size_t i = 0; i < (size_t)n && rc == XD_OK;) {
    size_t m = 0;
    long a = t->s.n_added ? added_at(t, cp, (size_t)n, i, &m) : -1;
    if (a < 0) {
      i++;
      continue;
    }
    if (piece < i) rc = encode_piece(t, cp, piece, i, &seq, &x);
    if (rc == XD_OK) rc = tok_push(&seq, t->s.added[a].id, t->s.added[a].content, i, i + m, 0, 0);
    i += m;
    piece = i;
  }
  if (rc == XD_OK && piece < (size_t)n) rc = encode_piece(t, cp, piece, (size_t)n, &seq, &x);
  if (rc != XD_OK) {
    xd_error_set(err, rc, NULL, "%s", rc == XD_ENOMEM ? "out of memory tokenizing" : "the normalized text is too long");
    goto done;
  }
  /* truncation (the library's: the sequence loses its tail so that it and the template's
   * special tokens fit max_length), then the template */
  enc->n_untruncated = enc->n + t->n_special;
  if (max_length && enc->n_untruncated > max_length) {
    enc->n = max_length - t->n_special;
    enc->truncated = 1;
  }
  if (t->s.n_template) {
    xd_tok_encoding_t body = *enc;
    xd_tok_encoding_t out;
    memset(&out, 0, sizeof out);
    toks_t o = {&out, 0};
    for (size_t p = 0; p < t->s.n_template && rc == XD_OK; p++) {
      uint32_t ty = t->s.template_single[p].type_id;
      const xd_tok_special_t *sp = t->piece_special[p];
      if (!sp) {
        for (size_t i = 0; i < body.n && rc == XD_OK; i++)
          rc = tok_push(&o, body.ids[i], body.tokens[i], body.start[i], body.end[i], 0, ty);
      } else {
        for (size_t i = 0; i < sp->n && rc == XD_OK; i++)
          rc = tok_push(&o, sp->ids[i], sp->tokens[i], XD_TOK_NO_OFFSET, XD_TOK_NO_OFFSET, 1, ty);
      }
    }
    out.truncated = body.truncated;
    out.n_untruncated = body.n_untruncated;
    xd_tok_encoding_deinit(enc);
    *enc = out;
    if (rc != XD_OK) {
      xd_error_set(err, rc, NULL, "out of memory tokenizing");
      goto done;
    }
  }
  /* a text with no token still gets arrays (empty), so callers need no special case */
  if (!enc->ids && (rc = tok_push(&seq, 0, NULL, 0, 0, 0, 0)) == XD_OK) enc->n = 0;
  if (rc != XD_OK) xd_error_set(err, rc, NULL, "out of memory tokenizing");
done:
  if (rc != XD_OK) xd_tok_encoding_deinit(enc);
  xd_free(cp);
  xd_free(x.cur.v);
  xd_free(x.tmp.v);
  xd_free(x.sp.v);
  xd_free(x.sp2.v);
  xd_free(x.w.buf);
  xd_free(x.w.off);
  return rc;
}

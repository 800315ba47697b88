/* tokenizer_int.h — the tokenizer's layout, shared by tokenizer.c (construction) and
 * tokenizer_encode.c (encoding). Internal to core/. */
#ifndef XD_TOKENIZER_INT_H
#define XD_TOKENIZER_INT_H

#include "core/tokenizer.h"

struct xd_tokenizer {
  xd_tokenizer_spec_t s;   /* the spec's contents, owned */
  uint32_t *slots;         /* open-addressing hash of vocab entries: index + 1, 0 = empty */
  size_t n_slots;          /* power of two, >= 2 * n_vocab */
  const char **id2tok;     /* (max_id + 1): vocab strings by id, then added tokens */
  size_t n_ids;
  size_t max_tok_bytes;    /* longest vocabulary entry: WordPiece never tries a longer piece */
  int64_t unk_id, pad_id;
  const char *pad_token;
  const xd_tok_special_t **piece_special; /* per template piece, NULL for the sequence */
  size_t n_special;        /* ids the template adds */
  size_t vocab_size;
  uint8_t added_first[32]; /* bitmap of the first bytes of added tokens: a fast "no match here" */
};

/* Index into s.vocab of the entry spelled s[0..n), or -1. */
long xd_tok__vocab_find(const xd_tokenizer_t *t, const char *s, size_t n);

#endif

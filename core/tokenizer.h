/* tokenizer.h — text to token ids, following Hugging Face tokenizers' `tokenizer.json`.
 *
 * Supported (MODEL_FORMAT "Graph models"): models WordLevel and WordPiece; normalizers
 * Lowercase, NFD, StripAccents, BertNormalizer and Sequence; pre-tokenizers Whitespace
 * (regex \w+|[^\w\s]+), WhitespaceSplit, BertPreTokenizer and Sequence; the BERT
 * post-processor ([CLS] ... [SEP], TemplateProcessing or BertProcessing); added tokens
 * matched in the raw text (leftmost-longest, as the library's AddedVocabulary); truncation
 * to a maximum length counted with the special tokens.
 *
 * Offsets follow the library's alignment rules exactly: every normalized character
 * carries the range of original characters it came from (a lowercase expansion, an NFD
 * decomposition or the spaces put around a CJK character share the range of the
 * character that produced them); a token's range runs from its first character's start
 * to its last character's end. Offsets count Unicode code points of the original text,
 * as the Python and Node bindings report them. Special tokens added by the
 * post-processor have no offsets (start = end = XD_TOK_NO_OFFSET).
 *
 * Character properties come from core/unicode.h (see its version); tokenizers built with
 * another Unicode version can differ on characters assigned since.
 *
 * The decoding of tokenizer.json into xd_tokenizer_spec_t is api/tokenizer_json.c's;
 * core/ sees only the plain spec. A tokenizer is immutable after xd_tokenizer_new and may
 * be used by any number of threads at once.
 */
#ifndef XD_TOKENIZER_H
#define XD_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Bounds checked by xd_tokenizer_new (and by the JSON decoder before it allocates). */
#define XD_TOK_MAX_VOCAB ((size_t)1 << 20) /* entries; ids are below this too */
#define XD_TOK_MAX_TOKEN_BYTES 256         /* bytes of one vocabulary entry */
#define XD_TOK_MAX_STEPS 8                 /* normalizers, pre-tokenizers (flattened) */
#define XD_TOK_MAX_ADDED 4096              /* added tokens */
#define XD_TOK_MAX_TEMPLATE 16             /* pieces of the post-processor's template */
#define XD_TOK_MAX_LENGTH 65536            /* max_length */
#define XD_TOK_MAX_WORD_CHARS 1000         /* max_input_chars_per_word */
/* Normalization may grow a text (lowercase, NFD, CJK spacing); past this many
 * normalized characters encoding stops with XD_ETOOBIG. */
#define XD_TOK_MAX_NORMALIZED ((size_t)1 << 22)

#define XD_TOK_NO_OFFSET ((size_t)-1)

typedef enum xd_tok_norm_kind {
  XD_TOK_NORM_LOWERCASE,
  XD_TOK_NORM_NFD,
  XD_TOK_NORM_STRIP_ACCENTS, /* drops every mark (Mn, Mc, Me), without decomposing */
  XD_TOK_NORM_BERT,
} xd_tok_norm_kind_t;

typedef struct xd_tok_norm {
  xd_tok_norm_kind_t kind;
  /* BertNormalizer only */
  int clean_text, handle_chinese_chars, lowercase;
  int strip_accents; /* 1, 0, or -1 (null: follow lowercase) */
} xd_tok_norm_t;

typedef enum xd_tok_pre {
  XD_TOK_PRE_WHITESPACE,       /* \w+|[^\w\s]+ */
  XD_TOK_PRE_WHITESPACE_SPLIT, /* split on White_Space */
  XD_TOK_PRE_BERT,             /* split on White_Space, isolate each punctuation mark */
} xd_tok_pre_t;

typedef enum xd_tok_model { XD_TOK_MODEL_WORDLEVEL, XD_TOK_MODEL_WORDPIECE } xd_tok_model_t;

typedef struct xd_tok_vocab_entry {
  char *token; /* UTF-8 */
  int64_t id;
} xd_tok_vocab_entry_t;

/* An added token, matched in the raw text before normalization. */
typedef struct xd_tok_added {
  char *content;
  int64_t id;
  int special;
} xd_tok_added_t;

/* A special token of the post-processor: one or more ids and their strings. */
typedef struct xd_tok_special {
  char *name;
  size_t n;
  int64_t *ids;
  char **tokens;
} xd_tok_special_t;

/* One piece of the single-sequence template: the sequence itself, or a special token by name. */
typedef struct xd_tok_piece {
  int is_sequence;
  char *special; /* NULL for the sequence */
  uint32_t type_id;
} xd_tok_piece_t;

/* The decoded tokenizer.json. Every pointer is xd_malloc'd and owned by the spec. */
typedef struct xd_tokenizer_spec {
  size_t n_norm;
  xd_tok_norm_t norm[XD_TOK_MAX_STEPS];
  size_t n_pre;
  xd_tok_pre_t pre[XD_TOK_MAX_STEPS];
  xd_tok_model_t model;
  size_t n_vocab;
  xd_tok_vocab_entry_t *vocab;
  char *unk_token;                  /* required */
  char *prefix;                     /* WordPiece continuing_subword_prefix ("##") */
  size_t max_input_chars_per_word;  /* WordPiece; 0 = 100, the library's default */
  size_t n_added;
  xd_tok_added_t *added;
  size_t n_template; /* 0: no post-processor */
  xd_tok_piece_t *template_single;
  size_t n_specials;
  xd_tok_special_t *specials;
  char *pad_token; /* NULL: "[PAD]" if the vocabulary has it */
} xd_tokenizer_spec_t;

void xd_tokenizer_spec_deinit(xd_tokenizer_spec_t *spec);

typedef struct xd_tokenizer xd_tokenizer_t;

/* Validates the spec (bounds above, unique tokens and ids, the unknown token and every
 * special token present, template names resolved; errors name the tokenizer.json path,
 * e.g. "model.vocab" or "post_processor.single[2]") and builds a tokenizer. Takes ownership
 * of the spec's contents on success and on failure (the spec is zeroed either way). */
int xd_tokenizer_new(xd_tokenizer_spec_t *spec, xd_tokenizer_t **out, xd_error_t *err);
void xd_tokenizer_free(xd_tokenizer_t *t);

/* Metadata (borrowed strings, valid for the tokenizer's lifetime). */
size_t xd_tokenizer_vocab_size(const xd_tokenizer_t *t); /* model vocabulary + added tokens not in it */
const char *xd_tokenizer_unk_token(const xd_tokenizer_t *t);
int64_t xd_tokenizer_unk_id(const xd_tokenizer_t *t);
/* Pad token and id; id -1 when the tokenizer has none. */
const char *xd_tokenizer_pad_token(const xd_tokenizer_t *t);
int64_t xd_tokenizer_pad_id(const xd_tokenizer_t *t);
/* Number of special tokens the post-processor adds to one sequence. */
size_t xd_tokenizer_n_special(const xd_tokenizer_t *t);
/* Id of a token string (vocabulary or added), or -1. */
int64_t xd_tokenizer_token_id(const xd_tokenizer_t *t, const char *token);
/* String of an id, or NULL. */
const char *xd_tokenizer_id_token(const xd_tokenizer_t *t, int64_t id);

/* The tokens of one text. Arrays have n entries; token strings are borrowed from the
 * tokenizer. start/end are code point offsets into the original text, XD_TOK_NO_OFFSET
 * for the post-processor's special tokens (special[i] = 1). */
typedef struct xd_tok_encoding {
  size_t n;
  int64_t *ids;
  const char **tokens;
  size_t *start, *end;
  uint32_t *type_ids;
  uint8_t *special;
  int truncated;       /* 1 when tokens were dropped to fit max_length */
  size_t n_untruncated; /* the length it would have had (special tokens included) */
} xd_tok_encoding_t;

/* Tokenizes text[0..len) (UTF-8). max_length 0 = no truncation; otherwise the result has
 * at most max_length tokens, special tokens included (right truncation of the sequence,
 * as the library's enable_truncation(max_length)), and max_length must exceed
 * xd_tokenizer_n_special. Returns XD_OK (enc owned by the caller: xd_tok_encoding_deinit),
 * XD_EINVAL (invalid UTF-8: err's text gives the byte offset; err->field is left for the
 * caller), XD_ETOOBIG or XD_ENOMEM. */
int xd_tokenizer_encode(const xd_tokenizer_t *t, const char *text, size_t len, size_t max_length,
                        xd_tok_encoding_t *enc, xd_error_t *err);
void xd_tok_encoding_deinit(xd_tok_encoding_t *enc);

#endif

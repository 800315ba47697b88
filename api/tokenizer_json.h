/* tokenizer_json.h — a Hugging Face tokenizer.json document decoded into the plain
 * xd_tokenizer_spec_t of core/tokenizer.h, and the tokenizer built from it.
 *
 * Strict about what changes tokens: an unknown normalizer, pre-tokenizer, model or
 * post-processor type, or an added-token option we do not implement (lstrip, rstrip,
 * single_word, normalized), is an error naming its path. Keys that do not change
 * encoding ("version", "decoder") are ignored; "truncation" is ignored too, the bundle's
 * max_length rules; "padding" gives the pad token. Sizes are bounded (core/tokenizer.h)
 * before anything is allocated. Any thread.
 */
#ifndef XD_API_TOKENIZER_JSON_H
#define XD_API_TOKENIZER_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/tokenizer.h"

/* Decodes doc into spec (zeroed on failure). Error fields are paths inside the document
 * ("model.vocab", "normalizer.normalizers[1].type"); the caller prefixes them. */
int xd_tokenizer_json_decode(const json_t *doc, xd_tokenizer_spec_t *spec, xd_error_t *err);

/* Decodes doc and builds the tokenizer (*out owned by the caller, xd_tokenizer_free). */
int xd_tokenizer_json_new(const json_t *doc, xd_tokenizer_t **out, xd_error_t *err);

/* Parses tokenizer.json bytes (at most XD_TOKENIZER_JSON_MAX_BYTES) and builds it. */
#define XD_TOKENIZER_JSON_MAX_BYTES (64u << 20)
int xd_tokenizer_json_load(const char *data, size_t len, xd_tokenizer_t **out, xd_error_t *err);

#endif

/* alloc.h (api/) — jansson on the same allocator as core/ and api/, so that allocation
 * failures injected with xd_alloc_fail_after (core/alloc.h) reach JSON decoding and
 * encoding too, and a per-thread count of the JSON allocations that failed.
 *
 * jansson reports most allocation failures by a NULL or -1 that encoders building a
 * response object rarely check one call at a time (json_object_set_new(o, "k",
 * json_real(x)) silently drops "k"). Rather than check ~170 calls, every place that
 * turns a JSON document into an answer takes a mark before building it and checks it
 * after: any failed JSON allocation on this thread in between makes the answer a 500
 * `internal` instead of a 200 with a field missing.
 */
#ifndef XD_API_ALLOC_H
#define XD_API_ALLOC_H

#include <jansson.h>

#include "core/status.h"

/* Points jansson at xd_malloc/xd_free (json_set_alloc_funcs). Idempotent; call before
 * any other thread uses jansson (xd_api_new does). Memory jansson returns (json_dumps)
 * is then freed with xd_free; since xd_free is free(), memory allocated before the
 * switch may be freed after it. */
void xd_api_alloc_init(void);

/* Number of JSON allocations that failed on the calling thread so far. */
unsigned long xd_json_oom_mark(void);
/* Counts one failed JSON allocation made outside jansson (the encoder, api/jsonout.h). */
void xd_json_oom_note(void);

/* Returns body when no JSON allocation failed on this thread since mark; otherwise
 * drops body (json_decref) and returns NULL with err set to XD_ENOMEM. body may be NULL
 * (err is then left as the encoder set it, unless it is empty). */
json_t *xd_json_oom_check(json_t *body, unsigned long mark, xd_error_t *err);

/* json_loadb that tells an allocation failure from bad JSON: jansson's error for the
 * former is unreliable (often empty, or a syntax error at the token whose buffer could
 * not be allocated). Returns the document, or NULL with *oom set to 1 when a JSON
 * allocation failed while parsing (the caller answers XD_ENOMEM) and to 0 otherwise
 * (jerr says what is wrong with the text). */
json_t *xd_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *jerr, int *oom);

/* json_dumps that returns NULL when any allocation failed while dumping: jansson 2.14
 * may then return text with a piece missing ("label_indices:[0]", an unquoted key),
 * which must never be sent nor stored. Free the text with xd_free. */
char *xd_json_dumps(const json_t *json, size_t flags);

/* Defines `static json_t *name(void *state, xd_error_t *err)`, an xd_job_ops_t encode
 * step that runs inner under an OOM mark (see above). */
#define XD_JSON_OOM_GUARDED(name, inner)                        \
  static json_t *name(void *state, xd_error_t *err) {           \
    unsigned long mark_ = xd_json_oom_mark();                   \
    return xd_json_oom_check(inner(state, err), mark_, err);    \
  }

/* ---- non-finite results ----------------------------------------------------------------
 * xd_json_real writes a non-finite double as null and counts it here (per thread). An
 * explanation or prediction that overflowed (inputs like 1e300 push a network to inf,
 * and inf - inf is NaN) must not be a 200 with nulls where numbers belong: the encode
 * steps of those endpoints check the count and answer 400 instead. */
void xd_json_nonfinite_note(void);
unsigned long xd_json_nonfinite_mark(void);

/* As XD_JSON_OOM_GUARDED, and any non-finite number written by xd_json_real while inner
 * ran makes the answer a 400 (XD_EINVAL) saying the result overflowed. */
#define XD_JSON_RESULT_GUARDED(name, inner)                                         \
  static json_t *name(void *state, xd_error_t *err) {                               \
    unsigned long mark_ = xd_json_oom_mark(), nf_ = xd_json_nonfinite_mark();       \
    json_t *body_ = xd_json_oom_check(inner(state, err), mark_, err);               \
    return xd_json_finite_check(body_, nf_, err);                                   \
  }
json_t *xd_json_finite_check(json_t *body, unsigned long mark, xd_error_t *err);

#endif

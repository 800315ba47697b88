/* cases.h — the data-driven request suite: tests/requests/{valid,invalid}/<case>.json.
 *
 * A case is {"method", "path", "headers": {..}, "body": <json> | "body_raw": "<text>",
 * "status", "code", "field", "message", "response": <subset>, "tolerance": <relative, for reals>,
 * "equal": [["/json/pointer", "/another"], ...], "http_only": bool}. An error case checks
 * status, code and field; a valid case must check its answer (response and/or equal). The same cases run
 * in-process against the router (test_api) and over HTTP against the real server
 * (test_requests). */
#ifndef XD_TESTS_CASES_H
#define XD_TESTS_CASES_H

#include <jansson.h>
#include <stddef.h>

typedef struct xd_case {
  char name[256];
  json_t *spec;  /* owned */
  char *body;    /* request body text (malloc'd) */
  size_t body_len;
} xd_case_t;

/* Loads every *.json of dir, sorted by name. Returns the count; *out is malloc'd. */
size_t xd_cases_load(const char *dir, xd_case_t **out);
void xd_cases_free(xd_case_t *c, size_t n);

/* Checks a response against a case; prints why not and returns 0 on mismatch. */
int xd_case_check(const xd_case_t *c, int status, const char *body, size_t body_len);

/* 1 when an error message says what would be valid: it holds one of the hint words
 * ("must", "expected", "one of", "at most", "did you mean", ...). Every error case of the
 * suite is held to it; a case may also give "message": a substring the message must hold. */
int xd_error_message_helps(const char *msg);

/* 1 when every key of want (recursively for objects) equals got's; with tol > 0, reals
 * agree within tol relative (absolute below 1). */
int xd_json_subset(const json_t *want, const json_t *got);
int xd_json_subset_tol(const json_t *want, const json_t *got, double tol);

#endif

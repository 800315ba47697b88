/* explain_common.c — targets and seeds of the explanation endpoints. */
#include "api/explain_common.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "api/json.h"
#include "core/alloc.h"

static int one_target(const xd_model_t *m, const json_t *v, const char *field, size_t *out, xd_error_t *err) {
  if (json_is_string(v) && strcmp(json_string_value(v), "predicted") == 0) {
    *out = XD_TARGET_PREDICTED;
    return XD_OK;
  }
  return xd_json_label(m, v, field, out, err);
}

int xd_explain_targets(const xd_model_t *m, const json_t *body, size_t n, size_t *target, xd_error_t *err) {
  json_t *v = json_object_get(body, "target");
  size_t t = XD_TARGET_PREDICTED;
  if (v && json_is_array(v)) {
    if (json_array_size(v) != n)
      return xd_error_set(err, XD_EINVAL, "target", "a list of targets needs one per instance (%zu), got %zu", n,
                          json_array_size(v));
    for (size_t i = 0; i < n; i++) {
      char field[32];
      snprintf(field, sizeof field, "target[%zu]", i);
      int rc = one_target(m, json_array_get(v, i), field, &target[i], err);
      if (rc != XD_OK) return rc;
    }
    return XD_OK;
  }
  if (v && !json_is_null(v)) {
    int rc = one_target(m, v, "target", &t, err);
    if (rc != XD_OK) return rc;
  }
  for (size_t i = 0; i < n; i++) target[i] = t;
  return XD_OK;
}

int xd_explain_seed(const json_t *body, uint64_t *seed, xd_error_t *err) {
  int given = 0;
  int rc = xd_json_opt_seed(body, "seed", seed, &given, err);
  if (rc != XD_OK || given) return rc;
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
    /* no entropy yet: the clock mixed through splitmix64 is enough for a default seed */
    r = (uint64_t)xd_now_ns() + 0x9e3779b97f4a7c15ULL;
    r = (r ^ (r >> 30)) * 0xbf58476d1ce4e5b9ULL;
    r = (r ^ (r >> 27)) * 0x94d049bb133111ebULL;
    r ^= r >> 31;
  }
  *seed = r & ((UINT64_C(1) << 53) - 1);
  return XD_OK;
}

json_t *xd_explain_seed_json(uint64_t seed) {
  return seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)seed) : json_real((double)seed);
}

int xd_explain_resolve_targets(const xd_model_t *m, const double *X, size_t n, size_t *target,
                               const xd_cancel_t *cancel, xd_error_t *err) {
  size_t d = xd_model_n_features(m), K = xd_model_n_outputs(m), need = 0;
  if (xd_model_input_kind(m) == XD_INPUT_IMAGE) d = xd_model_n_inputs(m); /* rows of C*H*W model inputs */
  for (size_t i = 0; i < n; i++) need += target[i] == XD_TARGET_PREDICTED;
  if (!need) return XD_OK;
  double *R = xd_malloc(xd_mul_size(need, d) * sizeof *R), *Y = xd_malloc(xd_mul_size(need, K) * sizeof *Y);
  int rc = XD_OK;
  if (!R || !Y) {
    rc = xd_error_set(err, XD_ENOMEM, NULL, "out of memory");
    goto done;
  }
  for (size_t i = 0, r = 0; i < n; i++)
    if (target[i] == XD_TARGET_PREDICTED) memcpy(R + r++ * d, X + i * d, d * sizeof *R);
  if ((rc = xd_model_predict(m, R, need, Y, cancel, err)) != XD_OK) goto done;
  for (size_t i = 0, r = 0; i < n; i++)
    if (target[i] == XD_TARGET_PREDICTED) target[i] = xd_model_argmax(m, Y + r++ * K);
done:
  xd_free(R);
  xd_free(Y);
  return rc;
}

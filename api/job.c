/* job.c — the inline runner of job.h: the three stages in order on the calling thread. */
#include "api/job.h"

json_t *xd_work_run_inline(const xd_work_t *w, const xd_cancel_t *cancel, xd_error_t *err) {
  for (size_t p = 0; p < w->n_prepare_parts; p++)
    if (w->ops->prepare_part(w->state, p, cancel, err) != XD_OK) return NULL;
  if (w->ops->prepare && w->ops->prepare(w->state, cancel, err) != XD_OK) return NULL;
  for (size_t p = 0; p < w->n_parts; p++)
    if (w->ops->run(w->state, p, cancel, err) != XD_OK) return NULL;
  if (w->ops->encode_cancel) return w->ops->encode_cancel(w->state, cancel, err);
  return w->ops->encode(w->state, err);
}

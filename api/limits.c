/* limits.c — the default request limits (limits.h). */
#include "api/limits.h"

#include "core/graph.h"

void xd_limits_default(xd_limits_t *l) {
  l->max_rows = 10000;
  l->max_samples = 100000;
  l->max_steps = 1024;
  l->max_work_rows = 50000000ULL;
  l->max_background = 10000;
  l->max_nsamples = 100000;
  l->max_repeats = 100;
  l->max_grid = 1000;
  l->max_train_rows = 100000;
  l->train_background = 1000;
  l->max_work_memory = XD_GRAPH_DEFAULT_WORK_MEMORY;
}

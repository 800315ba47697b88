/* metrics.h — Prometheus metrics (text exposition format 0.0.4), names as docs/serving.md §3:
 *
 *   explaind_requests_total{endpoint,model[,method],code}    counter
 *   explaind_request_duration_seconds{endpoint,model[,method]} histogram (whole request)
 *   explaind_queue_duration_seconds{endpoint}                histogram (admitted -> started)
 *   explaind_compute_duration_seconds{endpoint,model}        histogram (worker time)
 *   explaind_rejected_total{endpoint,reason}                 counter (queue_full|draining|too_large|no_memory)
 *   explaind_model_rows_total{endpoint}                      counter (model rows evaluated, estimated)
 *   explaind_lime_score{method}, explaind_ig_convergence_delta{method},
 *   explaind_shap_efficiency_gap{method}                     histograms (explanation quality)
 *   explaind_inflight_jobs, explaind_queue_capacity          gauges (from the server)
 *   explaind_model_info{model,version,sha256}, explaind_models_loaded, explaind_ready
 *   explaind_build_info{version,openblas_config,mhd_version}
 *   process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds,
 *   process_start_time_seconds
 *
 * Recording is thread-safe and cheap (a mutex-protected lookup of a small series table;
 * label values are bounded: models not in the registry are recorded as model="").
 */
#ifndef XD_API_METRICS_H
#define XD_API_METRICS_H

#include <stddef.h>

#include "api/registry.h"
#include "api/response.h"

/* Gauges the server owns; the metrics page asks for them when it renders. */
typedef struct xd_metrics_gauges {
  unsigned (*inflight)(void *ctx);
  unsigned (*capacity)(void *ctx);
  void *ctx;
  const char *mhd_version;
} xd_metrics_gauges_t;

void xd_metrics_set_gauges(const xd_metrics_gauges_t *g);
/* Names the registry whose models may appear as label values (xd_api_new calls it). */
void xd_metrics_set_registry(xd_registry_t *reg);

void xd_metrics_request(const char *endpoint, const char *model, int status, double seconds);
/* The same with the explanation method that ran (a static name from the endpoint's own
 * table, so the label's values are bounded), or NULL for none: requests_total and
 * request_duration_seconds then carry method="...". */
void xd_metrics_request_method(const char *endpoint, const char *model, const char *method, int status,
                               double seconds);
void xd_metrics_queue(const char *endpoint, double seconds);
void xd_metrics_compute(const char *endpoint, const char *model, double seconds, unsigned long long rows);
void xd_metrics_rejected(const char *endpoint, const char *reason);

/* Quality of explanations, one observation per explained row (or LIME label): the
 * method label comes from the endpoint's own table of method names (bounded). Gaps are
 * recorded absolute; NaN is not recorded. */
typedef enum xd_metrics_quality {
  XD_QUALITY_LIME_SCORE, /* R² of the surrogate */
  XD_QUALITY_IG_DELTA,   /* integrated gradients: sum of attributions - (f(x) - f(baseline)) */
  XD_QUALITY_SHAP_GAP,   /* SHAP: sum of values - (f(x) - E f) */
} xd_metrics_quality_t;
void xd_metrics_quality(xd_metrics_quality_t q, const char *method, double value);

/* Renders the exposition text into resp (text/plain; version=0.0.4): the series, the
 * server's gauges, ready (1/0) and reg's models. */
void xd_metrics_render(xd_registry_t *reg, int ready, xd_api_response_t *resp);

#endif

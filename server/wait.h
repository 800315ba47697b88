/* wait.h — waiting on a condition variable until a counter drains, with a timeout. */
#ifndef XD_SERVER_WAIT_H
#define XD_SERVER_WAIT_H

#include <pthread.h>
#include <stdint.h>

/* Waits until *count is 0 or timeout_ms pass (CLOCK_MONOTONIC; cv must be initialized
 * with that clock). mu guards count; cv is signalled when it reaches 0. Returns XD_OK or
 * XD_ETIMEDOUT. Takes and releases mu itself. */
int xd_wait_zero(pthread_mutex_t *mu, pthread_cond_t *cv, const unsigned *count, int64_t timeout_ms);

#endif

/* wait.c — see wait.h. */
#include "server/wait.h"

#include <time.h>

#include "core/status.h"

int xd_wait_zero(pthread_mutex_t *mu, pthread_cond_t *cv, const unsigned *count, int64_t timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  int rc = XD_OK;
  pthread_mutex_lock(mu);
  while (*count > 0)
    if (pthread_cond_timedwait(cv, mu, &until) != 0 && *count > 0) {
      rc = XD_ETIMEDOUT;
      break;
    }
  pthread_mutex_unlock(mu);
  return rc;
}

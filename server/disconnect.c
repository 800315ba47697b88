/* disconnect.c — see disconnect.h. */
#include "server/disconnect.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "server/log.h"

struct xd_disconnect {
  xd_pool_t *pool;
  pthread_mutex_t mu; /* guards the list, the flags below and every listed entry */
  pthread_cond_t cv;
  pthread_t thread;
  int running, stop;
  xd_disconnect_entry_t *head;
};

static int peer_closed(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci || ci->connect_fd == MHD_INVALID_SOCKET) return 0;
  char b;
  ssize_t n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return 0; /* a pipelined next request: still there */
  if (n == 0) return 1;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void *watch_main(void *arg) {
  xd_disconnect_t *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->stop) {
    if (!w->head) {
      pthread_cond_wait(&w->cv, &w->mu);
      continue;
    }
    for (xd_disconnect_entry_t *e = w->head; e; e = e->next) {
      if (e->peer_gone || !peer_closed(e->conn)) continue;
      e->peer_gone = 1;
      xd_error_t err;
      xd_error_set(&err, XD_ECANCELED, NULL, "the client closed the connection before the answer");
      xd_pool_cancel_job(w->pool, e->job, &err);
      xd_log(XD_LOG_INFO, "rid=%s client closed the connection: job canceled", e->rid ? e->rid : "-");
    }
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += XD_DISCONNECT_PERIOD_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cv, &w->mu, &until);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int xd_disconnect_new(xd_pool_t *pool, xd_disconnect_t **out) {
  *out = NULL;
  xd_disconnect_t *w = calloc(1, sizeof *w);
  if (!w) return XD_ENOMEM;
  w->pool = pool;
  pthread_mutex_init(&w->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  *out = w;
  pthread_mutex_lock(&w->mu);
  w->running = pthread_create(&w->thread, NULL, watch_main, w) == 0;
  pthread_mutex_unlock(&w->mu);
  if (!w->running) {
    xd_log(XD_LOG_WARN, "no disconnect watch (cannot start a thread): jobs of clients that leave run to their end");
    return XD_ENOMEM;
  }
  return XD_OK;
}

void xd_disconnect_add(xd_disconnect_t *w, xd_disconnect_entry_t *e, struct MHD_Connection *conn,
                       xd_pool_job_t *job, const char *rid) {
  pthread_mutex_lock(&w->mu);
  if (w->running && !e->finished) {
    e->conn = conn;
    e->job = job;
    e->rid = rid;
    e->prev = NULL;
    e->next = w->head;
    if (w->head) w->head->prev = e;
    else pthread_cond_signal(&w->cv); /* the thread sleeps while the list is empty */
    w->head = e;
    e->listed = 1;
  }
  pthread_mutex_unlock(&w->mu);
}

void xd_disconnect_remove(xd_disconnect_t *w, xd_disconnect_entry_t *e) {
  pthread_mutex_lock(&w->mu);
  e->finished = 1;
  if (e->listed) {
    if (e->prev) e->prev->next = e->next;
    else w->head = e->next;
    if (e->next) e->next->prev = e->prev;
    e->listed = 0;
    e->job = NULL;
  }
  pthread_mutex_unlock(&w->mu);
}

void xd_disconnect_free(xd_disconnect_t *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  if (w->running) pthread_join(w->thread, NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  free(w);
}

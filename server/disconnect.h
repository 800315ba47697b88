/* disconnect.h — notices clients that leave while their job is in the worker pool.
 *
 * libmicrohttpd does not read a suspended connection, so it never notices that the
 * client went away, and the job would run to its end for nobody. One small thread looks
 * at the socket of every listed request every XD_DISCONNECT_PERIOD_MS: recv(MSG_PEEK)
 * returning 0 means the peer closed (FIN), an error such as ECONNRESET means it is gone
 * too. Then the job is canceled through the pool (parts not started are skipped; running
 * ones stop at their next xd_cancel_check), so its slot and worker are free again. The
 * thread sleeps while nothing is listed. A client that half-closes (shutdown(SHUT_WR))
 * and still waits for its answer looks the same as one that left: it gets the canceled
 * job's 503 (HTTP clients do not do this).
 *
 * Lifetime: an entry is listed only between xd_disconnect_add (after the job's submit)
 * and xd_disconnect_remove (from the job's completion, before the connection is
 * resumed), under the watch's lock; so while the thread holds the lock every listed
 * entry, its connection and its job are alive.
 */
#ifndef XD_SERVER_DISCONNECT_H
#define XD_SERVER_DISCONNECT_H

#include <microhttpd.h>

#include "server/pool.h"

#define XD_DISCONNECT_PERIOD_MS 100

typedef struct xd_disconnect xd_disconnect_t;

/* One request's place in the watch; embed it in the request (zeroed). All fields but
 * peer_gone belong to the watch. peer_gone may be read once xd_disconnect_remove returned. */
typedef struct xd_disconnect_entry {
  struct MHD_Connection *conn;
  xd_pool_job_t *job;
  const char *rid; /* for the log line */
  struct xd_disconnect_entry *next, *prev;
  int listed;
  int finished; /* removed: never list it (again) */
  int peer_gone;
} xd_disconnect_entry_t;

/* Starts the watch thread. Returns XD_OK, or XD_ENOMEM when no thread can be started
 * (then *out is still usable and lists nothing: jobs of clients that leave run to their
 * end; logged). */
int xd_disconnect_new(xd_pool_t *pool, xd_disconnect_t **out);

/* Lists e (unless it was removed already: the job may have finished at once). Network
 * thread, right after xd_pool_submit. */
void xd_disconnect_add(xd_disconnect_t *w, xd_disconnect_entry_t *e, struct MHD_Connection *conn,
                       xd_pool_job_t *job, const char *rid);

/* Unlists e; after this the watch no longer touches e, its connection or its job. */
void xd_disconnect_remove(xd_disconnect_t *w, xd_disconnect_entry_t *e);

/* Stops the thread and frees w (NULL is a no-op). Nothing may be listed any more. */
void xd_disconnect_free(xd_disconnect_t *w);

#endif

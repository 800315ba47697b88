/* registry.h — the models being served, by name, reference-counted.
 *
 * A request takes a reference to the model entry it works on (xd_registry_get) and
 * releases it when its job is freed, so replacing or deleting a model never pulls it
 * from under a running explanation: the old entry lives until its last user is done.
 * Lookups take a short mutex; entries themselves are immutable. Any thread.
 */
#ifndef XD_API_REGISTRY_H
#define XD_API_REGISTRY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model.h"

#define XD_MODEL_NAME_MAX 64

typedef struct xd_model_entry {
  char name[XD_MODEL_NAME_MAX + 1];
  xd_model_t *model;     /* owned */
  uint64_t version;      /* increases on every replacement of this name */
  char sha256[65];       /* hex digest of the bundle bytes */
  double loaded_at;      /* Unix time, seconds */
  char *source;          /* file the bundle came from (owned), or NULL */
  atomic_int refs;
} xd_model_entry_t;

typedef struct xd_registry xd_registry_t;

int xd_registry_new(xd_registry_t **out);
void xd_registry_free(xd_registry_t *r); /* releases the registry's references */

/* Returns a new reference to the entry named name, or NULL. Release it. */
xd_model_entry_t *xd_registry_get(xd_registry_t *r, const char *name);
void xd_model_entry_release(xd_model_entry_t *e);

/* Inserts or replaces name with model (ownership of model passes to the registry).
 * The new version is the old one + 1 (1 for a new name, or `version` when non-zero).
 * *replaced is set to 1 when a model of that name existed. */
int xd_registry_put(xd_registry_t *r, const char *name, xd_model_t *model, const char *sha256, const char *source,
                    uint64_t version, int *replaced);
/* Removes name; returns XD_OK or XD_ENOTFOUND. */
int xd_registry_remove(xd_registry_t *r, const char *name);

/* Snapshot of all entries sorted by name: *out is an xd_malloc'd array of n new
 * references; release each and free the array. */
int xd_registry_list(xd_registry_t *r, xd_model_entry_t ***out, size_t *n);
size_t xd_registry_count(xd_registry_t *r);

/* 1 if name matches ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$. */
int xd_model_name_valid(const char *name);

#endif

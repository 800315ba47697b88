/* files.h — whole-file reads and crash-safe writes for the model folder.
 * Any thread; the caller serializes writers of the same name (api/store.h does). */
#ifndef XD_API_FILES_H
#define XD_API_FILES_H

#include <stddef.h>

#include "core/status.h"

/* Reads a whole regular file (at most max bytes, else XD_ETOOBIG) into an xd_malloc'd
 * NUL-terminated buffer the caller frees. XD_EIO when it cannot be read. */
int xd_read_file(const char *path, size_t max, char **data, size_t *len, xd_error_t *err);

/* Writes data to dir/name atomically: a temporary file in dir, fsync, rename over
 * dir/name, fsync of dir. A crash leaves the old file or the new one, never half. */
int xd_write_atomic(const char *dir, const char *name, const char *data, size_t len, xd_error_t *err);

/* fsyncs the folder itself, so that renames and unlinks in it are durable. */
void xd_fsync_dir(const char *dir);

#endif

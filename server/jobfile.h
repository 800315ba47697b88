/* jobfile.h — the files of a batch job (server/jobs.h): durable writes and the reader
 * that recovers a results file after a crash.
 */
#ifndef XD_SERVER_JOBFILE_H
#define XD_SERVER_JOBFILE_H

#include <stddef.h>
#include <stdint.h>

/* Replaces path with text: write to path.tmp, fsync, rename, fsync the folder. A crash
 * leaves either the old file or the new one. Returns XD_OK or XD_EIO (errno set). */
int xd_jobfile_write_atomic(const char *path, const char *text, size_t len);

/* Appends len bytes to fd (opened O_APPEND) and fsyncs. XD_OK or XD_EIO. */
int xd_jobfile_append(int fd, const char *text, size_t len);

/* The "index" of an NDJSON result line (it starts {"index":N, or {"index":N}), or -1. */
long long xd_jobfile_line_index(const char *line, size_t len);

/* The finished prefix of a results file's text: the longest run of whole lines (each
 * ending in '\n') whose "index" members are first, first + 1, ... in order. Returns
 * their count and sets *good to their bytes; what follows (a line torn by a crash, or
 * anything else) is to be cut off. */
size_t xd_jobfile_scan(const char *text, size_t len, uint64_t first, size_t *good);

/* Reads a whole file (at most max bytes) into a new NUL-terminated xd_malloc'd buffer.
 * XD_OK, XD_ENOTFOUND, XD_ETOOBIG, XD_EIO or XD_ENOMEM. */
int xd_jobfile_read(const char *path, size_t max, char **text, size_t *len);

#endif

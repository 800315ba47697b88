/* files.c — whole-file reads and atomic writes (files.h). */
#include "api/files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

int xd_read_file(const char *path, size_t max, char **data, size_t *len, xd_error_t *err) {
  *data = NULL;
  *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp) return xd_error_set(err, XD_EIO, NULL, "cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(fp);
    return xd_error_set(err, XD_EIO, NULL, "%s is not a regular file", path);
  }
  if ((unsigned long long)st.st_size > max) {
    fclose(fp);
    return xd_error_set(err, XD_ETOOBIG, NULL, "%s is larger than %zu bytes", path, max);
  }
  size_t n = (size_t)st.st_size;
  char *buf = xd_malloc(n + 1);
  if (!buf) {
    fclose(fp);
    return xd_error_set(err, XD_ENOMEM, NULL, "out of memory reading %s", path);
  }
  size_t got = fread(buf, 1, n, fp);
  fclose(fp);
  if (got != n) {
    xd_free(buf);
    return xd_error_set(err, XD_EIO, NULL, "short read on %s", path);
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return XD_OK;
}

int xd_write_atomic(const char *dir, const char *name, const char *data, size_t len, xd_error_t *err) {
  /* A temporary name of our own (mkostemp picks one no other writer has), starting with
   * '.' so that the folder's loader never reads it. */
  char tmp[4096], dst[4096];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp.XXXXXX", dir, name);
  snprintf(dst, sizeof dst, "%s/%s", dir, name);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return xd_error_set(err, XD_EIO, NULL, "cannot create %s: %s", tmp, strerror(errno));
  if (fchmod(fd, 0644) != 0) goto fail; /* mkostemp makes it 0600 */
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) goto fail;
    off += (size_t)w;
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, dst) != 0) goto fail;
  xd_fsync_dir(dir); /* make the rename itself durable */
  return XD_OK;
fail:
  {
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    return xd_error_set(err, XD_EIO, NULL, "cannot write %s: %s", dst, strerror(e));
  }
}

void xd_fsync_dir(const char *dir) {
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
}

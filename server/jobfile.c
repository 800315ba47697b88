/* jobfile.c — durable job files (server/jobfile.h). */
#include "server/jobfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/status.h"

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return XD_EIO;
    p += w;
    n -= (size_t)w;
  }
  return XD_OK;
}

int xd_jobfile_write_atomic(const char *path, const char *text, size_t len) {
  char tmp[4200], dir[4200];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return XD_EIO;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return XD_EIO;
  int rc = write_all(fd, text, len);
  if (rc == XD_OK && fsync(fd) != 0) rc = XD_EIO;
  close(fd);
  if (rc == XD_OK && rename(tmp, path) != 0) rc = XD_EIO;
  if (rc != XD_OK) {
    unlink(tmp);
    return rc;
  }
  snprintf(dir, sizeof dir, "%s", path);
  int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { /* the rename itself must survive a power cut */
    fsync(dfd);
    close(dfd);
  }
  return XD_OK;
}

int xd_jobfile_append(int fd, const char *text, size_t len) {
  if (write_all(fd, text, len) != XD_OK) return XD_EIO;
  return fdatasync(fd) == 0 ? XD_OK : XD_EIO;
}

long long xd_jobfile_line_index(const char *line, size_t len) {
  static const char key[] = "{\"index\":";
  if (len < sizeof key || memcmp(line, key, sizeof key - 1) != 0) return -1;
  long long v = 0;
  size_t i = sizeof key - 1, start = i;
  while (i < len && line[i] >= '0' && line[i] <= '9' && i - start < 18) v = v * 10 + (line[i++] - '0');
  return i > start && i < len && (line[i] == ',' || line[i] == '}') ? v : -1;
}

size_t xd_jobfile_scan(const char *text, size_t len, uint64_t first, size_t *good) {
  size_t n = 0, p = 0;
  *good = 0;
  while (p < len) {
    const char *nl = memchr(text + p, '\n', len - p);
    if (!nl) break; /* torn: no newline */
    size_t l = (size_t)(nl - (text + p));
    long long idx = xd_jobfile_line_index(text + p, l);
    if (idx < 0 || (uint64_t)idx != first + n || text[p + l - 1] != '}') break;
    n++;
    p += l + 1;
    *good = p;
  }
  return n;
}

int xd_jobfile_read(const char *path, size_t max, char **text, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? XD_ENOTFOUND : XD_EIO;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return XD_EIO;
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return XD_ETOOBIG;
  }
  size_t n = (size_t)st.st_size, got = 0;
  char *b = xd_malloc(n + 1);
  if (!b) {
    close(fd);
    return XD_ENOMEM;
  }
  while (got < n) {
    ssize_t r = read(fd, b + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  b[got] = '\0';
  *text = b;
  *len = got;
  return XD_OK;
}

/* fuzz_jobfile.c — the reader that recovers a job's results file after a crash
 * (server/jobfile.h: xd_jobfile_scan and xd_jobfile_line_index): for any
 * bytes, the finished prefix it keeps is whole lines ending in '\n', each starting
 * {"index":N with N counting up from the first index, and scanning that prefix again
 * keeps all of it. */
#include <stdlib.h>
#include <string.h>

#include "server/jobfile.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  uint64_t first = size ? data[0] % 4 : 0;
  size_t good = 0, n = xd_jobfile_scan(text, size, first, &good);
  if (good > size || (n == 0) != (good == 0)) abort();
  if (good && text[good - 1] != '\n') abort();
  size_t lines = 0, p = 0;
  while (p < good) {
    const char *nl = memchr(text + p, '\n', good - p);
    if (!nl) abort();
    size_t l = (size_t)(nl - (text + p));
    if (xd_jobfile_line_index(text + p, l) != (long long)(first + lines)) abort();
    lines++;
    p += l + 1;
  }
  if (lines != n) abort();
  size_t good2 = 0;
  if (xd_jobfile_scan(text, good, first, &good2) != n || good2 != good) abort();
  return 0;
}

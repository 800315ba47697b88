/* static.h — the dashboard and the OpenAPI document, served from files embedded in the
 * binary.
 *
 * The build turns every file of web/ into a C array (tools/embed_web.sh writes
 * $(BUILD)/gen/web_assets.c, compiled into libxd.a), so the server needs no files on disk
 * and works offline. Each asset is served at "/<file name>", "/" serves index.html.
 * Answers carry an ETag (CRC and length of the bytes) and `Cache-Control: no-cache`: a
 * browser revalidates on every load and gets 304 while the binary is unchanged, so a new
 * deployment is picked up at once.
 */
#ifndef XD_API_STATIC_H
#define XD_API_STATIC_H

#include <stddef.h>

#include "api/response.h"

/* One embedded file; the table is generated at build time. */
typedef struct xd_static_asset {
  const char *path;          /* "/index.html" */
  const unsigned char *data; /* len bytes (followed by a NUL not counted in len) */
  size_t len;
  const char *etag;          /* quoted, e.g. "\"123-456\"" */
} xd_static_asset_t;

extern const xd_static_asset_t xd_static_assets[];
extern const size_t xd_static_n_assets;

/* The embedded file served at path ("/" is "/index.html"), or NULL. Borrowed, static. */
const xd_static_asset_t *xd_static_find(const char *path);

/* GET/HEAD of an embedded file is answered by xd_static_answer (api/endpoints.h, a row
 * of the route table matched through xd_static_find): 200 (or 304 when If-None-Match
 * matches the ETag) with the file, its Content-Type, Cache-Control, ETag and
 * Content-Security-Policy. The body is xd_malloc'd. Any thread; reads only static data. */

#endif

/* bundle_graph.h — the graph-model part of a bundle (MODEL_FORMAT "Graph models"):
 * "onnx", "input" (image or text), "output" and a background of pictures or texts,
 * decoded into xd_model_spec_t.graph. api/bundle.c calls it when a bundle has "input".
 *
 * Every error names its bundle path ("input.tokenizer.model.vocab", "background.images[3]",
 * "input.mean[1]"). File names are relative to the bundle's folder (no "..", no absolute
 * path); an upload (dir NULL) must carry its pictures inline ({"b64": ...}) and its
 * tokenizer as an object. Any thread.
 */
#ifndef XD_API_BUNDLE_GRAPH_H
#define XD_API_BUNDLE_GRAPH_H

#include <jansson.h>

#include "core/model.h"
#include "core/sha256.h"

/* Bounds of a graph bundle's background. */
#define XD_BUNDLE_MAX_BG_IMAGES 4096
#define XD_BUNDLE_MAX_BG_TEXTS 100000
#define XD_BUNDLE_MAX_BG_VALUES ((size_t)1 << 27) /* background images x C*H*W */
/* Bytes of one picture file, and of its decoded pixels. */
#define XD_BUNDLE_MAX_IMAGE_BYTES ((size_t)64 << 20)

/* Decodes root's graph-model keys into s->graph (s->task and classes already decoded).
 * onnx/onnx_len: the uploaded graph, or NULL to read root's "onnx" file from dir.
 * Returns XD_OK, XD_EFORMAT (bad bundle) or XD_ENOMEM. */
int xd_bundle_graph_decode(const json_t *root, const char *dir, const void *onnx, size_t onnx_len,
                           xd_model_spec_t *s, xd_error_t *err);

/* Adds the files a graph bundle names (tokenizer, background pictures) to a bundle digest. */
void xd_bundle_graph_digest(xd_sha256_t *c, const json_t *root, const char *dir);

#endif

/* onnx.h — ONNX import: a serialized ONNX ModelProto holding a dense network -> dense
 * layer specs (core/model.h) ready for xd_model_new.
 *
 * Parsing uses protobuf-c with C code generated at build time from the onnx.proto of
 * Debian's libonnx-dev (see the Makefile); the generated types stay inside onnx.c.
 * The conversion walks the graph in its (topological) order and keeps, for the tensor
 * each node produces, an affine map of the last layer's output (or the graph input):
 * Gemm/MatMul start a new map, Add/Sub/Mul/Div/Neg by constants fold into the pending
 * one (normalization before a layer, rescaling after it), and every activation turns the
 * pending map into a layer. What is accepted (docs/onnx.md):
 *   Gemm (transA 0; transB, alpha, beta), MatMul + Add, Relu, LeakyRelu (alpha 0.01),
 *   Tanh, Sigmoid, Softplus, Gelu (none/tanh), the Erf form of GELU
 *   x·0.5·(1+erf(x/√2)) in any order of its Muls, Softmax (last, axis 1/-1),
 *   BatchNormalization (inference), Flatten (axis 1), Reshape to (batch, width),
 *   Identity, Dropout, Neg, Constant, and Add/Sub/Mul/Div of a computed tensor by a
 *   constant (scalar or one value per column);
 *   initializers in raw_data or typed (float_data, double_data, int64_data, int32_data)
 *   form; the default domain at opsets 9–21 (tested with 9, 11, 13 and 17).
 * Anything else — another operator, a branch or skip connection, a shape the dense
 * family cannot express — is an XD_EFORMAT error with field "onnx" whose text names the
 * node, its op type and the reason: "node '/0/Conv' (Conv): unsupported operator ...".
 *
 * Every count read from the file is bounded (the XD_ONNX_MAX_* below, and protobuf
 * nesting and message counts before protobuf-c allocates anything), so a truncated,
 * corrupted or hostile file is an error, never a crash or an unbounded allocation.
 * Pure function of its input; any thread.
 */
#ifndef XD_ONNX_H
#define XD_ONNX_H

#include <stddef.h>

#include "core/graph.h"
#include "core/model.h"
#include "core/status.h"

#define XD_ONNX_MAX_NODES 4096
#define XD_ONNX_MAX_INITIALIZERS 4096
#define XD_ONNX_MAX_LAYERS 64           /* same bound as a JSON bundle's layers */
#define XD_ONNX_MAX_WIDTH 16384         /* units per layer, like a JSON bundle */
#define XD_ONNX_MAX_ELEMENTS (1u << 26) /* values in one tensor */
#define XD_ONNX_OPSET_MIN 9
#define XD_ONNX_OPSET_MAX 21

/* Converts the ONNX model in bytes[0..len) into dense layers.
 * n_inputs is the input width the caller expects (numeric features plus one-hot
 * categories, i.e. what layer 1 sees), or 0 to take it from the graph: a graph whose
 * input declares another width is rejected; a symbolic width is taken to be n_inputs.
 * On success returns XD_OK with *layers an xd_malloc'd array of *n_layers specs whose
 * weights and bias are xd_malloc'd too, owned by the caller (put them in an
 * xd_model_spec_t, or free them with xd_onnx_layers_free). On failure returns
 * XD_EFORMAT (field "onnx") or XD_ENOMEM, with *layers NULL and *n_layers 0. */
int xd_onnx_to_layers(const void *bytes, size_t len, size_t n_inputs, xd_layer_spec_t **layers, size_t *n_layers,
                      xd_error_t *err);

/* Imports any ONNX model: a chain of dense layers becomes dense layer specs exactly as
 * xd_onnx_to_layers (so tabular models keep the dense family's speed); any other graph
 * is loaded by the graph engine (core/graph.h, xd_graph_from_onnx). On success exactly
 * one of *layers (with *n_layers) or *graph is set, owned by the caller. When neither
 * accepts the model, the graph engine's error is returned (it names the node and its
 * operator), except for a one-input (batch, width) graph of another width than
 * n_inputs, where the dense converter's width error stands. (onnx_graph.c) */
int xd_onnx_import(const void *bytes, size_t len, size_t n_inputs, xd_layer_spec_t **layers, size_t *n_layers,
                   xd_graph_t **graph, xd_error_t *err);

/* Frees what xd_onnx_to_layers returned; NULL is a no-op. */
void xd_onnx_layers_free(xd_layer_spec_t *layers, size_t n_layers);

#endif

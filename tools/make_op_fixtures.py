#!/usr/bin/python3
"""Write one small ONNX graph per operator variant, for comparing the graph engine with ONNX Runtime.

Usage (from the repo root):   /usr/bin/python3 tools/make_op_fixtures.py
Dependencies (Debian):        apt-get install python3-onnx   (numpy)

For each case NAME it writes into tests/onnx/ops/
  NAME.onnx   a graph built with onnx.helper (opsets 13-17) around one operator (a few
              around the shape operators that only make sense together); weights are
              initializers drawn from a fixed seed
  NAME.json   {"opset", "op", "inputs": [{"name", "dtype", "shape", "low", "high"}]}: the test
              feeds random inputs of that shape, float32 uniform in [low, high), int64
              uniform in [low, high] (inclusive), bool 0/1, to both the engine and ONNX
              Runtime (tests/onnxrt/run.mjs) and compares every graph output.
Graph inputs have a symbolic first dimension where the operator allows it. When
tests/onnxrt is installed (make onnxrt-deps) every case is run once by ONNX Runtime here, so
a fixture the runtime refuses never gets written.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "onnx", "ops")
DTYPE = {"float32": TP.FLOAT, "int64": TP.INT64, "bool": TP.BOOL}
rng = np.random.default_rng(0)
CASES = []


def W(name, *shape, scale=0.5):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def I64(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def F32(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def inp(name, shape, dtype="float32", low=-2.0, high=2.0, sym=None):
    """A graph input: `shape` concrete (fed by the tests), `sym` the declared shape (default: first dim 'N')."""
    declared = sym if sym is not None else (["N"] + list(shape[1:]) if shape else [])
    return {"name": name, "dtype": dtype, "shape": list(shape), "low": low, "high": high, "declared": declared}


def case(name, op, nodes, inputs, outputs, inits=(), opset=13):
    """outputs: [(name, dtype)]; shapes of outputs are left to inference (rank unknown is fine)."""
    CASES.append((name, op, nodes, inputs, outputs, list(inits), opset))


def node(op, ins, outs, **attrs):
    return H.make_node(op, ins, outs, name=f"{op.lower()}_{outs[0]}", **attrs)


# ---- convolution, pooling, normalization ------------------------------------------------------
for nm, attrs, cin, cout, hw in [
        ("conv_basic", {}, 3, 4, 8),
        ("conv_pads_strides", {"pads": [1, 2, 0, 1], "strides": [2, 1]}, 3, 5, 9),
        ("conv_dilations", {"dilations": [2, 2], "pads": [2, 2, 2, 2]}, 2, 3, 10),
        ("conv_groups", {"group": 2, "pads": [1, 1, 1, 1]}, 4, 6, 7),
        ("conv_depthwise", {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}, 4, 4, 8),
        ("conv_same_upper", {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, 3, 4, 7),
        ("conv_1x1", {"kernel_shape": [1, 1]}, 5, 3, 6)]:
    k = attrs.get("kernel_shape", [3, 3])
    g = attrs.get("group", 1)
    inits = [W("w", cout, cin // g, *k)] + ([W("b", cout)] if nm != "conv_groups" else [])
    case(nm, "Conv", [node("Conv", ["x", "w"] + (["b"] if len(inits) > 1 else []), ["y"], **attrs)],
         [inp("x", [2, cin, hw, hw])], [("y", "float32")], inits)
case("conv1d", "Conv", [node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1], strides=[2])],
     [inp("x", [2, 3, 11])], [("y", "float32")], [W("w", 4, 3, 3), W("b", 4)])

for nm, attrs in [("maxpool_basic", {"kernel_shape": [2, 2], "strides": [2, 2]}),
                  ("maxpool_ceil_pads", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
                  ("maxpool_dilations", {"kernel_shape": [2, 2], "dilations": [2, 2]}),
                  ("avgpool_basic", {"kernel_shape": [2, 2], "strides": [2, 2]}),
                  ("avgpool_pads_exclude", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
                  ("avgpool_pads_include", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                            "count_include_pad": 1}),
                  ("avgpool_ceil", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})]:
    op = "MaxPool" if nm.startswith("max") else "AveragePool"
    case(nm, op, [node(op, ["x"], ["y"], **attrs)], [inp("x", [2, 3, 9, 9])], [("y", "float32")])
case("global_avgpool", "GlobalAveragePool", [node("GlobalAveragePool", ["x"], ["y"])],
     [inp("x", [2, 4, 5, 6])], [("y", "float32")])
case("batchnorm", "BatchNormalization", [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
     [inp("x", [2, 4, 5, 5])], [("y", "float32")],
     [W("s", 4), W("b", 4), W("m", 4), F32("v", rng.uniform(0.5, 2.0, 4))], opset=15)
case("layernorm_last", "LayerNormalization", [node("LayerNormalization", ["x", "s", "b"], ["y"], epsilon=1e-5)],
     [inp("x", [2, 5, 8])], [("y", "float32")], [W("s", 8), W("b", 8)], opset=17)
case("layernorm_axis_neg2", "LayerNormalization",
     [node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-2, epsilon=1e-5)],
     [inp("x", [2, 5, 8])], [("y", "float32")], [W("s", 5, 8), W("b", 5, 8)], opset=17)
case("layernorm_noscale_bias", "LayerNormalization", [node("LayerNormalization", ["x", "s"], ["y"], axis=1)],
     [inp("x", [3, 4, 6])], [("y", "float32")], [W("s", 4, 6)], opset=17)

# ---- dense ------------------------------------------------------------------------------------
for nm, attrs, a_shape, b_shape, c_shape in [
        ("gemm_basic", {}, [4, 5], [5, 3], [3]),
        ("gemm_transB", {"transB": 1}, [4, 5], [3, 5], [1, 3]),
        ("gemm_transA", {"transA": 1}, [5, 4], [5, 3], [4, 3]),
        ("gemm_alpha_beta", {"alpha": 0.5, "beta": 2.0, "transB": 1}, [4, 5], [3, 5], [4, 1]),
        ("gemm_scalar_c", {"transA": 1, "transB": 1}, [5, 4], [3, 5], [])]:
    case(nm, "Gemm", [node("Gemm", ["a", "B", "C"], ["y"], **attrs)],
         # a C with M rows ([4, 1]) ties the batch to 4: then the graph says so
         [inp("a", a_shape, sym=a_shape if attrs.get("transA") or c_shape[:1] == [4] else None)], [("y", "float32")],
         [W("B", *b_shape), W("C", *c_shape)] if c_shape else [W("B", *b_shape), F32("C", 0.3)])
case("gemm_no_c", "Gemm", [node("Gemm", ["a", "B"], ["y"], transB=1)], [inp("a", [4, 5])], [("y", "float32")],
     [W("B", 3, 5)])
case("matmul_2d", "MatMul", [node("MatMul", ["a", "B"], ["y"])], [inp("a", [4, 5])], [("y", "float32")], [W("B", 5, 3)])
case("matmul_3d_by_2d", "MatMul", [node("MatMul", ["a", "B"], ["y"])], [inp("a", [2, 4, 5])], [("y", "float32")],
     [W("B", 5, 3)])
case("matmul_batched_4d", "MatMul", [node("MatMul", ["a", "b"], ["y"])],
     [inp("a", [2, 3, 4, 5]), inp("b", [2, 3, 5, 6])], [("y", "float32")])
case("matmul_broadcast", "MatMul", [node("MatMul", ["a", "b"], ["y"])],
     [inp("a", [2, 3, 4, 5]), inp("b", [1, 5, 2], sym=[1, 5, 2])], [("y", "float32")])
case("flatten_axis1", "Flatten", [node("Flatten", ["x"], ["y"])], [inp("x", [2, 3, 4, 5])], [("y", "float32")])
case("flatten_axis2", "Flatten", [node("Flatten", ["x"], ["y"], axis=2)], [inp("x", [2, 3, 4, 5])], [("y", "float32")])

# ---- elementwise ------------------------------------------------------------------------------
for op in ["Add", "Sub", "Mul", "Div"]:
    case(f"{op.lower()}_broadcast", op, [node(op, ["a", "b"], ["y"])],
         [inp("a", [2, 3, 4]), inp("b", [3, 1], sym=[3, 1], low=0.5, high=2.0)], [("y", "float32")])
    case(f"{op.lower()}_const_left", op, [node(op, ["c", "a"], ["y"])],
         [inp("a", [2, 4], low=0.5, high=2.0)], [("y", "float32")], [W("c", 4)])
case("add_scalar_rank0", "Add", [node("Add", ["a", "c"], ["y"])], [inp("a", [2, 3])], [("y", "float32")],
     [F32("c", 1.5)])
case("mul_both_broadcast", "Mul", [node("Mul", ["a", "b"], ["y"])],
     [inp("a", [2, 1, 4]), inp("b", [1, 3, 1], sym=[1, 3, 1])], [("y", "float32")])
case("pow_square", "Pow", [node("Pow", ["a", "e"], ["y"])], [inp("a", [2, 5])], [("y", "float32")], [F32("e", 2.0)])
case("pow_fractional", "Pow", [node("Pow", ["a", "e"], ["y"])], [inp("a", [2, 5], low=0.1, high=3.0)],
     [("y", "float32")], [F32("e", [0.5, 1.5, 3.0, -1.0, 2.5])])
for op, lo, hi in [("Sqrt", 0.01, 4.0), ("Erf", -3, 3), ("Tanh", -3, 3), ("Sigmoid", -6, 6), ("Relu", -2, 2),
                   ("Exp", -3, 3), ("Log", 0.01, 5), ("Neg", -2, 2), ("Abs", -2, 2), ("Identity", -2, 2)]:
    case(op.lower(), op, [node(op, ["x"], ["y"])], [inp("x", [2, 3, 4], low=lo, high=hi)], [("y", "float32")])
case("leaky_relu", "LeakyRelu", [node("LeakyRelu", ["x"], ["y"], alpha=0.2)], [inp("x", [2, 6])], [("y", "float32")])
case("softmax_last", "Softmax", [node("Softmax", ["x"], ["y"])], [inp("x", [2, 3, 5], low=-5, high=5)],
     [("y", "float32")])
case("softmax_axis1", "Softmax", [node("Softmax", ["x"], ["y"], axis=1)], [inp("x", [2, 3, 5], low=-5, high=5)],
     [("y", "float32")])
case("softmax_axis0_4d", "Softmax", [node("Softmax", ["x"], ["y"], axis=-4)], [inp("x", [2, 3, 4, 2], low=-5, high=5)],
     [("y", "float32")])
case("log_softmax", "LogSoftmax", [node("LogSoftmax", ["x"], ["y"], axis=-1)], [inp("x", [3, 4], low=-5, high=5)],
     [("y", "float32")])

# ---- reductions -------------------------------------------------------------------------------
case("reducemean_last_keep", "ReduceMean", [node("ReduceMean", ["x"], ["y"], axes=[-1])], [inp("x", [2, 3, 4])],
     [("y", "float32")])
case("reducemean_axes_nokeep", "ReduceMean", [node("ReduceMean", ["x"], ["y"], axes=[1, 2], keepdims=0)],
     [inp("x", [2, 3, 4])], [("y", "float32")])
case("reducemean_all", "ReduceMean", [node("ReduceMean", ["x"], ["y"], keepdims=0)], [inp("x", [2, 3, 4])],
     [("y", "float32")])
case("reducesum_axes_input", "ReduceSum", [node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
     [inp("x", [2, 3, 4])], [("y", "float32")], [I64("axes", [0, -1])])
case("reducesum_nokeep", "ReduceSum", [node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
     [inp("x", [2, 3, 4])], [("y", "float32")], [I64("axes", [1])])

# ---- shapes -----------------------------------------------------------------------------------
case("transpose_perm", "Transpose", [node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], [inp("x", [2, 3, 4, 5])],
     [("y", "float32")])
case("transpose_default", "Transpose", [node("Transpose", ["x"], ["y"])], [inp("x", [2, 3, 4])], [("y", "float32")])
case("reshape_zero_minus1", "Reshape", [node("Reshape", ["x", "s"], ["y"])], [inp("x", [2, 3, 4, 5])],
     [("y", "float32")], [I64("s", [0, -1, 5])])
case("unsqueeze_input_axes", "Unsqueeze", [node("Unsqueeze", ["x", "a"], ["y"])], [inp("x", [2, 3])],
     [("y", "float32")], [I64("a", [1, -1])])
case("squeeze_input_axes", "Squeeze", [node("Squeeze", ["x", "a"], ["y"])], [inp("x", [2, 1, 3, 1])],
     [("y", "float32")], [I64("a", [-1, 1])])
case("squeeze_all", "Squeeze", [node("Squeeze", ["x"], ["y"])], [inp("x", [1, 3, 1, 4], sym=[1, 3, 1, 4])],
     [("y", "float32")])
case("concat_axis1", "Concat", [node("Concat", ["a", "b", "c"], ["y"], axis=1)],
     [inp("a", [2, 3, 4]), inp("b", [2, 1, 4]), inp("c", [2, 2, 4])], [("y", "float32")])
case("concat_neg_axis_init", "Concat", [node("Concat", ["a", "k"], ["y"], axis=-1)], [inp("a", [2, 3], sym=[2, 3])],
     [("y", "float32")], [W("k", 2, 2)])
for nm, starts, ends, axes, steps in [
        ("slice_basic", [1], [3], [1], None),
        ("slice_negative", [-3, 0], [-1, 100], [2, 1], None),
        ("slice_omitted_axes", [0, 1, 1], [2, 3, 5], None, None),
        ("slice_steps", [0, 4], [3, 0], [1, 2], [2, -2]),
        ("slice_neg_step_to_start", [-1], [-1000], [2], [-1])]:
    ins = ["x", "st", "en"] + (["ax"] if axes is not None else []) + (["sp"] if steps is not None else [])
    if steps is not None and axes is None:
        ins.insert(3, "")
    inits = [I64("st", starts), I64("en", ends)] + ([I64("ax", axes)] if axes is not None else []) + \
        ([I64("sp", steps)] if steps is not None else [])
    case(nm, "Slice", [node("Slice", ins, ["y"])], [inp("x", [2, 4, 6])], [("y", "float32")], inits)
case("split_equal", "Split", [node("Split", ["x"], ["y1", "y2", "y3"], axis=-1)], [inp("x", [2, 6])],
     [("y1", "float32"), ("y2", "float32"), ("y3", "float32")])
case("split_sizes_input", "Split", [node("Split", ["x", "s"], ["y1", "y2"], axis=1)], [inp("x", [2, 5, 3])],
     [("y1", "float32"), ("y2", "float32")], [I64("s", [2, 3])])
case("gather_axis0", "Gather", [node("Gather", ["E", "i"], ["y"])],
     [inp("i", [2, 5], dtype="int64", low=0, high=9, sym=["N", "T"])], [("y", "float32")], [W("E", 10, 4)])
case("gather_axis1_negative", "Gather", [node("Gather", ["x", "i"], ["y"], axis=1)], [inp("x", [2, 5, 3])],
     [("y", "float32")], [I64("i", [[0, -1], [2, -5]])])
case("gather_scalar_index", "Gather", [node("Gather", ["x", "i"], ["y"], axis=1)], [inp("x", [2, 5, 3])],
     [("y", "float32")], [I64("i", 0)])
case("shape_gather_reshape", "Shape", [
    node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["n"], axis=0),
    node("Unsqueeze", ["n", "ax0"], ["n1"]), node("Concat", ["n1", "minus1"], ["shp"], axis=0),
    node("Reshape", ["x", "shp"], ["y"])],
    [inp("x", [3, 2, 4])], [("y", "float32"), ("s", "int64")],
    [I64("zero", 0), I64("ax0", [0]), I64("minus1", [-1])])
case("expand_from_shape", "Expand", [node("Shape", ["x"], ["s"]), node("Expand", ["b", "s"], ["e"]),
                                     node("Add", ["x", "e"], ["y"])],
     [inp("x", [2, 3, 4])], [("y", "float32")], [W("b", 1, 4)])
case("expand_bigger", "Expand", [node("Expand", ["x", "s"], ["y"])], [inp("x", [3, 1], sym=[3, 1])],
     [("y", "float32")], [I64("s", [2, 1, 4])])
case("where_equal_cast", "Where", [
    node("Equal", ["i", "zero"], ["c"]), node("Where", ["c", "neg", "x"], ["y"]),
    node("Cast", ["c"], ["cf"], to=TP.FLOAT)],
    [inp("i", [2, 6], dtype="int64", low=0, high=2), inp("x", [2, 6])], [("y", "float32"), ("cf", "float32"),
                                                                          ("c", "bool")],
    [I64("zero", 0), F32("neg", -10000.0)])
case("where_bool_input", "Where", [node("Where", ["c", "a", "b"], ["y"])],
     [inp("c", [2, 1, 4], dtype="bool", low=0, high=1), inp("a", [2, 3, 4]), inp("b", [1, 4], sym=[1, 4])],
     [("y", "float32")])
case("cast_int_float", "Cast", [node("Cast", ["i"], ["f"], to=TP.FLOAT), node("Cast", ["x"], ["k"], to=TP.INT64)],
     [inp("i", [2, 3], dtype="int64", low=-5, high=5), inp("x", [2, 3], low=-3, high=3)],
     [("f", "float32"), ("k", "int64")])
case("constant_of_shape", "ConstantOfShape", [
    node("Shape", ["x"], ["s"]), node("ConstantOfShape", ["s"], ["z"], value=onnx.helper.make_tensor("v", TP.FLOAT, [1], [0.5])),
    node("Mul", ["x", "z"], ["y"])],
    [inp("x", [2, 3])], [("y", "float32")])
case("constant_of_shape_default", "ConstantOfShape", [
    node("ConstantOfShape", ["s"], ["z"]), node("Add", ["x", "z"], ["y"])],
    [inp("x", [2, 3])], [("y", "float32")], [I64("s", [1, 3])])
case("range_from_shape", "Range", [
    node("Shape", ["x"], ["s"]), node("Gather", ["s", "one"], ["t"], axis=0),
    node("Range", ["zero", "t", "step"], ["r"]), node("Cast", ["r"], ["rf"], to=TP.FLOAT),
    node("Add", ["x", "rf"], ["y"])],
    [inp("x", [2, 7])], [("y", "float32"), ("r", "int64")], [I64("one", 1), I64("zero", 0), I64("step", 1)])
case("range_float_negative", "Range", [node("Range", ["a", "b", "d"], ["r"]), node("Add", ["x", "r"], ["y"])],
     [inp("x", [2, 4])], [("y", "float32")], [F32("a", 3.0), F32("b", 0.5), F32("d", -0.75)])
case("constant_node", "Constant", [node("Constant", [], ["c"], value=onnx.helper.make_tensor("v", TP.FLOAT, [3], [1, 2, 3])),
                                   node("Mul", ["x", "c"], ["y"])], [inp("x", [2, 3])], [("y", "float32")])

# ---- attention as torch exports it (mask bias, scaled scores, softmax) -----------------------
case("attention_mask_pattern", "Softmax", [
    node("Unsqueeze", ["m", "ax12"], ["m4"]), node("Cast", ["m4"], ["mf"], to=TP.FLOAT),
    node("Sub", ["one", "mf"], ["inv"]), node("Mul", ["inv", "big"], ["bias"]),
    node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), node("MatMul", ["q", "kt"], ["s"]),
    node("Div", ["s", "sq"], ["ss"]), node("Add", ["ss", "bias"], ["sb"]),
    node("Softmax", ["sb"], ["p"], axis=-1), node("MatMul", ["p", "v"], ["y"])],
    [inp("q", [2, 2, 5, 4]), inp("k", [2, 2, 5, 4]), inp("v", [2, 2, 5, 4]),
     inp("m", [2, 5], dtype="int64", low=0, high=1)], [("y", "float32")],
    [I64("ax12", [1, 2]), F32("one", 1.0), F32("big", -10000.0), F32("sq", 2.0)])

# ---- recurrent --------------------------------------------------------------------------------
def gru(nm, direction, lbr, hidden=4, n_in=3, init_h=False, opset=14):
    d = 2 if direction == "bidirectional" else 1
    ins = ["x", "W", "R", "B", "", "h0"] if init_h else ["x", "W", "R", "B"]
    inputs = [inp("x", [5, 2, n_in], sym=["T", "N", n_in])]
    if init_h:
        inputs.append(inp("h0", [d, 2, hidden], sym=[d, "N", hidden]))
    case(nm, "GRU", [node("GRU", ins, ["y", "yh"], hidden_size=hidden, direction=direction,
                          linear_before_reset=lbr)],
         inputs, [("y", "float32"), ("yh", "float32")],
         [W("W", d, 3 * hidden, n_in), W("R", d, 3 * hidden, hidden), W("B", d, 6 * hidden)], opset)


gru("gru_forward_lbr0", "forward", 0)
gru("gru_forward_lbr1", "forward", 1)
gru("gru_reverse_lbr1", "reverse", 1)
gru("gru_bidirectional_lbr1_h0", "bidirectional", 1, init_h=True)
gru("gru_bidirectional_lbr0", "bidirectional", 0)


def lstm(nm, direction, hidden=4, n_in=3, init=False):
    d = 2 if direction == "bidirectional" else 1
    ins = ["x", "W", "R", "B", "", "h0", "c0"] if init else ["x", "W", "R", "B"]
    inputs = [inp("x", [5, 2, n_in], sym=["T", "N", n_in])]
    if init:
        inputs += [inp("h0", [d, 2, hidden], sym=[d, "N", hidden]), inp("c0", [d, 2, hidden], sym=[d, "N", hidden])]
    case(nm, "LSTM", [node("LSTM", ins, ["y", "yh", "yc"], hidden_size=hidden, direction=direction)],
         inputs, [("y", "float32"), ("yh", "float32"), ("yc", "float32")],
         [W("W", d, 4 * hidden, n_in), W("R", d, 4 * hidden, hidden), W("B", d, 8 * hidden)], 14)


lstm("lstm_forward", "forward")
lstm("lstm_bidirectional", "bidirectional")
lstm("lstm_bidirectional_init", "bidirectional", init=True)


# ---- writing and checking ----------------------------------------------------------------------
def random_feeds(inputs, g):
    feeds = {}
    for i in inputs:
        if i["dtype"] == "float32":
            v = g.uniform(i["low"], i["high"], size=i["shape"]).astype(np.float32)
        elif i["dtype"] == "int64":
            v = g.integers(i["low"], i["high"] + 1, size=i["shape"]).astype(np.int64)
        else:
            v = g.integers(0, 2, size=i["shape"]).astype(bool)
        feeds[i["name"]] = {"dtype": i["dtype"], "shape": i["shape"],
                            "data": [bool(x) if i["dtype"] == "bool" else x for x in v.ravel().tolist()]}
    return feeds


def ort_check(onnx_path, inputs):
    runner = os.path.join(ROOT, "tests", "onnxrt", "run.mjs")
    if not os.path.exists(os.path.join(ROOT, "tests", "onnxrt", "node_modules", "onnxruntime-node")):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(random_feeds(inputs, np.random.default_rng(1)), f)
    try:
        r = subprocess.run(["node", runner, onnx_path, f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        sys.exit(f"{onnx_path}: ONNX Runtime refused it: {r.stderr.strip()}")
    return {k: v["shape"] for k, v in json.loads(r.stdout).items()}


def declare_outputs(model, ort_shapes):
    """Give every graph output the shape that shape inference finds (else the rank ONNX Runtime
    gave), with named (symbolic) dimensions where the size is not a constant."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    types = {v.name: v.type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for o in model.graph.output:
        t = types[o.name].tensor_type
        if t.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else f"{o.name}_{k}" for k, d in enumerate(t.shape.dim)]
        elif ort_shapes is not None:
            dims = [f"{o.name}_{k}" for k in range(len(ort_shapes[o.name]))]
        else:
            sys.exit(f"{model.graph.name}: no shape inferred for output {o.name} (install tests/onnxrt)")
        o.CopyFrom(H.make_tensor_value_info(o.name, t.elem_type, dims))


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".onnx", ".json")):
            os.unlink(os.path.join(OUT, f))
    checked = 0
    for name, op, nodes, inputs, outputs, inits, opset in CASES:
        graph = H.make_graph(
            nodes, name,
            [H.make_tensor_value_info(i["name"], DTYPE[i["dtype"]], i["declared"]) for i in inputs],
            [H.make_tensor_value_info(o, DTYPE[t], None) for o, t in outputs], inits)
        model = H.make_model(graph, opset_imports=[H.make_opsetid("", opset)], producer_name="make_op_fixtures")
        model.ir_version = 8
        path = os.path.join(OUT, name + ".onnx")
        onnx.save(model, path)
        shapes = ort_check(path, inputs)
        declare_outputs(model, shapes)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, path)
        spec = {"opset": opset, "op": op,
                "inputs": [{k: i[k] for k in ("name", "dtype", "shape", "low", "high")} for i in inputs]}
        if shapes is not None:
            spec["output_shapes"] = shapes
            checked += 1
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            f.write(json.dumps(spec) + "\n")
    ops = sorted({c[1] for c in CASES} | {n.op_type for c in CASES for n in c[2]})
    print(f"{len(CASES)} cases ({checked} run by ONNX Runtime), operators: {', '.join(ops)}")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Export small PyTorch networks to ONNX and freeze what the C ONNX importer must reproduce.

Usage (from the repo root):   /usr/bin/python3 tools/make_onnx_fixtures.py
Dependencies (Debian):        apt-get install python3-torch python3-onnx
Made with torch 1.13.1 and onnx 1.12.0 (Debian bookworm); other versions export slightly
different graphs (node names, Constant nodes vs initializers), which is part of the point:
the importer must accept what the exporters produce, so rerun tests/test_onnx after
regenerating.

For each valid fixture NAME it writes into tests/onnx/
  NAME.onnx            the exported graph (torch.onnx.export, then optionally rewritten
                       with onnx.helper: typed float_data instead of raw_data)
  NAME.json            a bundle (explaind.model/v1) with "onnx": "NAME.onnx"
  NAME.expected.json   {"inputs": raw feature rows, "outputs": the model's outputs}
                       computed by PyTorch in float32 (classification: the probability of
                       every class; a single sigmoid unit gives [1-p, p]; regression: [y])
and for each invalid one a bundle bad_NAME.json (+ bad_NAME.onnx) listed in
tests/onnx/invalid.json with the error code, field and a fragment of the error text.
"""
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "onnx")
N_ROWS = 6  # fixed inputs per fixture


def features(n):
    return [{"name": f"x{i}"} for i in range(n)]


class Normalize(nn.Module):
    """(x - mean) / std inside the graph: exported as Sub and Div by constants."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std


class MatMulAdd(nn.Module):
    """x @ W + b with W stored (in, out): exported as MatMul + Add, not Gemm."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in, n_out) * 0.5)
        self.b = nn.Parameter(torch.randn(n_out) * 0.1)

    def forward(self, x):
        return torch.matmul(x, self.w) + self.b


class Scale(nn.Module):
    """y * s + m after the last layer (a regression target's de-standardization)."""

    def __init__(self, s, m):
        super().__init__()
        self.s, self.m = s, m

    def forward(self, x):
        return x * self.s + self.m


class Residual(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.lin = nn.Linear(n, n)

    def forward(self, x):
        return x + torch.relu(self.lin(x))


def export(model, n_in, path, opset, input_shape=None, inits_as_inputs=False):
    model.eval()
    shape = input_shape or (1, n_in)
    dummy = torch.zeros(*shape)
    torch.onnx.export(model, dummy, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True,
                      keep_initializers_as_inputs=inits_as_inputs)


def to_typed(path):
    """Rewrite every float initializer from raw_data into typed float_data."""
    m = onnx.load(path)
    for i, t in enumerate(m.graph.initializer):
        arr = numpy_helper.to_array(t)
        if arr.dtype == np.float32:
            typed = onnx.helper.make_tensor(t.name, onnx.TensorProto.FLOAT, arr.shape, arr.flatten().tolist(), raw=False)
            m.graph.initializer[i].CopyFrom(typed)
    onnx.save(m, path)


def storage(path):
    m = onnx.load(path)
    raw = sum(1 for t in m.graph.initializer if t.HasField("raw_data"))
    return raw, len(m.graph.initializer) - raw


def encode(rows, bundle):
    """Raw feature rows -> what layer 1 sees (preprocess, then one-hot), as the server does."""
    pre = bundle.get("preprocess")
    enc = []
    for r in rows:
        e = []
        for j, f in enumerate(bundle["features"]):
            if f.get("type") == "categorical":
                oh = [0.0] * len(f["categories"])
                oh[int(r[j])] = 1.0
                e += oh
            else:
                e.append((r[j] - pre["mean"][j]) / pre["scale"][j] if pre else r[j])
        enc.append(e)
    return np.array(enc, dtype=np.float32)


def write_json(path, obj):
    """Indented, but a list of numbers (a row) stays on one line."""
    def fmt(v, ind):
        if isinstance(v, dict):
            items = [f'{" " * (ind + 1)}{json.dumps(k)}: {fmt(x, ind + 1)}' for k, x in v.items()]
            return "{\n" + ",\n".join(items) + "\n" + " " * ind + "}"
        if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
            return "[\n" + ",\n".join(" " * (ind + 1) + fmt(x, ind + 1) for x in v) + "\n" + " " * ind + "]"
        return json.dumps(v)
    with open(path, "w") as fp:
        fp.write(fmt(obj, 0) + "\n")


def valid(name, model, bundle, opset, rows, input_shape=None, typed=False, inits_as_inputs=False):
    n_in = len(encode(rows[:1], bundle)[0])
    onnx_path = os.path.join(OUT, name + ".onnx")
    export(model, n_in, onnx_path, opset, input_shape, inits_as_inputs)
    if typed:
        to_typed(onnx_path)
    onnx.checker.check_model(onnx.load(onnx_path))
    x = torch.from_numpy(encode(rows, bundle))
    if input_shape:
        x = x.reshape(len(rows), *input_shape[1:])
    with torch.no_grad():
        y = model(x).double().numpy().reshape(len(rows), -1)
    if bundle["task"] == "classification" and y.shape[1] == 1:  # single sigmoid unit
        y = np.concatenate([1 - y, y], axis=1)
    bundle = dict({"format": "explaind.model/v1"}, **bundle, onnx=name + ".onnx")
    write_json(os.path.join(OUT, name + ".json"), bundle)
    write_json(os.path.join(OUT, name + ".expected.json"),
               {"bundle": name + ".json", "opset": opset, "initializers_raw_typed": storage(onnx_path),
                "inputs": [list(map(float, r)) for r in rows], "outputs": y.tolist()})
    print(f"{name}: opset {opset}, ops {[n.op_type for n in onnx.load(onnx_path).graph.node]}, "
          f"raw/typed initializers {storage(onnx_path)}")


def node_named(path, op):
    for n in onnx.load(path).graph.node:
        if n.op_type == op:
            return n.name
    raise SystemExit(f"{path}: no {op} node")


# ---- graphs built with onnx.helper: what other converters emit -------------------------------
# No PyTorch here: the expected outputs come from a float64 numpy forward pass written next to
# each graph, op by op from the ONNX operator specs.
H = onnx.helper
TP = onnx.TensorProto


def init(name, arr, dtype=TP.FLOAT, raw=True):
    arr = np.asarray(arr, dtype=np.float64 if dtype == TP.DOUBLE else np.int64 if dtype == TP.INT64 else np.float32)
    if raw:
        return H.make_tensor(name, dtype, arr.shape, arr.tobytes(), raw=True)
    return H.make_tensor(name, dtype, arr.shape, arr.flatten().tolist())


def const_node(out, value=None, **attrs):
    if value is not None:
        return H.make_node("Constant", [], [out], name=out + "_node", value=value)
    return H.make_node("Constant", [], [out], name=out + "_node", **attrs)


def save_helper(name, nodes, inits, n_in, bundle, rows, forward, opsets=(("", 13),), in_shape=None, dtype=TP.FLOAT,
                check=True, outputs=1):
    shape = in_shape or ["batch", n_in]
    graph = H.make_graph(nodes, name, [H.make_tensor_value_info("x", dtype, shape)],
                         [H.make_tensor_value_info("y", dtype, ["batch", outputs])], inits)
    model = H.make_model(graph, opset_imports=[H.make_opsetid(d, v) for d, v in opsets], producer_name="onnx.helper")
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, name + ".onnx"))
    if bundle is None:
        return
    x = encode(rows, bundle).astype(np.float64)
    y = np.asarray(forward(x), dtype=np.float64).reshape(len(rows), -1)
    if bundle["task"] == "classification" and y.shape[1] == 1:
        y = np.concatenate([1 - y, y], axis=1)
    write_json(os.path.join(OUT, name + ".json"), dict({"format": "explaind.model/v1"}, **bundle, onnx=name + ".onnx"))
    write_json(os.path.join(OUT, name + ".expected.json"),
               {"bundle": name + ".json", "opset": opsets[0][1], "initializers_raw_typed": storage(
                   os.path.join(OUT, name + ".onnx")), "inputs": [list(map(float, r)) for r in rows],
                "outputs": y.tolist()})
    print(f"{name}: ops {[n.op_type for n in nodes]}")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def gelu_erf(z):
    from math import erf, sqrt
    return z * 0.5 * (1 + np.vectorize(erf)(z / sqrt(2)))


def helper_fixtures(rng):
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731 (weights as stored)
    rows3 = rng.normal(0, 1.5, size=(N_ROWS, 3)).round(3).tolist()
    rows4 = rng.normal(0, 1.5, size=(N_ROWS, 4)).round(3).tolist()
    reg3 = {"task": "regression", "features": features(3)}
    bin4 = {"task": "classification", "features": features(4), "classes": ["no", "yes"]}
    cls3 = {"task": "classification", "features": features(3), "classes": ["a", "b", "c"]}

    # Gemm with transB=0, alpha and beta, a [1, out] bias, Neg folded into the next Gemm,
    # a scalar bias on the last one; typed float_data.
    B1, C1 = f32(rng.normal(size=(3, 4))), f32(rng.normal(size=(1, 4)))
    W2, C2 = f32(rng.normal(size=(1, 4))), f32([0.25])
    save_helper("helper_gemm_attrs_op11", [
        H.make_node("Gemm", ["x", "B1", "C1"], ["h1"], name="gemm1", alpha=0.5, beta=2.0, transB=0),
        H.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        H.make_node("Neg", ["a1"], ["n1"], name="neg1"),
        H.make_node("Gemm", ["n1", "W2", "C2"], ["y"], name="gemm2", transB=1),
    ], [init("B1", B1, raw=False), init("C1", C1, raw=False), init("W2", W2, raw=False), init("C2", C2, raw=False)],
        3, reg3, rows3,
        lambda x: (-np.maximum(0.5 * x @ B1 + 2.0 * C1, 0)) @ W2.T + C2, opsets=(("", 11),))

    # Everything in double (input and double_data initializers), Reshape from (batch, 2, 2),
    # Constant nodes with value_floats / value_float, Sub then Mul (a normalization),
    # MatMul + Add, Identity and Dropout (opset 12+: ratio input), Gemm + Sigmoid.
    M = rng.normal(size=(4, 5))
    b = rng.normal(size=5)
    W = rng.normal(size=(1, 5))
    mu = [0.5, -0.5, 1.0, 0.0]
    save_helper("helper_double_reshape_op13", [
        H.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        const_node("mu_unused", value_floats=mu),  # a dead node: nothing reads it
        H.make_node("Sub", ["r", "mu_d"], ["s"], name="sub"),
        H.make_node("Mul", ["s", "two"], ["m"], name="mul"),
        H.make_node("MatMul", ["m", "M"], ["mm"], name="matmul"),
        H.make_node("Add", ["b", "mm"], ["h"], name="add_bias"),
        H.make_node("Tanh", ["h"], ["t"], name="tanh"),
        H.make_node("Identity", ["t"], ["t2"], name="identity"),
        H.make_node("Dropout", ["t2", "ratio"], ["t3"], name="dropout"),
        H.make_node("Gemm", ["t3", "W", "c"], ["z"], name="gemm_out", transB=1),
        H.make_node("Sigmoid", ["z"], ["y"], name="sigmoid"),
    ], [init("shape", [-1, 4], TP.INT64), init("mu_d", mu, TP.DOUBLE, raw=False), init("two", 2.0, TP.DOUBLE, raw=False),
        init("M", M, TP.DOUBLE, raw=False), init("b", b, TP.DOUBLE, raw=False), init("W", W, TP.DOUBLE, raw=False),
        init("c", [0.1], TP.DOUBLE, raw=False), init("ratio", 0.5, TP.DOUBLE, raw=False)],
        4, bin4, rows4, lambda x: sigmoid(np.tanh(((x - mu) * 2) @ M + b) @ W.T + 0.1),
        in_shape=["batch", 2, 2], dtype=TP.DOUBLE)

    # com.microsoft's Gelu (erf form), weights reached through Identity, a dead branch,
    # Softmax with an explicit axis=1.
    A1, a1 = f32(rng.normal(size=(5, 3))), f32(rng.normal(size=5))
    A2, a2 = f32(rng.normal(size=(3, 5))), f32(rng.normal(size=3))
    save_helper("helper_ms_gelu_op13", [
        H.make_node("Identity", ["A1_raw"], ["A1"], name="weights_alias"),
        H.make_node("Gemm", ["x", "A1", "a1"], ["h"], name="gemm1", transB=1),
        H.make_node("Gelu", ["h"], ["g"], name="gelu", domain="com.microsoft"),
        H.make_node("Relu", ["h"], ["unused"], name="dead_branch"),
        H.make_node("Gemm", ["g", "A2", "a2"], ["z"], name="gemm2", transB=1),
        H.make_node("Softmax", ["z"], ["y"], name="softmax", axis=1),
    ], [init("A1_raw", A1), init("a1", a1), init("A2", A2), init("a2", a2)], 3, cls3, rows3,
        lambda x: softmax(gelu_erf(x @ A1.T + a1) @ A2.T + a2), opsets=(("", 13), ("com.microsoft", 1)),
        check=False, outputs=3)

    # The Erf form of GELU written differently: (x*0.5) * (1 + erf(x * 0.7071...)); and the
    # opset-20 Gelu with approximate="tanh" (the dense family's "gelu").
    G1, g1 = f32(rng.normal(size=(4, 3))), f32(rng.normal(size=4))
    G2, g2 = f32(rng.normal(size=(1, 4))), f32(rng.normal(size=1))
    save_helper("helper_gelu_variant_op13", [
        H.make_node("Gemm", ["x", "G1", "g1"], ["h"], name="gemm1", transB=1),
        H.make_node("Mul", ["h", "half"], ["xh"], name="mul_half"),
        H.make_node("Mul", ["h", "rsqrt2"], ["u"], name="mul_rsqrt2"),
        H.make_node("Erf", ["u"], ["e"], name="erf"),
        H.make_node("Add", ["one", "e"], ["e1"], name="add_one"),
        H.make_node("Mul", ["xh", "e1"], ["g"], name="mul_x"),
        H.make_node("Gemm", ["g", "G2", "g2"], ["y"], name="gemm2", transB=1),
    ], [init("G1", G1), init("g1", g1), init("G2", G2), init("g2", g2), init("half", 0.5), init("one", 1.0),
        init("rsqrt2", 0.7071067811865476)], 3, reg3, rows3,
        lambda x: gelu_erf(x @ G1.T + g1) @ G2.T + g2)

    def gelu_tanh(z):
        return 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
    save_helper("helper_gelu_tanh_op20", [
        H.make_node("Gemm", ["x", "G1", "g1"], ["h"], name="gemm1", transB=1),
        H.make_node("Gelu", ["h"], ["g"], name="gelu", approximate="tanh"),
        H.make_node("Gemm", ["g", "G2", "g2"], ["y"], name="gemm2", transB=1),
    ], [init("G1", G1), init("g1", g1), init("G2", G2), init("g2", g2)], 3, reg3, rows3,
        lambda x: gelu_tanh(x @ G1.T + g1) @ G2.T + g2, opsets=(("", 20),), check=False)

    # k - x and x / k with one constant per column, LeakyRelu(0.01) with its alpha given.
    K, D = [1.0, -2.0, 0.5], [2.0, 4.0, -1.0]
    L1, l1 = f32(rng.normal(size=(3, 4))), f32(rng.normal(size=4))
    save_helper("helper_sub_div_leaky_op9", [
        H.make_node("Sub", ["k", "x"], ["s"], name="k_minus_x"),
        H.make_node("Div", ["s", "d"], ["q"], name="div_cols"),
        H.make_node("MatMul", ["q", "L1"], ["mm"], name="matmul"),
        H.make_node("Add", ["mm", "l1"], ["h"], name="add"),
        H.make_node("LeakyRelu", ["h"], ["a"], name="leaky", alpha=0.01),
        H.make_node("Flatten", ["a"], ["f"], name="flatten", axis=1),
        H.make_node("Gemm", ["f", "W", "c"], ["y"], name="gemm_out", transB=1),
    ], [init("k", [K]), init("d", D), init("L1", L1), init("l1", l1), init("W", np.ones((1, 4)) * 0.5),
        init("c", [0.0])], 3, reg3, rows3,
        lambda x: np.where((h := ((np.array(K) - x) / np.array(D)) @ L1 + l1) > 0, h, 0.01 * h) @ (
            np.ones((4, 1)) * 0.5), opsets=(("", 9),))


def helper_invalid():
    """Graphs that must be rejected, each with the error it must name."""
    out = []
    reg3 = {"task": "regression", "features": features(3)}
    W, b = np.ones((1, 3), dtype=np.float32), np.zeros(1, dtype=np.float32)

    def case(name, nodes, inits, text, opsets=(("", 13),), bundle=reg3, inputs=None, tweak=None):
        graph = H.make_graph(nodes, name, inputs or [H.make_tensor_value_info("x", TP.FLOAT, ["batch", 3])],
                             [H.make_tensor_value_info("y", TP.FLOAT, ["batch", 1])], inits)
        model = H.make_model(graph, opset_imports=[H.make_opsetid(d, v) for d, v in opsets])
        if tweak:
            tweak(model)
        onnx.save(model, os.path.join(OUT, f"bad_{name}.onnx"))
        write_json(os.path.join(OUT, f"bad_{name}.json"),
                   dict({"format": "explaind.model/v1"}, **bundle, onnx=f"bad_{name}.onnx"))
        out.append({"bundle": f"bad_{name}.json", "code": "EFORMAT", "field": "onnx", "text": text})

    gemm = H.make_node("Gemm", ["x", "W", "b"], ["y"], name="gemm", transB=1)
    case("opset8", [gemm], [init("W", W), init("b", b)], "opset 8 of the default domain is not supported",
         opsets=(("", 8),))
    case("two_inputs", [H.make_node("Add", ["x", "x2"], ["s"], name="add"),
                        H.make_node("Gemm", ["s", "W", "b"], ["y"], name="gemm", transB=1)],
         [init("W", W), init("b", b)], "more than one input",
         inputs=[H.make_tensor_value_info("x", TP.FLOAT, ["batch", 3]),
                 H.make_tensor_value_info("x2", TP.FLOAT, ["batch", 3])])
    case("lonely_erf", [H.make_node("Erf", ["x"], ["e"], name="erf"),
                        H.make_node("Gemm", ["e", "W", "b"], ["y"], name="gemm", transB=1)],
         [init("W", W), init("b", b)], "node 'erf' (Erf): Erf is supported only in the exact GELU form")
    case("transA", [H.make_node("Gemm", ["x", "W", "b"], ["y"], name="gemm_t", transA=1, transB=1)],
         [init("W", W), init("b", b)], "node 'gemm_t' (Gemm): transA=1")
    short = TP(name="W", data_type=TP.FLOAT, dims=[1, 3], float_data=[1.0, 2.0])  # helper would refuse it
    case("short_tensor", [gemm], [short, init("b", b)],
         "tensor 'W' has 2 values for a shape of 3")

    def external(model):
        t = model.graph.initializer[0]
        t.ClearField("raw_data")
        t.data_location = TP.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", "weights.bin"
    case("external", [gemm], [init("W", W), init("b", b)], "external file", tweak=external)
    case("logits_classifier", [gemm], [init("W", W), init("b", b)], "converted layers[0].activation",
         bundle={"task": "classification", "features": features(3), "classes": ["no", "yes"]})
    case("missing_input", [H.make_node("Add", ["x", ""], ["s"], name="add_nothing"),
                           H.make_node("Gemm", ["s", "W", "b"], ["y"], name="gemm", transB=1)],
         [init("W", W), init("b", b)], "node 'add_nothing' (Add): input 1 is missing")
    case("matmul_by_tensor", [H.make_node("MatMul", ["x", "x"], ["y"], name="mm")], [],
         "node 'mm' (MatMul): the weight input B must be a constant")
    # Raw graphs (no bundle: the test converts them directly) that try to make the importer
    # allocate far more than the file holds: a 16384-wide input straight into Relu (a
    # 16384 x 16384 diagonal layer from a file of a few KB), and an unused initializer
    # whose shape claims 2^26 values with none present.
    wide = 16384
    graph = H.make_graph([H.make_node("Relu", ["x"], ["y"], name="relu_wide")], "huge_diag",
                         [H.make_tensor_value_info("x", TP.FLOAT, ["batch", wide])],
                         [H.make_tensor_value_info("y", TP.FLOAT, ["batch", wide])],
                         [TP(name="claims", data_type=TP.FLOAT, dims=[1 << 13, 1 << 13])])
    onnx.save(H.make_model(graph, opset_imports=[H.make_opsetid("", 13)]), os.path.join(OUT, "bad_huge_diag.onnx"))
    out.append({"onnx": "bad_huge_diag.onnx", "code": "EFORMAT", "field": "onnx",
                "text": "node 'relu_wide' (Relu): the converted network would need more than"})
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    rows4 = rng.normal(0, 1.5, size=(N_ROWS, 4)).round(3).tolist()
    rows5 = rng.normal(0, 1.5, size=(N_ROWS, 5)).round(3).tolist()
    rows3 = rng.normal(0, 1.5, size=(N_ROWS, 3)).round(3).tolist()
    rows6 = rng.normal(0, 1.5, size=(N_ROWS, 6)).round(3).tolist()
    cls3 = {"task": "classification", "features": features(4), "classes": ["a", "b", "c"]}
    binary3 = {"task": "classification", "features": features(3), "classes": ["no", "yes"]}
    reg5 = {"task": "regression", "features": features(5)}

    valid("relu_softmax_op13", nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1)),
          dict(cls3, background={"rows": rows4[:3]}), 13, rows4)
    valid("relu_softmax_typed", nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=-1)),
          cls3, 13, rows4, typed=True)
    valid("tanh_sigmoid_op9", nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1), nn.Sigmoid()),
          binary3, 9, rows3, inits_as_inputs=True)  # the weights are also listed as graph inputs
    valid("softplus_regression_op17", nn.Sequential(nn.Linear(5, 7), nn.Softplus(), nn.Linear(7, 1)),
          reg5, 17, rows5)
    valid("softplus_beta2_op13", nn.Sequential(nn.Linear(5, 7), nn.Softplus(beta=2.0), nn.Linear(7, 1)),
          reg5, 13, rows5)
    valid("gelu_op17", nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3),
                                     nn.Softmax(dim=1)), cls3, 17, rows4)
    valid("gelu_op9", nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 3), nn.Softmax(dim=1)), cls3, 9, rows4)
    valid("leaky_relu_op11", nn.Sequential(nn.Linear(5, 6), nn.LeakyReLU(0.01), nn.Linear(6, 4), nn.Sigmoid(),
                                           nn.Linear(4, 1)), reg5, 11, rows5)
    valid("normalized_input_op13",
          nn.Sequential(Normalize([0.5, -1.0, 2.0, 0.0], [2.0, 0.5, 1.5, 3.0]), nn.Linear(4, 6), nn.Tanh(),
                        nn.Linear(6, 3), nn.Softmax(dim=1)), cls3, 13, rows4)
    valid("matmul_add_op13", nn.Sequential(MatMulAdd(5, 6), nn.ReLU(), MatMulAdd(6, 1)), reg5, 13, rows5)
    valid("linear_linear_scaled_op9", nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 1), Scale(12.5, 100.0)),
          reg5, 9, rows5)
    valid("flatten_identity_op11",
          nn.Sequential(nn.Flatten(), nn.Identity(), nn.Dropout(0.3), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1),
                        nn.Sigmoid()),
          {"task": "classification", "features": features(6), "classes": ["neg", "pos"]}, 11, rows6,
          input_shape=(1, 2, 3))
    # The graph sees the encoded row: 2 numeric features (standardized by the bundle's
    # preprocess) then the 3 one-hot inputs of "color".
    cat = {"task": "classification",
           "features": [{"name": "height"}, {"name": "color", "type": "categorical",
                                             "categories": ["red", "green", "blue"]}, {"name": "weight"}],
           "classes": ["small", "medium", "large"],
           "preprocess": {"mean": [170.0, 0.0, 70.0], "scale": [10.0, 1.0, 15.0]}}
    cat_rows = [[165.0, 0, 60.0], [180.0, 2, 90.0], [172.5, 1, 71.0], [150.0, 1, 45.0], [190.0, 0, 110.0],
                [170.0, 2, 70.0]]
    valid("categorical_op13", nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3), nn.Softmax(dim=1)),
          dict(cat, background={"rows": cat_rows, "targets": ["small", "large", "medium", "small", "large",
                                                               "medium"]}), 13, cat_rows)

    # Linear without bias (MatMul alone), then BatchNorm1d in eval mode with non-trivial
    # running statistics: BatchNormalization folds into the MatMul.
    bn = nn.Sequential(nn.Linear(5, 6, bias=False), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 1))
    with torch.no_grad():
        bn[1].running_mean.uniform_(-1, 1)
        bn[1].running_var.uniform_(0.5, 2.0)
        bn[1].weight.uniform_(0.5, 1.5)
        bn[1].bias.uniform_(-0.5, 0.5)
    valid("batchnorm_nobias_op13", bn, reg5, 13, rows5)
    helper_fixtures(rng)

    # ---- invalid ones ---------------------------------------------------------------------
    invalid = []

    def bad(name, model, bundle, opset, code, field, text, n_in=None, input_shape=None):
        path = os.path.join(OUT, f"bad_{name}.onnx")
        export(model, n_in or len(bundle["features"]), path, opset, input_shape)
        write_json(os.path.join(OUT, f"bad_{name}.json"),
                   dict({"format": "explaind.model/v1"}, **bundle, onnx=f"bad_{name}.onnx"))
        invalid.append({"bundle": f"bad_{name}.json", "code": code, "field": field, "text": text(path)})

    bad("conv", nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(8, 1)),
        {"task": "regression", "features": features(6)}, 13, "EFORMAT", "onnx",
        lambda p: f"node '{node_named(p, 'Conv')}' (Conv): unsupported operator", input_shape=(1, 1, 6))
    bad("elu", nn.Sequential(nn.Linear(5, 4), nn.ELU(), nn.Linear(4, 1)), reg5, 13, "EFORMAT", "onnx",
        lambda p: f"node '{node_named(p, 'Elu')}' (Elu): unsupported operator")
    bad("leaky_alpha", nn.Sequential(nn.Linear(5, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1)), reg5, 13, "EFORMAT",
        "onnx", lambda p: f"node '{node_named(p, 'LeakyRelu')}' (LeakyRelu): alpha")
    bad("residual", nn.Sequential(nn.Linear(5, 5), Residual(5), nn.Linear(5, 1)), reg5, 13, "EFORMAT", "onnx",
        lambda p: f"node '{node_named(p, 'Add')}' (Add)")
    bad("softmax_axis0", nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0)), cls3, 13, "EFORMAT", "onnx",
        lambda p: f"node '{node_named(p, 'Softmax')}' (Softmax): axis")
    bad("gelu_tanh_op17", nn.Sequential(nn.Linear(5, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 1)), reg5, 17,
        "EFORMAT", "onnx", lambda p: f"node '{node_named(p, 'Mul')}' (Mul): multiplies a tensor by itself")
    bad("wrong_width", nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1)),
        {"task": "regression", "features": features(4)}, 13, "EFORMAT", "onnx",
        lambda p: "graph input 'input' has 5 columns", n_in=5)

    good = open(os.path.join(OUT, "relu_softmax_op13.onnx"), "rb").read()
    for name, data, text in [("truncated", good[:len(good) // 2], "not a valid ONNX model"),
                             ("corrupted", good[:8] + bytes([0xff] * 16) + good[24:], "not a valid ONNX model")]:
        with open(os.path.join(OUT, f"bad_{name}.onnx"), "wb") as fp:
            fp.write(data)
        write_json(os.path.join(OUT, f"bad_{name}.json"), dict({"format": "explaind.model/v1"}, **cls3,
                                                             onnx=f"bad_{name}.onnx"))
        invalid.append({"bundle": f"bad_{name}.json", "code": "EFORMAT", "field": "onnx", "text": text})
    invalid += helper_invalid()
    write_json(os.path.join(OUT, "invalid.json"), invalid)
    for c in invalid:
        print(f"{c.get('bundle') or c['onnx']}: expects {c['field']}: ...{c['text']}...")


if __name__ == "__main__":
    sys.exit(main())

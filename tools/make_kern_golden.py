#!/usr/bin/python3
"""Freeze PyTorch's outputs for the graph engine's heavy kernels (tests/test_kern.c).

Usage (from the repo root):   /usr/bin/python3 tools/make_kern_golden.py
Dependencies (Debian):        apt-get install python3-torch python3-onnx
Writes tests/golden/kern/golden.txt: one array per line, "name n v1 v2 ... vn" (%.17g),
computed in float64. Recurrent weights are taken from torch.onnx.export's graph, so the
test sees exactly the ONNX layout (gate order z,r,h / i,o,f,c, W/R/B, linear_before_reset)
the exporter writes, and torch's outputs are the reference for what the kernels compute
from it. Each case's attributes are written as arrays too ("<case>.attrs").
"""
import io
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn
import torch.nn.functional as F

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "kern", "golden.txt")
lines = []


def put(name, a):
    if isinstance(a, torch.Tensor):
        a = a.detach()
    a = np.asarray(a, dtype=np.float64).ravel()
    lines.append(name + " " + str(a.size) + "".join(" %.17g" % v for v in a))


# ---- Conv: attrs = N C M group  in(2) k(2) stride(2) dil(2) pad(2) (symmetric, as torch) ----
def conv_case(name, N, C, M, group, hw, k, st, dl, pad, nsp=2):
    conv = (nn.Conv2d if nsp == 2 else nn.Conv1d)(C, M, k, stride=st, padding=pad, dilation=dl, groups=group)
    x = torch.randn(N, C, *hw)
    y = conv(x)
    g = torch.randn_like(y)
    y.backward(g)  # not used for parameters: the FD tests cover backward; dx is frozen too
    xr = x.clone().requires_grad_()
    conv(xr).backward(g)
    two = lambda v: list(v) if isinstance(v, (tuple, list)) else [v] * nsp
    put(name + ".attrs", [nsp, N, C, M, group] + two(hw) + two(k) + two(st) + two(dl) + two(pad))
    put(name + ".x", x)
    put(name + ".w", conv.weight.detach())
    put(name + ".b", conv.bias.detach())
    put(name + ".y", y.detach())
    put(name + ".g", g)
    put(name + ".dx", xr.grad)


conv_case("conv_groups", 2, 4, 6, 2, (7, 9), (3, 2), (2, 1), (1, 2), (1, 2))
conv_case("conv_depthwise", 1, 3, 3, 3, (6, 5), 3, 1, 1, 1)
conv_case("conv_1d", 2, 3, 5, 1, (11,), 3, 2, 2, 1, nsp=1)


# ---- pools: attrs = N C  in(2) k(2) stride(2) dil(2) pad(2) ceil count_include_pad max ----
def pool_case(name, x, k, st, pad, ceil, incl=1, dil=1, avg=False):
    if avg:
        y = F.avg_pool2d(x, k, st, pad, ceil_mode=ceil, count_include_pad=bool(incl))
    else:
        y = F.max_pool2d(x, k, st, pad, dilation=dil, ceil_mode=ceil)
    put(name + ".attrs", [x.shape[0], x.shape[1], x.shape[2], x.shape[3], k, k, st, st, dil, dil, pad, pad,
                          int(ceil), incl, int(not avg)])
    put(name + ".x", x)
    put(name + ".y", y)


xp = torch.randn(2, 3, 8, 7)
pool_case("maxpool_ceil", xp, 3, 2, 1, True)
pool_case("maxpool_dil", xp, 2, 1, 1, False, dil=2)
pool_case("avgpool_ceil_incl", xp, 3, 2, 1, True, incl=1, avg=True)
pool_case("avgpool_ceil_excl", xp, 3, 2, 1, True, incl=0, avg=True)
pool_case("avgpool_plain", torch.randn(1, 2, 6, 6), 2, 2, 0, False, avg=True)


# ---- GRU / LSTM through torch.onnx.export: attrs = seq batch input hidden ndir ----
def onnx_weights(module, x, h0):
    module = module.float()
    f = io.BytesIO()
    torch.onnx.export(module, (x.float(), h0), f, opset_version=14)
    m = onnx.load_from_string(f.getvalue())
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            inits[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    node = next(n for n in m.graph.node if n.op_type in ("GRU", "LSTM"))
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return node, inits, attrs


def rnn_case(name, kind, seq, batch, inp, hidden, bidir):
    ndir = 2 if bidir else 1
    mod = (nn.GRU if kind == "gru" else nn.LSTM)(inp, hidden, bidirectional=bidir)
    x = torch.randn(seq, batch, inp)
    h0 = torch.randn(ndir, batch, hidden)
    c0 = torch.randn(ndir, batch, hidden)
    state = h0 if kind == "gru" else (h0, c0)
    y, hn = mod(x, state)
    # the same weights, as the exporter lays them out (float32 in the file: export the
    # float32-rounded module and run torch on the very same rounded weights)
    modf = (nn.GRU if kind == "gru" else nn.LSTM)(inp, hidden, bidirectional=bidir)
    modf.load_state_dict({k: v.float().double() for k, v in mod.state_dict().items()})
    y, hn = modf(x, state)
    node, inits, attrs = onnx_weights(modf, x, (h0.float() if kind == "gru" else (h0.float(), c0.float())))
    W, R, B = (inits[node.input[i]] for i in (1, 2, 3))
    assert attrs.get("hidden_size") == hidden
    lbr = int(attrs.get("linear_before_reset", 0))
    put(name + ".attrs", [seq, batch, inp, hidden, ndir, lbr])
    put(name + ".x", x)
    put(name + ".W", W)
    put(name + ".R", R)
    put(name + ".B", B)
    put(name + ".h0", h0)
    put(name + ".y", y.reshape(seq, batch, ndir, hidden).permute(0, 2, 1, 3))  # ONNX Y: (seq, ndir, batch, h)
    if kind == "gru":
        put(name + ".yh", hn)
    else:
        put(name + ".c0", c0)
        put(name + ".yh", hn[0])
        put(name + ".yc", hn[1])


rnn_case("gru_bidir", "gru", 5, 3, 4, 6, True)
rnn_case("gru_fwd", "gru", 4, 1, 2, 3, False)
rnn_case("lstm_bidir", "lstm", 5, 3, 4, 6, True)
rnn_case("lstm_fwd", "lstm", 3, 2, 3, 5, False)

# ---- LayerNormalization over the last two axes: attrs = outer n ----
x = torch.randn(3, 4, 5)
ln = nn.LayerNorm((4, 5))
with torch.no_grad():
    ln.weight.normal_()
    ln.bias.normal_()
put("layernorm.attrs", [3, 20])
put("layernorm.x", x)
put("layernorm.scale", ln.weight.detach())
put("layernorm.bias", ln.bias.detach())
put("layernorm.y", ln(x).detach())

# ---- ConvTranspose: attrs = N C M group in(2) k(2) stride(2) dil(2) pad(2) output_padding(2) ----
def convt_case(name, N, C, M, group, hw, k, st, dl, pad, opad):
    ct = nn.ConvTranspose2d(C, M, k, stride=st, padding=pad, output_padding=opad, groups=group, dilation=dl)
    x = torch.randn(N, C, *hw, requires_grad=True)
    y = ct(x)
    g = torch.randn_like(y)
    y.backward(g)
    put(name + ".attrs", [N, C, M, group] + list(hw) + list(k) + list(st) + list(dl) + list(pad) + list(opad))
    put(name + ".x", x)
    put(name + ".w", ct.weight)
    put(name + ".b", ct.bias)
    put(name + ".y", y)
    put(name + ".g", g)
    put(name + ".dx", x.grad)
    put(name + ".dw", ct.weight.grad)


convt_case("convt_stride", 2, 4, 6, 2, (5, 4), (3, 3), (2, 2), (1, 1), (1, 0), (1, 1))
convt_case("convt_dil", 1, 3, 2, 1, (4, 6), (2, 3), (1, 3), (2, 1), (0, 1), (0, 2))

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    f.write("\n".join(lines) + "\n")
print("wrote", OUT, len(lines), "arrays")

#!/usr/bin/python3
"""Train the image and text demo models, export them to ONNX and freeze their golden files.

Usage (from the repo root):   /usr/bin/python3 tools/make_graph_models.py [shapes|reviews_bert|reviews_gru ...]
Dependencies (Debian):        apt-get install python3-torch python3-onnx python3-pil
Made with torch 1.13, onnx 1.12, numpy 1.24, Pillow 9.4 (Debian bookworm), one CPU thread;
other versions may train slightly different weights: rerun the golden tests after
regenerating. No downloads: the data are synthetic (tools/graph_data.py).

It writes
  models/shapes/        CNN on 32x32 RGB images of a square, a circle or a triangle among
                        distractors: model.onnx, model.json, bg/*.png (background images)
  models/reviews_bert/  small BERT-style encoder (WordPiece tokenizer.json, attention_mask input)
  models/reviews_gru/   embedding + bidirectional GRU (WordLevel tokenizer.json, no attention_mask)
  tests/golden/graph/   float64 reference values computed by torch (model.double()):
      shapes.json           per image: pixels, PNG (base64 and file), logits, probabilities,
                            gradient of the target probability w.r.t. the model input, and
                            Grad-CAM's ingredients at the last convolution block
      shapes_pointing.json  held-out images with their object masks (a pointing-game ground truth)
      reviews_bert.json, reviews_gru.json
                            per text: tokens, ids, offsets, logits, probabilities, the embedding
                            output and the gradient of the target probability w.r.t. it
      planted_words.json    the words that decide the reviews' labels, their weights, and
                            held-out texts with their labels and planted words
and the "Image and text models" section of models/README.md. When tests/onnxrt is installed
(make onnxrt-deps) every exported graph is also run by ONNX Runtime and compared with torch.
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import base64
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graph_data as gd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join("tests", "golden", "graph")
OPSET = {"shapes": 17, "reviews_bert": 14, "reviews_gru": 14}
IMAGE_PRE = {"scale": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
MAX_LENGTH = {"reviews_bert": 64, "reviews_gru": 128}
ORT_TOLERANCE = 1e-4  # ONNX Runtime vs torch, float32, max absolute difference of probabilities
torch.set_num_threads(1)


# ---- output helpers ------------------------------------------------------------------------
def rounded(x, digits=12):
    """Nested lists of floats with `digits` significant digits (float64 references, compactly)."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        x = x.tolist()
    if isinstance(x, list):
        return [rounded(v, digits) for v in x]
    if isinstance(x, float):
        return float("%.*g" % (digits, x))
    return x


def dumps(obj):
    """JSON with every innermost list kept on one line."""
    text = json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=False)
    one_line = lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]")  # noqa: E731
    return re.sub(r"\[[^\[\]{}]*\]", one_line, text) + "\n"


def write(relpath, data):
    path = os.path.join(ROOT, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else {"newline": ""})) as f:
        f.write(data)


def png_bytes(img_chw):
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img_chw.transpose(1, 2, 0))).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def onnx_summary(path):
    m = onnx.load(path)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return m, dict(sorted(ops.items()))


def ort_run(onnx_path, feeds):
    """ONNX Runtime's outputs (dict name -> np.array) or None when tests/onnxrt is not installed."""
    if not os.path.exists(os.path.join(ROOT, "tests/onnxrt/node_modules/onnxruntime-node")):
        return None
    spec = {k: {"dtype": {np.dtype("float32"): "float32", np.dtype("int64"): "int64"}[v.dtype],
                "shape": list(v.shape), "data": v.ravel().tolist()} for k, v in feeds.items()}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run(["node", os.path.join(ROOT, "tests/onnxrt/run.mjs"), onnx_path, f.name],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    return {k: np.array(v["data"], dtype=np.float64).reshape(v["shape"]) for k, v in json.loads(out).items()}


def check_ort(name, onnx_path, feeds, expected):
    got = ort_run(onnx_path, feeds)
    if got is None:
        print(f"{name}: ONNX Runtime check skipped (make onnxrt-deps installs it)")
        return None
    err = float(np.max(np.abs(got["probabilities"] - expected)))
    if not err <= ORT_TOLERANCE:
        sys.exit(f"{name}: ONNX Runtime differs from torch by {err:g}")
    print(f"{name}: ONNX Runtime agrees with torch to {err:.1e} on {len(expected)} rows")
    return err


def check_tokenizer(name, tok, texts, max_length):
    """Our tokens, ids and offsets against Hugging Face's tokenizers library (its Node bindings,
    tests/tokref) when it is installed; stops on any difference."""
    if not os.path.exists(os.path.join(ROOT, "tests/tokref/node_modules/tokenizers")):
        print(f"{name}: tokenizer check skipped (tests/tokref is not installed)")
        return
    path = os.path.join(ROOT, "models", name, "tokenizer.json")
    req = json.dumps({"tokenizer": path, "max_length": max_length, "texts": texts})
    out = subprocess.run(["node", os.path.join(ROOT, "tests/tokref/encode.mjs")], input=req, capture_output=True,
                         text=True, check=True).stdout
    for text, ref in zip(texts, json.loads(out)):
        tokens, ids, offsets, _ = gd.encode(text, tok, max_length)
        ref_offsets = [None if special else list(o) for o, special in zip(ref["offsets"], ref["special"])]
        if (tokens, ids, offsets) != (ref["tokens"], ref["ids"], ref_offsets):
            sys.exit(f"{name}: tokenizer differs from Hugging Face's on {text!r}: {tokens} vs {ref['tokens']}")
    print(f"{name}: tokens, ids and offsets equal Hugging Face tokenizers' on {len(texts)} texts")


def train(model, batches, epochs, lr, loss_of):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        model.train()
        total, n = 0.0, 0
        for batch in batches(epoch):
            opt.zero_grad()
            loss = loss_of(model, batch)
            loss.backward()
            opt.step()
            total, n = total + float(loss), n + 1
        print(f"  epoch {epoch + 1}/{epochs}: loss {total / n:.4f}")
    model.eval()


# ---- the image model -------------------------------------------------------------------------
def conv_block(c_in, c_out, pool):
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
    return layers + ([nn.MaxPool2d(2)] if pool else [])


class ShapesCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*conv_block(3, 16, True), *conv_block(16, 32, True), *conv_block(32, 64, False))
        self.head = nn.Linear(64, 3)

    def logits(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


def image_input(pixels):
    """uint8 [N][C][H][W] -> the model input, as the bundle's preprocessing defines it."""
    x = pixels.astype(np.float64) * IMAGE_PRE["scale"]
    return (x - np.array(IMAGE_PRE["mean"])[:, None, None]) / np.array(IMAGE_PRE["std"])[:, None, None]


def make_shapes():
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    t0 = time.time()
    x_tr, _, y_tr = gd.make_images(rng, 6000)
    x_te, m_te, y_te = gd.make_images(rng, 1000)
    xt = torch.tensor(image_input(x_tr), dtype=torch.float32)
    yt = torch.tensor(y_tr)
    model = ShapesCNN()

    def batches(epoch):
        perm = torch.randperm(len(xt))
        return [(xt[perm[i:i + 64]], yt[perm[i:i + 64]]) for i in range(0, len(xt), 64)]
    train(model, batches, 10, 3e-3, lambda m, b: F.cross_entropy(m.logits(b[0]), b[1]))
    with torch.no_grad():
        p_te = model(torch.tensor(image_input(x_te), dtype=torch.float32)).double().numpy()
    acc = float((p_te.argmax(1) == y_te).mean())
    print(f"shapes: test accuracy {acc:.4f} ({time.time() - t0:.0f} s)")

    d = "models/shapes"
    onnx_path = os.path.join(ROOT, d, "model.onnx")
    os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 3, gd.SIZE, gd.SIZE), onnx_path, opset_version=OPSET["shapes"],
                      input_names=["input"], output_names=["probabilities"], do_constant_folding=True,
                      dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}})
    graph, ops = onnx_summary(onnx_path)
    onnx.checker.check_model(graph)
    # Grad-CAM's default layer: the last Relu (after the last Conv) feeds GlobalAveragePool
    cam_layer = [n.output[0] for n in graph.graph.node if n.op_type == "Relu"][-1]
    ort_err = check_ort("shapes", onnx_path, {"input": image_input(x_te[:64]).astype(np.float32)}, p_te[:64])

    # background: the first 16 test images; goldens: the next ones
    bg = [f"bg/{i}.png" for i in range(16)]
    for i, f in enumerate(bg):
        write(f"{d}/{f}", png_bytes(x_te[i]))
    bundle = {"format": "explaind.model/v1", "task": "classification", "classes": gd.SHAPES, "onnx": "model.onnx",
              "input": {"kind": "image", "channels": 3, "height": gd.SIZE, "width": gd.SIZE, **IMAGE_PRE},
              "output": "probabilities", "background": {"images": bg},
              "x-source": {"script": "tools/make_graph_models.py", "data": "synthetic (tools/graph_data.py), seed 1",
                           "architecture": "3 x (Conv3x3 + BatchNorm + ReLU [+ MaxPool2]) 16-32-64, GlobalAveragePool, "
                                           "Linear(64, 3), Softmax; BatchNorm folded into Conv by the export",
                           "training": "6000 images, Adam lr 3e-3, batch 64, 10 epochs",
                           "opset": OPSET["shapes"], "operators": ops, "gradcam_layer": cam_layer,
                           "versions": {"torch": torch.__version__, "onnx": onnx.__version__}},
              "x-test-metric": {"name": "accuracy", "value": acc, "split": "test", "rows": len(y_te)}}
    write(f"{d}/model.json", dumps(bundle))
    shapes_goldens(model, graph, x_te[16:], m_te[16:], y_te[16:], cam_layer)
    return {"name": "shapes", "kind": "image", "accuracy": acc, "rows": len(y_te), "ops": ops,
            "bytes": os.path.getsize(onnx_path), "ort": ort_err}


def folded_cnn(graph):
    """The CNN exactly as exported: BatchNorm folded into the convolutions by the exporter, in
    float32. The float64 references are computed from these weights (widened to double), not
    from the unfolded model, whose double BatchNorm differs from the graph by float32 rounding."""
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.graph.initializer}
    m = ShapesCNN()
    for i, mod in enumerate(m.features):
        if isinstance(mod, nn.BatchNorm2d):
            m.features[i] = nn.Identity()
    convs = [mod for mod in m.features if isinstance(mod, nn.Conv2d)]
    nodes = [n for n in graph.graph.node if n.op_type == "Conv"]
    gemm = [n for n in graph.graph.node if n.op_type == "Gemm"][0]
    assert len(convs) == len(nodes) and [a.i for a in gemm.attribute if a.name == "transB"] == [1]
    with torch.no_grad():
        for mod, node in zip(convs, nodes):
            mod.weight.copy_(inits[node.input[1]])
            mod.bias.copy_(inits[node.input[2]])
        m.head.weight.copy_(inits[gemm.input[1]])
        m.head.bias.copy_(inits[gemm.input[2]])
    return m.eval()


POINTING_DEFINITION = (
    "fraction of images whose heatmap (the attribution summed over channels, target = the predicted "
    "class) has its maximum inside the object mask dilated by one pixel (4-neighbours); saliency = |g|, "
    "input_x_gradient = g*x, integrated_gradients = black baseline (pixel 0), 50 intervals, trapezoid "
    "rule; grad_cam = relu(sum_k mean(g_k) A_k) at the last Relu, upsampled bilinearly; chance is the mask's "
    "share of the image, about 0.13")


def pointing_game(m64, acts, pixels, masks):
    hits = {"saliency": 0, "input_x_gradient": 0, "integrated_gradients": 0, "grad_cam": 0}
    black = torch.tensor(image_input(np.zeros_like(pixels[:1])))
    alphas = torch.linspace(0, 1, 51, dtype=torch.float64)[:, None, None, None]
    for px, mask in zip(pixels, masks):
        near = mask.copy()
        near[1:] |= mask[:-1]
        near[:-1] |= mask[1:]
        near[:, 1:] |= mask[:, :-1]
        near[:, :-1] |= mask[:, 1:]
        x = torch.tensor(image_input(px[None]), requires_grad=True)
        p = m64(x)
        t = int(p.argmax())
        a = acts["a"]
        a.retain_grad()
        p[0, t].backward()
        g = x.grad[0]
        xs = (black + alphas * (x.detach() - black)).requires_grad_()
        m64(xs)[:, t].sum().backward()
        avg = (xs.grad[:-1] + xs.grad[1:]).mean(0) / 2
        cam = F.relu((a.grad[0].mean(dim=(1, 2))[:, None, None] * a[0]).sum(0))
        maps = {"saliency": g.abs().sum(0), "input_x_gradient": (g * x[0]).sum(0),
                "integrated_gradients": ((x.detach() - black)[0] * avg).sum(0),
                "grad_cam": F.interpolate(cam[None, None], size=(gd.SIZE, gd.SIZE), mode="bilinear",
                                          align_corners=False)[0, 0]}
        for k, v in maps.items():
            yy, xx = np.unravel_index(int(v.detach().argmax()), v.shape)
            hits[k] += bool(near[yy, xx])
    return {k: v / len(pixels) for k, v in hits.items()}


def decoding_goldens(m64, pixels):
    """Images that are not already 32x32 RGB PNGs: a PNG of another size with an alpha channel
    (dropped, then resized bilinearly with half-pixel centres and no antialiasing, in floating
    point, as torch's F.interpolate(mode="bilinear", align_corners=False)), a grayscale PNG
    (its channel copied to R, G and B), and a JPEG (quality 90, 4:2:0) whose pixels are as
    Pillow's libjpeg-turbo decodes them (another decoder may differ by a level or two)."""
    big = np.array(Image.fromarray(np.ascontiguousarray(pixels[0].transpose(1, 2, 0))).resize((56, 40), Image.NEAREST))
    alpha = np.random.default_rng(11).integers(0, 256, size=(40, 56, 1)).astype(np.uint8)
    rgba = np.concatenate([big, alpha], axis=2)
    gray = np.rint(pixels[1].astype(np.float64).mean(0)).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels[2].transpose(1, 2, 0))).save(jpeg, format="JPEG", quality=90)
    jpeg_rgb = np.array(Image.open(io.BytesIO(jpeg.getvalue())).convert("RGB")).transpose(2, 0, 1)
    cases = []
    for name, img, rgb in [
            ("rgba_56x40", Image.fromarray(rgba, "RGBA"),
             F.interpolate(torch.tensor(big.transpose(2, 0, 1), dtype=torch.float64)[None], size=(gd.SIZE, gd.SIZE),
                           mode="bilinear", align_corners=False)[0]),
            ("gray_32x32", Image.fromarray(gray, "L"), torch.tensor(np.stack([gray] * 3), dtype=torch.float64)),
            ("jpeg_32x32", None, torch.tensor(jpeg_rgb, dtype=torch.float64))]:
        buf = io.BytesIO()
        if img is None:
            buf, ext = jpeg, "jpg"
        else:
            img.save(buf, format="PNG", optimize=False)
            ext = "png"
        write(f"{GOLDEN}/shapes_{name}.{ext}", buf.getvalue())
        x = (rgb * IMAGE_PRE["scale"] - torch.tensor(IMAGE_PRE["mean"], dtype=torch.float64)[:, None, None]) / \
            torch.tensor(IMAGE_PRE["std"], dtype=torch.float64)[:, None, None]
        with torch.no_grad():
            logits = m64.logits(x[None])
        cases.append({"name": name, "file": f"shapes_{name}.{ext}", "b64": base64.b64encode(buf.getvalue()).decode(),
                      "pixels": rounded(rgb, 12), "logits": rounded(logits[0]),
                      "probabilities": rounded(torch.softmax(logits, dim=1)[0])})
    return cases


def shapes_goldens(model, graph, pixels, masks, labels, cam_layer):
    m32 = folded_cnn(graph)
    with torch.no_grad():
        x = torch.tensor(image_input(pixels[:64]), dtype=torch.float32)
        err = float((m32(x) - model(x)).abs().max())
    assert err < 1e-5, f"the folded CNN differs from the trained one by {err}"
    m64 = m32.double()
    acts = {}
    last_relu = m64.features[-1]
    last_relu.register_forward_hook(lambda mod, i, o: acts.__setitem__("a", o))
    instances = []
    for k in range(6):
        x = torch.tensor(image_input(pixels[k:k + 1]), requires_grad=True)
        logits = m64.logits(x)
        probs = torch.softmax(logits, dim=1)
        t = int(probs.argmax())
        a = acts["a"]
        a.retain_grad()
        probs[0, t].backward()
        inst = {"label": gd.SHAPES[int(labels[k])], "pixels": pixels[k].tolist(),
                "b64": base64.b64encode(png_bytes(pixels[k])).decode(),
                "logits": rounded(logits[0]), "probabilities": rounded(probs[0]), "target": t,
                "gradient": rounded(x.grad[0], 9)}
        if k < 3:
            write(f"{GOLDEN}/shapes_{k}.png", png_bytes(pixels[k]))
            inst["png"] = f"shapes_{k}.png"
            g, act = a.grad[0], a[0].detach()
            cam = F.relu((g.mean(dim=(1, 2))[:, None, None] * act).sum(0))
            up = F.interpolate(cam[None, None], size=(gd.SIZE, gd.SIZE), mode="bilinear", align_corners=False)[0, 0]
            inst["gradcam"] = {"layer": cam_layer, "activation": rounded(act, 9), "gradient": rounded(g, 9),
                               "cam": rounded(cam), "cam_upsampled": rounded(up)}
        instances.append(inst)
    decoding = decoding_goldens(m64, pixels)
    write(f"{GOLDEN}/shapes.json", dumps({
        "model": "shapes", "reference": "torch float64 on the exported weights (BatchNorm folded into the "
                                     "convolutions, float32 widened to double), tools/make_graph_models.py",
        "input": IMAGE_PRE, "classes": gd.SHAPES,
        "notes": "pixels [C][H][W] uint8; b64 = the same image as PNG; gradient = d probabilities[target] / "
                 "d model input [C][H][W] (after preprocessing); gradcam at the last Relu: activation and "
                 "gradient [K][h][w], cam = relu(sum_k mean_hw(gradient_k) * activation_k), cam_upsampled = "
                 "bilinear, align_corners=false; decoding: images of another size, mode or format, with the pixel values "
                 "[C][H][W] the model sees (before scale/mean/std) and its outputs: alpha dropped, gray copied to "
                 "R, G, B, other sizes resized bilinearly (half-pixel centres, no antialiasing, no rounding); "
                 "the JPEG's pixels as Pillow (libjpeg-turbo) decodes them", "instances": instances, "decoding": decoding}))
    scores = pointing_game(m64, acts, pixels[6:106], masks[6:106])
    print(f"shapes: pointing game of PyTorch's attributions {scores}")
    pointing = []
    for k in range(6, 106):
        ys, xs = np.nonzero(masks[k])
        pointing.append({"label": gd.SHAPES[int(labels[k])], "b64": base64.b64encode(png_bytes(pixels[k])).decode(),
                         "mask": ["".join("1" if v else "0" for v in row) for row in masks[k]],
                         "bbox": [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]})
    write(f"{GOLDEN}/shapes_pointing.json", dumps({
        "model": "shapes", "notes": "held-out images (PNG, base64) whose class is decided by the object in "
                                    "mask ('1' = object pixel, one string per row); bbox = [y0, x0, y1, x1)",
        "torch_scores": {"pointing_game": scores, "definition": POINTING_DEFINITION}, "images": pointing}))


# ---- the text models -------------------------------------------------------------------------
class EncoderLayer(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-12), nn.LayerNorm(d, eps=1e-12)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, h, bias):
        b, t, d = h.shape
        split = lambda z: z.view(b, t, self.heads, self.dh).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, t, d)
        h = self.ln1(h + self.o(ctx))
        return self.ln2(h + self.ff2(F.gelu(self.ff1(h))))


class TinyBert(nn.Module):
    """BERT's encoder, small: token + position embeddings, LayerNorm, 2 layers of 4-head
    self-attention (padding masked with -10000) and GELU feed-forward, tanh pooler on [CLS]."""

    def __init__(self, vocab, d=64, heads=4, layers=2, ff=128, max_len=64):
        super().__init__()
        self.word = nn.Embedding(vocab, d, padding_idx=0)
        self.pos = nn.Embedding(max_len, d)
        self.register_buffer("position_ids", torch.arange(max_len)[None])
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff) for _ in range(layers))
        self.pool = nn.Linear(d, d)
        self.cls = nn.Linear(d, 2)

    def logits_from(self, e, attention_mask):
        h = self.ln(e + self.pos(self.position_ids[:, :e.shape[1]]))
        bias = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * -10000.0
        for layer in self.layers:
            h = layer(h, bias)
        return self.cls(torch.tanh(self.pool(h[:, 0])))

    def forward(self, input_ids, attention_mask):
        return torch.softmax(self.logits_from(self.word(input_ids), attention_mask), dim=-1)


class GruClassifier(nn.Module):
    """Embedding, one bidirectional GRU layer, the two final states into a linear layer."""

    def __init__(self, vocab, d=32, hidden=32):
        super().__init__()
        self.word = nn.Embedding(vocab, d, padding_idx=0)
        self.gru = nn.GRU(d, hidden, batch_first=True, bidirectional=True)
        self.cls = nn.Linear(2 * hidden, 2)

    def logits_from(self, e, attention_mask=None):
        _, h = self.gru(e)
        return self.cls(torch.cat([h[0], h[1]], dim=1))

    def forward(self, input_ids):
        return torch.softmax(self.logits_from(self.word(input_ids)), dim=-1)


GOLDEN_TEXTS = [
    "A great movie!",
    "Boring.",
    "The acting was superb, but the ending felt rather dull and the script was a waste of two hours.",
    "Café naïve: an unwatchable, disappointing sequel... 😀 Spectacular popcorn though",
    "A MASTERPIECE of a film; I enjoyed it. Wonderful music, charming cast, brilliant camera work!",
    "terrible",
]


def text_batches(ids, labels, mask_input, rng_seed):
    """Training batches: padded with mask for models with attention_mask, equal-length buckets for the GRU."""
    def batches(epoch):
        g = np.random.default_rng(rng_seed + epoch)
        if mask_input:
            perm = g.permutation(len(ids))
            groups = [perm[i:i + 64] for i in range(0, len(ids), 64)]
        else:
            by_len = {}
            for i in g.permutation(len(ids)):
                by_len.setdefault(len(ids[i]), []).append(i)
            groups = [v[i:i + 64] for v in by_len.values() for i in range(0, len(v), 64)]
            groups = [groups[i] for i in g.permutation(len(groups))]
        out = []
        for grp in groups:
            t = max(len(ids[i]) for i in grp)
            x = torch.zeros(len(grp), t, dtype=torch.int64)
            m = torch.zeros(len(grp), t, dtype=torch.int64)
            for r, i in enumerate(grp):
                x[r, :len(ids[i])] = torch.tensor(ids[i])
                m[r, :len(ids[i])] = 1
            out.append((x, m, torch.tensor(labels[grp])))
        return out
    return batches


def predict_texts(model, ids, mask_input):
    """Probabilities, float32, one row at a time (no padding)."""
    with torch.no_grad():
        rows = []
        for seq in ids:
            x = torch.tensor([seq])
            rows.append(model(x, torch.ones_like(x)) if mask_input else model(x))
        return torch.cat(rows).double().numpy()


def make_text_model(name, texts):
    tr_x, tr_y, te_x, te_y, te_planted = texts
    bert = name == "reviews_bert"
    tok = gd.wordpiece_tokenizer(tr_x) if bert else gd.wordlevel_tokenizer(tr_x)
    vocab_size = len(tok["model"]["vocab"])
    enc = lambda t: gd.encode(t, tok, MAX_LENGTH[name])[1]  # noqa: E731
    tr_ids, te_ids = [enc(t) for t in tr_x], [enc(t) for t in te_x]
    torch.manual_seed(2)
    t0 = time.time()
    model = TinyBert(vocab_size, max_len=MAX_LENGTH[name]) if bert else GruClassifier(vocab_size)
    fwd = (lambda m, b: m.logits_from(m.word(b[0]), b[1])) if bert else (lambda m, b: m.logits_from(m.word(b[0])))
    epochs = 10 if bert else 6
    train(model, text_batches(tr_ids, tr_y, bert, 3), epochs, 2e-3 if bert else 3e-3,
          lambda m, b: F.cross_entropy(fwd(m, b), b[2]))
    p_te = predict_texts(model, te_ids, bert)
    acc = float((p_te.argmax(1) == te_y).mean())
    print(f"{name}: vocabulary {vocab_size}, test accuracy {acc:.4f} ({time.time() - t0:.0f} s)")

    d = f"models/{name}"
    onnx_path = os.path.join(ROOT, d, "model.onnx")
    os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
    dummy = torch.tensor([enc(GOLDEN_TEXTS[0])])
    names = ["input_ids", "attention_mask"] if bert else ["input_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    torch.onnx.export(model, (dummy, torch.ones_like(dummy)) if bert else (dummy,), onnx_path,
                      opset_version=OPSET[name], input_names=names, output_names=["probabilities"],
                      do_constant_folding=True, dynamic_axes=dict(axes, probabilities={0: "batch"}))
    graph, ops = onnx_summary(onnx_path)
    onnx.checker.check_model(graph)
    emb_init = "word.weight"
    emb_tensor = [n.output[0] for n in graph.graph.node if n.op_type == "Gather" and n.input[0] == emb_init][0]
    # ONNX Runtime on a padded batch (BERT) or on equal-length rows (GRU)
    if bert:
        sel = list(range(64))
        t = max(len(te_ids[i]) for i in sel)
        x = np.zeros((len(sel), t), dtype=np.int64)
        m = np.zeros_like(x)
        for r, i in enumerate(sel):
            x[r, :len(te_ids[i])], m[r, :len(te_ids[i])] = te_ids[i], 1
        feeds = {"input_ids": x, "attention_mask": m}
    else:
        n = max(set(map(len, te_ids)), key=lambda k: sum(len(s) == k for s in te_ids))
        sel = [i for i, s in enumerate(te_ids) if len(s) == n][:64]
        feeds = {"input_ids": np.array([te_ids[i] for i in sel], dtype=np.int64)}
    ort_err = check_ort(name, onnx_path, feeds, p_te[sel])

    write(f"{d}/tokenizer.json", json.dumps(tok, indent=1, ensure_ascii=False) + "\n")
    check_tokenizer(name, tok, GOLDEN_TEXTS + [gd.make_text(np.random.default_rng(7), long=True)[0]] + te_x[:216],
                    MAX_LENGTH[name])
    inp = {"kind": "text", "tokenizer": "tokenizer.json", "max_length": MAX_LENGTH[name]}
    if not bert:
        inp["embedding"] = emb_tensor
    arch = ("TinyBert: token + position embeddings (d 64), LayerNorm, 2 x (4-head self-attention, "
            "GELU feed-forward 128, post-LayerNorm), tanh pooler on [CLS], Linear(64, 2), Softmax") if bert else \
        "Embedding(d 32), bidirectional GRU(32), Linear(64, 2) on the two final states, Softmax"
    bundle = {"format": "explaind.model/v1", "task": "classification", "classes": gd.LABELS, "onnx": "model.onnx",
              "input": inp, "output": "probabilities", "background": {"texts": te_x[:16]},
              "x-source": {"script": "tools/make_graph_models.py", "data": "synthetic (tools/graph_data.py), seed 2",
                           "architecture": arch, "vocabulary": vocab_size,
                           "training": f"{len(tr_x)} texts, Adam, batch 64, {epochs} epochs",
                           "opset": OPSET[name], "operators": ops, "embedding": emb_tensor,
                           "versions": {"torch": torch.__version__, "onnx": onnx.__version__}},
              "x-test-metric": {"name": "accuracy", "value": acc, "split": "test", "rows": len(te_y)}}
    write(f"{d}/model.json", dumps(bundle))
    m64 = text_goldens(name, model, tok, bert, emb_tensor)
    recall = planted_recall(name, m64, tok, bert, te_x[16:216], te_planted[16:216])
    print(f"{name}: planted-word recall of PyTorch's attributions {recall}")
    return {"name": name, "kind": "text", "accuracy": acc, "rows": len(te_y), "ops": ops,
            "bytes": os.path.getsize(onnx_path), "ort": ort_err, "vocab": vocab_size, "recall": recall}


def text_goldens(name, model, tok, bert, emb_tensor):
    m64 = (TinyBert(len(tok["model"]["vocab"]), max_len=MAX_LENGTH[name]) if bert
           else GruClassifier(len(tok["model"]["vocab"])))
    m64.load_state_dict(model.state_dict())
    m64 = m64.double().eval()
    texts = GOLDEN_TEXTS + [gd.make_text(np.random.default_rng(7), long=True)[0]]
    instances = []
    for text in texts:
        tokens, ids, offsets, truncated = gd.encode(text, tok, MAX_LENGTH[name])
        x = torch.tensor([ids])
        e = m64.word(x).detach().requires_grad_()
        logits = m64.logits_from(e, torch.ones_like(x)) if bert else m64.logits_from(e)
        probs = torch.softmax(logits, dim=1)
        t = int(probs.argmax())
        probs[0, t].backward()
        g = e.grad[0]
        instances.append({"text": text, "tokens": tokens, "ids": ids, "offsets": offsets, "truncated": truncated,
                          "logits": rounded(logits[0]), "probabilities": rounded(probs[0]), "target": t,
                          "embedding": rounded(e[0].detach(), 9), "gradient": rounded(g, 9),
                          "gradient_x_embedding": rounded((g * e[0]).sum(1)),
                          "saliency": rounded(g.norm(dim=1))})
    write(f"{GOLDEN}/{name}.json", dumps({
        "model": name, "reference": "torch float64 (model.double()), tools/make_graph_models.py",
        "max_length": MAX_LENGTH[name], "embedding_tensor": emb_tensor, "classes": gd.LABELS,
        "notes": "offsets are [start, end) in Unicode code points of the text, null for special tokens; "
                 "embedding = the token-embedding output [T][d]; gradient = d probabilities[target] / d embedding; "
                 "gradient_x_embedding and saliency are per token (sum over d of e*g, and ||g||_2)",
        "instances": instances}))
    return m64


def make_texts():
    rng = np.random.default_rng(2)
    tr_x, tr_y, _ = gd.make_texts(rng, 8000)
    te_x, te_y, te_planted = gd.make_texts(rng, 1000)
    return tr_x, tr_y, te_x, te_y, te_planted


RECALL_DEFINITION = (
    "mean over the texts of the share of planted words among the k words with the largest |attribution|, "
    "k = the number of planted words in the text; a word (\\w+ in the text) gets the sum of its tokens' "
    "attributions (its ## pieces), target = the predicted class; input_x_gradient = sum_d e*g, saliency = "
    "||g||_2, integrated_gradients = pad baseline (every token replaced by the pad token, whose embedding is "
    "zero), 50 intervals, trapezoid rule; planted words cut off by truncation count as missed")


def planted_recall(name, m64, tok, bert, texts, planted):
    hits = {"input_x_gradient": 0.0, "saliency": 0.0, "integrated_gradients": 0.0}
    alphas = torch.linspace(0, 1, 51, dtype=torch.float64)[:, None, None]
    for text, words in zip(texts, planted):
        _, ids, offsets, _ = gd.encode(text, tok, MAX_LENGTH[name])
        x = torch.tensor([ids])
        e = m64.word(x).detach()
        base = m64.word(torch.zeros_like(x)).detach()
        es = (base + alphas * (e - base)).requires_grad_()
        mask = torch.ones(len(alphas), len(ids), dtype=torch.int64)
        p = torch.softmax(m64.logits_from(es, mask) if bert else m64.logits_from(es), dim=-1)
        t = int(p[-1].argmax())
        p[:, t].sum().backward()
        g = es.grad
        avg = (g[:-1] + g[1:]).mean(0) / 2
        per_token = {"input_x_gradient": (g[-1] * e[0]).sum(-1), "saliency": g[-1].norm(dim=-1),
                     "integrated_gradients": ((e - base)[0] * avg).sum(-1)}
        spans = [m.span() for m in re.finditer(r"\w+", text)]
        owner = [None if o is None else next((w for w, (a, b) in enumerate(spans) if a <= o[0] < b), None)
                 for o in offsets]
        for k, v in per_token.items():
            score = np.zeros(len(spans))
            for j, w in enumerate(owner):
                if w is not None:
                    score[w] += float(v[j])
            top = np.argsort(-np.abs(score), kind="stable")[:len(words)]
            hits[k] += sum(text[spans[w][0]:spans[w][1]].lower() in gd.PLANTED for w in top) / len(words)
    return {k: v / len(texts) for k, v in hits.items()}


def write_planted(texts, scores):
    _, _, te_x, te_y, te_planted = texts
    write(f"{GOLDEN}/planted_words.json", dumps({
        "weights": gd.PLANTED, "wordpiece_split": gd.WORDPIECE_SPLIT, "classes": gd.LABELS,
        "rule": "label = positive when the sum of the planted words' weights is > 0 (|sum| >= 0.5); "
                "no other word carries signal",
        "torch_scores": {"planted_word_recall": scores, "definition": RECALL_DEFINITION},
        "texts": [{"text": t, "label": gd.LABELS[int(y)], "planted": p}
                  for t, y, p in zip(te_x[16:216], te_y[16:216], te_planted[16:216])]}))


# ---- README ---------------------------------------------------------------------------------
README_MARK = "## Image and text models"


def update_readme(results):
    rows = []
    for r in results:
        ort = "not run" if r["ort"] is None else f"{r['ort']:.0e}"
        rows.append(f"| {r['name']} | {r['kind']} | opset {OPSET[r['name']]}: " +
                    ", ".join(f"{k} {v}" if v > 1 else k for k, v in r["ops"].items()) +
                    f" | {r['bytes'] // 1024} KB | {r['rows']} | accuracy {r['accuracy']:.4f} | {ort} |")
    section = "\n".join([
        README_MARK, "",
        "Generated by `/usr/bin/python3 tools/make_graph_models.py` (do not edit by hand) from synthetic",
        "data (tools/graph_data.py); how they are made: docs/models.md. Each folder holds `model.json`",
        "(MODEL_FORMAT.md, \"Graph models\"), `model.onnx` and the tokenizer or background images.",
        "Accuracy is measured by torch (float32) on a held-out split of 1000 rows; the last column is",
        "the largest difference between ONNX Runtime's and torch's probabilities on a batch of those",
        "rows (64 images; 64 texts padded with their attention mask; for the GRU, the texts of the",
        "most common length, as the server batches them).",
        "",
        "| model | input | graph operators | size | test rows | test metric | ONNX Runtime vs torch |",
        "|---|---|---|---|---|---|---|",
        *rows, ""])
    path = os.path.join(ROOT, "models/README.md")
    old = open(path).read()
    head = old.split(README_MARK)[0].rstrip("\n") + "\n\n"
    write("models/README.md", head + section)


def main():
    which = sys.argv[1:] or ["shapes", "reviews_bert", "reviews_gru"]
    results = []
    if "shapes" in which:
        results.append(make_shapes())
    if any(w.startswith("reviews") for w in which):
        texts = make_texts()
        for name in ("reviews_bert", "reviews_gru"):
            if name in which:
                results.append(make_text_model(name, texts))
        write_planted(texts, {r["name"]: r["recall"] for r in results if "recall" in r})
    if len(results) == 3:
        update_readme(results)
    for r in results:
        print(f"{r['name']}: {r['bytes'] // 1024} KB, operators {r['ops']}")


if __name__ == "__main__":
    main()

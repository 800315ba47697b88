#!/usr/bin/python3
"""image_explain_reference.py — float64 torch references for explaind's image explanations
(tests/test_image_explain.c; frozen in tests/golden/image_explain/).

    /usr/bin/python3 tools/image_explain_reference.py [OUT]     # default tests/golden/image_explain/shapes.json
    /usr/bin/python3 tools/image_explain_reference.py --bench   # timings of one 32x32 image (bench/run.sh):
                                                                 # JSON lines {"kind":"image_ref","id":...,"median_ms":...}

Captum is not packaged for Debian, so its definitions are written here directly in torch
float64 (Debian's python3-torch): the model is models/shapes/model.onnx run op by op from
its own initializers; f_t = softmax(logits)[t] (the "probability" output) with t the
predicted class; pictures are preprocessed as the bundle says ((p/255 - 0.5) / 0.25).
  saliency          |df/dx|                                   (Captum Saliency)
  input_x_gradient  x * df/dx                                 (InputXGradient)
  integrated_gradients, gausslegendre 50 steps, baseline black (pixel 0), and riemann_right
                    sum_k w_k df/dx(b + a_k (x - b)) * (x - b)  (IntegratedGradients)
  grad_cam          relu?(sum_k mean_hw(dA_k) A_k) at the last Relu; upsampled with
                    F.interpolate(bilinear, align_corners=False)   (LayerGradCam + interpolate)
  occlusion         window (3,4,4), strides (3,2,2), baseline 0 (Captum Occlusion)
  lime              lime_image.LimeImageExplainer.explain_instance (lime is not packaged for
                    Debian; its steps are written here with numpy and scikit-learn's Ridge):
                    given segments (8x8 squares), segment-mean fudged image, randint(0, 2)
                    rows with row 0 all ones, cosine distances, kernel sqrt(exp(-d^2/0.25^2)),
                    'auto' selection with every feature (highest_weights), Ridge(alpha=1)
                    weighted; 1000 samples; the mean over LIME_SEEDS seeds
Pointing game over the 100 held-out images of tests/golden/graph/shapes_pointing.json:
the fraction whose heatmap (attribution summed over channels; Grad-CAM upsampled) has its
maximum inside the object mask dilated by one pixel (4-neighbours).
"""
import base64
import io
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_GOLDEN = 4
torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


class OnnxTorch:
    """The shapes CNN's operators, in torch float64; `fetch` returns an inner tensor too."""

    def __init__(self, path):
        m = onnx.load(path)
        self.w = {i.name: torch.tensor(numpy_helper.to_array(i).astype(np.float64)) for i in m.graph.initializer}
        self.nodes = m.graph.node
        self.input = m.graph.input[0].name

    def run(self, x, fetch=None, logits_only=True):
        v = {self.input: x}
        fetched = None
        for n in self.nodes:
            a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
            ins = [v[i] if i in v else self.w[i] for i in n.input]
            if n.op_type == "Conv":
                p = a.get("pads", [0, 0, 0, 0])
                y = F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=a.get("strides", [1, 1]),
                             padding=(p[0], p[1]), dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
            elif n.op_type == "Relu":
                y = F.relu(ins[0])
            elif n.op_type == "MaxPool":
                y = F.max_pool2d(ins[0], a["kernel_shape"], a.get("strides"))
            elif n.op_type == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif n.op_type == "Flatten":
                y = ins[0].reshape(ins[0].shape[0], -1)
            elif n.op_type == "Gemm":
                y = ins[0] @ (ins[1].t() if a.get("transB", 0) else ins[1]) + ins[2]
            elif n.op_type == "Softmax":
                if logits_only:
                    return ins[0], fetched
                y = torch.softmax(ins[0], dim=-1)
            else:
                raise SystemExit("unsupported op " + n.op_type)
            v[n.output[0]] = y
            if fetch == n.output[0]:
                fetched = y
        raise SystemExit("no final Softmax")


def load_images():
    d = json.load(open(os.path.join(ROOT, "tests/golden/graph/shapes_pointing.json")))
    xs, masks, b64s = [], [], []
    for im in d["images"]:
        raw = base64.b64decode(im["b64"])
        p = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.float64)
        xs.append(((p / 255.0 - 0.5) / 0.25).transpose(2, 0, 1))
        masks.append(np.array([[c == "1" for c in row] for row in im["mask"]]))
        b64s.append(im["b64"])
    return torch.tensor(np.stack(xs)), masks, b64s


def prob_t(model, x, t):
    z, _ = model.run(x)
    return torch.softmax(z, dim=-1).gather(1, t[:, None])[:, 0]


def grad(model, x, t):
    x = x.clone().requires_grad_(True)
    f = prob_t(model, x, t)
    (g,) = torch.autograd.grad(f.sum(), x)
    return g, f.detach()


def quadrature(rule, n):
    if rule == "gausslegendre":
        a, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (a + 1), 0.5 * w
    if rule == "riemann_right":
        return np.linspace(1.0 / n, 1, n), np.full(n, 1.0 / n)
    raise SystemExit(rule)


def integrated_gradients(model, x, t, b, rule, n):
    alphas, ws = quadrature(rule, n)
    B = x.shape[0]
    path = torch.cat([b + float(a) * (x - b) for a in alphas])  # step-major, as Captum
    g, _ = grad(model, path, t.repeat(n))
    tot = sum(float(ws[k]) * g[k * B:(k + 1) * B] for k in range(n))
    attr = tot * (x - b)
    with torch.no_grad():
        delta = attr.sum(dim=(1, 2, 3)) - (prob_t(model, x, t) - prob_t(model, b, t))
    return attr, delta


def grad_cam(model, x, t, layer, relu):
    x = x.clone().requires_grad_(True)
    z, A = model.run(x, fetch=layer)
    f = torch.softmax(z, dim=-1).gather(1, t[:, None])[:, 0]
    (dA,) = torch.autograd.grad(f.sum(), A)
    cam = (dA.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1, keepdim=True)
    if relu:
        cam = F.relu(cam)
    heat = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return cam[:, 0].detach(), heat[:, 0].detach()


def occlusion(model, x, t, window=(3, 4, 4), strides=(3, 2, 2), baseline=0.0):
    B, C, H, W = x.shape
    counts = [(s - w) // st + 1 for s, w, st in zip((C, H, W), window, strides)]
    attr = torch.zeros_like(x)
    cover = torch.zeros((C, H, W))
    with torch.no_grad():
        fx = prob_t(model, x, t)
        occluded, where = [], []
        for i in range(counts[0]):
            for j in range(counts[1]):
                for k in range(counts[2]):
                    sl = (slice(i * strides[0], i * strides[0] + window[0]), slice(j * strides[1], j * strides[1] + window[1]),
                          slice(k * strides[2], k * strides[2] + window[2]))
                    xo = x.clone()
                    xo[(slice(None),) + sl] = baseline
                    occluded.append(xo)
                    where.append(sl)
        fo = prob_t(model, torch.cat(occluded), t.repeat(len(occluded))).reshape(len(occluded), B)
        for w, sl in enumerate(where):
            attr[(slice(None),) + sl] += (fx - fo[w])[:, None, None, None]
            cover[sl] += 1
    return attr / cover


def pointing(heat, mask):
    m = mask.copy()
    m[1:, :] |= mask[:-1, :]
    m[:-1, :] |= mask[1:, :]
    m[:, 1:] |= mask[:, :-1]
    m[:, :-1] |= mask[:, 1:]
    i = int(np.argmax(heat))
    return bool(m.flat[i])


LIME_SEEDS = 10


def grid_segments(h, w, size):
    return (np.arange(h)[:, None] // size) * ((w + size - 1) // size) + np.arange(w)[None, :] // size


def lime_image(model, x, seg, label, num_samples, seed):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import pairwise_distances
    rs = np.random.RandomState(seed)
    S = int(seg.max()) + 1
    fudged = x.copy()
    for s in range(S):
        m = seg == s
        fudged[:, m] = x[:, m].mean(axis=1)[:, None]
    data = rs.randint(0, 2, num_samples * S).reshape((num_samples, S))
    data[0, :] = 1
    imgs = np.repeat(x[None], num_samples, axis=0)
    for r in range(num_samples):
        off = np.isin(seg, np.where(data[r] == 0)[0])
        imgs[r][:, off] = fudged[:, off]
    with torch.no_grad():
        z, _ = model.run(torch.tensor(imgs))
        y = torch.softmax(z, dim=-1)[:, label].numpy()
    d = pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    w = np.sqrt(np.exp(-(d ** 2) / 0.25 ** 2))
    clf = Ridge(alpha=0.01, fit_intercept=True)  # highest_weights: every feature is kept
    clf.fit(data, y, sample_weight=w)
    used = sorted(range(S), key=lambda j: -abs(clf.coef_[j] * data[0, j]))
    ridge = Ridge(alpha=1, fit_intercept=True)
    ridge.fit(data[:, used], y, sample_weight=w)
    coef = np.zeros(S)
    coef[used] = ridge.coef_
    return coef, ridge.intercept_, ridge.score(data[:, used], y, sample_weight=w), ridge.predict(data[0:1, used])[0]


def lime_mean(model, x, seg, label, num_samples=1000):
    runs = [lime_image(model, x, seg, label, num_samples, s) for s in range(LIME_SEEDS)]
    return {"weights": np.mean([r[0] for r in runs], axis=0).tolist(), "intercept": float(np.mean([r[1] for r in runs])),
            "score": float(np.mean([r[2] for r in runs])), "local_pred": float(np.mean([r[3] for r in runs]))}


def round9(v):
    if isinstance(v, float):
        return float("%.9g" % v)
    if isinstance(v, list):
        return [round9(e) for e in v]
    if isinstance(v, dict):
        return {k: round9(e) for k, e in v.items()}
    return v


def main():
    model = OnnxTorch(os.path.join(ROOT, "models/shapes/model.onnx"))
    layer = json.load(open(os.path.join(ROOT, "models/shapes/model.json")))["x-source"]["gradcam_layer"]
    X, masks, b64s = load_images()
    with torch.no_grad():
        z, _ = model.run(X)
        T = torch.argmax(z, dim=-1)
    black = torch.full_like(X, (0 - 0.5) / 0.25)
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        # one 32x32 image, as bench/run.sh sends it: median wall time of 5 runs after a warm-up
        x, t = X[:1], T[:1]
        cases = [("ig_50", lambda: integrated_gradients(model, x, t, black[:1], "gausslegendre", 50)),
                 ("occlusion_4x4_s2", lambda: occlusion(model, x, t)),
                 ("lime_1000", lambda: lime_image(model, X[0].numpy(), grid_segments(32, 32, 8), int(T[0]), 1000, 0))]
        for name, fn in cases:
            fn()
            ms = []
            for _ in range(5):
                t0 = time.perf_counter()
                fn()
                ms.append((time.perf_counter() - t0) * 1e3)
            print(json.dumps({"kind": "image_ref", "id": name, "median_ms": sorted(ms)[2], "torch": torch.__version__,
                              "threads": torch.get_num_threads()}))
        return
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/golden/image_explain/shapes.json")
    res = {"model": "shapes", "layer": layer, "notes": __doc__.split("\n\n")[2], "images": b64s[:N_GOLDEN],
           "targets": T[:N_GOLDEN].tolist()}
    x, t = X[:N_GOLDEN], T[:N_GOLDEN]
    g, _ = grad(model, x, t)
    res["saliency"] = g.abs().tolist()
    res["input_x_gradient"] = (x * g).tolist()
    for rule, n in [("gausslegendre", 50), ("riemann_right", 20)]:
        a, d = integrated_gradients(model, x, t, black[:N_GOLDEN], rule, n)
        res["integrated_gradients_" + rule] = a.tolist()
        res["delta_" + rule] = d.tolist()
    for relu in (True, False):
        cam, heat = grad_cam(model, x, t, layer, relu)
        res["grad_cam_relu" if relu else "grad_cam_norelu"] = {"cam": cam.tolist(), "heat": heat.tolist()}
    res["occlusion"] = occlusion(model, x, t).tolist()
    seg = grid_segments(32, 32, 8)
    res["lime_segments"] = seg.tolist()
    res["lime"] = [lime_mean(model, x[i].numpy(), seg, int(t[i])) for i in range(N_GOLDEN)]
    # pointing game over every held-out image
    hits = {"saliency": 0, "integrated_gradients": 0, "grad_cam": 0}
    for s in range(0, X.shape[0], 25):
        xs, ts = X[s:s + 25], T[s:s + 25]
        g, _ = grad(model, xs, ts)
        ig, _ = integrated_gradients(model, xs, ts, black[s:s + 25], "gausslegendre", 50)
        _, heat = grad_cam(model, xs, ts, layer, True)
        for i in range(xs.shape[0]):
            mk = masks[s + i]
            hits["saliency"] += pointing(g[i].abs().sum(0).numpy(), mk)
            hits["integrated_gradients"] += pointing(ig[i].sum(0).detach().numpy(), mk)
            hits["grad_cam"] += pointing(heat[i].numpy(), mk)
    res["pointing"] = {k: v / X.shape[0] for k, v in hits.items()}
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:  # 9 significant digits: far below the 2e-3 the tests allow
        f.write(json.dumps(round9(res), separators=(",", ":")))
    print(out_path, res["pointing"])


if __name__ == "__main__":
    main()

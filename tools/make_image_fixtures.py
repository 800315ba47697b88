#!/usr/bin/python3
"""Image fixtures for tests/test_image.c and the fuzz_image seed corpus.

Writes small PNG and JPEG files in every colour type Pillow makes, and
tests/golden/image/image.json with, per file, the pixels Pillow decodes (the
reference for our decoders) and, per resize case, the model input that torch computes:
channels converted (gray -> RGB repeated, RGB -> gray as ITU-R 601 luma in double),
F.interpolate(mode="bilinear", align_corners=False, antialias=False) in float64, then
(p * scale - mean[c]) / std[c]. Run with Debian's python3 (numpy, Pillow, torch):
    /usr/bin/python3 tools/make_image_fixtures.py
"""
import io
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "golden", "image")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "image")
rng = np.random.default_rng(7)


def smooth(h, w, c):
    """A picture with gradients and an edge, so JPEG and resizing have work to do."""
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for k in range(c):
        v = 120 + 100 * np.sin(x / (2.0 + k) + y / 3.0) + 20 * (x > w // 2)
        planes.append(v + rng.normal(0, 6, size=(h, w)))
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def save(name, im, **kw):
    buf = io.BytesIO()
    im.save(buf, format="PNG" if name.endswith(".png") else "JPEG", **kw)
    data = buf.getvalue()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return data


def decoded(data):
    """What Pillow decodes: gray stays one channel, everything else RGB, alpha dropped."""
    im = Image.open(io.BytesIO(data))
    im.load()
    if im.mode in ("L", "LA", "1"):
        arr = np.asarray(im.convert("L"))[:, :, None]
    elif im.mode in ("I;16", "I;16B", "I"):
        arr = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)[:, :, None]
    else:
        arr = np.asarray(im.convert("RGB"))
    return arr


def model_input(arr, C, H, W, scale, mean, std):
    x = torch.from_numpy(arr.astype(np.float64)).permute(2, 0, 1)  # (c, h, w)
    if x.shape[0] == 1 and C == 3:
        x = x.repeat(3, 1, 1)
    elif x.shape[0] == 3 and C == 1:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    if x.shape[1:] != (H, W):
        x = F.interpolate(x[None], size=(H, W), mode="bilinear", align_corners=False, antialias=False)[0]
    m = torch.tensor(mean, dtype=torch.float64)[:, None, None]
    s = torch.tensor(std, dtype=torch.float64)[:, None, None]
    return ((x * scale - m) / s).reshape(-1).tolist()


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    files = {}
    rgb = smooth(9, 13, 3)
    gray = smooth(30, 40, 1)[:, :, 0]
    files["rgb.png"] = save("rgb.png", Image.fromarray(rgb, "RGB"))
    rgba = np.concatenate([rgb, rng.integers(0, 256, size=(9, 13, 1), dtype=np.uint8)], -1)
    files["rgba.png"] = save("rgba.png", Image.fromarray(rgba, "RGBA"))
    files["gray.png"] = save("gray.png", Image.fromarray(gray, "L"))
    la = np.stack([gray, 255 - gray], -1)
    files["gray_alpha.png"] = save("gray_alpha.png", Image.fromarray(la, "LA"))
    files["palette.png"] = save("palette.png", Image.fromarray(rgb, "RGB").quantize(colors=16))
    g16 = (gray.astype(np.uint16) * 257 + rng.integers(0, 200, size=gray.shape)).astype(np.uint16)
    files["gray16.png"] = save("gray16.png", Image.fromarray(g16, "I;16"))
    big = smooth(40, 56, 3)
    files["rgb.jpg"] = save("rgb.jpg", Image.fromarray(big, "RGB"), quality=90)
    files["rgb444.jpg"] = save("rgb444.jpg", Image.fromarray(big, "RGB"), quality=85, subsampling=0)
    files["gray.jpg"] = save("gray.jpg", Image.fromarray(gray, "L"), quality=90)
    files["progressive.jpg"] = save("progressive.jpg", Image.fromarray(big, "RGB"), quality=80, progressive=True)
    golden = {"files": [], "resize": [], "planes": []}
    for name, data in files.items():
        arr = decoded(data)
        golden["files"].append({"name": name, "height": arr.shape[0], "width": arr.shape[1],
                                "channels": arr.shape[2], "pixels": arr.reshape(-1).tolist()})
    cases = [
        ("rgb.png", 3, 32, 32, 1 / 255, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ("rgb.png", 3, 9, 13, 1.0, [0, 0, 0], [1, 1, 1]),
        ("rgb.png", 1, 5, 7, 1 / 255, [0.5], [0.25]),
        ("gray.png", 3, 12, 16, 1 / 255, [0.1, 0.2, 0.3], [0.5, 0.6, 0.7]),
        ("gray.png", 1, 7, 29, 2.0, [3.0], [4.0]),
        ("gray.png", 1, 1, 1, 1.0, [0.0], [1.0]),
        ("rgb.jpg", 3, 24, 24, 1 / 255, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
        ("rgba.png", 3, 64, 3, 1.0, [0, 0, 0], [1, 1, 1]),
    ]
    for name, C, H, W, scale, mean, std in cases:
        arr = decoded(files[name])
        golden["resize"].append({"file": name, "channels": C, "height": H, "width": W, "scale": scale,
                                 "mean": mean, "std": std, "x": model_input(arr, C, H, W, scale, mean, std)})
    for (c, h, w, H, W) in [(2, 5, 4, 11, 3), (1, 1, 6, 4, 1), (1, 8, 8, 32, 32), (3, 7, 7, 7, 7)]:
        src = rng.normal(size=(c, h, w))
        dst = F.interpolate(torch.from_numpy(src)[None], size=(H, W), mode="bilinear", align_corners=False,
                            antialias=False)[0]
        golden["planes"].append({"c": c, "h": h, "w": w, "H": H, "W": W, "src": src.reshape(-1).tolist(),
                                 "dst": dst.reshape(-1).tolist()})
    with open(os.path.join(OUT, "image.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    # Seed corpus of the fuzz target: a few of the files and a truncated one.
    for name in ("rgb.png", "gray_alpha.png", "palette.png", "gray.jpg", "progressive.jpg"):
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(files[name])
    with open(os.path.join(CORPUS, "truncated.png"), "wb") as f:
        f.write(files["rgb.png"][:60])


if __name__ == "__main__":
    main()

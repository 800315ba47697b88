#!/usr/bin/python3
"""make_segment_fixtures.py — fixture images and scikit-image's segmentations of them, for
tests/test_segment.c and tests/test_render.c (frozen in tests/golden/segment/).

    /usr/bin/python3 tools/make_segment_fixtures.py [OUTDIR]     # default tests/golden/segment
    /usr/bin/python3 tools/make_segment_fixtures.py --one IMAGE slic N_SEGMENTS COMPACTNESS SIGMA
    /usr/bin/python3 tools/make_segment_fixtures.py --one IMAGE quickshift KERNEL MAX_DIST RATIO SIGMA SEED

Images are 8-bit (as lime usually receives them), written as text: "C H W" then the C*H*W
values channel-major ([C][H][W], as explaind stores images). Label maps: "H W" then H*W
labels. A gray image is segmented as lime segments it: gray2rgb first. SLIC runs with
start_label=0 (explaind's labels start at 0); quickshift's labels start at 0 already.
cases.txt lists every comparison the C tests make, one per line.
--one segments one image file the same way and prints the label map (the live check).
Needs Debian's python3-skimage (0.19) and numpy.
"""
import os
import sys

import numpy as np
from scipy import ndimage as ndi
from skimage.color import gray2rgb
from skimage.segmentation import find_boundaries, quickshift, slic


def shapes(h, w, rng):
    y, x = np.mgrid[:h, :w].astype(float)
    img = np.zeros((h, w, 3))
    img[..., 0] = 40 + 60 * x / w
    img[..., 1] = 60 + 40 * y / h
    img[..., 2] = 90
    disc = (y - 0.35 * h) ** 2 + (x - 0.3 * w) ** 2 < (0.2 * min(h, w)) ** 2
    img[disc] = (220, 40, 30)
    sq = (abs(y - 0.7 * h) < 0.15 * h) & (abs(x - 0.7 * w) < 0.18 * w)
    img[sq] = (30, 60, 210)
    tri = (y > 0.55 * h) & (x < 0.45 * w) & (x - 0.05 * w > (h - y) * 0.4)
    img[tri] = (40, 200, 60)
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def texture(h, w, rng):
    y, x = np.mgrid[:h, :w].astype(float)
    img = np.zeros((h, w, 3))
    for c in range(3):
        noise = ndi.gaussian_filter(rng.normal(0, 1, (h, w)), 3 + c)
        noise /= noise.std() + 1e-12
        img[..., c] = 128 + 45 * noise + 30 * np.sin(x / (5 + 2 * c) + c) * np.cos(y / (7 + c))
    img += rng.normal(0, 4, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def to_gray(img):
    return np.round(img.astype(float) @ [0.2125, 0.7154, 0.0721]).astype(np.uint8)


def write_image(path, img):
    chw = img[np.newaxis] if img.ndim == 2 else np.transpose(img, (2, 0, 1))
    with open(path, "w") as f:
        f.write("%d %d %d\n" % chw.shape)
        f.write(" ".join(str(int(v)) for v in chw.ravel()) + "\n")


def read_image(path):
    with open(path) as f:
        vals = f.read().split()
    c, h, w = (int(v) for v in vals[:3])
    chw = np.array([float(v) for v in vals[3:]]).reshape(c, h, w)
    img = chw[0] if c == 1 else np.transpose(chw, (1, 2, 0))
    # the fixture values are 8-bit integers: as lime would receive them
    return img.astype(np.uint8) if np.all(chw == np.round(chw)) and chw.min() >= 0 and chw.max() <= 255 else img


def write_labels(path, lab):
    with open(path, "w") as f:
        f.write("%d %d\n" % lab.shape)
        f.write(" ".join(str(int(v)) for v in lab.ravel()) + "\n")


def as_rgb(img):
    return gray2rgb(img) if img.ndim == 2 else img


def run_slic(img, n, comp, sigma):
    return slic(as_rgb(img), n_segments=n, compactness=comp, sigma=sigma, start_label=0, channel_axis=-1)


def run_quickshift(img, k, md, ratio, sigma, seed):
    return quickshift(as_rgb(img), kernel_size=k, max_dist=md, ratio=ratio, sigma=sigma, random_seed=seed)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        img = read_image(sys.argv[2])
        a = sys.argv[4:]
        if sys.argv[3] == "slic":
            lab = run_slic(img, int(a[0]), float(a[1]), float(a[2]))
        else:
            lab = run_quickshift(img, float(a[0]), float(a[1]), float(a[2]), float(a[3]), int(a[4]))
        sys.stdout.write("%d %d\n" % lab.shape + " ".join(str(int(v)) for v in lab.ravel()) + "\n")
        return
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/golden/segment"
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(20261203)
    images = {
        "shapes32_rgb": shapes(32, 32, rng),
        "shapes64_gray": to_gray(shapes(64, 64, rng)),
        "texture64_rgb": texture(64, 64, rng),
        "texture96_rgb": texture(96, 96, rng),
        "texture32_gray": to_gray(texture(32, 32, rng)),
        "shapes48x80_rgb": shapes(48, 80, rng),
    }
    slic_params = [(50, 10.0, 1.0), (100, 20.0, 0.0), (12, 5.0, 2.0)]
    qs_params = {32: [(2.0, 10.0, 0.5, 0.0)], 48: [(3.0, 20.0, 0.5, 0.0)],
                 64: [(4.0, 200.0, 0.2, 0.0), (3.0, 10.0, 0.5, 1.0)], 96: [(4.0, 200.0, 0.2, 0.0), (5.0, 10.0, 0.5, 0.0)]}
    cases = []
    for name, img in images.items():
        write_image(os.path.join(out, name + ".img"), img)
        for i, (n, comp, sigma) in enumerate(slic_params):
            lab = run_slic(img, n, comp, sigma)
            f = "%s.slic%d.lab" % (name, i)
            write_labels(os.path.join(out, f), lab)
            cases.append("slic %s.img %d %g %g %s" % (name, n, comp, sigma, f))
            if i == 0:
                # lime's outline: the outer boundary of a 0/1 mask of chosen segments, and of the full map
                mask = np.isin(lab, [0, 3, 5, 8, 13]).astype(int)
                fb = "%s.slic%d.outer_mask.lab" % (name, i)
                write_labels(os.path.join(out, fb), find_boundaries(mask, mode="outer", background=0).astype(int))
                cases.append("outer_mask %s 0,3,5,8,13 %s" % (f, fb))
                fb = "%s.slic%d.outer.lab" % (name, i)
                write_labels(os.path.join(out, fb), find_boundaries(lab, mode="outer", background=0).astype(int))
                cases.append("outer %s %s" % (f, fb))
        for i, (k, md, ratio, sigma) in enumerate(qs_params[min(img.shape[:2])]):
            lab = run_quickshift(img, k, md, ratio, sigma, 42)
            f = "%s.qs%d.lab" % (name, i)
            write_labels(os.path.join(out, f), lab)
            cases.append("quickshift %s.img %g %g %g %g %s" % (name, k, md, ratio, sigma, f))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("# written by tools/make_segment_fixtures.py (scikit-image %s)\n" % __import__("skimage").__version__)
        f.write("\n".join(cases) + "\n")


if __name__ == "__main__":
    main()

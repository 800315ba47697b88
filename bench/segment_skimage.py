#!/usr/bin/python3
"""segment_skimage.py — scikit-image's slic and quickshift timed on the images and with the
parameters of bench/bench_segment.c (lime's settings), for bench/RESULTS.md.

    /usr/bin/python3 bench/segment_skimage.py [BENCH_SCALE]

Prints one JSON line per case: {"kind":"segment_ref","id":"slic_224",...,"median_ms":...,
"cpu_ms":...,"segments":S} (cpu_ms: median process CPU time of one call). The 8-bit image is passed as uint8, as lime passes it.
"""
import json
import math
import sys
import time

import numpy as np
import skimage
from skimage.segmentation import quickshift, slic


def make_image(side):
    img = np.zeros((side, side, 3), np.uint8)
    for c in range(3):
        for y in range(side):
            for x in range(side):
                v = 128 + 60 * math.sin(x / 9.0 + c) * math.cos(y / 7.0) + 40 * ((x // 28 + y // 28 + c) % 3 - 1)
                img[y, x, c] = min(255, max(0, math.floor(v + 0.5)))
    return img


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    for method in ("slic", "quickshift"):
        for side in (32, 224):
            img = make_image(side)
            if method == "slic":
                run = lambda: slic(img, n_segments=50, compactness=10, sigma=1, start_label=0)
            else:
                run = lambda: quickshift(img, kernel_size=4, max_dist=200, ratio=0.2, random_seed=42)
            times, cpu, start = [], [], time.perf_counter()
            while len(times) < 200 and (len(times) < 3 or time.perf_counter() - start < 1.5 * scale):
                t0, c0 = time.perf_counter(), time.process_time()
                lab = run()
                cpu.append((time.process_time() - c0) * 1e3)
                times.append((time.perf_counter() - t0) * 1e3)
            times.sort()
            cpu.sort()
            print(json.dumps({"kind": "segment_ref", "id": "%s_%d" % (method, side), "method": method, "side": side,
                              "runs": len(times), "median_ms": times[len(times) // 2], "min_ms": times[0], "cpu_ms": cpu[len(cpu) // 2],
                              "segments": int(lab.max()) + 1, "version": "scikit-image " + skimage.__version__}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch's times on the image and text demo models, to put beside explaind's graph engine.

Usage (from the repo root):   /usr/bin/python3 bench/graph_torch.py [--threads 1,2] [--scale S] [--jsonl]
Dependencies (Debian):        apt-get install python3-torch

The networks are the architectures of tools/make_graph_models.py with the shapes of the
demo models (models/shapes, models/reviews_bert, models/reviews_gru); their weights are
random (seeded), and so are the images and token ids (bench/bench_graph.c uses the same
shapes), since the time of dense kernels does not depend on the values; the
CNN has its BatchNorm layers removed, as the exported graph has them folded into the
convolutions. Measured, float32, eval mode:
  cnn_forward_256    shapes CNN, batch of 256 images, probabilities (no autograd)
  cnn_gradient_256   the same plus d p[target] / d input for every image (saliency's work)
  bert_forward_64    small BERT, 64 texts of 32 tokens (attention mask all ones), probabilities
  bert_gradient_64   the same plus d p[target] / d token-embedding output
  gru_forward_64     bidirectional GRU, 64 texts of 20 tokens (equal length, no padding)
  gru_gradient_64    the same plus d p[target] / d token-embedding output
Every measurement runs in its own process (torch.set_num_threads(T)), so that its peak
resident memory (ru_maxrss) is its own (import_rss_mb: the resident memory once torch is
imported, before the model and the data); the time is the median of repeated runs after
warm-up, wall clock and process CPU time. Output: one JSON line per (measurement, threads)
with --jsonl (bench/run.sh), else a table.
"""
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = ["cnn_forward_256", "cnn_gradient_256", "bert_forward_64", "bert_gradient_64",
           "gru_forward_64", "gru_gradient_64"]
LABELS = {
    "cnn_forward_256": "shapes CNN forward, batch 256",
    "cnn_gradient_256": "shapes CNN forward + input gradient, batch 256",
    "bert_forward_64": "reviews_bert forward, 64 texts of 32 tokens",
    "bert_gradient_64": "reviews_bert forward + embedding gradient, 64 texts of 32 tokens",
    "gru_forward_64": "reviews_gru forward, 64 texts of 20 tokens",
    "gru_gradient_64": "reviews_gru forward + embedding gradient, 64 texts of 20 tokens",
}


def setup(name):
    """Returns a function that runs the measured work once."""
    import numpy as np
    import torch
    from torch import nn
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import graph_data as gd
    import make_graph_models as mg

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    grad = name.split("_")[1] == "gradient"
    if name.startswith("cnn"):
        model = mg.ShapesCNN()
        for i, m in enumerate(model.features):
            if isinstance(m, nn.BatchNorm2d):
                model.features[i] = nn.Identity()
        model.eval()
        pixels, _, _ = gd.make_images(rng, 256)
        x = torch.tensor(mg.image_input(pixels), dtype=torch.float32)
        rows = torch.arange(256)

        def run():
            if not grad:
                with torch.no_grad():
                    return model(x)
            xi = x.clone().requires_grad_()
            p = model(xi)
            p[rows, p.argmax(1)].sum().backward()
            return xi.grad
        return run
    bert = name.startswith("bert")
    folder = "reviews_bert" if bert else "reviews_gru"
    with open(os.path.join(ROOT, "models", folder, "tokenizer.json")) as f:
        vocab = len(json.load(f)["model"]["vocab"])
    # the token ids do not change the time: fixed pseudo-random ids, as bench/bench_graph.c
    seq = 32 if bert else 20
    x = torch.tensor([[5 + (i * 7919) % (vocab - 5) for i in range(r * seq, (r + 1) * seq)] for r in range(64)])
    mask = torch.ones_like(x)
    model = (mg.TinyBert(vocab, max_len=mg.MAX_LENGTH[folder]) if bert else mg.GruClassifier(vocab)).eval()
    rows = torch.arange(64)

    def run():
        with torch.set_grad_enabled(grad):
            e = model.word(x)
            if grad:
                e = e.detach().requires_grad_()
            p = torch.softmax(model.logits_from(e, mask) if bert else model.logits_from(e), dim=-1)
            if not grad:
                return p
            p[rows, p.argmax(1)].sum().backward()
            return e.grad
    return run


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def measure_one(name, threads, scale):
    import torch
    torch.set_num_threads(threads)
    base = rss_mb()  # the interpreter and torch's libraries, before the model and data
    run = setup(name)
    for _ in range(2):
        run()
    times, cpus = [], []
    budget, t_start = 2.0 * scale, time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - t_start < budget and len(times) < 200):
        c0, t0 = time.process_time(), time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    times.sort()
    cpus.sort()
    rows = int(name.rsplit("_", 1)[1])
    return {"kind": "torch_graph", "target": name, "label": LABELS[name], "threads": threads, "rows": rows,
            "runs": len(times), "median_ms": 1e3 * times[len(times) // 2], "cpu_ms": 1e3 * cpus[len(cpus) // 2],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "import_rss_mb": base,
            "torch": torch.__version__}


def main():
    args = sys.argv[1:]
    if args and args[0] == "--one":  # child: one measurement
        print(json.dumps(measure_one(args[1], int(args[2]), float(args[3]))))
        return
    threads = [1, 2]
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    jsonl = "--jsonl" in args
    for i, a in enumerate(args):
        if a == "--threads":
            threads = [int(t) for t in args[i + 1].split(",")]
        if a == "--scale":
            scale = float(args[i + 1])
    env = dict(os.environ, OMP_NUM_THREADS=str(max(threads)))
    results = []
    for name in BENCHES:
        for t in threads:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name, str(t), str(scale)],
                               capture_output=True, text=True, env=env, cwd=ROOT)
            if r.returncode != 0:
                line = {"kind": "error", "what": f"graph_torch {name} threads {t}: {r.stderr.strip()[-300:]}"}
            else:
                line = json.loads(r.stdout.strip().splitlines()[-1])
            results.append(line)
            if jsonl:
                print(json.dumps(line), flush=True)
    if not jsonl:
        print("| measurement | threads | median ms | ms per row | CPU ms | peak RSS MB | of which torch loaded |\n"
              "|---|---|---|---|---|---|---|")
        for r in results:
            if r["kind"] == "error":
                print(f"| error: {r['what']} |||||")
                continue
            print(f"| {r['label']} | {r['threads']} | {r['median_ms']:.2f} | {r['median_ms'] / r['rows']:.3f} | "
                  f"{r['cpu_ms']:.2f} | {r['peak_rss_mb']:.0f} | {r['import_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()

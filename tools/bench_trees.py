#!/usr/bin/python3
"""Tree-ensemble benchmark helpers for bench/run.sh (needs python3-xgboost).

  bench_trees.py make DIR      a 120-tree depth-5 XGBoost model (binary:logistic, 20
                               features, deterministic) as the bundle DIR/bench_xgb/, and
                               the request bodies DIR/trees_predict.json and
                               DIR/trees_shap.json (1,000 rows each)
  bench_trees.py ref DIR       XGBoost's own C++ through its Python binding, in this
                               process, nthread=2: DMatrix from the same 1,000 rows, then
                               predict and pred_contribs; prints one JSON line per target
                               {"kind":"trees_ref","target","median_ms","p10_ms","runs"}
  bench_trees.py report LINES  the "Tree ensembles" block of bench/RESULTS.md from the
                               results file (wrk lines of the trees_* targets + trees_ref)
"""
import json
import os
import sys
import time

import numpy as np

ROWS = 1000
FEATURES = 20
TREES = 120
DEPTH = 5


def data(n, seed):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, FEATURES)
    X[rng.rand(n, FEATURES) < 0.05] = np.nan
    return X


def make(out):
    import xgboost as xgb
    X = data(5000, 0)
    z = np.nan_to_num(X[:, 0] - 2 * X[:, 1] + X[:, 2] * X[:, 3] + np.sin(3 * X[:, 4]))
    y = (z + 0.5 * np.random.RandomState(1).randn(len(X)) > 0).astype(int)
    b = xgb.train({"objective": "binary:logistic", "max_depth": DEPTH, "eta": 0.1, "nthread": 2, "seed": 0,
                   "tree_method": "hist"}, xgb.DMatrix(X, y, missing=np.nan), TREES)
    d = os.path.join(out, "bench_xgb")
    os.makedirs(d, exist_ok=True)
    b.save_model(os.path.join(d, "model.ubj"))
    bundle = {"format": "explaind.model/v1", "task": "classification", "classes": ["neg", "pos"],
              "features": [{"name": "x%d" % j} for j in range(FEATURES)], "trees": {"xgboost": "model.ubj"}}
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(bundle, f)
    rows = [[None if np.isnan(v) else float(v) for v in r] for r in data(ROWS, 2)]
    with open(os.path.join(out, "trees_predict.json"), "w") as f:
        json.dump({"model": "bench_xgb", "instances": rows}, f)
    with open(os.path.join(out, "trees_shap.json"), "w") as f:
        json.dump({"model": "bench_xgb", "instances": rows}, f)


def timed(fn, budget=3.0, min_runs=5):
    """(median wall ms, p10 wall ms, runs, median process CPU ms) of repeated calls."""
    ts, cs = [], []
    t_end = time.perf_counter() + budget
    while len(ts) < min_runs or time.perf_counter() < t_end:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
        cs.append((time.process_time() - c0) * 1e3)
        if len(ts) >= 2000:
            break
    ts.sort()
    cs.sort()
    return ts[len(ts) // 2], ts[len(ts) // 10], len(ts), cs[len(cs) // 2]


def ref(out):
    import xgboost as xgb
    b = xgb.Booster()
    b.load_model(os.path.join(out, "bench_xgb", "model.ubj"))
    b.set_param({"nthread": 2})
    X = data(ROWS, 2)
    targets = {
        "trees_predict": lambda: b.predict(xgb.DMatrix(X, missing=np.nan, nthread=2)),
        "trees_shap": lambda: b.predict(xgb.DMatrix(X, missing=np.nan, nthread=2), pred_contribs=True),
    }
    for name, fn in targets.items():
        fn()  # warm-up
        med, p10, n, cpu = timed(fn)
        print(json.dumps({"kind": "trees_ref", "target": name, "median_ms": med, "p10_ms": p10, "runs": n,
                          "cpu_ms": cpu,
                          "xgboost": xgb.__version__, "load": "%.2f %.2f %.2f" % os.getloadavg()}))


def report(path):
    http, refs, cpu = {}, {}, {}
    for line in open(path):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("kind") == "http" and str(o.get("target", "")).startswith("trees_"):
            http[o["target"]] = o
        elif o.get("kind") == "trees_ref":
            refs[o["target"]] = o
        elif o.get("kind") == "trees_cpu":
            cpu[o["target"]] = o
    print("\n## Tree ensembles vs XGBoost\n")
    if not http or not refs:
        print("Not measured in this run (python3-xgboost missing, or the tree runs failed).")
        return
    v = next(iter(refs.values())).get("xgboost", "?")
    print("A %d-tree, depth-%d XGBoost model (binary:logistic, %d features, 5%% missing values), "
          "%d rows per request. explaind: one HTTP request with 1 connection (wrk, `--workers 2`), "
          "end to end (JSON parse, work, JSON answer). XGBoost %s: its C++ called in-process from Python, "
          "nthread=2, DMatrix from the same rows then `predict` / `predict(pred_contribs=True)`, "
          "median of repeated calls in the same run. The two compute the same values (tests/test_trees.c checks predictions and pred_contribs against XGBoost on its fixtures).\n"
          % (TREES, DEPTH, FEATURES, ROWS, v))
    print("| target | explaind over HTTP, p50 ms | p99 ms | XGBoost in-process, median ms | ratio | "
          "explaind server CPU ms per request | XGBoost CPU ms per call | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    label = {"trees_predict": "predict, 1,000 rows", "trees_shap": "path-dependent TreeSHAP, 1,000 rows"}
    for t in ("trees_predict", "trees_shap"):
        if t in http and t in refs:
            h, r = http[t], refs[t]
            c = cpu.get(t)
            # the ticks span the wrk run and the one request bench/run.sh sends first to check it
            ours = c["ticks"] * 1e3 / c["hz"] / (h["requests"] + 1) if c and h.get("requests") else float("nan")
            theirs = r.get("cpu_ms", float("nan"))
            print("| %s | %.2f | %.2f | %.2f | %.2fx | %.2f | %.2f | %.2fx |" % (
                label[t], h["p50_ms"], h["p99_ms"], r["median_ms"], r["median_ms"] / h["p50_ms"], ours, theirs,
                theirs / ours))
    print("\nratio = XGBoost time / explaind time (above 1: explaind is faster end to end); the CPU columns "
          "are the server process's CPU time over the wrk run (and its check request) per request (HTTP, JSON and the "
          "work, both workers) and XGBoost's process CPU time per call (both threads). "
          "Load average (1, 5, 15 min) when XGBoost was timed: %s on %d cores."
          % (next(iter(refs.values())).get("load", "?"), os.cpu_count() or 0))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "ref", "report"):
        raise SystemExit(__doc__)
    {"make": make, "ref": ref, "report": report}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()

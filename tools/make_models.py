#!/usr/bin/python3
"""Train the five demo models and freeze the golden files the C tests compare against.

Usage (from the repo root):   /usr/bin/python3 tools/make_models.py
Dependencies (Debian):        apt-get install python3-sklearn   (pulls numpy and scipy)
Made with numpy 1.24, scikit-learn 1.2.1, scipy 1.10; other versions may train slightly
different weights, so rerun the C golden tests after regenerating.

For each dataset in data/ it writes
  models/NAME/model.json       bundle, format explaind.model/v1 (see MODEL_FORMAT.md)
  models/NAME/background.csv   the 25% test split, which the server uses as background data
  tests/golden/predict_NAME.json, tests/golden/stats_NAME.json
and finally models/README.md.  Before anything is written, a float64 forward pass over the
bundle (serialized and parsed back) must reproduce sklearn on the test split to 1e-9.
"""
import os

# One BLAS thread: multi-threaded reductions may sum in a different order from run to run,
# and the weights must come out bit-identical every time.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import csv
import json
import re
import sys

import numpy as np
import scipy
import sklearn
from scipy.stats.mstats import mquantiles
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPLIT = {"test_size": 0.25, "random_state": 0}
TOLERANCE = 1e-9   # bundle forward pass vs sklearn, max absolute difference
GOLDEN_ROWS = 10   # the first rows of the background go into predict_NAME.json

MLP = {"activation": "relu", "random_state": 0, "max_iter": 2000}
# diabetes (331 training rows) and credit (noisy labels) overfit with sklearn's default
# alpha=1e-4: test R² -0.13 and accuracy 0.68. The L2 penalties below bring them to about
# what a linear model gets (R² 0.36, accuracy 0.75), and keep credit's unused `region` near zero.
MODELS = [
    {"name": "iris", "target": "species", "estimator": LogisticRegression,
     "params": {"multi_class": "multinomial", "solver": "lbfgs", "C": 1.0, "max_iter": 1000}},
    {"name": "breast_cancer", "target": "diagnosis", "estimator": MLPClassifier,
     "params": dict(MLP, hidden_layer_sizes=[64, 32])},
    {"name": "wine", "target": "cultivar", "estimator": MLPClassifier,
     "params": dict(MLP, hidden_layer_sizes=[32])},
    {"name": "diabetes", "target": "progression", "estimator": MLPRegressor,
     "params": dict(MLP, hidden_layer_sizes=[32, 16], alpha=10.0)},
    {"name": "credit", "target": "approved", "estimator": MLPClassifier,
     "params": dict(MLP, hidden_layer_sizes=[32, 16], alpha=3.0), "categorical": ["employment", "region"]},
]
# sklearn's activation names -> the bundle vocabulary
ACTIVATION = {"identity": "identity", "relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}


def dumps(obj):
    """JSON with every innermost list (a weight row, a vector) kept on one line.

    Floats go out as Python's repr: the shortest decimal that parses back to the same
    double (at most 17 significant digits), so nothing is lost on the way to C."""
    text = json.dumps(obj, indent=2, allow_nan=False)
    one_line = lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]")
    return re.sub(r"\[[^\[\]{}]*\]", one_line, text) + "\n"


def write(relpath, text):
    path = os.path.join(ROOT, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)


def load_csv(name, target, categorical):
    """Rows as lists of raw values (float, or the category name for categorical columns)."""
    with open(os.path.join(ROOT, "data", name + ".csv"), newline="") as f:
        header, *lines = list(csv.reader(f))
    assert header[-1] == target, (name, header[-1])
    names = header[:-1]
    rows = [[v if n in categorical else float(v) for n, v in zip(names, line)] for line in lines]
    features = [{"name": n, "type": "categorical", "categories": sorted({r[j] for r in rows})}
                if n in categorical else {"name": n} for j, n in enumerate(names)]
    return features, rows, [line[-1] for line in lines]


def encode(features, mean, scale, rows):
    """The network input: numeric (x - mean) / scale, categorical one-hot, in feature order."""
    cols = []
    for j, feat in enumerate(features):
        raw = [r[j] for r in rows]
        if feat.get("type") == "categorical":
            cols += [[float(v == c) for v in raw] for c in feat["categories"]]
        else:
            cols.append((np.array(raw) - mean[j]) / scale[j])
    return np.column_stack(cols)


def forward(bundle, rows):
    """Reference forward pass, read only from the bundle (the C server does the same)."""
    pre = bundle["preprocess"]
    x = encode(bundle["features"], pre["mean"], pre["scale"], rows)
    for layer in bundle["layers"]:
        z = x @ np.array(layer["weights"]).T + np.array(layer["bias"])
        act = layer["activation"]
        if act == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        else:
            x = {"identity": lambda v: v, "relu": lambda v: np.maximum(v, 0.0), "tanh": np.tanh,
                 "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v))}[act](z)
    return x


def layers_of(est, y_scaler):
    """sklearn's fitted parameters as bundle layers ([out][in] weights)."""
    if isinstance(est, LogisticRegression):   # multinomial: coef_ is already [class][in]
        return [{"weights": est.coef_.tolist(), "bias": est.intercept_.tolist(), "activation": "softmax"}]
    layers = [{"weights": w.T.tolist(), "bias": b.tolist(), "activation": ACTIVATION[est.activation]}
              for w, b in zip(est.coefs_, est.intercepts_)]
    last, w, b = layers[-1], est.coefs_[-1].T, est.intercepts_[-1]
    if est.out_activation_ == "logistic":
        # One logistic unit z becomes softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]: the same
        # probabilities, with one output per class as the bundle wants.
        last.update(weights=[[0.0] * w.shape[1], w[0].tolist()], bias=[0.0, float(b[0])], activation="softmax")
    elif est.out_activation_ == "identity":
        # Trained on a standardized target: fold y = s * y' + m into the last layer.
        s, m = y_scaler.scale_[0], y_scaler.mean_[0]
        last.update(weights=(s * w).tolist(), bias=(s * b + m).tolist(), activation="identity")
    else:
        last["activation"] = "softmax"
    return layers


def lime_bins(col, edges):
    """lime's BaseDiscretizer per-bin statistics (without its +1e-11 on the stds)."""
    idx = np.searchsorted(edges, col, side="left")
    sel = [col[idx == b] for b in range(len(edges) + 1)]
    return {"count": [len(s) for s in sel],
            "mean": [float(s.mean()) if len(s) else 0.0 for s in sel],
            "std": [float(s.std()) if len(s) else 0.0 for s in sel],
            "min": [float(col.min())] + edges.tolist(),
            "max": edges.tolist() + [float(col.max())]}


def feature_stats(features, rows):
    out = []
    for j, feat in enumerate(features):
        raw = [r[j] for r in rows]
        if feat.get("type") == "categorical":
            counts = [raw.count(c) for c in feat["categories"]]
            out.append({"name": feat["name"], "type": "categorical", "categories": feat["categories"],
                        "counts": counts, "frequencies": [c / len(raw) for c in counts]})
            continue
        col = np.array(raw)
        quartiles = np.unique(np.percentile(col, [25, 50, 75]))
        deciles = np.unique(np.percentile(col, range(10, 100, 10)))
        out.append({"name": feat["name"], "type": "numeric",
                    "mean": float(col.mean()), "std": float(col.std()),
                    "min": float(col.min()), "max": float(col.max()),
                    "quartiles": quartiles.tolist(), "deciles": deciles.tolist(),
                    "quartile_bins": lime_bins(col, quartiles), "decile_bins": lime_bins(col, deciles),
                    "mquantiles_05_95": np.asarray(mquantiles(col, prob=[0.05, 0.95])).tolist()})
    return out


def architecture(bundle):
    sizes = [str(len(bundle["layers"][0]["weights"][0]))]
    sizes += ["%d %s" % (len(l["bias"]), l["activation"]) for l in bundle["layers"]]
    return " → ".join(sizes)


def build(spec):
    name, target = spec["name"], spec["target"]
    categorical = spec.get("categorical", [])
    features, rows, y = load_csv(name, target, categorical)
    regression = spec["estimator"] is MLPRegressor
    task = "regression" if regression else "classification"
    train, test = train_test_split(np.arange(len(rows)), stratify=None if regression else y, **SPLIT)
    rows_tr, rows_te = [rows[i] for i in train], [rows[i] for i in test]

    numeric = [j for j, f in enumerate(features) if f.get("type") != "categorical"]
    scaler = StandardScaler().fit([[r[j] for j in numeric] for r in rows_tr])
    mean, scale = [0.0] * len(features), [1.0] * len(features)
    for k, j in enumerate(numeric):
        mean[j], scale[j] = float(scaler.mean_[k]), float(scaler.scale_[k])
    x_tr, x_te = encode(features, mean, scale, rows_tr), encode(features, mean, scale, rows_te)

    y_tr = np.array([y[i] for i in train], dtype=float if regression else str)
    y_te = np.array([y[i] for i in test], dtype=float if regression else str)
    y_scaler = StandardScaler().fit(y_tr[:, None]) if regression else None
    est = spec["estimator"](**spec["params"])
    est.fit(x_tr, y_scaler.transform(y_tr[:, None]).ravel() if regression else y_tr)

    bundle = {"format": "explaind.model/v1", "task": task, "features": features}
    if not regression:
        bundle["classes"] = est.classes_.tolist()
    bundle["preprocess"] = {"mean": mean, "scale": scale}
    bundle["layers"] = layers_of(est, y_scaler)
    bundle["background"] = {"csv": "background.csv", "target": target}

    # The check that matters: the bundle as the server will parse it, not the Python objects.
    parsed = json.loads(dumps(bundle))
    out = forward(parsed, rows_te)
    if regression:
        ref = y_scaler.inverse_transform(est.predict(x_te)[:, None])
        metric = {"name": "r2", "value": float(r2_score(y_te, out[:, 0]))}
    else:
        ref = est.predict_proba(x_te)
        metric = {"name": "accuracy", "value": float(est.score(x_te, y_te))}
    err = float(np.max(np.abs(out - ref)))
    if not err <= TOLERANCE:
        sys.exit("%s: bundle forward pass differs from sklearn by %g" % (name, err))
    metric.update(split="test", rows=len(test))

    bundle["x-source"] = {
        "data": "data/%s.csv" % name, "script": "tools/make_models.py",
        "estimator": "sklearn.%s.%s" % (est.__module__.split(".")[1], type(est).__name__),
        "params": spec["params"], "iterations": int(np.max(est.n_iter_)),
        "split": "train_test_split(test_size=0.25, random_state=0%s); background = test rows"
                 % ("" if regression else ", stratify=%s" % target),
        "train_rows": len(train),
        "preprocess": "StandardScaler fit on the training numeric features; categorical one-hot "
                      "in sorted category order",
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__, "scipy": scipy.__version__}}
    if regression:
        bundle["x-source"]["target"] = "standardized for training (mean %r, scale %r); folded into the last layer" % (
            float(y_scaler.mean_[0]), float(y_scaler.scale_[0]))
    if not regression and len(est.classes_) == 2 and isinstance(est, MLPClassifier):
        bundle["x-source"]["output"] = "sklearn's single logistic unit z as softmax([0, z])"
    bundle["x-test-metric"] = metric

    # Background: test rows as the CSV header names them; repr() round-trips every float.
    lines = [[f["name"] for f in features] + [target]]
    lines += [[v if isinstance(v, str) else repr(v) for v in rows[i]] +
              [repr(float(y[i])) if regression else y[i]] for i in test]
    write("models/%s/background.csv" % name, "".join(",".join(l) + "\n" for l in lines))
    write("models/%s/model.json" % name, dumps(bundle))

    golden = {"model": name, "instances": rows_te[:GOLDEN_ROWS]}
    gout = out[:GOLDEN_ROWS]
    if regression:
        golden["predictions"] = gout[:, 0].tolist()
    else:
        golden["probabilities"] = gout.tolist()
        golden["labels"] = [bundle["classes"][k] for k in gout.argmax(axis=1)]
    write("tests/golden/predict_%s.json" % name, dumps(golden))
    write("tests/golden/stats_%s.json" % name,
          dumps({"model": name, "rows": len(test), "features": feature_stats(features, rows_te)}))

    print("%-14s %-36s test %s = %.4f  (max |bundle - sklearn| = %.1e, %d iterations)"
          % (name, architecture(bundle), metric["name"], metric["value"], err, int(np.max(est.n_iter_))))
    return "| %s | %s | %s | %s | %d | %s %.4f |" % (
        name, task, architecture(bundle),
        ", ".join(f["name"] + (" (categorical)" if f.get("type") else "") for f in features),
        len(test), "accuracy" if not regression else "R²", metric["value"])


def main():
    table = [build(spec) for spec in MODELS]
    # The image and text models' section is written by tools/make_graph_models.py: keep it.
    readme = os.path.join(ROOT, "models", "README.md")
    mark = "## Image and text models"
    old = open(readme).read() if os.path.exists(readme) else ""
    graph_section = "\n" + mark + old.split(mark, 1)[1] if mark in old else ""
    write("models/README.md", "\n".join([
        "# Demo models",
        "",
        "Generated by `/usr/bin/python3 tools/make_models.py` (do not edit by hand). Each folder holds",
        "`model.json` (format `explaind.model/v1`, see MODEL_FORMAT.md) and `background.csv`: the",
        "25% test split (`train_test_split(test_size=0.25, random_state=0)`, stratified for",
        "classification), which the server uses as background data. Inputs are standardized with the",
        "training split's mean and population std (`preprocess`); categorical features are one-hot",
        "encoded in sorted category order. The metric is measured on that same test split.",
        "Training parameters are in each bundle's `x-source`, the metric in `x-test-metric`.",
        "",
        "| model | task | architecture (inputs → units activation) | features | background rows | test metric |",
        "|---|---|---|---|---|---|",
        *table, ""]) + graph_section)


if __name__ == "__main__":
    main()

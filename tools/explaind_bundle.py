"""Helpers shared by tools/export_sklearn.py and tools/export_torch.py.

Builds and checks explaind model bundles (format explaind.model/v1, see
docs/MODEL_FORMAT.md and docs/models.md): a float64 reference forward pass read only
from the bundle (what the server computes), background data from a CSV or arrays, and
JSON text in which every float round-trips.
"""
import csv
import json
import math
import re

import numpy as np

FORMAT = "explaind.model/v1"


def dumps(bundle):
    """JSON text with every innermost list on one line; floats as Python's repr (the
    shortest decimal that reads back as the same double), so nothing is lost in C."""
    text = json.dumps(bundle, indent=1, allow_nan=False)
    one_line = lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]")
    return re.sub(r"\[[^\[\]{}]*\]", one_line, text) + "\n"


def label_name(v):
    """A class label as the bundle names it: strings as they are, integral numbers without
    a decimal point (1, not 1.0), other numbers by repr."""
    if isinstance(v, (str, np.str_)):
        return str(v)
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    f = float(v)
    return str(int(f)) if f.is_integer() else repr(f)


def read_csv(path, target=None):
    """(header, rows) of a CSV with a header row; values stay strings."""
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    if target is not None and target not in header:
        raise SystemExit("%s: no column named %r (columns: %s)" % (path, target, ", ".join(header)))
    return header, rows


def table(path, target, features=None):
    """Feature names, X (float64, raw feature space) and raw target strings of a CSV.

    Every column but the target is a feature, in CSV order, unless `features` names them;
    they must be numeric (the exporters handle numeric features only)."""
    header, rows = read_csv(path, target)
    names = features or [h for h in header if h != target]
    idx = []
    for n in names:
        if n not in header:
            raise SystemExit("%s: no column named %r" % (path, n))
        idx.append(header.index(n))
    try:
        X = np.array([[float(r[i]) for i in idx] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise SystemExit("%s: every feature column must be numeric (%s)" % (path, e))
    y = [r[header.index(target)] for r in rows] if target else None
    return names, X, y


def sample_rows(n, max_rows, seed=0):
    """Indices of at most max_rows rows: all of them, or a seeded sample kept in order."""
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_rows, replace=False))


def background(X, y=None, classes=None, task="classification"):
    """Inline background {"rows", "targets"}: targets as class names (classification) or
    numbers (regression)."""
    bg = {"rows": np.asarray(X, dtype=np.float64).tolist()}
    if y is not None:
        if task == "classification":
            names = [label_name(v) for v in y]
            unknown = sorted(set(names) - set(classes or []))
            if unknown:
                raise SystemExit("background targets %s are not classes of the model %s" % (unknown[:5], classes))
            bg["targets"] = names
        else:
            bg["targets"] = [float(v) for v in y]
    return bg


def _act(name, z):
    if name == "identity":
        return z
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "gelu":
        return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z ** 3)))
    if name == "gelu_erf":
        from scipy.special import erf
        return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError("unknown activation %r" % name)


def forward(bundle, X):
    """The bundle's outputs for raw rows X (numeric features only), in float64: class
    probabilities (n x classes; a single sigmoid unit gives [1-p, p]) or predictions
    (n x 1)."""
    x = np.asarray(X, dtype=np.float64)
    pre = bundle.get("preprocess")
    if pre:
        x = (x - np.array(pre["mean"])) / np.array(pre["scale"])
    for layer in bundle["layers"]:
        x = _act(layer["activation"], x @ np.array(layer["weights"]).T + np.array(layer["bias"]))
    if bundle["task"] == "classification" and x.shape[1] == 1:
        x = np.column_stack([1.0 - x[:, 0], x[:, 0]])
    return x


def check(bundle, X, reference, tol, what):
    """Exits unless the bundle (as the server will parse it) reproduces reference on X to tol
    (absolute, or relative for |values| above 1). Returns that error."""
    parsed = json.loads(dumps(bundle))
    out = forward(parsed, X)
    ref = np.asarray(reference, dtype=np.float64).reshape(out.shape)
    # Absolute below 1, relative above (a regression target in the hundreds carries
    # float32's relative precision, not an absolute one).
    err = float(np.max(np.abs(out - ref) / np.maximum(1.0, np.abs(ref)))) if out.size else 0.0
    if not err <= tol:
        raise SystemExit("the bundle differs from %s by %g (tolerance %g): please report this" % (what, err, tol))
    return err


def write(path, bundle):
    text = dumps(bundle)
    if path in (None, "-"):
        print(text, end="")
    else:
        with open(path, "w") as f:
            f.write(text)

#!/usr/bin/python3
"""Reference accuracies for tests/test_train.c: scikit-learn on explaind's own split.

Usage (from the repo root):   /usr/bin/python3 tools/train_reference.py
Dependencies (Debian):        apt-get install python3-sklearn   (numpy, scipy)
Made with numpy 1.24, scikit-learn 1.2.1.

explaind's training (core/train.c) holds out validation rows chosen by a seeded
permutation (xd_train_split): a Fisher-Yates shuffle of 0..n-1 driven by xoshiro256**
seeded through splitmix64 as xd_rng_seed_stream(seed, 1) (core/rng.c), whose first
round(n * validation_split) entries are the validation rows. This script re-implements
exactly that generator, so scikit-learn sees the very same training and validation rows;
it also writes the validation row indices into the golden file, and the C test checks
that its own split equals them, so a drift in either implementation fails loudly instead
of comparing accuracies on different rows.

The features are prepared as explaind prepares them: numeric columns standardized with
the training rows' mean and population std (StandardScaler), non-numeric columns one-hot
over their sorted distinct values, the target's classes sorted.

Writes tests/golden/train_reference.json.
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import csv
import json
import math
import re

import numpy as np
import sklearn
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M64 = (1 << 64) - 1

# The cases of tests/test_train.c: dataset, target, task, seed, validation_split, the
# hidden layers explaind trains there (other options at their defaults), and the
# validation metric explaind reached with them when the test was written (accuracy or
# R², printed by test_train; pasted here so that both figures sit in the golden file).
CASES = [
    {"name": "credit", "target": "approved", "task": "classification", "seed": 7, "validation_split": 0.2,
     "explaind_hidden": [], "explaind_recorded": 578 / 800},
    {"name": "iris", "target": "species", "task": "classification", "seed": 7, "validation_split": 0.2,
     "explaind_hidden": [16], "explaind_recorded": 29 / 30},
    {"name": "diabetes", "target": "progression", "task": "regression", "seed": 7, "validation_split": 0.2,
     "explaind_hidden": [], "explaind_recorded": 0.3584},
]
XD_TRAIN_STREAM_SPLIT = 1


# ---- core/rng.c, bit for bit ---------------------------------------------------------------

def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


class Rng:
    """xoshiro256** (Blackman & Vigna), seeded as xd_rng_seed / xd_rng_seed_stream."""

    def __init__(self, seed, stream=None):
        if stream is not None:
            _, k = splitmix64(stream)
            seed = seed ^ k ^ 0x6A09E667F3BCC909
        x, self.s = seed & M64, []
        for _ in range(4):
            x, v = splitmix64(x)
            self.s.append(v)

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        """Lemire's multiply-and-reject, as xd_rng_below."""
        m = self.next() * n
        lo = m & M64
        if lo < n:
            thresh = ((1 << 64) - n) % n
            while lo < thresh:
                m = self.next() * n
                lo = m & M64
        return m >> 64

    def shuffle(self, idx):
        """Fisher-Yates from the end, as xd_rng_shuffle."""
        for i in range(len(idx), 1, -1):
            j = self.below(i)
            idx[i - 1], idx[j] = idx[j], idx[i - 1]


def n_validation(n, split):
    """xd_train_n_validation: round half up, at least 1, at most n-1."""
    if n < 2 or not split > 0:
        return 0
    return min(max(int(math.floor(n * split + 0.5)), 1), n - 1)


def validation_rows(n, split, seed):
    """xd_train_split."""
    perm = list(range(n))
    Rng(seed, XD_TRAIN_STREAM_SPLIT).shuffle(perm)
    return sorted(perm[:n_validation(n, split)])


# ---- data as explaind reads it ---------------------------------------------------------------

def is_number(s):
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def load(name, target):
    with open(os.path.join(ROOT, "data", name + ".csv"), newline="") as f:
        header, *rows = list(csv.reader(f))
    t = header.index(target)
    feats = [j for j in range(len(header)) if j != t]
    cols = []
    for j in feats:
        cells = [r[j] for r in rows]
        cols.append(("num", np.array([float(c) for c in cells])) if all(map(is_number, cells))
                    else ("cat", cells, sorted(set(cells))))
    return cols, [r[t] for r in rows], len(rows)


def design(cols, train):
    """Standardize numeric columns on the training rows, one-hot the categorical ones."""
    out = []
    for c in cols:
        if c[0] == "num":
            v = c[1]
            m, s = v[train].mean(), v[train].std()
            out.append((v - m) / (s if s > 0 else 1.0))
        else:
            out += [np.array([float(x == k) for x in c[1]]) for k in c[2]]
    return np.column_stack(out)


def main():
    golden = {"_made_by": "tools/train_reference.py", "sklearn": sklearn.__version__, "numpy": np.__version__}
    for case in CASES:
        cols, target, n = load(case["name"], case["target"])
        val = validation_rows(n, case["validation_split"], case["seed"])
        vmask = np.zeros(n, dtype=bool)
        vmask[val] = True
        train = ~vmask
        X = design(cols, train)
        entry = dict(case, n_rows=n, validation_rows=val)
        if case["task"] == "regression":
            y = np.array([float(v) for v in target])
            lin = LinearRegression().fit(X[train], y[train])
            entry["sklearn_linear_regression_r2"] = float(r2_score(y[vmask], lin.predict(X[vmask])))
        else:
            classes = sorted(set(target))
            y = np.array([classes.index(v) for v in target])
            lr = LogisticRegression(C=1.0, max_iter=5000).fit(X[train], y[train])
            entry["sklearn_logistic_regression_accuracy"] = float(lr.score(X[vmask], y[vmask]))
        golden[case["name"]] = entry
        print(case["name"], {k: v for k, v in entry.items() if k != "validation_rows"})
    path = os.path.join(ROOT, "tests", "golden", "train_reference.json")
    text = json.dumps(golden, indent=1)
    # every innermost list (the validation rows) on one line
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: re.sub(r"\s*\n\s*", " ", m.group(0)), text)
    with open(path, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The demo tree model models/credit_xgb/: XGBoost (Debian's python3-xgboost) on
data/credit.csv, with its categorical features as XGBoost categorical splits.

  /usr/bin/python3 tools/make_credit_xgb.py [OUTDIR]       (default models/credit_xgb)

Deterministic: one thread, fixed seeds, the split of tools/make_models.py
(train_test_split(test_size=0.25, random_state=0, stratify=approved)); the test rows are
the background. Writes model.json (the bundle), model.ubj (Booster.save_model) and
background.csv. A categorical feature's bundle code k (its k-th category, sorted as in
tools/make_models.py) is XGBoost's category value k: the DataFrame columns are pandas
Categoricals with the bundle's categories in that order.
"""
import csv
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
PARAMS = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "tree_method": "hist", "max_cat_to_onehot": 1,
          "nthread": 1, "seed": 0, "subsample": 1.0}
ROUNDS = 120


def main():
    import pandas as pd
    import xgboost as xgb
    from sklearn.model_selection import train_test_split
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "credit_xgb")
    os.makedirs(out, exist_ok=True)
    df = pd.read_csv(os.path.join(ROOT, "data", "credit.csv"))
    target = "approved"
    features = [c for c in df.columns if c != target]
    cats = {c: sorted(df[c].unique().tolist()) for c in features if df[c].dtype == object}
    classes = sorted(df[target].unique().tolist())
    y = (df[target] == classes[1]).astype(int).values
    tr, te = train_test_split(np.arange(len(df)), test_size=0.25, random_state=0, stratify=df[target])
    X = df[features].copy()
    for c, cs in cats.items():
        X[c] = pd.Categorical(X[c], categories=cs)
    dtr = xgb.DMatrix(X.iloc[tr], y[tr], enable_categorical=True)
    dte = xgb.DMatrix(X.iloc[te], y[te], enable_categorical=True)
    b = xgb.train(PARAMS, dtr, ROUNDS)
    acc = float(np.mean((b.predict(dte) > 0.5) == y[te]))
    b.save_model(os.path.join(out, "model.ubj"))
    bg = df.iloc[np.sort(te)]
    with open(os.path.join(out, "background.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(features + [target])
        for _, r in bg.iterrows():
            w.writerow([r[c] for c in features] + [r[target]])
    bundle = {
        "format": "explaind.model/v1", "task": "classification", "classes": classes,
        "features": [{"name": c, "type": "categorical", "categories": cats[c]} if c in cats else {"name": c}
                     for c in features],
        "trees": {"xgboost": "model.ubj"},
        "background": {"csv": "background.csv", "target": target},
        "x-source": {"data": "data/credit.csv", "script": "tools/make_credit_xgb.py", "library": "xgboost",
                     "params": PARAMS, "rounds": ROUNDS, "versions": {"xgboost": xgb.__version__},
                     "split": "train_test_split(test_size=0.25, random_state=0, stratify=approved); "
                              "background = test rows"},
        "x-test-metric": {"name": "accuracy", "value": round(acc, 4), "split": "test", "rows": len(te)},
    }
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(bundle, f, indent=1)
        f.write("\n")
    print("wrote %s: %d trees, test accuracy %.4f" % (out, ROUNDS, acc))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Tree-ensemble fixtures and their reference outputs (tests/golden/trees/, read by
tests/test_trees.c). Deterministic: fixed seeds, single-threaded XGBoost.

  /usr/bin/python3 tools/make_tree_fixtures.py [OUTDIR]      (default tests/golden/trees)

Each NAME.json holds an inline bundle ("bundle"), rows ("X", null = missing) and what the
reference library answers on them:
  outputs       predict_proba / predict (XGBoost: predict, [1-p, p] for binary models)
  margins       (n, G) XGBoost output_margin / scikit-learn raw margins
  contribs      (n, G, M+1) path-dependent SHAP values, last column the expected value:
                XGBoost pred_contribs; for scikit-learn a brute-force Shapley computation
                over the cover-weighted conditional expectation (paper's Algorithm 1)
  interactions  (n, G, M+1, M+1) XGBoost pred_interactions (small models)
  scores        {type: [per feature]} XGBoost get_score (absent features 0)
  interventional {"background": rows, "phi": (n, M), "expected": e}: brute-force Shapley
                values of v(S) = mean_b margin_0(x_S, b_S̄)
XGBoost fixtures also come as a folder NAME/ (model.json bundle naming model.ubj) when
"ubj" is set, to exercise the UBJSON reader. Dependencies: python3-xgboost, python3-sklearn.
"""
import itertools
import json
import math
import os
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def shapley(v, M):
    """Exact Shapley values of set function v (frozenset -> float) over M players."""
    phi = np.zeros(M)
    for i in range(M):
        others = [j for j in range(M) if j != i]
        for r in range(M):
            for S in itertools.combinations(others, r):
                w = math.factorial(r) * math.factorial(M - r - 1) / math.factorial(M)
                phi[i] += w * (v(frozenset(S) | {i}) - v(frozenset(S)))
    return phi


def interventional(margin_fn, X, B):
    """Brute force: v(S) = mean over b of margin(x_S, b_rest)."""
    M = X.shape[1]
    out = []
    for x in X:
        cache = {}

        def v(S):
            if S not in cache:
                H = B.copy()
                for j in S:
                    H[:, j] = x[j]
                cache[S] = float(np.mean(margin_fn(H)))
            return cache[S]
        out.append(shapley(v, M).tolist())
    return out, float(np.mean(margin_fn(B)))


def rows_json(X):
    return [[None if np.isnan(v) else float(v) for v in r] for r in X]


def data(n, M, seed, nan_frac=0.0, kind="cls2"):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, M)
    z = 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] * X[:, 3] if M >= 4 else X[:, 0]
    if kind == "cls2":
        y = (z + 0.3 * rng.randn(n) > 0).astype(int)
    elif kind == "cls3":
        y = np.digitize(z + 0.3 * rng.randn(n), [-0.7, 0.7])
    elif kind == "unit":
        y = 1 / (1 + np.exp(-z))
    elif kind == "pos":
        y = np.exp(0.4 * z) + 0.1 * rng.rand(n)
    elif kind == "count":
        y = rng.poisson(np.exp(0.4 * z)).astype(float)
    else:
        y = z + 0.2 * rng.randn(n)
    if nan_frac:
        X[rng.rand(n, M) < nan_frac] = np.nan
    return X, y


def xgb_case(name, objective, kind, params=None, nan_frac=0.0, rounds=8, M=4, ubj=False, interactions=True):
    import xgboost as xgb
    X, y = data(300, M, zlib.crc32(name.encode()) % 1000, nan_frac, kind)
    p = {"objective": objective, "max_depth": 3, "eta": 0.3, "nthread": 1, "seed": 0, "tree_method": "exact"}
    if kind == "cls3":
        p["num_class"] = 3
    p.update(params or {})
    b = xgb.train(p, xgb.DMatrix(X, y, missing=np.nan), rounds)
    Xt, _ = data(12, M, 1234, nan_frac, kind)
    dt = xgb.DMatrix(Xt, missing=np.nan)
    cls = kind.startswith("cls")
    K = 3 if kind == "cls3" else 2
    pred = b.predict(dt)
    marg = b.predict(dt, output_margin=True).reshape(len(Xt), -1)
    if objective in ("multi:softmax",):
        e = np.exp(marg - marg.max(1, keepdims=True))
        outputs = e / e.sum(1, keepdims=True)
    elif objective == "binary:logitraw":
        p1 = 1 / (1 + np.exp(-marg[:, 0]))
        outputs = np.c_[1 - p1, p1]
    elif cls and K == 2:
        outputs = np.c_[1 - pred, pred]
    elif cls:
        outputs = pred
    else:
        outputs = pred.reshape(-1, 1)
    contribs = b.predict(dt, pred_contribs=True).reshape(len(Xt), -1, M + 1)
    model = json.loads(b.save_raw("json").decode().replace("NaN", "null"))
    bundle = {"format": "explaind.model/v1", "task": "classification" if cls else "regression",
              "features": [{"name": "f%d" % j} for j in range(M)]}
    if cls:
        bundle["classes"] = ["c%d" % k for k in range(K)]
    bundle["trees"] = {"xgboost": model}
    scores = {}
    for t in ("weight", "gain", "total_gain", "cover", "total_cover"):
        s = b.get_score(importance_type=t)
        scores[t] = [float(s.get("f%d" % j, 0.0)) for j in range(M)]
    B = data(6, M, 77, nan_frac, kind)[0]
    phi, e = interventional(lambda H: b.predict(xgb.DMatrix(H, missing=np.nan), output_margin=True)
                            .reshape(len(H), -1)[:, 0], Xt[:5], B)
    out = {"bundle": bundle, "X": rows_json(Xt), "outputs": outputs.tolist(), "margins": marg.tolist(),
           "contribs": contribs.tolist(), "scores": scores,
           "interventional": {"background": rows_json(B), "phi": phi, "expected": e}}
    if interactions:
        out["interactions"] = b.predict(dt, pred_interactions=True).reshape(len(Xt), -1, M + 1, M + 1).tolist()
    cases = {name: out}
    if ubj:
        cases[name + "@ubj"] = (b.save_raw("ubj"), bundle, out)
    return cases


def xgb_categorical(name="xgb_categorical", max_cat_to_onehot=1):
    import pandas as pd
    import xgboost as xgb
    rng = np.random.RandomState(5)
    n = 400
    c = rng.randint(0, 5, n)
    x = rng.randn(n)
    y = (((c == 1) | (c == 3)) ^ (x > 0.3)).astype(int)
    df = pd.DataFrame({"color": pd.Categorical(c, categories=list(range(5))), "x": x})
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3, "tree_method": "hist",
                   "max_cat_to_onehot": max_cat_to_onehot,
                   "nthread": 1, "seed": 0}, xgb.DMatrix(df, y, enable_categorical=True), 6)
    ct = np.r_[np.arange(5), np.arange(5), [np.nan, 2]]
    xt = np.r_[rng.randn(10), [0.1, np.nan]]
    dt = xgb.DMatrix(pd.DataFrame({"color": pd.Categorical(ct, categories=list(range(5))), "x": xt}),
                     enable_categorical=True)
    pred = b.predict(dt)
    model = json.loads(b.save_raw("json").decode().replace("NaN", "null"))
    bundle = {"format": "explaind.model/v1", "task": "classification", "classes": ["no", "yes"],
              "features": [{"name": "color", "type": "categorical", "categories": ["red", "green", "blue", "grey", "pink"]},
                           {"name": "x"}],
              "trees": {"xgboost": model}}
    X = np.c_[ct, xt]
    return {name: {
        "bundle": bundle, "X": rows_json(X), "outputs": np.c_[1 - pred, pred].tolist(),
        "margins": b.predict(dt, output_margin=True).reshape(-1, 1).tolist(),
        "contribs": b.predict(dt, pred_contribs=True).reshape(len(X), 1, 3).tolist()}}


def expvalue(nd, t, x, S, g):
    """The paper's Algorithm 1 for one tree of node arrays: E[f(x) | x_S] by cover."""
    import sklearn_trees as st
    W = nd.get("leaf_width", 1)

    def rec(k):
        if t["left"][k] < 0:
            v = t["value"][k]
            return v[g] if W > 1 else (v if t.get("group", 0) == g else 0.0)
        f = t["feature"][k]
        L, R = t["left"][k], t["right"][k]
        if f in S:
            return rec(st.route(nd, t, k, x[f]))
        c = t["cover"]
        return (c[L] * rec(L) + c[R] * rec(R)) / c[k]
    return rec(0)


def sklearn_cases():
    from sklearn import ensemble as E
    import sklearn_trees as st
    cases = {}
    specs = [
        ("sk_rf_clf3", E.RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0), "cls3", 0),
        ("sk_rf_reg", E.RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0), "reg", 0),
        ("sk_et_clf2", E.ExtraTreesClassifier(n_estimators=6, max_depth=4, random_state=0), "cls2", 0),
        ("sk_et_reg", E.ExtraTreesRegressor(n_estimators=6, max_depth=4, random_state=0), "reg", 0),
        ("sk_gb_clf2", E.GradientBoostingClassifier(n_estimators=8, max_depth=3, random_state=0), "cls2", 0),
        ("sk_gb_clf3", E.GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0), "cls3", 0),
        ("sk_gb_reg", E.GradientBoostingRegressor(n_estimators=8, max_depth=3, random_state=0), "reg", 0),
        ("sk_hgb_clf2", E.HistGradientBoostingClassifier(max_iter=8, max_depth=3, random_state=0), "cls2", 0.2),
        ("sk_hgb_clf3", E.HistGradientBoostingClassifier(max_iter=5, max_depth=3, random_state=0), "cls3", 0.1),
        ("sk_hgb_reg", E.HistGradientBoostingRegressor(max_iter=8, max_depth=3, random_state=0), "reg", 0.2),
    ]
    cat_est = E.HistGradientBoostingClassifier(max_iter=6, max_depth=3, random_state=0, categorical_features=[3])
    specs.append(("sk_hgb_clf2_categorical", cat_est, "cls2", 0.1))
    for name, est, kind, nan in specs:
        M = 4
        X, y = data(300, M, zlib.crc32(name.encode()) % 1000, nan, kind)
        Xt, _ = data(10, M, 4321, nan, kind)
        if name.endswith("_categorical"):  # feature 3 as category codes 0..5; 7 is unseen
            X[:, 3] = np.where(np.isnan(X[:, 3]), np.nan, np.floor(np.abs(X[:, 3]) * 2) % 6)
            y = ((X[:, 3] % 2 == 0) ^ (X[:, 0] > 0)).astype(int)
            Xt[:, 3] = np.where(np.isnan(Xt[:, 3]), np.nan, np.floor(np.abs(Xt[:, 3]) * 2) % 6)
            Xt[0, 3] = 7
        est.fit(X, y)
        task, classes, nd = st.nodes(est, M)
        cls = task == "classification"
        outputs = est.predict_proba(Xt) if cls else est.predict(Xt).reshape(-1, 1)
        mine = st.evaluate(nd, Xt, cls)
        assert np.max(np.abs(mine - outputs)) < 1e-9, name
        G = nd["n_groups"]
        contribs = []
        for x in Xt:
            per_g = []
            for g in range(G):
                def v(S, g=g, x=x):
                    return nd["base"][g] + nd["scale"] * sum(expvalue(nd, t, x, S, g) for t in nd["trees"])
                phi = shapley(v, M)
                per_g.append(phi.tolist() + [v(frozenset())])
            contribs.append(per_g)
        bundle = {"format": "explaind.model/v1", "task": task, "features": [{"name": "f%d" % j} for j in range(M)],
                  "trees": {"nodes": nd}}
        if cls:
            bundle["classes"] = ["c%d" % c for c in classes]
        cases[name] = {"bundle": bundle, "X": rows_json(Xt), "outputs": outputs.tolist(), "contribs": contribs}
    return cases


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "golden", "trees")
    os.makedirs(out, exist_ok=True)
    cases = {}
    cases.update(xgb_case("xgb_binary_logistic", "binary:logistic", "cls2", {"base_score": 0.3}, ubj=True))
    cases.update(xgb_case("xgb_binary_logitraw", "binary:logitraw", "cls2", {"base_score": 0.3}))
    cases.update(xgb_case("xgb_binary_hinge", "binary:hinge", "cls2", interactions=False))
    cases.update(xgb_case("xgb_multi_softprob", "multi:softprob", "cls3", rounds=5))
    cases.update(xgb_case("xgb_multi_softmax", "multi:softmax", "cls3", rounds=4, interactions=False))
    cases.update(xgb_case("xgb_reg_squarederror", "reg:squarederror", "reg", {"base_score": 0.7}, ubj=True))
    cases.update(xgb_case("xgb_reg_logistic", "reg:logistic", "unit", interactions=False))
    cases.update(xgb_case("xgb_reg_pseudohuber", "reg:pseudohubererror", "reg", interactions=False))
    cases.update(xgb_case("xgb_reg_absoluteerror", "reg:absoluteerror", "reg", interactions=False))
    cases.update(xgb_case("xgb_count_poisson", "count:poisson", "count", interactions=False))
    cases.update(xgb_case("xgb_reg_gamma", "reg:gamma", "pos", interactions=False))
    cases.update(xgb_case("xgb_reg_tweedie", "reg:tweedie", "pos", interactions=False))
    cases.update(xgb_case("xgb_nan_heavy", "binary:logistic", "cls2", nan_frac=0.45, rounds=10))
    cases.update(xgb_categorical())
    cases.update(xgb_categorical("xgb_categorical_onehot", 10))  # one-hot splits: the same set semantics
    cases.update(sklearn_cases())
    for name, c in sorted(cases.items()):
        if name.endswith("@ubj"):
            raw, bundle, ref = c
            d = os.path.join(out, name[:-4] + "_ubj")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "model.ubj"), "wb") as f:
                f.write(raw)
            b = dict(bundle)
            b["trees"] = {"xgboost": "model.ubj"}
            with open(os.path.join(d, "model.json"), "w") as f:
                json.dump(b, f)
            r = {k: v for k, v in ref.items() if k != "bundle"}
            with open(os.path.join(d, "reference.json"), "w") as f:
                json.dump(r, f)
            continue
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(c, f)
    print("wrote %d fixtures to %s" % (len(cases), out))


if __name__ == "__main__":
    main()

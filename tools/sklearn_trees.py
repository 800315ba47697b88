"""scikit-learn tree ensembles -> explaind's node arrays ({"nodes": ...}, docs/trees.md).

Supported: RandomForest{Classifier,Regressor}, ExtraTrees{Classifier,Regressor},
GradientBoosting{Classifier,Regressor}, HistGradientBoosting{Classifier,Regressor}
(numeric features, and HistGradientBoosting's categorical features).

  forests     margin[k] = (1/n_trees) Σ leaf value[k]; a classifier's leaf values are the
              leaf's class probabilities (predict_proba averages them); split "le_f32"
              (scikit-learn compares float32 inputs with x <= threshold)
  GB          margin = init + learning_rate · Σ leaves; binary: sigmoid, multiclass: softmax
  HGB         margin = baseline + Σ leaves (shrinkage is in the leaves); missing values follow
              missing_go_to_left; split "le_f64" (HistGradientBoosting predicts in float64);
              cover = the training sample count of each node
Cover is weighted_n_node_samples, gain the weighted impurity decrease of each split.

nodes(est) returns (task, classes or None, the "nodes" object); evaluate(nodes, X) is a
plain Python evaluator used to check an export against the estimator.
"""
import numpy as np


def _tree_arrays(t, leaf_values, group=None):
    """Node arrays of a fitted sklearn Tree t with the given per-node leaf values."""
    left = t.children_left.tolist()
    n = len(left)
    w = t.weighted_n_node_samples
    imp = t.impurity
    gain = []
    for k in range(n):
        if left[k] < 0:
            gain.append(0.0)
        else:
            l, r = left[k], t.children_right[k]
            gain.append(float(w[k] * imp[k] - w[l] * imp[l] - w[r] * imp[r]))
    out = {"left": [int(x) if x >= 0 else -1 for x in left],
           "right": [int(x) if x >= 0 else -1 for x in t.children_right],
           "feature": [int(f) if left[k] >= 0 else 0 for k, f in enumerate(t.feature)],
           "threshold": [float(x) if left[k] >= 0 else 0.0 for k, x in enumerate(t.threshold)],
           "cover": [float(x) for x in w],
           "gain": gain,
           "value": leaf_values}
    if group is not None:
        out["group"] = group
    return out


def _baseline(est, X1):
    return np.asarray(est._raw_predict_init(X1), dtype=np.float64).ravel()


def nodes(est, n_features):
    from sklearn import ensemble as E
    X1 = np.zeros((1, n_features))
    name = type(est).__name__
    if isinstance(est, (E.RandomForestClassifier, E.ExtraTreesClassifier)):
        K = len(est.classes_)
        trees = []
        for e in est.estimators_:
            v = e.tree_.value[:, 0, :]
            p = v / v.sum(axis=1, keepdims=True)
            trees.append(_tree_arrays(e.tree_, p.tolist()))
        return "classification", list(est.classes_), {
            "source": "sklearn:" + name, "link": "identity", "split": "le_f32", "n_groups": K, "leaf_width": K,
            "base": [0.0] * K, "scale": 1.0 / len(trees), "trees": trees}
    if isinstance(est, (E.RandomForestRegressor, E.ExtraTreesRegressor)):
        trees = [_tree_arrays(e.tree_, e.tree_.value[:, 0, 0].tolist()) for e in est.estimators_]
        return "regression", None, {"source": "sklearn:" + name, "link": "identity", "split": "le_f32",
                                    "n_groups": 1, "base": [0.0], "scale": 1.0 / len(trees), "trees": trees}
    if isinstance(est, (E.GradientBoostingClassifier, E.GradientBoostingRegressor)):
        stages = est.estimators_
        K = stages.shape[1]
        trees = [_tree_arrays(stages[i, k].tree_, stages[i, k].tree_.value[:, 0, 0].tolist(), k)
                 for i in range(stages.shape[0]) for k in range(K)]
        base = _baseline(est, X1).tolist()
        if isinstance(est, E.GradientBoostingClassifier):
            link = "sigmoid" if K == 1 else "softmax"
            return "classification", list(est.classes_), {
                "source": "sklearn:" + name, "link": link, "split": "le_f32", "n_groups": K, "base": base,
                "scale": float(est.learning_rate), "trees": trees}
        return "regression", None, {"source": "sklearn:" + name, "link": "identity", "split": "le_f32",
                                    "n_groups": 1, "base": base, "scale": float(est.learning_rate), "trees": trees}
    if isinstance(est, (E.HistGradientBoostingClassifier, E.HistGradientBoostingRegressor)):
        trees = []
        known, f_idx = None, None
        if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
            known, f_idx = est._bin_mapper.make_known_categories_bitsets()
        for it in est._predictors:
            for k, pred in enumerate(it):
                nd = pred.nodes
                leaf = nd["is_leaf"].astype(bool)
                cats, cats_left = None, None
                if np.any(nd["is_categorical"]):
                    cats, cats_left = _hgb_categories(nd, pred.raw_left_cat_bitsets, known, f_idx)
                trees.append({
                    "group": k,
                    "left": [int(x) if not leaf[i] else -1 for i, x in enumerate(nd["left"])],
                    "right": [int(x) if not leaf[i] else -1 for i, x in enumerate(nd["right"])],
                    "feature": [int(x) if not leaf[i] else 0 for i, x in enumerate(nd["feature_idx"])],
                    "threshold": [float(x) if not leaf[i] else 0.0 for i, x in enumerate(nd["num_threshold"])],
                    "default_left": [int(x) for x in nd["missing_go_to_left"]],
                    "cover": [float(x) for x in nd["count"]],
                    "gain": [float(x) if not leaf[i] else 0.0 for i, x in enumerate(nd["gain"])],
                    "value": [float(x) for x in nd["value"]]})
                if cats is not None:
                    trees[-1]["categories"] = cats
                    trees[-1]["categories_left"] = cats_left
        K = len(est._predictors[0])
        base = np.asarray(est._baseline_prediction, dtype=np.float64).ravel().tolist()
        loss = getattr(est, "loss", "")
        if isinstance(est, E.HistGradientBoostingClassifier):
            link = "sigmoid" if K == 1 else "softmax"
            return "classification", list(est.classes_), {
                "source": "sklearn:" + name, "link": link, "split": "le_f64", "n_groups": K, "base": base,
                "scale": 1.0, "trees": trees}
        link = "exp" if loss in ("poisson", "gamma") else "identity"
        return "regression", None, {"source": "sklearn:" + name, "link": link, "split": "le_f64", "n_groups": 1,
                                    "base": base, "scale": 1.0, "trees": trees}
    return None


def _bits(words):
    """Category values whose bit is set in a 256-bit set stored as 8 uint32 words."""
    return [c for c in range(256) if int(words[c // 32]) >> (c % 32) & 1]


def _hgb_categories(nodes, raw_left, known, f_idx):
    """Per node: the category set and whether it goes left. scikit-learn sends the
    categories of the node's bitset left and treats a category unseen in training as
    missing; so when missing values go left the set written is the known categories that
    go right (an unseen one is in neither and goes left), else the left set itself."""
    cats, left = [], []
    for i, n in enumerate(nodes):
        if n["is_leaf"] or not n["is_categorical"]:
            cats.append(None)
            left.append(0)
            continue
        go_left = set(_bits(raw_left[n["bitset_idx"]]))
        if n["missing_go_to_left"]:
            kn = _bits(known[f_idx[n["feature_idx"]]])
            cats.append(sorted(c for c in kn if c not in go_left))
            left.append(0)
        else:
            cats.append(sorted(go_left))
            left.append(1)
    return cats, left


def route(nd, t, k, v):
    """Child of node k of tree t (node arrays of nd) for the raw value v."""
    v = float(np.float32(v)) if nd["split"] != "le_f64" else v
    cs = t.get("categories", [None] * len(t["left"]))[k]
    if np.isnan(v) or (cs and v < 0):
        return t["left"][k] if t.get("default_left", [0] * len(t["left"]))[k] else t["right"][k]
    if cs:
        inside = int(v) in cs
        set_left = t.get("categories_left", [0] * len(t["left"]))[k]
        return t["left"][k] if inside == bool(set_left) else t["right"][k]
    below = (v < np.float32(t["threshold"][k])) if nd["split"] == "lt_f32" else (v <= t["threshold"][k])
    return t["left"][k] if below else t["right"][k]


def evaluate(nd, X, classification):
    """Outputs of the node arrays on rows X (NaN = missing): probabilities or values."""
    X = np.asarray(X, dtype=np.float64)
    G = nd["n_groups"]
    W = nd.get("leaf_width", 1)
    Z = np.zeros((len(X), G))
    for t in nd["trees"]:
        for i, x in enumerate(X):
            k = 0
            while t["left"][k] >= 0:
                k = route(nd, t, k, x[t["feature"][k]])
            if W == 1:
                Z[i, t.get("group", 0)] += t["value"][k]
            else:
                Z[i] += np.asarray(t["value"][k])
    Z = np.asarray(nd["base"]) + nd["scale"] * Z
    link = nd["link"]
    if link == "sigmoid":
        p = 1 / (1 + np.exp(-Z[:, 0]))
        return np.c_[1 - p, p] if classification else p[:, None]
    if link == "softmax":
        e = np.exp(Z - Z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if link == "exp":
        return np.exp(Z)
    return Z

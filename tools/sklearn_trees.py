"""scikit-learn tree ensembles -> explaind's node arrays ({"nodes": ...}, docs/trees.md).

Supported: RandomForest{Classifier,Regressor}, ExtraTrees{Classifier,Regressor},
GradientBoosting{Classifier,Regressor}, HistGradientBoosting{Classifier,Regressor}
(numeric features; HistGradientBoosting's categorical splits are refused).

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
        for it in est._predictors:
            for k, pred in enumerate(it):
                nd = pred.nodes
                if np.any(nd["is_categorical"]):
                    raise SystemExit("HistGradientBoosting categorical splits are not supported")
                leaf = nd["is_leaf"].astype(bool)
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


def evaluate(nd, X, classification):
    """Outputs of the node arrays on rows X (NaN = missing): probabilities or values."""
    X = np.asarray(X, dtype=np.float64)
    G = nd["n_groups"]
    W = nd.get("leaf_width", 1)
    Z = np.zeros((len(X), G))
    f32 = nd["split"] != "le_f64"
    for t in nd["trees"]:
        for i, x in enumerate(X):
            k = 0
            while t["left"][k] >= 0:
                v = x[t["feature"][k]]
                v = float(np.float32(v)) if f32 else v
                if np.isnan(v):
                    k = t["left"][k] if t.get("default_left", [0] * len(t["left"]))[k] else t["right"][k]
                elif (v < np.float32(t["threshold"][k])) if nd["split"] == "lt_f32" else (v <= t["threshold"][k]):
                    k = t["left"][k]
                else:
                    k = t["right"][k]
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

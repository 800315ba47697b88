#!/usr/bin/python3
"""Export a fitted scikit-learn model as an explaind bundle (format explaind.model/v1).

Supported: MLPClassifier, MLPRegressor, LogisticRegression, LinearRegression (also Ridge,
Lasso, ElasticNet), alone or as the last step of a Pipeline whose earlier steps are
StandardScaler (folded into the bundle's "preprocess"). Numeric features only.
Tree ensembles (RandomForest*, ExtraTrees*, GradientBoosting*, HistGradientBoosting*) are
written as {"trees": {"nodes": ...}} by tools/sklearn_trees.py (see docs/trees.md).

  binary classifiers   sklearn computes one logistic unit z; the bundle gets either two
                       softmax units [0, z] (--binary softmax, the default: one output per
                       class, like every other classifier) or the single sigmoid unit
                       (--binary sigmoid); both give the same probabilities [1-p, p].
  MLPRegressor         one identity output (multi-output regressors are not supported).
  LogisticRegression   multinomial (softmax) or binary; one-vs-rest with 3+ classes is
                       not a softmax model and is refused (use multi_class="multinomial").

Background (what LIME, SHAP, permutation importance and the "mean" baseline use) comes
from --data (a CSV with a header row: the feature columns and --target), sampled down to
--background-rows rows. Before writing, the bundle's own float64 forward pass must
reproduce the estimator's predict_proba / predict on those rows to 1e-9, else it exits.

Command line (the model saved with joblib.dump or pickle):
  /usr/bin/python3 tools/export_sklearn.py MODEL.joblib --data train.csv --target species \\
      [--features a,b,c] [--background-rows 500] [--binary softmax|sigmoid] -o bundle.json
From Python:
  sys.path.insert(0, "tools"); from export_sklearn import export
  bundle = export(pipeline, feature_names, X_background, y_background)

Dependencies (Debian): apt-get install python3-sklearn. See docs/models.md.
"""
import argparse
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import explaind_bundle as eb  # noqa: E402

ACTIVATION = {"identity": "identity", "relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}
TOLERANCE = 1e-9


def _split_pipeline(model):
    """(list of StandardScalers, final estimator) of a Pipeline or a bare estimator."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    if not isinstance(model, Pipeline):
        return [], model
    steps = [s for _, s in model.steps if s not in (None, "passthrough")]
    scalers, final = steps[:-1], steps[-1]
    for s in scalers:
        if not isinstance(s, StandardScaler):
            raise SystemExit("pipeline step %s is not supported: only StandardScaler may come before the model"
                             % type(s).__name__)
    return scalers, final


def _preprocess(scalers, n):
    """Compose the scalers into one (x - mean) / scale per feature."""
    mean, scale = np.zeros(n), np.ones(n)
    for s in scalers:   # x' = (x - mean)/scale, then (x' - m)/c = (x - (mean + m*scale)) / (scale*c)
        m = s.mean_ if getattr(s, "mean_", None) is not None and s.with_mean else np.zeros(n)
        c = s.scale_ if getattr(s, "scale_", None) is not None and s.with_std else np.ones(n)
        mean, scale = mean + m * scale, scale * c
    return {"mean": mean.tolist(), "scale": scale.tolist()}


def _binary_layer(w, b, mode):
    """One logistic unit z = w.x + b as the bundle's output layer."""
    w, b = np.asarray(w, dtype=np.float64).ravel(), float(np.ravel(b)[0])
    if mode == "sigmoid":
        return {"weights": [w.tolist()], "bias": [b], "activation": "sigmoid"}
    # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]: the same probabilities, two outputs.
    return {"weights": [[0.0] * len(w), w.tolist()], "bias": [0.0, b], "activation": "softmax"}


def _layers(est, binary):
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, Lasso, ElasticNet
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    if isinstance(est, (MLPClassifier, MLPRegressor)):
        if est.activation not in ACTIVATION:
            raise SystemExit("MLP activation %r is not supported" % est.activation)
        layers = [{"weights": w.T.tolist(), "bias": b.tolist(), "activation": ACTIVATION[est.activation]}
                  for w, b in zip(est.coefs_, est.intercepts_)]
        w, b = est.coefs_[-1].T, est.intercepts_[-1]
        if isinstance(est, MLPRegressor):
            if w.shape[0] != 1:
                raise SystemExit("MLPRegressor with %d outputs: a bundle predicts one value" % w.shape[0])
            layers[-1]["activation"] = "identity"
            return "regression", layers
        if est.out_activation_ == "logistic":
            if len(est.classes_) != 2:
                raise SystemExit("multi-label MLPClassifier is not supported")
            layers[-1] = _binary_layer(w[0], b, binary)
        else:
            layers[-1]["activation"] = "softmax"
        return "classification", layers
    if isinstance(est, LogisticRegression):
        k = len(est.classes_)
        if k == 2:
            return "classification", [_binary_layer(est.coef_[0], est.intercept_, binary)]
        mc = est.multi_class
        if mc == "auto":
            mc = "ovr" if est.solver == "liblinear" else "multinomial"
        if mc != "multinomial":
            raise SystemExit("LogisticRegression one-vs-rest with %d classes normalizes %d sigmoids, which is not a "
                             "softmax layer: fit it with multi_class='multinomial'" % (k, k))
        return "classification", [{"weights": est.coef_.tolist(), "bias": est.intercept_.tolist(),
                                   "activation": "softmax"}]
    if isinstance(est, (LinearRegression, Ridge, Lasso, ElasticNet)):
        coef = np.atleast_2d(est.coef_)
        if coef.shape[0] != 1:
            raise SystemExit("%s with %d targets: a bundle predicts one value" % (type(est).__name__, coef.shape[0]))
        return "regression", [{"weights": coef.tolist(), "bias": [float(np.ravel(est.intercept_)[0])],
                               "activation": "identity"}]
    raise SystemExit("%s is not supported (MLPClassifier, MLPRegressor, LogisticRegression, LinearRegression)"
                     % type(est).__name__)


def export(model, feature_names=None, X=None, y=None, binary="softmax", background_rows=1000, seed=0, tol=TOLERANCE):
    """The bundle (a dict) for a fitted estimator or Pipeline.

    feature_names: in input order (default: the model's feature_names_in_, else x0, x1...).
    X, y: background rows in the raw feature space and their targets (y optional); at most
    background_rows of them are kept (a seeded sample). The bundle is checked against
    model.predict_proba / model.predict on those rows."""
    scalers, est = _split_pipeline(model)
    n = est.n_features_in_ if hasattr(est, "n_features_in_") else np.atleast_2d(est.coef_).shape[1]
    if feature_names is None:
        names = getattr(model, "feature_names_in_", None)
        feature_names = [str(f) for f in names] if names is not None else ["x%d" % j for j in range(n)]
    feature_names = list(feature_names)
    if len(feature_names) != n:
        raise SystemExit("%d feature names for a model with %d inputs" % (len(feature_names), n))
    import sklearn_trees
    tree_export = sklearn_trees.nodes(est, n)
    if tree_export is not None:
        return _export_trees(est, tree_export, feature_names, X, y, background_rows, seed)
    task, layers = _layers(est, binary)
    bundle = {"format": eb.FORMAT, "task": task, "features": [{"name": f} for f in feature_names]}
    if task == "classification":
        bundle["classes"] = [eb.label_name(c) for c in est.classes_]
    if scalers:
        bundle["preprocess"] = _preprocess(scalers, n)
    bundle["layers"] = layers
    if X is not None:
        X = np.asarray(X, dtype=np.float64)
        keep = eb.sample_rows(len(X), background_rows, seed)
        Xb = X[keep]
        yb = [y[i] for i in keep] if y is not None else None
        bundle["background"] = eb.background(Xb, yb, bundle.get("classes"), task)
        ref = model.predict_proba(Xb) if task == "classification" else model.predict(Xb)
        err = eb.check(bundle, Xb, ref, tol, "scikit-learn")
        bundle["x-export"] = {"tool": "tools/export_sklearn.py", "estimator": type(est).__name__,
                              "max_error_vs_sklearn": err}
    else:
        bundle["x-export"] = {"tool": "tools/export_sklearn.py", "estimator": type(est).__name__}
    return bundle


def _export_trees(est, tree_export, feature_names, X, y, background_rows, seed):
    """Tree ensembles (tools/sklearn_trees.py): a bundle with {"trees": {"nodes": ...}}, checked
    against predict_proba / predict to 1e-9 on the background rows."""
    import sklearn_trees
    task, classes, nd = tree_export
    bundle = {"format": eb.FORMAT, "task": task, "features": [{"name": f} for f in feature_names]}
    if classes is not None:
        bundle["classes"] = [eb.label_name(c) for c in classes]
    bundle["trees"] = {"nodes": nd}
    export_info = {"tool": "tools/export_sklearn.py", "estimator": type(est).__name__}
    if X is not None:
        X = np.asarray(X, dtype=np.float64)
        keep = eb.sample_rows(len(X), background_rows, seed)
        Xb = X[keep]
        yb = [y[i] for i in keep] if y is not None else None
        bundle["background"] = eb.background(Xb, yb, bundle.get("classes"), task)
        ref = est.predict_proba(Xb) if task == "classification" else est.predict(Xb).reshape(-1, 1)
        mine = sklearn_trees.evaluate(nd, Xb, task == "classification")
        err = float(np.max(np.abs(mine - ref)))
        if err > 1e-9:
            raise SystemExit("exported trees differ from scikit-learn by %g" % err)
        export_info["max_error_vs_sklearn"] = err
    bundle["x-export"] = export_info
    return bundle


def _load(path):
    try:
        import joblib
        return joblib.load(path)
    except ImportError:
        with open(path, "rb") as f:
            return pickle.load(f)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="export_sklearn.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export a fitted scikit-learn model (MLPClassifier, MLPRegressor, LogisticRegression, "
                    "LinearRegression; optionally in a Pipeline after StandardScaler) as an explaind bundle.",
        epilog="example:\n  /usr/bin/python3 tools/export_sklearn.py iris_mlp.joblib --data data/iris.csv "
               "--target species -o iris_mlp.json\n  curl -X PUT -H 'Authorization: Bearer $ADMIN_KEY' "
               "--data-binary @iris_mlp.json localhost:8080/models/iris_mlp\nSee docs/models.md.")
    p.add_argument("model", help="the fitted estimator or Pipeline, saved with joblib.dump or pickle")
    p.add_argument("--data", help="CSV with a header row: the feature columns (numeric) and the target; "
                   "gives the feature names and the background rows")
    p.add_argument("--target", help="the target column of --data (its values become the background targets)")
    p.add_argument("--features", help="comma-separated feature names in the model's input order "
                   "(default: the model's feature_names_in_, else every --data column but the target)")
    p.add_argument("--background-rows", type=int, default=1000, help="keep at most this many background rows "
                   "(a seeded sample; default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the background sample (default 0)")
    p.add_argument("--binary", choices=["softmax", "sigmoid"], default="softmax",
                   help="binary classifiers: two softmax units (default) or one sigmoid unit")
    p.add_argument("-o", "--output", default="-", help="bundle file to write (default: stdout)")
    a = p.parse_args(argv)
    model = _load(a.model)
    features = a.features.split(",") if a.features else None
    X = y = None
    if a.data:
        if features is None:
            names = getattr(model, "feature_names_in_", None)
            features = [str(f) for f in names] if names is not None else None
        features, X, y = eb.table(a.data, a.target, features)
    bundle = export(model, features, X, y, binary=a.binary, background_rows=a.background_rows, seed=a.seed)
    eb.write(a.output, bundle)
    if a.output != "-":
        print("wrote %s: %s, %d features, %d layers%s" % (
            a.output, bundle["task"], len(bundle["features"]), len(bundle.get("layers", [])),
            ", %d background rows" % len(bundle["background"]["rows"]) if "background" in bundle else ""),
            file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Freeze small exports of tools/export_sklearn.py and tools/export_torch.py as test fixtures.

Usage (from the repo root):  /usr/bin/python3 tools/make_exporter_fixtures.py
Dependencies (Debian):       apt-get install python3-sklearn python3-torch python3-onnx

Writes tests/exporters/NAME.json (the bundle; NAME.onnx next to it for the ONNX form) and
NAME.expected.json: {"bundle", "inputs" (raw rows), "outputs" (predict_proba / predict of
scikit-learn, or the PyTorch network's outputs), "task"}. tests/test_exporters.c loads every
bundle with the server's own loader and checks it reproduces "outputs" to 1e-5, so `make
test` checks the exporters without Python. Rerun after changing an exporter.
"""
import json
import os
import sys

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import explaind_bundle as eb  # noqa: E402
import export_sklearn  # noqa: E402
import export_torch  # noqa: E402

OUT = os.path.join(ROOT, "tests", "exporters")
N_BACKGROUND = 40
N_CHECK = 12


def data(name, target):
    return eb.table(os.path.join(ROOT, "data", name + ".csv"), target)


def save(name, bundle, X_check, outputs, task):
    eb.write(os.path.join(OUT, name + ".json"), bundle)
    eb.write(os.path.join(OUT, name + ".expected.json"),
             {"bundle": name + ".json", "task": task, "inputs": np.asarray(X_check).tolist(),
              "outputs": np.asarray(outputs, dtype=np.float64).reshape(len(X_check), -1).tolist()})
    print("%-32s %s" % (name, bundle.get("x-export", {})))


def sklearn_fixtures():
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    names, X, y = data("iris", "species")
    m = make_pipeline(StandardScaler(), MLPClassifier([8], activation="tanh", random_state=0, max_iter=2000)).fit(X, y)
    b = export_sklearn.export(m, names, X, y, background_rows=N_BACKGROUND)
    save("sklearn_mlp_iris", b, X[::13][:N_CHECK], m.predict_proba(X[::13][:N_CHECK]), "classification")

    names, X, y = data("wine", "cultivar")
    m = make_pipeline(StandardScaler(), LogisticRegression(multi_class="multinomial", max_iter=2000)).fit(X, y)
    b = export_sklearn.export(m, names, X, y, background_rows=N_BACKGROUND)
    save("sklearn_logreg_wine", b, X[::15][:N_CHECK], m.predict_proba(X[::15][:N_CHECK]), "classification")

    names, X, y = data("breast_cancer", "diagnosis")
    names, X = names[:6], X[:, :6]
    m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    b = export_sklearn.export(m, names, X, y, binary="sigmoid", background_rows=N_BACKGROUND)
    save("sklearn_logreg_binary_sigmoid", b, X[::47][:N_CHECK], m.predict_proba(X[::47][:N_CHECK]), "classification")
    m = make_pipeline(StandardScaler(), MLPClassifier([6], activation="relu", random_state=0, max_iter=2000)).fit(X, y)
    b = export_sklearn.export(m, names, X, y, binary="softmax", background_rows=N_BACKGROUND)
    save("sklearn_mlp_binary_softmax", b, X[::47][:N_CHECK], m.predict_proba(X[::47][:N_CHECK]), "classification")

    names, X, y = data("diabetes", "progression")
    yf = np.array([float(v) for v in y])
    m = make_pipeline(StandardScaler(), MLPRegressor([8], activation="logistic", random_state=0, max_iter=3000,
                                                     learning_rate_init=0.01)).fit(X, yf)
    b = export_sklearn.export(m, names, X, y, background_rows=N_BACKGROUND)
    save("sklearn_mlpreg_diabetes", b, X[::37][:N_CHECK], m.predict(X[::37][:N_CHECK]), "regression")
    m = LinearRegression().fit(X, yf)
    b = export_sklearn.export(m, names, X, y, background_rows=N_BACKGROUND)
    save("sklearn_linreg_diabetes", b, X[::37][:N_CHECK], m.predict(X[::37][:N_CHECK]), "regression")


def torch_fixtures():
    import torch
    from torch import nn
    torch.manual_seed(0)
    names, X, y = data("iris", "species")
    classes = sorted(set(y))
    mean, scale = X.mean(axis=0), X.std(axis=0)
    xt = torch.from_numpy(((X - mean) / scale).astype(np.float32))
    yt = torch.tensor([classes.index(v) for v in y])
    net = nn.Sequential(nn.Linear(4, 10), nn.GELU(), nn.Dropout(0.1), nn.Linear(10, 6), nn.Tanh(), nn.Linear(6, 3))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    net.eval()
    Xc = X[::13][:N_CHECK]
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(((Xc - mean) / scale).astype(np.float32))), dim=1).double().numpy()
    b = export_torch.export(net, names, "classification", classes, X, y, mean=mean, scale=scale,
                            background_rows=N_BACKGROUND)
    save("torch_iris_layers", b, Xc, ref, "classification")
    b = export_torch.export(net, names, "classification", classes, X, y, mean=mean, scale=scale,
                            onnx=os.path.join(OUT, "torch_iris_onnx.onnx"), background_rows=N_BACKGROUND)
    save("torch_iris_onnx", b, Xc, ref, "classification")

    names, X, y = data("diabetes", "progression")
    yf = np.array([float(v) for v in y], dtype=np.float32)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    xt = torch.from_numpy(((X - mean) / scale).astype(np.float32))
    ym, ys = float(yf.mean()), float(yf.std())
    net = nn.Sequential(nn.Linear(10, 8), nn.Softplus(), nn.Linear(8, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.mse_loss(net(xt)[:, 0], torch.from_numpy((yf - ym) / ys)).backward()
        opt.step()
    with torch.no_grad():   # fold the target's standardization into the last layer
        net[2].weight.mul_(ys)
        net[2].bias.mul_(ys).add_(ym)
    net.eval()
    Xc = X[::37][:N_CHECK]
    with torch.no_grad():
        ref = net(torch.from_numpy(((Xc - mean) / scale).astype(np.float32))).double().numpy()
    b = export_torch.export(net, names, "regression", None, X, y, mean=mean, scale=scale,
                            background_rows=N_BACKGROUND)
    save("torch_diabetes_layers", b, Xc, ref, "regression")


def main():
    os.makedirs(OUT, exist_ok=True)
    sklearn_fixtures()
    torch_fixtures()


if __name__ == "__main__":
    main()

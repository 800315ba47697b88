#!/usr/bin/python3
"""Export a PyTorch nn.Sequential of Linear layers and activations as an explaind bundle.

Modules: Linear, ReLU, LeakyReLU (slope 0.01), Tanh, Sigmoid, Softplus (beta 1), GELU
(exact -> "gelu_erf", approximate="tanh" -> "gelu"), Identity, Dropout (dropped: export
runs in eval mode), Flatten, and Softmax(dim=1 or -1) as the last module. Two Linear
layers in a row become two layers (the first with "identity"). Nested Sequentials are
flattened.

  classifiers   the bundle must output probabilities. A network that ends in Linear
                (logits, as trained with CrossEntropyLoss / BCEWithLogitsLoss) gets
                softmax appended (sigmoid for a single output unit); --logits error
                refuses that instead.
  regression    the network ends in Linear (one output).

Two ways out:
  layers (default)   weights copied into "layers" (float32 -> the same doubles);
  --onnx FILE        torch.onnx.export to FILE, and the bundle names it ("onnx": file
                     name relative to the bundle: keep them in one model folder);
  --onnx-inline      the graph embedded as "onnx": {"base64": ...}: the form
                     PUT /models/NAME accepts.
Preprocessing: --mean/--scale (comma lists) or --standardize (mean and population std of
--data's feature columns) become the bundle's "preprocess"; the network then sees
(x - mean) / scale, so train it on standardized inputs.

Before writing, the bundle's float64 forward pass (layers form) must reproduce the
network's float32 outputs on the background rows to 1e-5, else it exits.

Command line (the module saved with torch.save(model, path)):
  /usr/bin/python3 tools/export_torch.py model.pt --data train.csv --target species \\
      --task classification [--standardize] [--onnx model.onnx | --onnx-inline] -o bundle.json
From Python:
  sys.path.insert(0, "tools"); from export_torch import export
  bundle = export(net, feature_names, "classification", classes, X_background, y_background,
                  mean=mean, scale=scale)

Dependencies (Debian): apt-get install python3-torch (python3-onnx to check --onnx files).
See docs/models.md.
"""
import argparse
import base64
import io
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import explaind_bundle as eb  # noqa: E402

TOLERANCE = 1e-5


def _modules(net):
    from torch import nn
    if isinstance(net, nn.Sequential):
        out = []
        for m in net:
            out += _modules(m)
        return out
    return [net]


def _activation(m):
    """The bundle activation of module m, None for a module that vanishes, or an error."""
    from torch import nn
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.Tanh):
        return "tanh"
    if isinstance(m, nn.Sigmoid):
        return "sigmoid"
    if isinstance(m, nn.LeakyReLU):
        if abs(m.negative_slope - 0.01) > 1e-12:
            raise SystemExit("LeakyReLU(negative_slope=%g): only 0.01 is supported" % m.negative_slope)
        return "leaky_relu"
    if isinstance(m, nn.Softplus):
        if m.beta != 1:
            raise SystemExit("Softplus(beta=%g): only beta=1 is supported as a layer (use --onnx)" % m.beta)
        return "softplus"
    if isinstance(m, nn.GELU):
        return "gelu" if getattr(m, "approximate", "none") == "tanh" else "gelu_erf"
    if isinstance(m, nn.Softmax):
        if m.dim not in (1, -1):
            raise SystemExit("Softmax(dim=%s): the softmax must run over the classes (dim=1)" % m.dim)
        return "softmax"
    if isinstance(m, (nn.Identity, nn.Dropout, nn.Flatten)):
        return None
    raise SystemExit("module %s is not supported (Linear, ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, GELU, "
                     "Softmax, Identity, Dropout, Flatten)" % type(m).__name__)


def layers_of(net, task, logits="softmax"):
    """The bundle's layers for an nn.Sequential, and whether an output activation was added."""
    from torch import nn
    layers, added = [], False
    for m in _modules(net):
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double().numpy()
            b = m.bias.detach().double().numpy() if m.bias is not None else np.zeros(w.shape[0])
            layers.append({"weights": w.tolist(), "bias": b.tolist(), "activation": "identity"})
            continue
        act = _activation(m)
        if act is None:
            continue
        if not layers or layers[-1]["activation"] != "identity":
            raise SystemExit("%s does not follow a Linear layer" % type(m).__name__)
        layers[-1]["activation"] = act
    if not layers:
        raise SystemExit("the network has no Linear layer")
    last = layers[-1]
    if task == "classification" and last["activation"] == "identity":
        if logits == "error":
            raise SystemExit("the network ends in Linear (logits): end it in Softmax, or drop --logits error")
        last["activation"] = "sigmoid" if len(last["bias"]) == 1 else "softmax"
        added = True
    return layers, added


def _onnx_bytes(net, n_inputs, opset):
    import torch
    buf = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, n_inputs), buf, opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return buf.getvalue()


def export(net, feature_names, task, classes=None, X=None, y=None, mean=None, scale=None, onnx=None,
           opset=13, logits="softmax", background_rows=1000, seed=0, tol=TOLERANCE):
    """The bundle (a dict) for an nn.Sequential.

    onnx: None (layers), "inline" ("onnx": {"base64": ...}) or a file path (written, and
    named by its base name). X, y: background rows (raw features) and targets; at most
    background_rows kept (seeded sample), and the bundle is checked against net on them."""
    import torch
    from torch import nn
    net = net.eval()
    layers, added = layers_of(net, task, logits)
    n_in = len(layers[0]["weights"][0])
    if len(feature_names) != n_in:
        raise SystemExit("%d feature names for a network with %d inputs" % (len(feature_names), n_in))
    n_out = len(layers[-1]["bias"])
    if task == "classification":
        if not classes or len(classes) != max(n_out, 2) or (n_out == 1 and len(classes) != 2):
            raise SystemExit("the network has %d outputs: give %d class names" % (n_out, max(n_out, 2)))
    elif n_out != 1:
        raise SystemExit("a regression network has one output, this one has %d" % n_out)
    bundle = {"format": eb.FORMAT, "task": task, "features": [{"name": f} for f in feature_names]}
    if task == "classification":
        bundle["classes"] = [str(c) for c in classes]
    if mean is not None or scale is not None:
        bundle["preprocess"] = {"mean": [float(v) for v in (mean if mean is not None else [0.0] * n_in)],
                                "scale": [float(v) for v in (scale if scale is not None else [1.0] * n_in)]}
    bundle["layers"] = layers
    export_info = {"tool": "tools/export_torch.py", "torch": torch.__version__}
    if added:
        export_info["output"] = "%s appended to the network's logits" % layers[-1]["activation"]
    if X is not None:
        X = np.asarray(X, dtype=np.float64)
        keep = eb.sample_rows(len(X), background_rows, seed)
        Xb = X[keep]
        bundle["background"] = eb.background(Xb, [y[i] for i in keep] if y is not None else None,
                                             bundle.get("classes"), task)
        pre = bundle.get("preprocess")
        xin = (Xb - np.array(pre["mean"])) / np.array(pre["scale"]) if pre else Xb
        with torch.no_grad():
            out = net(torch.from_numpy(xin.astype(np.float32))).double()
            if added:
                out = torch.sigmoid(out) if n_out == 1 else torch.softmax(out, dim=1)
        ref = out.numpy()
        if task == "classification" and n_out == 1:
            ref = np.column_stack([1.0 - ref[:, 0], ref[:, 0]])
        export_info["max_error_vs_torch"] = eb.check(bundle, Xb, ref, tol, "PyTorch")
    if onnx is not None:
        graph_net = nn.Sequential(net, nn.Sigmoid() if n_out == 1 else nn.Softmax(dim=1)).eval() if added else net
        data = _onnx_bytes(graph_net, n_in, opset)
        del bundle["layers"]
        if onnx == "inline":
            bundle["onnx"] = {"base64": base64.b64encode(data).decode("ascii")}
        else:
            with open(onnx, "wb") as f:
                f.write(data)
            bundle["onnx"] = os.path.basename(onnx)
        export_info["onnx_opset"] = opset
    bundle["x-export"] = export_info
    return bundle


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="export_torch.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export a PyTorch nn.Sequential of Linear layers and activations as an explaind bundle, "
                    "with its weights as layers or as an ONNX graph.",
        epilog="example:\n  /usr/bin/python3 tools/export_torch.py iris_net.pt --data data/iris.csv --target species "
               "\\\n      --task classification --standardize --onnx-inline -o iris_net.json\n"
               "  curl -X PUT -H 'Authorization: Bearer $ADMIN_KEY' --data-binary @iris_net.json "
               "localhost:8080/models/iris_net\nSee docs/models.md.")
    p.add_argument("model", help="the module, saved with torch.save(model, path)")
    p.add_argument("--task", choices=["classification", "regression"], required=True)
    p.add_argument("--data", help="CSV with a header row: numeric feature columns and the target; gives the "
                   "feature names, the background rows and (classification) the sorted class names")
    p.add_argument("--target", help="the target column of --data")
    p.add_argument("--features", help="comma-separated feature names (default: every --data column but the target)")
    p.add_argument("--classes", help="comma-separated class names in output order (default: the sorted distinct "
                   "values of --target)")
    p.add_argument("--mean", help="comma-separated per-feature means: the network sees (x - mean) / scale")
    p.add_argument("--scale", help="comma-separated per-feature scales")
    p.add_argument("--standardize", action="store_true",
                   help="preprocess with the mean and population std of --data's feature columns")
    p.add_argument("--onnx", metavar="FILE", help="store the network as this ONNX file, named by the bundle")
    p.add_argument("--onnx-inline", action="store_true", help="embed the ONNX graph as base64 (the PUT form)")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset (default 13)")
    p.add_argument("--logits", choices=["softmax", "error"], default="softmax",
                   help="a classifier ending in Linear: append softmax/sigmoid (default) or refuse")
    p.add_argument("--background-rows", type=int, default=1000, help="at most this many background rows "
                   "(a seeded sample; default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="-", help="bundle file (default: stdout)")
    a = p.parse_args(argv)
    import torch
    try:
        net = torch.load(a.model, weights_only=False)
    except TypeError:   # torch < 2.0 has no weights_only
        net = torch.load(a.model)
    features = a.features.split(",") if a.features else None
    X = y = None
    if a.data:
        features, X, y = eb.table(a.data, a.target, features)
    if features is None:
        raise SystemExit("give --features or --data")
    classes = a.classes.split(",") if a.classes else None
    if a.task == "classification" and classes is None:
        if y is None:
            raise SystemExit("a classifier needs --classes or --data with --target")
        classes = sorted(set(y))
    mean = [float(v) for v in a.mean.split(",")] if a.mean else None
    scale = [float(v) for v in a.scale.split(",")] if a.scale else None
    if a.standardize:
        if X is None:
            raise SystemExit("--standardize needs --data")
        mean, scale = X.mean(axis=0), X.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
    onnx = "inline" if a.onnx_inline else a.onnx
    bundle = export(net, features, a.task, classes, X, y, mean=mean, scale=scale, onnx=onnx, opset=a.opset,
                    logits=a.logits, background_rows=a.background_rows, seed=a.seed)
    eb.write(a.output, bundle)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the
repository's own valid and invalid inputs: request-suite bodies, demo bundles (with
their background inlined, since the bundle fuzzer may not open files), CSV heads and
synthetic HTTP requests. Run from the repository root; standard library only."""
import csv, io, json, os, glob

ROOT = "tests/fuzz/corpus"
ROUTES = ["/predict", "/explain/lime", "/explain/gradient", "/explain/shap", "/importance",
          "/explain/pdp", "/v2/models/iris/infer", "/v2/models/credit/infer"]

def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def cases():
    for path in sorted(glob.glob("tests/requests/*/*.json")):
        c = json.load(open(path))
        body = c.get("body_raw")
        if body is None and "body" in c:
            body = json.dumps(c["body"], separators=(",", ":"))
        yield os.path.basename(path)[:-5], c, body

def inline_bundle(model):
    b = json.load(open(f"models/{model}/model.json"))
    bg = b.pop("background", None)
    if bg and "csv" in bg:
        rows = list(csv.DictReader(open(f"models/{model}/{bg['csv']}")))[:20]
        names = [f["name"] for f in b["features"]]
        def val(f, v):
            return v if f.get("type") == "categorical" else float(v)
        b["background"] = {"rows": [[val(f, r[f["name"]]) for f in b["features"]] for r in rows],
                           "targets": [r[bg["target"]] if b["task"] == "classification" else float(r[bg["target"]]) for r in rows]}
    return json.dumps(b, separators=(",", ":"))

def main():
    explain = {
        "/explain/lime": {"model": "breast_cancer", "instance": None, "num_samples": 200, "seed": 1},
        "/explain/gradient": {"model": "credit", "instances": None, "method": "integrated_gradients", "steps": 8},
        "/explain/shap": {"model": "iris", "instances": None, "nsamples": 50, "background_size": 5, "seed": 2},
        "/importance": {"model": "wine", "n_repeats": 1, "seed": 3},
        "/explain/pdp": {"model": "diabetes", "features": ["bmi"], "grid_resolution": 5},
    }
    rows = {"breast_cancer": None, "credit": [33, 41816, 0.2156, "employed", "east", 1], "iris": [5.1, 3.5, 1.4, 0.2]}
    bc = next(csv.reader(io.StringIO(open("models/breast_cancer/background.csv").read().split("\n", 2)[1])))
    rows["breast_cancer"] = [float(v) for v in bc[:30]]
    for name, c, body in cases():
        if body is None:
            continue
        route = ROUTES.index(c["path"]) if c["path"] in ROUTES else 0
        write("request", name, bytes([route]) + body.encode())
        hdrs = "".join(f"{k}: {v}\n" for k, v in c.get("headers", {}).items())
        write("http", name, f"{c['method']} {c['path']}\n{hdrs}\n{body}")
    for path, req in explain.items():
        r = dict(req)
        if "instance" in r:
            r["instance"] = rows[r["model"]]
        if "instances" in r:
            r["instances"] = [rows[r["model"]]]
        write("request", path.strip("/").replace("/", "_"), bytes([ROUTES.index(path)]) + json.dumps(r).encode())
        write("http", path.strip("/").replace("/", "_"), f"POST {path}\nContent-Type: application/json\n\n{json.dumps(r)}")
    for m in ["iris", "breast_cancer", "wine", "diabetes", "credit"]:
        write("bundle", m, inline_bundle(m))
        write("csv", m, "".join(open(f"models/{m}/background.csv").readlines()[:30]))
    write("http", "models", "GET /models\n\n")
    write("http", "metrics", "GET /metrics\n\n")
    write("http", "model_meta", "GET /models/credit\nAuthorization: Bearer r\n\n")
    write("http", "put", "PUT /models/new1\nAuthorization: Bearer k\n\n" + inline_bundle("iris"))
    write("http", "delete", "DELETE /models/wine\nAuthorization: Bearer k\n\n")
    write("http", "v2_meta", "GET /v2/models/iris/versions/1\n\n")
    write("http", "v2_ready", "GET /v2/health/ready\n\n")
    write("csv", "quoted", 'age,employment,approved\n"33","employed",yes\n41,"retired",no\r\n')
    write("csv", "codes", "employment,age\n1,20\n3,22.5\n")

main()

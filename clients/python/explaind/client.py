"""Client: one method per endpoint of docs/API.md, on urllib alone."""
import json
import time
import urllib.error
import urllib.parse
import urllib.request

from . import errors
from ._rows import needs_features, to_rows
from .results import (Attribution, Job, LimeExplanation, ModelInfo, PartialDependence, Prediction, Result,
                      ShapExplanation, Importance)


class Client:
    """explaind at url. api_key is sent as 'Authorization: Bearer KEY' (an API key, or the
    admin key for upload_model / delete_model); timeout in seconds per HTTP request."""

    def __init__(self, url="http://127.0.0.1:8080", api_key=None, timeout=60.0):
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._features = {}  # model name -> [feature names]
        self._classes = {}  # model name -> [class names] or None

    # ---- HTTP ------------------------------------------------------------------------
    def _open(self, method, path, body=None, headers=None, timeout=None):
        h = {"Accept": "application/json"}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        data = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            else:
                data = json.dumps(body, allow_nan=False).encode("utf-8")
                h["Content-Type"] = "application/json"
        h.update(headers or {})
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            raise errors.from_response(e.code, e.read(), e.headers.get("X-Request-Id"),
                                       e.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError) as e:
            raise errors.ConnectionFailed("cannot reach %s: %s" % (self.url, getattr(e, "reason", e))) from None

    def request(self, method, path, body=None, headers=None):
        """One request; returns the decoded JSON answer (None for an empty body)."""
        with self._open(method, path, body, headers) as r:
            raw = r.read()
        return json.loads(raw.decode("utf-8")) if raw else None

    # ---- models ----------------------------------------------------------------------
    def models(self):
        """GET /models: a list of ModelInfo (name, task, n_features, classes, version)."""
        return [ModelInfo(m) for m in self.request("GET", "/models")["models"]]

    def model(self, name):
        """GET /models/{name}: the model's metadata (features, classes, layers, ...)."""
        info = ModelInfo(self.request("GET", "/models/" + urllib.parse.quote(name, safe="")))
        self._features[name] = info.feature_names
        self._classes[name] = info.raw.get("classes")
        return info

    def feature_names(self, name):
        if name not in self._features:
            self.model(name)
        return self._features[name]

    def upload_model(self, name, bundle, if_none_match=False):
        """PUT /models/{name} (admin key): bundle is a dict, JSON text or a file path."""
        if isinstance(bundle, dict):
            body = json.dumps(bundle).encode("utf-8")
        elif isinstance(bundle, (bytes, bytearray)):
            body = bytes(bundle)
        elif isinstance(bundle, str) and bundle.lstrip().startswith("{"):
            body = bundle.encode("utf-8")
        else:
            with open(bundle, "rb") as f:
                body = f.read()
        headers = {"Content-Type": "application/json"}
        if if_none_match:
            headers["If-None-Match"] = "*"
        self._features.pop(name, None)
        self._classes.pop(name, None)
        return Result(self.request("PUT", "/models/" + urllib.parse.quote(name, safe=""), body, headers))

    def delete_model(self, name):
        self._features.pop(name, None)
        self._classes.pop(name, None)
        self.request("DELETE", "/models/" + urllib.parse.quote(name, safe=""))

    # ---- rows ------------------------------------------------------------------------
    def _rows(self, model, X):
        feats = self.feature_names(model) if needs_features(X) else None
        return to_rows(X, feats)

    def _call(self, path, cls, model, X, params, key="instances"):
        rows = self._rows(model, X) if X is not None else None
        body = {"model": model}
        if rows is not None:
            body[key] = rows
        body.update({k: v for k, v in params.items() if v is not None})
        raw = self.request("POST", path, body)
        feats = self._features.get(model)
        return cls(raw, features=feats, rows=rows)

    # ---- endpoints -------------------------------------------------------------------
    def predict(self, model, X):
        """POST /predict: labels and probabilities, or regression values."""
        res = self._call("/predict", Prediction, model, X, {})
        if "probabilities" in res.raw:
            # The class names, for .to_frame()'s columns (metadata is fetched once per model).
            if model not in self._classes:
                try:
                    self.model(model)
                except errors.ExplaindError:
                    self._classes[model] = None
            res.classes = self._classes.get(model)  # .raw stays the server's answer
        return res

    def lime(self, model, X, **params):
        """POST /explain/lime (num_samples, num_features, labels, top_labels, discretize,
        kernel_width, feature_selection, repeats, seed, ...)."""
        return self._call("/explain/lime", LimeExplanation, model, X, params)

    def gradient(self, model, X, method="integrated_gradients", **params):
        """POST /explain/gradient (target, output, baseline, steps, samples, seed, ...)."""
        params["method"] = method
        return self._call("/explain/gradient", Attribution, model, X, params)

    def shap(self, model, X, **params):
        """POST /explain/shap (target, nsamples, background_size, link, seed, ...).
        The answer has .to_shap() for shap's plots."""
        self.feature_names(model)  # for the Explanation's feature names
        return self._call("/explain/shap", ShapExplanation, model, X, params)

    def occlusion(self, model, X, **params):
        """POST /explain/occlusion (window, strides, baseline, target)."""
        return self._call("/explain/occlusion", Attribution, model, X, params)

    def importance(self, model, method="permutation", data=None, targets=None, **params):
        """POST /importance over data (default: the model's background and its targets)."""
        params["method"] = method
        if data is not None:
            params["data"] = {"instances": self._rows(model, data)}
            if targets is not None:
                params["data"]["targets"] = [t.item() if hasattr(t, "item") else t for t in
                                             (targets.tolist() if hasattr(targets, "tolist") else targets)]
        return self._call("/importance", Importance, model, None, params)

    def pdp(self, model, features, data=None, **params):
        """POST /explain/pdp: features is a name/index or a pair of them."""
        if isinstance(features, (str, int)):
            features = [features]
        params["features"] = list(features)
        if data is not None:
            params["data"] = {"instances": self._rows(model, data)}
        return self._call("/explain/pdp", PartialDependence, model, None, params)

    # ---- batch jobs ------------------------------------------------------------------
    def submit_job(self, endpoint, model, X=None, csv=None, **params):
        """POST /jobs: the body of endpoint (e.g. "/explain/shap") run as a batch job over
        X, or over CSV text (header = feature names). Returns a Job (id, status, total)."""
        body = {"endpoint": endpoint, "model": model}
        if X is not None:
            body["instances"] = self._rows(model, X)
        if csv is not None:
            body["csv"] = csv
        body.update({k: v for k, v in params.items() if v is not None})
        return Job(self.request("POST", "/jobs", body))

    def job(self, job):
        """GET /jobs/{id}."""
        return Job(self.request("GET", "/jobs/" + urllib.parse.quote(_job_id(job), safe="")))

    def jobs(self):
        """GET /jobs."""
        ans = self.request("GET", "/jobs")
        return [Job(j) for j in (ans.get("jobs", []) if isinstance(ans, dict) else ans)]

    def cancel_job(self, job):
        """DELETE /jobs/{id}: cancels a running job or deletes a finished one."""
        self.request("DELETE", "/jobs/" + urllib.parse.quote(_job_id(job), safe=""))

    def wait(self, job, timeout=None, poll=0.5, progress=None):
        """Polls GET /jobs/{id} until the job ends; returns the final Job. Draws a progress
        bar when tqdm is importable (progress=False turns it off). Raises
        errors.ExplaindError when the job failed and TimeoutError past timeout seconds."""
        bar = None
        if progress is None or progress:
            try:
                from tqdm import tqdm
                bar = tqdm(total=None, unit="row", desc="job %s" % _job_id(job))
            except ImportError:
                bar = None
        start = time.monotonic()
        try:
            while True:
                j = self.job(job)
                p = j.raw.get("progress") or {}
                if bar is not None:
                    if p.get("total") is not None and bar.total != p["total"]:
                        bar.total = p["total"]
                    if p.get("done") is not None:
                        bar.update(p["done"] - bar.n)
                if j.done:
                    break
                if timeout is not None and time.monotonic() - start > timeout:
                    raise TimeoutError("job %s still %s after %.0f s" % (_job_id(job), j.raw.get("status"), timeout))
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()
        if j.raw.get("status") == "failed":
            err = j.raw.get("error") or {}
            if isinstance(err, dict):
                raise errors.BY_CODE.get(err.get("code"), errors.ExplaindError)(
                    err.get("message") or "job failed", code=err.get("code"), field=err.get("field"))
            raise errors.ExplaindError(str(err) or "job failed")
        return j

    def stream_results(self, job, start=0):
        """GET /jobs/{id}/results: yields one dict per finished instance ({"index": i, ...}),
        read line by line as NDJSON (while the job runs: the finished prefix)."""
        path = "/jobs/%s/results" % urllib.parse.quote(_job_id(job), safe="")
        with self._open("GET", path, headers={"Accept": "application/x-ndjson"}) as r:
            for line in r:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line.decode("utf-8"))
                if rec.get("index", 0) >= start:
                    yield rec


def _job_id(job):
    if isinstance(job, Job):
        return str(job.raw["id"])
    if isinstance(job, dict):
        return str(job["id"])
    return str(job)

"""Answers as plain objects: the server's JSON fields as attributes (and .raw, the dict),
plus .to_frame() (pandas) and, for SHAP, .to_shap() (a shap.Explanation)."""


def _pandas():
    try:
        import pandas
    except ImportError as e:  # optional extra
        raise ImportError("to_frame() needs pandas (apt-get install python3-pandas, or pip install pandas)") from e
    return pandas


class Result:
    """One answer. Every top-level field of the JSON is an attribute; .raw is the dict."""

    def __init__(self, raw, features=None, rows=None):
        self.raw = raw
        self.features = features  # the model's feature names, when known
        self.rows = rows  # the rows sent, in the model's feature order, when known

    def __getattr__(self, name):
        raw = self.__dict__.get("raw") or {}
        if name in raw:
            return raw[name]
        raise AttributeError("%s has no field %r (fields: %s)" % (type(self).__name__, name, ", ".join(sorted(raw))))

    def __getitem__(self, key):
        return self.raw[key]

    def __repr__(self):
        keys = ", ".join(sorted(self.raw))
        return "<%s %s>" % (type(self).__name__, keys)

    def to_frame(self):
        return _pandas().json_normalize(self.raw)


class Prediction(Result):
    def to_frame(self):
        pd = _pandas()
        data = {"prediction": self.raw["predictions"]}
        if "probabilities" in self.raw:
            classes = self.__dict__.get("classes") or ["p%d" % k for k in range(len(self.raw["probabilities"][0]))]
            for k, c in enumerate(classes):
                data[c] = [p[k] for p in self.raw["probabilities"]]
        return pd.DataFrame(data)


class LimeExplanation(Result):
    """lime's answer: .to_frame() has one row per (instance, label, feature)."""

    def to_frame(self):
        pd = _pandas()
        out = []
        for i, e in enumerate(self.raw["explanations"]):
            for lab in e["labels"]:
                for w in lab["weights"]:
                    out.append({"instance": i, "label": lab.get("label"), "feature": w["feature"],
                                "condition": w.get("condition"), "weight": w["weight"], "std": w.get("std"),
                                "score": lab.get("score"), "intercept": lab.get("intercept")})
        return pd.DataFrame(out)


class Attribution(Result):
    """Per-feature attributions (gradients, SHAP, occlusion): .to_frame() is one row per
    instance, one column per feature."""

    values_key = "attributions"

    def _names(self, n):
        names = self.raw.get("features") or self.features
        if isinstance(names, list) and names and isinstance(names[0], dict):
            names = [f.get("name") for f in names]
        return list(names) if names and len(names) == n else ["f%d" % k for k in range(n)]

    def to_frame(self):
        pd = _pandas()
        values = self.raw[self.values_key]
        return pd.DataFrame(values, columns=self._names(len(values[0]) if values else 0))


class ShapExplanation(Attribution):
    values_key = "shap_values"

    def to_shap(self):
        """A shap.Explanation (values, base_values, data, feature_names), so that shap's
        plots (shap.plots.waterfall(e[0]), shap.plots.bar(e), ...) work unchanged."""
        try:
            import numpy as np
            import shap
        except ImportError as e:  # optional extra
            raise ImportError("to_shap() needs the shap package (pip install shap)") from e
        values = np.asarray(self.raw["shap_values"], dtype=float)
        base = np.asarray(self.raw["expected_value"], dtype=float)
        data = None
        if self.rows is not None:
            data = np.asarray([[v if isinstance(v, (int, float)) else np.nan for v in r] for r in self.rows], dtype=float)
        return shap.Explanation(values=values, base_values=base, data=data,
                                feature_names=self._names(values.shape[1]))


class Importance(Result):
    def to_frame(self):
        pd = _pandas()
        return pd.DataFrame([{"feature": i["feature"], "mean": i["mean"], "std": i.get("std")}
                             for i in self.raw["importances"]])


class PartialDependence(Result):
    """.to_frame(): one row per grid point (one feature) with a column per output."""

    def to_frame(self):
        pd = _pandas()
        grid = self.raw["grid_values"]
        feats = self.raw["features"]
        outs = self.raw.get("outputs") or ["value"]
        if len(grid) != 1:
            raise ValueError("to_frame() is for one feature; use .average for a pair")
        name = feats[0] if isinstance(feats[0], str) else str(feats[0])
        data = {name: grid[0]}
        for k, o in enumerate(outs):
            data[str(o)] = self.raw["average"][k]
        return pd.DataFrame(data)


class ModelInfo(Result):
    @property
    def feature_names(self):
        return [f["name"] for f in self.raw.get("features", [])]


class Job(Result):
    """A batch job as GET /jobs/{id} describes it."""

    @property
    def done(self):
        return self.raw.get("status") in ("succeeded", "failed", "cancelled")

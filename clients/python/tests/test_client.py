# The explaind Python client against a real server (tests/test_pyclient.c starts one and
# runs tests/run_tests.py). EXPLAIND_URL names the server; EXPLAIND_ADMIN_KEY is its admin
# key (the upload tests skip without it). Every skip reason starts with its kind, which
# tests/run_tests.py reports: "optional extra:" (shap, not in Debian), "not served:" (an
# endpoint of the contract this server does not answer yet) or "missing:" (a package that
# `make py-deps` installs: a failure under CI=true).
import json
import math
import os
import unittest

import explaind
from explaind import Client

URL = os.environ.get("EXPLAIND_URL", "http://127.0.0.1:8080")
ADMIN_KEY = os.environ.get("EXPLAIND_ADMIN_KEY")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

try:
    import numpy as np
except ImportError:
    np = None
try:
    import pandas as pd
except ImportError:
    pd = None

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
CREDIT_ROW = {"age": 33, "income": 41816, "debt_ratio": 0.2156, "employment": "employed", "region": "east",
              "late_payments": 1}


def need_numpy():
    if np is None:
        raise unittest.SkipTest("missing: numpy (make py-deps: apt-get install python3-numpy)")


def need_pandas():
    if pd is None:
        raise unittest.SkipTest("missing: pandas (make py-deps: apt-get install python3-pandas)")


def served(client, method, path, body):
    """Skips the test when the server does not route path (404 "no such path")."""
    try:
        client.request(method, path, body)
    except explaind.NotFound as e:
        if "no such path" in e.message:
            raise unittest.SkipTest("not served: %s %s answers 404 (%s)" % (method, path, e.message))
    except explaind.ExplaindError:
        pass


class Predict(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL)

    def test_models_lists_the_demo_models(self):
        names = [m.name for m in self.c.models()]
        for want in ("iris", "credit", "diabetes", "breast_cancer"):
            self.assertIn(want, names)
        info = self.c.model("iris")
        self.assertEqual(info.task, "classification")
        self.assertEqual(len(info.feature_names), 4)

    def test_predict_lists_equal_the_raw_answer(self):
        raw = self.c.request("POST", "/predict", {"model": "iris", "instances": [IRIS_ROW]})
        p = self.c.predict("iris", [IRIS_ROW])
        self.assertEqual(p.predictions, raw["predictions"])
        self.assertEqual(p.probabilities, raw["probabilities"])
        self.assertEqual(self.c.predict("iris", IRIS_ROW).raw, p.raw)  # one row alone

    def test_predict_numpy_and_frame(self):
        need_numpy()
        need_pandas()
        feats = self.c.feature_names("iris")
        rows = [IRIS_ROW, [6.7, 3.0, 5.2, 2.3]]
        want = self.c.predict("iris", rows)
        self.assertEqual(self.c.predict("iris", np.array(rows)).probabilities, want.probabilities)
        df = pd.DataFrame(rows, columns=feats)[list(reversed(feats))]  # columns in another order
        got = self.c.predict("iris", df)
        self.assertEqual(got.probabilities, want.probabilities)
        self.assertEqual(self.c.predict("iris", df.iloc[1]).probabilities, [want.probabilities[1]])
        f = got.to_frame()
        self.assertEqual(list(f.columns), ["prediction", "setosa", "versicolor", "virginica"])
        self.assertEqual(list(f["prediction"]), want.predictions)

    def test_frame_with_categories_by_name(self):
        need_pandas()
        raw = self.c.request("POST", "/predict", {"model": "credit", "instances": [CREDIT_ROW]})
        df = pd.DataFrame([CREDIT_ROW])[["region", "late_payments", "age", "employment", "income", "debt_ratio"]]
        self.assertEqual(self.c.predict("credit", df).probabilities, raw["probabilities"])
        self.assertEqual(self.c.predict("credit", [CREDIT_ROW]).probabilities, raw["probabilities"])

    def test_missing_and_extra_columns_are_clear_errors(self):
        need_pandas()
        feats = self.c.feature_names("iris")
        df = pd.DataFrame([IRIS_ROW], columns=feats)
        with self.assertRaises(explaind.FeatureMismatch) as cm:
            self.c.predict("iris", df.drop(columns=[feats[2]]))
        self.assertIn("missing column(s) '%s'" % feats[2], str(cm.exception))
        df["colour"] = 1
        with self.assertRaises(explaind.FeatureMismatch) as cm:
            self.c.predict("iris", df)
        self.assertIn("'colour'", str(cm.exception))
        self.assertIsInstance(cm.exception, ValueError)


class Errors(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL)

    def test_typed_errors_carry_code_message_field(self):
        with self.assertRaises(explaind.InvalidArgument) as cm:
            self.c.predict("iris", [[1, 2, 3]])
        e = cm.exception
        self.assertEqual((e.status, e.code, e.field), (400, "invalid_argument", "instances[0]"))
        self.assertIn("4", e.message)
        self.assertTrue(e.request_id)
        with self.assertRaises(explaind.NotFound) as cm:
            self.c.predict("no_such_model", [IRIS_ROW])
        self.assertEqual(cm.exception.code, "not_found")
        with self.assertRaises(explaind.InvalidArgument) as cm:
            self.c.lime("iris", IRIS_ROW, discretize="octile")
        self.assertEqual(cm.exception.field, "discretize")
        with self.assertRaises(explaind.InvalidArgument) as cm:
            self.c.lime("iris", IRIS_ROW, num_samples=10 ** 9)
        self.assertEqual(cm.exception.field, "num_samples")
        with self.assertRaises(explaind.InvalidJSON):
            self.c.request("POST", "/predict", b"{not json")
        with self.assertRaises(explaind.MethodNotAllowed):
            self.c.request("DELETE", "/predict")
        # Every subclass is an ExplaindError; every API code has one.
        self.assertEqual(len(explaind.BY_CODE), 12)
        for cls in explaind.BY_CODE.values():
            self.assertTrue(issubclass(cls, explaind.ExplaindError))

    def test_model_management_needs_the_admin_key(self):
        bundle = {"format": "explaind.model/v1"}
        with self.assertRaises((explaind.PermissionDenied, explaind.Unauthenticated)) as cm:
            Client(URL, api_key="wrong").upload_model("iris_py_denied", bundle)
        self.assertIn(cm.exception.status, (401, 403))

    def test_unreachable_server(self):
        with self.assertRaises(explaind.ConnectionFailed):
            Client("http://127.0.0.1:9", timeout=5).models()


class Explanations(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL)

    def test_lime(self):
        e = self.c.lime("iris", IRIS_ROW, seed=7, num_samples=2000)
        raw = self.c.request("POST", "/explain/lime", {"model": "iris", "instance": IRIS_ROW, "seed": 7,
                                                        "num_samples": 2000})
        self.assertEqual(e.raw, raw)
        if pd is not None:
            f = e.to_frame()
            w = raw["explanations"][0]["labels"][0]["weights"]
            self.assertEqual(list(f["feature"]), [x["feature"] for x in w])
            self.assertEqual(list(f["weight"]), [x["weight"] for x in w])

    def test_gradient(self):
        g = self.c.gradient("credit", [CREDIT_ROW], method="integrated_gradients")
        self.assertEqual(len(g.attributions), 1)
        self.assertEqual(len(g.attributions[0]), 6)
        self.assertLess(abs(g.convergence_delta[0]), 1e-3)
        if pd is not None:
            self.assertEqual(list(g.to_frame().columns), self.c.feature_names("credit"))

    def test_shap_efficiency(self):
        rows = [[6.7, 3.0, 5.2, 2.3], IRIS_ROW]
        s = self.c.shap("iris", rows, seed=1)
        p = self.c.predict("iris", rows)
        for i in range(2):
            fx = p.probabilities[i][s.targets[i]]
            self.assertAlmostEqual(s.expected_value[i] + sum(s.shap_values[i]), fx, places=6)
        if pd is not None:
            f = s.to_frame()
            self.assertEqual(f.shape, (2, 4))
            self.assertEqual(list(f.columns), self.c.feature_names("iris"))

    def test_to_shap(self):
        try:
            import shap
        except ImportError:
            self.skipTest("optional extra: shap is not installed (not packaged in Debian 12; pip install shap)")
        import matplotlib
        matplotlib.use("Agg")
        s = self.c.shap("iris", [[6.7, 3.0, 5.2, 2.3]], seed=1)
        ex = s.to_shap()
        self.assertIsInstance(ex, shap.Explanation)
        self.assertEqual(list(ex.feature_names), self.c.feature_names("iris"))
        self.assertAlmostEqual(float(ex.base_values[0] + ex.values[0].sum()),
                               s.expected_value[0] + sum(s.shap_values[0]), places=9)
        shap.plots.waterfall(ex[0], show=False)

    def test_importance_and_pdp(self):
        imp = self.c.importance("iris", n_repeats=2, seed=0)
        self.assertEqual(sorted(i["feature"] for i in imp.importances), sorted(self.c.feature_names("iris")))
        pdp = self.c.pdp("diabetes", "bmi", grid_resolution=5)
        self.assertEqual(len(pdp.grid_values[0]), 5)
        if pd is not None:
            self.assertEqual(list(imp.to_frame()["mean"]), [i["mean"] for i in imp.importances])
            f = pdp.to_frame()
            self.assertEqual(list(f["bmi"]), pdp.grid_values[0])
            self.assertEqual(list(f["value"]), pdp.average[0])

    def test_occlusion(self):
        served(self.c, "POST", "/explain/occlusion", {"model": "iris", "instance": IRIS_ROW})
        o = self.c.occlusion("iris", [IRIS_ROW])
        self.assertEqual(len(o.attributions[0]), 4)
        # Tabular occlusion is feature ablation against the background mean: check feature 0.
        mean = self.c.model("iris").raw["features"][0]["mean"]
        p = self.c.predict("iris", [IRIS_ROW, [mean] + IRIS_ROW[1:]])
        t = p.label_indices[0]
        self.assertAlmostEqual(o.attributions[0][0], p.probabilities[0][t] - p.probabilities[1][t], places=6)


class Jobs(unittest.TestCase):
    def setUp(self):
        self.c = Client(URL)

    def test_job_equals_the_synchronous_answer(self):
        rows = [IRIS_ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
        served(self.c, "GET", "/jobs", None)
        job = self.c.submit_job("/explain/shap", "iris", rows, seed=3)
        self.assertIn(job.status, ("queued", "running", "succeeded"))
        final = self.c.wait(job, timeout=60, poll=0.1)
        self.assertEqual(final.status, "succeeded")
        sync = self.c.shap("iris", rows, seed=3)
        lines = list(self.c.stream_results(job))
        self.assertEqual([r["index"] for r in lines], [0, 1, 2])
        for r in lines:
            self.assertEqual(r["shap_values"], sync.shap_values[r["index"]])
        self.c.cancel_job(job)
        with self.assertRaises(explaind.NotFound):
            self.c.job(job)


class Upload(unittest.TestCase):
    def setUp(self):
        if not ADMIN_KEY:
            self.skipTest("missing: EXPLAIND_ADMIN_KEY (the server's admin key) is not set")
        self.c = Client(URL, api_key=ADMIN_KEY)

    def test_upload_predict_delete(self):
        path = os.path.join(ROOT, "examples", "iris_bundle.json")
        r = self.c.upload_model("iris_py", path)
        self.assertEqual(r.version, 1)
        self.assertEqual(self.c.predict("iris_py", [IRIS_ROW]).predictions, ["setosa"])
        with self.assertRaises(explaind.Conflict):
            self.c.upload_model("iris_py", path, if_none_match=True)
        self.c.delete_model("iris_py")
        with self.assertRaises(explaind.NotFound):
            self.c.predict("iris_py", [IRIS_ROW])


if __name__ == "__main__":
    unittest.main()

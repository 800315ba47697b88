# The client's pieces that need no server: rows from every accepted input, and errors
# from every answer shape.
import unittest

import explaind
from explaind import errors
from explaind._rows import needs_features, to_rows

try:
    import numpy as np
except ImportError:
    np = None
try:
    import pandas as pd
except ImportError:
    pd = None

FEATS = ["a", "b", "c"]


class Rows(unittest.TestCase):
    def test_lists_and_dicts(self):
        self.assertEqual(to_rows([1, 2, 3]), [[1, 2, 3]])
        self.assertEqual(to_rows([[1, 2, 3], (4, 5, 6)]), [[1, 2, 3], [4, 5, 6]])
        self.assertEqual(to_rows({"c": 3, "a": 1, "b": "x"}, FEATS), [[1, "x", 3]])
        self.assertEqual(to_rows([{"c": 3, "a": 1, "b": 2}], FEATS), [[1, 2, 3]])
        self.assertTrue(needs_features([{"a": 1}]) and not needs_features([[1]]))
        with self.assertRaises(explaind.FeatureMismatch) as cm:
            to_rows([{"a": 1, "b": 2}], FEATS)
        self.assertIn("missing column(s) 'c'", str(cm.exception))
        with self.assertRaises(TypeError):
            to_rows(42)

    def test_numpy(self):
        if np is None:
            self.skipTest("missing: numpy (make py-deps: apt-get install python3-numpy)")
        rows = to_rows(np.array([[1.5, 2, 3], [4, 5, 6]], dtype=np.float32))
        self.assertEqual(rows, [[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]])
        self.assertIs(type(rows[0][0]), float)
        self.assertEqual(to_rows(np.array([1, 2, 3])), [[1, 2, 3]])
        self.assertIs(type(to_rows(np.array([1, 2, 3]))[0][0]), int)
        self.assertEqual(to_rows([np.float64(1.0), np.int64(2), 3]), [[1.0, 2, 3]])
        with self.assertRaises(ValueError):
            to_rows(np.zeros((2, 2, 2)))

    def test_pandas(self):
        if pd is None:
            self.skipTest("missing: pandas (make py-deps: apt-get install python3-pandas)")
        df = pd.DataFrame({"c": [3, 6], "b": ["x", "y"], "a": [1.0, 4.0]})
        self.assertEqual(to_rows(df, FEATS), [[1.0, "x", 3], [4.0, "y", 6]])
        self.assertEqual(to_rows(df.iloc[0], FEATS), [[1.0, "x", 3]])
        with self.assertRaises(explaind.FeatureMismatch):
            to_rows(df, None)
        with self.assertRaises(explaind.FeatureMismatch) as cm:
            to_rows(df.rename(columns={"a": "A"}), FEATS)
        self.assertIn("'a'", str(cm.exception))
        self.assertIn("'A'", str(cm.exception))


class Errors(unittest.TestCase):
    def test_native_shape_by_code(self):
        e = errors.from_response(400, b'{"error":{"code":"invalid_argument","message":"m","field":"f"}}', "rid")
        self.assertIsInstance(e, explaind.InvalidArgument)
        self.assertEqual((e.status, e.code, e.message, e.field, e.request_id), (400, "invalid_argument", "m", "f", "rid"))
        self.assertEqual(str(e), "400 invalid_argument: m (field: f)")
        e = errors.from_response(413, b'{"error":{"code":"payload_too_large","message":"big"}}')
        self.assertIsInstance(e, explaind.PayloadTooLarge)

    def test_overloaded_retry_after(self):
        e = errors.from_response(503, b'{"error":{"code":"overloaded","message":"busy"}}', None, "2")
        self.assertIsInstance(e, explaind.Overloaded)
        self.assertEqual(e.retry_after, 2.0)

    def test_other_shapes_fall_back_to_the_status(self):
        e = errors.from_response(404, b'{"error":"model iris2 not found"}')  # Open Inference Protocol
        self.assertIsInstance(e, explaind.NotFound)
        self.assertEqual((e.code, e.message), (None, "model iris2 not found"))
        e = errors.from_response(502, b"<html>bad gateway</html>")
        self.assertIsInstance(e, explaind.InternalError)
        self.assertIn("bad gateway", e.message)
        e = errors.from_response(418, b"")
        self.assertIs(type(e), explaind.ExplaindError)
        self.assertEqual(e.message, "HTTP 418")


if __name__ == "__main__":
    unittest.main()

"""Turning what a user holds (lists, dicts, numpy arrays, pandas DataFrames/Series) into
the API's "instances": a list of rows, each a list of values in the model's feature order.

A DataFrame's columns are matched to the model's features by name and reordered; a
missing or an extra column is a FeatureMismatch before anything is sent. numpy and pandas
are never imported here: objects are recognised by the methods they have.
"""
from .errors import FeatureMismatch


def _plain(v):
    """A JSON-ready scalar from numpy scalars, numbers and strings."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    return v


def _is_frame(x):
    return hasattr(x, "columns") and hasattr(x, "to_numpy") and hasattr(x, "iloc")


def _is_series(x):
    return hasattr(x, "index") and hasattr(x, "to_numpy") and not hasattr(x, "columns")


def _is_row(v):
    """True for something that is a row itself: a list, tuple, dict or 1-D array."""
    return isinstance(v, (list, tuple, dict)) or getattr(v, "ndim", 0) >= 1


def _match_columns(columns, features):
    """Indices of the model's features in columns; FeatureMismatch when they differ."""
    cols = [str(c) for c in columns]
    missing = [f for f in features if f not in cols]
    extra = [c for c in cols if c not in features]
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing column(s) %s" % ", ".join(repr(m) for m in missing))
        if extra:
            parts.append("column(s) the model does not have %s" % ", ".join(repr(e) for e in extra))
        raise FeatureMismatch("%s; the model's features are %s" % ("; ".join(parts), ", ".join(repr(f) for f in features)),
                              field="instances")
    if len(set(cols)) != len(cols):
        raise FeatureMismatch("duplicate column names in %r" % cols, field="instances")
    return [cols.index(f) for f in features]


def to_rows(x, features=None):
    """Rows (a list of lists) from x. features: the model's feature names, needed for
    DataFrames, Series and dict rows (matched by name); may be None for plain rows."""
    if _is_frame(x):
        if features is None:
            raise FeatureMismatch("a DataFrame needs the model's feature names", field="instances")
        order = _match_columns(list(x.columns), features)
        values = x.to_numpy(dtype=object)
        return [[_plain(row[i]) for i in order] for row in values]
    if _is_series(x):  # one row, indexed by feature name
        if features is None:
            raise FeatureMismatch("a Series needs the model's feature names", field="instances")
        order = _match_columns(list(x.index), features)
        values = x.to_numpy(dtype=object)
        return [[_plain(values[i]) for i in order]]
    if hasattr(x, "tolist") and hasattr(x, "ndim"):  # numpy array
        if x.ndim == 1:
            return [[_plain(v) for v in x.tolist()]]
        if x.ndim == 2:
            return [[_plain(v) for v in row] for row in x.tolist()]
        raise ValueError("expected a 1-D or 2-D array, got %d dimensions" % x.ndim)
    if isinstance(x, dict):
        x = [x]
    if not isinstance(x, (list, tuple)):
        raise TypeError("instances: expected a list of rows, a numpy array or a pandas DataFrame, got %s"
                        % type(x).__name__)
    if len(x) and not _is_row(x[0]):
        x = [x]  # a single row of values (numbers, strings or numpy scalars)
    rows = []
    for r in x:
        if isinstance(r, dict):
            if features is None:
                rows.append({str(k): _plain(v) for k, v in r.items()})
                continue
            order = _match_columns(list(r.keys()), features)
            vals = list(r.values())
            rows.append([_plain(vals[i]) for i in order])
        elif hasattr(r, "tolist"):
            rows.append([_plain(v) for v in r.tolist()])
        else:
            rows.append([_plain(v) for v in r])
    return rows


def needs_features(x):
    """True when converting x needs the model's feature names."""
    if _is_frame(x) or _is_series(x) or isinstance(x, dict):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], dict)

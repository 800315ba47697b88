"""explaind: a Python client for the explaind HTTP service.

    from explaind import Client
    c = Client("http://127.0.0.1:8080")
    c.predict("iris", [[5.1, 3.5, 1.4, 0.2]]).predictions      # ['setosa']
    e = c.shap("iris", df)                                       # df: a pandas DataFrame
    shap.plots.waterfall(e.to_shap()[0])                         # when shap is installed

Standard library only; numpy, pandas, tqdm and shap are used when present.
"""
from .client import Client
from .errors import (BY_CODE, Conflict, ConnectionFailed, DeadlineExceeded, ExplaindError, FeatureMismatch,
                     InternalError, InvalidArgument, InvalidJSON, MethodNotAllowed, NotFound, Overloaded,
                     PayloadTooLarge, PermissionDenied, Unauthenticated, UnsupportedMediaType)
from .results import (Attribution, Importance, Job, LimeExplanation, ModelInfo, PartialDependence, Prediction,
                      Result, ShapExplanation)

__version__ = "0.1.0"
__all__ = ["Client", "ExplaindError", "InvalidJSON", "InvalidArgument", "Unauthenticated", "PermissionDenied",
           "NotFound", "MethodNotAllowed", "Conflict", "PayloadTooLarge", "UnsupportedMediaType", "Overloaded",
           "DeadlineExceeded", "InternalError", "ConnectionFailed", "FeatureMismatch", "BY_CODE", "Result",
           "Prediction", "LimeExplanation", "Attribution", "ShapExplanation", "Importance", "PartialDependence",
           "ModelInfo", "Job"]

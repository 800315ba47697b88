"""Typed errors: one class per error code of the API (docs/API.md, "Errors").

Every error the server answers is {"error": {"code", "message", "field"}} with an HTTP
status; the client raises the subclass for its code (or, for a code it does not know, for
its status), carrying status, code, message, field and the request id.
"""


class ExplaindError(Exception):
    """An error answered by explaind, or raised by the client before sending."""

    def __init__(self, message, status=None, code=None, field=None, request_id=None, body=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field
        self.request_id = request_id
        self.body = body

    def __str__(self):
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = self.message if not head else "%s: %s" % (head, self.message)
        if self.field:
            text += " (field: %s)" % self.field
        return text


class InvalidJSON(ExplaindError):
    """400 invalid_json: the body was not a JSON object."""


class InvalidArgument(ExplaindError, ValueError):
    """400 invalid_argument: a field has a wrong type, length or value (see .field)."""


class Unauthenticated(ExplaindError):
    """401: an API key is required and was missing or wrong."""


class PermissionDenied(ExplaindError):
    """403: the key lacks the scope (model management needs the admin key)."""


class NotFound(ExplaindError, LookupError):
    """404: unknown model, job or path."""


class MethodNotAllowed(ExplaindError):
    """405: wrong HTTP method for the path."""


class Conflict(ExplaindError):
    """409: the upload conflicts (If-Match / If-None-Match)."""


class PayloadTooLarge(ExplaindError):
    """413: the body, or the work it asks for, is over the server's limits."""


class UnsupportedMediaType(ExplaindError):
    """415: body type not accepted at that path."""


class Overloaded(ExplaindError):
    """503: the work queue is full; .retry_after is the server's Retry-After (seconds)."""

    retry_after = None


class DeadlineExceeded(ExplaindError, TimeoutError):
    """504: the request's deadline passed before its work finished."""


class InternalError(ExplaindError):
    """500: a bug in the server."""


class ConnectionFailed(ExplaindError, ConnectionError):
    """The server could not be reached (no status, no code)."""


class FeatureMismatch(ExplaindError, ValueError):
    """Raised before sending: the columns of a table do not match the model's features."""


# One table: the API's error codes, and the status each one comes with.
BY_CODE = {
    "invalid_json": InvalidJSON,
    "invalid_argument": InvalidArgument,
    "unauthenticated": Unauthenticated,
    "permission_denied": PermissionDenied,
    "not_found": NotFound,
    "method_not_allowed": MethodNotAllowed,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
    "unsupported_media_type": UnsupportedMediaType,
    "overloaded": Overloaded,
    "deadline_exceeded": DeadlineExceeded,
    "internal": InternalError,
}
BY_STATUS = {
    400: InvalidArgument, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound,
    405: MethodNotAllowed, 409: Conflict, 413: PayloadTooLarge, 415: UnsupportedMediaType,
    500: InternalError, 503: Overloaded, 504: DeadlineExceeded,
}


def from_response(status, body, request_id=None, retry_after=None):
    """The exception for an error answer (body: bytes as received)."""
    code = message = field = None
    parsed = None
    try:
        import json
        parsed = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict):  # the native shape
        code, message, field = err.get("code"), err.get("message"), err.get("field")
    elif isinstance(err, str):  # the Open Inference Protocol's shape
        message = err
    if not message:
        message = (body or b"").decode("utf-8", "replace").strip() or "HTTP %d" % status
    cls = BY_CODE.get(code) or BY_STATUS.get(status)
    if cls is None:
        cls = InternalError if status >= 500 else ExplaindError
    e = cls(message, status=status, code=code, field=field, request_id=request_id, body=parsed)
    if isinstance(e, Overloaded) and retry_after is not None:
        try:
            e.retry_after = float(retry_after)
        except ValueError:
            pass
    return e

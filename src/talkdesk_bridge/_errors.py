"""The bridge's exceptions, and the one place that maps them to Talkdesk status codes.

Exception tree::

    BridgeError
    ├── RequestError ............... the caller sent something we cannot use
    │   ├── MalformedRequest ....... 400  body is not JSON / not an object
    │   ├── InvalidRequest ......... 422  a field has the wrong type or value
    │   ├── PayloadTooLarge ........ 413  body over the configured limit
    │   ├── NotFound ............... 404  unknown connector, action or route
    │   └── MethodNotAllowed ....... 405
    ├── Unauthorized ............... 401  missing or rejected credentials
    ├── ActionFailed ............... 400  {"message": ...}, the contract's action failure
    └── UpstreamError .............. the external service failed us
        ├── UpstreamUnauthorized ... 401  (Talkdesk refreshes OAuth tokens on 401)
        ├── UpstreamRejected ....... 4xx  fatal: forbidden, not found, conflict, invalid
        ├── UpstreamUnavailable .... 503  retriable: rate limited, 5xx, connection lost (still so
        │                                  after our retries; Retry-After when known)
        ├── UpstreamTimeout ........ 504  retriable: no answer within the time budget
        └── UpstreamFailed ......... 502  an unusable answer, or a write sent but not confirmed
            └── UpstreamGarbled .... 502  retriable: a body that is not JSON (cut short, a proxy's
                                           HTML page): asking again may well work

Outside the tree, `ConfigurationError` stops start-up (a bad mapping file, no API tokens).

`retriable` is decided once, here, by the class: connectors' retry loops ask the exception.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActionFailed",
    "BridgeError",
    "ConfigurationError",
    "InvalidRequest",
    "MalformedRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RequestError",
    "Unauthorized",
    "UpstreamError",
    "UpstreamFailed",
    "UpstreamGarbled",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnauthorized",
    "UpstreamUnavailable",
    "error_body",
]


class ConfigurationError(Exception):
    """The service cannot start as configured; the message says which setting or key."""


class BridgeError(Exception):
    """Base class. `status` and `code` say how it reaches Talkdesk."""

    status: int = 500
    code: str = "internal_error"
    retriable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, int(self.retry_after + 0.999)))}


class RequestError(BridgeError):
    status = 400
    code = "bad_request"


class MalformedRequest(RequestError):
    status = 400
    code = "malformed_json"


class InvalidRequest(RequestError):
    status = 422
    code = "invalid_request"


class PayloadTooLarge(RequestError):
    status = 413
    code = "payload_too_large"


class NotFound(RequestError):
    status = 404
    code = "not_found"


class MethodNotAllowed(RequestError):
    status = 405
    code = "method_not_allowed"


class Unauthorized(BridgeError):
    status = 401
    code = "unauthorized"


class ActionFailed(BridgeError):
    """The contract's action failure: 400 with a top-level `message`."""

    status = 400
    code = "action_failed"

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class UpstreamError(BridgeError):
    status = 502
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.upstream_status = upstream_status


class UpstreamUnauthorized(UpstreamError):
    status = 401
    code = "unauthorized"


class UpstreamRejected(UpstreamError):
    """A definitive refusal (403/404/409/422 …); `status` mirrors the upstream's."""

    code = "upstream_rejected"

    def __init__(self, message: str, *, upstream_status: int, code: str | None = None) -> None:
        super().__init__(message, upstream_status=upstream_status)
        self.status = upstream_status if upstream_status in (403, 404, 409, 422) else 502
        if code:
            self.code = code


class UpstreamUnavailable(UpstreamError):
    status = 503
    code = "upstream_unavailable"
    retriable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
    retriable = True


class UpstreamFailed(UpstreamError):
    status = 502
    code = "upstream_failed"


class UpstreamGarbled(UpstreamFailed):
    retriable = True


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}

"""Gateway errors and the one table that maps failures to HTTP.

Every refusal reaches the client as JSON ``{"error": code, "message": ...}``
with a 4xx (or 502/504 for the upstream) status and never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

from device_fingerprint.errors import DeviceError

__all__ = [
    "BadRequest",
    "GatewayError",
    "NotFound",
    "PayloadTooLarge",
    "StepUpRequired",
    "Unauthorized",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "status_for",
]


class GatewayError(Exception):
    status = 400
    code = "bad_request"
    message = "bad request"

    def __init__(self, code: str | None = None, message: str | None = None,
                 headers: Mapping[str, str] | None = None, extra: Mapping[str, object] | None = None) -> None:
        self.code = code or self.code
        self.message = message or self.message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(f"{self.code}: {self.message}")


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"
    message = "authentication required"


class StepUpRequired(Unauthorized):
    code = "step_up_required"
    message = "this request needs stronger authentication"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"
    message = "not allowed"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    message = "no such route"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "method_not_allowed"
    message = "method not allowed"


class Locked(GatewayError):
    status = 429
    code = "login_locked"
    message = "too many failed attempts; try again later"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"
    message = "the request body is too large"


class UpstreamUnavailable(GatewayError):
    status = 502
    code = "upstream_unavailable"
    message = "the banking service is unavailable"


class UpstreamTimeout(GatewayError):
    status = 504
    code = "upstream_timeout"
    message = "the banking service did not answer in time"


# Library failures -> HTTP status. Looked up along the exception's MRO.
_STATUS_BY_CLASS: dict[type[BaseException], int] = {
    DeviceError: 401,
}


def status_for(exc: BaseException) -> int:
    if isinstance(exc, GatewayError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in _STATUS_BY_CLASS:
            return _STATUS_BY_CLASS[cls]
    return 400


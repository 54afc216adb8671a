"""Gateway errors and the one table that maps failures to HTTP.

Every refusal reaches the client as JSON ``{"error": code, "message": ...}``
with a 4xx (or 502/504 for the upstream) status and never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

from auth_tools import errors as tool_errors
from device_fingerprint.errors import DeviceError
from limits import errors as limit_errors

__all__ = [
    "BadRequest",
    "GatewayError",
    "InsufficientAuthentication",
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


class InsufficientAuthentication(Unauthorized):
    """RFC 9470: the session falls short of the tier; the body carries the challenge."""

    code = "insufficient_user_authentication"
    message = "approve this request with a stronger authentication"


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
    tool_errors.VerificationFailed: 401,
    tool_errors.ChallengeExpired: 401,
    tool_errors.Replayed: 401,
    tool_errors.CredentialRevoked: 401,
    tool_errors.ToolLocked: 429,
    tool_errors.Throttled: 429,
    tool_errors.NotEnrolled: 409,
    tool_errors.SmsDeliveryFailed: 502,
    limit_errors.LimitExceeded: 403,
    limit_errors.LargeTransferNoticeRequired: 428,
    limit_errors.ReservationConflict: 409,
    limit_errors.LimitChangeNeedsTier: 401,
    limit_errors.LimitChangeConflict: 409,
    limit_errors.LimitsUnavailable: 503,
}


def status_for(exc: BaseException) -> int:
    if isinstance(exc, GatewayError):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in _STATUS_BY_CLASS:
            return _STATUS_BY_CLASS[cls]
    return 400


# Payload encryption (gateway.payload_encryption): all 400 with stable codes.
class PayloadEncryptionError(BadRequest):
    code = "jwe_invalid"
    message = "the encrypted payload cannot be used"


class JweBadHeader(PayloadEncryptionError):
    code = "jwe_bad_header"
    message = "the JWE is malformed or its protected header is invalid"


class JweUnknownKid(PayloadEncryptionError):
    code = "jwe_unknown_kid"
    message = "the JWE is encrypted to a key the gateway does not hold; fetch the JWKS again"


class JweBadTag(PayloadEncryptionError):
    code = "jwe_bad_tag"
    message = "the JWE does not decrypt (tampered, or encrypted to another key)"


class JweAlgorithmNotAllowed(PayloadEncryptionError):
    code = "jwe_algorithm_not_allowed"
    message = "the JWE algorithm is not allowed (use ECDH-ES+A256KW or ECDH-ES with A256GCM)"


class EncryptionRequired(PayloadEncryptionError):
    code = "encryption_required"
    message = "this endpoint accepts only encrypted payloads (Content-Type: application/jose)"


class ResponseKeyMissing(PayloadEncryptionError):
    code = "jwe_no_response_key"
    message = "the device has no registered encryption key (enc_jwk) to encrypt the response to"

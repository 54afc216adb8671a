"""Failures of the reference banking upstream.

UpstreamError
 +-- AssertionRefused          every one of these is a 401 and writes nothing
 |    +-- AssertionMissing, AssertionMalformed, AssertionAlgorithmRefused,
 |    +-- AssertionUnknownKey, AssertionBadSignature, AssertionWrongIssuer,
 |    +-- AssertionWrongAudience, AssertionExpired, AssertionNotYetValid,
 |    +-- AssertionLifetimeTooLong, AssertionReplayed, AssertionSubjectMismatch,
 |    +-- AssertionTxnMissing, AssertionTxnMismatch
 +-- JwksUnavailable           the gateway's key set could not be fetched
 +-- BadRequest                malformed input (invalid_json, invalid_field, ...)
 +-- PayloadTooLarge
 +-- IdempotencyKeyMissing, IdempotencyKeyReused
 +-- InsufficientFunds, SameAccount, PayeeExists
 +-- LedgerIntegrityError      a database constraint refused a write

The HTTP status of each class is set in one table in ``banking_upstream.app``.
"""

from __future__ import annotations

__all__ = [
    "UpstreamError",
    "AssertionRefused",
    "AssertionMissing",
    "AssertionMalformed",
    "AssertionAlgorithmRefused",
    "AssertionUnknownKey",
    "AssertionBadSignature",
    "AssertionWrongIssuer",
    "AssertionWrongAudience",
    "AssertionExpired",
    "AssertionNotYetValid",
    "AssertionLifetimeTooLong",
    "AssertionReplayed",
    "AssertionSubjectMismatch",
    "AssertionTxnMissing",
    "AssertionTxnMismatch",
    "JwksUnavailable",
    "BadRequest",
    "PayloadTooLarge",
    "IdempotencyKeyMissing",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "SameAccount",
    "PayeeExists",
    "LedgerIntegrityError",
]


class UpstreamError(Exception):
    """Base class: a stable ``code`` and a human message."""

    code = "upstream_error"
    message = "the request failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or type(self).message
        super().__init__(self.message)


class AssertionRefused(UpstreamError):
    code = "assertion_refused"
    message = "the gateway assertion was refused"


class AssertionMissing(AssertionRefused):
    code = "assertion_missing"
    message = "X-Riskgate-Assertion is required"


class AssertionMalformed(AssertionRefused):
    code = "assertion_malformed"
    message = "the assertion is not a well-formed compact JWS with the expected claims"


class AssertionAlgorithmRefused(AssertionRefused):
    code = "assertion_algorithm_refused"
    message = "only ES256 assertions are accepted"


class AssertionUnknownKey(AssertionRefused):
    code = "assertion_unknown_key"
    message = "the assertion's kid is not in the gateway's key set"


class AssertionBadSignature(AssertionRefused):
    code = "assertion_bad_signature"
    message = "the assertion's signature does not verify"


class AssertionWrongIssuer(AssertionRefused):
    code = "assertion_wrong_issuer"
    message = "the assertion was issued by someone else"


class AssertionWrongAudience(AssertionRefused):
    code = "assertion_wrong_audience"
    message = "the assertion is meant for another service"


class AssertionExpired(AssertionRefused):
    code = "assertion_expired"
    message = "the assertion has expired"


class AssertionNotYetValid(AssertionRefused):
    code = "assertion_not_yet_valid"
    message = "the assertion is issued in the future"


class AssertionLifetimeTooLong(AssertionRefused):
    code = "assertion_lifetime_too_long"
    message = "the assertion lives longer than allowed"


class AssertionReplayed(AssertionRefused):
    code = "assertion_replayed"
    message = "this assertion has already been used"


class AssertionSubjectMismatch(AssertionRefused):
    code = "assertion_subject_mismatch"
    message = "the assertion's subject does not own this account"


class AssertionTxnMissing(AssertionRefused):
    code = "assertion_txn_missing"
    message = "money movement needs an assertion carrying txn"


class AssertionTxnMismatch(AssertionRefused):
    code = "assertion_txn_mismatch"
    message = "the request body does not match the transaction the gateway approved"


class JwksUnavailable(UpstreamError):
    code = "jwks_unavailable"
    message = "the gateway's key set could not be fetched"


class BadRequest(UpstreamError):
    """Malformed input; ``code`` is chosen per instance (invalid_json, invalid_field, ...)."""

    code = "bad_request"
    message = "the request is malformed"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PayloadTooLarge(UpstreamError):
    code = "payload_too_large"
    message = "the request body is too large"


class IdempotencyKeyMissing(UpstreamError):
    code = "idempotency_key_missing"
    message = "POST /v1/transfers needs an Idempotency-Key header"


class IdempotencyKeyReused(UpstreamError):
    code = "idempotency_key_reused"
    message = "this Idempotency-Key was used for a different request"


class InsufficientFunds(UpstreamError):
    code = "insufficient_funds"
    message = "the balance does not cover this transfer"


class SameAccount(UpstreamError):
    code = "same_account"
    message = "source and payee are the same account"


class PayeeExists(UpstreamError):
    code = "payee_exists"
    message = "a payee with this account already exists"


class LedgerIntegrityError(UpstreamError):
    code = "ledger_integrity_error"
    message = "the ledger refused a write that would break its invariants"

"""Verification of the gateway's ``X-Riskgate-Assertion`` (pure; ``now`` is an argument).

Order of checks: shape and header (:func:`read_header`), then signature and
claims (:func:`verify_assertion`), then, for money movement, the transaction
(:func:`check_transaction`). Single use of ``jti`` is the ledger's job because
it must be recorded in the same database transaction as the write.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey

from auth_tools.dynamic_linking import Transaction, txn_hash
from banking_upstream.errors import (
    AssertionAlgorithmRefused,
    AssertionBadSignature,
    AssertionExpired,
    AssertionLifetimeTooLong,
    AssertionMalformed,
    AssertionNotYetValid,
    AssertionTxnMismatch,
    AssertionTxnMissing,
    AssertionWrongAudience,
    AssertionWrongIssuer,
)

__all__ = [
    "AssertionHeader",
    "TxnClaim",
    "VerifiedAssertion",
    "read_header",
    "verify_assertion",
    "check_transaction",
]

MAX_TOKEN_LENGTH = 8192
ALLOWED_ALGORITHM = "ES256"
# Anything else (crit, b64, jku, x5u, jwk ...) changes how the token is processed
# or where keys come from; the gateway never sends it, so it is refused.
_ALLOWED_HEADER_PARAMS = frozenset({"alg", "kid", "typ"})
_ACR_VALUES = frozenset({"T0", "T1", "T2", "T3", "T4", "T5"})


@dataclass(frozen=True, slots=True)
class AssertionHeader:
    alg: str
    kid: str


@dataclass(frozen=True, slots=True)
class TxnClaim:
    """The ``txn`` claim: what the gateway approved (hash over the canonical form)."""

    hash: str
    action: str
    amount: str
    currency: str
    payee: str


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """The claims of an assertion whose signature and timing verified."""

    kid: str
    sub: str
    jti: str
    iat: int
    exp: int
    sid: str
    device_id: str
    device_status: str
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    decision_id: str
    txn: TxnClaim | None


def read_header(token: str) -> AssertionHeader:
    """Parse the compact JWS header without verifying anything.

    Raises AssertionMalformed or AssertionAlgorithmRefused (anything but ES256,
    including ``none`` and HMAC algorithms).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise AssertionMalformed()
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError) as exc:
        raise AssertionMalformed() from exc
    if not isinstance(header, dict):
        raise AssertionMalformed()
    if header.get("alg") != ALLOWED_ALGORITHM:
        raise AssertionAlgorithmRefused()
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        raise AssertionMalformed("the assertion header needs a kid")
    if not set(header) <= _ALLOWED_HEADER_PARAMS:
        raise AssertionMalformed("the assertion header carries parameters the upstream refuses")
    return AssertionHeader(alg=header["alg"], kid=kid)


def verify_assertion(token: str, *, key: ECKey, issuer: str, audience: str, now: float,
                     max_lifetime: int, leeway: int) -> VerifiedAssertion:
    """Verify signature and claims of ``token`` with the gateway key ``key``.

    Raises one AssertionRefused subclass per failure.
    """
    header = read_header(token)
    try:
        compact = jws.deserialize_compact(token, key, algorithms=[ALLOWED_ALGORITHM])
    except BadSignatureError as exc:
        raise AssertionBadSignature() from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise AssertionMalformed() from exc
    try:
        claims = orjson.loads(compact.payload)
    except orjson.JSONDecodeError as exc:
        raise AssertionMalformed("the assertion payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise AssertionMalformed("the assertion payload is not a JSON object")

    iss = claims.get("iss")
    if not isinstance(iss, str) or not hmac.compare_digest(iss.encode(), issuer.encode()):
        raise AssertionWrongIssuer()
    aud = claims.get("aud")
    if not isinstance(aud, str) or not hmac.compare_digest(aud.encode(), audience.encode()):
        raise AssertionWrongAudience()
    iat, exp = _int_claim(claims, "iat"), _int_claim(claims, "exp")
    if exp <= iat:
        raise AssertionMalformed("exp must be after iat")
    if exp - iat > max_lifetime:
        raise AssertionLifetimeTooLong(f"exp - iat must be at most {max_lifetime} s")
    if now > exp + leeway:
        raise AssertionExpired()
    if iat > now + leeway:
        raise AssertionNotYetValid()

    dev = claims.get("dev")
    if not isinstance(dev, dict):
        raise AssertionMalformed("dev must be an object")
    amr = claims.get("amr")
    if not isinstance(amr, list) or not all(isinstance(m, str) for m in amr):
        raise AssertionMalformed("amr must be a list of strings")
    acr = _str_claim(claims, "acr")
    if acr not in _ACR_VALUES:
        raise AssertionMalformed("acr must be one of T0..T5")
    return VerifiedAssertion(
        kid=header.kid,
        sub=_str_claim(claims, "sub"),
        jti=_str_claim(claims, "jti", max_length=128),
        iat=iat,
        exp=exp,
        sid=_str_claim(claims, "sid"),
        device_id=_str_claim(dev, "id"),
        device_status=_str_claim(dev, "status"),
        acr=acr,
        amr=tuple(amr),
        auth_time=_int_claim(claims, "auth_time"),
        decision_id=_str_claim(claims, "decision_id"),
        txn=_txn_claim(claims.get("txn")),
    )


def check_transaction(assertion: VerifiedAssertion, txn: Transaction) -> None:
    """Check that ``txn`` (built from the body received) is what the gateway approved.

    Raises AssertionTxnMissing or AssertionTxnMismatch.
    """
    if assertion.txn is None:
        raise AssertionTxnMissing()
    received = txn_hash(txn)
    if not hmac.compare_digest(received.encode(), assertion.txn.hash.lower().encode()):
        raise AssertionTxnMismatch()


def _str_claim(claims: dict[str, Any], name: str, *, max_length: int = 256) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise AssertionMalformed(f"{name} must be a non-empty string")
    return value


def _int_claim(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AssertionMalformed(f"{name} must be an integer")
    return value


def _txn_claim(raw: object) -> TxnClaim | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise AssertionMalformed("txn must be an object")
    digest = _str_claim(raw, "hash")
    if len(digest) != 64 or not all(c in "0123456789abcdefABCDEF" for c in digest):
        raise AssertionMalformed("txn.hash must be a hex SHA-256")
    return TxnClaim(hash=digest, action=_str_claim(raw, "action"), amount=_str_claim(raw, "amount"),
                    currency=_str_claim(raw, "currency"), payee=_str_claim(raw, "payee"))

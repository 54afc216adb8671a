"""TOTP tokens (RFC 6238) with pyotp: enrolment with a QR code, and a step-up
ceremony in which the code is entered against a challenge showing the transaction.

The seed is the only secret. It appears in the enrolment state (``seed_b32``)
and in :class:`TotpCredential` (``seed_b32``, hidden from ``repr``); the gateway
encrypts both before they reach Redis. Challenge states carry no secret.

A code is accepted once: :func:`verify_totp` returns the matching timecode and
refuses any timecode not above the last one used, so the caller stores it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyotp
import segno

from auth_tools.dynamic_linking import Transaction, format_amount, txn_hash
from auth_tools.errors import (
    BadToolInput,
    ChallengeExpired,
    TotpCodeInvalid,
    TotpCodeReused,
    TotpConfigInvalid,
    TotpStateMismatch,
)

__all__ = [
    "TotpAlgorithm",
    "TotpParams",
    "TotpProvisioning",
    "TotpCredential",
    "TotpResult",
    "enroll",
    "confirm_enrollment",
    "verify_totp",
    "begin",
    "complete",
]

_ENROL_KIND = "totp_enrol"
_CHALLENGE_KIND = "totp_challenge"


class TotpAlgorithm(enum.Enum):
    SHA1 = "SHA1"
    SHA256 = "SHA256"

    @property
    def digest(self) -> Callable[..., Any]:
        """The hashlib constructor pyotp takes."""
        return hashlib.sha1 if self is TotpAlgorithm.SHA1 else hashlib.sha256

    @property
    def seed_bytes(self) -> int:
        # RFC 6238 test keys: 20 bytes for HMAC-SHA1, 32 for HMAC-SHA256.
        return 20 if self is TotpAlgorithm.SHA1 else 32


@dataclass(frozen=True, slots=True)
class TotpParams:
    """Token parameters; what authenticator apps and hardware tokens support."""

    digits: int = 6
    step: int = 30
    algorithm: TotpAlgorithm = TotpAlgorithm.SHA1

    def __post_init__(self) -> None:
        if self.digits not in (6, 8) or self.step not in (30, 60):
            raise TotpConfigInvalid()
        if not isinstance(self.algorithm, TotpAlgorithm):
            raise TotpConfigInvalid()

    def as_dict(self) -> dict[str, object]:
        return {"digits": self.digits, "step": self.step, "algorithm": self.algorithm.value}

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> TotpParams:
        try:
            return cls(int(doc["digits"]), int(doc["step"]), TotpAlgorithm(doc["algorithm"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise TotpConfigInvalid() from exc


@dataclass(frozen=True, slots=True)
class TotpProvisioning:
    """What the app shows to enrol an authenticator: the URI and its QR code."""

    otpauth_uri: str = field(repr=False)
    qr_svg: str = field(repr=False)
    qr_png: bytes = field(repr=False)
    params: TotpParams = TotpParams()

    def as_options(self) -> dict[str, object]:
        """JSON-serialisable form for the enrolment response."""
        return {
            "otpauth_uri": self.otpauth_uri,
            "qr_svg": self.qr_svg,
            "qr_png": "data:image/png;base64," + base64.b64encode(self.qr_png).decode(),
            **self.params.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class TotpCredential:
    """An enrolled token. ``last_timecode`` is the last accepted timecode."""

    user_id: str
    seed_b32: str = field(repr=False)
    params: TotpParams
    enrolled_at: float
    last_timecode: int

    def as_dict(self) -> dict[str, object]:
        return {"user_id": self.user_id, "seed_b32": self.seed_b32, "params": self.params.as_dict(),
                "enrolled_at": self.enrolled_at, "last_timecode": self.last_timecode}

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> TotpCredential:
        return cls(str(doc["user_id"]), str(doc["seed_b32"]),
                   TotpParams.from_dict(doc["params"]),  # type: ignore[arg-type]
                   float(doc["enrolled_at"]), int(doc["last_timecode"]))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class TotpResult:
    """A passed TOTP step: store ``timecode`` as the credential's new last timecode."""

    challenge_id: str
    txn_hash: str
    timecode: int
    amr: tuple[str, ...] = ("otp",)


def _totp(seed_b32: str, params: TotpParams) -> pyotp.TOTP:
    return pyotp.TOTP(seed_b32, digits=params.digits, digest=params.algorithm.digest,
                      interval=params.step)


def _new_seed(params: TotpParams) -> str:
    # Unpadded base32, as authenticator apps expect in the otpauth URI.
    return base64.b32encode(secrets.token_bytes(params.algorithm.seed_bytes)).decode().rstrip("=")


def _qr(uri: str) -> tuple[str, bytes]:
    code = segno.make(uri, error="m", micro=False)
    png = io.BytesIO()
    code.save(png, kind="png", scale=5, border=4)
    return code.svg_inline(scale=5, border=4), png.getvalue()


def enroll(user_id: str, issuer: str, now: float, *, params: TotpParams = TotpParams(),
           ttl: float = 600.0) -> tuple[TotpProvisioning, dict[str, object]]:
    """Start enrolling a token: a fresh seed, its ``otpauth://`` URI and QR code.

    Returns ``(provisioning, state)``. ``state["seed_b32"]`` is the secret seed:
    the caller encrypts it at rest and passes the state to
    :func:`confirm_enrollment` with the first code the user's app shows.
    """
    seed = _new_seed(params)
    uri = _totp(seed, params).provisioning_uri(name=user_id, issuer_name=issuer)
    qr_svg, qr_png = _qr(uri)
    state: dict[str, object] = {"kind": _ENROL_KIND, "user_id": user_id, "seed_b32": seed,
                                **params.as_dict(), "expires_at": now + ttl}
    return TotpProvisioning(uri, qr_svg, qr_png, params), state


def confirm_enrollment(state: dict[str, object], code: str, now: float) -> TotpCredential:
    """Finish enrolment with a first valid code; that code cannot be used again."""
    _check_state(state, _ENROL_KIND, now)
    params = TotpParams.from_dict(state)
    seed = str(state["seed_b32"])
    timecode = verify_totp(seed, code, now, None, params=params)
    return TotpCredential(str(state["user_id"]), seed, params, now, timecode)


def verify_totp(seed: str, code: str, now: float, last_timecode: int | None, *,
                params: TotpParams = TotpParams(), window: int = 1) -> int:
    """Verify ``code`` at ``now`` within ``window`` steps either side; return its timecode.

    Raises :class:`TotpCodeInvalid` for a wrong code and :class:`TotpCodeReused`
    when the code matches only timecodes at or below ``last_timecode``.
    Every candidate in the window is compared in constant time.
    """
    if not isinstance(code, str):
        raise BadToolInput("the code must be a string of digits")
    entered = code.replace(" ", "").encode()
    totp = _totp(seed, params)
    current = totp.timecode(now)
    matched: list[int] = []
    for timecode in range(current - window, current + window + 1):
        if timecode < 0:
            continue
        # No early exit: the time taken does not depend on which step matched.
        if hmac.compare_digest(entered, totp.generate_otp(timecode).encode()):
            matched.append(timecode)
    if not matched:
        raise TotpCodeInvalid()
    fresh = [tc for tc in matched if last_timecode is None or tc > last_timecode]
    if not fresh:
        raise TotpCodeReused()
    return max(fresh)


def _shown_transaction(txn: Transaction) -> dict[str, str]:
    payee = f"**** {txn.payee[-4:]}" if len(txn.payee) > 4 else ("****" if txn.payee else "")
    return {"action": txn.action, "amount": format_amount(txn.amount), "currency": txn.currency,
            "payee": payee}


def begin(challenge_id: str, txn: Transaction, now: float, *, params: TotpParams = TotpParams(),
          ttl: float = 300.0) -> tuple[dict[str, object], dict[str, object]]:
    """Ask for a code against a transaction.

    Returns ``(options, state)``: options are what the app shows (the
    transaction with the payee masked, the code length); the state binds the
    step to ``challenge_id`` and the transaction hash and expires after ``ttl``.
    """
    digest = txn_hash(txn)
    options: dict[str, object] = {
        "tool": "totp",
        "prompt": f"Check the transaction, then enter the {params.digits}-digit code from your token",
        "transaction": _shown_transaction(txn),
        "txn_hash": digest,
        "digits": params.digits,
        "expires_in": ttl,
    }
    state: dict[str, object] = {"kind": _CHALLENGE_KIND, "challenge_id": challenge_id,
                                "txn_hash": digest, **params.as_dict(), "expires_at": now + ttl}
    return options, state


def complete(state: dict[str, object], code: str, seed: str, last_timecode: int | None,
             now: float, *, challenge_id: str, txn: Transaction) -> TotpResult:
    """Verify the code entered for the challenge ``begin`` started.

    ``challenge_id`` and ``txn`` are what the caller is about to approve; they
    must be the ones the state was made for. ``seed`` and ``last_timecode`` come
    from the user's :class:`TotpCredential`; store ``result.timecode`` back.
    """
    _check_state(state, _CHALLENGE_KIND, now)
    digest = txn_hash(txn)
    bound = hmac.compare_digest(str(state["challenge_id"]).encode(), challenge_id.encode())
    bound &= hmac.compare_digest(str(state["txn_hash"]).encode(), digest.encode())
    if not bound:
        raise TotpStateMismatch()
    timecode = verify_totp(seed, code, now, last_timecode, params=TotpParams.from_dict(state))
    return TotpResult(challenge_id, digest, timecode)


def _check_state(state: dict[str, object], kind: str, now: float) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise BadToolInput("not a TOTP ceremony state")
    expires_at = state.get("expires_at")
    if not isinstance(expires_at, int | float) or now >= expires_at:
        raise ChallengeExpired()

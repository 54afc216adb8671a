"""One-time codes by text message, plain and "armored" (dynamic linking).

Two modes, two tools:

* ``SmsMode.PLAIN`` (tool ``sms``): the text carries only the code. With the
  password it makes T2.
* ``SmsMode.ARMOR`` (tool ``sms_armor``): the text also shows the action, the
  amount and the masked payee, so the user approves what they read on a
  second channel (PSD2 RTS Art. 5). It makes T3 on its own.

In both modes the code is ``policy.digits`` digits (6 by default, at most 8)
from :mod:`secrets`, lives ``policy.ttl`` (5 minutes by default), is single
use, and is kept only as an HMAC (server key) over the mode, the
challenge id, the ``txn_hash`` and the code. :func:`complete` recomputes the
HMAC over the transaction the caller is about to approve, so a code sent for
one amount or payee never verifies for another, and a state read out of Redis
does not give the code away. Resends are throttled (``resend_interval``
between sends, ``max_sends`` per challenge) and each resend replaces the code.

The state records the code's length: a code sent before the policy changed
keeps verifying with the length it was sent with until it expires, and
:func:`options` tells the app how many digits to ask for.

The phone number is never put in the state: the caller passes it to
:func:`begin` and :func:`resend` (it is stored encrypted with the user).
"""

from __future__ import annotations

import enum
import hmac
import math
import re
import secrets
from dataclasses import dataclass, field

from auth_tools.dynamic_linking import Transaction, txn_hash
from auth_tools.errors import (
    BadToolInput,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeReused,
    SmsConfigInvalid,
    SmsResendLimit,
    SmsResendTooSoon,
)
from auth_tools.masking import mask_account, mask_name, mask_phone

__all__ = [
    "MAX_DIGITS",
    "MIN_DIGITS",
    "SmsMode",
    "SmsPolicy",
    "SmsMessage",
    "SmsResult",
    "begin",
    "resend",
    "complete",
    "options",
    "message_text",
]

MIN_DIGITS, MAX_DIGITS = 6, 8  # fewer than 6 digits is too easy to guess for a bank
_LEGACY_DIGITS = 6  # states made before the length was recorded
_KIND = "sms_challenge"
_MIN_KEY_BYTES = 32
_CODE_RE = re.compile(r"[0-9]+")
_MAC_LABEL = b"riskgate-sms-v1"


class SmsMode(enum.StrEnum):
    """The tool name of each mode."""

    PLAIN = "sms"
    ARMOR = "sms_armor"


@dataclass(frozen=True, slots=True)
class SmsPolicy:
    """Length and lifetime of a code and resend throttling. Times in seconds."""

    ttl: float = 300.0
    resend_interval: float = 60.0
    max_sends: int = 3
    sender_name: str = "riskgate"
    digits: int = 6

    def __post_init__(self) -> None:
        if not _valid_digits(self.digits):
            raise SmsConfigInvalid(f"sms.digits must be between {MIN_DIGITS} and {MAX_DIGITS}")
        if not 30 <= self.ttl <= 1800:
            raise SmsConfigInvalid("sms.ttl must be between 30 and 1800 seconds")
        if not 0 <= self.resend_interval <= self.ttl:
            raise SmsConfigInvalid("sms.resend_interval must be between 0 and sms.ttl")
        if not 1 <= self.max_sends <= 10:
            raise SmsConfigInvalid("sms.max_sends must be between 1 and 10")
        if not 0 < len(self.sender_name) <= 20:
            raise SmsConfigInvalid("sms.sender_name must be 1 to 20 characters")


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """A text to hand to an :class:`~auth_tools.sms_senders.SmsSender`.

    Both fields are secrets (the code, the number): they are kept out of ``repr``.
    """

    phone: str = field(repr=False)
    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SmsResult:
    """A passed SMS step. ``state`` is the spent state, if the caller keeps it."""

    challenge_id: str
    txn_hash: str
    mode: SmsMode
    state: dict[str, object] = field(repr=False)
    amr: tuple[str, ...] = ("sms",)

    @property
    def tool(self) -> str:
        return self.mode.value


def _valid_digits(digits: object) -> bool:
    return isinstance(digits, int) and not isinstance(digits, bool) and MIN_DIGITS <= digits <= MAX_DIGITS


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < _MIN_KEY_BYTES:
        raise SmsConfigInvalid(f"the SMS code key must be at least {_MIN_KEY_BYTES} random bytes")


def _code_mac(key: bytes, mode: str, challenge_id: str, digest: str, code: str) -> str:
    msg = b"\n".join((_MAC_LABEL, mode.encode(), challenge_id.encode(), digest.encode(), code.encode()))
    return hmac.new(key, msg, "sha256").hexdigest()


def _display_amount(fen: int) -> str:
    whole, cents = divmod(fen, 100)
    return f"{whole:,}.{cents:02d}"


def message_text(mode: SmsMode, code: str, txn: Transaction, *, payee_name: str = "",
                 policy: SmsPolicy = SmsPolicy()) -> str:
    """The text the user receives. Armor shows action, amount and masked payee."""
    minutes = max(1, math.ceil(policy.ttl / 60))
    head = f"[{policy.sender_name}]"
    if mode is SmsMode.PLAIN:
        return (f"{head} Your verification code is {code}. It expires in {minutes} minutes. "
                "Never share it with anyone, bank staff included.")
    what = txn.action.replace("_", " ")
    if txn.amount:
        what += f" {txn.currency} {_display_amount(txn.amount)}"
    if txn.payee:
        payee = mask_account(txn.payee)
        what += f" to {mask_name(payee_name)} ({payee})" if payee_name else f" to {payee}"
    return (f"{head} Code {code} approves: {what}. It expires in {minutes} minutes. "
            "If you did not ask for this, do not share the code.")


def _new_code(digits: int) -> str:
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


def begin(challenge_id: str, txn: Transaction, phone: str, now: float, *, key: bytes,
          mode: SmsMode = SmsMode.ARMOR, payee_name: str = "",
          policy: SmsPolicy = SmsPolicy()) -> tuple[SmsMessage, dict[str, object]]:
    """Make a code for ``txn`` under ``challenge_id``.

    Returns ``(message, state)``: send ``message`` with an SMS sender, keep
    ``state`` (no code, no phone number in it) with the challenge. ``key`` is
    the server's HMAC key for codes (at least 32 random bytes).
    """
    _check_key(key)
    mode = SmsMode(mode)
    if not isinstance(phone, str) or not any(ch.isdigit() for ch in phone):
        raise BadToolInput("no phone number to send the code to")
    digest = txn_hash(txn)
    code = _new_code(policy.digits)
    state: dict[str, object] = {
        "kind": _KIND, "mode": mode.value, "challenge_id": challenge_id, "txn_hash": digest,
        "digits": policy.digits, "code_mac": _code_mac(key, mode.value, challenge_id, digest, code),
        "sent_at": now, "expires_at": now + policy.ttl, "sends": 1,
        "phone_hint": mask_phone(phone), "used_at": None,
    }
    return SmsMessage(phone, message_text(mode, code, txn, payee_name=payee_name, policy=policy)), state


def _check_state(state: object) -> dict[str, object]:
    if not isinstance(state, dict) or state.get("kind") != _KIND:
        raise BadToolInput("not an SMS challenge state")
    if not _valid_digits(state.get("digits", _LEGACY_DIGITS)):
        raise BadToolInput("not an SMS challenge state")
    return state


def _digits(state: dict[str, object]) -> int:
    """The length of the code the state was made for (checked by :func:`_check_state`)."""
    return int(state.get("digits", _LEGACY_DIGITS))  # type: ignore[call-overload]


def resend(state: dict[str, object], txn: Transaction, phone: str, now: float, *, key: bytes,
           payee_name: str = "", policy: SmsPolicy = SmsPolicy()) -> tuple[SmsMessage, dict[str, object]]:
    """Send a new code for the same challenge; the previous code stops working.

    Raises :class:`SmsResendTooSoon` (with ``retry_after``) within
    ``resend_interval`` of the last send, :class:`SmsResendLimit` after
    ``max_sends`` sends, :class:`SmsCodeReused` once the step has passed.
    """
    _check_key(key)
    state = _check_state(state)
    if state.get("used_at") is not None:
        raise SmsCodeReused()
    digest = txn_hash(txn)
    if not hmac.compare_digest(str(state["txn_hash"]).encode(), digest.encode()):
        raise BadToolInput("the resend is for another transaction than the challenge")
    if int(state["sends"]) >= policy.max_sends:  # type: ignore[call-overload]
        raise SmsResendLimit()
    wait = float(state["sent_at"]) + policy.resend_interval - now  # type: ignore[arg-type]
    if wait > 0:
        raise SmsResendTooSoon(wait)
    message, fresh = begin(str(state["challenge_id"]), txn, phone, now, key=key,
                           mode=SmsMode(str(state["mode"])), payee_name=payee_name, policy=policy)
    fresh["sends"] = int(state["sends"]) + 1  # type: ignore[call-overload]
    return message, fresh


def options(state: dict[str, object], now: float, *, policy: SmsPolicy = SmsPolicy()) -> dict[str, object]:
    """What the app shows while the user waits for the text (never the code)."""
    state = _check_state(state)
    sends = int(state["sends"])  # type: ignore[call-overload]
    return {
        "tool": state["mode"],
        "sent_to": state["phone_hint"],
        "digits": _digits(state),
        "expires_in": max(0.0, float(state["expires_at"]) - now),  # type: ignore[arg-type]
        "resend_in": max(0.0, float(state["sent_at"]) + policy.resend_interval - now),  # type: ignore[arg-type]
        "resends_left": max(0, policy.max_sends - sends),
    }


def complete(state: dict[str, object], code: object, now: float, *, key: bytes,
             challenge_id: str, txn: Transaction) -> SmsResult:
    """Verify the code typed for the challenge and transaction being approved.

    ``challenge_id`` and ``txn`` are what the caller is about to approve; the
    HMAC is recomputed over them, so a code made for another challenge,
    amount or payee raises the same :class:`SmsCodeInvalid` as a wrong code.
    The returned ``result.state`` is marked used: a second call with it raises
    :class:`SmsCodeReused`.
    """
    _check_key(key)
    state = _check_state(state)
    if not isinstance(code, str):
        raise BadToolInput("the code must be a string of digits")
    if state.get("used_at") is not None:
        raise SmsCodeReused()
    if now >= float(state["expires_at"]):  # type: ignore[arg-type]
        raise SmsCodeExpired()
    entered = code.replace(" ", "")
    # The length the code was sent with, whatever the policy is now. A malformed
    # code is compared like any other (against a MAC it cannot match).
    digits = _digits(state)
    entered = entered if len(entered) == digits and _CODE_RE.fullmatch(entered) else "x" * digits
    mode = SmsMode(str(state["mode"]))
    digest = txn_hash(txn)
    ok = hmac.compare_digest(_code_mac(key, mode.value, challenge_id, digest, entered).encode(),
                             str(state["code_mac"]).encode())
    ok &= hmac.compare_digest(str(state["challenge_id"]).encode(), challenge_id.encode())
    ok &= hmac.compare_digest(str(state["txn_hash"]).encode(), digest.encode())
    if not ok:
        raise SmsCodeInvalid()
    return SmsResult(challenge_id, digest, mode, {**state, "used_at": now})


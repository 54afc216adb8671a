"""Dynamic linking: the canonical transaction and what every tool signs.

PSD2 RTS Art. 5 asks that an authentication code be specific to the amount
and the payee. riskgate makes that concrete with one canonical byte string per
transaction; every code, signature and WebAuthn assertion is computed over it
(together with the challenge id), and the upstream recomputes it from the body
it receives.

Canonical form, version 1 (documented in docs/client-protocol.md):

    JSON object with exactly the keys action, amount, currency, from, payee;
    keys sorted, no whitespace (separators "," and ":"), UTF-8, non-ASCII
    characters written as themselves; every value a string; amount a plain
    decimal with exactly two fraction digits ("20000.00"), no sign, no
    exponent; absent fields are "".

    txn_hash = lowercase hex of SHA-256 over those bytes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import orjson

__all__ = [
    "Transaction",
    "InvalidAmount",
    "parse_amount",
    "format_amount",
    "canonical_bytes",
    "txn_hash",
    "signing_payload",
    "webauthn_challenge",
]

_AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$")


class InvalidAmount(ValueError):
    """An amount that is not a plain positive decimal with at most 2 fraction digits."""


def parse_amount(value: object) -> int:
    """Parse a JSON amount ("250000.00", "12.5" or an integer) into fen (1/100 CNY).

    Floats are refused: money never travels as binary floating point.
    """
    if isinstance(value, bool):
        raise InvalidAmount("amount must be a decimal string")
    if isinstance(value, int):
        if value < 0:
            raise InvalidAmount("amount must not be negative")
        return value * 100
    if not isinstance(value, str) or not _AMOUNT_RE.match(value):
        raise InvalidAmount("amount must be a decimal string such as \"500.00\"")
    try:
        return int((Decimal(value) * 100).to_integral_exact())
    except InvalidOperation as exc:  # pragma: no cover - the regex already guards
        raise InvalidAmount("amount is not a number") from exc


def format_amount(fen: int) -> str:
    """Format fen as the canonical decimal string ("20000.00")."""
    if fen < 0:
        raise InvalidAmount("amount must not be negative")
    return f"{fen // 100}.{fen % 100:02d}"


@dataclass(frozen=True, slots=True)
class Transaction:
    """What the user approves: action, amount in fen, currency, source and payee."""

    action: str
    amount: int = 0
    currency: str = "CNY"
    source: str = ""
    payee: str = ""

    def as_canonical_dict(self) -> dict[str, str]:
        return {
            "action": self.action,
            "amount": format_amount(self.amount),
            "currency": self.currency,
            "from": self.source,
            "payee": self.payee,
        }


def canonical_bytes(txn: Transaction) -> bytes:
    """The canonical JSON bytes of a transaction (keys sorted, no whitespace)."""
    return orjson.dumps(txn.as_canonical_dict(), option=orjson.OPT_SORT_KEYS)


def txn_hash(txn: Transaction) -> str:
    """Lowercase hex SHA-256 of the canonical transaction."""
    return hashlib.sha256(canonical_bytes(txn)).hexdigest()


def signing_payload(challenge_id: str, txn: Transaction) -> bytes:
    """The bytes a certificate or device-bound key signs to approve a transaction.

    ``b"riskgate-txn-sign-v1\\n" + challenge_id + b"\\n" + canonical_bytes(txn)``
    """
    return b"riskgate-txn-sign-v1\n" + challenge_id.encode() + b"\n" + canonical_bytes(txn)


def webauthn_challenge(challenge_id: str, txn: Transaction) -> bytes:
    """The 32-byte WebAuthn challenge for a step-up: SHA-256 of the signing payload."""
    return hashlib.sha256(signing_payload(challenge_id, txn)).digest()

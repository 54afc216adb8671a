"""Password verifiers (argon2id via argon2-cffi) and password re-entry.

Re-entry is a ceremony bound to a step-up challenge: ``begin`` shows the
transaction and returns a state naming the challenge and ``txn_hash``;
``complete`` verifies the password against the stored verifier only for that
challenge and transaction, so an approval typed for one transfer never
counts for another. The verifier is argon2id (RFC 9106); argon2 compares the
derived hash in constant time.
"""

from __future__ import annotations

import functools
import hmac
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from auth_tools.dynamic_linking import Transaction, format_amount, txn_hash
from auth_tools.errors import BadToolInput, ChallengeExpired, PasswordInvalid, PasswordStateMismatch
from auth_tools.masking import mask_account

__all__ = [
    "PasswordResult",
    "hash_password",
    "verify_password",
    "needs_rehash",
    "begin",
    "complete",
]

# argon2-cffi's defaults: argon2id, t=3, m=64 MiB, p=4 (RFC 9106 second choice).
_HASHER = PasswordHasher()
_MAX_PASSWORD_CHARS = 1024
_KIND = "password_reentry"


@dataclass(frozen=True, slots=True)
class PasswordResult:
    """A passed password re-entry.

    ``needs_rehash`` tells the caller to store ``hash_password(password)``
    again (the verifier was made with weaker parameters than today's).
    """

    challenge_id: str
    txn_hash: str
    needs_rehash: bool
    amr: tuple[str, ...] = ("pwd",)


def hash_password(password: str) -> str:
    """An argon2id verifier string (``$argon2id$...``) for ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the verifier; argon2 compares in constant time."""
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the verifier was made with other parameters than the current ones."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash() -> str:
    # Verified when the user has no verifier, so the reply takes as long as a real check.
    return _HASHER.hash("riskgate-no-such-verifier")


def begin(challenge_id: str, txn: Transaction, now: float, *,
          ttl: float = 300.0) -> tuple[dict[str, object], dict[str, object]]:
    """Ask the user to type their password to approve ``txn``.

    Returns ``(options, state)``: options are what the app shows (the
    transaction with the payee masked); the state binds the step to
    ``challenge_id`` and the transaction hash and expires after ``ttl``.
    """
    digest = txn_hash(txn)
    options: dict[str, object] = {
        "tool": "pwd",
        "prompt": "Check the transaction, then enter your login password to approve it",
        "transaction": {"action": txn.action, "amount": format_amount(txn.amount),
                        "currency": txn.currency, "payee": mask_account(txn.payee)},
        "txn_hash": digest,
        "expires_in": ttl,
    }
    state: dict[str, object] = {"kind": _KIND, "challenge_id": challenge_id, "txn_hash": digest,
                                "expires_at": now + ttl}
    return options, state


def complete(state: dict[str, object], password: object, stored: str | None, now: float, *,
             challenge_id: str, txn: Transaction) -> PasswordResult:
    """Verify the password typed for the challenge ``begin`` started.

    ``stored`` is the user's verifier (``None`` when they have none: the same
    work is done and the same error raised). ``challenge_id`` and ``txn`` are
    what the caller is about to approve and must be those of the state.
    """
    if not isinstance(state, dict) or state.get("kind") != _KIND:
        raise BadToolInput("not a password re-entry state")
    if not isinstance(password, str) or not 0 < len(password) <= _MAX_PASSWORD_CHARS:
        raise BadToolInput(f"the password must be a string of 1 to {_MAX_PASSWORD_CHARS} characters")
    if now >= float(state["expires_at"]):  # type: ignore[arg-type]
        raise ChallengeExpired()
    digest = txn_hash(txn)
    bound = hmac.compare_digest(str(state["challenge_id"]).encode(), challenge_id.encode())
    bound &= hmac.compare_digest(str(state["txn_hash"]).encode(), digest.encode())
    if not bound:
        raise PasswordStateMismatch()
    ok = verify_password(stored if stored is not None else _dummy_hash(), password)
    if not ok or stored is None:
        raise PasswordInvalid()
    return PasswordResult(challenge_id, digest, needs_rehash(stored))

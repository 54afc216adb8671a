"""Password verifiers and password re-entry bound to a challenge."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from auth_tools import password
from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import BadToolInput, ChallengeExpired, PasswordInvalid, PasswordStateMismatch

NOW = 1_763_800_000.0
TXN = Transaction("transfer", 25_000_000, "CNY", "6222020000000001", "6222020000000003")
PW = "correct horse battery staple"


@pytest.fixture(scope="module")
def stored() -> str:
    return password.hash_password(PW)


def test_verifier_is_argon2id_and_salted(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert password.hash_password(PW) != stored  # fresh salt every time
    assert password.verify_password(stored, PW)
    assert not password.verify_password(stored, PW + " ")
    assert not password.verify_password("not a verifier", PW)
    assert not password.needs_rehash(stored)


def test_weaker_verifier_needs_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PW)
    assert password.verify_password(old, PW)
    assert password.needs_rehash(old)


def test_reentry_happy_path(stored: str) -> None:
    options, state = password.begin("ch1", TXN, NOW)
    assert options["transaction"] == {"action": "transfer", "amount": "250000.00",
                                      "currency": "CNY", "payee": "**** 0003"}
    assert "6222020000000003" not in str(options)
    result = password.complete(state, PW, stored, NOW + 10, challenge_id="ch1", txn=TXN)
    assert result.amr == ("pwd",)
    assert result.challenge_id == "ch1" and not result.needs_rehash


def test_wrong_password_refused(stored: str) -> None:
    _, state = password.begin("ch1", TXN, NOW)
    with pytest.raises(PasswordInvalid) as err:
        password.complete(state, "Tr0ub4dor&3", stored, NOW + 1, challenge_id="ch1", txn=TXN)
    assert err.value.code == "password_invalid"


def test_user_without_verifier_gets_the_same_error() -> None:
    _, state = password.begin("ch1", TXN, NOW)
    with pytest.raises(PasswordInvalid):
        password.complete(state, PW, None, NOW + 1, challenge_id="ch1", txn=TXN)


def test_expired_reentry_refused(stored: str) -> None:
    _, state = password.begin("ch1", TXN, NOW, ttl=60)
    with pytest.raises(ChallengeExpired):
        password.complete(state, PW, stored, NOW + 60, challenge_id="ch1", txn=TXN)


@pytest.mark.parametrize("other", [
    Transaction("transfer", 25_000_001, "CNY", "6222020000000001", "6222020000000003"),
    Transaction("transfer", 25_000_000, "CNY", "6222020000000001", "6222020000000099"),
])
def test_reentry_for_another_amount_or_payee_refused(stored: str, other: Transaction) -> None:
    _, state = password.begin("ch1", TXN, NOW)
    with pytest.raises(PasswordStateMismatch):
        password.complete(state, PW, stored, NOW + 1, challenge_id="ch1", txn=other)


def test_reentry_for_another_challenge_refused(stored: str) -> None:
    _, state = password.begin("ch1", TXN, NOW)
    with pytest.raises(PasswordStateMismatch):
        password.complete(state, PW, stored, NOW + 1, challenge_id="ch2", txn=TXN)


@pytest.mark.parametrize("bad", [None, 123456, "", "x" * 1025])
def test_malformed_password_is_bad_input(stored: str, bad: object) -> None:
    _, state = password.begin("ch1", TXN, NOW)
    with pytest.raises(BadToolInput):
        password.complete(state, bad, stored, NOW + 1, challenge_id="ch1", txn=TXN)

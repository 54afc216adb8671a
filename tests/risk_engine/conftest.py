"""Fixtures for the risk engine tests (real Redis comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from risk_engine import RequestFacts

NOW = 1_790_000_000.0  # a fixed instant; tests pass time explicitly


@pytest.fixture
def model_key() -> bytes:
    return b"k" * 32


@pytest.fixture
def now() -> float:
    return NOW


def facts(**kw) -> RequestFacts:
    base = dict(user_id="alice", action="transfer", moves_money=True, amount_fen=20_000,
                payee="6222000011112222", device_id="alice.dev1", device_status="bound",
                device_created=NOW - 400 * 86400, ip="10.0.0.1", geo=(31.23, 121.47),
                account_created=NOW - 1000 * 86400, account_class="I")
    base.update(kw)
    return RequestFacts(**base)

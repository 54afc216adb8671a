"""The banking upstream answers 500 or too late: the client gets a JSON 502/504,
the spend is given back, and a retry under the same Idempotency-Key debits once."""

from __future__ import annotations

import asyncio

import pytest

from risk_engine import get_decision
from tests.resilience.conftest import ALICE_MAIN, BOB

pytestmark = pytest.mark.slow


async def spent_today(phone) -> str:  # noqa: ANN001 - MobileClient
    resp = await phone.call("GET", "/auth/limits")
    assert resp.status == 200, resp.body
    return resp.json()["spent"]["today"]


async def recorded(stack, resp, **expected) -> None:  # noqa: ANN001
    """The decision record says what the upstream did (the analyst console shows it)."""
    decision_id = resp.headers["x-riskgate-decision"]
    for _ in range(100):
        try:
            _sid, event = await get_decision(stack.services.redis, decision_id)
            break
        except Exception:  # noqa: BLE001 - written a few milliseconds after the response
            await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"decision {decision_id} was not recorded")
    assert event.outcome == expected["outcome"] and event.upstream == expected["upstream"]
    assert event.assertion is not None and event.assertion["decision_id"] == decision_id


async def test_upstream_500_releases_the_spend_and_a_retry_debits_once(stack):
    phone = await stack.phone()
    before, balance = stack.transfers(), stack.balance(ALICE_MAIN)

    stack.upstream.mode = "error"
    failed = await phone.transfer(ALICE_MAIN, BOB, "300.00", idempotency_key="pay-rent-1")
    assert (failed.status, failed.error) == (502, "upstream_error")
    assert "core banking" not in failed.body.decode()  # the bank's internals stay inside
    assert "x-riskgate-decision" in failed.headers
    assert await spent_today(phone) == "0.00"
    await recorded(stack, failed, outcome="upstream_error", upstream={"status": 500})
    assert stack.transfers() == before

    stack.upstream.mode = "ok"
    retried = await phone.transfer(ALICE_MAIN, BOB, "300.00", idempotency_key="pay-rent-1")
    assert retried.status == 201, retried.body
    again = await phone.transfer(ALICE_MAIN, BOB, "300.00", idempotency_key="pay-rent-1")
    assert again.status == 201 and again.json()["transfer_id"] == retried.json()["transfer_id"]
    assert stack.transfers() == before + 1
    assert balance - stack.balance(ALICE_MAIN) == 300_00
    assert await spent_today(phone) == "300.00"
    assert await stack.open_reservations() == 0


async def test_upstream_timeout_is_504_releases_the_spend_and_a_retry_debits_once(stack):
    phone = await stack.phone()
    before, balance = stack.transfers(), stack.balance(ALICE_MAIN)

    # The upstream does the transfer, but only after the gateway gave up (0.5 s).
    stack.upstream.mode, stack.upstream.delay = "slow", 1.5
    late = await phone.transfer(ALICE_MAIN, BOB, "400.00", idempotency_key="late-1")
    assert (late.status, late.error) == (504, "upstream_timeout")
    await recorded(stack, late, outcome="upstream_error", upstream={"error": "upstream_timeout"})
    assert await spent_today(phone) == "0.00"
    assert await stack.open_reservations() == 0
    await stack.upstream.settled()

    stack.upstream.mode = "ok"
    retried = await phone.transfer(ALICE_MAIN, BOB, "400.00", idempotency_key="late-1")
    assert retried.status == 201, retried.body
    assert stack.transfers() == before + 1
    assert balance - stack.balance(ALICE_MAIN) == 400_00
    # The retry counts the debit the upstream made: the counters agree with the ledger.
    assert await spent_today(phone) == "400.00"


async def test_upstream_down_is_502_and_the_spend_is_released(stack):
    phone = await stack.phone()
    await stack.stop_upstream()
    failed = await phone.transfer(ALICE_MAIN, BOB, "200.00", idempotency_key="down-1")
    assert (failed.status, failed.error) == (502, "upstream_unavailable")
    await recorded(stack, failed, outcome="upstream_error", upstream={"error": "upstream_unavailable"})
    assert await spent_today(phone) == "0.00"
    assert await stack.open_reservations() == 0

"""Risk in the request path: rules move the tier, block, and every decision is recorded."""

from __future__ import annotations

import asyncio
import time

from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from risk_engine import Rule, RuleEffect, RuleSet, get_decision, read_decisions
from risk_engine.levels import RiskLevel

SOURCE = "6222020000000001"
NEW_PAYEE = "6217000000004321"


async def _customer(gw):
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    await gw.services.accounts.set("alice", {SOURCE: AccountClass.I})
    return client


async def _transfer(client, amount: str, payee: str = NEW_PAYEE):
    body = {"from_account": SOURCE, "payee_account": payee, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body,
                             headers={"Idempotency-Key": f"r-{time.monotonic_ns()}"})


async def _drain(gw) -> None:
    while gw.services.background:
        await asyncio.gather(*list(gw.services.background))


async def test_new_payee_with_a_large_amount_needs_one_tier_more(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    client = await _customer(gw)
    resp = await _transfer(client, "20000.00")
    doc = resp.json()
    assert resp.status == 401 and doc["error"] == "insufficient_user_authentication"
    # 20,000 alone is T3; the default pack's new-payee rule raises the level to medium: T4.
    assert doc["required_tier"] == "T4"
    assert doc["reason"]["amount_tier"] == "T3" and doc["reason"]["risk_level"] == "medium"
    assert "new_payee_large" in doc["reason"]["rules"]
    await _drain(gw)
    (_, event), = await read_decisions(gw.services.redis)
    assert event.outcome == "step_up" and "new_payee_large" in event.rules_hit
    assert event.required_tier == 4 and event.base_tier == 3 and event.features["payee_new"] is True
    assert echo.requests == []


async def test_every_forwarded_call_carries_the_risk_claim_and_is_recorded(gateway_factory,
                                                                          echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    client = await _customer(gw)
    resp = await _transfer(client, "100.00")
    assert resp.status == 200, resp.body
    decision_id = resp.headers["x-riskgate-decision"]
    await _drain(gw)
    _, event = await get_decision(gw.services.redis, decision_id)
    assert event.outcome == "allowed" and event.level == RiskLevel.LOW.value
    assert {"risk", "decide"} <= set(event.latencies_ms)
    import base64

    import orjson

    token = echo.requests[0]["headers"]["x-riskgate-assertion"]
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["risk"]["level"] == "low" and claims["decision_id"] == decision_id
    assert claims["limit"] == {"tier_limit": "1000.00", "remaining_today": "900.00"}
    # the console's decision detail shows what went upstream and what came back
    assert event.assertion == claims and event.upstream == {"status": 200}
    assert event.tools == ("pwd",)  # the session reached T2 at sign-in


async def test_a_block_rule_published_by_an_analyst_applies_within_a_second(gateway_factory,
                                                                           echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    client = await _customer(gw)
    assert (await _transfer(client, "10.00", payee="6217000000000001")).status == 200
    block = Rule("freeze_new_payees", "moves_money && payee_new", RuleEffect.BLOCK,
                 "mule wave: no payments to new payees")
    await gw.services.risk.rule_store.publish(RuleSet((block,)), author="analyst-1",
                                              reason="mule report", now=time.time())
    await asyncio.sleep(1.0)
    refused = await _transfer(client, "10.00")
    assert (refused.status, refused.error) == (403, "risk_blocked")
    assert len(echo.requests) == 1
    assert (await gw.services.reservations.spent("alice", now=time.time())).day == 10_00


async def test_high_risk_moves_two_tiers_up_and_caps_the_amount(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    client = await _customer(gw)
    high = Rule("analyst_watch", "moves_money", RuleEffect.MIN_LEVEL, "account under watch",
                level=RiskLevel.HIGH)
    await gw.services.risk.rule_store.publish(RuleSet((high,)), author="analyst-1",
                                              reason="watch list", now=time.time())
    await asyncio.sleep(1.0)
    small = (await _transfer(client, "800.00")).json()
    assert small["required_tier"] == "T3"  # T1 by amount, two up
    capped = await _transfer(client, "60000.00")
    doc = capped.json()
    assert (capped.status, doc["error"], doc["cap"]) == (403, "limit_exceeded", "risk_high")
    assert doc["limit"] == "50000.00" and echo.requests == []

"""Limits through the gateway: class caps, the user's own limits, release on upstream failure."""

from __future__ import annotations

import re
import time

from auth_tools.sms_senders import DevOutbox
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import stepup

MAIN, CLASS_III = "6222020000000001", "6222020000000004"
PAYEE = "6217000000004321"


async def _customer(gw):
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    await gw.services.accounts.set("alice", {MAIN: AccountClass.I, CLASS_III: AccountClass.III})
    return client


async def _transfer(client, amount: str, source: str = MAIN, approval: str | None = None):
    headers = {"Idempotency-Key": f"l-{time.monotonic_ns()}"}
    if approval:
        headers["X-Approval-Token"] = approval
    body = {"from_account": source, "payee_account": PAYEE, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body, headers=headers)


async def _sms_armor(gw, client, challenge_id: str) -> str:
    await stepup.begin_tool(client, challenge_id, "sms_armor")
    (latest, *_) = await DevOutbox.read(gw.services.redis)
    code = re.search(r"Code (\d{6})", str(latest["text"])).group(1)  # type: ignore[union-attr]
    done = await stepup.complete_tool(client, challenge_id, "sms_armor", {"code": code})
    assert done.status == 200, done.body
    return str(done.json()["approval_token"])


async def test_class_iii_cap_is_refused_with_the_remaining_amount(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    assert (await _transfer(client, "800.00", CLASS_III)).status == 200
    refused = await _transfer(client, "1500.00", CLASS_III)
    doc = refused.json()
    assert (refused.status, doc["error"]) == (403, "limit_exceeded")
    assert doc["cap"] == "account_class" and doc["remaining"] == "1200.00"
    assert doc["allowed_by"] is None  # no tier lifts a class cap
    assert len(echo.requests) == 1
    assert (await gw.services.reservations.spent("alice", now=time.time())).day == 800_00


async def test_lowering_is_immediate_and_raising_needs_the_new_limits_tier(gateway_factory,
                                                                         echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    lowered = await client.call("PUT", "/auth/limits/daily", {"amount": "500.00"})
    assert lowered.status == 200 and lowered.json()["settings"]["daily"] == "500.00"
    refused = await _transfer(client, "600.00")
    assert (refused.status, refused.error) == (403, "limit_exceeded")

    raise_req = await client.call("PUT", "/auth/limits/daily", {"amount": "40000.00"})
    challenge = raise_req.json()
    assert raise_req.status == 401 and challenge["required_tier"] == "T3"
    assert challenge["transaction"]["action"] == "change_limit_daily"
    assert challenge["transaction"]["amount"] == "40000.00"
    approval = await _sms_armor(gw, client, challenge["challenge_id"])
    # The approval is for 40,000 exactly: not for a higher value.
    other = await client.call("PUT", "/auth/limits/daily", {"amount": "45000.00"},
                              headers={"X-Approval-Token": approval})
    assert (other.status, other.error) == (401, "approval_mismatch")
    challenge = (await client.call("PUT", "/auth/limits/daily", {"amount": "40000.00"})).json()
    approval = await _sms_armor(gw, client, challenge["challenge_id"])
    raised = await client.call("PUT", "/auth/limits/daily", {"amount": "40000.00"},
                               headers={"X-Approval-Token": approval})
    assert raised.status == 200 and raised.json()["settings"]["daily"] == "40000.00"
    shown = (await client.call("GET", "/auth/limits")).json()
    assert shown["tiers"]["T5"] == {"per_transaction": "5000000.00", "daily": "5000000.00"}
    assert shown["settings"]["daily"] == "40000.00"


async def test_upstream_failure_releases_the_reservation(gateway_factory):
    from gateway.servers import free_port

    gw = await gateway_factory(upstream={"url": f"http://127.0.0.1:{free_port()}"})
    client = await _customer(gw)
    resp = await _transfer(client, "900.00")
    assert (resp.status, resp.error) == (502, "upstream_unavailable")
    spent = await gw.services.reservations.spent("alice", now=time.time())
    assert spent.day == 0 and spent.year == 0

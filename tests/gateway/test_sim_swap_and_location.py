"""SIM-swap reports and location through the gateway's HTTP API: the carrier
API, SMS refused as a factor after a swap, risk raised, impossible travel and
sessions pinned to their network. Client addresses come from the demo IP table
(192.0.2.0/24 Shanghai, 198.51.100.0/24 Beijing, 203.0.113.128/25 New York).
"""

from __future__ import annotations

import time

import pytest

from risk_engine import read_decisions
from tests.gateway.device_flows import (
    CARRIER_TOKEN,
    PASSWORD,
    approve_pwd_sms,
    carrier_report,
    client_at,
    first_device,
    move,
    run_tool,
    settle_background,
    sms_code,
    transfer,
)

DAY = 86_400.0


@pytest.fixture
async def gw(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    return await gateway_factory(upstream={"url": url}, device={"carrier_token": CARRIER_TOKEN})


async def test_carrier_api_needs_its_token(gateway_factory, gw):
    await first_device(gw)
    report = {"user_id": "alice", "kind": "sim_swap", "at": time.time(), "source": "carrier.cmcc"}
    assert (await carrier_report(gw, report, token=None)).error == "carrier_token_required"
    wrong = await carrier_report(gw, report, token="x" * 40)
    assert (wrong.status, wrong.error) == (403, "carrier_token_invalid")
    bad = await carrier_report(gw, {**report, "kind": "stolen"})
    assert (bad.status, bad.error, bad.json()["field"]) == (400, "sim_swap_report_invalid", "kind")
    nobody = await carrier_report(gw, {**report, "user_id": "nobody"})
    assert (nobody.status, nobody.error) == (404, "unknown_user")
    off = await gateway_factory()
    assert (await carrier_report(off, report)).error == "carrier_api_disabled"


async def test_sms_is_refused_as_a_factor_after_a_sim_swap(gw):
    phone, _ = await first_device(gw)
    swapped_at = time.time() - 3600
    done = await carrier_report(gw, {"user_id": "alice", "kind": "number_port", "at": swapped_at,
                                     "source": "carrier.cmcc"})
    assert done.status == 201 and done.json()["sms_blocked_until"] == pytest.approx(swapped_at + 7 * DAY)

    # The thief with the new SIM and the password registers a phone: SMS cannot bind it.
    thief = client_at(gw)
    registered = (await thief.register_device("alice", PASSWORD)).json()
    assert registered["sms_blocked_until"] == pytest.approx(swapped_at + 7 * DAY)
    binding = (await thief.login(PASSWORD)).json()["binding"]
    assert binding["unavailable_tools"] == ["sms", "sms_armor"]
    sent_before = len(gw.services.sms_sender.messages)
    for tool in ("sms", "sms_armor"):
        refused = await run_tool(thief, binding["challenge_id"], tool, lambda: {"code": "000000"})
        assert (refused.status, refused.error) == (403, "sms_blocked_sim_swap")
    assert len(gw.services.sms_sender.messages) == sent_before  # no code was even sent

    # The customer's own transfers cannot use SMS armor either.
    challenge = await transfer(phone, "20000.00")
    refused = await run_tool(phone, challenge.json()["challenge_id"], "sms_armor", lambda: {"code": "1"})
    assert refused.error == "sms_blocked_sim_swap"


async def test_sms_counts_again_after_the_blackout(gw):
    phone, _ = await first_device(gw)
    await carrier_report(gw, {"user_id": "alice", "kind": "sim_swap", "at": time.time() - 8 * DAY,
                              "source": "carrier.cmcc"})
    new = client_at(gw)
    await new.register_device("alice", PASSWORD)
    binding = (await new.login(PASSWORD)).json()["binding"]
    assert "unavailable_tools" not in binding
    token = await approve_pwd_sms(gw, new, binding["challenge_id"])
    assert (await new.bind_device(token)).status == 200


async def test_sim_swap_raises_the_risk_of_money_movement(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url},
                               device={"carrier_token": CARRIER_TOKEN})
    phone, _ = await first_device(gw)
    before = await transfer(phone, "50.00")
    assert before.status == 200
    await carrier_report(gw, {"user_id": "alice", "kind": "sim_swap", "at": time.time() - 60,
                              "source": "carrier.cmcc"})
    after = await transfer(phone, "50.00")
    assert after.error == "insufficient_user_authentication"
    assert after.json()["reason"]["risk_level"] == "high" and after.json()["required_tier"] == "T3"


async def test_impossible_travel_between_two_requests_raises_the_risk(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    phone, _ = await first_device(gw, ip="192.0.2.10")  # Shanghai
    assert (await phone.accounts()).status == 200
    await settle_background(gw)
    move(gw, phone, "198.51.100.20")  # Beijing, ~1,070 km, minutes later
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (401, "insufficient_user_authentication")
    assert resp.json()["reason"]["risk_level"] == "high"
    await settle_background(gw)
    (_, event), = await read_decisions(gw.services.redis, count=1, newest_first=True)
    assert event.features["impossible_travel"] is True and event.features["ip_changed"] is True
    assert "impossible_travel" in event.rules_hit


async def test_nearby_address_change_is_no_travel(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url})
    phone, _ = await first_device(gw, ip="192.0.2.10")
    assert (await phone.accounts()).status == 200
    await settle_background(gw)
    move(gw, phone, "192.0.2.200")  # same Shanghai range
    assert (await phone.accounts()).status == 200
    await settle_background(gw)
    (_, event), = await read_decisions(gw.services.redis, count=1, newest_first=True)
    assert event.features["ip_changed"] is True and event.features["impossible_travel"] is False


async def test_session_pinned_to_its_network(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, device={"pin_session_ip": True})
    phone, _ = await first_device(gw, ip="192.0.2.10")
    move(gw, phone, "192.0.2.99")  # same /24
    assert (await phone.accounts()).status == 200
    move(gw, phone, "198.51.100.7")  # the stolen token used from elsewhere
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (401, "session_ip_outside_pinned_range")
    # A fresh login from the new network pins the new session there.
    assert (await phone.login(PASSWORD)).status == 200
    assert (await phone.accounts()).status == 200


async def test_sms_code_is_still_the_default_without_a_swap(gw):
    await first_device(gw)
    new = client_at(gw)
    await new.register_device("alice", PASSWORD)
    binding = (await new.login(PASSWORD)).json()["binding"]
    begun = await new.call("POST", f"/auth/challenges/{binding['challenge_id']}/sms/begin", {})
    assert begun.status == 200 and sms_code(gw)


async def test_the_risk_stays_raised_for_the_configured_days_then_drops(gateway_factory, echo_upstream):
    """device.sms_block_days is one window for both: SMS not a factor, risk raised."""
    _echo, url = echo_upstream
    gw = await gateway_factory(rules="default", upstream={"url": url},
                               device={"carrier_token": CARRIER_TOKEN, "sms_block_days": 7})
    phone, _ = await first_device(gw)
    await carrier_report(gw, {"user_id": "alice", "kind": "sim_swap", "at": time.time() - 5 * DAY,
                              "source": "carrier.cmcc"})
    five_days_on = await transfer(phone, "50.00")
    assert five_days_on.json()["reason"]["risk_level"] == "high"
    assert "sim_swap_money" in five_days_on.json()["reason"]["rules"]

"""Operations switches: business and channel stops and live parameters, versioned,
audited and picked up by every gateway sharing the Redis without a restart."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime

import httpx
import orjson

from auth_tools.sms_senders import DevOutbox
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import stepup

ADMIN = "admin-token-for-the-ops-tests-0001"
MAIN, PAYEE = "6222020000000001", "6217000000004321"


async def _admin(gw, method: str, path: str, json: object = None, token: str | None = ADMIN
                 ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url="http://gateway",
                                 headers=headers) as http:
        return await http.request(method, path, json=json)


async def _put(gw, author: str = "ops-1", reason: str = "incident 42", **document: object):
    return await _admin(gw, "PUT", "/admin/ops", {**document, "author": author, "reason": reason})


async def _customer(gw):
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())  # SMS reaches T2
    await gw.services.accounts.set("alice", {MAIN: AccountClass.I})
    return client


async def _transfer(client, amount: str):
    body = {"from_account": MAIN, "payee_account": PAYEE, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body,
                             headers={"Idempotency-Key": f"ops-{time.monotonic_ns()}"})


def _header(resp, name: str) -> str | None:
    return {k.lower(): v for k, v in resp.headers.items()}.get(name)


async def test_stopped_transfers_are_refused_before_any_reservation(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)
    until = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    put = await _put(gw, business={"transfer": {"enabled": False, "until": until,
                                                "message": "transfers resume at 16:00"}})
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1

    refused = await _transfer(client, "600.00")
    assert (refused.status, refused.error) == (503, "service_suspended")
    assert refused.json()["message"] == "transfers resume at 16:00"
    assert 3500 <= int(_header(refused, "retry-after")) <= 3600
    assert echo.requests == []
    spent = await gw.services.reservations.spent("alice", now=time.time())
    assert (spent.day, spent.year) == (0, 0)

    balance = await client.balance(MAIN)  # views stay available
    assert balance.status == 200
    assert [r["path"] for r in echo.requests] == [f"/v1/accounts/{MAIN}/balance"]

    await _put(gw, business={"transfer": True, "view_accounts": False})
    assert (await client.balance(MAIN)).error == "service_suspended"  # its own switch
    assert (await _transfer(client, "600.00")).status == 200


async def test_switching_back_on_reaches_a_second_gateway(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    console = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    serving = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(serving)
    assert (await _transfer(client, "100.00")).status == 200

    await _put(console, business={"transfer": False}, reason="stop outgoing transfers")
    for _ in range(30):  # the other gateway reads the settings again within 0.5 s
        refused = await _transfer(client, "100.00")
        if refused.status == 503:
            break
        await asyncio.sleep(0.1)
    assert (refused.status, refused.error) == (503, "service_suspended")
    assert _header(refused, "retry-after") is None  # no until time given
    forwarded = len(echo.requests)

    await _put(console, business={"transfer": True}, reason="incident over")
    for _ in range(30):
        resumed = await _transfer(client, "100.00")
        if resumed.status == 200:
            break
        await asyncio.sleep(0.1)
    assert resumed.status == 200
    assert len(echo.requests) == forwarded + 1  # refusals never reached the upstream


async def test_a_stopped_channel_refuses_every_call_of_it(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)  # the reference client registers as an android phone

    await _put(gw, channels={"mobile": False})
    for resp in (await client.balance(MAIN), await _transfer(client, "100.00")):
        assert (resp.status, resp.error) == (503, "channel_suspended")
        assert resp.json()["channel"] == "mobile"

    await _put(gw, channels={"mobile.ios": False})
    assert (await client.balance(MAIN)).status == 200
    await _put(gw, channels={"mobile.android": False})
    refused = await client.balance(MAIN)
    assert (refused.status, refused.error) == (503, "channel_suspended")
    assert refused.json()["channel"] == "mobile.android"
    assert len(echo.requests) == 1


async def test_a_lowered_tier_limit_and_challenge_ttl_apply_without_restart(gateway_factory,
                                                                          echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)
    assert (await _transfer(client, "600.00")).status == 200  # T1 (password at login) allows 1,000

    put = await _put(gw, parameters={"tiers": {"T1": {"per_transaction": "500.00", "daily": "500.00"}},
                                     "challenge_ttl": 60})
    assert put.status_code == 200, put.text
    assert put.json()["in_force"]["tiers"]["T1"] == {"per_transaction": "500.00", "daily": "500.00"}
    assert put.json()["in_force"]["tool_max_failures"] == 5  # the configured value
    challenged = await _transfer(client, "400.00")  # 600 already spent today: over T1's 500
    doc = challenged.json()
    assert (challenged.status, challenged.error) == (401, "insufficient_user_authentication")
    assert doc["required_tier"] == "T2" and doc["expires_in"] == 60
    shown = (await client.call("GET", "/auth/limits")).json()
    assert shown["tiers"]["T1"] == {"per_transaction": "500.00", "daily": "500.00"}

    await _put(gw, parameters={})  # back to the configured table
    assert (await _transfer(client, "300.00")).status == 200


async def test_a_lowered_tool_max_failures_locks_sooner(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)
    assert (await _put(gw, parameters={"tool_max_failures": 2})).status_code == 200
    challenge = (await _transfer(client, "20000.00")).json()  # applies the new version here
    cid = challenge["challenge_id"]
    assert (await stepup.begin_tool(client, cid, "sms_armor")).status == 200
    (latest, *_) = await DevOutbox.read(gw.services.redis)
    code = re.search(r"Code (\d{6})", str(latest["text"])).group(1)  # type: ignore[union-attr]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    errors = [(await stepup.complete_tool(client, cid, "sms_armor", {"code": wrong})).error
              for _ in range(2)]
    assert errors == ["sms_code_invalid"] * 2
    locked = await stepup.complete_tool(client, cid, "sms_armor", {"code": code})
    assert (locked.status, locked.error) == (429, "tool_locked")


async def _sms_sent(gw) -> tuple[str, str]:
    """The latest text in the dev outbox and the code in it."""
    (latest, *_) = await DevOutbox.read(gw.services.redis)
    text = str(latest["text"])
    return text, re.search(r"Code (\d+) approves", text).group(1)  # type: ignore[union-attr]


async def test_sms_code_length_and_lifetime_are_live_parameters(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)
    earlier = (await _transfer(client, "20000.00")).json()["challenge_id"]
    begun = await stepup.begin_tool(client, earlier, "sms_armor")
    assert (begun.json()["digits"], begun.json()["expires_in"]) == (6, 300)  # the configured values
    text, sent_before = await _sms_sent(gw)
    assert len(sent_before) == 6 and "expires in 5 minutes" in text
    body = {"from_account": MAIN, "payee_account": PAYEE, "amount": "20000.00", "currency": "CNY"}
    later = await client.call("POST", "/v1/transfers", body, headers={"Idempotency-Key": "ops-sms-later"})
    assert later.status == 401

    put = await _put(gw, parameters={"sms_code_digits": 8, "sms_code_ttl": 120})
    assert put.status_code == 200, put.text
    in_force = put.json()["in_force"]
    assert (in_force["sms_code_digits"], in_force["sms_code_ttl"]) == (8, 120)

    # The code sent before the change keeps its 6 digits until it expires.
    done = await stepup.complete_tool(client, earlier, "sms_armor", {"code": sent_before})
    assert done.status == 200 and done.json()["status"] == "approved", done.body
    # The next code has 8 digits and lives 2 minutes (no /v1 call in between).
    begun = await stepup.begin_tool(client, later.json()["challenge_id"], "sms_armor")
    assert begun.status == 200 and (begun.json()["digits"], begun.json()["expires_in"]) == (8, 120)
    text, code = await _sms_sent(gw)
    assert len(code) == 8 and "expires in 2 minutes" in text
    first_six = await stepup.complete_tool(client, later.json()["challenge_id"], "sms_armor",
                                           {"code": code[:6]})
    assert (first_six.status, first_six.error) == (401, "sms_code_invalid")
    done = await stepup.complete_tool(client, later.json()["challenge_id"], "sms_armor", {"code": code})
    assert done.status == 200 and done.json()["status"] == "approved", done.body
    replayed = await client.call("POST", "/v1/transfers", body, headers=stepup.with_approval(
        {"Idempotency-Key": "ops-sms-later"}, done.json()["approval_token"]))
    assert replayed.status == 200 and len(echo.requests) == 1

    for parameters, message in (
            ({"sms_code_digits": 5}, "must be a whole number in [6, 8]"),
            ({"sms_code_digits": 9}, "must be a whole number in [6, 8]"),
            ({"sms_code_ttl": 45}, "must not be shorter than the 60 s between SMS resends"),
            ({"sms_code_ttl": 3600}, "must be a whole number in [30, 1800]")):
        refused = await _put(gw, parameters=parameters)
        assert (refused.status_code, refused.json()["error"]) == (422, "ops_settings_invalid")
        (name,) = parameters
        assert refused.json()["problems"] == [{"field": f"parameters.{name}", "message": message}]
    current = (await _admin(gw, "GET", "/admin/ops")).json()
    assert current["version"] == 1 and current["document"]["parameters"] == {
        "sms_code_digits": 8, "sms_code_ttl": 120}
    assert gw.services.sms_policy.digits == 8


async def test_invalid_documents_are_refused_with_their_problems(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    resp = await _put(gw, business={"transfers": False, "pay": {"enabled": False,
                                                               "until": "2001-01-01T00:00:00+00:00"}},
                      channels={"web": False},
                      parameters={"tool_max_failures": 0, "session_ttl": 10,
                                  "tiers": {"T2": "800.00"}},
                      extras={})
    assert resp.status_code == 422
    doc = resp.json()
    assert doc["error"] == "ops_settings_invalid"
    fields = {p["field"] for p in doc["problems"]}
    assert {"business.transfers", "business.pay.until", "channels.web", "extras",
            "parameters.tool_max_failures", "parameters.session_ttl"} <= fields
    # A table that is not increasing by tier (T2 below T1's 1,000).
    resp = await _put(gw, parameters={"tiers": {"T2": {"per_transaction": "800.00", "daily": "800.00"}}})
    assert resp.status_code == 422
    assert [p["field"] for p in resp.json()["problems"]] == ["parameters.tiers.T2"]
    resp = await _put(gw, parameters={"tiers": {"T3": {"per_transaction": "60000.00"}}})
    assert resp.json()["problems"][0]["message"] == "per_transaction is above daily"
    current = (await _admin(gw, "GET", "/admin/ops")).json()
    assert current["version"] == 0 and current["history"] == []


async def test_rollback_publishes_an_earlier_version_and_everything_is_audited(gateway_factory,
                                                                             echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)
    assert (await _put(gw, "ops-1", "card fraud wave", business={"add_payee": False})).status_code == 200
    assert (await _put(gw, "ops-2", "wave over", business={})).status_code == 200
    stale = await _admin(gw, "PUT", "/admin/ops", {"business": {"transfer": False}, "author": "ops-3",
                                                    "reason": "late edit", "base_version": 1})
    assert (stale.status_code, stale.json()["error"]) == (409, "ops_version_conflict")

    back = await _admin(gw, "POST", "/admin/ops/rollback",
                        {"version": 1, "author": "ops-3", "reason": "second wave"})
    assert back.status_code == 200, back.text
    assert (back.json()["version"], back.json()["rollback_of"]) == (3, 1)
    payee = await client.call("POST", "/v1/payees", {"account": PAYEE, "name": "Bob"})
    assert (payee.status, payee.error) == (503, "service_suspended")

    missing = await _admin(gw, "POST", "/admin/ops/rollback",
                           {"version": 9, "author": "ops-3", "reason": "typo"})
    assert (missing.status_code, missing.json()["error"]) == (404, "ops_version_not_found")

    current = (await _admin(gw, "GET", "/admin/ops")).json()
    assert current["version"] == 3 and current["document"]["business"] == {"add_payee": False}
    assert [(h["version"], h["author"], h["rollback_of"]) for h in current["history"]] == [
        (3, "ops-3", 1), (2, "ops-2", None), (1, "ops-1", None)]
    audit = (await _admin(gw, "GET", "/admin/audit?count=10")).json()["entries"]
    ops = [(e["actor"], e["action"], e["details"]["version"]) for e in audit if e["action"].startswith("ops.")]
    assert ops == [("ops-3", "ops.rollback", 3), ("ops-2", "ops.publish", 2), ("ops-1", "ops.publish", 1)]
    assert audit[0]["details"]["reason"] == "second wave"
    assert (await _admin(gw, "GET", "/admin/audit/verify")).json()["ok"] is True


async def test_a_stored_version_whose_parameters_no_longer_fit_keeps_its_switches(
        gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    client = await _customer(gw)
    # As if written under a configuration whose T2 allowed less than today's T1.
    record = {"version": 1, "author": "ops-1", "reason": "old", "at": time.time(), "rollback_of": None,
              "document": {"business": {"transfer": False}, "channels": {},
                           "parameters": {"tiers": {"T2": "800.00"}}}}
    await gw.services.redis.set("{ops}:settings", orjson.dumps(record))
    await gw.services.redis.rpush("{ops}:history", orjson.dumps(record))
    assert (await _transfer(client, "100.00")).error == "service_suspended"
    shown = (await _admin(gw, "GET", "/admin/ops")).json()
    assert [p["field"] for p in shown["problems"]] == ["parameters.tiers.T2"]
    assert shown["in_force"]["tiers"]["T2"]["daily"] == "5000.00"  # the configured value


async def test_the_ops_api_needs_the_admin_token_and_a_named_author(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    body = {"business": {"transfer": False}, "author": "ops-1", "reason": "r"}
    for method, path in (("GET", "/admin/ops"), ("PUT", "/admin/ops"), ("POST", "/admin/ops/rollback")):
        none = await _admin(gw, method, path, body, token=None)
        wrong = await _admin(gw, method, path, body, token="not-the-admin-token")
        assert (none.status_code, none.json()["error"]) == (401, "admin_token_required")
        assert (wrong.status_code, wrong.json()["error"]) == (403, "admin_token_invalid")
    anonymous = await _admin(gw, "PUT", "/admin/ops", {"business": {"transfer": False}, "reason": "r"})
    assert (anonymous.status_code, anonymous.json()["error"]) == (400, "author_required")
    assert (await _admin(gw, "GET", "/admin/ops")).json()["version"] == 0


async def test_a_restarted_gateways_first_burst_already_sees_the_stop(gateway_factory, echo_upstream):
    """The first requests after a start must not pass while the settings are being read."""
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})
    assert (await _put(gw, business={"transfer": False})).status_code == 200
    fresh = await gateway_factory(upstream={"url": url}, admin={"token": ADMIN})  # a restart
    client = await _customer(fresh)
    results = await asyncio.gather(*(_transfer(client, "10.00") for _ in range(20)))
    assert {(r.status, r.error) for r in results} == {(503, "service_suspended")}
    assert echo.requests == []

"""The operations page: switches, limits and tool parameters, history and rollback, read by
everyone and changed only by admins; a change made in the console is in force for the
/v1 pipeline of every gateway sharing the Redis, and audited with the analyst as actor."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson

from gateway.audit_trail import LOG_KEY
from gateway.console.analysts import Role
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from tests.gateway.conftest import echo_upstream  # noqa: F401 - the fixture, re-used here

MAIN, PAYEE = "6222020000000001", "6217000000004321"


async def _audit(console) -> list[dict]:
    return [orjson.loads(raw) for raw in await console.gw.services.redis.lrange(LOG_KEY, 0, -1)]


async def _customer(gw):
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    await gw.services.accounts.set("alice", {MAIN: AccountClass.I})
    return client


async def _transfer(client, amount: str = "100.00"):
    body = {"from_account": MAIN, "payee_account": PAYEE, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body,
                             headers={"Idempotency-Key": f"console-ops-{time.monotonic_ns()}"})


async def _until(check, attempts: int = 30):
    """Call ``check`` until it is true (another gateway reads the settings within 0.5 s)."""
    for _ in range(attempts):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    return await check()


def _form(who, **fields: str) -> dict[str, str]:
    return {"csrf": who.csrf, **fields}


async def test_a_viewer_sees_the_settings_but_cannot_change_them(console):
    viewer = await console.analyst("vera", Role.VIEWER)
    approver = await console.analyst("dave", Role.APPROVER)
    page = await viewer.http.get("/console/ops")
    assert page.status_code == 200
    text = page.text
    assert 'href="/console/ops"' in text and 'id="read-only"' in text
    assert "Outgoing transfers" in text and "mobile.ios" in text
    assert 'id="tier-T1"' in text and "1,000.00" in text  # the configured table, in CNY
    assert "challenge_ttl" in text and "300s" in text
    assert "<form" not in text.split("</header>", 1)[1]  # no form besides sign-out

    for who in (viewer, approver):
        for path, body in (("/console/ops/switches", {"section": "business", "name": "transfer",
                                                      "state": "off", "reason": "r", "base_version": "0"}),
                           ("/console/ops/parameters", {"challenge_ttl": "60", "reason": "r",
                                                        "base_version": "0"}),
                           ("/console/ops/rollback", {"version": "1", "reason": "r", "base_version": "0"})):
            refused = await who.post(path, body)
            assert (refused.status_code, refused.json()["error"]) == (403, "console_role_forbidden")
            plain = await who.http.post(path, data=_form(who, **body))
            assert plain.status_code == 403
    assert await console.gw.services.switches.store.current() is None
    assert await _audit(console) == []


async def test_stopping_outgoing_transfers_reaches_the_pipeline_of_every_gateway(
        console, gateway_factory, echo_upstream):  # noqa: F811
    echo, url = echo_upstream
    serving = await gateway_factory(upstream={"url": url})  # another gateway on the same Redis
    client = await _customer(serving)
    assert (await _transfer(client)).status == 200

    root = await console.analyst("root", Role.ADMIN)
    stop = await root.http.post("/console/ops/switches", data=_form(
        root, section="business", name="transfer", state="off", base_version="0",
        message="Transfers resume at 16:00", reason="incident 4711: stop outgoing transfers"))
    assert stop.status_code == 303 and stop.headers["location"] == "/console/ops?published=1"

    refused = await _until(lambda: _refused(client))
    assert (refused.status, refused.error) == (503, "service_suspended")
    assert refused.json()["message"] == "Transfers resume at 16:00"
    forwarded = len(echo.requests)  # those that passed while the other gateway had not read it yet
    assert (await _transfer(client)).error == "service_suspended"
    assert len(echo.requests) == forwarded  # refusals are not forwarded
    assert (await client.balance(MAIN)).status == 200  # views stay available

    page = (await root.http.get(stop.headers["location"])).text
    assert "Version 1 published." in page
    assert "<strong>1</strong>" in page and "by root: incident 4711: stop outgoing transfers" in page
    row = page.split('id="switch-business-transfer"', 1)[1].split("</tr>", 1)[0]
    assert "STOPPED" in row and "Transfers resume at 16:00" in row and "Resume" in row
    [entry] = await _audit(console)
    assert (entry["actor"], entry["action"], entry["details"]["version"]) == ("root", "ops.publish", 1)
    assert entry["details"]["reason"] == "incident 4711: stop outgoing transfers"
    assert entry["details"]["document"]["business"] == {
        "transfer": {"enabled": False, "message": "Transfers resume at 16:00"}}

    resumed = await root.post("/console/ops/switches", {"section": "business", "name": "transfer",
                                                        "state": "on", "base_version": "1",
                                                        "reason": "incident over"})
    assert resumed.status_code == 200 and resumed.json()["version"] == 2
    assert (await _until(lambda: _passes(client))).status == 200
    record = await console.gw.services.switches.store.current()
    assert (record.version, record.author, record.document["business"]) == (2, "root", {})


async def _refused(client):
    resp = await _transfer(client)
    return resp if resp.status == 503 else None


async def _passes(client):
    resp = await _transfer(client)
    return resp if resp.status == 200 else None


async def test_a_stop_until_a_time_and_a_stopped_channel(console):
    root = await console.analyst("root", Role.ADMIN)
    past = await root.http.post("/console/ops/switches", data=_form(
        root, section="business", name="pay", state="off", base_version="0",
        until="2001-01-01T00:00:00+00:00", reason="payments provider down"))
    assert past.status_code == 422
    row = past.text.split('id="switch-business-pay"', 1)[1].split("</tr>", 1)[0]
    assert "is in the past" in row and 'value="2001-01-01T00:00:00+00:00"' in row
    assert 'value="payments provider down"' in row  # the reason as entered
    assert await console.gw.services.switches.store.current() is None

    until = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    ok = await root.post("/console/ops/switches", {"section": "business", "name": "pay", "state": "off",
                                                   "until": until, "base_version": "0",
                                                   "reason": "payments provider down"})
    assert ok.status_code == 200, ok.text
    ok = await root.post("/console/ops/switches", {"section": "channels", "name": "mobile.ios",
                                                   "state": "off", "base_version": "1",
                                                   "reason": "ios release broken"})
    assert ok.status_code == 200, ok.text
    record = await console.gw.services.switches.store.current()
    assert record.document["business"]["pay"]["enabled"] is False  # the first stop stays
    assert record.document["channels"] == {"mobile.ios": False}
    page = (await root.http.get("/console/ops")).text
    row = page.split('id="switch-channels-mobile.ios"', 1)[1].split("</tr>", 1)[0]
    assert "STOPPED" in row
    row = page.split('id="switch-business-pay"', 1)[1].split("</tr>", 1)[0]
    assert "STOPPED" in row and "UTC" in row  # the until time

    unknown = await root.post("/console/ops/switches", {"section": "business", "name": "transfers",
                                                        "state": "off", "base_version": "2",
                                                        "reason": "typo"})
    assert (unknown.status_code, unknown.json()["error"]) == (422, "ops_settings_invalid")
    assert unknown.json()["problems"][0]["field"] == "business.transfers"
    missing = await root.post("/console/ops/switches", {"section": "business", "name": "pay",
                                                        "state": "on", "base_version": "2"})
    assert (missing.status_code, missing.json()["error"]) == (400, "reason_required")
    assert [e["action"] for e in await _audit(console)] == ["ops.publish", "ops.publish"]


async def test_invalid_parameters_show_their_problems_and_write_nothing(console):
    root = await console.analyst("root", Role.ADMIN)
    fields = {"tiers.T2.per_transaction": "800.00", "tiers.T2.daily": "800.00",
              "tool_max_failures": "0", "challenge_ttl": "soon", "reason": "tighten after incident",
              "base_version": "0"}
    refused = await root.http.post("/console/ops/parameters", data=_form(root, **fields))
    assert refused.status_code == 422
    page = refused.text
    assert "Not saved" in page and "ops_settings_invalid" in page
    tier = page.split('id="tier-T2"', 1)[1].split('id="tier-T3"', 1)[0]
    assert "allows less than T1 (1000.00 / 1000.00)" in tier and 'value="800.00"' in tier
    tool = page.split('id="param-tool_max_failures"', 1)[1].split("</tr>", 1)[0]
    assert "must be a whole number in [1, 100]" in tool and 'value="0"' in tool
    ttl = page.split('id="param-challenge_ttl"', 1)[1].split("</tr>", 1)[0]
    assert "must be a whole number in [30, 1800]" in ttl and 'value="soon"' in ttl
    assert 'value="tighten after incident"' in page
    as_json = await root.post("/console/ops/parameters", fields)
    assert (as_json.status_code, as_json.json()["error"]) == (422, "ops_settings_invalid")
    assert {p["field"] for p in as_json.json()["problems"]} == {
        "parameters.tiers.T2", "parameters.tool_max_failures", "parameters.challenge_ttl"}
    assert await console.gw.services.switches.store.current() is None
    assert await _audit(console) == []

    ok = await root.http.post("/console/ops/parameters", data=_form(
        root, **{"tiers.T1.per_transaction": "500.00", "tiers.T1.daily": "1,000.00",
                 "challenge_ttl": "60", "reason": "tighten after incident", "base_version": "0"}))
    assert ok.status_code == 303
    svc = console.gw.services
    record = await svc.switches.store.current()
    assert record.document["parameters"] == {
        "tiers": {"T1": {"per_transaction": "500.00", "daily": "1000.00"}}, "challenge_ttl": 60}
    page = (await root.http.get("/console/ops")).text
    tier = page.split('id="tier-T1"', 1)[1].split("</tr>", 1)[0]
    assert 'class="overridden"' in page and "500.00" in tier and 'value="500.00"' in tier
    ttl = page.split('id="param-challenge_ttl"', 1)[1].split("</tr>", 1)[0]
    assert "60s" in ttl and "300s" in ttl  # in force and the configured value
    settings = await svc.switches.current(time.time())
    assert settings.parameters.challenge_ttl == 60


async def test_sms_code_length_and_lifetime_on_the_page(console):
    root = await console.analyst("root", Role.ADMIN)
    page = (await root.http.get("/console/ops")).text
    digits = page.split('id="param-sms_code_digits"', 1)[1].split("</tr>", 1)[0]
    assert "Digits of an SMS code" in digits and "6..8" in digits and 'placeholder="6"' in digits
    ttl = page.split('id="param-sms_code_ttl"', 1)[1].split("</tr>", 1)[0]
    assert "SMS code lifetime" in ttl and "30..1800s" in ttl and "300s" in ttl

    short = await root.http.post("/console/ops/parameters", data=_form(
        root, sms_code_digits="5", sms_code_ttl="45", reason="longer codes", base_version="0"))
    assert short.status_code == 422
    digits = short.text.split('id="param-sms_code_digits"', 1)[1].split("</tr>", 1)[0]
    assert "must be a whole number in [6, 8]" in digits and 'value="5"' in digits
    ttl = short.text.split('id="param-sms_code_ttl"', 1)[1].split("</tr>", 1)[0]
    assert "not be shorter than the 60 s between SMS resends" in ttl and 'value="45"' in ttl
    assert await console.gw.services.switches.store.current() is None

    ok = await root.http.post("/console/ops/parameters", data=_form(
        root, sms_code_digits="8", sms_code_ttl="120", reason="longer codes", base_version="0"))
    assert ok.status_code == 303
    record = await console.gw.services.switches.store.current()
    assert record.document["parameters"] == {"sms_code_digits": 8, "sms_code_ttl": 120}
    page = (await root.http.get("/console/ops")).text
    digits = page.split('id="param-sms_code_digits"', 1)[1].split("</tr>", 1)[0]
    assert digits.startswith(' class="overridden"') and "8<" in digits and 'value="8"' in digits


async def test_a_change_made_meanwhile_is_not_overwritten(console):
    root = await console.analyst("root", Role.ADMIN)
    other = await console.analyst("olga", Role.ADMIN)
    assert (await other.post("/console/ops/switches", {
        "section": "business", "name": "add_payee", "state": "off", "base_version": "0",
        "reason": "card fraud wave"})).status_code == 200
    # root's page still shows version 0
    stale = await root.http.post("/console/ops/parameters", data=_form(
        root, tool_max_failures="3", reason="fewer attempts", base_version="0"))
    assert stale.status_code == 409
    page = stale.text
    assert "ops_version_conflict" in page and "This page now shows version 1" in page
    assert 'value="3"' not in page  # typed over the old version: dropped, to be made again
    as_json = await root.post("/console/ops/rollback", {"version": "1", "reason": "r",
                                                        "base_version": "0"})
    assert (as_json.status_code, as_json.json()["error"]) == (409, "ops_version_conflict")
    missing = await root.post("/console/ops/parameters", {"tool_max_failures": "3", "reason": "r"})
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_base_version")
    record = await console.gw.services.switches.store.current()
    assert (record.version, record.author) == (1, "olga")
    assert [e["actor"] for e in await _audit(console)] == ["olga"]


async def test_rolling_back_to_an_earlier_version(console):
    root = await console.analyst("root", Role.ADMIN)
    client = await _customer(console.gw)
    for body in ({"section": "business", "name": "add_payee", "state": "off", "base_version": "0",
                  "reason": "card fraud wave"},
                 {"section": "business", "name": "add_payee", "state": "on", "base_version": "1",
                  "reason": "wave over"}):
        assert (await root.post("/console/ops/switches", body)).status_code == 200
    page = (await root.http.get("/console/ops")).text
    assert "Roll back to version 1" in page and "Roll back to version 2" not in page  # 2 is in force

    back = await root.http.post("/console/ops/rollback", data=_form(
        root, version="1", base_version="2", reason="second wave"))
    assert back.status_code == 303 and back.headers["location"] == "/console/ops?published=3"
    payee = await client.call("POST", "/v1/payees", {"account": PAYEE, "name": "Bob"})
    assert (payee.status, payee.error) == (503, "service_suspended")
    page = (await root.http.get("/console/ops")).text
    assert "(a rollback to version 1)" in page and "second wave" in page
    history = page.split('id="ops-history"', 1)[1]
    assert history.index('id="ops-v3"') < history.index('id="ops-v2"') < history.index('id="ops-v1"')
    assert '"add_payee": false' in history  # each version's document

    unknown = await root.post("/console/ops/rollback", {"version": "9", "reason": "typo",
                                                        "base_version": "3"})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "ops_version_not_found")
    assert [(e["actor"], e["action"], e["details"]["version"]) for e in await _audit(console)] == [
        ("root", "ops.publish", 1), ("root", "ops.publish", 2), ("root", "ops.rollback", 3)]
    assert (await _audit(console))[-1]["details"]["rollback_of"] == 1

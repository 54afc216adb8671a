"""Analysts through the admin API: publish and roll back rules, label decisions."""

from __future__ import annotations

import asyncio
import time

import httpx

from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from risk_engine import LABEL_STREAM

ADMIN = "admin-token-for-the-risk-tests-0123"
SOURCE = "6222020000000001"


class _Resp:
    def __init__(self, r: httpx.Response) -> None:
        self.status, self._r = r.status_code, r

    def json(self):  # noqa: ANN201
        return self._r.json()

    @property
    def error(self) -> str | None:
        return self._r.json().get("error")

    @property
    def body(self) -> bytes:
        return self._r.content


async def _admin(gw, method: str, path: str, json: object = None) -> _Resp:
    """The bank's back office: a plain HTTP client with the admin token."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url="http://gateway",
                                 headers={"Authorization": f"Bearer {ADMIN}"}) as http:
        return _Resp(await http.request(method, path, json=json))


async def test_invalid_rule_set_is_refused_with_positions_and_nothing_changes(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    before = (await _admin(gw, "GET", "/admin/rules")).json()["active_version"]
    bad = {"author": "analyst-1", "reason": "typo test", "rules": [
        {"id": "r1", "expression": "amount_cny >= 'a lot'", "effect": "block"},
        {"id": "r2", "expression": "amout_cny > 5", "effect": "block"},
    ]}
    resp = await _admin(gw, "POST", "/admin/rules", bad)
    doc = resp.json()
    assert (resp.status, doc["error"]) == (422, "rule_set_invalid")
    kinds = {p["rule"]: p for p in doc["problems"]}
    assert set(kinds) == {"r1", "r2"}
    assert kinds["r2"]["kind"] == "unknown_name" and kinds["r2"]["column"] > 0
    assert (await _admin(gw, "GET", "/admin/rules")).json()["active_version"] == before


async def test_publish_then_roll_back_is_audited(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    rules = {"author": "analyst-1", "reason": "night rule", "rules": [
        {"id": "night_big", "expression": "moves_money && night && amount_cny > 1000",
         "effect": "add_score", "score": 0.3, "description": "night transfer"}]}
    published = await _admin(gw, "POST", "/admin/rules", rules)
    assert published.status == 201
    version = published.json()["version"]
    back = await _admin(gw, "POST", "/admin/rules/rollback",
                        {"version": version - 1, "author": "analyst-2", "reason": "too noisy"})
    assert back.status == 200, back.body
    doc = (await _admin(gw, "GET", "/admin/rules")).json()
    assert doc["active_version"] == version - 1
    assert [(e["action"], e["author"]) for e in doc["audit"][:2]] == [
        ("rollback", "analyst-2"), ("publish", "analyst-1")]


async def test_analyst_label_is_queued_for_the_learner(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(admin={"token": ADMIN}, upstream={"url": url})
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    await gw.services.accounts.set("alice", {SOURCE: AccountClass.I})
    body = {"from_account": SOURCE, "payee_account": "6217000000004321", "amount": "50.00",
            "currency": "CNY"}
    resp = await client.call("POST", "/v1/transfers", body, headers={"Idempotency-Key": "k1"})
    decision_id = resp.headers["x-riskgate-decision"]
    while gw.services.background:
        await asyncio.gather(*list(gw.services.background))
    recent = (await _admin(gw, "GET", "/admin/decisions?count=5")).json()["decisions"]
    assert recent[0]["decision_id"] == decision_id and recent[0]["outcome"] == "allowed"
    labelled = await _admin(gw, "POST", "/admin/labels",
                            {"decision_id": decision_id, "fraud": True, "author": "analyst-1"})
    assert labelled.status == 202 and labelled.json()["status"] == "queued"
    assert await gw.services.redis.xlen(LABEL_STREAM) == 1
    unknown = await _admin(gw, "POST", "/admin/labels",
                           {"decision_id": "nope", "fraud": True, "author": "analyst-1"})
    assert (unknown.status, unknown.error) == (404, "decision_not_found")
    anonymous = await client.call("POST", "/admin/labels", {"decision_id": decision_id, "fraud": False})
    assert anonymous.status in (401, 403)

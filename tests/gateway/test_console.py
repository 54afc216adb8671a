"""The analyst console back end: maker-checker rule publishing with a backtest,
the hash-chained audit trail, and the filtered decisions feed."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson

from gateway.audit_trail import LOG_KEY, entry_hash
from risk_engine import (
    DecisionEvent,
    LabelSource,
    record_decisions,
    submit_label,
)
from tests.console.decisions import NOW, decide, facts

ADMIN = "admin-token-for-the-console-tests-01"
SOURCE = "6222020000000001"
CATCH_DISSIMILAR = [{"id": "dissimilar_device_money", "effect": "min_level", "level": "medium",
                     "expression": "moves_money && device_similarity < 0.5 && amount_cny >= 2000",
                     "description": "money from a device unlike the user's own"}]


async def _admin(gw, method: str, path: str, json: object = None, token: str | None = ADMIN
                 ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url="http://gateway",
                                 headers=headers) as http:
        return await http.request(method, path, json=json)


async def _history_with_missed_fraud(gw) -> None:
    """20 ordinary labelled transfers and 3 frauds from unfamiliar devices the
    current rules let through, all labelled."""
    redis = gw.services.redis
    for i in range(20):
        await decide(gw, facts(user_id=f"u{i}"), NOW - 86400 * 3 + i, f"warm{i}")
    for i in range(20):
        await decide(gw, facts(user_id=f"u{i}"), NOW + i, f"ok{i}")
        await submit_label(redis, f"ok{i}", fraud=False, source=LabelSource.ANALYST, now=NOW + 99)
    for i in range(3):
        await decide(gw, facts(user_id=f"v{i}", amount_fen=400_000, device_similarity=0.2),
                      NOW + 50 + i, f"fraud{i}")
        await submit_label(redis, f"fraud{i}", fraud=True, source="upstream_report", now=NOW + 99)


async def _propose(gw, author: str = "analyst-1", rules=None, reason: str = "catch takeovers"):
    return await _admin(gw, "POST", "/admin/rule-proposals",
                        {"author": author, "reason": reason, "rules": rules or CATCH_DISSIMILAR})


async def _active_version(gw) -> int | None:
    return (await _admin(gw, "GET", "/admin/rules")).json()["active_version"]


async def test_rule_is_published_only_when_another_person_approves(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    await _history_with_missed_fraud(gw)
    before = await _active_version(gw)

    proposed = await _propose(gw)
    assert proposed.status_code == 201, proposed.text
    p = proposed.json()
    assert p["status"] == "pending" and p["base_version"] == before
    bt = p["backtest"]
    assert bt["changed_count"] == 3
    assert {c["decision_id"] for c in bt["changed"]} == {"fraud0", "fraud1", "fraud2"}
    assert all(c["before"] == "allowed" and c["after"] == "step_up" and c["fraud"] for c in bt["changed"])
    assert bt["recorded"]["recall"] == 0.0 and bt["candidate"]["recall"] == 1.0
    assert bt["candidate"]["precision"] == 1.0
    assert bt["candidate"]["step_up_rate"] > bt["recorded"]["step_up_rate"]
    assert await _active_version(gw) == before  # a proposal changes nothing

    # the author approving their own rule (however they spell their name) is refused
    own = await _admin(gw, "POST", f"/admin/rule-proposals/{p['id']}/approve", {"approver": " Analyst-1 "})
    assert (own.status_code, own.json()["error"]) == (403, "maker_checker_same_person")
    assert await _active_version(gw) == before
    listed = (await _admin(gw, "GET", "/admin/rule-proposals?status=pending")).json()["proposals"]
    assert [x["id"] for x in listed] == [p["id"]]

    approved = await _admin(gw, "POST", f"/admin/rule-proposals/{p['id']}/approve", {"approver": "analyst-2"})
    assert approved.status_code == 200, approved.text
    doc = approved.json()
    assert (doc["status"], doc["author"], doc["decided_by"]) == ("approved", "analyst-1", "analyst-2")
    rules = (await _admin(gw, "GET", "/admin/rules")).json()
    assert rules["active_version"] == doc["published_version"] != before
    assert [r["id"] for r in rules["rules"]] == ["dissimilar_device_money"]
    last = rules["audit"][0]
    assert last["author"] == "analyst-1" and "approved by analyst-2" in last["reason"]

    again = await _admin(gw, "POST", f"/admin/rule-proposals/{p['id']}/approve", {"approver": "analyst-3"})
    assert (again.status_code, again.json()["error"]) == (409, "proposal_not_pending")

    # the published rule is live: it hits a fresh takeover attempt
    _features, a = await gw.services.risk.assess(
        facts(user_id="v9", amount_fen=400_000, device_similarity=0.2), time.time() + 2)
    assert "dissimilar_device_money" in a.rules_hit

    trail = (await _admin(gw, "GET", "/admin/audit")).json()["entries"]
    assert [(e["action"], e["actor"]) for e in reversed(trail)] == [
        ("rule_proposal.create", "analyst-1"), ("rule_proposal.approve_refused", "Analyst-1"),
        ("rule_proposal.approve", "analyst-2")]
    assert trail[0]["details"]["published_version"] == doc["published_version"]


async def test_invalid_proposal_is_refused_with_positions_and_nothing_is_stored(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    bad = [{"id": "r1", "expression": "amout_cny > 5", "effect": "block"},
           {"id": "r2", "expression": "amount_cny >= 'a lot'", "effect": "block"}]
    resp = await _propose(gw, rules=bad)
    assert (resp.status_code, resp.json()["error"]) == (422, "rule_set_invalid")
    problems = {p["rule"]: p for p in resp.json()["problems"]}
    assert set(problems) == {"r1", "r2"} and problems["r1"]["kind"] == "unknown_name"
    assert problems["r1"]["column"] > 0
    assert (await _admin(gw, "GET", "/admin/rule-proposals")).json()["proposals"] == []
    assert (await _admin(gw, "GET", "/admin/audit")).json()["entries"] == []
    missing = await _admin(gw, "POST", "/admin/rule-proposals", {"author": "a", "rules": CATCH_DISSIMILAR})
    assert (missing.status_code, missing.json()["error"]) == (400, "reason_required")


async def test_stale_proposal_cannot_undo_a_later_publish_and_rejection_is_final(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    first = (await _propose(gw, "analyst-1")).json()
    other = [{"id": "night_tag", "expression": "night", "effect": "tag", "tag": "night"}]
    second = (await _propose(gw, "analyst-3", rules=other)).json()
    ok = await _admin(gw, "POST", f"/admin/rule-proposals/{first['id']}/approve", {"approver": "analyst-2"})
    assert ok.status_code == 200
    stale = await _admin(gw, "POST", f"/admin/rule-proposals/{second['id']}/approve", {"approver": "analyst-2"})
    assert (stale.status_code, stale.json()["error"]) == (409, "proposal_stale")
    assert (await _active_version(gw)) == ok.json()["published_version"]

    rejected = await _admin(gw, "POST", f"/admin/rule-proposals/{second['id']}/reject",
                            {"reviewer": "analyst-2", "reason": "based on an old rule set"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    late = await _admin(gw, "POST", f"/admin/rule-proposals/{second['id']}/approve", {"approver": "analyst-4"})
    assert (late.status_code, late.json()["error"]) == (409, "proposal_not_pending")
    unknown = await _admin(gw, "POST", "/admin/rule-proposals/p_nope/approve", {"approver": "analyst-2"})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "proposal_not_found")


async def test_two_approvers_at_once_publish_once(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    p = (await _propose(gw)).json()
    before = len(await gw.services.risk.rule_store.audit(100))
    results = await asyncio.gather(*(
        _admin(gw, "POST", f"/admin/rule-proposals/{p['id']}/approve", {"approver": f"checker-{i}"})
        for i in range(5)))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409]
    assert len(await gw.services.risk.rule_store.audit(100)) == before + 1


async def _some_console_changes(gw) -> None:
    await decide(gw, facts(), NOW, "d1")
    p = (await _propose(gw)).json()
    await _admin(gw, "POST", f"/admin/rule-proposals/{p['id']}/reject",
                 {"reviewer": "analyst-2", "reason": "too broad"})
    label = await _admin(gw, "POST", "/admin/console/labels",
                         {"decision_id": "d1", "fraud": True, "author": "analyst-2"})
    assert label.status_code == 202 and label.json()["status"] == "queued"
    p2 = (await _propose(gw, reason="second try")).json()
    await _admin(gw, "POST", f"/admin/rule-proposals/{p2['id']}/approve", {"approver": "analyst-2"})


async def test_audit_chain_verifies_and_names_the_tampered_entry(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    redis = gw.services.redis
    await _some_console_changes(gw)
    good = (await _admin(gw, "GET", "/admin/audit/verify")).json()
    assert good == {"ok": True, "entries": 5, "head_hash": good["head_hash"],
                    "first_broken_seq": None, "problem": ""}

    # rewrite who rejected the proposal (entry 2)
    original = await redis.lindex(LOG_KEY, 1)
    doc = orjson.loads(original)
    assert doc["action"] == "rule_proposal.reject"
    doc["actor"] = "analyst-1"
    await redis.lset(LOG_KEY, 1, orjson.dumps(doc))
    broken = (await _admin(gw, "GET", "/admin/audit/verify")).json()
    assert (broken["ok"], broken["first_broken_seq"], broken["entries"]) == (False, 2, 1)
    assert "hash" in broken["problem"]

    # a forger who also recomputes that entry's hash breaks the link to entry 3
    doc["hash"] = entry_hash(doc["seq"], doc["at"], doc["actor"], doc["action"], doc["details"],
                             doc["prev_hash"])
    await redis.lset(LOG_KEY, 1, orjson.dumps(doc))
    broken = (await _admin(gw, "GET", "/admin/audit/verify")).json()
    assert (broken["ok"], broken["first_broken_seq"]) == (False, 3)
    assert "prev_hash" in broken["problem"]

    # restoring the entry restores the chain; dropping the newest entry is caught
    await redis.lset(LOG_KEY, 1, original)
    assert (await _admin(gw, "GET", "/admin/audit/verify")).json()["ok"] is True
    await redis.rpop(LOG_KEY)
    broken = (await _admin(gw, "GET", "/admin/audit/verify")).json()
    assert (broken["ok"], broken["first_broken_seq"]) == (False, 5)


async def test_audit_appends_from_many_requests_form_one_chain(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    await asyncio.gather(*(_propose(gw, author=f"analyst-{i}") for i in range(8)))
    result = (await _admin(gw, "GET", "/admin/audit/verify")).json()
    assert result["ok"] is True and result["entries"] == 8
    page = (await _admin(gw, "GET", "/admin/audit?count=3&before=8")).json()["entries"]
    assert [e["seq"] for e in page] == [7, 6, 5]
    assert all(e["prev_hash"] == nxt["hash"] for e, nxt in zip(page, page[1:], strict=False))


def _event(i: int, *, user: str, outcome: str, level: str, rules: tuple[str, ...] = ()) -> DecisionEvent:
    return DecisionEvent(f"e{i}", NOW + i, user, "transfer", 10_000 + i, {"amount_cny": 100.0 + i},
                         0.1, level, rules, 3, 1, outcome, moves_money=True)


async def test_decisions_feed_filters_newest_first_and_pages(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    events = []
    for i in range(1200):
        if i % 100 == 7:
            events.append(_event(i, user="alice", outcome="step_up", level="high", rules=("night_big",)))
        elif i % 10 == 3:
            events.append(_event(i, user="alice", outcome="step_up", level="medium"))
        else:
            events.append(_event(i, user=f"u{i % 7}", outcome="allowed", level="low"))
    await record_decisions(gw.services.redis, events)

    feed = await _admin(gw, "GET", "/admin/console/decisions?outcome=step_up&level=high&user=alice&count=5")
    doc = feed.json()
    assert feed.status_code == 200
    assert [d["decision_id"] for d in doc["decisions"]] == ["e1107", "e1007", "e907", "e807", "e707"]
    assert all(d["rules_hit"] == ["night_big"] for d in doc["decisions"])
    rest = (await _admin(gw, "GET", "/admin/console/decisions?outcome=step_up&level=high&user=alice"
                         f"&count=50&before={doc['next_before']}")).json()
    assert [d["decision_id"] for d in rest["decisions"]] == [f"e{i * 100 + 7}" for i in range(6, -1, -1)]
    assert rest["next_before"] is None
    by_rule = (await _admin(gw, "GET", "/admin/console/decisions?rule=night_big&count=500")).json()
    assert len(by_rule["decisions"]) == 12
    none = (await _admin(gw, "GET", "/admin/console/decisions?user=nobody")).json()
    assert none["decisions"] == [] and none["scanned"] == 1200 and none["next_before"] is None

    bad = await _admin(gw, "GET", "/admin/console/decisions?outcome=maybe")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_outcome")
    bad = await _admin(gw, "GET", "/admin/console/decisions?level=severe")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_level")
    bad = await _admin(gw, "GET", "/admin/console/decisions?before=x;y")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_cursor")


async def test_a_real_transfer_shows_in_the_feed_and_is_labelled_with_an_audit_record(
        gateway_factory, echo_upstream):
    from gateway.stepup_sms import set_reserved_phone
    from limits.account_classes import AccountClass

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
    feed = (await _admin(gw, "GET", "/admin/console/decisions?user=alice&outcome=allowed")).json()
    assert [d["decision_id"] for d in feed["decisions"]] == [decision_id]
    labelled = await _admin(gw, "POST", "/admin/console/labels",
                            {"decision_id": decision_id, "fraud": False, "author": "analyst-1"})
    assert labelled.status_code == 202
    entry = (await _admin(gw, "GET", "/admin/audit")).json()["entries"][0]
    assert (entry["seq"], entry["actor"], entry["action"]) == (1, "analyst-1", "decision.label")
    assert entry["details"] == {"decision_id": decision_id, "fraud": False, "status": "queued"}


async def test_console_routes_need_the_admin_token(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    calls = [("POST", "/admin/rule-proposals"), ("GET", "/admin/rule-proposals"),
             ("GET", "/admin/rule-proposals/p_x"), ("POST", "/admin/rule-proposals/p_x/approve"),
             ("POST", "/admin/rule-proposals/p_x/reject"), ("POST", "/admin/console/labels"),
             ("GET", "/admin/console/decisions"), ("GET", "/admin/audit"),
             ("GET", "/admin/audit/verify")]
    for method, path in calls:
        anonymous = await _admin(gw, method, path, {}, token=None)
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "admin_token_required"), path
        wrong = await _admin(gw, method, path, {}, token="not-the-admin-token")
        assert (wrong.status_code, wrong.json()["error"]) == (403, "admin_token_invalid"), path
    assert await gw.services.redis.exists(LOG_KEY) == 0


async def _cli_verify(gw) -> tuple[int, str]:
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({"RISKGATE_REDIS_URL": gw.config.redis.url,
                "RISKGATE_SERVER_DATA_DIR": str(gw.config.data_path)})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-level", "warning", "audit", "verify", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode() + err.decode()


async def test_riskgate_audit_verify_names_the_first_broken_entry(gateway_factory):
    gw = await gateway_factory(admin={"token": ADMIN})
    await _some_console_changes(gw)
    code, out = await _cli_verify(gw)
    assert code == 0 and "audit trail intact: 5 entries" in out

    doc = orjson.loads(await gw.services.redis.lindex(LOG_KEY, 2))
    doc["details"] = {"tampered": True}
    await gw.services.redis.lset(LOG_KEY, 2, orjson.dumps(doc))
    code, out = await _cli_verify(gw)
    assert code == 1 and "BROKEN at entry 3" in out


async def test_riskgate_audit_verify_checks_every_recorded_decision(gateway_factory):
    from risk_engine import DECISION_STREAM, DecisionEvent, record_decisions

    gw = await gateway_factory(admin={"token": ADMIN})
    events = [DecisionEvent(f"d{i}", 1_790_000_000.0 + i, "alice", "transfer", 100_00, {}, 0.1, "low",
                            (), 2, 2, "allowed") for i in range(3)]
    ids = await record_decisions(gw.services.redis, events)
    code, out = await _cli_verify(gw)
    assert code == 0 and "decision chains intact: 3 decisions in 1 chain(s)" in out, out
    await gw.services.redis.xdel(DECISION_STREAM, ids[1])
    code, out = await _cli_verify(gw)
    assert code == 1 and f"BROKEN at decision d2 (stream entry {ids[2]})" in out, out

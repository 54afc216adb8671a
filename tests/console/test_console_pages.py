"""Console pages over httpx: the feed, labels and the review queue, rule editing with
validation, backtest and maker-checker publishing, and the audit trail page."""

from __future__ import annotations

import json
import re
import time

import orjson

from gateway.audit_trail import LOG_KEY
from gateway.console.analysts import Role
from risk_engine import RuleSet, read_labels
from tests.console.decisions import NOW, TAKEOVER_RULE, decide, facts, history


async def _audit(console) -> list[dict]:
    return [orjson.loads(raw) for raw in await console.gw.services.redis.lrange(LOG_KEY, 0, -1)]


async def test_feed_detail_and_labels(console):
    gw = console.gw
    await history(gw)
    alice = await console.analyst("alice", Role.ANALYST)
    page = (await alice.http.get("/console/decisions")).text
    assert all(f'href="/console/decisions/{d}"' in page for d in ("ok0", "ok5", "takeover2"))
    assert page.index("takeover2") < page.index("ok0")  # newest first
    one = (await alice.http.get("/console/decisions?user=v1&outcome=allowed")).text
    assert "takeover1" in one and "takeover0" not in one and "ok0" not in one
    rows = await alice.http.get("/console/decisions?partial=1&user=v1")
    assert rows.text.lstrip().startswith("<tr") and "takeover1" in rows.text
    bad = await alice.http.get("/console/decisions?outcome=maybe")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_outcome")

    detail = (await alice.http.get("/console/decisions/takeover1")).text
    assert "device_similarity" in detail and "not labelled" in detail and "4,000.00 CNY" in detail
    missing = await alice.http.get("/console/decisions/nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "decision_not_found")

    # a plain HTML form post (no script) works too and is redirected back
    r = await alice.http.post("/console/decisions/takeover1/label",
                              data={"csrf": alice.csrf, "verdict": "fraud", "author": "mallory"})
    assert r.status_code == 303 and r.headers["location"] == "/console/decisions/takeover1"
    assert "fraud (alice)" in (await alice.http.get("/console/decisions/takeover1")).text
    label = (await read_labels(gw.services.redis, ["takeover1"]))["takeover1"]
    assert label.fraud and label.author == "alice" and label.source.value == "analyst"
    r = await alice.post("/console/decisions/ok1/label", {"verdict": "legitimate"})
    assert r.status_code == 200 and r.json()["status"] == "queued"
    r = await alice.post("/console/decisions/ok2/label", {"verdict": "perhaps"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_verdict")
    r = await alice.post("/console/decisions/nope/label", {"verdict": "unsure"})
    assert (r.status_code, r.json()["error"]) == (404, "decision_not_found")
    assert [(e["actor"], e["action"], e["details"]["decision_id"]) for e in await _audit(console)] == [
        ("alice", "decision.label", "takeover1"), ("alice", "decision.label", "ok1")]


async def test_review_queue_holds_medium_and_high_until_labelled(console):
    gw = console.gw
    await gw.services.risk.rule_store.publish(RuleSet.from_document({"rules": [TAKEOVER_RULE]}),
                                              author="tests", reason="flag takeovers", now=NOW - 10)
    await history(gw)
    bob = await console.analyst("bob", Role.ANALYST)
    queue = (await bob.http.get("/console/review")).text
    assert all(f"takeover{i}" in queue for i in range(3)) and "ok0" not in queue
    await bob.post("/console/decisions/takeover0/label", {"verdict": "fraud"})
    await bob.post("/console/decisions/takeover1/label", {"verdict": "unsure"})
    queue = (await bob.http.get("/console/review")).text
    assert "takeover0" not in queue and "takeover2" in queue
    assert re.search(r"takeover1.*unsure \(bob\)", queue, re.S)
    assert (await read_labels(gw.services.redis, ["takeover1"])) == {}  # the learner sees nothing
    assert [e["action"] for e in await _audit(console)] == ["decision.label", "decision.label_unsure"]


async def test_rule_editor_validates_backtests_and_proposes(console):
    gw = console.gw
    await history(gw)
    carol = await console.analyst("carol", Role.RULE_AUTHOR)
    editor = (await carol.http.get("/console/rules/edit")).text
    assert 'id="rules-text"' in editor and "tests_quiet" in editor

    broken = dict(TAKEOVER_RULE, expression="moves_money && device_similarity < < 0.5")
    text = json.dumps([broken], indent=2)
    checked = (await carol.post("/console/rules/validate", {"text": text})).json()
    assert not checked["ok"]
    [problem] = checked["problems"]
    assert problem["rule"] == "dissimilar_device_money" and problem["kind"] == "syntax"
    # the position points into the text at the offending token
    line = text.splitlines()[problem["text_line"] - 1]
    assert line[problem["text_column"] - 1:].startswith("< 0.5")
    unparsable = (await carol.post("/console/rules/validate", {"text": "[{\"id\": 1,"})).json()
    assert unparsable["problems"][0]["kind"] == "json" and unparsable["problems"][0]["text_line"] == 1

    refused = await carol.post("/console/rules/backtest", {"text": text})
    assert (refused.status_code, refused.json()["error"]) == (422, "rule_set_invalid")
    fixed = json.dumps([TAKEOVER_RULE], indent=2)
    assert (await carol.post("/console/rules/validate", {"text": fixed})).json() == {
        "ok": True, "problems": [], "rules": 1}
    tested = (await carol.post("/console/rules/backtest", {"text": fixed})).json()
    assert tested["backtest"]["changed_count"] == 3
    assert "<strong>3</strong> decision(s) would change" in tested["html"]
    assert await _audit(console) == []  # validating and backtesting change nothing

    proposed = await carol.post("/console/rules/proposals", {"text": fixed, "reason": "catch takeovers",
                                                             "author": "mallory"})
    assert proposed.status_code == 200, proposed.text
    page = (await carol.http.get(proposed.json()["redirect"])).text
    assert "catch takeovers" in page and "takeover0" in page and "approve-button" not in page
    [entry] = await _audit(console)
    assert (entry["actor"], entry["action"]) == ("carol", "rule_proposal.create")


async def test_maker_checker_publishes_only_with_a_second_analyst(console):
    gw = console.gw
    await history(gw)
    root = await console.analyst("root", Role.ADMIN)
    dave = await console.analyst("dave", Role.APPROVER)
    before = await gw.services.risk.rule_store.active_version()
    pid = (await root.post("/console/rules/proposals", {
        "text": json.dumps([TAKEOVER_RULE]), "reason": "catch takeovers"})).json()["proposal_id"]

    own = await root.post(f"/console/rules/proposals/{pid}/approve", {"approver": "dave"})
    assert (own.status_code, own.json()["error"]) == (403, "maker_checker_same_person")
    assert await gw.services.risk.rule_store.active_version() == before

    ok = await dave.post(f"/console/rules/proposals/{pid}/approve", {"approver": "root"})
    assert ok.status_code == 200, ok.text
    version = ok.json()["published_version"]
    assert await gw.services.risk.rule_store.active_version() == version != before
    page = (await dave.http.get(f"/console/rules/proposals/{pid}")).text
    assert f"published as version {version} by dave" in page
    rules = (await dave.http.get("/console/rules")).text
    assert "dissimilar_device_money" in rules and "approved by dave" in rules
    again = await dave.post(f"/console/rules/proposals/{pid}/approve")
    assert (again.status_code, again.json()["error"]) == (409, "proposal_not_pending")
    assert [(e["actor"], e["action"]) for e in await _audit(console)] == [
        ("root", "rule_proposal.create"), ("root", "rule_proposal.approve_refused"),
        ("dave", "rule_proposal.approve")]

    # the published rule's hits reach the feed
    await decide(gw, facts(user_id="v9", amount_fen=500_000, device_similarity=0.1), time.time() + 5, "late1")
    feed = (await dave.http.get("/console/decisions?rule=dissimilar_device_money")).text
    assert "late1" in feed and "takeover0" not in feed


async def test_rejecting_and_withdrawing(console):
    carol = await console.analyst("carol", Role.RULE_AUTHOR)
    erin = await console.analyst("erin", Role.RULE_AUTHOR)
    dave = await console.analyst("dave", Role.APPROVER)
    text = json.dumps([TAKEOVER_RULE])
    p1 = (await carol.post("/console/rules/proposals", {"text": text, "reason": "one"})).json()["proposal_id"]
    p2 = (await carol.post("/console/rules/proposals", {"text": text, "reason": "two"})).json()["proposal_id"]
    other = await erin.post(f"/console/rules/proposals/{p1}/reject", {"reason": "no"})
    assert (other.status_code, other.json()["error"]) == (403, "console_role_forbidden")
    assert (await carol.post(f"/console/rules/proposals/{p1}/reject", {"reason": "withdrawn"})).status_code == 200
    assert (await dave.post(f"/console/rules/proposals/{p2}/reject", {"reason": "too broad"})).status_code == 200
    rules = (await dave.http.get("/console/rules")).text
    assert rules.count("rejected") == 2
    entries = [(e["actor"], e["action"]) for e in await _audit(console)][2:]
    assert entries == [("carol", "rule_proposal.reject"), ("dave", "rule_proposal.reject")]


async def test_audit_page_shows_the_verify_result(console):
    gw = console.gw
    await history(gw)
    alice = await console.analyst("alice", Role.ANALYST)
    await alice.post("/console/decisions/ok1/label", {"verdict": "legitimate"})
    await alice.post("/console/decisions/ok2/label", {"verdict": "fraud"})
    page = (await alice.http.get("/console/audit")).text
    assert "Chain intact: 2 entries" in page and "decision.label" in page
    first = orjson.loads(await gw.services.redis.lindex(LOG_KEY, 0))
    first["details"]["fraud"] = True  # someone rewrites a label in Redis
    await gw.services.redis.lset(LOG_KEY, 0, orjson.dumps(first))
    page = (await alice.http.get("/console/audit")).text
    assert "Chain BROKEN at entry 1" in page
    bad = await alice.http.get("/console/audit?before=x")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_cursor")


async def test_decision_chains_page_names_a_rewritten_decision(console):
    from risk_engine import DECISION_STREAM

    gw = console.gw
    await history(gw)  # nine decisions, recorded through the gateway's risk engine
    vera = await console.analyst("vera", Role.VIEWER)
    assert 'href="/console/audit/decisions"' in (await vera.http.get("/console/audit")).text
    page = (await vera.http.get("/console/audit/decisions")).text
    assert "decision chains intact: 9 decisions in 1 chain(s)" in page

    rows = await gw.services.redis.xrange(DECISION_STREAM)
    await gw.services.redis.delete(DECISION_STREAM)
    for rid, fields in rows:  # someone lowers an amount in Redis, keeping every id
        doc = orjson.loads(fields[b"e"])
        if doc["decision_id"] == "takeover1":
            doc["amount_fen"] = 100
            fields = {**fields, b"e": orjson.dumps(doc)}
        await gw.services.redis.xadd(DECISION_STREAM, fields, id=rid)
    page = (await vera.http.get("/console/audit/decisions")).text
    assert "BROKEN at decision takeover1" in page and "its contents do not match its hash" in page


async def test_feed_filters_by_time(console):
    gw = console.gw
    await history(gw)  # ok0..ok5 at NOW+0..5, takeover0..2 at NOW+50..52
    alice = await console.analyst("alice", Role.ANALYST)
    import datetime as dt

    iso = dt.datetime.fromtimestamp(NOW + 50, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    page = (await alice.http.get(f"/console/decisions?since={iso}")).text
    assert all(f"takeover{i}" in page for i in range(3)) and "ok5" not in page
    assert f'value="{iso}"' in page  # the form keeps the window
    page = (await alice.http.get(f"/console/decisions?since={NOW + 2:.0f}&until={NOW + 4:.0f}")).text
    assert "ok2" in page and "ok3" in page and "ok4" not in page and "ok1" not in page
    shifted = (await alice.http.get(f"/console/decisions?until={iso}%2B08:00")).text  # 8 h earlier
    assert "ok0" not in shifted and "takeover0" not in shifted
    for bad in ("yesterday", "2026-13-01", "99999999999999"):
        r = await alice.http.get(f"/console/decisions?since={bad}")
        assert (r.status_code, r.json()["error"]) == (400, "invalid_time"), bad


async def test_a_risk_store_failure_is_503_with_retry_after(console, monkeypatch):
    from risk_engine import RiskStateUnavailable

    vera = await console.analyst("vera", Role.VIEWER)

    async def unreachable(*args, **kwargs):
        raise RiskStateUnavailable("reading the active rule version failed: connection refused")

    monkeypatch.setattr(console.gw.services.risk.rule_store, "active_version", unreachable)
    page = await vera.http.get("/console/rules")
    assert (page.status_code, page.json()["error"]) == (503, "state_unavailable")
    assert page.headers["retry-after"] == "1"

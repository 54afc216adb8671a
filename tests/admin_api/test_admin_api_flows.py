"""Admin API flows with signed-in analysts: maker-checker publishing (an author's own
approval refused and audited), labels and the review queue, operations changes in the
audit trail, rule history reads, analyst management, and cross-site calls refused."""

from __future__ import annotations

import orjson

from gateway.audit_trail import LOG_KEY
from gateway.console.analysts import Role
from risk_engine import RuleSet, read_labels
from tests.admin_api.conftest import API
from tests.console.conftest import ORIGIN, Analyst
from tests.console.decisions import NOW, TAKEOVER_RULE, decide, facts, history


async def _audit(console) -> list[dict]:
    return [orjson.loads(raw) for raw in await console.gw.services.redis.lrange(LOG_KEY, 0, -1)]


async def test_maker_checker_over_the_api(console, signed_in):
    gw = console.gw
    await history(gw)
    rita = await signed_in("rita", Role.RULE_AUTHOR)
    aaron = await signed_in("aaron", Role.APPROVER)

    made = await rita.call("POST", "/rules/proposals", {
        "rules": [TAKEOVER_RULE], "reason": "takeovers from unfamiliar devices", "author": "aaron"})
    assert made.status_code == 201, made.text
    proposal = made.json()
    assert proposal["author"] == "rita" and proposal["status"] == "pending"  # never a name from the body
    assert proposal["backtest"]["changed_count"] == 3
    pid = proposal["id"]
    listed = (await aaron.call("GET", "/rules/proposals?status=pending")).json()["proposals"]
    assert [p["id"] for p in listed] == [pid]

    # the author may not approve their own rules (an admin who may approve may not either)
    own = await rita.call("POST", f"/rules/proposals/{pid}/approve")
    assert (own.status_code, own.json()["error"]) == (403, "console_role_forbidden")
    root = await signed_in("rita.admin", Role.ADMIN)
    by_admin = await root.call("POST", "/rules/proposals", {"rules": [TAKEOVER_RULE], "reason": "again"})
    self_approval = await root.call("POST", f"/rules/proposals/{by_admin.json()['id']}/approve")
    assert (self_approval.status_code, self_approval.json()["error"]) == (403, "maker_checker_same_person")
    refused = [e for e in await _audit(console) if e["action"] == "rule_proposal.approve_refused"]
    assert [(e["actor"], e["details"]["proposal_id"]) for e in refused] == [
        ("rita.admin", by_admin.json()["id"])]
    withdrawn = await root.call("POST", f"/rules/proposals/{by_admin.json()['id']}/reject",
                                {"reason": "duplicate"})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "rejected"

    approved = await aaron.call("POST", f"/rules/proposals/{pid}/approve")
    assert approved.status_code == 200, approved.text
    version = approved.json()["published_version"]
    assert approved.json()["decided_by"] == "aaron"
    again = await aaron.call("POST", f"/rules/proposals/{pid}/approve")
    assert (again.status_code, again.json()["error"]) == (409, "proposal_not_pending")

    rules = (await rita.call("GET", "/rules")).json()
    assert rules["version"] == version and [r["id"] for r in rules["rules"]] == [TAKEOVER_RULE["id"]]
    assert rules["history"][0]["version"] == version and "approved by aaron" in rules["history"][0]["reason"]
    assert (await gw.services.risk.rule_store.active()).rules[0].id == TAKEOVER_RULE["id"]

    # what changed, and a rollback that is itself a proposal a second person approves
    diff = (await rita.call("GET", f"/rules/diff?from={version - 1}")).json()
    assert diff["to"] == version and diff["added"] == [TAKEOVER_RULE["id"]]
    old = (await rita.call("GET", f"/rules/versions/{version - 1}")).json()
    assert old["active"] is False and [r["id"] for r in old["rules"]] == ["tests_quiet"]
    missing = await rita.call("GET", "/rules/versions/999")
    assert (missing.status_code, missing.json()["error"]) == (404, "rule_version_not_found")
    back = await rita.call("POST", "/rules/rollback", {"version": version - 1, "reason": "too noisy"})
    assert back.status_code == 201 and back.json()["reason"].startswith(f"rollback to v{version - 1}")
    assert (await gw.services.risk.rule_store.active_version()) == version  # not yet
    done = await aaron.call("POST", f"/rules/proposals/{back.json()['id']}/approve")
    assert done.status_code == 200 and done.json()["published_version"] == version + 1

    assert [(e["actor"], e["action"]) for e in await _audit(console)] == [
        ("rita", "rule_proposal.create"), ("rita.admin", "rule_proposal.create"),
        ("rita.admin", "rule_proposal.approve_refused"), ("rita.admin", "rule_proposal.reject"),
        ("aaron", "rule_proposal.approve"), ("rita", "rule_proposal.create"),
        ("aaron", "rule_proposal.approve")]
    verify = (await aaron.call("GET", "/audit/verify")).json()
    assert verify["ok"] and verify["entries"] == 7


async def test_an_author_withdraws_only_their_own_proposal(signed_in):
    rita = await signed_in("rita", Role.RULE_AUTHOR)
    rob = await signed_in("rob", Role.RULE_AUTHOR)
    pid = (await rita.call("POST", "/rules/proposals", {"rules": [TAKEOVER_RULE], "reason": "r"})).json()["id"]
    other = await rob.call("POST", f"/rules/proposals/{pid}/reject", {"reason": "mine now"})
    assert (other.status_code, other.json()["error"]) == (403, "console_role_forbidden")
    no_reason = await rita.call("POST", f"/rules/proposals/{pid}/reject", {})
    assert (no_reason.status_code, no_reason.json()["error"]) == (400, "reason_required")
    own = await rita.call("POST", f"/rules/proposals/{pid}/reject", {"reason": "not ready"})
    assert own.status_code == 200 and own.json()["decided_by"] == "rita"


async def test_editor_checks_without_storing_anything(signed_in):
    rita = await signed_in("rita", Role.RULE_AUTHOR)
    ok = await rita.call("POST", "/rules/validate", {"text": orjson.dumps([TAKEOVER_RULE]).decode()})
    assert ok.json() == {"ok": True, "problems": [], "rules": 1}
    bad = await rita.call("POST", "/rules/validate", {"text": '[{"id": "x", "expression": "nope >",'
                                                              ' "effect": "block"}]'})
    assert bad.status_code == 200 and not bad.json()["ok"] and bad.json()["problems"]
    tested = await rita.call("POST", "/rules/backtest", {"rules": [TAKEOVER_RULE]})
    assert tested.status_code == 200 and "candidate" in tested.json()["backtest"]
    invalid = await rita.call("POST", "/rules/backtest", {"rules": [{"id": "x", "expression": "nope",
                                                                      "effect": "block"}]})
    assert (invalid.status_code, invalid.json()["error"]) == (422, "rule_set_invalid")
    assert invalid.json()["problems"][0]["rule"] == "x"
    assert (await rita.call("GET", "/rules/proposals")).json() == {"proposals": []}


async def test_labels_feed_and_review_queue(console, signed_in):
    gw = console.gw
    await gw.services.risk.rule_store.publish(RuleSet.from_document({"rules": [TAKEOVER_RULE]}),
                                              author="seed", reason="seed", now=NOW)
    await history(gw)
    alice = await signed_in("alice", Role.ANALYST)

    feed = (await alice.call("GET", "/decisions?user=v1")).json()
    assert [d["decision_id"] for d in feed["decisions"]] == ["takeover1"]
    assert feed["filters"] == {"user": "v1"} and feed["decisions"][0]["label"] is None
    page = (await alice.call("GET", "/decisions?count=2")).json()
    assert [d["decision_id"] for d in page["decisions"]] == ["takeover2", "takeover1"]
    more = (await alice.call("GET", f"/decisions?count=2&before={page['next_before']}")).json()
    assert [d["decision_id"] for d in more["decisions"]] == ["takeover0", "ok5"]
    bad = await alice.call("GET", "/decisions?outcome=maybe")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_outcome")

    queue = (await alice.call("GET", "/review")).json()
    assert {d["decision_id"] for d in queue["decisions"]} == {"takeover0", "takeover1", "takeover2"}

    labelled = await alice.call("POST", "/decisions/takeover1/label", {"verdict": "fraud", "author": "mallory"})
    assert labelled.status_code == 200 and labelled.json()["status"] == "queued"
    label = (await read_labels(gw.services.redis, ["takeover1"]))["takeover1"]
    assert label.fraud and label.author == "alice"
    unsure = await alice.call("POST", "/decisions/takeover2/label", {"verdict": "unsure"})
    assert unsure.status_code == 200
    detail = (await alice.call("GET", "/decisions/takeover1")).json()
    assert detail["label"] == {"verdict": "fraud", "source": "analyst", "strong": True,
                               "author": "alice", "at": detail["label"]["at"]}
    assert "device_similarity" in detail["features"] and "model" in detail
    assert (await alice.call("GET", "/decisions/takeover2")).json()["unsure"]["by"] == "alice"
    queue = (await alice.call("GET", "/review")).json()
    assert [d["decision_id"] for d in queue["decisions"]] == ["takeover2", "takeover0"]
    assert queue["decisions"][0]["unsure"]["by"] == "alice"

    for verdict, path, code in [("perhaps", "takeover0", (400, "invalid_verdict")),
                                ("fraud", "nope", (404, "decision_not_found")),
                                ("unsure", "nope", (404, "decision_not_found"))]:
        r = await alice.call("POST", f"/decisions/{path}/label", {"verdict": verdict})
        assert (r.status_code, r.json()["error"]) == code, (verdict, path)
    assert [(e["actor"], e["action"], e["details"]["decision_id"]) for e in await _audit(console)] == [
        ("alice", "decision.label", "takeover1"), ("alice", "decision.label_unsure", "takeover2")]

    # a later decision shows up in the feed
    await decide(gw, facts(user_id="w0"), NOW + 100, "later0")
    assert (await alice.call("GET", "/decisions?count=1")).json()["decisions"][0]["decision_id"] == "later0"


async def test_ops_change_by_an_admin_is_in_force_and_audited(console, signed_in):
    root = await signed_in("root", Role.ADMIN)
    viewer = await signed_in("vera", Role.VIEWER)
    change = {"business": {"transfer": {"enabled": False, "message": "back at 16:00"}},
              "parameters": {"tool_max_failures": 3}, "reason": "incident 4711",
              "author": "someone-else", "base_version": 0}
    r = await root.call("PUT", "/ops", change)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["in_force"]["tool_max_failures"] == 3

    seen = (await viewer.call("GET", "/ops")).json()
    assert seen["version"] == 1 and seen["author"] == "root" and seen["reason"] == "incident 4711"
    assert seen["document"]["business"]["transfer"]["enabled"] is False
    [entry] = (await viewer.call("GET", "/audit")).json()["entries"]
    assert (entry["actor"], entry["action"], entry["details"]["version"]) == ("root", "ops.publish", 1)

    stale = await root.call("PUT", "/ops", {**change, "base_version": 0})
    assert (stale.status_code, stale.json()["error"]) == (409, "ops_version_conflict")
    invalid = await root.call("PUT", "/ops", {"business": {"teleport": False}, "reason": "r"})
    assert (invalid.status_code, invalid.json()["error"]) == (422, "ops_settings_invalid")
    assert invalid.json()["problems"]
    no_reason = await root.call("PUT", "/ops", {"business": {}})
    assert (no_reason.status_code, no_reason.json()["error"]) == (400, "reason_required")

    back = await root.call("POST", "/ops/rollback", {"version": 1, "reason": "again"})
    assert back.status_code == 200 and back.json()["rollback_of"] == 1 and back.json()["version"] == 2
    gone = await root.call("POST", "/ops/rollback", {"version": 99, "reason": "r"})
    assert (gone.status_code, gone.json()["error"]) == (404, "ops_version_not_found")
    assert [(e["actor"], e["action"]) for e in (await root.call("GET", "/audit?count=10")).json()["entries"]
            ] == [("root", "ops.rollback"), ("root", "ops.publish")]
    older = (await root.call("GET", "/audit?before=2")).json()["entries"]
    assert [e["seq"] for e in older] == [1]


async def test_analysts_invited_changed_and_removed_by_an_admin(console, signed_in):
    root = await signed_in("root", Role.ADMIN)
    r = await root.call("POST", "/analysts", {"name": "dana", "role": "approver"})
    assert r.status_code == 201, r.text
    link = r.json()["link"]
    assert link.startswith("http://localhost:8080/console/enrol?token=")
    dup = await root.call("POST", "/analysts", {"name": "DANA", "role": "viewer"})
    assert (dup.status_code, dup.json()["error"]) == (409, "analyst_exists")
    bad_role = await root.call("POST", "/analysts", {"name": "erin", "role": "superuser"})
    assert (bad_role.status_code, bad_role.json()["error"]) == (400, "invalid_role")
    bad_name = await root.call("POST", "/analysts", {"name": "no spaces", "role": "viewer"})
    assert bad_name.status_code == 400

    listed = (await root.call("GET", "/analysts")).json()["analysts"]
    assert [(a["name"], a["role"], a["passkeys"]) for a in listed] == [("dana", "approver", 0),
                                                                        ("root", "admin", 1)]
    # nobody changes or removes their own record
    for method, path, body in [("POST", "/analysts/root/role", {"role": "viewer"}),
                               ("DELETE", "/analysts/ROOT", None)]:
        r = await root.call(method, path, body)
        assert (r.status_code, r.json()["error"]) == (403, "analyst_self_change")
    assert (await root.call("POST", "/analysts/dana/role", {"role": "viewer"})).json()["previous"] == "approver"
    # dana opens her link, and is removed before she registers the passkey
    dana = Analyst("dana", console.http())
    token = link.split("token=", 1)[1]
    begun = await dana.http.post("/console/enrol/begin", json={"token": token})
    assert begun.status_code == 200
    gone = await root.call("DELETE", "/analysts/dana")
    assert gone.status_code == 200 and gone.json() == {"name": "dana", "removed": True, "audit_seq": 3}
    again = await root.call("DELETE", "/analysts/dana")
    assert (again.status_code, again.json()["error"]) == (404, "analyst_not_found")
    missing = await root.call("POST", "/analysts/nobody/role", {"role": "viewer"})
    assert (missing.status_code, missing.json()["error"]) == (404, "analyst_not_found")
    assert [(e["action"], e["details"]["name"]) for e in await _audit(console)] == [
        ("analyst.create", "dana"), ("analyst.role", "dana"), ("analyst.remove", "dana")]

    # the link of a removed analyst enrols nothing, now or for a later analyst of that name
    finished = await dana.http.post("/console/enrol/complete", json={
        "token": token, "ceremony": begun.json()["ceremony"],
        "response": dana.authenticator.create(begun.json()["publicKey"], ORIGIN)})
    assert (finished.status_code, finished.json()["error"]) == (404, "analyst_not_found")
    assert not [c for c in dana.http.cookies.jar if c.name == "riskgate_console"]
    assert await console.gw.services.redis.keys("{console:analysts}:a:dana") == []
    r = await root.call("POST", "/analysts", {"name": "dana", "role": "viewer"})
    assert r.status_code == 201
    assert (await root.call("GET", "/analysts")).json()["analysts"][0]["passkeys"] == 0


async def test_cross_site_calls_are_refused(console, signed_in):
    root = await signed_in("root", Role.ADMIN)
    for method, path, body in [("PUT", "/ops", {"business": {"transfer": False}, "reason": "r"}),
                               ("POST", "/analysts", {"name": "eve", "role": "admin"}),
                               ("DELETE", "/session", None)]:
        r = await root.call(method, path, body, headers={"origin": "https://evil.example"})
        assert (r.status_code, r.json()["error"]) == (403, "origin_refused"), path
    # a page of the gateway's own origin may call it
    r = await root.call("PUT", "/ops", {"business": {"transfer": False}, "reason": "r"},
                        headers={"origin": "http://localhost:8080"})
    assert r.status_code == 200, r.text
    # over another host name the cookie is not even sent (it belongs to localhost)
    stranger = console.http("http://gateway.evil.example")
    stranger.cookies = root.http.cookies
    r = await stranger.get(f"{API}/session")
    assert r.status_code == 401
    assert [e["action"] for e in await _audit(console)] == ["ops.publish"]


async def test_model_report_over_the_api(console, signed_in):
    import time

    from risk_engine import LabelSource, ModelSnapshot, default_model, submit_label

    gw = console.gw
    now = time.time()
    await gw.services.risk.model_store.publish(ModelSnapshot("champion", 0, default_model(), 0, now))
    for i in range(6):
        await decide(gw, facts(user_id=f"m{i}"), now - 60 + i, f"m{i}")
        await submit_label(gw.services.redis, f"m{i}", fraud=i < 2, source=LabelSource.ANALYST,
                           now=now, author="seed")
    vera = await signed_in("vera", Role.VIEWER)

    doc = (await vera.call("GET", "/model?days=2")).json()
    assert doc["versions"]["champion"]["label"] == "champion:v1" and doc["versions"]["challenger"] is None
    assert doc["bucket_seconds"] == 3600 and doc["decisions_read"] == 6
    last = doc["buckets"][-1]
    assert (last["decisions"], last["labelled"], last["fraud"]) == (6, 6, 2)
    assert set(last["at_threshold"]) == {"medium", "high", "block"}
    assert (await vera.call("GET", "/model")).json()["bucket_seconds"] == 86400
    bad = await vera.call("GET", "/model?days=91")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_days")

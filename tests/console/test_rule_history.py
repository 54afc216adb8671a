"""Rule history: hits per rule (active and shadow) over recent decisions, what each version
changed, and rolling back by a proposal that a second analyst approves."""

from __future__ import annotations

import re

import orjson

from gateway.audit_trail import LOG_KEY
from gateway.console.analysts import Role
from gateway.rule_history import diff_rule_sets, rule_hit_counts
from risk_engine import RuleSet
from tests.console.decisions import NOW, TAKEOVER_RULE, history

LARGE_SHADOW = {"id": "large_amount_watch", "effect": "tag", "tag": "large", "mode": "shadow",
                "expression": "moves_money && amount_cny >= 3000",
                "description": "watch large transfers before enforcing anything"}
STRICTER = dict(TAKEOVER_RULE, expression="moves_money && device_similarity < 0.5 && amount_cny >= 5000")


async def _publish(gw, *rules: dict, reason: str = "tests") -> int:
    return await gw.services.risk.rule_store.publish(RuleSet.from_document({"rules": list(rules)}),
                                                     author="tests", reason=reason, now=NOW - 10)


async def _audit(console) -> list[dict]:
    return [orjson.loads(raw) for raw in await console.gw.services.redis.lrange(LOG_KEY, 0, -1)]


def _rule(rule_id: str, expression: str, **kw) -> dict:
    return {"id": rule_id, "description": "", "expression": expression, "effect": "tag",
            "mode": "active", "version": 1, "tag": "t", **kw}


def test_diff_names_rules_added_removed_and_each_changed_field():
    old = [_rule("a", "amount_cny > 1"), _rule("b", "true")]
    new = [_rule("a", "amount_cny > 2", mode="shadow"), _rule("c", "false")]
    diff = diff_rule_sets(old, new, old_name="v1", new_name="v2")
    assert (diff["added"], diff["removed"]) == (["c"], ["b"])
    assert diff["changed"] == [{"id": "a", "fields": {
        "expression": {"before": "amount_cny > 1", "after": "amount_cny > 2"},
        "mode": {"before": "active", "after": "shadow"}}}]
    unified = diff["unified"]
    assert unified[:2] == ["--- v1", "+++ v2"]
    assert '-    "expression": "amount_cny > 1",' in unified
    assert '+    "expression": "amount_cny > 2",' in unified
    assert any(line.startswith("@@") for line in unified)
    same = diff_rule_sets(old, old)
    assert same == {"added": [], "removed": [], "changed": [], "unified": []}
    everything = diff_rule_sets([], new)
    assert everything["added"] == ["a", "c"] and everything["changed"] == []


async def test_hit_counts_cover_active_and_shadow_rules(console):
    gw = console.gw
    await _publish(gw, TAKEOVER_RULE, LARGE_SHADOW)
    await history(gw)  # 6 ordinary transfers of 800 CNY, then 3 takeovers of 4,000 CNY
    hits = await rule_hit_counts(gw.services.redis)
    assert hits.scanned == 9
    assert hits.active == {"dissimilar_device_money": 3}
    assert hits.shadow == {"large_amount_watch": 3}
    assert (hits.oldest, hits.newest) == (NOW, NOW + 52)
    newest = await rule_hit_counts(gw.services.redis, scan=4)  # newest first: 3 takeovers, 1 other
    assert (newest.scanned, newest.active, newest.oldest) == (4, {"dissimilar_device_money": 3}, NOW + 5)
    assert (await rule_hit_counts(gw.services.redis, scan=0)).scanned == 0


async def test_the_rules_page_shows_each_rules_mode_and_hits(console):
    gw = console.gw
    version = await _publish(gw, TAKEOVER_RULE, LARGE_SHADOW)
    await history(gw)
    viewer = await console.analyst("vera", Role.VIEWER)
    page = (await viewer.http.get("/console/rules")).text
    assert "Hits among the 9 most recent decisions" in page
    active = page.split('id="rule-dissimilar_device_money"', 1)[1].split("</tr>", 1)[0]
    assert 'class="mode-active"' in page and "3 of 9 recent decisions" in active
    shadow = page.split('id="rule-large_amount_watch"', 1)[1].split("</tr>", 1)[0]
    assert "badge-shadow" in shadow and "3 of 9 recent decisions (would have)" in shadow
    assert 'id="rule-large_amount_watch" class="mode-shadow"' in page
    assert f'<a href="/console/rules/versions/{version}">{version}</a>' in page  # history rows link


async def test_a_version_page_shows_what_changed(console):
    gw = console.gw
    first = await _publish(gw, TAKEOVER_RULE, LARGE_SHADOW, reason="catch takeovers")
    second = await _publish(gw, STRICTER, LARGE_SHADOW, reason="fewer false positives")
    viewer = await console.analyst("vera", Role.VIEWER)
    page = (await viewer.http.get(f"/console/rules/versions/{second}")).text
    assert f"Rule set version {second} (active)" in page and "fewer false positives" in page
    assert f"From version {first} to version {second}:" in page
    assert "0 rule(s) added, 0 removed, 1 changed." in page
    changed = page.split('class="diff-changed"', 1)[1].split("</table>", 1)[0]
    assert "dissimilar_device_money" in changed and "<td>expression</td>" in changed
    assert "amount_cny &gt;= 2000" in changed and "amount_cny &gt;= 5000" in changed
    assert re.search(r'<span class="diff-del">-\s+&#34;expression&#34;: .*amount_cny &gt;= 2000', page)
    assert re.search(r'<span class="diff-add">\+\s+&#34;expression&#34;: .*amount_cny &gt;= 5000', page)
    assert '<span class="diff-file">--- version' in page
    assert "rollback-form" not in page  # a viewer proposes nothing

    against = (await viewer.http.get(f"/console/rules/versions/{second}?against={first - 1}")).text
    assert f"From version {first - 1} to version {second}:" in against
    assert "2 rule(s) added, 1 removed, 0 changed." in against  # tests_quiet went, two came
    same = (await viewer.http.get(f"/console/rules/versions/{first}?against={first}")).text
    assert "The rules are the same." in same
    missing = await viewer.http.get("/console/rules/versions/99")
    assert (missing.status_code, missing.json()["error"]) == (404, "rule_version_not_found")
    missing = await viewer.http.get(f"/console/rules/versions/{second}?against=99")
    assert (missing.status_code, missing.json()["error"]) == (404, "rule_version_not_found")
    bad = await viewer.http.get(f"/console/rules/versions/{second}?against=last")
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_against")


async def test_rollback_is_a_proposal_that_a_second_analyst_approves(console):
    gw = console.gw
    store = gw.services.risk.rule_store
    first = await _publish(gw, TAKEOVER_RULE, LARGE_SHADOW, reason="catch takeovers")
    second = await _publish(gw, STRICTER, LARGE_SHADOW, reason="fewer false positives")
    await history(gw)
    root = await console.analyst("root", Role.ADMIN)
    dave = await console.analyst("dave", Role.APPROVER)
    viewer = await console.analyst("vera", Role.VIEWER)

    page = (await root.http.get(f"/console/rules/versions/{first}")).text
    assert f"Propose rolling back to version {first}" in page
    assert "rollback-form" not in (await root.http.get(f"/console/rules/versions/{second}")).text

    refused = await viewer.post(f"/console/rules/versions/{first}/rollback", {"reason": "r"})
    assert (refused.status_code, refused.json()["error"]) == (403, "console_role_forbidden")
    no_reason = await root.post(f"/console/rules/versions/{first}/rollback", {"reason": " "})
    assert (no_reason.status_code, no_reason.json()["error"]) == (400, "reason_required")
    missing = await root.post("/console/rules/versions/99/rollback", {"reason": "typo"})
    assert (missing.status_code, missing.json()["error"]) == (404, "rule_version_not_found")

    proposed = await root.http.post(f"/console/rules/versions/{first}/rollback",
                                    data={"csrf": root.csrf, "reason": "stricter rule missed fraud"})
    assert proposed.status_code == 303
    pid = proposed.headers["location"].rsplit("/", 1)[1]
    assert await store.active_version() == second  # nothing published yet

    page = (await dave.http.get(f"/console/rules/proposals/{pid}")).text
    assert f"rollback to v{first}: stricter rule missed fraud" in page and "approve-button" in page
    assert f"From version {second} to proposal {pid}:" in page  # against the version it was based on
    changed = page.split('class="diff-changed"', 1)[1].split("</table>", 1)[0]
    before, after = changed.index("amount_cny &gt;= 5000"), changed.index("amount_cny &gt;= 2000")
    assert before < after

    own = await root.post(f"/console/rules/proposals/{pid}/approve")
    assert (own.status_code, own.json()["error"]) == (403, "maker_checker_same_person")
    assert await store.active_version() == second
    ok = await dave.post(f"/console/rules/proposals/{pid}/approve")
    assert ok.status_code == 200, ok.text
    third = ok.json()["published_version"]
    assert await store.active_version() == third == second + 1
    rules = [r.to_dict() for r in (await store.get(third)).rules]
    assert [r["expression"] for r in rules] == [TAKEOVER_RULE["expression"], LARGE_SHADOW["expression"]]
    assert [(e["actor"], e["action"]) for e in await _audit(console)] == [
        ("root", "rule_proposal.create"), ("root", "rule_proposal.approve_refused"),
        ("dave", "rule_proposal.approve")]


async def test_a_proposal_shows_its_changes_against_its_base_version(console):
    gw = console.gw
    base = await _publish(gw, TAKEOVER_RULE)
    carol = await console.analyst("carol", Role.RULE_AUTHOR)
    text = orjson.dumps([TAKEOVER_RULE, LARGE_SHADOW]).decode()
    proposed = await carol.post("/console/rules/proposals", {"text": text, "reason": "watch large"})
    page = (await carol.http.get(proposed.json()["redirect"])).text
    assert f'against <a href="/console/rules/versions/{base}">version {base}</a>' in page
    assert "1 rule(s) added, 0 removed, 0 changed." in page
    added = page.split('class="diff-added"', 1)[1].split("</table>", 1)[0]
    assert "large_amount_watch" in added and "dissimilar_device_money" not in added

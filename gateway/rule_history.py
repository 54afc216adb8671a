"""What the rule pages and the admin API show about rules beyond their text: how often each
rule (active or shadow) hit among recent decisions, and what changed between two versions.

    hits = await rule_hit_counts(redis, scan=5000)   # newest ``scan`` decisions
    diff = diff_rule_sets(old_rules, new_rules)      # lists of rule dicts (RuleSet.to_dict)
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from risk_engine import iter_decisions

__all__ = ["RuleHits", "diff_rule_sets", "rule_hit_counts"]

HIT_SCAN = 5000
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class RuleHits:
    """Hit counts over the ``scanned`` newest decisions (between ``oldest`` and ``newest``)."""

    scanned: int
    oldest: float | None
    newest: float | None
    active: dict[str, int] = field(default_factory=dict)  # rule id -> decisions it changed
    shadow: dict[str, int] = field(default_factory=dict)  # rule id -> decisions it would have changed

    def to_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "oldest": self.oldest, "newest": self.newest,
                "active": self.active, "shadow": self.shadow}


async def rule_hit_counts(redis: Redis, *, scan: int = HIT_SCAN) -> RuleHits:
    """Count hits per rule among the newest ``scan`` recorded decisions.

    Raises RiskStateUnavailable when Redis cannot be read.
    """
    active: Counter[str] = Counter()
    shadow: Counter[str] = Counter()
    scanned = 0
    newest = oldest = None
    if scan < 1:
        return RuleHits(0, None, None)
    async for _sid, event in iter_decisions(redis, page=min(_PAGE, scan), newest_first=True):
        active.update(event.rules_hit)
        shadow.update(event.shadow_rules_hit)
        newest = event.at if newest is None else newest
        oldest = event.at
        scanned += 1
        if scanned >= scan:
            break
    return RuleHits(scanned, oldest, newest, dict(active), dict(shadow))


def _by_id(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r.get("id")): r for r in rules}


def diff_rule_sets(old: list[dict[str, Any]], new: list[dict[str, Any]], *,
                   old_name: str = "old", new_name: str = "new") -> dict[str, Any]:
    """Rules added, removed and changed (with each changed field's before and after), and a
    unified diff of the two texts as the editor shows them."""
    before, after = _by_id(old), _by_id(new)
    changed = []
    for rule_id in sorted(before.keys() & after.keys()):
        a, b = before[rule_id], after[rule_id]
        fields = {k: {"before": a.get(k), "after": b.get(k)}
                  for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}
        if fields:
            changed.append({"id": rule_id, "fields": fields})
    text_a = json.dumps(old, indent=2, ensure_ascii=False).splitlines()
    text_b = json.dumps(new, indent=2, ensure_ascii=False).splitlines()
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": changed,
        "unified": list(difflib.unified_diff(text_a, text_b, old_name, new_name, lineterm="")),
    }

"""Reviewing recorded decisions, shared by the console pages and the session admin API:
one decision, the "unsure" mark an analyst leaves beside it, and the review queue.

"Unsure" changes nothing for the learner (it is not a label); it is kept for the
review queue and recorded in the audit trail like a label.

    {console:review}:unsure:<decision id>   JSON {"by", "at"} (TTL: UNSURE_TTL)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.analyst_actions import audit, label_decision
from gateway.errors import BadRequest, NotFound
from gateway.services import Services
from risk_engine import (
    DecisionEvent,
    DecisionNotFound,
    Label,
    RiskLevel,
    get_decision,
    read_decisions,
    read_labels,
)

__all__ = ["REVIEW_LEVELS", "REVIEW_SCAN", "UNSURE_TTL", "VERDICTS", "ReviewQueue", "label_unsure", "label_verdict",
           "recorded_decision", "review_queue", "unsure_marks"]

UNSURE_TAG = "{console:review}"
UNSURE_TTL = 400 * 86400
REVIEW_SCAN = 2000
REVIEW_SIZE = 100
REVIEW_LEVELS = frozenset({RiskLevel.MEDIUM.value, RiskLevel.HIGH.value})
VERDICTS = {"fraud": True, "legitimate": False, "unsure": None}  # an analyst's verdict -> fraud


def _unsure_key(decision_id: str) -> str:
    return f"{UNSURE_TAG}:unsure:{decision_id}"


async def recorded_decision(redis: Redis, decision_id: str) -> DecisionEvent:
    """The recorded decision; 404 ``decision_not_found`` for an unknown id."""
    try:
        _sid, event = await get_decision(redis, decision_id)
    except DecisionNotFound as exc:
        raise NotFound("decision_not_found", "no recorded decision with that id") from exc
    return event


async def unsure_marks(redis: Redis, decision_ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{"by", "at"}`` of each decision among ``decision_ids`` an analyst marked unsure."""
    if not decision_ids:
        return {}
    raws = await redis.mget([_unsure_key(i) for i in decision_ids])
    return {i: orjson.loads(raw) for i, raw in zip(decision_ids, raws, strict=True) if raw}


async def label_unsure(svc: Services, decision_id: str, *, author: str, now: float) -> int:
    """Mark a recorded decision unsure (404 for an unknown one); the audit entry's number."""
    await recorded_decision(svc.redis, decision_id)
    await svc.redis.set(_unsure_key(decision_id), orjson.dumps({"by": author, "at": now}),
                        ex=UNSURE_TTL)
    return await audit(svc, author, "decision.label_unsure", {"decision_id": decision_id}, now)


async def label_verdict(svc: Services, decision_id: str, verdict: object, *, author: str,
                        now: float) -> tuple[str | None, int]:
    """An analyst's verdict: fraud / legitimate go to the learner (status "queued" or
    "kept_stronger_label"), unsure only marks the decision (status None); and the audit
    entry's number. 400 ``invalid_verdict`` for anything else."""
    if not isinstance(verdict, str) or verdict not in VERDICTS:
        raise BadRequest("invalid_verdict", "verdict must be fraud, legitimate or unsure")
    fraud = VERDICTS[verdict]
    if fraud is None:
        return None, await label_unsure(svc, decision_id, author=author, now=now)
    return await label_decision(svc, decision_id, fraud=fraud, author=author, now=now)


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    """Medium and high risk decisions among the ``scanned`` newest without a strong label."""

    decisions: list[DecisionEvent]
    labels: dict[str, Label]  # the weak (step-up) labels some of them carry
    unsure: dict[str, dict[str, Any]]
    scanned: int


async def review_queue(redis: Redis, *, scan: int = REVIEW_SCAN, size: int = REVIEW_SIZE) -> ReviewQueue:
    """The newest risky decisions still waiting for an analyst's label, newest first."""
    rows = await read_decisions(redis, count=scan, newest_first=True)
    risky = [e for _sid, e in rows if e.level in REVIEW_LEVELS]
    labels = await read_labels(redis, [e.decision_id for e in risky])
    todo = [e for e in risky
            if e.decision_id not in labels or not labels[e.decision_id].source.strong][:size]
    ids = [e.decision_id for e in todo]
    return ReviewQueue(todo, {i: labels[i] for i in ids if i in labels},
                       await unsure_marks(redis, ids), len(rows))

"""The decision stream: one entry per decision, for the console, the audit trail,
the learner and backtests.

    {risk:decisions}:stream     "e" = JSON of a DecisionEvent, and its hash-chain link
                                "c", "p", "h" (risk_engine.decision_chain), MAXLEN ~
    {risk:decisions}:idx:<id>   the stream entry id of a decision (TTL), to find it for a label
    {risk:decisions}:chain:*    each chain's head and first entry
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine.assessment import RiskAssessment
from risk_engine.decision_chain import DecisionChainVerification, loop_chain, verify_decision_chains
from risk_engine.errors import DecisionNotFound, RiskStateUnavailable

__all__ = [
    "DECISION_STREAM",
    "RECORDING_SLACK",
    "DecisionEvent",
    "Outcome",
    "get_decision",
    "iter_decisions",
    "read_decisions",
    "record_decision",
    "record_decisions",
    "verify_decisions",
]

# stream and index share a hash tag so the recording script stays in one cluster slot
STREAM_TAG = "{risk:decisions}"
DECISION_STREAM = f"{STREAM_TAG}:stream"
DEFAULT_MAXLEN = 1_000_000
INDEX_TTL = 90 * 86400
# Decisions are recorded within moments of being made, so the stream is in ``at`` order up to
# this much: reading newest first, a decision older than a time window by more ends the scan.
RECORDING_SLACK = 3600.0
CHAIN_HEADS = f"{STREAM_TAG}:chain:heads"
CHAIN_STARTS = f"{STREAM_TAG}:chain:starts"


class Outcome:
    """Outcome names recorded on a decision."""

    ALLOWED = "allowed"  # forwarded without step-up
    STEP_UP = "step_up"  # 401, the session fell short of the required tier
    BLOCKED = "blocked"  # 403, risk level block or amount above every limit
    LIMIT_EXCEEDED = "limit_exceeded"
    UPSTREAM_ERROR = "upstream_error"


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    decision_id: str
    at: float
    user_id: str
    action: str
    amount_fen: int
    features: dict[str, Any]
    score: float
    level: str
    rules_hit: tuple[str, ...]
    required_tier: int
    session_tier: int
    outcome: str
    moves_money: bool = False
    device_status: str = ""
    base_tier: int = 0
    shadow_rules_hit: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    rule_set_version: int = 0
    model_version: str | None = None
    model_score: float | None = None
    challenger_version: str | None = None
    challenger_score: float | None = None
    latencies_ms: dict[str, float] = field(default_factory=dict)
    # The step-up tools by which the session reached its tier (the factors are in assertion.amr)
    tools: tuple[str, ...] = ()
    # The claims of the assertion sent upstream (None when nothing was forwarded)
    assertion: dict[str, Any] | None = None
    # What the upstream answered: {"status": 200} or {"error": "upstream_timeout"}
    upstream: dict[str, Any] | None = None

    @classmethod
    def build(cls, *, decision_id: str, at: float, user_id: str, action: str, amount_fen: int,
              moves_money: bool, device_status: str, features: Mapping[str, Any],
              assessment: RiskAssessment, required_tier: int, base_tier: int,
              session_tier: int, outcome: str,
              latencies_ms: Mapping[str, float] | None = None, tools: tuple[str, ...] = (),
              assertion: dict[str, Any] | None = None,
              upstream: dict[str, Any] | None = None) -> DecisionEvent:
        a = assessment
        return cls(decision_id, at, user_id, action, amount_fen, dict(features), a.score,
                   a.level.value, a.rules_hit, required_tier, session_tier, outcome, moves_money,
                   device_status, base_tier, a.shadow_rules_hit, a.tags, a.rule_set_version,
                   a.model_version, a.model_score, a.challenger_version, a.challenger_score,
                   dict(latencies_ms or {}), tools, assertion, upstream)

    def to_json(self) -> bytes:
        # orjson serialises dataclasses itself (tuples as lists), ~50x faster than asdict()
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes) -> DecisionEvent:
        doc = orjson.loads(raw)
        for name in ("rules_hit", "shadow_rules_hit", "tags", "tools"):
            doc[name] = tuple(doc.get(name, ()))
        return cls(**doc)


async def record_decisions(redis: Redis, events: list[DecisionEvent], *,
                           maxlen: int = DEFAULT_MAXLEN) -> list[str]:
    """Append several decisions, hash-chained, in one script call (the gateway batches its
    writes); their stream entry ids."""
    if not events:
        return []
    return await loop_chain().append(
        redis, DECISION_STREAM, CHAIN_HEADS, CHAIN_STARTS,
        [_index_key(e.decision_id) for e in events], [e.to_json() for e in events],
        maxlen=maxlen, index_ttl=INDEX_TTL)


def _index_key(decision_id: str) -> str:
    return f"{STREAM_TAG}:idx:{decision_id}"


async def record_decision(redis: Redis, event: DecisionEvent, *,
                          maxlen: int = DEFAULT_MAXLEN) -> str:
    """Append to the stream (approximate MAXLEN trim), chained, and index by decision id.

    One round trip (a script); returns the stream entry id."""
    return (await record_decisions(redis, [event], maxlen=maxlen))[0]


async def verify_decisions(redis: Redis) -> DecisionChainVerification:
    """Recompute every chain over the decision stream (see risk_engine.decision_chain)."""
    return await verify_decision_chains(redis, DECISION_STREAM, CHAIN_HEADS, CHAIN_STARTS)


async def read_decisions(redis: Redis, *, start: str = "-", end: str = "+",
                         count: int = 1000, newest_first: bool = False
                         ) -> list[tuple[str, DecisionEvent]]:
    """A page of (stream id, event); ``start``/``end`` are stream ids (inclusive)."""
    try:
        if newest_first:
            rows = await redis.xrevrange(DECISION_STREAM, max=end, min=start, count=count)
        else:
            rows = await redis.xrange(DECISION_STREAM, min=start, max=end, count=count)
    except RedisError as exc:
        raise RiskStateUnavailable(f"reading decisions failed: {exc}") from exc
    return [(rid.decode(), DecisionEvent.from_json(f[b"e"])) for rid, f in rows]


async def iter_decisions(redis: Redis, *, start: str = "-", end: str = "+", page: int = 1000,
                         newest_first: bool = False) -> AsyncIterator[tuple[str, DecisionEvent]]:
    """Every decision between two stream ids, oldest (or newest) first, read a page at a time."""
    while True:
        rows = await read_decisions(redis, start=start, end=end, count=page, newest_first=newest_first)
        for row in rows:
            yield row
        if len(rows) < page:
            return
        if newest_first:
            end = "(" + rows[-1][0]
        else:
            start = "(" + rows[-1][0]


async def get_decision(redis: Redis, decision_id: str) -> tuple[str, DecisionEvent]:
    try:
        entry_id = await redis.get(_index_key(decision_id))
        rows = await redis.xrange(DECISION_STREAM, min=entry_id, max=entry_id) if entry_id else []
    except RedisError as exc:
        raise RiskStateUnavailable(f"reading a decision failed: {exc}") from exc
    if not rows:
        raise DecisionNotFound(f"decision {decision_id!r} is not in the stream")
    return rows[0][0].decode(), DecisionEvent.from_json(rows[0][1][b"e"])

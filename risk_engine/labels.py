"""Labels: analyst verdicts, upstream fraud reports and step-up outcomes (weak).

A label copies the features stored with its decision onto the label stream,
so the learner learns from exactly what was scored (never recomputed).

    {risk:labels}:stream      fields d (decision id), y ("1" fraud / "0" legit), w, s (source), f, at
    {risk:labels}:dec:<id>    the strongest label of a decision (JSON), for backtests and the console
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine.decisions import get_decision
from risk_engine.errors import LabelInvalid, RiskStateUnavailable

__all__ = ["LABEL_STREAM", "Label", "LabelSource", "read_labels", "submit_label"]

LABEL_TAG = "{risk:labels}"
LABEL_STREAM = f"{LABEL_TAG}:stream"
LABEL_MAXLEN = 5_000_000
LABEL_TTL = 400 * 86400


class LabelSource(StrEnum):
    ANALYST = "analyst"
    UPSTREAM_REPORT = "upstream_report"  # a confirmed fraud report from the bank
    STEP_UP = "step_up"  # passed -> weak legit, failed -> weak fraud

    @property
    def strong(self) -> bool:
        return self is not LabelSource.STEP_UP


@dataclass(frozen=True, slots=True)
class Label:
    decision_id: str
    fraud: bool
    source: LabelSource
    weight: float
    at: float
    author: str = ""
    amount_fen: int = 0


def _index_key(decision_id: str) -> str:
    return f"{LABEL_TAG}:dec:{decision_id}"


def _label_doc(label: Label) -> bytes:
    return orjson.dumps({"fraud": label.fraud, "source": label.source.value, "weight": label.weight,
                         "at": label.at, "author": label.author, "amount_fen": label.amount_fen})


async def submit_label(redis: Redis, decision_id: str, *, fraud: bool, source: LabelSource | str,
                       now: float, author: str = "", weight: float | None = None,
                       step_up_weight: float = 0.2) -> str | None:
    """Label a recorded decision and queue it for the learner.

    Weight defaults to 1.0 for analyst and upstream labels and ``step_up_weight``
    for step-up outcomes. A weak label never overrides a strong one already
    given (returns None, nothing queued). Returns the label stream id.
    """
    try:
        source = LabelSource(source)
    except ValueError as exc:
        raise LabelInvalid(f"unknown label source {source!r}") from exc
    w = weight if weight is not None else (1.0 if source.strong else step_up_weight)
    if not 0.0 < w <= 10.0:
        raise LabelInvalid("label weight must be within (0, 10]")
    _sid, event = await get_decision(redis, decision_id)
    label = Label(decision_id, fraud, source, w, now, author, event.amount_fen)
    try:
        existing = await redis.get(_index_key(decision_id))
        if existing is not None and not source.strong and orjson.loads(existing)["source"] != "step_up":
            return None
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(_index_key(decision_id), _label_doc(label), ex=LABEL_TTL)
            pipe.xadd(LABEL_STREAM, {"d": decision_id, "y": b"1" if fraud else b"0",
                                     "w": repr(w), "s": source.value,
                                     "f": orjson.dumps(event.features), "at": repr(now)},
                      maxlen=LABEL_MAXLEN, approximate=True)
            _, entry_id = await pipe.execute()
    except RedisError as exc:
        raise RiskStateUnavailable(f"recording a label failed: {exc}") from exc
    return entry_id.decode()


async def read_labels(redis: Redis, decision_ids: Iterable[str]) -> dict[str, Label]:
    """The strongest label of each labelled decision among ``decision_ids``."""
    ids = list(decision_ids)
    if not ids:
        return {}
    try:
        raws = await redis.mget([_index_key(i) for i in ids])
    except RedisError as exc:
        raise RiskStateUnavailable(f"reading labels failed: {exc}") from exc
    out = {}
    for did, raw in zip(ids, raws, strict=True):
        if raw is None:
            continue
        d = orjson.loads(raw)
        out[did] = Label(did, bool(d["fraud"]), LabelSource(d["source"]), float(d["weight"]),
                         float(d["at"]), d.get("author", ""), int(d.get("amount_fen", 0)))
    return out

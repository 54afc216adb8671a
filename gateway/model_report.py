"""How the risk model has been doing: the published champion and challenger, and per time
bucket the ROC AUC of each, precision and recall at the level thresholds, the step-up
rate and the distribution of the champion's scores.

Everything is computed from the decision stream and the labels; nothing is written.
The pure functions take plain lists (scores, fraud flags, events, a label mapping);
:func:`model_report` does the reading.

* ROC AUC is of the recorded model probability (``model_score`` for the champion,
  ``challenger_score`` for the challenger) over labelled decisions; None when a bucket
  lacks either class.
* Precision and recall at a threshold are of the recorded risk score (model probability
  plus the rules' score deltas, the value the thresholds are set on): "flagged" means
  ``score >= threshold``, over labelled decisions.
* A label is a decision's strongest one (analyst, bank report, or else a step-up outcome),
  as the backtest counts them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from risk_engine import (
    CHALLENGER,
    CHAMPION,
    RECORDING_SLACK,
    DecisionEvent,
    Outcome,
    ProgressiveMetrics,
    RiskThresholds,
    iter_decisions,
    read_labels,
)

if TYPE_CHECKING:
    from gateway.services import Services

__all__ = [
    "HISTOGRAM_BINS",
    "bucket_starts",
    "bucket_stats",
    "histogram",
    "model_report",
    "precision_recall",
    "roc_auc",
]

HISTOGRAM_BINS = 10
READ_PAGE = 1000


def roc_auc(scores: Sequence[float], fraud: Sequence[bool]) -> float | None:
    """P(a fraud scores above a legitimate decision), ties counted half; None unless
    both classes are present. Exact up to ties within 1/1000 of probability (the
    learner's own progressive metric, so the two read the same)."""
    if not any(fraud) or all(fraud):
        return None
    metric = ProgressiveMetrics()
    metric.update_many(np.asarray(fraud, dtype=bool), np.asarray(scores, dtype=float))
    return metric.roc_auc()


def precision_recall(scores: Sequence[float], fraud: Sequence[bool],
                     threshold: float) -> tuple[float | None, float | None]:
    """Precision and recall of ``score >= threshold`` against the fraud flags; each None
    when its denominator is zero (nothing flagged, no fraud)."""
    tp = fp = fn = 0
    for score, is_fraud in zip(scores, fraud, strict=True):
        flagged = score >= threshold
        if is_fraud:
            tp += flagged
            fn += not flagged
        elif flagged:
            fp += 1
    return (tp / (tp + fp) if tp + fp else None, tp / (tp + fn) if tp + fn else None)


def histogram(scores: Iterable[float], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Counts of ``scores`` in ``bins`` equal bins over [0, 1] (1.0 in the last bin;
    scores outside are clipped)."""
    counts = [0] * bins
    for score in scores:
        counts[min(max(int(score * bins), 0), bins - 1)] += 1
    return counts


def bucket_starts(now: float, days: int, bucket_seconds: int) -> list[float]:
    """Start times of the buckets covering the last ``days``, oldest first, aligned to
    multiples of ``bucket_seconds`` (UTC days for 86400); the last one holds ``now``."""
    if days < 1 or bucket_seconds < 1:
        raise ValueError("days and bucket_seconds must be positive")
    count = max(math.ceil(days * 86400 / bucket_seconds), 1)
    last = math.floor(now / bucket_seconds) * bucket_seconds
    return [float(last - (count - 1 - i) * bucket_seconds) for i in range(count)]


def _thresholds(thresholds: RiskThresholds) -> dict[str, float]:
    return {"medium": thresholds.medium, "high": thresholds.high, "block": thresholds.block}


def bucket_stats(events: Sequence[DecisionEvent], labels: Mapping[str, bool], *,
                 start: float, end: float, thresholds: RiskThresholds,
                 bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """The numbers of one bucket from its decisions and ``labels`` (decision id -> fraud).

    Keys: ``start``, ``end``; counts ``decisions``, ``labelled``, ``fraud``, ``scored`` and
    ``challenger_scored`` (decisions with that model's probability); ``roc_auc`` and
    ``challenger_roc_auc`` (None without both classes); ``at_threshold``: per level name
    (medium, high, block) ``threshold``, ``flagged`` (labelled decisions at or above it),
    ``precision`` and ``recall`` (None when undefined); ``step_up_rate`` (None without
    decisions); ``score_histogram`` (counts of the champion's probability in ``bins``
    bins over [0, 1]); ``model_versions`` and ``challenger_versions`` recorded.
    """
    labelled = [(e, labels[e.decision_id]) for e in events if e.decision_id in labels]
    champion = [(e.model_score, y) for e, y in labelled if e.model_score is not None]
    challenger = [(e.challenger_score, y) for e, y in labelled if e.challenger_score is not None]
    scores, fraud = [e.score for e, _y in labelled], [y for _e, y in labelled]
    at_threshold = {}
    for name, value in _thresholds(thresholds).items():
        precision, recall = precision_recall(scores, fraud, value)
        at_threshold[name] = {"threshold": value, "flagged": sum(s >= value for s in scores),
                              "precision": precision, "recall": recall}
    n = len(events)
    return {
        "start": start,
        "end": end,
        "decisions": n,
        "labelled": len(labelled),
        "fraud": sum(fraud),
        "scored": sum(e.model_score is not None for e in events),
        "challenger_scored": sum(e.challenger_score is not None for e in events),
        "roc_auc": roc_auc([s for s, _y in champion], [y for _s, y in champion]),
        "challenger_roc_auc": roc_auc([s for s, _y in challenger], [y for _s, y in challenger]),
        "at_threshold": at_threshold,
        "step_up_rate": (sum(e.outcome == Outcome.STEP_UP for e in events) / n) if n else None,
        "score_histogram": histogram((e.model_score for e in events if e.model_score is not None),
                                     bins),
        "model_versions": sorted({e.model_version for e in events if e.model_version}),
        "challenger_versions": sorted({e.challenger_version for e in events
                                       if e.challenger_version}),
    }


def bucket_report(events: Iterable[DecisionEvent], labels: Mapping[str, bool], *,
                  starts: Sequence[float], bucket_seconds: int, thresholds: RiskThresholds,
                  bins: int = HISTOGRAM_BINS) -> list[dict[str, Any]]:
    """Split ``events`` into the buckets beginning at ``starts`` (outside ones dropped)
    and compute each bucket's numbers."""
    grouped: list[list[DecisionEvent]] = [[] for _ in starts]
    if starts:
        first = starts[0]
        for e in events:
            i = math.floor((e.at - first) / bucket_seconds)
            if 0 <= i < len(starts):
                grouped[i].append(e)
    return [bucket_stats(group, labels, start=s, end=s + bucket_seconds, thresholds=thresholds,
                         bins=bins) for s, group in zip(starts, grouped, strict=True)]


def _finite(metrics: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


async def _version(svc: Services, name: str) -> dict[str, Any] | None:
    """The published version of one model (its stored metadata) and the one this
    gateway is serving, which lags by at most the refresh interval."""
    meta = await svc.risk.model_store.metadata(name, count=1)
    source = svc.risk.champion if name == CHAMPION else svc.risk.challenger
    serving = source.snapshot.label if source is not None and source.snapshot else None
    if not meta:
        return None if serving is None else {"name": name, "version": None, "label": None,
                                             "published_at": None, "labels_learned": None,
                                             "metrics": {}, "serving": serving}
    m = meta[0]
    return {"name": name, "version": int(m["version"]), "label": f"{name}:v{m['version']}",
            "published_at": m.get("created"), "labels_learned": m.get("labels_learned"),
            "metrics": _finite(m.get("metrics") or {}), "serving": serving}


async def _recent_decisions(svc: Services, start: float, max_decisions: int
                            ) -> tuple[list[DecisionEvent], int, bool]:
    """Decisions newer than ``start``, newest first, reading at most ``max_decisions``;
    also how many were read and whether the limit cut the window short."""
    found: list[DecisionEvent] = []
    read = 0
    async for _sid, event in iter_decisions(svc.redis, page=min(READ_PAGE, max_decisions),
                                            newest_first=True):
        if read == max_decisions:
            return found, read, True
        read += 1
        if event.at < start - RECORDING_SLACK:
            break
        if event.at >= start:
            found.append(event)
    return found, read, False


async def model_report(svc: Services, *, now: float, days: int = 14, bucket_seconds: int = 86400,
                       max_decisions: int = 50_000) -> dict[str, Any]:
    """The model report over the last ``days`` (JSON-ready; see the module docstring).

    Reads at most ``max_decisions`` recorded decisions, newest first (``truncated`` says
    the oldest buckets may then be incomplete). Keys: ``now``, ``days``,
    ``bucket_seconds``, ``start``, ``end``, ``decisions_read``, ``truncated``,
    ``thresholds`` (medium, high, block), ``histogram_edges`` and ``score_histogram``
    (the champion's probabilities over the whole window), ``versions`` (champion and
    challenger: ``name``, ``version``, ``label``, ``published_at``, ``labels_learned``,
    ``metrics``, ``serving`` in this process; None when neither published nor served)
    and ``buckets``, oldest first (see :func:`bucket_stats`).

    Raises ``RiskStateUnavailable`` when Redis fails.
    """
    if max_decisions < 1:
        raise ValueError("max_decisions must be positive")
    starts = bucket_starts(now, days, bucket_seconds)
    thresholds = svc.risk.thresholds
    versions = {name: await _version(svc, name) for name in (CHAMPION, CHALLENGER)}
    events, read, truncated = await _recent_decisions(svc, starts[0], max_decisions)
    labels: dict[str, bool] = {}
    for i in range(0, len(events), READ_PAGE):
        found = await read_labels(svc.redis, (e.decision_id for e in events[i:i + READ_PAGE]))
        labels.update({did: label.fraud for did, label in found.items()})
    buckets = bucket_report(events, labels, starts=starts, bucket_seconds=bucket_seconds,
                            thresholds=thresholds)
    return {
        "now": now,
        "days": days,
        "bucket_seconds": bucket_seconds,
        "start": starts[0],
        "end": starts[-1] + bucket_seconds,
        "decisions_read": read,
        "truncated": truncated,
        "thresholds": _thresholds(thresholds),
        "histogram_edges": [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)],
        "score_histogram": [sum(counts) for counts in
                            zip(*(b["score_histogram"] for b in buckets), strict=True)],
        "versions": versions,
        "buckets": buckets,
    }

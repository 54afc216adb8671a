"""The model report's pure core: ROC AUC, precision and recall at a threshold, score
histograms and time buckets, over plain lists of recorded decisions."""

from __future__ import annotations

import math
import types

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.model_report import (
    bucket_report,
    bucket_starts,
    histogram,
    model_report,
    precision_recall,
    roc_auc,
)
from risk_engine import DecisionEvent, Outcome, RiskEngine, RiskStateUnavailable, RiskThresholds

DAY = 86400
T0 = 1_790_000_000.0 - 1_790_000_000.0 % DAY  # a UTC midnight
THRESHOLDS = RiskThresholds(medium=0.5, high=0.7, block=0.9)


def event(decision_id: str, at: float, *, score: float = 0.0, model: float | None = None,
          challenger: float | None = None, outcome: str = Outcome.ALLOWED) -> DecisionEvent:
    return DecisionEvent(decision_id, at, "u", "transfer", 100, {}, score, "low", (), 2, 2,
                         outcome, moves_money=True,
                         model_version="champion:v3" if model is not None else None,
                         model_score=model,
                         challenger_version="challenger:v1" if challenger is not None else None,
                         challenger_score=challenger)


def test_roc_auc_counts_ordered_pairs_and_half_ties():
    # fraud at 0.35 and 0.8, legitimate at 0.1 and 0.4: 3 of 4 pairs ordered
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert roc_auc([0.9, 0.95, 0.1], [True, True, False]) == pytest.approx(1.0)
    assert roc_auc([0.1, 0.9], [True, False]) == pytest.approx(0.0)
    assert roc_auc([0.5, 0.5, 0.5], [True, False, False]) == pytest.approx(0.5)


def test_roc_auc_is_none_without_both_classes():
    assert roc_auc([], []) is None
    assert roc_auc([0.2, 0.9], [True, True]) is None
    assert roc_auc([0.2, 0.9], [False, False]) is None


def test_precision_and_recall_at_a_threshold():
    scores = [0.95, 0.8, 0.6, 0.3, 0.75, 0.1]
    fraud = [True, True, True, True, False, False]
    # flagged at 0.7: 0.95, 0.8 (fraud) and 0.75 (legit); fraud missed: 0.6, 0.3
    assert precision_recall(scores, fraud, 0.7) == pytest.approx((2 / 3, 2 / 4))
    assert precision_recall(scores, fraud, 0.5) == pytest.approx((3 / 4, 3 / 4))
    assert precision_recall(scores, fraud, 0.9) == pytest.approx((1.0, 1 / 4))
    assert precision_recall([0.8], [True], 0.8) == (1.0, 1.0)  # at the threshold is flagged


def test_precision_and_recall_are_none_when_undefined():
    assert precision_recall([0.1, 0.2], [True, False], 0.9) == (None, 0.0)  # nothing flagged
    assert precision_recall([0.95, 0.2], [False, False], 0.9) == (0.0, None)  # no fraud
    assert precision_recall([], [], 0.5) == (None, None)


def test_histogram_has_equal_bins_over_zero_to_one():
    counts = histogram([0.0, 0.05, 0.1, 0.55, 0.999, 1.0, -0.2, 1.3])
    assert len(counts) == 10 and sum(counts) == 8
    assert counts[0] == 3  # 0.0, 0.05 and the clipped -0.2
    assert counts[1] == 1 and counts[5] == 1
    assert counts[9] == 3  # 0.999, 1.0 and the clipped 1.3
    assert histogram([0.3, 0.8], bins=2) == [1, 1]
    assert histogram([]) == [0] * 10


def test_bucket_starts_are_aligned_and_end_with_the_current_one():
    now = T0 + 5 * DAY + 3600
    starts = bucket_starts(now, 3, DAY)
    assert starts == [T0 + 3 * DAY, T0 + 4 * DAY, T0 + 5 * DAY]
    hourly = bucket_starts(now, 1, 3600)
    assert len(hourly) == 24 and hourly[-1] == now - (now % 3600) and hourly[-1] <= now
    with pytest.raises(ValueError):
        bucket_starts(now, 0, DAY)


def test_bucket_report_splits_by_time_and_computes_each_bucket():
    starts = [T0, T0 + DAY, T0 + 2 * DAY]
    events = [
        event("old", T0 - 10, score=0.9, model=0.9),  # before the window: dropped
        # day 0: both classes labelled
        event("a", T0 + 10, score=0.95, model=0.9, challenger=0.2, outcome=Outcome.STEP_UP),
        event("b", T0 + 20, score=0.6, model=0.3, challenger=0.8),
        event("c", T0 + 30, score=0.2, model=0.2, challenger=0.1),
        event("d", T0 + 40, score=0.1, model=0.05),  # unlabelled
        # day 1: only legitimate labels, no challenger
        event("e", T0 + DAY + 5, score=0.75, model=0.75, outcome=Outcome.BLOCKED),
        event("f", T0 + DAY + 6, score=0.1, model=None),
        # day 2: nothing
    ]
    labels = {"a": True, "b": False, "c": False, "e": False, "f": False, "old": True}
    day0, day1, day2 = bucket_report(events, labels, starts=starts, bucket_seconds=DAY,
                                     thresholds=THRESHOLDS)

    assert (day0["start"], day0["end"]) == (T0, T0 + DAY)
    assert (day0["decisions"], day0["labelled"], day0["fraud"]) == (4, 3, 1)
    assert (day0["scored"], day0["challenger_scored"]) == (4, 3)
    assert day0["roc_auc"] == pytest.approx(1.0)  # a (0.9) above b (0.3) and c (0.2)
    assert day0["challenger_roc_auc"] == pytest.approx(0.5)  # a (0.2): above c, below b
    assert day0["step_up_rate"] == pytest.approx(0.25)
    medium = day0["at_threshold"]["medium"]
    assert medium == {"threshold": 0.5, "flagged": 2, "precision": 0.5, "recall": 1.0}
    assert day0["at_threshold"]["block"] == {"threshold": 0.9, "flagged": 1, "precision": 1.0,
                                             "recall": 1.0}
    assert day0["score_histogram"] == [1, 0, 1, 1, 0, 0, 0, 0, 0, 1]
    assert day0["model_versions"] == ["champion:v3"]
    assert day0["challenger_versions"] == ["challenger:v1"]

    assert (day1["decisions"], day1["labelled"], day1["fraud"]) == (2, 2, 0)
    assert day1["roc_auc"] is None and day1["challenger_roc_auc"] is None  # one class
    assert day1["at_threshold"]["high"]["precision"] == 0.0
    assert day1["at_threshold"]["high"]["recall"] is None
    assert day1["step_up_rate"] == 0.0 and day1["scored"] == 1

    assert day2["decisions"] == 0 and day2["step_up_rate"] is None
    assert day2["roc_auc"] is None and day2["score_histogram"] == [0] * 10
    assert all(t["precision"] is None and t["recall"] is None
               for t in day2["at_threshold"].values())


def test_bucket_report_is_json_ready():
    import orjson

    events = [event("a", T0 + 1, score=0.9, model=0.9), event("b", T0 + 2, score=0.1, model=0.1)]
    buckets = bucket_report(events, {"a": True, "b": False}, starts=[T0], bucket_seconds=DAY,
                            thresholds=THRESHOLDS)
    doc = orjson.loads(orjson.dumps(buckets))
    assert doc[0]["roc_auc"] == 1.0 and not math.isnan(doc[0]["at_threshold"]["high"]["recall"])


async def test_an_unreachable_redis_is_risk_state_unavailable(tmp_path):
    redis = Redis(unix_socket_path=str(tmp_path / "no-redis.sock"), retry=Retry(NoBackoff(), 0))
    try:
        svc = types.SimpleNamespace(redis=redis, risk=RiskEngine(redis, model_key=b"k" * 32))
        with pytest.raises(RiskStateUnavailable):
            await model_report(svc, now=T0, days=3)
    finally:
        await redis.aclose()

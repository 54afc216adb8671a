from __future__ import annotations

import random

import pytest

from risk_engine import (
    DecisionEvent,
    DecisionNotFound,
    LabelSource,
    Learner,
    ModelStore,
    RiskEngine,
    RiskLevel,
    RiskThresholds,
    default_model,
    get_decision,
    read_decisions,
    read_labels,
    required_tier,
    submit_label,
)
from risk_engine.labels import LABEL_STREAM

from .conftest import NOW, facts


async def _decide(engine: RiskEngine, f, at, decision_id, session_tier=1, completed=True):
    features, a = await engine.assess(f, at)
    req = required_tier(f.action, f.amount_fen, a.level, f.device_status,
                        moves_money=f.moves_money, payee_new=bool(features["payee_new"]))
    outcome = "blocked" if req.refused else "step_up" if req.tier > session_tier else "allowed"
    await engine.record(DecisionEvent.build(
        decision_id=decision_id, at=at, user_id=f.user_id, action=f.action,
        amount_fen=f.amount_fen, moves_money=f.moves_money, device_status=f.device_status,
        features=features, assessment=a, required_tier=req.tier, base_tier=req.base_tier,
        session_tier=session_tier, outcome=outcome, latencies_ms={"risk": 0.2}))
    await engine.after_decision(f, decision_id=decision_id, now=at, completed=completed)
    return features, a, req


async def test_account_takeover_is_blocked_and_habit_is_low(redis, model_key):
    engine = RiskEngine(redis, model_key=model_key)
    for day in range(20):
        _f, a, _r = await _decide(engine, facts(amount_fen=30_000), NOW - (20 - day) * 86400, f"d{day}")
    _f, a, req = await _decide(engine, facts(amount_fen=30_000), NOW, "usual")
    assert a.level is RiskLevel.LOW and req.tier == 1 and a.rules_hit == ()
    assert any(r.name == "model_absent" for r in a.reasons)
    await engine.history.record_sim_change("alice", NOW - 1800)
    thief = facts(amount_fen=4_000_000, payee="6222999988887777", device_id="alice.evil",
                  device_status="new", device_created=None, ip="203.0.113.7")
    _f, a, req = await _decide(engine, thief, NOW + 60, "ato", completed=False)
    assert a.level is RiskLevel.BLOCK and req.refused
    assert "sim_swap_new_device" in a.rules_hit
    assert a.claims()["level"] == "block" and "sim_swap_new_device" in a.claims()["rules"]
    _sid, event = await get_decision(redis, "ato")
    assert event.outcome == "blocked" and event.features["sim_swap_recent"] is True
    assert event.latencies_ms == {"risk": 0.2}
    rows = await read_decisions(redis, newest_first=True, count=1)
    assert rows[0][1].decision_id == "ato"


async def test_labels_learner_snapshots_and_warm_up(redis, model_key):
    engine = RiskEngine(redis, model_key=model_key, model_refresh=0.0,
                        thresholds=RiskThresholds(min_labels=60))
    rng = random.Random(3)
    truth = {}
    for i in range(120):
        fraud = i % 6 == 0
        f = facts(user_id=f"u{i}", amount_fen=rng.randint(2_000_000, 4_000_000) if fraud
                  else rng.randint(5_000, 50_000),
                  device_status="new" if fraud else "bound",
                  device_signals={"hooked": fraud})
        await _decide(engine, f, NOW + i, f"dec{i}")
        truth[f"dec{i}"] = fraud
    for did, fraud in truth.items():
        await submit_label(redis, did, fraud=fraud, source=LabelSource.ANALYST, author="ana",
                           now=NOW + 500)
    # a weak step-up label never overrides the analyst's verdict
    assert await submit_label(redis, "dec0", fraud=False, source="step_up", now=NOW + 501) is None
    labels = await read_labels(redis, ["dec0", "dec1", "nope"])
    assert labels["dec0"].fraud and labels["dec0"].source is LabelSource.ANALYST
    assert "nope" not in labels
    with pytest.raises(DecisionNotFound):
        await submit_label(redis, "missing", fraud=True, source="analyst", now=NOW)

    store = ModelStore(redis, model_key)
    learner = Learner(redis, store, challenger_factory=lambda: default_model(positive_weight=5.0),
                      publish_every=50)
    await learner.start()
    n = 0
    while (got := await learner.step(NOW + 600, count=50)):
        n += got
    assert n == 120 and learner.labels_learned == 120
    await learner.publish(NOW + 601)
    # features came from the stream, never recomputed: the stream entries carry them
    entry = (await redis.xrange(LABEL_STREAM, count=1))[0][1]
    assert b"amount_cny" in entry[b"f"]

    # gateways pick up the new champion and the challenger is recorded beside it
    ato = facts(user_id="zed", amount_fen=3_000_000, device_status="new",
                device_signals={"hooked": True})
    _x, a = await engine.assess(ato, NOW + 700)
    assert a.model_version == f"champion:v{(await store.current_version('champion'))}"
    assert a.challenger_version and a.challenger_score is not None
    assert a.model_score > 0.5
    assert [r for r in a.reasons if r.kind == "feature"]
    normal = facts(user_id="amy", amount_fen=10_000)
    _x, b = await engine.assess(normal, NOW + 700)
    assert b.model_score < a.model_score and b.level is RiskLevel.LOW

    # a restarted learner resumes after the last label and learns nothing twice
    again = Learner(redis, store)
    await again.start()
    assert again.labels_learned == 120 and await again.step(NOW + 800) == 0


async def test_model_contributes_nothing_until_min_labels(redis, model_key):
    store = ModelStore(redis, model_key)
    learner = Learner(redis, store)
    await learner.start()
    await learner.publish(NOW)  # zero labels learned
    engine = RiskEngine(redis, model_key=model_key, thresholds=RiskThresholds(min_labels=10))
    _x, a = await engine.assess(facts(), NOW)
    assert a.model_score is None and a.model_version is None
    assert any(r.name == "model_warming_up" for r in a.reasons)

from __future__ import annotations

from risk_engine import (
    LabelSource,
    RiskEngine,
    Rule,
    RuleEffect,
    RuleSet,
    backtest,
    default_rule_set,
    submit_label,
)

from .conftest import NOW, facts
from .test_engine_learner import _decide


async def test_backtest_reports_changes_and_writes_nothing(redis, model_key):
    engine = RiskEngine(redis, model_key=model_key)
    # 30 ordinary transfers to a known payee, 4 frauds the default pack misses:
    # mid-size transfers from a hooked-free, bound device at an unusual hour
    for i in range(30):
        f = facts(user_id=f"u{i}", amount_fen=80_000, payee="p-known")
        await _decide(engine, f, NOW - 86400 * 3 + i, f"warm{i}")
    for i in range(30):
        await _decide(engine, facts(user_id=f"u{i}", amount_fen=80_000, payee="p-known"),
                      NOW + i, f"ok{i}", session_tier=2)
        await submit_label(redis, f"ok{i}", fraud=False, source=LabelSource.ANALYST, now=NOW + 100)
    for i in range(4):
        await _decide(engine, facts(user_id=f"v{i}", amount_fen=400_000, payee="p-known",
                                    device_similarity=0.2), NOW + 50 + i, f"fraud{i}",
                      session_tier=2)
        await submit_label(redis, f"fraud{i}", fraud=True, source="upstream_report", now=NOW + 100)

    before_keys = sorted(await redis.keys("*"))
    before_len = await redis.xlen("{risk:decisions}:stream")
    candidate = RuleSet(default_rule_set().rules + (
        Rule("dissimilar_device_money", "moves_money && device_similarity < 0.5 && amount_cny >= 2000",
             RuleEffect.MIN_LEVEL, level="medium"),))
    report = await backtest(redis, candidate)
    assert sorted(await redis.keys("*")) == before_keys
    assert await redis.xlen("{risk:decisions}:stream") == before_len

    assert report.recorded.recall == 0.0 and report.candidate.recall == 1.0
    assert report.candidate.precision == 1.0
    assert report.candidate.fraud_amount_caught_fen == 4 * 400_000
    assert report.recorded.fraud_amount_caught_fen == 0
    assert report.candidate.step_up_rate > report.recorded.step_up_rate
    changed = {c.decision_id: c for c in report.changed}
    assert set(changed) == {f"fraud{i}" for i in range(4)}
    assert changed["fraud0"].before == "allowed" and changed["fraud0"].after == "step_up"
    assert changed["fraud0"].fraud is True

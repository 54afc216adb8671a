"""The simulator drives the in-process decision code (bench/risk_quality.py) on a real
Redis: the attacks are tried and the policies compared."""

from __future__ import annotations

from bench.risk_quality import run_quality
from mobile_client.simulator import FraudMix, simulate
from risk_engine import RiskThresholds


async def test_simulated_traffic_through_the_decision_code(redis):
    sim = simulate(5, customers=90, days=24, warmup_days=10, mix=FraudMix().scaled(0.1))
    trace: list = []
    report = await run_quality(redis, sim, thresholds=RiskThresholds(min_labels=300),
                               publish_every=300, batch_size=100, trace=trace)
    rg, rules, static = (report.stats[p] for p in ("riskgate", "rules only", "static"))
    assert rg.fraud_n == rules.fraud_n == static.fraud_n > 0
    assert rg.legit_n == static.legit_n > 0
    # the ATO after a SIM swap is refused outright by the default pack
    ato = [(a, f) for a, _x, f, _r in trace if a.scenario.value == "ato_sim_swap"]
    assert ato and all("sim_swap_new_device" in f.rules_hit for _a, f in ato)
    assert rg.by_scenario["ato_sim_swap"][1] == rg.by_scenario["ato_sim_swap"][0]
    # a password alone never passes the new-device step-up, whatever the policy
    for s in (rg, rules, static):
        total, stopped = s.by_scenario["credential_stuffing"]
        assert stopped == total > 0
    # risk scoring stops more fraud money than the static threshold
    assert rg.fraud_stopped_fen >= rules.fraud_stopped_fen > static.fraud_stopped_fen
    assert rg.legit_blocked / rg.legit_n < 0.01
    # the model learned from the labels and published signed snapshots the engine loaded
    assert report.labels_learned >= 300 and report.scored > 0
    assert 0.5 < report.roc_auc <= 1.0

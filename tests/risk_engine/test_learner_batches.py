"""The learner's mini-batch path (River learn_many) and the default model's contract."""

from __future__ import annotations

import random

import pandas as pd

from risk_engine import Learner, ModelStore, default_model, model_input, submit_label
from risk_engine.learner import batch_model

from .conftest import NOW, facts
from .test_engine_learner import _decide


def _rows(n: int, seed: int = 1):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        fraud = rng.random() < 0.1
        rows.append(({"amount_cny": rng.uniform(20_000, 40_000) if fraud else rng.uniform(10, 3_000),
                      "payee_new": fraud or rng.random() < 0.05, "device_status":
                      "new" if fraud else rng.choice(("bound", "bound", "known")),
                      "account_age_days": 400.0}, fraud, 1.0))
    return rows


def test_default_model_takes_any_numeric_dict():
    model = default_model()
    for i in range(200):
        model.learn_one({"a": float(i % 7), "b": i % 3}, i % 7 == 0)
    high = model.predict_proba_one({"a": 0.0, "b": 1})[True]
    low = model.predict_proba_one({"a": 5.0, "b": 1})[True]
    assert 0.0 <= low < high <= 1.0


def test_mini_batches_learn_and_score_like_single_rows():
    learner = Learner(None, None, batch_size=64)  # type: ignore[arg-type]
    learner.start_fresh()
    learner.learn_many(_rows(2_000))
    assert learner.labels_learned == 2_000
    model = learner.snapshot_models()[0].model
    fraud = model_input({"amount_cny": 30_000.0, "payee_new": True, "device_status": "new",
                         "account_age_days": 400.0})
    legit = model_input({"amount_cny": 200.0, "payee_new": False, "device_status": "bound",
                         "account_age_days": 400.0})
    assert model.predict_proba_one(fraud)[True] > 0.8 > 0.2 > model.predict_proba_one(legit)[True]
    # the batch and the single-row paths transform the same way (one-hot, scaling, clip)
    many = model.predict_proba_many(pd.DataFrame([fraud, legit]))[True].tolist()
    assert many[0] == model.predict_proba_one(fraud)[True]
    assert many[1] == model.predict_proba_one(legit)[True]
    # a category never seen in training scores without error
    odd = dict(legit, device_status="changed")
    assert 0.0 <= model.predict_proba_one(odd)[True] <= 1.0
    assert learner.snapshot_models()[0].metrics["progressive_roc_auc"] > 0.9


def test_constant_column_in_a_batch_does_not_break_scaling():
    model = batch_model()
    X = pd.DataFrame({"x": [0.1] * 50, "y": [float(i) for i in range(50)]})  # noqa: N806
    y = pd.Series([i % 5 == 0 for i in range(50)])
    model.learn_many(X, y)
    p = model.predict_proba_many(X)[True]
    assert p.notna().all() and ((p >= 0) & (p <= 1)).all()


async def test_learner_reads_the_stream_in_batches(redis, model_key):
    from risk_engine import RiskEngine
    engine = RiskEngine(redis, model_key=model_key)
    for i in range(90):
        fraud = i % 9 == 0
        f = facts(user_id=f"b{i}", amount_fen=3_000_000 if fraud else 20_000,
                  device_status="new" if fraud else "bound")
        await _decide(engine, f, NOW + i, f"bd{i}")
        await submit_label(redis, f"bd{i}", fraud=fraud, source="analyst", now=NOW + 100)
    store = ModelStore(redis, model_key)
    learner = Learner(redis, store, batch_size=32, publish_every=10**6)
    await learner.start()
    assert await learner.step(NOW + 200, count=1000) == 90
    assert learner.labels_learned == 90 and await learner.step(NOW + 201) == 0
    [snap] = await learner.publish(NOW + 202)
    resumed = Learner(redis, store, batch_size=32)
    await resumed.start()
    assert resumed.position == snap.label_position and await resumed.step(NOW + 300) == 0

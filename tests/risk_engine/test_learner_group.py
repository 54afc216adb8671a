"""The learner reads labels as the single consumer of a consumer group; a standby takes over."""

from __future__ import annotations

import os
import socket

from risk_engine import Learner, ModelStore, RiskEngine, submit_label
from risk_engine.labels import LABEL_STREAM
from risk_engine.learner import LEARNER_GROUP

from .conftest import NOW, facts
from .test_engine_learner import _decide


async def _labels(redis, engine, first: int, n: int) -> None:
    for i in range(first, first + n):
        await _decide(engine, facts(user_id=f"g{i}", amount_fen=20_000), NOW + i, f"gd{i}")
        await submit_label(redis, f"gd{i}", fraud=i % 4 == 0, source="analyst", now=NOW + 100)


async def test_a_standby_learner_takes_over_at_the_last_published_position(redis, model_key):
    engine = RiskEngine(redis, model_key=model_key)
    store = ModelStore(redis, model_key)
    await _labels(redis, engine, 0, 20)
    first = Learner(redis, store, batch_size=1, publish_every=10**6)
    await first.start()
    assert await first.step(NOW + 200) == 20
    [published] = await first.publish(NOW + 201)
    await _labels(redis, engine, 20, 5)
    assert await first.step(NOW + 202) == 5  # learned, never published: the process dies here

    standby = Learner(redis, store, batch_size=1, publish_every=10**6)
    await standby.start()
    assert standby.position == published.label_position
    assert await standby.step(NOW + 300) == 5  # the unpublished labels again, none twice
    assert standby.labels_learned == 25 and await standby.step(NOW + 301) == 0

    [group] = await redis.xinfo_groups(LABEL_STREAM)
    assert group["name"].decode() == LEARNER_GROUP
    assert group["pending"] == 0  # a cursor only: what was learned is in the snapshots
    consumers = await redis.xinfo_consumers(LABEL_STREAM, LEARNER_GROUP)
    assert [c["name"].decode() for c in consumers] == [f"{socket.gethostname()}-{os.getpid()}"]

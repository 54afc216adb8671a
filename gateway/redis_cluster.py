"""The gateway's client for a Redis Cluster.

``redis.url = "redis+cluster://host:port[,host:port...]"`` names one or more
seed nodes (``rediss+cluster://`` for TLS, user and password as in any Redis
URL); the client learns the rest of the cluster from them. Every key a single command, script or transaction
touches shares one hash slot (``{u:<id>}`` for a user's state, one tag per
global keyring), so nothing the gateway does needs a cross-slot operation.

While a master is unreachable redis-py raises some errors that are not
``RedisError``s (no node serves the slot, no seed answers); they are turned
into :class:`ClusterUnavailable`, a ``ConnectionError``, so requests fail
closed with 503 ``state_unavailable`` like on a single Redis that is down. So
are the ``RuntimeError`` and ``AttributeError`` a connection raises when
redis-py, handling a node that went away, closes connections other requests
are still using (they reconnect on their next use).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError, SlotNotCoveredError

__all__ = ["SCHEMES", "ClusterUnavailable", "GatewayCluster", "is_cluster_url", "open_cluster", "seed_nodes"]

DEFAULT_PORT = 6379
_CONNECTION_MODULE = os.path.join("redis", "asyncio", "connection.py")
SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in SCHEMES


class ClusterUnavailable(RedisConnectionError):
    """No reachable master serves the slot a command needs."""


def _raised_by_a_connection(exc: BaseException) -> bool:
    """The innermost frame of redis-py is its connection code (a socket closed under it)."""
    innermost = ""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if f"{os.sep}redis{os.sep}" in name:
            innermost = name
        tb = tb.tb_next
    return innermost.endswith(_CONNECTION_MODULE)


def _unavailable(exc: Exception) -> bool:
    # Cross-slot use is a programming error and must stay loud; the rest is an outage.
    if isinstance(exc, (RuntimeError, AttributeError)):
        return _raised_by_a_connection(exc)
    return isinstance(exc, SlotNotCoveredError) or "cannot be connected" in str(exc) \
        or "not covered" in str(exc)


class _GatewayPipeline(ClusterPipeline):
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute(*args, **kwargs)
        except (RedisClusterException, RuntimeError, AttributeError) as exc:
            if _unavailable(exc):
                raise ClusterUnavailable(str(exc)) from exc
            raise


class GatewayCluster(RedisCluster):
    """A RedisCluster whose outage errors are Redis connection errors."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except (RedisClusterException, RuntimeError, AttributeError) as exc:
            if _unavailable(exc):
                raise ClusterUnavailable(str(exc)) from exc
            raise

    async def ping(self, **kwargs: Any) -> bool:
        """True while any master answers (``/readyz``): one master down is a partial
        outage every gateway shares, not a reason to take them all out of service."""
        if kwargs:
            return bool(await super().ping(**kwargs))
        # Two passes: a command that meets the master that went away makes redis-py close
        # every connection of the client, and a PING running on a live master just then
        # fails with it; the second pass runs on the topology read afresh.
        for _ in range(2):
            try:
                if self._initialize:
                    await self.initialize()
            except RedisError:
                continue
            for node in self.get_primaries():
                try:
                    if await self.execute_command("PING", target_nodes=node):
                        return True
                except (RedisError, OSError):
                    continue
        return False

    async def initialize(self, *args: Any, **kwargs: Any) -> GatewayCluster:
        try:
            await super().initialize(*args, **kwargs)
        except (RedisClusterException, RuntimeError, AttributeError) as exc:
            if _unavailable(exc):
                raise ClusterUnavailable(str(exc)) from exc
            raise
        return self

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return _GatewayPipeline(self, transaction)


def seed_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """Split ``redis+cluster://[auth@]h1:p1,h2:p2[?opts]`` into a one-node redis:// URL and all seeds."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"a cluster URL starts with {' or '.join(s + '://' for s in SCHEMES)}")
    auth, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    if parts.path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0")
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep:
            host, port = item.strip(), str(DEFAULT_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad cluster seed {item!r} (want host:port)")
        seeds.append((host.strip("[]"), int(port)))
    first = f"{auth}@" if auth else ""
    netloc = f"{first}{hosts.split(',')[0].strip()}"
    return urlunsplit((SCHEMES[parts.scheme], netloc, parts.path, parts.query, "")), seeds


def open_cluster(url: str) -> GatewayCluster:
    """A cluster client from the seed URL; connects on first use."""
    single, seeds = seed_nodes(url)
    client = GatewayCluster.from_url(single)
    for host, port in seeds[1:]:  # the other seeds, with the same credentials and TLS
        node = ClusterNode(host, port, **client.connection_kwargs)
        client.nodes_manager.startup_nodes.setdefault(node.name, node)
    return client

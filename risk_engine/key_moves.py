"""Moving state from an old key name to a new one (keys that gained a hash tag).

A key that a script or transaction uses together with others must share their
Redis Cluster slot, so some global keys gained a hash tag (``risk:rules:seq``
became ``{risk:rules}:seq``). Stores call :func:`move_keys` once before their
first use: each old key still present is copied to its new name with DUMP and
RESTORE (value, type and TTL kept; works across slots and on a single Redis)
and then deleted. A new key that already exists is never overwritten, so
processes racing through the same move are harmless.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

__all__ = ["move_keys"]


async def move_keys(redis: Redis, pairs: Iterable[tuple[str, str]]) -> int:
    """Move each ``(old, new)`` key unless ``new`` exists; returns how many moved."""
    moved = 0
    for old, new in pairs:
        blob = await redis.dump(old)
        if blob is None:
            continue
        if not await redis.exists(new):
            ttl = await redis.pttl(old)
            try:
                await redis.restore(new, max(int(ttl), 0), blob)
                moved += 1
            except ResponseError as exc:
                if "BUSYKEY" not in str(exc):  # another process moved it first
                    raise
        await redis.delete(old)
    return moved

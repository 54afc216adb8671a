"""Single use of a step-up signature or assertion.

The ceremony state is already single use, but a signature stays valid for its
challenge and transaction: a client that re-begins and posts a captured
answer again is told ``replayed`` (and a FIDO assertion replayed this way is
refused before its unchanged counter could flag the authenticator).
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from auth_tools.errors import Replayed
from device_fingerprint.registry import user_tag

__all__ = ["claim_once"]


async def claim_once(redis: Redis, user_id: str, tool: str, answer: bytes, ttl: float) -> None:
    """Record ``answer`` as used for ``ttl`` seconds; raise :class:`Replayed` if it was."""
    digest = hashlib.sha256(answer).hexdigest()
    key = f"{user_tag(user_id)}:used:{tool}:{digest}"
    if not await redis.set(key, b"1", nx=True, ex=max(1, int(ttl) + 1)):
        raise Replayed()

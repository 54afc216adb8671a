"""Enrolled step-up credentials, sealed at rest in Redis.

One hash per user and tool, ``{u:<user>}:cred:<tool>``, field = credential id,
value = the credential document as JSON sealed with AES-GCM under the data key. The
additional data binds each sealed value to its user, tool and id, so a value
copied to another user's key or field does not open.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from device_fingerprint.registry import user_tag
from gateway.sealing import Sealer

__all__ = ["CredentialStore"]


class CredentialStore:
    def __init__(self, redis: Redis, sealer: Sealer) -> None:
        self._redis = redis
        self._sealer = sealer

    @staticmethod
    def key(user_id: str, tool: str) -> str:
        return f"{user_tag(user_id)}:cred:{tool}"

    @staticmethod
    def _aad(user_id: str, tool: str, cred_id: str) -> bytes:
        return f"riskgate-cred-v1|{user_id}|{tool}|{cred_id}".encode()

    async def put(self, user_id: str, tool: str, cred_id: str, doc: dict[str, object]) -> None:
        sealed = self._sealer.seal(orjson.dumps(doc), self._aad(user_id, tool, cred_id))
        await self._redis.hset(self.key(user_id, tool), cred_id, sealed)

    async def get(self, user_id: str, tool: str, cred_id: str) -> dict[str, object] | None:
        raw = await self._redis.hget(self.key(user_id, tool), cred_id)
        if raw is None:
            return None
        return orjson.loads(self._sealer.open(raw.decode(), self._aad(user_id, tool, cred_id)))

    async def all(self, user_id: str, tool: str) -> dict[str, dict[str, object]]:
        raw = await self._redis.hgetall(self.key(user_id, tool))
        out: dict[str, dict[str, object]] = {}
        for field, sealed in raw.items():
            cred_id = field.decode()
            out[cred_id] = orjson.loads(self._sealer.open(sealed.decode(),
                                                          self._aad(user_id, tool, cred_id)))
        return out

    async def delete(self, user_id: str, tool: str, cred_id: str) -> bool:
        return bool(await self._redis.hdel(self.key(user_id, tool), cred_id))

    def queue_tools_of(self, pipe: Any, user_id: str, tools: list[str]) -> None:
        """Queue the count of the user's credentials per tool on a pipeline (one reply per
        tool); :meth:`parse_tools_of` reads the replies."""
        for tool in tools:
            pipe.hlen(self.key(user_id, tool))

    @staticmethod
    def parse_tools_of(tools: list[str], counts: list[Any]) -> dict[str, int]:
        return {tool: int(n) for tool, n in zip(tools, counts, strict=True) if n}

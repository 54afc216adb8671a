"""Sessions: opaque bearer tokens bound to user and device.

The token is ``<user_id>.<43 base64url chars>`` (256 random bits); Redis keeps
only its SHA-256 under the user's hash tag, with the idle timeout as the key's
TTL and the absolute timeout checked against the creation time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from device_fingerprint.registry import user_tag
from gateway.errors import Unauthorized

__all__ = ["Session", "SessionStore"]

_TOKEN_RE = re.compile(r"^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class Session:
    key: str
    sid: str
    user_id: str
    device_id: str
    created: float
    auth_time: float
    factors: dict[str, float]

    def factor_age(self, factor: str, now: float) -> float | None:
        at = self.factors.get(factor)
        return None if at is None else now - at


class SessionStore:
    def __init__(self, redis: Redis, *, idle_timeout: int, absolute_timeout: int) -> None:
        self._redis = redis
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout

    @staticmethod
    def key_for(token: str) -> str:
        m = _TOKEN_RE.match(token)
        if not m:
            raise Unauthorized("session_invalid", "the session token is not valid")
        digest = hashlib.sha256(token.encode()).hexdigest()
        return f"{user_tag(m.group(1))}:sess:{digest}"

    async def create(self, user_id: str, device_id: str, factors: dict[str, float],
                     now: float) -> tuple[str, Session]:
        token = f"{user_id}.{secrets.token_urlsafe(32)}"
        key = self.key_for(token)
        sid = secrets.token_urlsafe(12)
        await self._redis.hset(key, mapping={
            "sid": sid, "user": user_id, "device": device_id, "created": repr(now),
            "auth_time": repr(now), "factors": orjson.dumps(factors),
        })
        await self._redis.expire(key, self.idle_timeout)
        return token, Session(key, sid, user_id, device_id, now, now, dict(factors))

    def parse(self, key: str, raw: dict[bytes, bytes], *, device_id: str, now: float) -> Session:
        if not raw:
            raise Unauthorized("session_invalid", "the session has expired or does not exist")
        session = Session(
            key=key,
            sid=raw[b"sid"].decode(),
            user_id=raw[b"user"].decode(),
            device_id=raw[b"device"].decode(),
            created=float(raw[b"created"]),
            auth_time=float(raw[b"auth_time"]),
            factors=orjson.loads(raw[b"factors"]),
        )
        if now - session.created > self.absolute_timeout:
            raise Unauthorized("session_invalid", "the session has expired or does not exist")
        if session.device_id != device_id:
            raise Unauthorized("session_device_mismatch", "this session belongs to another device")
        return session

    def idle_ttl(self, session: Session, now: float) -> int:
        remaining = int(session.created + self.absolute_timeout - now)
        return max(1, min(self.idle_timeout, remaining))

    async def load(self, token: str, *, device_id: str, now: float) -> Session:
        key = self.key_for(token)
        session = self.parse(key, await self._redis.hgetall(key), device_id=device_id, now=now)
        await self._redis.expire(key, self.idle_ttl(session, now))
        return session

    async def delete(self, token: str) -> None:
        await self._redis.delete(self.key_for(token))

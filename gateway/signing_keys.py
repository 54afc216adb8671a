"""The gateway's ES256 assertion keys, kept in Redis.

Private keys are sealed under the data key (:mod:`gateway.sealing`). One key is
current. ``rotate(now, publish_ahead=s)`` publishes the new key in the JWKS at
once but signs with it only ``s`` seconds later, so an upstream that rate-limits
its JWKS refetches (the reference upstream: ``jwks_min_refetch_interval``)
has fetched it before it meets the new ``kid``. The previous key stays
published until every token it signed has expired. Every gateway process
re-reads the current key pointer at most ``refresh_interval`` seconds after a
rotation.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import orjson
from joserfc.jwk import ECKey
from redis.asyncio import Redis

from gateway.sealing import Sealer

__all__ = ["SigningKey", "SigningKeyStore"]

KEYS_HASH = "riskgate:signing-keys"
CURRENT_KEY = "riskgate:signing-key:current"


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    created: float
    private: ECKey


class SigningKeyStore:
    def __init__(self, redis: Redis, sealer: Sealer, *, token_lifetime: int,
                 refresh_interval: float = 1.0) -> None:
        self._redis = redis
        self._sealer = sealer
        self._token_lifetime = token_lifetime
        self._refresh_interval = refresh_interval
        self._current: SigningKey | None = None
        self._checked_at = 0.0
        # The pointer's record: from when it signs, and the key that signs until then.
        self._pointer: str | None = None
        self._active_from = 0.0
        self._previous: str | None = None

    def _new_record(self, now: float) -> tuple[str, bytes]:
        kid = time.strftime("%Y%m%d", time.gmtime(now)) + "-" + secrets.token_hex(4)
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"},
                                 private=True)
        private_json = orjson.dumps(key.as_dict(private=True))
        record = {
            "kid": kid,
            "created": now,
            "retire_at": None,
            "public": key.as_dict(private=False),
            "private": self._sealer.seal(private_json, b"signing-key:" + kid.encode()),
        }
        return kid, orjson.dumps(record)

    async def ensure_key(self, now: float) -> str:
        """Create the first signing key if the store has none; return the current kid."""
        current = await self._redis.get(CURRENT_KEY)
        if current:
            return current.decode()
        kid, record = self._new_record(now)
        await self._redis.hset(KEYS_HASH, kid, record)
        if await self._redis.set(CURRENT_KEY, kid, nx=True):
            return kid
        await self._redis.hdel(KEYS_HASH, kid)  # another process won the race
        return (await self._redis.get(CURRENT_KEY)).decode()

    async def rotate(self, now: float, *, publish_ahead: float = 0.0) -> tuple[str, str | None]:
        """Make a new current key, signing from ``now + publish_ahead``; the old one
        signs until then and stays published until its tokens expire."""
        old = await self._redis.get(CURRENT_KEY)
        kid, record = self._new_record(now)
        if publish_ahead > 0 and old:
            doc = orjson.loads(record)
            doc.update(active_from=now + publish_ahead, previous=old.decode())
            record = orjson.dumps(doc)
        await self._redis.hset(KEYS_HASH, kid, record)
        await self._redis.set(CURRENT_KEY, kid)
        if old:
            raw = await self._redis.hget(KEYS_HASH, old)
            if raw:
                doc = orjson.loads(raw)
                # Other processes may sign with the old key until they refresh.
                doc["retire_at"] = (now + publish_ahead + self._refresh_interval
                                    + self._token_lifetime + 5)
                await self._redis.hset(KEYS_HASH, old, orjson.dumps(doc))
        await self._prune(now)
        self._checked_at = 0.0
        return kid, old.decode() if old else None

    async def _prune(self, now: float) -> None:
        for kid, raw in (await self._redis.hgetall(KEYS_HASH)).items():
            retire_at = orjson.loads(raw).get("retire_at")
            if retire_at is not None and retire_at + 300 < now:
                await self._redis.hdel(KEYS_HASH, kid)

    async def current(self, now: float) -> SigningKey:
        if (self._current is not None and now - self._checked_at < self._refresh_interval
                and not (self._previous and self._current.kid == self._previous
                         and now >= self._active_from)):
            return self._current
        kid_raw = await self._redis.get(CURRENT_KEY)
        kid = kid_raw.decode() if kid_raw else await self.ensure_key(now)
        if kid != self._pointer:
            doc = await self._record(kid)
            self._pointer, self._active_from = kid, float(doc.get("active_from") or 0.0)
            self._previous = doc.get("previous")
        signing = self._previous if self._previous and now < self._active_from else kid
        if self._current is None or self._current.kid != signing:
            doc = await self._record(signing)
            private = self._sealer.open(doc["private"], b"signing-key:" + signing.encode())
            self._current = SigningKey(signing, doc["created"], ECKey.import_key(orjson.loads(private)))
        self._checked_at = now
        return self._current

    async def _record(self, kid: str) -> dict:
        raw = await self._redis.hget(KEYS_HASH, kid)
        if raw is None:
            raise RuntimeError(f"signing key {kid} is missing from Redis")
        return orjson.loads(raw)

    async def jwks(self, now: float) -> dict[str, list[dict[str, object]]]:
        keys = []
        for raw in (await self._redis.hgetall(KEYS_HASH)).values():
            doc = orjson.loads(raw)
            if doc.get("retire_at") is None or doc["retire_at"] > now:
                keys.append(doc["public"])
        keys.sort(key=lambda k: str(k.get("kid")))
        return {"keys": keys}

"""The gateway's ECDH P-256 payload-encryption keys, kept in Redis.

Modelled on :mod:`gateway.signing_keys`: private keys are sealed under the KEK,
one key is current and published in the JWKS with ``use: enc``. After
``rotate`` the previous key is still published and still decrypts for
``grace_seconds`` (clients cache the JWKS), then it is retired: a JWE to a
retired key gets ``jwe_unknown_kid`` and the client fetches the JWKS again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import orjson
from joserfc.jwk import ECKey
from redis.asyncio import Redis

from gateway.sealing import Sealer

__all__ = ["ENC_ALGORITHMS", "ENC_CONTENT_ALGORITHM", "EncryptionKey", "EncryptionKeyStore"]

KEYS_HASH = "riskgate:enc-keys"
CURRENT_KEY = "riskgate:enc-key:current"
# The allow-list: key agreement (direct or with AES key wrap) and content encryption.
ENC_ALGORITHMS = ("ECDH-ES+A256KW", "ECDH-ES")
ENC_CONTENT_ALGORITHM = "A256GCM"


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    kid: str
    created: float
    private: ECKey


@dataclass(frozen=True, slots=True)
class _Record:
    kid: str
    created: float
    retire_at: float | None
    public: dict[str, object]
    sealed: str

    def live(self, now: float) -> bool:
        return self.retire_at is None or self.retire_at > now


def _aad(kid: str) -> bytes:
    return b"enc-key:" + kid.encode()


class EncryptionKeyStore:
    def __init__(self, redis: Redis, sealer: Sealer, *, grace_seconds: int,
                 refresh_interval: float = 1.0) -> None:
        self._redis = redis
        self._sealer = sealer
        self._grace = grace_seconds
        self._refresh_interval = refresh_interval
        self._records: dict[str, _Record] = {}
        self._current_kid: str | None = None
        self._private: dict[str, EncryptionKey] = {}
        self._checked_at = float("-inf")

    def _new_record(self, now: float) -> tuple[str, bytes]:
        kid = "enc-" + time.strftime("%Y%m%d", time.gmtime(now)) + "-" + secrets.token_hex(4)
        key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "enc", "alg": ENC_ALGORITHMS[0]},
                                 private=True)
        record = {
            "kid": kid,
            "created": now,
            "retire_at": None,
            "public": key.as_dict(private=False),
            "private": self._sealer.seal(orjson.dumps(key.as_dict(private=True)), _aad(kid)),
        }
        return kid, orjson.dumps(record)

    async def ensure_key(self, now: float) -> str:
        """Create the first encryption key if the store has none; return the current kid."""
        current = await self._redis.get(CURRENT_KEY)
        if current:
            return current.decode()
        kid, record = self._new_record(now)
        await self._redis.hset(KEYS_HASH, kid, record)
        if await self._redis.set(CURRENT_KEY, kid, nx=True):
            return kid
        await self._redis.hdel(KEYS_HASH, kid)  # another process won the race
        return (await self._redis.get(CURRENT_KEY)).decode()

    async def rotate(self, now: float) -> tuple[str, str | None]:
        """Make a new current key; the old one keeps decrypting for the grace period."""
        old = await self._redis.get(CURRENT_KEY)
        kid, record = self._new_record(now)
        await self._redis.hset(KEYS_HASH, kid, record)
        await self._redis.set(CURRENT_KEY, kid)
        if old:
            raw = await self._redis.hget(KEYS_HASH, old)
            if raw:
                doc = orjson.loads(raw)
                doc["retire_at"] = now + self._grace
                await self._redis.hset(KEYS_HASH, old, orjson.dumps(doc))
        await self._prune(now)
        self._checked_at = float("-inf")
        return kid, old.decode() if old else None

    async def _prune(self, now: float) -> None:
        for kid, raw in (await self._redis.hgetall(KEYS_HASH)).items():
            retire_at = orjson.loads(raw).get("retire_at")
            if retire_at is not None and retire_at + 300 < now:
                await self._redis.hdel(KEYS_HASH, kid)

    async def _refresh(self, now: float) -> None:
        # Every process sees a rotation (and a retirement) within refresh_interval.
        if now - self._checked_at < self._refresh_interval:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(CURRENT_KEY)
            pipe.hgetall(KEYS_HASH)
            current, raw_all = await pipe.execute()
        records = {}
        for raw in raw_all.values():
            doc = orjson.loads(raw)
            records[doc["kid"]] = _Record(doc["kid"], doc["created"], doc.get("retire_at"),
                                          doc["public"], doc["private"])
        self._records = records
        self._current_kid = current.decode() if current else None
        self._private = {kid: key for kid, key in self._private.items() if kid in records}
        self._checked_at = now

    async def get(self, kid: str, now: float) -> EncryptionKey | None:
        """The private key named ``kid`` while it is live, else None."""
        await self._refresh(now)
        record = self._records.get(kid)
        if record is None or not record.live(now):
            return None
        key = self._private.get(kid)
        if key is None:
            private = self._sealer.open(record.sealed, _aad(kid))
            key = EncryptionKey(kid, record.created, ECKey.import_key(orjson.loads(private)))
            self._private[kid] = key
        return key

    async def current_kid(self, now: float) -> str:
        await self._refresh(now)
        if self._current_kid is None:
            self._current_kid = await self.ensure_key(now)
            self._checked_at = float("-inf")
        return self._current_kid

    async def jwks(self, now: float) -> dict[str, list[dict[str, object]]]:
        """Public keys that still decrypt, current first."""
        await self._refresh(now)
        live = [r for r in self._records.values() if r.live(now)]
        live.sort(key=lambda r: (r.kid != self._current_kid, -r.created))
        return {"keys": [dict(r.public) for r in live]}

"""The device registry: which device keys belong to which user.

Device ids carry their user (``<user_id>.<random>``) so every key of one user
lives in that user's Redis hash tag ``{u:<user_id>}``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from redis.asyncio import Redis

from device_fingerprint.errors import DeviceRevoked, DeviceUnknown
from device_fingerprint.signature import public_key_from_jwk

__all__ = [
    "Device",
    "DeviceRegistry",
    "DeviceStatus",
    "USER_ID_RE",
    "device_key",
    "nonce_key",
    "user_of_device",
    "user_tag",
]

USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEVICE_ID_RE = re.compile(r"^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{22})$")


class DeviceStatus(StrEnum):
    BOUND = "bound"
    REVOKED = "revoked"
    # Registered (key proven, password right) but waiting for the device-change
    # step-up; the record expires unless it is bound in time.
    PENDING = "pending"


def user_tag(user_id: str) -> str:
    return "{u:" + user_id + "}"


def user_of_device(device_id: str) -> str:
    m = _DEVICE_ID_RE.match(device_id)
    if not m:
        raise DeviceUnknown("malformed device id")
    return m.group(1)


def device_key(device_id: str) -> str:
    return f"{user_tag(user_of_device(device_id))}:dev:{device_id}"


def nonce_key(device_id: str, nonce: str) -> str:
    return f"{user_tag(user_of_device(device_id))}:nonce:{device_id}:{nonce}"


_ACTIVATE_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'bound')
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'bound_at', ARGV[1]) end
redis.call('PERSIST', KEYS[1])
return 1
"""
# HSET on an expired record would leave a hash without a key in it.
_SET_SIGNALS_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'signals', ARGV[1])
return 1
"""


@lru_cache(maxsize=4096)
def _cached_public_key(jwk_json: bytes) -> ec.EllipticCurvePublicKey:
    return public_key_from_jwk(orjson.loads(jwk_json))


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    user_id: str
    public_jwk: bytes
    status: DeviceStatus
    created: float
    attributes: dict[str, object] = field(default_factory=dict, compare=False)
    # Public P-256 JWK (JSON) the gateway encrypts responses to; None if not registered.
    enc_jwk: bytes | None = field(default=None, compare=False)
    # When the device was bound after a device-change step-up (starts its
    # cool-off); None when bound at enrolment or before this was recorded.
    bound_at: float | None = field(default=None, compare=False)
    # Risk signals (rooted, emulator, hooked, ...) raised by the app's last reports.
    signals: tuple[str, ...] = field(default=(), compare=False)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return _cached_public_key(self.public_jwk)

    @classmethod
    def from_hash(cls, device_id: str, raw: dict[bytes, bytes]) -> Device:
        if not raw:
            raise DeviceUnknown()
        device = cls(
            device_id=device_id,
            user_id=user_of_device(device_id),
            public_jwk=raw[b"jwk"],
            status=DeviceStatus(raw[b"status"].decode()),
            created=float(raw[b"created"]),
            attributes=orjson.loads(raw.get(b"attrs", b"{}")),
            enc_jwk=raw.get(b"enc_jwk"),
            bound_at=float(raw[b"bound_at"]) if raw.get(b"bound_at") else None,
            signals=tuple(orjson.loads(raw.get(b"signals", b"[]"))),
        )
        if device.status is DeviceStatus.REVOKED:
            raise DeviceRevoked()
        return device


class DeviceRegistry:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def register(self, user_id: str, public_jwk: dict[str, object],
                       attributes: dict[str, object], now: float,
                       enc_jwk: dict[str, object] | None = None, *,
                       status: DeviceStatus = DeviceStatus.BOUND, signals: tuple[str, ...] = (),
                       pending_ttl: int = 3600) -> Device:
        """Store a device key. ``status=PENDING`` records expire after ``pending_ttl`` s."""
        public_key_from_jwk(public_jwk)  # refuse bad keys before storing anything
        jwk = orjson.dumps({k: public_jwk[k] for k in ("kty", "crv", "x", "y")},
                           option=orjson.OPT_SORT_KEYS)
        enc = None
        if enc_jwk is not None:
            public_key_from_jwk(enc_jwk)
            enc = orjson.dumps({k: enc_jwk[k] for k in ("kty", "crv", "x", "y")},
                               option=orjson.OPT_SORT_KEYS)
        device_id = f"{user_id}.{secrets.token_urlsafe(16)}"
        attrs = orjson.dumps(attributes)
        mapping = {"jwk": jwk, "status": DeviceStatus.BOUND.value, "created": repr(now), "attrs": attrs}
        if enc is not None:
            mapping["enc_jwk"] = enc
        mapping["status"] = status.value
        mapping["signals"] = orjson.dumps(list(signals))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(device_key(device_id), mapping=mapping)
            if status is DeviceStatus.PENDING:
                pipe.expire(device_key(device_id), pending_ttl)
            pipe.sadd(f"{user_tag(user_id)}:devices", device_id)
            await pipe.execute()
        return Device(device_id, user_id, jwk, status, now, dict(attributes), enc,
                      signals=tuple(signals))

    async def get(self, device_id: str) -> Device:
        return Device.from_hash(device_id, await self._redis.hgetall(device_key(device_id)))

    async def list(self, user_id: str) -> list[Device]:
        out = []
        for raw_id in sorted(await self._redis.smembers(f"{user_tag(user_id)}:devices")):
            try:
                out.append(await self.get(raw_id.decode()))
            except (DeviceUnknown, DeviceRevoked):
                continue
        return out

    async def activate(self, device_id: str, *, bound_at: float | None) -> bool:
        """PENDING -> BOUND (atomically; False when the record is not pending any more)."""
        done = await self._redis.eval(_ACTIVATE_LUA, 1, device_key(device_id),
                                      repr(bound_at) if bound_at is not None else "")
        return bool(done)

    async def set_signals(self, device_id: str, signals: tuple[str, ...]) -> None:
        """Replace the device's raised risk signals (no-op for a record that is gone)."""
        await self._redis.eval(_SET_SIGNALS_LUA, 1, device_key(device_id),
                               orjson.dumps(sorted(signals)))

    async def revoke(self, device_id: str) -> None:
        key = device_key(device_id)
        if await self._redis.exists(key):
            await self._redis.hset(key, "status", DeviceStatus.REVOKED.value)

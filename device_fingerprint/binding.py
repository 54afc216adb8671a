"""Binding rules: how many devices a user may bind, cool-off, and the history.

Redis keys (all under the user's hash tag, so one cluster slot)::

    {u:<user>}:devhist   list   newest first, JSON binding events, trimmed
    {u:<user>}:devlock   string short lock while a bind/unbind is applied

Whether the user passed step-up before binding or unbinding is the
gateway's check; this module enforces the count and records what happened.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth_tools.dynamic_linking import InvalidAmount, parse_amount
from device_fingerprint.attributes import DeviceAttributes
from device_fingerprint.errors import (
    BindingInProgress,
    DeviceConfigInvalid,
    DeviceStateUnavailable,
    DeviceUnknown,
    TooManyDevices,
)
from device_fingerprint.matching import DeviceMatch
from device_fingerprint.registry import (
    USER_ID_RE,
    Device,
    DeviceRegistry,
    DeviceStatus,
    user_of_device,
    user_tag,
)

__all__ = [
    "BindResult",
    "BindingConfig",
    "BindingEvent",
    "BindingEventKind",
    "BindingStore",
    "cool_off_until",
]

_CNY = 100  # fen

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class BindingConfig:
    """``[device.binding]``.

    ``max_devices``: bound devices per user. ``cool_off_seconds``: how long a
    newly bound device runs on the reduced ``cool_off_daily_limit`` (CNY in
    TOML, fen here). ``history_size``: events kept per user.
    """

    max_devices: int = 3
    cool_off_seconds: float = 86_400.0
    cool_off_daily_limit: int = 5_000 * _CNY
    history_size: int = 200
    lock_seconds: float = 10.0

    def __post_init__(self) -> None:
        p = "device.binding"
        if not 1 <= self.max_devices <= 100:
            raise DeviceConfigInvalid(f"{p}.max_devices", "must be in [1, 100]")
        if not self.cool_off_seconds >= 0:
            raise DeviceConfigInvalid(f"{p}.cool_off_seconds", "must not be negative")
        if self.cool_off_daily_limit < 0:
            raise DeviceConfigInvalid(f"{p}.cool_off_daily_limit", "must not be negative")
        if not 1 <= self.history_size <= 10_000:
            raise DeviceConfigInvalid(f"{p}.history_size", "must be in [1, 10000]")
        if not 0.1 <= self.lock_seconds <= 60:
            raise DeviceConfigInvalid(f"{p}.lock_seconds", "must be in [0.1, 60]")

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> BindingConfig:
        p = "device.binding"
        table = table or {}
        if not isinstance(table, Mapping):
            raise DeviceConfigInvalid(p, "must be a table")
        values: dict[str, object] = {}
        for key, raw in table.items():
            k = f"{p}.{key}"
            if key in ("max_devices", "history_size"):
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise DeviceConfigInvalid(k, "must be an integer")
                values[key] = raw
            elif key in ("cool_off_seconds", "lock_seconds"):
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise DeviceConfigInvalid(k, "must be a number of seconds")
                values[key] = float(raw)
            elif key == "cool_off_daily_limit":
                if isinstance(raw, bool):
                    raise DeviceConfigInvalid(k, "must be an amount in CNY")
                try:
                    values[key] = parse_amount(raw)
                except InvalidAmount as exc:
                    raise DeviceConfigInvalid(k, f"must be an amount in CNY ({exc})") from exc
            else:
                raise DeviceConfigInvalid(k, "unknown key (known: cool_off_daily_limit, "
                                             "cool_off_seconds, history_size, lock_seconds, max_devices)")
        return replace(cls(), **values)


def cool_off_until(bound_at: float, now: float, config: BindingConfig) -> float | None:
    """End of the cool-off of a device bound at ``bound_at``, or None once it is over."""
    end = bound_at + config.cool_off_seconds
    return end if now < end else None


class BindingEventKind(StrEnum):
    BIND = "bind"
    UNBIND = "unbind"


@dataclass(frozen=True, slots=True)
class BindingEvent:
    kind: BindingEventKind
    device_id: str
    at: float
    reason: str = ""
    replaces: str | None = None
    match_status: str | None = None
    similarity: float | None = None
    model: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps({
            "kind": self.kind.value, "device_id": self.device_id, "at": self.at,
            "reason": self.reason, "replaces": self.replaces, "match_status": self.match_status,
            "similarity": self.similarity, "model": self.model,
        })

    @classmethod
    def from_json(cls, raw: bytes) -> BindingEvent:
        doc = orjson.loads(raw)
        return cls(BindingEventKind(doc["kind"]), doc["device_id"], float(doc["at"]),
                   doc.get("reason", ""), doc.get("replaces"), doc.get("match_status"),
                   doc.get("similarity"), doc.get("model", ""))


@dataclass(frozen=True, slots=True)
class BindResult:
    device: Device
    replaced: str | None
    cool_off_until: float | None
    event: BindingEvent


class BindingStore:
    """Binds and unbinds devices through the registry under the per-user rules."""

    def __init__(self, redis: Redis, registry: DeviceRegistry, config: BindingConfig) -> None:
        self._redis = redis
        self._registry = registry
        self._config = config
        self._release = redis.register_script(_RELEASE_LOCK)

    async def bind(self, user_id: str, public_jwk: dict[str, object], attributes: DeviceAttributes,
                   now: float, *, match: DeviceMatch | None = None, replaces: str | None = None,
                   reason: str = "") -> BindResult:
        """Register a new device key for the user, enforcing ``max_devices``.

        ``replaces``: a bound device of the same user that this one supersedes
        (the phone was re-installed, so the old key is gone); it is unbound in
        the same step and does not count towards the maximum.

        Raises:
            TooManyDevices: the user already has ``max_devices`` bound devices.
            DeviceUnknown / DeviceRevoked: ``replaces`` is not a bound device of the user.
            BindingInProgress: a concurrent bind/unbind for this user holds the lock.
        """
        _check_user(user_id)
        async with self._lock(user_id):
            try:
                if replaces is not None:
                    _check_owner(user_id, replaces)
                    await self._registry.get(replaces)  # raises unless bound
                bound = await self._registry.list(user_id)
                # Pending registrations (step-up not passed) are not bound devices.
                count = sum(1 for d in bound
                            if d.device_id != replaces and d.status is DeviceStatus.BOUND)
                if count >= self._config.max_devices:
                    raise TooManyDevices(
                        f"{count} devices are bound, the maximum is {self._config.max_devices}; "
                        "unbind one first")
                device = await self._registry.register(user_id, public_jwk, attributes.to_dict(), now)
                events = []
                if replaces is not None:
                    await self._registry.revoke(replaces)
                    events.append(BindingEvent(BindingEventKind.UNBIND, replaces, now,
                                               reason="replaced", replaces=None))
                event = BindingEvent(
                    BindingEventKind.BIND, device.device_id, now, reason=reason, replaces=replaces,
                    match_status=match.status.value if match else None,
                    similarity=match.similarity if match else None, model=attributes.model)
                events.append(event)
                await self._append(user_id, events)
            except RedisError as exc:
                raise DeviceStateUnavailable() from exc
        return BindResult(device, replaces, cool_off_until(now, now, self._config), event)

    async def activate(self, user_id: str, device_id: str, now: float, *,
                       match: DeviceMatch | None = None, replaces: str | None = None,
                       reason: str = "", cool_off: bool = True) -> BindResult:
        """Bind a PENDING device (registered earlier, step-up now passed), enforcing ``max_devices``.

        ``cool_off``: start the device's cool-off now (a device change); False
        for a device bound at enrolment. ``replaces`` as in :meth:`bind`.

        Raises:
            TooManyDevices, BindingInProgress, DeviceUnknown / DeviceRevoked
            (the pending record expired, or ``replaces`` is not bound).
        """
        _check_user(user_id)
        _check_owner(user_id, device_id)
        async with self._lock(user_id):
            try:
                device = await self._registry.get(device_id)
                if device.status is not DeviceStatus.PENDING:
                    raise DeviceUnknown("the device is not waiting to be bound")
                if replaces is not None:
                    _check_owner(user_id, replaces)
                    await self._registry.get(replaces)
                bound = await self._registry.list(user_id)
                count = sum(1 for d in bound
                            if d.device_id != replaces and d.status is DeviceStatus.BOUND)
                if count >= self._config.max_devices:
                    raise TooManyDevices(
                        f"{count} devices are bound, the maximum is {self._config.max_devices}; "
                        "unbind one first")
                if not await self._registry.activate(device_id, bound_at=now if cool_off else None):
                    raise DeviceUnknown("the registration expired; register the device again")
                events = []
                if replaces is not None:
                    await self._registry.revoke(replaces)
                    events.append(BindingEvent(BindingEventKind.UNBIND, replaces, now,
                                               reason="replaced"))
                event = BindingEvent(
                    BindingEventKind.BIND, device_id, now, reason=reason, replaces=replaces,
                    match_status=match.status.value if match else None,
                    similarity=match.similarity if match else None,
                    model=str(device.attributes.get("model", ""))[:64])
                events.append(event)
                await self._append(user_id, events)
                bound_device = await self._registry.get(device_id)
            except RedisError as exc:
                raise DeviceStateUnavailable() from exc
        return BindResult(bound_device, replaces,
                          cool_off_until(now, now, self._config) if cool_off else None, event)

    async def unbind(self, user_id: str, device_id: str, now: float, *, reason: str = "user") -> BindingEvent:
        """Unbind one of the user's devices (the caller has checked step-up)."""
        _check_user(user_id)
        _check_owner(user_id, device_id)
        async with self._lock(user_id):
            try:
                await self._registry.get(device_id)  # raises DeviceUnknown / DeviceRevoked
                await self._registry.revoke(device_id)
                event = BindingEvent(BindingEventKind.UNBIND, device_id, now, reason=reason)
                await self._append(user_id, [event])
            except RedisError as exc:
                raise DeviceStateUnavailable() from exc
        return event

    async def history(self, user_id: str, limit: int = 50) -> list[BindingEvent]:
        """The user's bind/unbind events, newest first."""
        _check_user(user_id)
        try:
            raw = await self._redis.lrange(_history_key(user_id), 0, max(limit, 1) - 1)
        except RedisError as exc:
            raise DeviceStateUnavailable() from exc
        return [BindingEvent.from_json(r) for r in raw]

    async def _append(self, user_id: str, events: list[BindingEvent]) -> None:
        key = _history_key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.lpush(key, event.to_json())
            pipe.ltrim(key, 0, self._config.history_size - 1)
            await pipe.execute()

    def _lock(self, user_id: str) -> _UserLock:
        return _UserLock(self, f"{user_tag(user_id)}:devlock")


class _UserLock:
    """SET NX with a token; released only by its holder (a Lua compare-and-delete)."""

    def __init__(self, store: BindingStore, key: str) -> None:
        self._store = store
        self._key = key
        self._token = secrets.token_hex(16)

    async def __aenter__(self) -> None:
        try:
            acquired = await self._store._redis.set(
                self._key, self._token, nx=True, px=int(self._store._config.lock_seconds * 1000))
        except RedisError as exc:
            raise DeviceStateUnavailable() from exc
        if not acquired:
            raise BindingInProgress()

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._store._release(keys=[self._key], args=[self._token])
        except RedisError:
            pass  # the lock expires on its own; the original outcome matters more


def _history_key(user_id: str) -> str:
    return f"{user_tag(user_id)}:devhist"


def _check_user(user_id: str) -> None:
    if not USER_ID_RE.match(user_id):
        raise DeviceUnknown("malformed user id")


def _check_owner(user_id: str, device_id: str) -> None:
    if user_of_device(device_id) != user_id:
        # Same answer as a device that does not exist: no probing other users' ids.
        raise DeviceUnknown()

"""SIM swap and number porting reports, and the SMS blackout that follows.

A carrier (or the bank's core system) reports that a user's phone number
moved to a new SIM or to another carrier. For ``sms_block_days`` after the
swap, an SMS code sent to that number may be read by whoever holds the new
SIM, so SMS does not count as a factor for the user and the risk engine is
told (``latest``).

Redis: ``{u:<user>}:simswap`` list, newest first, JSON reports, trimmed.
The window is counted from when the swap happened (``at``), which a carrier
may report late; the store keeps the report time too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from device_fingerprint.errors import (
    DeviceConfigInvalid,
    DeviceStateUnavailable,
    SimSwapReportInvalid,
)
from device_fingerprint.registry import USER_ID_RE, user_tag

__all__ = ["SimSwapConfig", "SimSwapKind", "SimSwapReport", "SimSwapStore", "sms_blocked_until"]

DAY = 86_400.0
_SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_FUTURE_SKEW = 300.0  # a carrier clock a little ahead is fine; a swap "tomorrow" is not


class SimSwapKind(StrEnum):
    SIM_SWAP = "sim_swap"
    NUMBER_PORT = "number_port"


@dataclass(frozen=True, slots=True)
class SimSwapConfig:
    """``[device.sim_swap]``: ``sms_block_days`` (default 7) and ``history_size``."""

    sms_block_days: float = 7.0
    history_size: int = 50

    def __post_init__(self) -> None:
        if not 0 <= self.sms_block_days <= 365:
            raise DeviceConfigInvalid("device.sim_swap.sms_block_days", "must be in [0, 365]")
        if not 1 <= self.history_size <= 1000:
            raise DeviceConfigInvalid("device.sim_swap.history_size", "must be in [1, 1000]")

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> SimSwapConfig:
        p = "device.sim_swap"
        table = table or {}
        if not isinstance(table, Mapping):
            raise DeviceConfigInvalid(p, "must be a table")
        values: dict[str, object] = {}
        for key, raw in table.items():
            k = f"{p}.{key}"
            if key == "sms_block_days":
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise DeviceConfigInvalid(k, "must be a number of days")
                values[key] = float(raw)
            elif key == "history_size":
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise DeviceConfigInvalid(k, "must be an integer")
                values[key] = raw
            else:
                raise DeviceConfigInvalid(k, "unknown key (known: history_size, sms_block_days)")
        return replace(cls(), **values)


@dataclass(frozen=True, slots=True)
class SimSwapReport:
    user_id: str
    kind: SimSwapKind
    at: float
    source: str
    reported_at: float

    def to_json(self) -> bytes:
        return orjson.dumps({"kind": self.kind.value, "at": self.at, "source": self.source,
                             "reported_at": self.reported_at})

    @classmethod
    def from_json(cls, user_id: str, raw: bytes) -> SimSwapReport:
        doc = orjson.loads(raw)
        return cls(user_id, SimSwapKind(doc["kind"]), float(doc["at"]), doc["source"],
                   float(doc["reported_at"]))


def sms_blocked_until(last_swap_at: float | None, now: float, config: SimSwapConfig) -> float | None:
    """End of the SMS blackout after a swap at ``last_swap_at``, or None when SMS is allowed."""
    if last_swap_at is None:
        return None
    end = last_swap_at + config.sms_block_days * DAY
    return end if now < end else None


class SimSwapStore:
    def __init__(self, redis: Redis, config: SimSwapConfig) -> None:
        self._redis = redis
        self._config = config

    async def report(self, user_id: str, kind: SimSwapKind | str, *, source: str, at: float,
                     now: float) -> SimSwapReport:
        """Record a swap or port reported by ``source`` (the authenticated reporter's name).

        Raises :class:`SimSwapReportInvalid` naming the bad field.
        """
        if not isinstance(user_id, str) or not USER_ID_RE.match(user_id):
            raise SimSwapReportInvalid("user_id", "malformed user id")
        try:
            kind = SimSwapKind(kind)
        except ValueError as exc:
            raise SimSwapReportInvalid("kind", "must be sim_swap or number_port") from exc
        if not isinstance(source, str) or not _SOURCE_RE.match(source):
            raise SimSwapReportInvalid("source", "must be a lowercase name such as carrier.cmcc")
        if isinstance(at, bool) or not isinstance(at, int | float) or at <= 0:
            raise SimSwapReportInvalid("at", "must be unix seconds")
        if at > now + _FUTURE_SKEW:
            raise SimSwapReportInvalid("at", "is in the future")
        report = SimSwapReport(user_id, kind, float(at), source, now)
        key = _key(user_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.lpush(key, report.to_json())
                pipe.ltrim(key, 0, self._config.history_size - 1)
                await pipe.execute()
        except RedisError as exc:
            raise DeviceStateUnavailable() from exc
        return report

    async def reports(self, user_id: str) -> list[SimSwapReport]:
        """Every kept report, newest reported first."""
        try:
            raw = await self._redis.lrange(_key(user_id), 0, -1)
        except RedisError as exc:
            raise DeviceStateUnavailable() from exc
        return [SimSwapReport.from_json(user_id, r) for r in raw]

    async def latest(self, user_id: str) -> float | None:
        """When the most recent swap happened (not when it was reported), or None."""
        reports = await self.reports(user_id)
        return max((r.at for r in reports), default=None)

    async def sms_blocked_until(self, user_id: str, now: float) -> float | None:
        return sms_blocked_until(await self.latest(user_id), now, self._config)

    async def sms_allowed(self, user_id: str, now: float) -> bool:
        """False for ``sms_block_days`` after a reported swap or port."""
        return await self.sms_blocked_until(user_id, now) is None


def _key(user_id: str) -> str:
    return f"{user_tag(user_id)}:simswap"

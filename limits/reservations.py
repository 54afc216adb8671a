"""Atomic reserve / commit / release of spend in Redis.

The gateway reserves the amount before forwarding (pipeline step 7), commits
on the upstream's 2xx and releases on an error or timeout (step 9). Each
operation is one Lua script over the user's keys, so concurrent requests from
any number of gateway processes can never overspend a window. Reservations
are keyed by the request's idempotency key: a retry is counted once. A
reservation neither committed nor released expires after
``reservation_ttl`` and :meth:`ReservationStore.reap` releases it.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import orjson
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from limits.account_classes import AccountClass
from limits.batching import ScriptBatcher
from limits.config import LimitsConfig
from limits.errors import (
    LargeTransferNoticeRequired,
    LimitExceeded,
    LimitsBadInput,
    LimitsError,
    LimitsUnavailable,
    ReservationCommitted,
    ReservationConflict,
    ReservationReleased,
    ReservationUnknown,
)
from limits.keys import SLOTS, UserKeys, pending_key
from limits.policy import Spent, in_device_cooloff, required_tier, window_limits
from limits.scripts import COMMIT, DUE_INDEXES, REAP, RELEASE, RESERVE
from limits.tiers import Tier
from limits.user_limits import NO_USER_LIMITS, UserLimits
from limits.windows import Window, periods_at

__all__ = ["Reservation", "ReservationState", "ReservationStore"]

_REAP_SCAN_CHUNK = 4096


@functools.cache
def _pending_chunks() -> tuple[tuple[str, ...], ...]:
    """The 16384 per-slot pending indexes in chunks, named once per process."""
    return tuple(tuple(pending_key(s) for s in range(start, min(SLOTS, start + _REAP_SCAN_CHUNK)))
                 for start in range(0, SLOTS, _REAP_SCAN_CHUNK))


class ReservationState(StrEnum):
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"  # released by the gateway (upstream error or timeout)
    EXPIRED = "expired"  # released by the reaper after the TTL


@dataclass(frozen=True, slots=True)
class Reservation:
    """One reservation as stored, with the windows' usage after the operation."""

    user_id: str
    idempotency_key: str
    amount: int
    to_others: bool
    tier: Tier
    state: ReservationState
    day: str
    year: str
    created: float
    expires_at: float
    spent: Spent  # day / year / day-to-others usage, this reservation included
    replayed: bool = False  # a retry: the earlier reservation under this key was returned
    recounted: bool = False  # committed after the reaper had released it
    # Set by reserve() for the assertion's ``limit`` claim; None = unlimited or not known.
    tier_limit: int | None = None  # per-transaction limit in force at the reserved tier
    remaining_today: int | None = None  # what is left today after this reservation


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _reply(raw: bytes | str) -> tuple[str, Spent, Any]:
    """(status, usage, detail): detail is the record, or a refusal's window name."""
    status, day, year, others, detail = orjson.loads(raw)
    return status, Spent(day=int(day), year=int(year), day_to_others=int(others)), detail


def _limit_arg(limit: int | None) -> str:
    return "" if limit is None else str(limit)


class ReservationStore:
    """Reserve, commit and release spend for users; reap abandoned reservations.

    ``client`` is a ``redis.asyncio.Redis`` or ``redis.asyncio.RedisCluster``.
    """

    def __init__(self, client: Any, config: LimitsConfig) -> None:
        self._redis = client
        self._config = config
        self._reserve = client.register_script(RESERVE)
        self._commit = client.register_script(COMMIT)
        self._release = client.register_script(RELEASE)
        self._reap = client.register_script(REAP)
        self._due = client.register_script(DUE_INDEXES)
        self._cluster = isinstance(client, RedisCluster)
        self._script = ScriptBatcher(client)  # concurrent requests share round trips

    async def _call(self, op: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await op()
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable(f"limit counters unavailable: {exc}") from exc

    async def spent(self, user_id: str, *, now: float) -> Spent:
        """What the user has spent (committed + reserved) today and this year."""
        return self.parse_spent(await self._call(lambda: self._mget_spent(self._redis, user_id, now)))

    def queue_spent(self, pipe: Any, user_id: str, *, now: float) -> None:
        """Queue the read of :meth:`spent` on a pipeline; :meth:`parse_spent` reads its reply."""
        self._mget_spent(pipe, user_id, now)

    def spent_keys(self, user_id: str, now: float) -> list[str]:
        """The counters :meth:`parse_spent` reads, in order: today, this year, today to others."""
        keys = UserKeys(user_id)
        periods = periods_at(now, self._config.tz)
        return [keys.day(periods.day), keys.year(periods.year), keys.day_to_others(periods.day)]

    def _mget_spent(self, client: Any, user_id: str, now: float) -> Any:
        # MGET by name: redis-py blocks pipe.mget() in cluster pipelines; the three keys share a slot.
        return client.execute_command("MGET", *self.spent_keys(user_id, now))

    @staticmethod
    def parse_spent(values: Sequence[Any]) -> Spent:
        day, year, others = (int(v or 0) for v in values)
        return Spent(day=day, year=year, day_to_others=others)

    async def reserve(
        self,
        user_id: str,
        amount: int,
        *,
        idempotency_key: str,
        tier: Tier,
        account_class: AccountClass,
        now: float,
        settings: UserLimits = NO_USER_LIMITS,
        to_others: bool = False,
        notice_confirmed: bool = False,
        device_since: float | None = None,
    ) -> Reservation:
        """Reserve ``amount`` fen in every window at once, or nothing.

        ``tier`` is the tier the session reached; the limits at that tier, the
        account class, the user's own settings and a device cool-off all apply.

        Raises:
            LimitExceeded: a window is full (``window``, ``remaining``, ``allowed_by``).
            LargeTransferNoticeRequired: today's transfers to others pass the
                notice threshold and ``notice_confirmed`` is false.
            ReservationConflict: the key was used for another amount or direction.
            LimitsUnavailable: Redis failed (fail closed).
        """
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise LimitsBadInput("amount must be a positive whole number of fen")
        tier = Tier(tier)
        keys = UserKeys(user_id)
        record_key = keys.record(idempotency_key)
        config = self._config
        cooloff = in_device_cooloff(config, device_since, now)
        limits = window_limits(
            config, tier, account_class=account_class, settings=settings, cooloff=cooloff
        )
        periods = periods_at(now, config.tz)
        per_txn = limits.per_transaction.limit
        if per_txn is not None and amount > per_txn:
            spent = await self.spent(user_id, now=now)
            raise self._exceeded(Window.TRANSACTION, limits, amount, spent, to_others,
                                 tier, account_class, settings, device_since, now)
        notice = None if notice_confirmed or not to_others else config.large_notice_daily
        margin = 86_400.0  # keep a finished period's counter a day for audits
        reply = await self._call(lambda: self._script(
            self._reserve,
            keys=[record_key, keys.pending(), keys.day(periods.day), keys.year(periods.year),
                  keys.day_to_others(periods.day)],
            args=[amount, _limit_arg(limits.day.limit), _limit_arg(limits.year.limit),
                  _limit_arg(limits.day_to_others.limit), _limit_arg(notice),
                  "1" if to_others else "0", repr(now + config.reservation_ttl), repr(now),
                  repr(periods.day_ends_at + margin), repr(periods.year_ends_at + margin),
                  math.ceil(config.record_retention), int(tier), periods.day, periods.year],
        ))
        status, spent, rest = _reply(reply)
        if status == "exceeded":
            window = Window(rest)
            raise self._exceeded(window, limits, amount, spent, to_others,
                                 tier, account_class, settings, device_since, now)
        if status == "notice":
            raise LargeTransferNoticeRequired(config.large_notice_daily)
        if status == "conflict":
            raise ReservationConflict()
        reservation = self._reservation(keys, idempotency_key, spent, rest,
                                        replayed=status == "exists")
        return replace(reservation, tier_limit=limits.per_transaction.limit,
                       remaining_today=limits.day.remaining(spent.day))

    def _exceeded(
        self, window: Window, limits: Any, amount: int, spent: Spent, to_others: bool,
        tier: Tier, account_class: AccountClass, settings: UserLimits,
        device_since: float | None, now: float,
    ) -> LimitExceeded:
        bound = limits.bound(window)
        used = {Window.DAY: spent.day, Window.YEAR: spent.year,
                Window.DAY_TO_OTHERS: spent.day_to_others}.get(window, 0)
        try:
            check = required_tier(
                self._config, amount=amount, spent=spent, account_class=account_class, now=now,
                settings=settings, to_others=to_others, device_since=device_since,
            )
            allowed_by = check.required_tier if check.required_tier > tier else None
        except LimitsError:
            allowed_by = None
        return LimitExceeded(window, bound.cap, bound.limit or 0, bound.remaining(used) or 0,
                             allowed_by=allowed_by)

    async def commit(self, user_id: str, idempotency_key: str, *, now: float) -> Reservation:
        """Make the reservation final (the upstream answered 2xx). Idempotent.

        Raises ReservationUnknown, or ReservationReleased when it was released.
        A reservation the reaper released meanwhile is counted again.
        """
        keys = UserKeys(user_id)
        reply = await self._call(lambda: self._script(
            self._commit, keys=[keys.record(idempotency_key), keys.pending()], args=[repr(now)]
        ))
        status, spent, rest = _reply(reply)
        if status == "unknown":
            raise ReservationUnknown()
        if status == "released":
            raise ReservationReleased()
        return self._reservation(keys, idempotency_key, spent, rest)

    async def release(self, user_id: str, idempotency_key: str, *, now: float) -> Reservation:
        """Give the amount back (upstream error or timeout). Idempotent.

        Raises ReservationUnknown, or ReservationCommitted when it was committed.
        """
        keys = UserKeys(user_id)
        reply = await self._call(lambda: self._script(
            self._release, keys=[keys.record(idempotency_key), keys.pending()], args=[repr(now)]
        ))
        status, spent, rest = _reply(reply)
        if status == "unknown":
            raise ReservationUnknown()
        if status == "committed":
            raise ReservationCommitted()
        return self._reservation(keys, idempotency_key, spent, rest)

    async def get(self, user_id: str, idempotency_key: str, *, now: float) -> Reservation:
        """The stored reservation, with the current usage of its windows."""
        keys = UserKeys(user_id)
        record = await self._call(lambda: self._redis.get(keys.record(idempotency_key)))
        if record is None:
            raise ReservationUnknown()
        spent = await self.spent(user_id, now=now)
        return self._reservation(keys, idempotency_key, spent, orjson.loads(record))

    def _reservation(
        self, keys: UserKeys, idempotency_key: str, spent: Spent, record: dict[str, str],
        *, replayed: bool = False,
    ) -> Reservation:
        return Reservation(
            user_id=keys.user_id,
            idempotency_key=idempotency_key,
            amount=int(record["amount"]),
            to_others=record["to_others"] == "1",
            tier=Tier(int(record["tier"])),
            state=ReservationState(record["state"]),
            day=record["day"],
            year=record["year"],
            created=float(record["created"]),
            expires_at=float(record["expires_at"]),
            spent=spent,
            replayed=replayed,
            recounted=record.get("recounted") == "1",
        )

    async def reap(self, *, now: float, batch: int = 256) -> int:
        """Release every reservation whose TTL passed before ``now``; return how many.

        Walks the 16384 per-slot indexes (one script per chunk on a single
        Redis; pipelined ZCOUNTs grouped per node on a cluster, where a script
        may not span slots) and runs the reap script only where something is due.
        """
        due: list[str] = []
        for names in _pending_chunks():
            due.extend(await self._call(lambda names=names: self._due_indexes(names, now)))
        released = 0
        for name in due:
            while True:
                n, scanned = await self._call(
                    lambda name=name: self._reap(keys=[name], args=[repr(now), batch])
                )
                released += int(n)
                if int(scanned) < batch:
                    break
        return released

    async def _due_indexes(self, names: Sequence[str], now: float) -> list[str]:
        if not self._cluster:
            return [_text(n) for n in await self._due(keys=names, args=[repr(now)])]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.zcount(name, "-inf", repr(now))
        counts = await pipe.execute()
        return [name for name, count in zip(names, counts, strict=True) if count]

    async def run_reaper(self, clock: Callable[[], float], stop: asyncio.Event) -> None:
        """Reap every ``reaper_interval`` seconds until ``stop`` is set.

        ``clock`` is the wall clock (``time.time``) passed in by the caller.
        Redis failures are retried on the next round: the reaper must outlive them.
        """
        while not stop.is_set():
            try:
                await self.reap(now=clock())
            except LimitsUnavailable:
                pass  # retried next round; reservations stay counted meanwhile (fail closed)
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._config.reaper_interval)
            except TimeoutError:
                pass

"""Batched writes after the response: the decision stream, and sessions' idle timers.

Every decision is recorded, but not one script call per request: events
queue in memory and a flush a few milliseconds later writes all of them in one
call. A crash loses at most that window, never a refusal's effect (refusals
and approvals are decided before and independently of the record).

Sessions slide their idle timeout on every verified request: those EXPIREs queue
the same way and go out in one pipeline per flush (the latest TTL per session).
Lost, a session ends a little early; never later.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine import DecisionEvent, RiskEngineError, record_decisions

__all__ = ["DecisionWriter"]

log = logging.getLogger("riskgate.decision")


class DecisionWriter:
    def __init__(self, redis: Redis, background: set[asyncio.Task[None]], *,
                 delay: float = 0.005, max_batch: int = 256) -> None:
        self._redis = redis
        self._background = background
        self._delay = delay
        self._max_batch = max_batch
        self._pending: list[DecisionEvent] = []
        self._touches: dict[str, int] = {}
        self._scheduled = False

    def put(self, event: DecisionEvent) -> None:
        self._pending.append(event)
        self._schedule()

    def touch(self, key: str, ttl: int) -> None:
        """Set ``key``'s TTL to ``ttl`` seconds with the next flush."""
        self._touches[key] = ttl
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            task = asyncio.get_running_loop().create_task(self._flush_soon())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(self._delay)
        finally:
            self._scheduled = False
        if self._touches:
            touches, self._touches = self._touches, {}
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, ttl in touches.items():
                        pipe.expire(key, ttl)
                    await pipe.execute()
            except RedisError:
                log.exception("sliding the idle timeout of %d sessions failed", len(touches))
        while self._pending:
            batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
            try:
                await record_decisions(self._redis, batch)
            except RiskEngineError:
                log.exception("recording %d decisions failed", len(batch))

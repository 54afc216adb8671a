"""A per-process cache refreshed from Redis at most every ``interval`` seconds.

The rule set, the model snapshot and the operations settings are each read by
every request and changed rarely, so each process keeps its copy and re-reads
it on a timer. The first read after a start must not race: requests that
arrive while it is on its way wait for it instead of running on nothing (the
fallback rules, no model, every switch on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["PeriodicRefresh"]


class PeriodicRefresh:
    def __init__(self, load: Callable[[], Awaitable[None]], interval: float) -> None:
        self._load = load
        self.interval = interval
        self._checked = float("-inf")
        self._inflight: asyncio.Future[None] | None = None

    def invalidate(self) -> None:
        """Read again at the next :meth:`run`."""
        self._checked = float("-inf")

    async def run(self, now: float, *, loaded: bool) -> None:
        """Start a read when one is due and wait for it; while nothing is ``loaded`` yet,
        also wait for a read another request started."""
        if now - self._checked >= self.interval:
            self._checked = now
            self._inflight = asyncio.ensure_future(self._load())
            await asyncio.shield(self._inflight)
        elif not loaded and self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)

"""Demo only: a believable past for the demo customers, so the risk engine
judges the journey against a habit (payees paid for months, amounts from a
few thousand to a few hundred thousand, any hour) instead of a blank slate."""

from __future__ import annotations

import random

from risk_engine import HistoryStore, local_hour

__all__ = ["seed_history"]

DAY = 86_400.0


async def seed_history(history: HistoryStore, user_id: str, payees: list[str], now: float, *,
                       days: int = 120, transfers: int = 72, seed: int = 7) -> None:
    """Record ``transfers`` completed past transfers spread over ``days``, oldest first."""
    rng = random.Random(f"{seed}:{user_id}")
    times = sorted(now - rng.uniform(2 * DAY, days * DAY) for _ in range(transfers))
    for i, at in enumerate(times):
        amount_cny = round(10 ** rng.uniform(3.3, 5.7))  # ~2,000 to ~500,000 CNY
        await history.record(
            user_id=user_id, decision_id=f"history-{i}", now=at, amount_fen=amount_cny * 100,
            payee=payees[i % len(payees)], device_id="", ip="", geo=None, moves_money=True,
            completed=True, local_hour=local_hour(at, 8.0))

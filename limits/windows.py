"""Spending windows and the natural calendar periods they count in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = ["Cap", "Periods", "Window", "periods_at"]


class Window(StrEnum):
    """Where an amount is counted."""

    TRANSACTION = "transaction"
    DAY = "day"
    YEAR = "year"
    DAY_TO_OTHERS = "day_to_others"


class Cap(StrEnum):
    """Which rule set the limit of a window."""

    TIER = "tier"
    ACCOUNT_CLASS = "account_class"
    USER = "user_setting"
    DEVICE_COOLOFF = "device_cooloff"
    TO_OTHERS = "to_others_rule"


@dataclass(frozen=True, slots=True)
class Periods:
    """The natural day and year containing an instant, in the bank's timezone."""

    day: str  # "2026-11-22"
    year: str  # "2026"
    day_ends_at: float
    year_ends_at: float


# The day last asked for, per timezone: (its start, its periods). Every money movement
# asks, and almost always for the day it asked for last time.
_last_day: dict[ZoneInfo, tuple[float, Periods]] = {}


def periods_at(now: float, tz: ZoneInfo) -> Periods:
    """The day and year (bank's local calendar) that ``now`` (unix seconds) falls in."""
    cached = _last_day.get(tz)
    if cached is not None and cached[0] <= now < cached[1].day_ends_at:
        return cached[1]
    local = datetime.fromtimestamp(now, tz)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Adding a calendar day and re-resolving the wall time keeps DST zones right.
    next_day = (day_start + timedelta(days=1)).replace(tzinfo=tz)
    next_year = datetime(local.year + 1, 1, 1, tzinfo=tz)
    periods = Periods(
        day=day_start.strftime("%Y-%m-%d"),
        year=f"{local.year:04d}",
        day_ends_at=next_day.timestamp(),
        year_ends_at=next_year.timestamp(),
    )
    _last_day[tz] = (day_start.timestamp(), periods)
    return periods

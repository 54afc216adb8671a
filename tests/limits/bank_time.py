"""Wall-clock instants in the bank's timezone, for tests that cross day boundaries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0,
       tz: ZoneInfo = SHANGHAI) -> float:
    """Unix seconds of a wall-clock time in ``tz`` (Asia/Shanghai by default)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()

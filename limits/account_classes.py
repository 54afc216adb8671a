"""Account classes (I, II, III accounts of Chinese retail banking) and their caps."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["AccountClass", "ClassCap"]


class AccountClass(StrEnum):
    I = "I"  # noqa: E741 - the regulator's name for full accounts
    II = "II"
    III = "III"

    @classmethod
    def parse(cls, value: object) -> AccountClass:
        """``AccountClass.II`` from ``"II"``, ``"ii"`` or ``2``; ValueError otherwise."""
        if isinstance(value, AccountClass):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3:
            return list(cls)[value - 1]
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValueError(f"not an account class: {value!r}")


@dataclass(frozen=True, slots=True)
class ClassCap:
    """What an account class allows whatever the tier, in fen; None = uncapped."""

    daily: int | None = None
    yearly: int | None = None

"""Risk levels, ordered: low < medium < high < block."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RiskLevel"]


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: RiskLevel) -> RiskLevel:
        """The higher of the two levels."""
        return self if self.rank >= other.rank else other


_RANK = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.BLOCK: 3}

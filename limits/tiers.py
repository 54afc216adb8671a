"""Authentication tiers and the limit each one allows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Tier", "TierLimit"]


class Tier(IntEnum):
    """Authentication tiers, ordered: a higher tier satisfies every lower one."""

    T0 = 0  # view: a live session on a bound device
    T1 = 1  # password re-entry or device biometric
    T2 = 2  # password + SMS OTP; biometric on a bound device
    T3 = 3  # codes linked to amount and payee (SMS armor, TOTP, FIDO2 UV)
    T4 = 4  # cloud certificate / TEE key signing the transaction; FIDO2 not synced
    T5 = 5  # hardware key issued at a branch

    @property
    def label(self) -> str:
        return self.name

    @classmethod
    def parse(cls, value: object) -> Tier:
        """``Tier.T3`` from ``"T3"``, ``"t3"`` or ``3``; ValueError otherwise."""
        if isinstance(value, Tier):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValueError(f"not a tier: {value!r}")


@dataclass(frozen=True, slots=True)
class TierLimit:
    """What one tier allows, in fen."""

    per_transaction: int
    daily: int

"""Limits a user sets for themselves, and the tier a change of one needs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from limits.config import LimitsConfig
from limits.errors import LimitSettingInvalid
from limits.tiers import Tier

__all__ = ["NO_USER_LIMITS", "LimitSetting", "UserLimits", "limit_change_tier", "setting_value"]


class LimitSetting(StrEnum):
    PER_TRANSACTION = "per_transaction"  # the user's own per-transaction ceiling
    DAILY = "daily"  # the user's own daily ceiling
    T2 = "t2"  # what password + SMS (T2) may move, per transaction and per day


@dataclass(frozen=True, slots=True)
class UserLimits:
    """A user's own settings in fen; None = the bank's default."""

    per_transaction: int | None = None
    daily: int | None = None
    t2: int | None = None

    def get(self, setting: LimitSetting) -> int | None:
        return getattr(self, setting.value)


NO_USER_LIMITS = UserLimits()  # a user who set nothing


def _default(config: LimitsConfig, setting: LimitSetting) -> int:
    if setting is LimitSetting.T2:
        return config.tier_limit(Tier.T2).per_transaction
    top = config.tier_limit(Tier.T5)
    return top.per_transaction if setting is LimitSetting.PER_TRANSACTION else top.daily


def _maximum(config: LimitsConfig, setting: LimitSetting) -> int:
    return config.t2_user_max if setting is LimitSetting.T2 else _default(config, setting)


def setting_value(config: LimitsConfig, settings: UserLimits, setting: LimitSetting) -> int:
    """The value in force: the user's setting, or the default when unset."""
    value = settings.get(setting)
    return _default(config, setting) if value is None else value


def limit_change_tier(
    config: LimitsConfig, setting: LimitSetting, current: UserLimits, new: int | None
) -> Tier:
    """The tier a change of ``setting`` to ``new`` (fen; None = back to default) needs.

    Lowering needs only a session (T0). Raising needs the tier the new value
    belongs to: the lowest tier of the bank's table whose limit covers it, so
    raising T2 from 5,000 to 20,000 CNY needs T3 and a daily limit of 800,000
    CNY needs T4.
    """
    if not isinstance(setting, LimitSetting):
        raise LimitSettingInvalid(f"unknown limit setting {setting!r}")
    target = _default(config, setting) if new is None else new
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise LimitSettingInvalid(f"{setting.value} must be a whole number of fen, not negative")
    if target > _maximum(config, setting):
        raise LimitSettingInvalid(f"{setting.value} may be at most {_maximum(config, setting)} fen")
    if target <= setting_value(config, current, setting):
        return Tier.T0
    for tier in Tier:
        limit = config.tier_limit(tier)
        covered = limit.daily if setting is LimitSetting.DAILY else limit.per_transaction
        if covered >= target:
            return tier
    return Tier.T5  # unreachable: _maximum is within T5

"""The ``[limits]`` configuration: one immutable, validated object.

Amounts in the TOML table are CNY, written as integers or decimal strings
(``1000`` or ``"1000.00"``); inside the library they are fen. Defaults follow
docs/DESIGN.md (tiers and limits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from auth_tools.dynamic_linking import InvalidAmount, parse_amount
from limits.account_classes import AccountClass, ClassCap
from limits.errors import LimitsConfigInvalid
from limits.tiers import Tier, TierLimit

__all__ = ["LimitsConfig"]

CNY = 100  # fen

_DEFAULT_TIERS = (
    TierLimit(0, 0),
    TierLimit(1_000 * CNY, 1_000 * CNY),
    TierLimit(5_000 * CNY, 5_000 * CNY),
    TierLimit(50_000 * CNY, 50_000 * CNY),
    TierLimit(1_000_000 * CNY, 1_000_000 * CNY),
    TierLimit(5_000_000 * CNY, 5_000_000 * CNY),
)

_DEFAULT_CLASSES = MappingProxyType({
    AccountClass.I: ClassCap(),
    AccountClass.II: ClassCap(daily=10_000 * CNY, yearly=200_000 * CNY),
    AccountClass.III: ClassCap(daily=2_000 * CNY, yearly=50_000 * CNY),
})

# TOML key -> (dataclass field, kind)
_SCALARS = {
    "timezone": ("timezone", "tz"),
    "t2_user_max": ("t2_user_max", "amount"),
    "to_others_t4_daily": ("to_others_t4_daily", "amount"),
    "large_transfer_notice_daily": ("large_notice_daily", "amount"),
    "device_cooloff_seconds": ("cooloff_seconds", "seconds"),
    "device_cooloff_daily": ("cooloff_daily", "amount"),
    "reservation_ttl_seconds": ("reservation_ttl", "seconds"),
    "record_retention_seconds": ("record_retention", "seconds"),
    "reaper_interval_seconds": ("reaper_interval", "seconds"),
}


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Limit table, account-class caps, rules and reservation timing. Amounts in fen."""

    timezone: str = "Asia/Shanghai"
    tiers: tuple[TierLimit, ...] = _DEFAULT_TIERS  # indexed by Tier
    t2_user_max: int = 50_000 * CNY  # a user may raise T2 up to this
    account_classes: Mapping[AccountClass, ClassCap] = field(default_factory=lambda: _DEFAULT_CLASSES)
    to_others_t4_daily: int = 50_000 * CNY  # above this per day to others: T4 or above
    large_notice_daily: int = 300_000 * CNY  # above this per day: notice must be confirmed
    cooloff_seconds: float = 86_400.0
    cooloff_daily: int = 5_000 * CNY
    reservation_ttl: float = 120.0
    record_retention: float = 172_800.0
    reaper_interval: float = 10.0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def tier_limit(self, tier: Tier) -> TierLimit:
        return self.tiers[tier]

    def class_cap(self, account_class: AccountClass) -> ClassCap:
        return self.account_classes.get(account_class, ClassCap())

    def validate(self) -> None:
        """Raise :class:`LimitsConfigInvalid` naming the first bad key."""
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Asia", a directory
            raise LimitsConfigInvalid("limits.timezone", f"unknown timezone {self.timezone!r}") from exc
        if len(self.tiers) != len(Tier):
            raise LimitsConfigInvalid("limits.tiers", f"needs exactly {len(Tier)} tiers T0..T5")
        previous = TierLimit(0, 0)
        for tier, limit in zip(Tier, self.tiers, strict=True):
            key = f"limits.tiers.{tier.label}"
            if limit.per_transaction < 0 or limit.daily < 0:
                raise LimitsConfigInvalid(key, "must not be negative")
            if limit.per_transaction > limit.daily:
                raise LimitsConfigInvalid(key, "per_transaction is above daily")
            if limit.per_transaction < previous.per_transaction or limit.daily < previous.daily:
                raise LimitsConfigInvalid(key, "a tier may not allow less than the tier below it")
            previous = limit
        if not self.tiers[Tier.T2].per_transaction <= self.t2_user_max <= self.tiers[Tier.T5].daily:
            raise LimitsConfigInvalid("limits.t2_user_max", "must lie between the T2 and T5 limits")
        for cls, cap in self.account_classes.items():
            if cap.daily is not None and cap.yearly is not None and cap.daily > cap.yearly:
                raise LimitsConfigInvalid(f"limits.account_classes.{cls.value}.daily", "is above yearly")
        for name, (attr, kind) in _SCALARS.items():
            value = getattr(self, attr)
            if kind == "amount" and value < 0:
                raise LimitsConfigInvalid(f"limits.{name}", "must not be negative")
            if kind == "seconds" and not value > 0:
                raise LimitsConfigInvalid(f"limits.{name}", "must be more than zero")
        if self.record_retention <= self.reservation_ttl:
            raise LimitsConfigInvalid(
                "limits.record_retention_seconds", "must be longer than reservation_ttl_seconds"
            )

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> LimitsConfig:
        """Build from the ``[limits]`` TOML table; every key is optional."""
        table = table or {}
        if not isinstance(table, Mapping):
            raise LimitsConfigInvalid("limits", "must be a table")
        values: dict[str, object] = {}
        for key, raw in table.items():
            if key in _SCALARS:
                attr, kind = _SCALARS[key]
                values[attr] = _scalar(f"limits.{key}", raw, kind)
            elif key == "tiers":
                values["tiers"] = _tiers(raw)
            elif key == "account_classes":
                values["account_classes"] = _classes(raw)
            else:
                raise LimitsConfigInvalid(f"limits.{key}", "unknown key")
        return replace(cls(), **values)


def _amount(key: str, raw: object) -> int:
    if isinstance(raw, bool):
        raise LimitsConfigInvalid(key, "must be an amount in CNY")
    try:
        return parse_amount(raw)
    except InvalidAmount as exc:
        raise LimitsConfigInvalid(key, f"must be an amount in CNY ({exc})") from exc


def _scalar(key: str, raw: object, kind: str) -> object:
    if kind == "amount":
        return _amount(key, raw)
    if kind == "tz":
        if not isinstance(raw, str):
            raise LimitsConfigInvalid(key, "must be a timezone name such as 'Asia/Shanghai'")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise LimitsConfigInvalid(key, "must be a number of seconds")
    return float(raw)


def _tiers(raw: object) -> tuple[TierLimit, ...]:
    if not isinstance(raw, Mapping):
        raise LimitsConfigInvalid("limits.tiers", "must be a table of T0..T5")
    tiers = list(_DEFAULT_TIERS)
    for name, value in raw.items():
        key = f"limits.tiers.{name}"
        try:
            tier = Tier.parse(name)
        except ValueError as exc:
            raise LimitsConfigInvalid(key, "unknown tier") from exc
        if isinstance(value, Mapping):
            unknown = set(value) - {"per_transaction", "daily"}
            if unknown:
                raise LimitsConfigInvalid(f"{key}.{sorted(unknown)[0]}", "unknown key")
            current = tiers[tier]
            tiers[tier] = TierLimit(
                _amount(f"{key}.per_transaction", value["per_transaction"])
                if "per_transaction" in value else current.per_transaction,
                _amount(f"{key}.daily", value["daily"]) if "daily" in value else current.daily,
            )
        else:
            amount = _amount(key, value)
            tiers[tier] = TierLimit(amount, amount)
    return tuple(tiers)


def _classes(raw: object) -> Mapping[AccountClass, ClassCap]:
    if not isinstance(raw, Mapping):
        raise LimitsConfigInvalid("limits.account_classes", "must be a table of I, II, III")
    classes = dict(_DEFAULT_CLASSES)
    for name, value in raw.items():
        key = f"limits.account_classes.{name}"
        try:
            cls = AccountClass.parse(name)
        except ValueError as exc:
            raise LimitsConfigInvalid(key, "unknown account class") from exc
        if not isinstance(value, Mapping):
            raise LimitsConfigInvalid(key, "must be a table with daily and yearly")
        unknown = set(value) - {"daily", "yearly"}
        if unknown:
            raise LimitsConfigInvalid(f"{key}.{sorted(unknown)[0]}", "unknown key")
        current = classes[cls]
        classes[cls] = ClassCap(
            daily=_amount(f"{key}.daily", value["daily"]) if "daily" in value else current.daily,
            yearly=_amount(f"{key}.yearly", value["yearly"]) if "yearly" in value else current.yearly,
        )
    return MappingProxyType(classes)

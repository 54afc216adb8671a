"""Pure limit decisions: what each window allows at a tier, and which tier an amount needs.

Nothing here touches Redis or the clock; the gateway reads the day's spend
(:meth:`ReservationStore.spent`) and passes it in with ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass

from limits.account_classes import AccountClass
from limits.config import LimitsConfig
from limits.errors import LimitExceeded, LimitsBadInput
from limits.tiers import Tier, TierLimit
from limits.user_limits import NO_USER_LIMITS, UserLimits
from limits.windows import Cap, Window

__all__ = [
    "Bound",
    "LimitCheck",
    "Remaining",
    "Spent",
    "WindowLimits",
    "effective_tiers",
    "first_exceeded",
    "in_device_cooloff",
    "needs_large_transfer_notice",
    "required_tier",
    "to_others_tier",
    "window_limits",
]


@dataclass(frozen=True, slots=True)
class Spent:
    """Spend already counted (committed + reserved) in the current periods, fen."""

    day: int = 0
    year: int = 0
    day_to_others: int = 0


@dataclass(frozen=True, slots=True)
class Bound:
    """The limit of one window and the rule that set it; ``limit`` None = unlimited."""

    limit: int | None
    cap: Cap

    def remaining(self, used: int) -> int | None:
        return None if self.limit is None else max(0, self.limit - used)


@dataclass(frozen=True, slots=True)
class Remaining:
    """What is left in each window before the amount at hand, fen; None = unlimited."""

    per_transaction: int | None
    today: int | None
    year: int | None
    today_to_others: int | None


@dataclass(frozen=True, slots=True)
class WindowLimits:
    """Every window's limit for one user at one tier."""

    tier: Tier
    per_transaction: Bound
    day: Bound
    year: Bound
    day_to_others: Bound

    def bound(self, window: Window) -> Bound:
        return getattr(self, window.value if window is not Window.TRANSACTION else "per_transaction")

    def remaining(self, spent: Spent) -> Remaining:
        return Remaining(
            per_transaction=self.per_transaction.limit,
            today=self.day.remaining(spent.day),
            year=self.year.remaining(spent.year),
            today_to_others=self.day_to_others.remaining(spent.day_to_others),
        )


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """The outcome of :func:`required_tier` for one money movement."""

    required_tier: Tier
    limits: WindowLimits  # at the required tier
    remaining: Remaining  # before this amount
    notice_required: bool  # the large-transfer notice must be confirmed


def effective_tiers(config: LimitsConfig, settings: UserLimits) -> tuple[TierLimit, ...]:
    """The tier table for one user: their T2 setting moves T2 and keeps the table ordered."""
    if settings.t2 is None:
        return config.tiers
    t2 = min(settings.t2, config.t2_user_max)
    table = []
    for tier, limit in zip(Tier, config.tiers, strict=True):
        if tier < Tier.T2:
            table.append(TierLimit(min(limit.per_transaction, t2), min(limit.daily, t2)))
        elif tier == Tier.T2:
            table.append(TierLimit(t2, t2))
        else:
            table.append(TierLimit(max(limit.per_transaction, t2), max(limit.daily, t2)))
    return tuple(table)


def in_device_cooloff(config: LimitsConfig, device_since: float | None, now: float) -> bool:
    """True while a device bound or changed at ``device_since`` is in its cool-off."""
    return device_since is not None and now - device_since < config.cooloff_seconds


def _tightest(candidates: list[tuple[int | None, Cap]]) -> Bound:
    # Earlier candidates win ties: they name caps a higher tier cannot lift.
    best = Bound(None, candidates[-1][1])
    for limit, cap in candidates:
        if limit is not None and (best.limit is None or limit < best.limit):
            best = Bound(limit, cap)
    return best


def window_limits(
    config: LimitsConfig,
    tier: Tier,
    *,
    account_class: AccountClass,
    settings: UserLimits = NO_USER_LIMITS,
    cooloff: bool = False,
) -> WindowLimits:
    """Each window's limit at ``tier``: the tightest of tier, class, user and cool-off caps."""
    tier_limit = effective_tiers(config, settings)[tier]
    cls = config.class_cap(account_class)
    return WindowLimits(
        tier=tier,
        per_transaction=_tightest([
            (settings.per_transaction, Cap.USER),
            (tier_limit.per_transaction, Cap.TIER),
        ]),
        day=_tightest([
            (cls.daily, Cap.ACCOUNT_CLASS),
            (settings.daily, Cap.USER),
            (config.cooloff_daily if cooloff else None, Cap.DEVICE_COOLOFF),
            (tier_limit.daily, Cap.TIER),
        ]),
        year=_tightest([(cls.yearly, Cap.ACCOUNT_CLASS)]),
        day_to_others=_tightest([
            (config.to_others_t4_daily if tier < Tier.T4 else None, Cap.TO_OTHERS),
        ]),
    )


def first_exceeded(
    limits: WindowLimits, amount: int, spent: Spent, to_others: bool
) -> Window | None:
    """The first window ``amount`` does not fit, or None when it fits all."""
    used = {
        Window.TRANSACTION: 0,
        Window.DAY: spent.day,
        Window.YEAR: spent.year,
        Window.DAY_TO_OTHERS: spent.day_to_others,
    }
    for window, already in used.items():
        if window is Window.DAY_TO_OTHERS and not to_others:
            continue
        limit = limits.bound(window).limit
        if limit is not None and already + amount > limit:
            return window
    return None


def to_others_tier(config: LimitsConfig, *, amount: int, others_today: int) -> Tier:
    """T4 when transfers to others would pass the daily threshold (50,000 CNY), else T0."""
    return Tier.T4 if others_today + amount > config.to_others_t4_daily else Tier.T0


def needs_large_transfer_notice(config: LimitsConfig, *, amount: int, others_today: int) -> bool:
    """True when transfers to others would pass the notice threshold (300,000 CNY) today."""
    return others_today + amount > config.large_notice_daily


def required_tier(
    config: LimitsConfig,
    *,
    amount: int,
    spent: Spent,
    account_class: AccountClass,
    now: float,
    settings: UserLimits = NO_USER_LIMITS,
    to_others: bool = False,
    device_since: float | None = None,
    risk_floor: Tier = Tier.T0,
    max_tier: Tier = Tier.T5,
) -> LimitCheck:
    """The tier a money movement of ``amount`` fen needs, with the limits at that tier.

    The highest of: the tier the amount needs, the tier the day's cumulative
    spend needs, T4 for transfers to others above the daily threshold, T2
    during a device cool-off, and ``risk_floor``. ``max_tier`` is the highest
    tier the user can reach with the tools they hold.

    Raises:
        LimitExceeded: no tier up to ``max_tier`` allows it; ``allowed_by`` names
            the tier that would, or is None when only a cap no tier lifts
            (account class, the user's own limit, the cool-off) stands in the way.
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise LimitsBadInput("amount must be a whole number of fen, not negative")
    cooloff = in_device_cooloff(config, device_since, now)
    floor = max(risk_floor, Tier.T2 if cooloff else Tier.T0)

    def at(tier: Tier) -> WindowLimits:
        return window_limits(
            config, tier, account_class=account_class, settings=settings, cooloff=cooloff
        )

    found = next(
        (t for t in Tier if t >= floor and first_exceeded(at(t), amount, spent, to_others) is None),
        None,
    )
    ceiling = max(max_tier, floor)
    if found is not None and found <= ceiling:
        limits = at(found)
        return LimitCheck(
            required_tier=found,
            limits=limits,
            remaining=limits.remaining(spent),
            notice_required=to_others
            and needs_large_transfer_notice(config, amount=amount, others_today=spent.day_to_others),
        )
    limits = at(ceiling if found is not None else Tier.T5)
    window = first_exceeded(limits, amount, spent, to_others)
    assert window is not None
    bound = limits.bound(window)
    used = {Window.DAY: spent.day, Window.YEAR: spent.year,
            Window.DAY_TO_OTHERS: spent.day_to_others}.get(window, 0)
    raise LimitExceeded(
        window, bound.cap, bound.limit or 0, bound.remaining(used) or 0, allowed_by=found
    )

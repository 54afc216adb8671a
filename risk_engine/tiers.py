"""The tier decision: which authentication tier a request needs, given its risk.

Tiers are plain ints 0..5 (T0 view .. T5 hardware key) because ``limits.tiers``
did not exist when this was written; the gateway maps them to ``Tier``.

Rules (DESIGN.md, "Tiers and limits"): the amount picks the lowest tier whose
per-transaction limit covers it; transfers to others above 50,000 CNY a day
need T4; a new payee needs step-up (T2); a new or changed device forces at
least T2 and a 24 h cool-off; then risk moves the tier: medium one up, high two
up with the limit capped at what the amount alone required, block refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from risk_engine.levels import RiskLevel

__all__ = ["MAX_TIER", "TierPolicy", "TierRequirement", "required_tier", "risk_tier"]

MAX_TIER = 5
_CNY = 100


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """The numbers (all configuration). Limits are per transaction, in fen, T0..T5."""

    per_txn_limit_fen: tuple[int, ...] = (0, 1_000 * _CNY, 5_000 * _CNY, 50_000 * _CNY,
                                          1_000_000 * _CNY, 5_000_000 * _CNY)
    others_daily_t4_threshold_fen: int = 50_000 * _CNY
    new_payee_min_tier: int = 2
    new_device_min_tier: int = 2
    bind_device_min_tier: int = 2
    cooloff_seconds: float = 24 * 3600.0
    cooloff_daily_limit_fen: int = 5_000 * _CNY

    def __post_init__(self) -> None:
        if len(self.per_txn_limit_fen) != MAX_TIER + 1:
            raise ValueError("per_txn_limit_fen needs one limit per tier T0..T5")


@dataclass(frozen=True, slots=True)
class TierRequirement:
    """What the request needs: the tier, the per-transaction limit that tier grants
    (capped when risk is high), whether it is refused, and why."""

    tier: int
    base_tier: int  # what the amount, action and payee alone require
    limit_fen: int
    refused: bool = False
    cooloff: bool = False
    cooloff_daily_limit_fen: int | None = None
    reasons: tuple[str, ...] = ()

    @property
    def acr(self) -> str:
        return f"T{self.tier}"


def _amount_tier(amount_fen: int, policy: TierPolicy, user_t2_limit_fen: int | None) -> int | None:
    limits = list(policy.per_txn_limit_fen)
    if user_t2_limit_fen is not None:
        limits[2] = min(max(user_t2_limit_fen, limits[2]), limits[3])
    for tier in range(1, MAX_TIER + 1):
        if amount_fen <= limits[tier]:
            return tier
    return None


def risk_tier(base_tier: int, risk_level: RiskLevel) -> int:
    """How risk moves a tier: medium one up, high two up (at most T5). Block is refused
    by the caller; here it maps to T5."""
    shift = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2, RiskLevel.BLOCK: MAX_TIER}
    return min(base_tier + shift[risk_level], MAX_TIER)


def required_tier(action: str, amount_fen: int, risk_level: RiskLevel, device_status: str, *,
                  moves_money: bool, payee_new: bool = False,
                  to_others_today_fen: int = 0, device_age_seconds: float | None = None,
                  user_t2_limit_fen: int | None = None,
                  policy: TierPolicy = TierPolicy()) -> TierRequirement:
    """The tier a request needs.

    ``to_others_today_fen`` is what the user already sent to other people today
    (this amount not included); ``device_status`` is bound / known / new /
    changed; ``user_t2_limit_fen`` is the user's own raised T2 limit (capped at
    the T3 limit). ``action`` "change_limit" passes the new limit as amount.
    """
    reasons: list[str] = []
    if risk_level is RiskLevel.BLOCK:
        return TierRequirement(MAX_TIER, MAX_TIER, 0, refused=True, reasons=("risk_block",))

    if moves_money or action == "change_limit":
        base = _amount_tier(amount_fen, policy, user_t2_limit_fen)
        if base is None:
            return TierRequirement(MAX_TIER, MAX_TIER, 0, refused=True,
                                   reasons=("amount_above_max_limit",))
        reasons.append(f"amount_T{base}")
    else:
        base = 0
    if moves_money and to_others_today_fen + amount_fen > policy.others_daily_t4_threshold_fen:
        if base < 4:
            reasons.append("daily_to_others_above_threshold")
        base = max(base, 4)
    if payee_new or action == "add_payee":
        if base < policy.new_payee_min_tier:
            reasons.append("new_payee")
        base = max(base, policy.new_payee_min_tier)
    if action == "bind_device":
        base = max(base, policy.bind_device_min_tier)

    cooloff = device_status in ("new", "changed") or (
        device_age_seconds is not None and device_age_seconds < policy.cooloff_seconds)
    if device_status in ("new", "changed") and base < policy.new_device_min_tier:
        reasons.append("new_device")
        base = policy.new_device_min_tier

    base_limit = policy.per_txn_limit_fen[base]
    if base == 2 and user_t2_limit_fen is not None:
        base_limit = min(max(user_t2_limit_fen, base_limit), policy.per_txn_limit_fen[3])
    tier, limit = risk_tier(base, risk_level), base_limit
    if risk_level is RiskLevel.MEDIUM:
        limit = policy.per_txn_limit_fen[tier] if moves_money else 0
        reasons.append("risk_medium")
    elif risk_level is RiskLevel.HIGH:
        limit = base_limit  # the step-up buys this transaction, not more headroom
        reasons.append("risk_high_limit_capped")
    if not (moves_money or action == "change_limit"):
        limit = 0
    return TierRequirement(tier, base, limit, False, cooloff,
                           policy.cooloff_daily_limit_fen if cooloff else None, tuple(reasons))

"""Transaction limits: the tier table, account classes, users' own limits and
atomic reserve / commit / release of spend in Redis.

Knows nothing of HTTP. Amounts are integer fen; times are unix seconds passed in.
"""

from limits.account_classes import AccountClass, ClassCap
from limits.config import LimitsConfig
from limits.errors import (
    LargeTransferNoticeRequired,
    LimitChangeConflict,
    LimitChangeNeedsTier,
    LimitExceeded,
    LimitsBadInput,
    LimitsConfigInvalid,
    LimitsError,
    LimitSettingInvalid,
    LimitsUnavailable,
    ReservationCommitted,
    ReservationConflict,
    ReservationReleased,
    ReservationUnknown,
)
from limits.policy import (
    Bound,
    LimitCheck,
    Remaining,
    Spent,
    WindowLimits,
    effective_tiers,
    in_device_cooloff,
    needs_large_transfer_notice,
    required_tier,
    to_others_tier,
    window_limits,
)
from limits.reservations import Reservation, ReservationState, ReservationStore
from limits.tiers import Tier, TierLimit
from limits.user_limit_store import UserLimitStore
from limits.user_limits import LimitSetting, UserLimits, limit_change_tier
from limits.windows import Cap, Periods, Window, periods_at

__all__ = [
    "AccountClass",
    "Bound",
    "Cap",
    "ClassCap",
    "LargeTransferNoticeRequired",
    "LimitChangeConflict",
    "LimitChangeNeedsTier",
    "LimitCheck",
    "LimitExceeded",
    "LimitSetting",
    "LimitSettingInvalid",
    "LimitsBadInput",
    "LimitsConfig",
    "LimitsConfigInvalid",
    "LimitsError",
    "LimitsUnavailable",
    "Periods",
    "Remaining",
    "Reservation",
    "ReservationCommitted",
    "ReservationConflict",
    "ReservationReleased",
    "ReservationState",
    "ReservationStore",
    "ReservationUnknown",
    "Spent",
    "Tier",
    "TierLimit",
    "UserLimitStore",
    "UserLimits",
    "Window",
    "WindowLimits",
    "effective_tiers",
    "in_device_cooloff",
    "limit_change_tier",
    "needs_large_transfer_notice",
    "periods_at",
    "required_tier",
    "to_others_tier",
    "window_limits",
]

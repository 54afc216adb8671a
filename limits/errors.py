"""Failures of the limits library.

Every class carries a stable ``code`` that the gateway turns into the JSON
``error`` field, and a human message.

    LimitsError
     +-- LimitsConfigInvalid         a ``[limits]`` key is missing a rule (names the key)
     +-- LimitExceeded               an amount over a window's limit (says which window)
     +-- LargeTransferNoticeRequired the day's transfers pass the notice threshold unconfirmed
     +-- LimitSettingInvalid         a user-set limit out of range or of an unknown kind
     +-- LimitChangeNeedsTier        raising a limit needs a higher tier than reached
     +-- LimitChangeConflict         the setting changed while the change was applied
     +-- ReservationUnknown          no reservation under that idempotency key
     +-- ReservationConflict         same idempotency key, different amount or direction
     +-- ReservationReleased         commit of a reservation that was released
     +-- ReservationCommitted        release of a reservation that was committed
     +-- LimitsBadInput              an empty or malformed user id, key or amount
     +-- LimitsUnavailable           Redis failed; fail closed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limits.tiers import Tier
    from limits.windows import Cap, Window


class LimitsError(Exception):
    code = "limits_error"
    message = "the limits check failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class LimitsConfigInvalid(LimitsError):
    code = "limits_config_invalid"
    message = "invalid limits configuration"

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration key {key!r}: {problem}")
        self.key = key


class LimitExceeded(LimitsError):
    """The amount does not fit a window; ``allowed_by`` is the tier that would fit it, if any."""

    code = "limit_exceeded"
    message = "the amount exceeds a limit"

    def __init__(
        self,
        window: Window,
        cap: Cap,
        limit: int,
        remaining: int,
        allowed_by: Tier | None = None,
    ) -> None:
        super().__init__(
            f"the amount exceeds the {window.value} limit ({cap.value}); "
            f"remaining {remaining} fen"
        )
        self.window = window
        self.cap = cap
        self.limit = limit
        self.remaining = remaining
        self.allowed_by = allowed_by


class LargeTransferNoticeRequired(LimitsError):
    code = "large_transfer_notice_required"
    message = "transfers of this size in one day need the large-transfer notice confirmed"

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold


class LimitSettingInvalid(LimitsError):
    code = "limit_setting_invalid"
    message = "the limit setting is out of range"


class LimitChangeNeedsTier(LimitsError):
    code = "limit_change_needs_tier"
    message = "raising this limit needs a stronger authentication"

    def __init__(self, required: Tier) -> None:
        super().__init__(f"raising this limit needs {required.label}")
        self.required = required


class LimitChangeConflict(LimitsError):
    code = "limit_change_conflict"
    message = "the limit changed meanwhile; read it again"


class ReservationUnknown(LimitsError):
    code = "reservation_unknown"
    message = "no reservation under this idempotency key"


class ReservationConflict(LimitsError):
    code = "reservation_conflict"
    message = "this idempotency key was used for a different amount or direction"


class ReservationReleased(LimitsError):
    code = "reservation_released"
    message = "the reservation was released and cannot be committed"


class ReservationCommitted(LimitsError):
    code = "reservation_committed"
    message = "the reservation was committed and cannot be released"


class LimitsBadInput(LimitsError):
    code = "limits_bad_input"
    message = "malformed user id, idempotency key or amount"


class LimitsUnavailable(LimitsError):
    code = "limits_unavailable"
    message = "the limit counters are unavailable"

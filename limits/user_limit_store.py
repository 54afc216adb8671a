"""Users' own limit settings in Redis."""

from __future__ import annotations

from typing import Any

import redis.exceptions

from limits.config import LimitsConfig
from limits.errors import LimitChangeConflict, LimitChangeNeedsTier, LimitsUnavailable
from limits.keys import UserKeys
from limits.scripts import SET_SETTING
from limits.tiers import Tier
from limits.user_limits import LimitSetting, UserLimits, limit_change_tier

__all__ = ["UserLimitStore"]

_ATTEMPTS = 5


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class UserLimitStore:
    """Read and change a user's own limits; raising one needs the tier of the new value."""

    def __init__(self, client: Any, config: LimitsConfig) -> None:
        self._redis = client
        self._config = config
        self._set = client.register_script(SET_SETTING)

    async def get(self, user_id: str) -> UserLimits:
        try:
            raw = await self._redis.hgetall(UserKeys(user_id).settings())
        except redis.exceptions.RedisError as exc:
            raise LimitsUnavailable(f"limit settings unavailable: {exc}") from exc
        return self.parse(raw)

    @staticmethod
    def queue_get(pipe: Any, user_id: str) -> None:
        """Queue the read of :meth:`get` on a pipeline; :meth:`parse` reads its reply."""
        pipe.hgetall(UserKeys(user_id).settings())

    @staticmethod
    def parse(raw: dict[Any, Any]) -> UserLimits:
        fields = {_text(k): int(_text(v)) for k, v in raw.items()}
        return UserLimits(**{s.value: fields.get(s.value) for s in LimitSetting})

    async def change(
        self, user_id: str, setting: LimitSetting, new: int | None, *, reached: Tier
    ) -> UserLimits:
        """Set ``setting`` to ``new`` fen (None = back to the default).

        ``reached`` is the tier the session holds now. The tier needed is
        computed against the value stored at the moment of writing (a
        compare-and-set), so a concurrent lowering cannot turn a raise into a
        free change.

        Raises:
            LimitSettingInvalid: out of range.
            LimitChangeNeedsTier: ``reached`` is below what the change needs (``required``).
            LimitChangeConflict: the setting kept changing under us.
        """
        setting = LimitSetting(setting)
        keys = UserKeys(user_id)
        for _ in range(_ATTEMPTS):
            current = await self.get(user_id)
            needed = limit_change_tier(self._config, setting, current, new)
            if needed > reached:
                raise LimitChangeNeedsTier(needed)
            expected = current.get(setting)
            try:
                done = await self._set(
                    keys=[keys.settings()],
                    args=[setting.value, "" if expected is None else str(expected),
                          "" if new is None else str(new)],
                )
            except redis.exceptions.RedisError as exc:
                raise LimitsUnavailable(f"limit settings unavailable: {exc}") from exc
            if int(done):
                return await self.get(user_id)
        raise LimitChangeConflict()

"""Which accounts a user holds and their class (I, II or III), as the gateway knows them.

Kept in Redis (``{u:<user>}:accounts``, account id -> class), written by the
admin API when a customer is enrolled (and by the demo). The class caps what
the account may move; a payee that is not one of the user's own accounts
counts as a transfer to others. An account the gateway has not been told
about is treated as class III, the most restricted.
"""

from __future__ import annotations

from redis.asyncio import Redis

from device_fingerprint.registry import user_tag
from limits.account_classes import AccountClass

__all__ = ["AccountDirectory"]


class AccountDirectory:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def key(user_id: str) -> str:
        return f"{user_tag(user_id)}:accounts"

    async def set(self, user_id: str, accounts: dict[str, AccountClass]) -> None:
        if accounts:
            await self._redis.hset(self.key(user_id),
                                   mapping={a: AccountClass(c).value for a, c in accounts.items()})

    async def all(self, user_id: str) -> dict[str, AccountClass]:
        return self.parse(await self._redis.hgetall(self.key(user_id)))

    @staticmethod
    def parse(raw: dict[bytes, bytes]) -> dict[str, AccountClass]:
        return {k.decode(): AccountClass(v.decode()) for k, v in raw.items()}

    @staticmethod
    def class_of(accounts: dict[str, AccountClass], account_id: str) -> AccountClass:
        return accounts.get(account_id, AccountClass.III)

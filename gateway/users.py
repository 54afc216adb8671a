"""Customer credentials held by the gateway: password verifiers and login lockout."""

from __future__ import annotations

from redis.asyncio import Redis

from auth_tools.password import hash_password, verify_password
from device_fingerprint.registry import USER_ID_RE, user_tag
from gateway.errors import BadRequest, Locked, Unauthorized

__all__ = ["UserStore"]

# Verified against when the user does not exist, so both paths cost the same.
_DUMMY_HASH = hash_password("riskgate-no-such-user")


def invalid_credentials() -> Unauthorized:
    return Unauthorized("invalid_credentials", "the user id or the password is wrong")


class UserStore:
    def __init__(self, redis: Redis, *, max_failures: int, lockout_seconds: int) -> None:
        self._redis = redis
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds

    @staticmethod
    def valid_user_id(user_id: object) -> bool:
        return isinstance(user_id, str) and USER_ID_RE.match(user_id) is not None

    async def create(self, user_id: str, password: str, now: float) -> None:
        if not self.valid_user_id(user_id):
            raise BadRequest("invalid_user_id", "user ids are 1-64 characters of A-Z a-z 0-9 _ -")
        if not isinstance(password, str) or not 8 <= len(password) <= 256:
            raise BadRequest("weak_password", "passwords are 8 to 256 characters")
        await self._redis.hset(f"{user_tag(user_id)}:user", mapping={
            "pwd": hash_password(password), "created": repr(now),
        })

    async def exists(self, user_id: str) -> bool:
        return bool(await self._redis.exists(f"{user_tag(user_id)}:user"))

    async def check_password(self, user_id: object, password: object) -> str:
        """Verify a password with lockout; returns the user id or raises.

        Unknown users and wrong passwords give the same error and both count
        towards the lockout, so the answer never reveals which one was wrong.
        """
        if not self.valid_user_id(user_id) or not isinstance(password, str) or len(password) > 256:
            raise invalid_credentials()
        assert isinstance(user_id, str)
        fail_key = f"{user_tag(user_id)}:login_fail"
        # Count the attempt before verifying, so concurrent guesses cannot
        # slip past the limit; a success clears the counter.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(fail_key, 0, ex=self.lockout_seconds, nx=True)
            pipe.incr(fail_key)
            _, attempts = await pipe.execute()
        if attempts > self.max_failures:
            raise Locked("login_locked", "too many failed attempts; login is locked for a while")
        stored = await self._redis.hget(f"{user_tag(user_id)}:user", "pwd")
        ok = verify_password(stored.decode() if stored else _DUMMY_HASH, password)
        if ok and stored:
            await self._redis.delete(fail_key)
            return user_id
        if attempts >= self.max_failures:
            raise Locked("login_locked", "too many failed attempts; login is locked for a while")
        raise invalid_credentials()

"""Per user, per tool lockout after consecutive failures (PSD2 RTS Art. 4(3)(b)).

One Redis hash per user and tool, ``{u:<user_id>}:lock:<tool>``, with the
consecutive failure count and the end of the current lock. Every change is
one Lua script, so concurrent requests cannot lose a count.

Two ways to use it:

* ``check`` before, then ``record_failure`` or ``record_success`` after the
  verification. The Nth failure (default 5) locks the tool.
* ``attempt`` before, then ``record_success`` on success only. ``attempt``
  counts the try as a failure *before* verifying, so even N concurrent
  guesses racing past ``check`` cannot make more than N verifications; the
  Nth attempt locks the tool for everyone else until it succeeds.

A success deletes the record; the lock ends by itself after ``lock_seconds``
(the count starts again from zero). ``now`` is passed in, never read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth_tools.errors import AuthToolError, BadToolInput, LockoutPolicyInvalid, ToolLockedUntil

__all__ = [
    "LockoutPolicy",
    "LockoutStatus",
    "ToolLockout",
    "lock_key",
    "check",
    "attempt",
    "record_failure",
    "record_success",
    "status",
]

_USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TOOL_RE = re.compile(r"^[a-z0-9_]{1,32}$")

# KEYS[1] = lock hash; ARGV = now, max_failures, lock_seconds, counter_ttl, lock_on_nth
# Returns {refused, locked_until, failures}. With lock_on_nth = 1 (record_failure)
# the Nth failure is refused (locked); with 0 (attempt) the Nth try may still go ahead.
_COUNT_LUA = """
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local until_ = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0')
if until_ > now then
  return {1, tostring(until_), tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')}
end
if until_ > 0 then
  -- a lock that has run out: the count starts again
  redis.call('DEL', KEYS[1])
end
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
if fails >= max then
  local lu = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'locked_until', tostring(lu))
  redis.call('EXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), math.ceil(tonumber(ARGV[3])) + 1))
  return {tonumber(ARGV[5]), tostring(lu), fails}
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {0, '0', fails}
"""


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """``max_failures`` consecutive failures lock a tool for ``lock_seconds``.

    ``counter_ttl`` forgets a failure count that has not grown for that long.
    """

    max_failures: int = 5
    lock_seconds: float = 900.0
    counter_ttl: int = 86_400

    def __post_init__(self) -> None:
        if not 1 <= self.max_failures <= 100:
            raise LockoutPolicyInvalid("lockout.max_failures must be between 1 and 100")
        if not 1 <= self.lock_seconds <= 30 * 86_400:
            raise LockoutPolicyInvalid("lockout.lock_seconds must be between 1 and 2592000")
        if not 60 <= self.counter_ttl <= 365 * 86_400:
            raise LockoutPolicyInvalid("lockout.counter_ttl must be between 60 and 31536000")


@dataclass(frozen=True, slots=True)
class LockoutStatus:
    failures: int
    locked_until: float | None

    def locked_at(self, now: float) -> bool:
        return self.locked_until is not None and self.locked_until > now


def lock_key(user_id: str, tool: str) -> str:
    """``{u:<user_id>}:lock:<tool>``: in the user's Redis Cluster slot."""
    if not _USER_RE.match(user_id):
        raise BadToolInput("user ids are 1-64 characters of A-Z a-z 0-9 _ -")
    if not _TOOL_RE.match(tool):
        raise BadToolInput("tool names are 1-32 characters of a-z 0-9 _")
    return "{u:" + user_id + "}:lock:" + tool


def _redis_error() -> AuthToolError:
    return AuthToolError("the lockout state could not be read or written")


async def _count(redis: Redis, user_id: str, tool: str, now: float, policy: LockoutPolicy,
                 lock_on_nth: bool) -> tuple[bool, LockoutStatus]:
    try:
        refused, until, fails = await redis.eval(
            _COUNT_LUA, 1, lock_key(user_id, tool), repr(float(now)), policy.max_failures,
            repr(float(policy.lock_seconds)), policy.counter_ttl, int(lock_on_nth))
    except RedisError as exc:
        raise _redis_error() from exc
    locked_until = float(until)
    return bool(refused), LockoutStatus(int(fails), locked_until if locked_until > 0 else None)


async def status(redis: Redis, user_id: str, tool: str) -> LockoutStatus:
    """The stored failure count and lock end (not judged against any time)."""
    try:
        fails, until = await redis.hmget(lock_key(user_id, tool), "fails", "locked_until")
    except RedisError as exc:
        raise _redis_error() from exc
    return LockoutStatus(int(fails or 0), float(until) if until else None)


async def check(redis: Redis, user_id: str, tool: str, now: float) -> None:
    """Raise :class:`ToolLockedUntil` (code ``tool_locked``) while the tool is locked."""
    current = await status(redis, user_id, tool)
    if current.locked_at(now):
        raise ToolLockedUntil(current.locked_until)  # type: ignore[arg-type]


async def attempt(redis: Redis, user_id: str, tool: str, now: float,
                  policy: LockoutPolicy = LockoutPolicy()) -> LockoutStatus:
    """Take one try at the tool, counted as a failure until :func:`record_success`.

    Raises :class:`ToolLockedUntil` while locked. Call nothing on failure.
    """
    refused, current = await _count(redis, user_id, tool, now, policy, lock_on_nth=False)
    if refused:
        raise ToolLockedUntil(current.locked_until)  # type: ignore[arg-type]
    return current


async def record_failure(redis: Redis, user_id: str, tool: str, now: float,
                         policy: LockoutPolicy = LockoutPolicy()) -> LockoutStatus:
    """Count a failure; the ``max_failures``-th locks the tool (see ``status.locked_at``)."""
    _, current = await _count(redis, user_id, tool, now, policy, lock_on_nth=True)
    return current


async def record_success(redis: Redis, user_id: str, tool: str) -> None:
    """Reset the count and lift any lock: the user proved the tool."""
    try:
        await redis.delete(lock_key(user_id, tool))
    except RedisError as exc:
        raise _redis_error() from exc


class ToolLockout:
    """The module functions bound to one Redis client and policy, for the gateway."""

    def __init__(self, redis: Redis, policy: LockoutPolicy = LockoutPolicy()) -> None:
        self.redis = redis
        self.policy = policy

    async def check(self, user_id: str, tool: str, now: float) -> None:
        await check(self.redis, user_id, tool, now)

    async def attempt(self, user_id: str, tool: str, now: float) -> LockoutStatus:
        return await attempt(self.redis, user_id, tool, now, self.policy)

    async def record_failure(self, user_id: str, tool: str, now: float) -> bool:
        """Count a failure; True when the tool is now locked."""
        current = await record_failure(self.redis, user_id, tool, now, self.policy)
        return current.locked_at(now)

    async def record_success(self, user_id: str, tool: str) -> None:
        await record_success(self.redis, user_id, tool)

    async def status(self, user_id: str, tool: str) -> LockoutStatus:
        return await status(self.redis, user_id, tool)

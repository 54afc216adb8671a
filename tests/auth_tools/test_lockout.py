"""Per user, per tool lockout in a real Redis, including brute force and races."""

from __future__ import annotations

import asyncio
import re
import secrets

import pytest

from auth_tools import lockout, sms
from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import (
    AuthToolError,
    BadToolInput,
    LockoutPolicyInvalid,
    SmsCodeInvalid,
    ToolLocked,
)
from auth_tools.lockout import LockoutPolicy, ToolLockout

NOW = 1_763_800_000.0
KEY = secrets.token_bytes(32)
TXN = Transaction("transfer", 2_000_000, "CNY", "6222020000000001", "6222020000000003")


async def test_five_wrong_codes_then_the_right_one_is_refused(redis) -> None:  # noqa: ANN001
    locks = ToolLockout(redis)
    message, state = sms.begin("ch1", TXN, "+8613812345678", NOW, key=KEY)
    code = re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]
    wrong = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 6)]

    async def try_code(entered: str, now: float, state: dict[str, object] = state) -> sms.SmsResult:
        await locks.check("alice", "sms_armor", now)
        try:
            result = sms.complete(state, entered, now, key=KEY, challenge_id="ch1", txn=TXN)
        except SmsCodeInvalid:
            if await locks.record_failure("alice", "sms_armor", now):
                raise ToolLocked() from None
            raise
        await locks.record_success("alice", "sms_armor")
        return result

    for i, entered in enumerate(wrong[:4]):
        with pytest.raises(SmsCodeInvalid):
            await try_code(entered, NOW + i)
    with pytest.raises(ToolLocked) as fifth:
        await try_code(wrong[4], NOW + 5)
    assert fifth.value.code == "tool_locked"
    with pytest.raises(ToolLocked) as err:
        await try_code(code, NOW + 6)
    assert err.value.code == "tool_locked"
    assert err.value.locked_until == NOW + 5 + 900  # type: ignore[attr-defined]
    # Other tools and other users are not locked.
    await locks.check("alice", "totp", NOW + 6)
    await locks.check("bob", "sms_armor", NOW + 6)
    # When the lock has run out, a fresh code passes and the count is cleared.
    later = NOW + 5 + 900
    message, fresh = sms.begin("ch1", TXN, "+8613812345678", later, key=KEY)
    code = re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]
    assert (await try_code(code, later, fresh)).challenge_id == "ch1"
    assert await redis.exists("{u:alice}:lock:sms_armor") == 0


async def test_success_resets_the_count(redis) -> None:  # noqa: ANN001
    for i in range(4):
        status = await lockout.record_failure(redis, "alice", "pwd", NOW + i)
        assert status.failures == i + 1 and not status.locked_at(NOW + i)
    await lockout.record_success(redis, "alice", "pwd")
    for i in range(4):
        assert not (await lockout.record_failure(redis, "alice", "pwd", NOW + 10 + i)).locked_at(NOW + 10 + i)
    assert (await lockout.record_failure(redis, "alice", "pwd", NOW + 20)).locked_at(NOW + 20)


async def test_lock_expires_and_count_restarts(redis) -> None:  # noqa: ANN001
    policy = LockoutPolicy(max_failures=3, lock_seconds=60)
    for i in range(3):
        status = await lockout.record_failure(redis, "alice", "totp", NOW + i, policy)
    assert status.locked_until == NOW + 2 + 60
    with pytest.raises(ToolLocked):
        await lockout.check(redis, "alice", "totp", NOW + 61.9)
    await lockout.check(redis, "alice", "totp", NOW + 62)
    # Failures while locked do not extend the lock.
    await lockout.record_failure(redis, "alice", "totp", NOW + 30, policy)
    assert (await lockout.status(redis, "alice", "totp")).locked_until == NOW + 62
    status = await lockout.record_failure(redis, "alice", "totp", NOW + 63, policy)
    assert status.failures == 1 and status.locked_until is None
    ttl = await redis.ttl("{u:alice}:lock:totp")
    assert 0 < ttl <= policy.counter_ttl


async def test_concurrent_failures_are_all_counted(redis) -> None:  # noqa: ANN001
    results = await asyncio.gather(*(lockout.record_failure(redis, "alice", "sms", NOW) for _ in range(20)))
    assert sorted(r.failures for r in results)[:5] == [1, 2, 3, 4, 5]
    assert sum(1 for r in results if r.locked_at(NOW)) == 16  # the 5th and every one after
    assert (await lockout.status(redis, "alice", "sms")).failures == 5


async def test_concurrent_guesses_never_exceed_five_verifications(redis) -> None:  # noqa: ANN001
    """20 parallel wrong guesses race past check(): attempt() lets exactly 5 verify."""
    message, state = sms.begin("ch1", TXN, "+8613812345678", NOW, key=KEY)
    code = re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]
    verified = 0

    async def guess(entered: str) -> str:
        nonlocal verified
        try:
            await lockout.attempt(redis, "alice", "sms_armor", NOW)
        except ToolLocked as exc:
            return exc.code
        verified += 1
        await asyncio.sleep(0)  # let the others race in while this one "verifies"
        try:
            sms.complete(state, entered, NOW, key=KEY, challenge_id="ch1", txn=TXN)
        except SmsCodeInvalid as exc:
            return exc.code
        await lockout.record_success(redis, "alice", "sms_armor")
        return "ok"

    guesses = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 21)]
    outcomes = await asyncio.gather(*(guess(g) for g in guesses))
    assert verified == 5
    assert outcomes.count("sms_code_invalid") == 5 and outcomes.count("tool_locked") == 15
    assert await guess(code) == "tool_locked"


async def test_a_success_on_the_last_attempt_lifts_the_lock(redis) -> None:  # noqa: ANN001
    for _ in range(4):
        await lockout.attempt(redis, "alice", "pwd", NOW)
    status = await lockout.attempt(redis, "alice", "pwd", NOW)  # 5th try goes ahead, others wait
    assert status.failures == 5
    with pytest.raises(ToolLocked):
        await lockout.attempt(redis, "alice", "pwd", NOW)
    await lockout.record_success(redis, "alice", "pwd")
    await lockout.check(redis, "alice", "pwd", NOW)


async def test_key_layout_and_validation(redis) -> None:  # noqa: ANN001
    assert lockout.lock_key("42", "sms") == "{u:42}:lock:sms"
    await lockout.record_failure(redis, "42", "sms", NOW)
    assert await redis.keys("*") == [b"{u:42}:lock:sms"]
    with pytest.raises(BadToolInput):
        lockout.lock_key("a}b", "sms")
    with pytest.raises(BadToolInput):
        lockout.lock_key("42", "SMS:*")
    with pytest.raises(LockoutPolicyInvalid):
        LockoutPolicy(max_failures=0)


async def test_redis_failure_is_translated(redis_server) -> None:  # noqa: ANN001
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    broken = aioredis.Redis(unix_socket_path=redis_server.socket_file + ".missing", retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(AuthToolError) as err:
            await lockout.check(broken, "alice", "pwd", NOW)
        assert err.value.code == "auth_tool_error"
    finally:
        await broken.aclose()

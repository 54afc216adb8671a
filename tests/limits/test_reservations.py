"""Reserve / commit / release against the real Redis: windows, retries, failures, the reaper."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from limits import (
    AccountClass,
    Cap,
    LargeTransferNoticeRequired,
    LimitExceeded,
    LimitsBadInput,
    LimitsConfig,
    LimitsUnavailable,
    ReservationCommitted,
    ReservationConflict,
    ReservationReleased,
    ReservationState,
    ReservationStore,
    ReservationUnknown,
    Spent,
    Tier,
    UserLimits,
    Window,
)
from tests.limits.bank_time import at

CNY = 100
NOW = at(2026, 11, 22, 10)
I, II, III = AccountClass.I, AccountClass.II, AccountClass.III  # noqa: E741


async def pay(store, user, cny, key, *, tier=Tier.T4, cls=I, now=NOW, commit=True, **kw):
    r = await store.reserve(user, round(cny * CNY), idempotency_key=key, tier=tier,
                            account_class=cls, now=now, **kw)
    if commit:
        r = await store.commit(user, key, now=now)
    return r


async def test_reserve_then_commit_counts_the_amount_once(store):
    r = await store.reserve("alice", 20_000 * CNY, idempotency_key="k1", tier=Tier.T3,
                            account_class=I, now=NOW)
    assert r.state is ReservationState.RESERVED and r.amount == 20_000 * CNY
    assert r.spent == Spent(day=20_000 * CNY, year=20_000 * CNY)
    assert r.day == "2026-11-22" and r.expires_at == NOW + 120
    assert (r.tier_limit, r.remaining_today) == (50_000 * CNY, 30_000 * CNY)  # the limit claim
    done = await store.commit("alice", "k1", now=NOW + 1)
    assert done.state is ReservationState.COMMITTED
    again = await store.commit("alice", "k1", now=NOW + 2)  # a repeated commit changes nothing
    assert again.state is ReservationState.COMMITTED
    assert await store.spent("alice", now=NOW) == Spent(day=20_000 * CNY, year=20_000 * CNY)
    with pytest.raises(ReservationCommitted) as caught:
        await store.release("alice", "k1", now=NOW + 3)
    assert caught.value.code == "reservation_committed"


async def test_an_upstream_failure_releases_the_amount(store):
    await pay(store, "bob", 900_000, "k1", commit=False)
    with pytest.raises(LimitExceeded):
        await pay(store, "bob", 200_000, "k2")
    released = await store.release("bob", "k1", now=NOW + 1)
    assert released.state is ReservationState.RELEASED and released.spent.day == 0
    await store.release("bob", "k1", now=NOW + 2)  # idempotent
    assert (await pay(store, "bob", 1_000_000, "k3")).spent.day == 1_000_000 * CNY
    with pytest.raises(ReservationReleased):
        await store.commit("bob", "k1", now=NOW + 3)


async def test_a_retry_under_the_same_idempotency_key_is_counted_once(store):
    first = await pay(store, "carol", 30_000, "req-1", tier=Tier.T3, commit=False)
    retry = await pay(store, "carol", 30_000, "req-1", tier=Tier.T3, commit=False)
    assert not first.replayed and retry.replayed
    assert retry.spent.day == 30_000 * CNY
    await store.commit("carol", "req-1", now=NOW)
    after_commit = await pay(store, "carol", 30_000, "req-1", tier=Tier.T3, commit=False)
    assert after_commit.replayed and after_commit.state is ReservationState.COMMITTED
    assert after_commit.spent.day == 30_000 * CNY
    with pytest.raises(ReservationConflict) as caught:
        await pay(store, "carol", 30_000.01, "req-1", tier=Tier.T3)
    assert caught.value.code == "reservation_conflict"


async def test_a_full_day_refuses_and_says_what_is_left_and_which_tier_would_allow_it(store):
    await pay(store, "dan", 990_000, "k1")
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "dan", 20_000, "k2")
    err = caught.value
    assert (err.window, err.cap, err.remaining) == (Window.DAY, Cap.TIER, 10_000 * CNY)
    assert err.allowed_by is Tier.T5
    assert (await store.spent("dan", now=NOW)).day == 990_000 * CNY  # nothing reserved


async def test_an_amount_over_the_tiers_per_transaction_limit_names_the_tier(store):
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "erin", 1_000.01, "k1", tier=Tier.T1)
    assert caught.value.window is Window.TRANSACTION and caught.value.allowed_by is Tier.T2


async def test_the_day_ends_at_midnight_in_shanghai(store):
    await pay(store, "fay", 1_000, "k1", tier=Tier.T1, now=at(2026, 11, 22, 23, 59, 30))
    with pytest.raises(LimitExceeded):
        await pay(store, "fay", 0.01, "k2", tier=Tier.T1, now=at(2026, 11, 22, 23, 59, 59))
    r = await pay(store, "fay", 1_000, "k3", tier=Tier.T1, now=at(2026, 11, 23, 0, 0, 0))
    assert r.day == "2026-11-23" and r.spent.day == 1_000 * CNY
    assert r.spent.year == 2_000 * CNY
    # 08:00 in Shanghai is midnight UTC: no new day there.
    with pytest.raises(LimitExceeded):
        await pay(store, "fay", 0.01, "k4", tier=Tier.T1, now=at(2026, 11, 23, 8, 0, 1))


async def test_class_ii_caps_the_day_and_the_year_whatever_the_tier(store):
    await pay(store, "gao", 10_000, "d0", cls=II, tier=Tier.T5)
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "gao", 0.01, "d0b", cls=II, tier=Tier.T5)
    assert caught.value.cap is Cap.ACCOUNT_CLASS and caught.value.allowed_by is None
    for day in range(1, 20):  # 19 more days of 10,000: 200,000 in the year
        await pay(store, "gao", 10_000, f"d{day}", cls=II, now=at(2026, 3, day))
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "gao", 0.01, "d20", cls=II, now=at(2026, 3, 20))
    assert caught.value.window is Window.YEAR and caught.value.remaining == 0
    # A new year starts afresh.
    assert (await pay(store, "gao", 10_000, "next", cls=II, now=at(2027, 1, 1, 0))).spent.year \
        == 10_000 * CNY


async def test_class_iii_caps_the_day_at_2000(store):
    await pay(store, "hu", 1_500, "k1", cls=III)
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "hu", 501, "k2", cls=III)
    assert caught.value.remaining == 500 * CNY and caught.value.cap is Cap.ACCOUNT_CLASS


async def test_transfers_to_others_above_50000_a_day_need_t4(redis):
    # With the default table T3's own daily limit is 50,000 too; a bank whose T3
    # allows 200,000 a day still needs T4 above 50,000 to others.
    config = LimitsConfig.from_dict({"tiers": {"T3": {"daily": 200_000}}})
    store = ReservationStore(redis, config)
    await pay(store, "ivy", 40_000, "k1", tier=Tier.T3, to_others=True)
    await pay(store, "ivy", 30_000, "own", tier=Tier.T3, to_others=False)  # own accounts
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "ivy", 10_000.01, "k2", tier=Tier.T3, to_others=True)
    err = caught.value
    assert (err.window, err.cap, err.remaining) == (Window.DAY_TO_OTHERS, Cap.TO_OTHERS, 10_000 * CNY)
    assert err.allowed_by is Tier.T4
    r = await pay(store, "ivy", 20_000, "k3", tier=Tier.T4, to_others=True)
    assert r.spent == Spent(day=90_000 * CNY, year=90_000 * CNY, day_to_others=60_000 * CNY)


async def test_the_large_transfer_notice_must_be_confirmed_above_300000(store):
    await pay(store, "jin", 300_000, "k1", to_others=True)
    with pytest.raises(LargeTransferNoticeRequired) as caught:
        await pay(store, "jin", 1, "k2", to_others=True)
    assert caught.value.code == "large_transfer_notice_required"
    r = await pay(store, "jin", 1, "k2", to_others=True, notice_confirmed=True)
    assert r.spent.day_to_others == 300_001 * CNY


async def test_a_new_device_has_a_reduced_daily_limit_for_24_hours(store):
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "kai", 6_000, "k1", tier=Tier.T3, device_since=NOW - 600)
    assert caught.value.cap is Cap.DEVICE_COOLOFF
    r = await pay(store, "kai", 6_000, "k1", tier=Tier.T3, device_since=NOW - 86_400)
    assert r.state is ReservationState.COMMITTED


async def test_the_users_own_daily_limit_applies(store):
    with pytest.raises(LimitExceeded) as caught:
        await pay(store, "lin", 3_000, "k1", settings=UserLimits(daily=2_000 * CNY))
    assert caught.value.cap is Cap.USER and caught.value.remaining == 2_000 * CNY


async def test_a_crash_after_reserve_is_released_by_the_reaper(store):
    await pay(store, "mo", 600_000, "crashed", commit=False)  # the gateway dies here
    assert await store.reap(now=NOW + 119) == 0
    with pytest.raises(LimitExceeded):
        await pay(store, "mo", 500_000, "k2", now=NOW + 60)
    assert await store.reap(now=NOW + 120) == 1
    assert (await store.get("mo", "crashed", now=NOW)).state is ReservationState.EXPIRED
    assert (await store.spent("mo", now=NOW + 121)).day == 0
    assert (await pay(store, "mo", 1_000_000, "k3", now=NOW + 121)).spent.day == 1_000_000 * CNY
    assert await store.reap(now=NOW + 10_000) == 0  # committed ones are left alone
    # A release after the reaper is a no-op.
    assert (await store.release("mo", "crashed", now=NOW + 200)).state is ReservationState.EXPIRED


async def test_a_commit_after_the_reaper_counts_the_money_again(store):
    await pay(store, "ning", 10_000, "slow", commit=False)
    assert await store.reap(now=NOW + 500) == 1
    late = await store.commit("ning", "slow", now=NOW + 501)
    assert late.state is ReservationState.COMMITTED and late.recounted
    assert late.spent.day == 10_000 * CNY


async def test_unknown_reservations_are_refused(store):
    with pytest.raises(ReservationUnknown) as caught:
        await store.commit("olga", "nope", now=NOW)
    assert caught.value.code == "reservation_unknown"
    with pytest.raises(ReservationUnknown):
        await store.release("olga", "nope", now=NOW)


async def test_bad_inputs_are_refused(store):
    for user, amount, key in [("", 1, "k"), ("a{b}", 1, "k"), ("a", 0, "k"), ("a", 1, ""),
                              ("a", 1.5, "k"), ("a", True, "k")]:
        with pytest.raises(LimitsBadInput):
            await store.reserve(user, amount, idempotency_key=key, tier=Tier.T4,
                                account_class=I, now=NOW)


async def test_every_key_of_a_user_lives_in_one_cluster_slot(store, redis):
    await pay(store, "pat", 100, "k1", to_others=True, commit=False)
    await store.commit("pat", "k1", now=NOW)
    await pay(store, "pat", 100, "k2", to_others=True, commit=False)
    keys = await redis.keys("*")
    assert len(keys) >= 5  # record x2, day, year, day-to-others, pending index
    assert len({key_slot(k) for k in keys}) == 1


async def test_redis_down_fails_closed(config, tmp_path):
    dead = aioredis.Redis(unix_socket_path=str(tmp_path / "nothing.sock"),
                          retry=Retry(NoBackoff(), 0))
    try:
        with pytest.raises(LimitsUnavailable) as caught:
            await ReservationStore(dead, config).reserve(
                "quinn", 100, idempotency_key="k", tier=Tier.T4, account_class=I, now=NOW)
        assert caught.value.code == "limits_unavailable"
    finally:
        await dead.aclose()


async def test_concurrent_calls_share_pipelines_and_survive_a_script_flush(store, redis):
    await redis.script_flush()  # as after a Redis restart: every script must be reloaded

    async def one(i: int):
        return await store.reserve(f"batch-{i % 5}", 1_000 * CNY, idempotency_key=f"k{i}",
                                   tier=Tier.T2, account_class=I, now=NOW)

    results = await asyncio.gather(*(one(i) for i in range(100)), return_exceptions=True)
    reserved = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, LimitExceeded)]
    # 5 users, 20 requests of 1,000 CNY each against a T2 day of 5,000: 5 fit per user.
    assert len(reserved) == 25 and len(refused) == 75
    for i in range(5):
        assert (await store.spent(f"batch-{i}", now=NOW)).day == 5_000 * CNY


async def test_the_reaper_loop_releases_abandoned_reservations_until_stopped(store):
    await pay(store, "ray", 500_000, "crashed", commit=False)
    stop = asyncio.Event()
    task = asyncio.create_task(store.run_reaper(lambda: NOW + 3_600, stop))
    for _ in range(100):
        if (await store.spent("ray", now=NOW)).day == 0:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert (await store.get("ray", "crashed", now=NOW)).state is ReservationState.EXPIRED

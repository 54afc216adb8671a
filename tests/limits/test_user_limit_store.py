"""A user lowers a limit with a session, then raising it needs the new limit's tier."""

from __future__ import annotations

import asyncio

import pytest

from limits import (
    AccountClass,
    Cap,
    LimitChangeNeedsTier,
    LimitExceeded,
    LimitSetting,
    LimitSettingInvalid,
    Tier,
    UserLimits,
)
from tests.limits.bank_time import at

CNY = 100
NOW = at(2026, 11, 22, 10)


async def test_lower_then_raise(settings_store, store):
    assert await settings_store.get("u1") == UserLimits()
    lowered = await settings_store.change("u1", LimitSetting.DAILY, 2_000 * CNY, reached=Tier.T0)
    assert lowered.daily == 2_000 * CNY
    # The lowered limit binds a T4 session at once.
    with pytest.raises(LimitExceeded) as caught:
        await store.reserve("u1", 3_000 * CNY, idempotency_key="k1", tier=Tier.T4,
                            account_class=AccountClass.I, now=NOW, settings=lowered)
    assert caught.value.cap is Cap.USER
    # Raising to 4,000 needs T2; a bare session is not enough.
    with pytest.raises(LimitChangeNeedsTier) as needs:
        await settings_store.change("u1", LimitSetting.DAILY, 4_000 * CNY, reached=Tier.T1)
    assert needs.value.required is Tier.T2 and needs.value.code == "limit_change_needs_tier"
    assert (await settings_store.get("u1")).daily == 2_000 * CNY
    raised = await settings_store.change("u1", LimitSetting.DAILY, 4_000 * CNY, reached=Tier.T2)
    assert raised.daily == 4_000 * CNY
    # Back to the bank's default (no own limit) is a raise to the top: T5.
    with pytest.raises(LimitChangeNeedsTier):
        await settings_store.change("u1", LimitSetting.DAILY, None, reached=Tier.T4)
    assert (await settings_store.change("u1", LimitSetting.DAILY, None, reached=Tier.T5)).daily is None


async def test_raising_t2_to_20000_needs_t3(settings_store):
    with pytest.raises(LimitChangeNeedsTier) as needs:
        await settings_store.change("u2", LimitSetting.T2, 20_000 * CNY, reached=Tier.T2)
    assert needs.value.required is Tier.T3
    done = await settings_store.change("u2", LimitSetting.T2, 20_000 * CNY, reached=Tier.T3)
    assert done.t2 == 20_000 * CNY
    with pytest.raises(LimitSettingInvalid):
        await settings_store.change("u2", LimitSetting.T2, 60_000 * CNY, reached=Tier.T5)


async def test_a_concurrent_lowering_cannot_turn_a_raise_into_a_free_change(settings_store):
    # Both start from daily = 50,000: one lowers to 1,000, one "keeps" 50,000 with a bare
    # session. Whatever the order, 50,000 after 1,000 would be a raise needing T3.
    await settings_store.change("u3", LimitSetting.DAILY, 50_000 * CNY, reached=Tier.T0)
    results = await asyncio.gather(
        settings_store.change("u3", LimitSetting.DAILY, 1_000 * CNY, reached=Tier.T0),
        settings_store.change("u3", LimitSetting.DAILY, 50_000 * CNY, reached=Tier.T0),
        return_exceptions=True,
    )
    assert (await settings_store.get("u3")).daily == 1_000 * CNY
    assert isinstance(results[0], UserLimits)
    # The bare "keep 50,000" either ran first (a no-op) or was refused as a raise.
    assert isinstance(results[1], UserLimits | LimitChangeNeedsTier)

"""Pure decisions: the tier an amount needs, caps no tier lifts, limit changes, periods."""

from __future__ import annotations

import pytest

from limits import (
    AccountClass,
    Cap,
    LimitExceeded,
    LimitSetting,
    LimitSettingInvalid,
    Spent,
    Tier,
    UserLimits,
    Window,
    limit_change_tier,
    needs_large_transfer_notice,
    periods_at,
    required_tier,
    to_others_tier,
)
from tests.limits.bank_time import SHANGHAI, at

CNY = 100
NOW = at(2026, 11, 22, 10)
NOTHING = Spent()


def need(config, amount_cny, spent=NOTHING, cls=AccountClass.I, **kw):
    return required_tier(config, amount=round(amount_cny * CNY), spent=spent,
                         account_class=cls, now=kw.pop("now", NOW), **kw)


@pytest.mark.parametrize(("amount", "tier"), [
    (0, Tier.T0), (0.01, Tier.T1), (1_000, Tier.T1), (1_000.01, Tier.T2), (5_000, Tier.T2),
    (5_000.01, Tier.T3), (50_000, Tier.T3), (50_000.01, Tier.T4), (1_000_000, Tier.T4),
    (1_000_000.01, Tier.T5), (5_000_000, Tier.T5),
])
def test_the_amount_picks_the_lowest_tier_that_covers_it(config, amount, tier):
    check = need(config, amount)
    assert check.required_tier is tier
    assert check.limits.tier is tier


def test_the_days_cumulative_spend_raises_the_tier(config):
    # 800 CNY alone is T1, but 600 already spent today makes the day 1,400: T2.
    assert need(config, 800).required_tier is Tier.T1
    assert need(config, 800, Spent(day=600 * CNY, year=600 * CNY)).required_tier is Tier.T2
    check = need(config, 100_000, Spent(day=950_000 * CNY, year=950_000 * CNY))
    assert check.required_tier is Tier.T5
    assert check.remaining.today == (5_000_000 - 950_000) * CNY


def test_over_five_million_no_tier_allows_it(config):
    with pytest.raises(LimitExceeded) as caught:
        need(config, 5_000_000.01)
    assert caught.value.window is Window.TRANSACTION
    assert caught.value.allowed_by is None
    assert caught.value.code == "limit_exceeded"


def test_above_what_the_user_can_reach_names_the_tier_that_would_allow_it(config):
    with pytest.raises(LimitExceeded) as caught:
        need(config, 200_000, max_tier=Tier.T3)
    err = caught.value
    assert err.window is Window.TRANSACTION and err.cap is Cap.TIER
    assert err.allowed_by is Tier.T4
    assert err.remaining == 50_000 * CNY


def test_transfers_to_others_above_50000_a_day_need_t4(config):
    assert to_others_tier(config, amount=50_000 * CNY, others_today=0) is Tier.T0
    assert to_others_tier(config, amount=20_000 * CNY, others_today=40_000 * CNY) is Tier.T4
    # 20,000 alone is T3; with 40,000 to others already today it needs T4 ...
    spent = Spent(day=40_000 * CNY, year=40_000 * CNY, day_to_others=40_000 * CNY)
    assert need(config, 20_000, spent, to_others=True).required_tier is Tier.T4
    # ... but not when moving money between one's own accounts.
    own = Spent(day=20_000 * CNY, year=20_000 * CNY)
    assert need(config, 20_000, own, to_others=False).required_tier is Tier.T3


def test_the_large_transfer_notice_starts_above_300000_a_day(config):
    assert not needs_large_transfer_notice(config, amount=300_000 * CNY, others_today=0)
    assert needs_large_transfer_notice(config, amount=1 * CNY, others_today=300_000 * CNY)
    check = need(config, 250_000, Spent(day_to_others=100_000 * CNY), to_others=True)
    assert check.notice_required and check.required_tier is Tier.T4


def test_class_ii_and_iii_cap_every_tier(config):
    with pytest.raises(LimitExceeded) as caught:
        need(config, 10_000.01, cls=AccountClass.II)
    assert caught.value.window is Window.DAY and caught.value.cap is Cap.ACCOUNT_CLASS
    assert caught.value.allowed_by is None  # no tier lifts a class cap
    assert need(config, 10_000, cls=AccountClass.II).required_tier is Tier.T3
    with pytest.raises(LimitExceeded) as caught:
        need(config, 1_000, Spent(day=1_500 * CNY, year=1_500 * CNY), cls=AccountClass.III)
    assert caught.value.remaining == 500 * CNY
    with pytest.raises(LimitExceeded) as caught:
        need(config, 5_000, Spent(day=0, year=196_000 * CNY), cls=AccountClass.II)
    assert caught.value.window is Window.YEAR and caught.value.remaining == 4_000 * CNY


def test_a_raised_t2_lets_password_and_sms_move_more(config):
    raised = UserLimits(t2=20_000 * CNY)
    assert need(config, 20_000).required_tier is Tier.T3
    assert need(config, 20_000, settings=raised).required_tier is Tier.T2
    assert need(config, 20_000.01, settings=raised).required_tier is Tier.T3


def test_the_users_own_limits_cap_every_tier(config):
    mine = UserLimits(per_transaction=2_000 * CNY, daily=3_000 * CNY)
    with pytest.raises(LimitExceeded) as caught:
        need(config, 2_500, settings=mine)
    assert caught.value.cap is Cap.USER and caught.value.allowed_by is None
    with pytest.raises(LimitExceeded) as caught:
        need(config, 2_000, Spent(day=1_500 * CNY), settings=mine)
    assert caught.value.window is Window.DAY and caught.value.cap is Cap.USER


def test_a_new_device_forces_t2_and_a_reduced_daily_limit_for_24_hours(config):
    bound = NOW - 3_600
    check = need(config, 100, device_since=bound)
    assert check.required_tier is Tier.T2
    with pytest.raises(LimitExceeded) as caught:
        need(config, 6_000, device_since=bound)
    assert caught.value.cap is Cap.DEVICE_COOLOFF and caught.value.allowed_by is None
    # 24 hours later the cool-off is over.
    assert need(config, 6_000, device_since=NOW - 86_400).required_tier is Tier.T3


def test_the_risk_floor_raises_the_tier(config):
    assert need(config, 100, risk_floor=Tier.T3).required_tier is Tier.T3


def test_lowering_needs_only_a_session_and_raising_needs_the_new_limits_tier(config):
    none = UserLimits()
    assert limit_change_tier(config, LimitSetting.DAILY, none, 2_000 * CNY) is Tier.T0
    lowered = UserLimits(daily=2_000 * CNY)
    assert limit_change_tier(config, LimitSetting.DAILY, lowered, 1_000 * CNY) is Tier.T0
    assert limit_change_tier(config, LimitSetting.DAILY, lowered, 4_000 * CNY) is Tier.T2
    assert limit_change_tier(config, LimitSetting.DAILY, lowered, 800_000 * CNY) is Tier.T4
    assert limit_change_tier(config, LimitSetting.DAILY, lowered, None) is Tier.T5
    assert limit_change_tier(config, LimitSetting.T2, none, 20_000 * CNY) is Tier.T3
    assert limit_change_tier(config, LimitSetting.T2, none, 3_000 * CNY) is Tier.T0
    assert limit_change_tier(config, LimitSetting.PER_TRANSACTION, lowered, 10 * CNY) is Tier.T0
    with pytest.raises(LimitSettingInvalid):
        limit_change_tier(config, LimitSetting.T2, none, 50_000 * CNY + 1)
    with pytest.raises(LimitSettingInvalid):
        limit_change_tier(config, LimitSetting.DAILY, none, -1)


def test_the_natural_day_is_the_banks_day_not_utc():
    # 23:59:59 and 00:00:00 in Shanghai are different days though both are 15:59/16:00 UTC.
    before = periods_at(at(2026, 11, 22, 23, 59, 59), SHANGHAI)
    after = periods_at(at(2026, 11, 23, 0, 0, 0), SHANGHAI)
    assert (before.day, after.day) == ("2026-11-22", "2026-11-23")
    assert before.day_ends_at == at(2026, 11, 23, 0, 0, 0)
    new_year = periods_at(at(2027, 1, 1, 0, 0, 0), SHANGHAI)
    assert (periods_at(at(2026, 12, 31, 23, 59), SHANGHAI).year, new_year.year) == ("2026", "2027")


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "America/Havana"])
def test_the_day_is_right_whichever_order_instants_are_asked_in(zone):
    # Havana's clocks skip midnight in spring; New York's skip 02:00. Every answer must
    # match the calendar however the instants are ordered (the last day asked is kept).
    from datetime import datetime
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    start = datetime(2026, 3, 7, tzinfo=tz).timestamp()
    instants = [start + 1800 * i for i in range(7 * 48)]
    for now in [*instants, *reversed(instants), *instants[::7], *instants[::-5]]:
        p = periods_at(now, tz)
        local = datetime.fromtimestamp(now, tz)
        assert p.day == local.strftime("%Y-%m-%d") and p.year == str(local.year)
        assert now < p.day_ends_at
        assert datetime.fromtimestamp(p.day_ends_at, tz).date() > local.date()
        assert datetime.fromtimestamp(p.day_ends_at - 1, tz).date() == local.date()

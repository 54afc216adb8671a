from __future__ import annotations

from risk_engine import RiskLevel, required_tier

L, M, H, B = RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH, RiskLevel.BLOCK
CNY = 100


def _t(amount_cny, level=L, status="bound", **kw):
    return required_tier("transfer", amount_cny * CNY, level, status, moves_money=True, **kw)


def test_amount_picks_the_tier():
    assert [_t(a).tier for a in (500, 1_000, 1_001, 5_000, 50_000, 1_000_000, 5_000_000)] == [
        1, 1, 2, 2, 3, 4, 5]
    assert _t(5_000_001).refused and "amount_above_max_limit" in _t(5_000_001).reasons
    assert required_tier("view_accounts", 0, L, "bound", moves_money=False).tier == 0


def test_user_raised_t2_limit():
    assert _t(20_000).tier == 3
    assert _t(20_000, user_t2_limit_fen=50_000 * CNY).tier == 2


def test_risk_moves_the_tier_and_high_caps_the_limit():
    low, med, high, block = _t(3_000), _t(3_000, M), _t(3_000, H), _t(3_000, B)
    assert (low.tier, med.tier, high.tier) == (2, 3, 4)
    assert low.limit_fen == 5_000 * CNY and med.limit_fen == 50_000 * CNY
    assert high.limit_fen == 5_000 * CNY  # T4 authentication, T2 headroom
    assert block.refused and block.reasons == ("risk_block",)
    assert _t(2_000_000, H).tier == 5  # never above T5


def test_new_device_payee_and_daily_transfers_to_others():
    r = _t(100, status="new")
    assert r.tier == 2 and r.cooloff and r.cooloff_daily_limit_fen == 5_000 * CNY
    assert _t(100, payee_new=True).tier == 2
    assert _t(100, device_age_seconds=3600).cooloff
    assert _t(10_000, to_others_today_fen=45_000 * CNY).tier == 4
    assert required_tier("add_payee", 0, L, "bound", moves_money=False).tier == 2
    assert required_tier("add_payee", 0, M, "bound", moves_money=False).tier == 3

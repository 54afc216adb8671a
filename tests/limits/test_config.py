"""The [limits] table: defaults from DESIGN.md, overrides, and errors naming the bad key."""

from __future__ import annotations

import tomllib

import pytest

from limits import AccountClass, LimitsConfig, LimitsConfigInvalid, Tier, TierLimit

CNY = 100


def test_defaults_follow_the_design_table():
    config = LimitsConfig()
    expected_cny = {Tier.T0: 0, Tier.T1: 1_000, Tier.T2: 5_000, Tier.T3: 50_000,
                    Tier.T4: 1_000_000, Tier.T5: 5_000_000}
    for tier, cny in expected_cny.items():
        assert config.tier_limit(tier) == TierLimit(cny * CNY, cny * CNY)
    assert config.t2_user_max == 50_000 * CNY
    assert config.class_cap(AccountClass.I).daily is None
    assert config.class_cap(AccountClass.II).daily == 10_000 * CNY
    assert config.class_cap(AccountClass.II).yearly == 200_000 * CNY
    assert config.class_cap(AccountClass.III).daily == 2_000 * CNY
    assert config.class_cap(AccountClass.III).yearly == 50_000 * CNY
    assert config.to_others_t4_daily == 50_000 * CNY
    assert config.large_notice_daily == 300_000 * CNY
    assert config.timezone == "Asia/Shanghai"


def test_a_toml_table_overrides_only_what_it_names():
    doc = tomllib.loads("""
        [limits]
        timezone = "Europe/Berlin"
        reservation_ttl_seconds = 90
        device_cooloff_daily = "2000.00"
        [limits.tiers]
        T1 = 2000
        T4 = { daily = "2000000.00" }
        [limits.account_classes.III]
        daily = "1000.00"
    """)
    config = LimitsConfig.from_dict(doc["limits"])
    assert config.timezone == "Europe/Berlin"
    assert config.reservation_ttl == 90.0
    assert config.cooloff_daily == 2_000 * CNY
    assert config.tier_limit(Tier.T1) == TierLimit(2_000 * CNY, 2_000 * CNY)
    assert config.tier_limit(Tier.T4) == TierLimit(1_000_000 * CNY, 2_000_000 * CNY)
    assert config.class_cap(AccountClass.III).daily == 1_000 * CNY
    assert config.class_cap(AccountClass.III).yearly == 50_000 * CNY
    assert LimitsConfig.from_dict(None) == LimitsConfig()


@pytest.mark.parametrize(("table", "key"), [
    ({"limit": 1}, "limits.limit"),
    ({"tiers": {"T6": 1}}, "limits.tiers.T6"),
    ({"tiers": {"T3": 1.5}}, "limits.tiers.T3"),
    ({"tiers": {"T3": 100}}, "limits.tiers.T3"),  # below T2
    ({"tiers": {"T2": {"per_transaction": 6000}}}, "limits.tiers.T2"),  # above its daily
    ({"tiers": {"T2": {"weekly": 1}}}, "limits.tiers.T2.weekly"),
    ({"timezone": "Asia/Atlantis"}, "limits.timezone"),
    ({"timezone": 8}, "limits.timezone"),
    ({"account_classes": {"IV": {"daily": 1}}}, "limits.account_classes.IV"),
    ({"account_classes": {"II": {"daily": "300000"}}}, "limits.account_classes.II.daily"),
    ({"t2_user_max": "100.00"}, "limits.t2_user_max"),
    ({"reservation_ttl_seconds": 0}, "limits.reservation_ttl_seconds"),
    ({"reaper_interval_seconds": "soon"}, "limits.reaper_interval_seconds"),
    ({"record_retention_seconds": 60}, "limits.record_retention_seconds"),
    ({"device_cooloff_daily": True}, "limits.device_cooloff_daily"),
])
def test_a_bad_value_names_its_key(table, key):
    with pytest.raises(LimitsConfigInvalid) as caught:
        LimitsConfig.from_dict(table)
    assert caught.value.key == key
    assert caught.value.code == "limits_config_invalid"
    assert key in str(caught.value)

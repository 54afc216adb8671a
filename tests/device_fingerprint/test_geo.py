"""IP regions from the shipped table, IP change, impossible travel and IP pinning."""

from __future__ import annotations

import importlib.resources

import pytest

from device_fingerprint.errors import (
    DeviceConfigInvalid,
    IpAddressInvalid,
    IpOutsidePinnedRange,
    IpRegionTableInvalid,
)
from device_fingerprint.geo import (
    GeoConfig,
    IpRegionTable,
    Sighting,
    check_pinned,
    ip_changed,
    network_features,
    pin_network,
    region_of,
    travel_between,
)

TABLE = IpRegionTable.bundled()
CONFIG = GeoConfig()
SHANGHAI, BEIJING, NEW_YORK = "192.0.2.10", "198.51.100.7", "203.0.113.200"
LONDON_V6 = "2001:db8:2::15"
HOUR = 3600.0


def test_shipped_table_is_package_data():
    ref = importlib.resources.files("device_fingerprint") / "data" / "ip_regions.csv"
    assert ref.is_file()
    assert len(TABLE) >= 30


@pytest.mark.parametrize(("ip", "code"), [
    (SHANGHAI, "CN-SH"), (BEIJING, "CN-BJ"), (NEW_YORK, "US-NY"), ("203.0.113.5", "CN-GD"),
    (LONDON_V6, "GB-ENG"), ("::ffff:192.0.2.10", "CN-SH"), ("202.96.209.5", "CN-SH"),
    ("240e:3a1::1", "CN"), ("10.1.2.3", "ZZ"),
])
def test_region_of(ip, code):
    assert region_of(ip, TABLE).code == code


def test_longest_prefix_wins_and_unknown_is_none():
    table = IpRegionTable.from_csv("cidr,region,lat,lon,radius_km\n"
                                   "10.0.0.0/8,CN,35,104,2500\n10.1.0.0/16,CN-SH,31.2,121.5,50\n")
    assert table.region_of("10.1.9.9").code == "CN-SH"
    assert table.region_of("10.2.9.9").code == "CN"
    assert table.region_of("11.0.0.1") is None
    assert region_of("2001:db8:ffff::1", TABLE) is None


def test_impossible_travel_shanghai_to_new_york_in_an_hour(now):
    travel = travel_between(Sighting(SHANGHAI, now), Sighting(NEW_YORK, now + HOUR), TABLE, CONFIG)
    assert travel.impossible
    assert 11_000 < travel.distance_km < 12_000
    assert travel.speed_kmh > 10_000
    assert (travel.from_region, travel.to_region) == ("CN-SH", "US-NY")


def test_a_day_later_the_same_trip_is_possible(now):
    travel = travel_between(Sighting(SHANGHAI, now), Sighting(NEW_YORK, now + 20 * HOUR), TABLE, CONFIG)
    assert not travel.impossible


def test_beijing_to_shanghai_by_high_speed_rail_is_possible(now):
    assert not travel_between(Sighting(BEIJING, now), Sighting(SHANGHAI, now + 5 * HOUR),
                              TABLE, CONFIG).impossible
    assert travel_between(Sighting(BEIJING, now), Sighting(SHANGHAI, now + 600),
                          TABLE, CONFIG).impossible


def test_country_level_and_private_ranges_never_make_impossible_travel(now):
    for ip in ("240e:3a1::1", "10.1.2.3", "2001:db8:ffff::1"):
        travel = travel_between(Sighting(SHANGHAI, now), Sighting(ip, now + 1), TABLE, CONFIG)
        assert not travel.impossible and travel.distance_km == 0.0


def test_max_speed_is_configurable(now):
    slow = GeoConfig.from_dict({"max_speed_kmh": 300})
    assert travel_between(Sighting(BEIJING, now), Sighting(SHANGHAI, now + 3 * HOUR),
                          TABLE, slow).impossible


def test_network_features_use_the_risk_engine_names(now):
    features = network_features(Sighting(SHANGHAI, now), Sighting(LONDON_V6, now + HOUR), TABLE, CONFIG)
    assert set(features) == {"ip_changed", "geo_distance_km", "travel_speed_kmh", "impossible_travel"}
    assert features["ip_changed"] is True and features["impossible_travel"] is True
    first = network_features(None, Sighting(SHANGHAI, now), TABLE, CONFIG)
    assert first == {"ip_changed": False, "geo_distance_km": 0.0, "travel_speed_kmh": 0.0,
                     "impossible_travel": False}


def test_ip_change_within_a_session():
    assert ip_changed("192.0.2.10", "192.0.2.11")
    assert not ip_changed("192.0.2.10", "::ffff:192.0.2.10")
    assert not ip_changed(None, "192.0.2.10")


def test_session_pinned_to_its_ipv4_slash_24():
    pin = pin_network("192.0.2.77", CONFIG)
    assert pin == "192.0.2.0/24"
    check_pinned(pin, "192.0.2.200")
    check_pinned(pin, "::ffff:192.0.2.1")
    for outside in ("192.0.3.1", "198.51.100.7", "2001:db8::1"):
        with pytest.raises(IpOutsidePinnedRange) as info:
            check_pinned(pin, outside)
        assert info.value.code == "session_ip_outside_pinned_range"


def test_session_pinned_to_its_ipv6_slash_48():
    pin = pin_network("2001:db8:2:aa::5", CONFIG)
    assert pin == "2001:db8:2::/48"
    check_pinned(pin, "2001:db8:2:ffff::1")
    with pytest.raises(IpOutsidePinnedRange):
        check_pinned(pin, "2001:db8:3::1")
    assert pin_network("2001:db8:2:aa::5", GeoConfig(pin_ipv6_prefix=64)) == "2001:db8:2:aa::/64"


def test_bad_ip_is_refused():
    with pytest.raises(IpAddressInvalid) as info:
        region_of("999.1.1.1", TABLE)
    assert info.value.code == "ip_address_invalid"
    with pytest.raises(IpAddressInvalid):
        pin_network("localhost", CONFIG)


@pytest.mark.parametrize(("body", "line"), [
    ("10.0.0.0/33,CN,1,1,1\n", "t.csv:2"),
    ("10.0.0.1/8,CN,1,1,1\n", "t.csv:2"),  # host bits set: a typo, not a network
    ("10.0.0.0/8,China,1,1,1\n", "t.csv:2"),
    ("# comment\n10.0.0.0/8,CN,95,1,1\n", "t.csv:3"),
    ("10.0.0.0/8,CN,1,1,1\n10.0.0.0/8,CN,1,1,1\n", "t.csv:3"),
    ("10.0.0.0/8,CN,1,1\n", "t.csv:2"),
])
def test_region_table_rows_are_validated(body, line):
    with pytest.raises(IpRegionTableInvalid) as info:
        IpRegionTable.from_csv("cidr,region,lat,lon,radius_km\n" + body, source="t.csv")
    assert info.value.field == line


def test_region_table_needs_its_header(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("10.0.0.0/8,CN,1,1,1\n")
    with pytest.raises(IpRegionTableInvalid):
        IpRegionTable.from_path(path)
    with pytest.raises(IpRegionTableInvalid):
        IpRegionTable.from_path(tmp_path / "missing.csv")


def test_geo_config_is_validated():
    with pytest.raises(DeviceConfigInvalid) as info:
        GeoConfig.from_dict({"pin_ipv4_prefix": 40})
    assert info.value.field == "device.geo.pin_ipv4_prefix"
    with pytest.raises(DeviceConfigInvalid):
        GeoConfig.from_dict({"max_speed": 900})

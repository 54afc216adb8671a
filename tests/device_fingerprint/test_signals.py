"""Runtime risk signals and the tier cap: an emulator can never reach T4 or T5."""

from __future__ import annotations

import hashlib

import pytest

from device_fingerprint.errors import DeviceConfigInvalid, SignalsInvalid
from device_fingerprint.signals import RiskSignal, SignalsConfig, max_tier_allowed, parse_signals

GENUINE = hashlib.sha256(b"riskgate bank app release certificate").hexdigest()
REPACKAGED = hashlib.sha256(b"somebody else's signing key").hexdigest()
CONFIG = SignalsConfig.from_dict({"expected_app_signatures": [GENUINE.upper()]})
T3, T4 = 3, 4


def test_clean_genuine_app_may_reach_every_tier():
    signals = parse_signals({"vpn": False}, app_signature_hash=GENUINE, config=CONFIG)
    assert signals.raised == frozenset()
    assert max_tier_allowed(signals) == 5


@pytest.mark.parametrize("reported", [{"emulator": True}, {"hooked": True},
                                      {"signature_mismatch": True}])
def test_emulator_hooking_or_tampering_is_capped_below_t4(reported):
    signals = parse_signals(reported, app_signature_hash=GENUINE, config=CONFIG)
    assert max_tier_allowed(signals) == T3
    assert max_tier_allowed(signals) < T4


def test_repackaged_app_is_caught_even_when_it_reports_nothing():
    signals = parse_signals({}, app_signature_hash=REPACKAGED, config=CONFIG)
    assert RiskSignal.SIGNATURE_MISMATCH in signals
    assert max_tier_allowed(signals) == T3


@pytest.mark.parametrize("reported", [{"rooted": True}, {"debugger": True},
                                      {"vpn": True, "proxy": True}])
def test_other_signals_are_recorded_but_do_not_cap(reported):
    signals = parse_signals(reported, app_signature_hash=GENUINE, config=CONFIG)
    assert signals.raised == frozenset(RiskSignal(k) for k in reported)
    assert max_tier_allowed(signals) == 5
    assert all(signals.as_flags()[k] for k in reported)


def test_operator_can_cap_rooted_devices_too():
    config = SignalsConfig.from_dict({"cap_signals": ["rooted", "emulator"], "capped_max_tier": 2})
    assert max_tier_allowed(parse_signals({"rooted": True}, app_signature_hash=GENUINE,
                                          config=config)) == 2


def test_without_expected_signatures_the_comparison_is_not_made():
    signals = parse_signals(None, app_signature_hash=REPACKAGED, config=SignalsConfig())
    assert not signals.signature_checked
    assert max_tier_allowed(signals) == 5


@pytest.mark.parametrize(("reported", "field"), [
    ({"emulater": True}, "emulater"),  # a typo must not read as "not an emulator"
    ({"emulator": "no"}, "emulator"),
    ({"emulator": 0}, "emulator"),
    ("rooted", "signals"),
])
def test_malformed_signals_are_refused(reported, field):
    with pytest.raises(SignalsInvalid) as info:
        parse_signals(reported, app_signature_hash=GENUINE, config=CONFIG)
    assert info.value.field == field
    assert info.value.code == "device_signals_invalid"


@pytest.mark.parametrize("table", [
    {"expected_app_signatures": ["not-a-hash"]},
    {"cap_signals": ["jailbreak"]},
    {"capped_max_tier": 7},
    {"cap_signal": ["emulator"]},
])
def test_signals_config_is_validated(table):
    with pytest.raises(DeviceConfigInvalid) as info:
        SignalsConfig.from_dict(table)
    assert info.value.field.startswith("device.signals.")

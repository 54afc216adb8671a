"""Recognising a phone: bound key, same phone after reinstall, or a different phone."""

from __future__ import annotations

import pytest

from device_fingerprint.attributes import parse_attributes
from device_fingerprint.errors import DeviceConfigInvalid
from device_fingerprint.matching import MatchingConfig, MatchStatus, match_device
from device_fingerprint.signature import (
    parse_signature_header,
    sign_request,
    verify_device_signature,
)

CONFIG = MatchingConfig()


async def test_request_signed_by_a_bound_key_is_that_device(registry, phone, new_key, now):
    key, jwk = new_key()
    attrs = parse_attributes(phone())
    device = await registry.register("alice", jwk, attrs.to_dict(), now)

    header = sign_request(key, method="GET", path="/accounts", query="", body=b"",
                          device_id=device.device_id, ts=int(now), nonce="n" * 22)
    signed_by = await registry.get(device.device_id)
    verify_device_signature(public_key=signed_by.public_key, header=parse_signature_header(header),
                            method="GET", path="/accounts", query="", body=b"",
                            device_id=device.device_id, now=now, max_skew=120)

    match = match_device(reported=attrs, signed_by=signed_by,
                         known=await registry.list("alice"), config=CONFIG)
    assert match.status is MatchStatus.BOUND
    assert match.matched_device_id == device.device_id
    assert match.similarity == 1.0


async def test_reinstall_on_the_same_phone_is_known_reinstalled(registry, phone, new_key, now):
    _, old_jwk = new_key()
    first_install = phone()
    old = await registry.register("alice", old_jwk, parse_attributes(first_install).to_dict(),
                                  now - 90 * 86400)
    # A second phone of the user, to show the right one is picked.
    _, other_jwk = new_key()
    await registry.register("alice", other_jwk, parse_attributes(phone(
        model="iPhone15,3", os="iOS", os_version="17.4.1", screen="1290x2796",
        sim_hash="", carrier="")).to_dict(), now - 10 * 86400)

    # Uninstall + reinstall: new install id, new key, app updated in between, OS minor update.
    reinstalled = parse_attributes(phone(install_id="Z" * 22, app_version="5.3.1",
                                         os_version="14.1", screen="3200x1440"))
    match = match_device(reported=reinstalled, signed_by=None,
                         known=await registry.list("alice"), config=CONFIG)
    assert match.status is MatchStatus.KNOWN_REINSTALLED
    assert match.matched_device_id == old.device_id
    assert CONFIG.reinstall_threshold <= match.similarity < 1.0
    assert "sim_hash" in match.matched_attributes and "model" in match.matched_attributes
    assert "install_id" not in match.matched_attributes


async def test_a_different_phone_is_new(registry, phone, new_key, now, sim_hash):
    _, jwk = new_key()
    await registry.register("alice", jwk, parse_attributes(phone()).to_dict(), now - 86400)
    known = await registry.list("alice")

    # Same model, same city, same carrier, but another SIM: a colleague's identical phone.
    same_model = parse_attributes(phone(sim_hash=sim_hash("89860099999999999999")))
    match = match_device(reported=same_model, signed_by=None, known=known, config=CONFIG)
    assert match.status is MatchStatus.NEW
    assert match.matched_device_id is None
    assert match.similarity < CONFIG.reinstall_threshold

    # The user's SIM moved into a different model: a different device.
    other_model = parse_attributes(phone(model="HUAWEI ALN-AL00", os="HarmonyOS", os_version="4.0"))
    match = match_device(reported=other_model, signed_by=None, known=known, config=CONFIG)
    assert match.status is MatchStatus.NEW
    assert match.similarity == 0.0


async def test_wifi_only_tablets_of_one_model_are_not_the_same_device(registry, phone, new_key, now):
    tablet = dict(model="Xiaomi Pad 6", sim_hash="", carrier="", screen="1800x2880")
    _, jwk = new_key()
    await registry.register("alice", jwk, parse_attributes(phone(**tablet)).to_dict(), now)
    match = match_device(reported=parse_attributes(phone(**tablet)), signed_by=None,
                         known=await registry.list("alice"), config=CONFIG)
    assert match.status is MatchStatus.NEW


async def test_an_unbound_phone_is_never_known(registry, phone, new_key, now):
    """A phone the user unbound (say, reported stolen) comes back as new, not re-installed."""
    _, jwk = new_key()
    attrs = phone()
    device = await registry.register("alice", jwk, parse_attributes(attrs).to_dict(), now)
    await registry.revoke(device.device_id)
    match = match_device(reported=parse_attributes(phone(install_id="Y" * 22)), signed_by=None,
                         known=await registry.list("alice"), config=CONFIG)
    assert match.status is MatchStatus.NEW


async def test_devices_with_free_form_legacy_attributes_are_skipped(registry, phone, new_key, now):
    _, jwk = new_key()
    await registry.register("alice", jwk, {"platform": "android", "model": "riskgate-reference"}, now)
    match = match_device(reported=parse_attributes(phone()), signed_by=None,
                         known=await registry.list("alice"), config=CONFIG)
    assert match.status is MatchStatus.NEW


def test_thresholds_come_from_config():
    strict = MatchingConfig.from_dict({"reinstall_threshold": 0.99,
                                       "weights": {"install_id": 0.0, "carrier": 0.0}})
    assert strict.weights["carrier"] == 0.0 and strict.weights["sim_hash"] == 0.25
    assert strict.reinstall_threshold == 0.99


@pytest.mark.parametrize(("table", "key"), [
    ({"reinstall_treshold": 0.9}, "device.matching.reinstall_treshold"),
    ({"weights": {"imei": 0.5}}, "device.matching.weights.imei"),
    ({"weights": {"model": -1}}, "device.matching.weights.model"),
    ({"weights": {"model": "high"}}, "device.matching.weights.model"),
    ({"reinstall_threshold": 1.5}, "device.matching.reinstall_threshold"),
    ({"must_match": ["serial"]}, "device.matching.must_match"),
    ({"weights": {n: 0 for n in ("sim_hash", "model", "screen", "os", "os_version", "carrier",
                                 "locale", "timezone", "app_version", "app_signature_hash")}},
     "device.matching.weights"),
])
def test_config_errors_name_the_key(table, key):
    with pytest.raises(DeviceConfigInvalid) as info:
        MatchingConfig.from_dict(table)
    assert info.value.field == key
    assert info.value.code == "device_config_invalid"

"""The attribute schema: what the app reports is validated and normalised."""

from __future__ import annotations

import pytest

from device_fingerprint.attributes import DeviceOS, parse_attributes
from device_fingerprint.errors import AttributeInvalid, AttributeMissing, AttributeUnknown


def test_same_phone_reports_normalise_to_the_same_values(phone):
    portrait = parse_attributes(phone(install_id="a" * 22))
    landscape = parse_attributes(phone(
        install_id="a" * 22, screen="3200 x 1440", locale="zh-cn", os="ANDROID",
        model="  xiaomi   23127PN0CC ",
        app_signature_hash=":".join(phone()["app_signature_hash"].upper()[i:i + 2]
                                    for i in range(0, 64, 2)),
    ))
    assert portrait == landscape
    assert portrait.screen == "1440x3200"
    assert portrait.locale == "zh-CN"
    assert portrait.os is DeviceOS.ANDROID
    assert parse_attributes(phone(os="iPadOS", locale="zh_Hans_CN")).locale == "zh-Hans-CN"


def test_round_trip_through_the_stored_form(phone):
    attrs = parse_attributes(phone())
    assert parse_attributes(attrs.to_dict()) == attrs


def test_sim_and_carrier_are_optional(phone):
    tablet = parse_attributes(phone(sim_hash="", carrier=""))
    assert tablet.sim_hash == "" and tablet.carrier == ""


@pytest.mark.parametrize(("field", "value", "error"), [
    ("install_id", "", AttributeMissing),
    ("timezone", "Mars/Olympus_Mons", AttributeInvalid),
    ("timezone", "../../etc/passwd", AttributeInvalid),
    ("screen", "big", AttributeInvalid),
    ("os", "symbian", AttributeInvalid),
    ("os_version", "fourteen", AttributeInvalid),
    ("app_signature_hash", "deadbeef", AttributeInvalid),
    ("sim_hash", "89860012345678901234", AttributeInvalid),  # a raw ICCID is refused
    ("carrier", "China Mobile", AttributeInvalid),
    ("install_id", "short", AttributeInvalid),
    ("model", 42, AttributeInvalid),
    ("locale", "x" * 200, AttributeInvalid),
])
def test_bad_attributes_name_the_field(phone, field, value, error):
    with pytest.raises(error) as info:
        parse_attributes(phone(**{field: value}))
    assert info.value.field == field
    assert info.value.code.startswith("device_attribute_")


def test_misspelt_attribute_is_refused_not_ignored(phone):
    attrs = phone()
    attrs["sim_hahs"] = attrs.pop("sim_hash")
    with pytest.raises(AttributeUnknown) as info:
        parse_attributes(attrs)
    assert info.value.code == "device_attribute_unknown"
    assert info.value.field == "sim_hahs"


def test_not_an_object():
    with pytest.raises(AttributeInvalid):
        parse_attributes(["model", "x"])

"""The tier table: defaults, configuration, and what completed tools reach."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import pytest

from auth_tools.errors import TierPolicyInvalid
from auth_tools.tier_policy import DEFAULT_TIERS, TierPolicy, Tool, amr_claim, amr_for, elements_of

POLICY = TierPolicy.default()


@pytest.mark.parametrize(("completed", "tier"), [
    (set(), 0),
    ({"pwd"}, 1),
    ({"biometric"}, 1),
    ({"sms"}, 0),
    ({"pwd", "sms"}, 2),
    ({"sms_armor"}, 3),
    ({"pwd", "sms_armor"}, 3),
    ({"totp"}, 3),
    ({"fido_uv"}, 3),
    ({"cloud_cert"}, 4),  # a cloud certificate signature stands for key + PIN
    ({"fido_uv_not_synced"}, 4),
    ({"hardware_cert"}, 5),
    ({Tool.PWD, Tool.TOTP}, 3),
])
def test_default_table(completed: set[str], tier: int) -> None:
    assert POLICY.satisfied_tier(completed) == tier


def test_bound_device_comes_from_the_session() -> None:
    assert POLICY.satisfied_tier({"biometric"}) == 1
    assert POLICY.satisfied_tier({"biometric"}, present={"bound_device"}) == 2
    assert POLICY.satisfied_tier(set(), present={"bound_device"}) == 0


def test_gateway_completed_mapping_with_results() -> None:
    # challenge.completed as the step-up API keeps it.
    fido_synced = {"fido": {"amr": ["swk", "user"], "max_tier": 3}}
    fido_device_bound = {"fido": {"amr": ["hwk", "user"], "max_tier": 4}}
    fido_no_uv = {"fido": {"amr": ["hwk"], "max_tier": 4}}
    assert POLICY.satisfied_tier(fido_synced) == 3
    assert POLICY.satisfied_tier(fido_device_bound) == 4
    assert POLICY.satisfied_tier(fido_no_uv) == 0
    # max_tier caps what a factor helps reach, whatever its amr says.
    assert POLICY.satisfied_tier({"fido": {"amr": ["hwk", "user"], "max_tier": 3}}) == 3
    cert = {"cloud_cert": {"amr": ["swk", "pin"], "max_tier": 4}, "pwd": {"amr": ["pwd"]}}
    assert POLICY.satisfied_tier(cert) == 4
    hw = {"hardware_cert": {"amr": ["hwk", "pin"], "max_tier": 5}}
    assert POLICY.satisfied_tier(hw) == 5
    bio = {"biometric": {"amr": ["hwk", "face", "user"], "max_tier": 5}}
    assert POLICY.satisfied_tier(bio, present=["bound_device"]) == 2


def test_result_objects() -> None:
    @dataclass(frozen=True)
    class Result:
        tool: str
        amr: tuple[str, ...]
        max_tier: int = 5

    assert POLICY.satisfied_tier([Result("pwd", ("pwd",)), Result("sms", ("sms",))]) == 2
    assert POLICY.satisfied_tier([Result("fido", ("swk", "user"), 3)]) == 3
    assert POLICY.amr([Result("pwd", ("pwd",)), Result("sms", ("sms",))]) == ("mfa", "pwd", "sms")


def test_acceptable_combinations() -> None:
    assert POLICY.acceptable_combinations(2, exact=True) == [["pwd", "sms"], ["biometric", "bound_device"],
                                                             ["mtls_cert", "pwd"]]
    assert POLICY.acceptable_combinations(5) == [["hardware_cert", "pin"]]
    t3 = POLICY.acceptable_combinations(3)
    assert t3[:3] == [["sms_armor"], ["totp"], ["fido_uv"]]
    assert ["hardware_cert", "pin"] in t3 and ["pwd"] not in t3
    assert POLICY.combinations(0) == [[]]
    with pytest.raises(TierPolicyInvalid):
        POLICY.acceptable_combinations(6)


def test_from_toml_overrides_one_tier_and_keeps_the_rest() -> None:
    doc = tomllib.loads("""
        [tiers]
        T3 = ["sms_armor", ["totp"]]
        T4 = ["cloud_cert+pin", "fido_uv_not_synced", "biometric"]
    """)
    policy = TierPolicy.from_dict(doc["tiers"])
    assert policy.satisfied_tier({"fido_uv"}) == 0  # no longer T3
    assert policy.satisfied_tier({"biometric"}) == 4  # the operator decided so
    assert policy.as_dict()["T2"] == DEFAULT_TIERS["T2"]
    assert TierPolicy.from_dict(POLICY.as_dict()) == POLICY


@pytest.mark.parametrize(("doc", "named"), [
    ({"T3": ["sms_armor", "totpp"]}, "tiers.T3[1]: unknown tool 'totpp'"),
    ({"T2": ["pwd+smss"]}, "tiers.T2[0]: unknown tool 'smss'"),
    ({"T6": ["pwd"]}, "tiers.T6: tiers are T1 to T5"),
    ({"T1": "pwd"}, "tiers.T1: must be a list"),
    ({"T1": [""]}, "tiers.T1[0]: unknown tool ''"),
    ({"T1": [[]]}, "tiers.T1[0]: a row needs at least one tool"),
    ({"T1": [42]}, "tiers.T1[0]: a row is a string"),
])
def test_bad_config_names_the_key(doc: dict[str, object], named: str) -> None:
    with pytest.raises(TierPolicyInvalid) as err:
        TierPolicy.from_dict(doc)
    assert str(err.value).startswith(named)
    assert err.value.code == "tier_policy_invalid"


def test_rfc8176_amr() -> None:
    assert amr_for("pwd") == ("pwd",)
    assert amr_for("totp") == ("otp",)
    assert amr_for("sms_armor") == ("sms",)
    assert amr_for("hardware_cert") == ("hwk", "pin")
    assert amr_for("nope") == ()
    assert amr_claim(["otp"]) == ("otp",)
    assert amr_claim(["hwk", "pin"]) == ("hwk", "mfa", "pin")
    assert amr_claim(["hwk", "fpt", "user"]) == ("fpt", "hwk", "mfa", "user")
    assert amr_claim(["swk", "otp"]) == ("otp", "swk")  # two possession factors are not MFA
    assert POLICY.amr({"pwd": {"amr": ["pwd"]}, "sms_armor": {"amr": ["sms"]}}) == ("mfa", "pwd", "sms")


def test_elements_of() -> None:
    assert elements_of("sms_armor", ["sms"]) == {"sms_armor", "sms"}
    assert elements_of("fido", ["hwk", "user"]) == {"fido", "fido_uv", "fido_uv_not_synced"}
    assert elements_of("fido", ["swk", "user"]) == {"fido", "fido_uv"}
    assert elements_of("cloud_cert", ["swk", "pin"]) == {"cloud_cert", "pin"}
    assert elements_of("device_tee_key", ["hwk", "fpt", "user"]) == {"device_tee_key", "biometric"}

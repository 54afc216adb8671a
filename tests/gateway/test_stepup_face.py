"""The face-match provider through the gateway: online activation of a cloud certificate
with face + SMS to the reserved phone (as the tier table is configured), and every way a
provider result can be wrong, stale, foreign or replayed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auth_tools.face_test_provider import TestFaceProvider
from gateway.config import ConfigError
from gateway.stepup_setup import load_tier_policy
from tests.gateway.conftest import make_config
from tests.gateway.stepup_flows import (
    approve_with_sms_armor,
    begin,
    challenge_of,
    complete,
    customer,
    sms_code,
    transfer,
)

PROVIDER = TestFaceProvider("https://face-test-provider.invalid")
# Online activation to the T4 level: enrolling a cloud certificate (T3) may be
# approved by face + SMS to the reserved phone. The tier table says so.
ACTIVATION_TIERS = '[tiers]\nT3 = ["sms_armor", "totp", "fido_uv", "face+sms"]\n'


def face_config(tmp_path: Path, **extra: object) -> dict[str, object]:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(ACTIVATION_TIERS)
    return {"tiers_file": str(tiers), "face_provider_key": PROVIDER.public_jwk_json(),
            "face_issuer": PROVIDER.issuer, "face_provider_url": "https://face.example/v1/match", **extra}


@pytest.fixture
async def harness(gateway_factory, echo_upstream, tmp_path):
    _echo, url = echo_upstream
    return await gateway_factory(upstream={"url": url}, stepup=face_config(tmp_path))


async def begin_face(client, challenge_id: str) -> dict:
    begun = await begin(client, challenge_id, "face")
    assert begun.status == 200, begun.json()
    return begun.json()


async def answer_face(client, challenge_id: str, token: str):
    return await complete(client, challenge_id, "face", {"token": token})


async def pass_face(client, challenge_id: str, user_id: str = "alice", **verdict):
    options = await begin_face(client, challenge_id)
    return await answer_face(client, challenge_id, PROVIDER.issue_result(options["nonce"], user_id, **verdict))


async def pass_sms(client, harness, challenge_id: str):
    assert (await begin(client, challenge_id, "sms")).status == 200
    return await complete(client, challenge_id, "sms", {"code": sms_code(harness)})


def new_csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app keystore")]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


async def t3_challenge(client) -> str:
    return challenge_of(await transfer(client, "20000.00"))["challenge_id"]


async def test_face_and_sms_activate_a_cloud_certificate_online(harness) -> None:
    client = await customer(harness)
    path = "/auth/tools/cloud_cert/enrol/begin"
    chal = challenge_of(await client.call("POST", path, {}))
    assert chal["required_tier"] == "T3" and ["face", "sms"] in chal["acceptable"]

    options = await begin_face(client, chal["challenge_id"])
    assert options["provider_url"] == "https://face.example/v1/match" and options["sub"] == "alice"
    assert options["txn_hash"] == chal["txn_hash"] and options["nonce"]
    face_done = await answer_face(client, chal["challenge_id"], PROVIDER.issue_result(options["nonce"], "alice"))
    assert face_done.json()["status"] == "pending", face_done.json()  # face alone is not enough
    approved = (await pass_sms(client, harness, chal["challenge_id"])).json()
    assert approved["status"] == "approved" and approved["acr"] == "T3", approved
    assert {"face", "sms", "mfa"} <= set(approved["amr"])

    begun = await client.call("POST", path, {}, headers={"X-Approval-Token": approved["approval_token"]})
    assert begun.status == 200, begun.json()
    done = await client.call("POST", "/auth/tools/cloud_cert/enrol/complete",
                             {"enrolment_id": begun.json()["enrolment_id"], "csr": new_csr()})
    assert done.status == 201, done.json()
    assert "cloud_cert" in (await client.call("GET", "/auth/tools")).json()["tools"]


async def test_online_activation_needs_face_and_sms_not_any_t3_tool(gateway_factory, echo_upstream,
                                                                   tmp_path) -> None:
    """With the default stepup.online_activation (face+sms) and no tier-table row for it:
    SMS armor completes a T3 row but does not activate a cloud certificate, and an approval
    from a payment challenge does not either."""
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, stepup={
        "face_provider_key": PROVIDER.public_jwk_json(), "face_issuer": PROVIDER.issuer,
        "face_provider_url": "https://face.example/v1/match"})
    client = await customer(gw)
    listed = (await client.call("GET", "/auth/tools")).json()
    assert listed["activation"] == {"cloud_cert": ["face", "sms"], "fido": ["face", "sms"]}
    path = "/auth/tools/cloud_cert/enrol/begin"
    chal = challenge_of(await client.call("POST", path, {}))
    assert chal["acceptable"] == [["face", "sms"]]

    assert (await begin(client, chal["challenge_id"], "sms_armor")).status == 200
    armor = await complete(client, chal["challenge_id"], "sms_armor", {"code": sms_code(gw)})
    assert armor.json()["status"] == "pending" and armor.json()["acceptable"] == [["face", "sms"]]

    payment = await t3_challenge(client)
    token = (await approve_with_sms_armor(client, gw, payment))
    refused = await client.call("POST", path, {}, headers={"X-Approval-Token": token})
    assert (refused.status, refused.error) == (401, "approval_mismatch")  # bound to the payment

    assert (await pass_face(client, chal["challenge_id"])).json()["status"] == "pending"
    approved = (await pass_sms(client, gw, chal["challenge_id"])).json()
    assert approved["status"] == "approved", approved
    begun = await client.call("POST", path, {}, headers={"X-Approval-Token": approved["approval_token"]})
    assert begun.status == 200, begun.json()


async def test_without_a_face_provider_enrolment_keeps_its_tier(gateway_factory, echo_upstream) -> None:
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await customer(gw)
    chal = challenge_of(await client.call("POST", "/auth/tools/cloud_cert/enrol/begin", {}))
    assert chal["required_tier"] == "T3" and ["sms_armor"] in chal["acceptable"]


@pytest.mark.parametrize("verdict", [
    {"match": False}, {"liveness": False}, {"score": 0.5},
    {"now": time.time() - 600},  # a result that expired long ago
])
async def test_a_negative_or_stale_verdict_is_refused(harness, verdict) -> None:
    client = await customer(harness)
    cid = await t3_challenge(client)
    refused = await pass_face(client, cid, **verdict)
    assert refused.status == 401 and refused.error == "verification_failed"
    # The ceremony is single use; a fresh one with a good verdict passes.
    assert (await pass_face(client, cid)).json()["status"] == "pending"


async def test_result_for_another_user_nonce_or_key_is_refused(harness) -> None:
    client = await customer(harness)
    cid = await t3_challenge(client)
    assert (await pass_face(client, cid, user_id="bob")).error == "verification_failed"
    await begin_face(client, cid)
    wrong_nonce = PROVIDER.issue_result("a-nonce-the-gateway-never-issued", "alice")
    assert (await answer_face(client, cid, wrong_nonce)).error == "verification_failed"
    options = await begin_face(client, cid)
    impostor = TestFaceProvider(PROVIDER.issuer, kid=PROVIDER.kid)
    forged = impostor.issue_result(options["nonce"], "alice")
    assert (await answer_face(client, cid, forged)).error == "verification_failed"
    # Each failed ceremony is gone: a retry needs a new begin (and a new nonce).
    again = await answer_face(client, cid, forged)
    assert again.status == 404 and again.error == "tool_not_begun"


async def test_result_for_another_challenge_or_amount_is_refused(harness) -> None:
    client = await customer(harness)
    first = challenge_of(await transfer(client, "20000.00"))["challenge_id"]
    other = challenge_of(await transfer(client, "20000.01"))["challenge_id"]
    options = await begin_face(client, first)
    token = PROVIDER.issue_result(options["nonce"], "alice")
    await begin_face(client, other)
    assert (await answer_face(client, other, token)).error == "verification_failed"
    # The token still fits the challenge and amount it was made for.
    assert (await answer_face(client, first, token)).json()["status"] == "pending"


async def test_replayed_result_is_refused(harness) -> None:
    client = await customer(harness)
    cid = await t3_challenge(client)
    options = await begin_face(client, cid)
    token = PROVIDER.issue_result(options["nonce"], "alice")
    assert (await answer_face(client, cid, token)).json()["status"] == "pending"
    assert (await answer_face(client, cid, token)).error == "tool_not_begun"
    await begin_face(client, cid)
    assert (await answer_face(client, cid, token)).error == "verification_failed"


async def test_five_failures_lock_the_face_tool(harness) -> None:
    client = await customer(harness)
    cid = await t3_challenge(client)
    errors = [(await pass_face(client, cid, match=False)).error for _ in range(5)]
    assert errors[:4] == ["verification_failed"] * 4 and errors[4] in ("verification_failed", "tool_locked")
    refused = await begin(client, cid, "face")
    assert refused.status == 429 and refused.error == "tool_locked"
    # The SMS is a separate tool and still works; face + SMS cannot complete for now.
    assert (await pass_sms(client, harness, cid)).json()["status"] == "pending"


async def test_face_tool_not_configured(gateway_factory, echo_upstream) -> None:
    _echo, url = echo_upstream
    harness = await gateway_factory(upstream={"url": url})
    client = await customer(harness)
    cid = await t3_challenge(client)
    refused = await begin(client, cid, "face")
    assert refused.status == 409 and refused.error == "tool_not_configured"
    assert (await complete(client, cid, "face", {"token": "a.b.c"})).error == "tool_not_begun"


def test_face_configuration_is_checked_at_load(tmp_path: Path) -> None:
    def load(**stepup: object) -> None:
        make_config("redis://127.0.0.1:9", tmp_path, stepup=stepup)

    good = face_config(tmp_path)
    load(**good)
    pem = tmp_path / "provider.pem"
    pem.write_text(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    load(**{**good, "face_provider_key": str(pem)})
    for bad, key in (({"face_issuer": ""}, "stepup.face_issuer"),
                     ({"face_provider_key": str(tmp_path / "missing.pem")}, "stepup.face_provider_key"),
                     ({"face_provider_key": '{"kty": "EC"}'}, "stepup.face_provider_key"),
                     ({"face_min_score": 0}, "stepup.face_min_score"),
                     ({"face_min_score": 1.5}, "stepup.face_min_score")):
        with pytest.raises(ConfigError) as info:
            load(**{**good, **bad})
        assert info.value.key == key


def test_a_tier_table_naming_face_needs_a_provider(tmp_path: Path) -> None:
    cfg = make_config("redis://127.0.0.1:9", tmp_path, stepup=face_config(tmp_path))
    assert load_tier_policy(cfg.stepup).combinations(3, exact=True)[-1] == ["face", "sms"]
    without = make_config("redis://127.0.0.1:9", tmp_path,
                          stepup={**face_config(tmp_path), "face_provider_key": "", "face_issuer": ""})
    with pytest.raises(ConfigError) as info:
        load_tier_policy(without.stepup)
    assert info.value.key == "stepup.tiers_file"

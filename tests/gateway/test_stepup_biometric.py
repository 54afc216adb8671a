"""The device biometric key through the gateway: enrol after step-up, approve a T2
transfer with biometric + bound device, and refuse stale, foreign or invalidated keys."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from auth_tools import biometric
from tests.gateway.stepup_flows import (
    PAYEE_A,
    PAYEE_B,
    begin,
    challenge_of,
    complete,
    customer,
    enrol,
    remove,
    transfer,
)

SET_ID = "bioset-7f3a9c"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Keystore:
    """The app's keystore: a P-256 key usable only after the OS biometric prompt."""

    key: ec.EllipticCurvePrivateKey
    biometric_set_id: str = SET_ID

    def sign(self, payload: bytes) -> str:
        return b64url(self.key.sign(payload, ec.ECDSA(hashes.SHA256())))

    def jwk(self) -> dict[str, str]:
        n = self.key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64url(n.x.to_bytes(32, "big")),
                "y": b64url(n.y.to_bytes(32, "big"))}

    def enrolment(self, user_id: str, options: dict) -> dict:
        payload = biometric.enrollment_payload(user_id, options["nonce"], self.biometric_set_id)
        return {"public_key": self.jwk(), "biometric_set_id": self.biometric_set_id,
                "modality": "fingerprint", "signature": self.sign(payload)}

    def answer(self, options: dict) -> dict:
        return {"signature": self.sign(unb64url(options["payload"])),
                "biometric_set_id": self.biometric_set_id}


def new_keystore() -> Keystore:
    return Keystore(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
async def harness(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    return await gateway_factory(upstream={"url": url})


async def enrolled(harness, user_id: str = "alice"):
    client = await customer(harness, user_id)
    keystore = new_keystore()
    done = await enrol(client, harness, "biometric", lambda o: keystore.enrolment(user_id, o))
    assert done.status == 201, done.json()
    return client, keystore, done.json()["credential"]


async def approve(client, keystore: Keystore, challenge_id: str):
    begun = await begin(client, challenge_id, "biometric")
    assert begun.status == 200, begun.json()
    return await complete(client, challenge_id, "biometric", keystore.answer(begun.json()))


async def test_enrol_and_approve_a_t2_transfer(harness) -> None:
    client, keystore, cred = await enrolled(harness)
    assert cred["modality"] == "fingerprint" and cred["status"] == "active"
    assert [c["id"] for c in (await client.call("GET", "/auth/tools")).json()["tools"]["biometric"]] \
        == [cred["id"]]

    chal = challenge_of(await transfer(client, "3000.00"))
    assert chal["required_tier"] == "T2"
    begun = (await begin(client, chal["challenge_id"], "biometric")).json()
    # The OS prompt shows what is approved; the key signs challenge + transaction.
    assert "3000.00" in begun["prompt"] and begun["txn_hash"] == chal["txn_hash"]
    done = await complete(client, chal["challenge_id"], "biometric", keystore.answer(begun))
    approved = done.json()
    assert approved["status"] == "approved" and approved["acr"] == "T2", approved
    assert {"hwk", "fpt"} <= set(approved["amr"])
    assert (await transfer(client, "3000.00", approval=approved["approval_token"])).status == 200


async def test_biometric_alone_does_not_reach_t3(harness) -> None:
    client, keystore, _cred = await enrolled(harness)
    cid = challenge_of(await transfer(client, "20000.00"))["challenge_id"]
    done = (await approve(client, keystore, cid)).json()
    assert done["status"] == "pending" and done["required_tier"] == "T3"


async def test_wrong_signature_is_refused(harness) -> None:
    client, keystore, _cred = await enrolled(harness)
    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    assert (await approve(client, new_keystore(), cid)).error == "biometric_signature_invalid"
    begun = (await begin(client, cid, "biometric")).json()
    tampered = unb64url(begun["payload"]).replace(b'"3000.00"', b'"30.00"')
    refused = await complete(client, cid, "biometric",
                             {"signature": keystore.sign(tampered), "biometric_set_id": SET_ID})
    assert refused.status == 401 and refused.error == "biometric_signature_invalid"
    assert (await approve(client, keystore, cid)).json()["status"] == "approved"


async def test_replayed_signature_is_refused(harness) -> None:
    client, keystore, _cred = await enrolled(harness)
    # T3 is out of reach for the biometric alone: the challenge stays open for the replay.
    cid = challenge_of(await transfer(client, "20000.00"))["challenge_id"]
    answer = keystore.answer((await begin(client, cid, "biometric")).json())
    assert (await complete(client, cid, "biometric", answer)).json()["status"] == "pending"
    assert (await complete(client, cid, "biometric", answer)).error == "tool_not_begun"
    await begin(client, cid, "biometric")
    assert (await complete(client, cid, "biometric", answer)).error == "replayed"


async def test_approval_is_refused_for_another_amount_or_payee(harness) -> None:
    client, keystore, _cred = await enrolled(harness)
    cid = challenge_of(await transfer(client, "3000.00", PAYEE_A))["challenge_id"]
    token = (await approve(client, keystore, cid)).json()["approval_token"]
    assert (await transfer(client, "3000.01", PAYEE_A, approval=token)).error == "approval_mismatch"
    cid = challenge_of(await transfer(client, "3000.00", PAYEE_A))["challenge_id"]
    token = (await approve(client, keystore, cid)).json()["approval_token"]
    assert (await transfer(client, "3000.00", PAYEE_B, approval=token)).error == "approval_mismatch"


async def test_changed_biometric_set_invalidates_the_key(harness) -> None:
    client, keystore, _cred = await enrolled(harness)
    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    keystore.biometric_set_id = "bioset-after-a-new-finger"
    refused = await approve(client, keystore, cid)
    assert refused.status == 401 and refused.error == "biometric_set_changed"
    # From now on the key is refused, even with the old set id, until re-enrolment.
    keystore.biometric_set_id = SET_ID
    assert (await begin(client, cid, "biometric")).error == "credential_revoked"
    listed = (await client.call("GET", "/auth/tools")).json()["tools"]["biometric"]
    assert listed[0]["status"] == "invalidated"

    fresh = new_keystore()
    fresh.biometric_set_id = "bioset-after-a-new-finger"
    again = await enrol(client, harness, "biometric", lambda o: fresh.enrolment("alice", o))
    assert again.status == 201
    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    assert (await approve(client, fresh, cid)).json()["status"] == "approved"


async def test_removed_key_is_refused(harness) -> None:
    client, keystore, cred = await enrolled(harness)
    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    begun = (await begin(client, cid, "biometric")).json()
    assert (await remove(client, harness, "biometric", cred["id"])).status == 200
    refused = await complete(client, cid, "biometric", keystore.answer(begun))
    assert refused.status == 401 and refused.error == "credential_revoked"
    assert (await begin(client, cid, "biometric")).error == "not_enrolled"


async def test_key_of_another_device_is_not_used(harness) -> None:
    _client, keystore, _cred = await enrolled(harness)
    # Alice's second phone has no biometric key of its own.
    second = harness.client()
    assert (await second.register_device("alice", "a long enough password")).status == 201
    assert (await second.login("a long enough password")).status == 200
    cid = challenge_of(await transfer(second, "3000.00"))["challenge_id"]
    assert (await begin(second, cid, "biometric")).error == "not_enrolled"


async def test_five_wrong_signatures_lock_the_tool(harness) -> None:
    client, keystore, _cred = await enrolled(harness)
    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    thief = new_keystore()
    errors = [(await approve(client, thief, cid)).error for _ in range(5)]
    assert set(errors) <= {"biometric_signature_invalid", "tool_locked"} and errors[:4] == \
        ["biometric_signature_invalid"] * 4
    # Locked: even the right key is refused for now, and the answer says nothing more.
    refused = await begin(client, cid, "biometric")
    assert refused.status == 429 and refused.error == "tool_locked"

"""Device biometric key: enrolment, transaction signatures, invalidation."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from auth_tools import biometric
from auth_tools.biometric import BiometricCredential, Modality
from auth_tools.dynamic_linking import Transaction, signing_payload, txn_hash
from auth_tools.errors import (
    BadToolInput,
    BiometricKeyUnsupported,
    BiometricSetChanged,
    BiometricSignatureInvalid,
    BiometricStateMismatch,
    ChallengeExpired,
    CredentialRevoked,
    VerificationFailed,
)

NOW = 1_800_000_000.0
TXN = Transaction("transfer", 30_000_000, "CNY", "6222020000000001", "6217000000004321")
SET_ID = "bioset-7f3a9c"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def roundtrip(doc: dict[str, object]) -> dict[str, object]:
    """States and credentials travel through Redis as JSON."""
    return orjson.loads(orjson.dumps(doc))


@dataclass
class Device:
    """The app's keystore: a P-256 key usable only after the biometric prompt."""

    key: ec.EllipticCurvePrivateKey
    biometric_set_id: str = SET_ID

    def sign(self, payload: bytes) -> str:
        return b64url(self.key.sign(payload, ec.ECDSA(hashes.SHA256())))

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big"))}

    def pem(self) -> str:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def new_device() -> Device:
    return Device(ec.generate_private_key(ec.SECP256R1()))


def enrol(device: Device, modality: Modality = Modality.FINGERPRINT, *,
          use_pem: bool = False, at: float = NOW) -> BiometricCredential:
    options, state = biometric.begin_enrollment("u42", "dev-1", at)
    payload = biometric.enrollment_payload("u42", str(options["nonce"]), device.biometric_set_id)
    return biometric.complete_enrollment(roundtrip(state), device.pem() if use_pem else device.jwk(),
                                         device.biometric_set_id, modality.value,
                                         device.sign(payload), at)


def approve(device: Device, cred: BiometricCredential, challenge_id: str = "ch-1",
            txn: Transaction = TXN, at: float = NOW + 10) -> biometric.BiometricResult:
    options, state = biometric.begin(challenge_id, txn, cred, at)
    return biometric.complete(roundtrip(state), device.sign(unb64url(str(options["payload"]))),
                              cred, at + 2, biometric_set_id=device.biometric_set_id,
                              challenge_id=challenge_id, txn=txn)


# --- enrolment ----------------------------------------------------------------


def test_enrol_with_jwk_or_pem_gives_the_same_credential_id() -> None:
    device = new_device()
    by_jwk, by_pem = enrol(device), enrol(device, use_pem=True)
    assert by_jwk.credential_id == by_pem.credential_id
    assert by_jwk.public_key_pem == device.pem()
    assert by_jwk.biometric_set_id == SET_ID and by_jwk.user_id == "u42"
    assert by_jwk.device_id == "dev-1" and by_jwk.revoked_at is None
    assert BiometricCredential.from_dict(roundtrip(by_jwk.as_dict())) == by_jwk
    assert enrol(new_device()).credential_id != by_jwk.credential_id


def test_enrolment_asks_for_a_biometric_bound_p256_key() -> None:
    options, state = biometric.begin_enrollment("u42", "dev-1", NOW)
    assert options["key_curve"] == "P-256" and options["user_authentication_required"] is True
    assert options["invalidated_by_biometric_enrollment"] is True
    assert len(unb64url(str(options["nonce"]))) == 32 and state["nonce"] == options["nonce"]


@pytest.mark.parametrize("key", [
    ec.generate_private_key(ec.SECP384R1()),
    rsa.generate_private_key(public_exponent=65537, key_size=2048),
], ids=["P-384", "RSA-2048"])
def test_keys_other_than_p256_are_refused(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    _, state = biometric.begin_enrollment("u42", "dev-1", NOW)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(BiometricKeyUnsupported) as exc:
        biometric.complete_enrollment(state, pem, SET_ID, "fingerprint", b64url(b"x" * 70), NOW)
    assert exc.value.code == "biometric_key_unsupported"


def test_malformed_jwks_are_refused() -> None:
    device = new_device()
    good = device.jwk()
    off_curve = {**good, "y": b64url((int.from_bytes(unb64url(good["y"]), "big") ^ 1).to_bytes(32, "big"))}
    private = {**good, "d": "AAAA"}
    for bad in (off_curve, private, {**good, "crv": "P-384"}, {**good, "kty": "RSA"},
                {**good, "x": b64url(b"\x01" * 31)}, "not json", json.dumps(off_curve)):
        with pytest.raises(BiometricKeyUnsupported):
            biometric.load_public_key(bad)
    assert isinstance(biometric.load_public_key(json.dumps(good)), ec.EllipticCurvePublicKey)


def test_enrolment_needs_a_signature_by_the_enrolled_key() -> None:
    device, intruder = new_device(), new_device()
    options, state = biometric.begin_enrollment("u42", "dev-1", NOW)
    payload = biometric.enrollment_payload("u42", str(options["nonce"]), SET_ID)
    with pytest.raises(BiometricSignatureInvalid):
        biometric.complete_enrollment(state, device.jwk(), SET_ID, "fingerprint",
                                      intruder.sign(payload), NOW)
    # The signature also covers the biometric set the key was made under.
    with pytest.raises(BiometricSignatureInvalid):
        biometric.complete_enrollment(state, device.jwk(), "bioset-other", "fingerprint",
                                      device.sign(payload), NOW)


def test_expired_enrolment_is_refused() -> None:
    device = new_device()
    options, state = biometric.begin_enrollment("u42", "dev-1", NOW, ttl=300)
    payload = biometric.enrollment_payload("u42", str(options["nonce"]), SET_ID)
    with pytest.raises(ChallengeExpired):
        biometric.complete_enrollment(state, device.jwk(), SET_ID, "face", device.sign(payload),
                                      NOW + 300)


def test_unknown_modality_is_refused() -> None:
    device = new_device()
    options, state = biometric.begin_enrollment("u42", "dev-1", NOW)
    payload = biometric.enrollment_payload("u42", str(options["nonce"]), SET_ID)
    with pytest.raises(BadToolInput):
        biometric.complete_enrollment(state, device.jwk(), SET_ID, "voice", device.sign(payload), NOW)


# --- transaction approval -------------------------------------------------------


def test_begin_gives_the_payload_to_sign_and_the_transaction_to_show() -> None:
    cred = enrol(new_device())
    options, state = biometric.begin("ch-1", TXN, cred, NOW)
    assert unb64url(str(options["payload"])) == signing_payload("ch-1", TXN)
    assert options["transaction"] == {"action": "transfer", "amount": "300000.00",
                                      "currency": "CNY", "payee": "**** 4321"}
    assert options["prompt"] == "Approve transfer of 300000.00 CNY to **** 4321"
    assert TXN.payee not in orjson.dumps(options).decode()
    assert state["txn_hash"] == options["txn_hash"] == txn_hash(TXN)
    assert state["credential_id"] == cred.credential_id


@pytest.mark.parametrize(("modality", "amr"), [
    (Modality.FINGERPRINT, ("hwk", "fpt", "user")),
    (Modality.FACE, ("hwk", "face", "user")),
])
def test_happy_path(modality: Modality, amr: tuple[str, ...]) -> None:
    device = new_device()
    cred = enrol(device, modality)
    result = approve(device, cred)
    assert result.amr == amr
    assert (result.challenge_id, result.txn_hash, result.credential_id) == (
        "ch-1", txn_hash(TXN), cred.credential_id)


def test_raw_r_s_signature_is_accepted() -> None:
    device = new_device()
    cred = enrol(device)
    options, state = biometric.begin("ch-1", TXN, cred, NOW)
    r, s = decode_dss_signature(device.key.sign(unb64url(str(options["payload"])),
                                                ec.ECDSA(hashes.SHA256())))
    raw = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    result = biometric.complete(state, raw, cred, NOW + 1, biometric_set_id=SET_ID,
                                challenge_id="ch-1", txn=TXN)
    assert result.credential_id == cred.credential_id


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_key_and_signature_made_by_the_openssl_cli(tmp_path: Path) -> None:
    key, pub, msg, sig = (tmp_path / n for n in ("key.pem", "pub.pem", "payload", "sig.der"))
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", pub], check=True,
                   capture_output=True)

    def openssl_sign(payload: bytes) -> str:
        msg.write_bytes(payload)
        subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-out", sig, msg], check=True,
                       capture_output=True)
        return b64url(sig.read_bytes())

    options, state = biometric.begin_enrollment("u42", "dev-1", NOW)
    cred = biometric.complete_enrollment(
        state, pub.read_text(), SET_ID, Modality.FACE,
        openssl_sign(biometric.enrollment_payload("u42", str(options["nonce"]), SET_ID)), NOW)
    options, state = biometric.begin("ch-1", TXN, cred, NOW + 5)
    result = biometric.complete(state, openssl_sign(unb64url(str(options["payload"]))), cred,
                                NOW + 6, biometric_set_id=SET_ID, challenge_id="ch-1", txn=TXN)
    assert result.amr == ("hwk", "face", "user")


def test_signature_by_another_key_is_refused() -> None:
    device = new_device()
    cred = enrol(device)
    options, state = biometric.begin("ch-1", TXN, cred, NOW)
    forged = new_device().sign(unb64url(str(options["payload"])))
    with pytest.raises(BiometricSignatureInvalid) as exc:
        biometric.complete(state, forged, cred, NOW + 1, biometric_set_id=SET_ID,
                           challenge_id="ch-1", txn=TXN)
    assert isinstance(exc.value, VerificationFailed)
    for garbage in ("", b64url(b"\x30\x02\x01\x01"), b64url(b"\x00" * 64)):
        with pytest.raises(BiometricSignatureInvalid):
            biometric.complete(state, garbage, cred, NOW + 1, biometric_set_id=SET_ID,
                               challenge_id="ch-1", txn=TXN)
    with pytest.raises(BadToolInput):
        biometric.complete(state, "not base64url!", cred, NOW + 1, biometric_set_id=SET_ID,
                           challenge_id="ch-1", txn=TXN)


def test_expired_challenge_state() -> None:
    device = new_device()
    cred = enrol(device)
    options, state = biometric.begin("ch-1", TXN, cred, NOW, ttl=120)
    with pytest.raises(ChallengeExpired):
        biometric.complete(state, device.sign(unb64url(str(options["payload"]))), cred, NOW + 120,
                           biometric_set_id=SET_ID, challenge_id="ch-1", txn=TXN)


def test_signature_reused_on_another_challenge_is_refused() -> None:
    device = new_device()
    cred = enrol(device)
    options, _ = biometric.begin("ch-1", TXN, cred, NOW)
    signature = device.sign(unb64url(str(options["payload"])))
    _, state2 = biometric.begin("ch-2", TXN, cred, NOW + 5)
    with pytest.raises(BiometricSignatureInvalid):
        biometric.complete(state2, signature, cred, NOW + 6, biometric_set_id=SET_ID,
                           challenge_id="ch-2", txn=TXN)


@pytest.mark.parametrize("other", [
    Transaction("transfer", 30_000_001, "CNY", TXN.source, TXN.payee),
    Transaction("transfer", 30_000_000, "CNY", TXN.source, "6217000000009999"),
], ids=["amount+0.01", "other-payee"])
def test_signature_for_another_amount_or_payee_is_refused(other: Transaction) -> None:
    device = new_device()
    cred = enrol(device)
    # A tampered app shows and signs another transaction than the gateway's.
    _, state = biometric.begin("ch-1", TXN, cred, NOW)
    with pytest.raises(BiometricSignatureInvalid):
        biometric.complete(state, device.sign(signing_payload("ch-1", other)), cred, NOW + 1,
                           biometric_set_id=SET_ID, challenge_id="ch-1", txn=TXN)
    # A state made for one transaction never approves another.
    options, state = biometric.begin("ch-1", TXN, cred, NOW)
    with pytest.raises(BiometricStateMismatch):
        biometric.complete(state, device.sign(signing_payload("ch-1", other)), cred, NOW + 1,
                           biometric_set_id=SET_ID, challenge_id="ch-1", txn=other)


def test_changed_biometric_set_invalidates_the_credential() -> None:
    device = new_device()
    cred = enrol(device)
    options, state = biometric.begin("ch-1", TXN, cred, NOW)
    signature = device.sign(unb64url(str(options["payload"])))
    # Someone added a fingerprint: the OS reports a new set id.
    with pytest.raises(BiometricSetChanged) as exc:
        biometric.complete(state, signature, cred, NOW + 1, biometric_set_id="bioset-new",
                           challenge_id="ch-1", txn=TXN)
    assert isinstance(exc.value, CredentialRevoked) and exc.value.code == "biometric_set_changed"
    invalidated = biometric.revoke(cred, NOW + 1, exc.value.code)
    with pytest.raises(CredentialRevoked):
        biometric.begin("ch-2", TXN, invalidated, NOW + 2)
    # Re-enrolment under the new set (a new key) works again.
    device = Device(ec.generate_private_key(ec.SECP256R1()), "bioset-new")
    assert approve(device, enrol(device, at=NOW + 3), "ch-3", at=NOW + 4).challenge_id == "ch-3"


def test_removed_credential_is_refused() -> None:
    device = new_device()
    cred = enrol(device)
    options, state = biometric.begin("ch-1", TXN, cred, NOW)
    removed = biometric.revoke(cred, NOW + 1, "removed_by_user")
    assert removed.revoked_reason == "removed_by_user"
    with pytest.raises(CredentialRevoked):
        biometric.complete(state, device.sign(unb64url(str(options["payload"]))), removed, NOW + 2,
                           biometric_set_id=SET_ID, challenge_id="ch-1", txn=TXN)
    with pytest.raises(CredentialRevoked):
        biometric.begin("ch-2", TXN, BiometricCredential.from_dict(roundtrip(removed.as_dict())),
                        NOW + 2)


def test_state_for_a_replaced_key_does_not_complete_with_the_new_one() -> None:
    old_device, new = new_device(), new_device()
    old_cred, new_cred = enrol(old_device), enrol(new)
    options, state = biometric.begin("ch-1", TXN, old_cred, NOW)
    with pytest.raises(BiometricStateMismatch):
        biometric.complete(state, new.sign(unb64url(str(options["payload"]))), new_cred, NOW + 1,
                           biometric_set_id=SET_ID, challenge_id="ch-1", txn=TXN)

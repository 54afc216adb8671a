"""The face-match provider contract: the provider's signed verdict and the ceremony binding."""

from __future__ import annotations

import base64

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.jwk import ECKey, OctKey

from auth_tools import face
from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import BadToolInput, ChallengeExpired, VerificationFailed
from auth_tools.face import FacePolicy, load_provider_keys, verify_face_result
from auth_tools.face_test_provider import TestFaceProvider
from auth_tools.tier_policy import TierPolicy

NOW = 1_790_000_000.0
TXN = Transaction(action="enrol_cloud_cert")


@pytest.fixture(scope="module")
def provider() -> TestFaceProvider:
    return TestFaceProvider()


@pytest.fixture(scope="module")
def policy(provider: TestFaceProvider) -> FacePolicy:
    return FacePolicy(provider.issuer, load_provider_keys(provider.public_jwk_json()), min_score=0.8)


def verify(token: str, policy: FacePolicy, *, nonce: str = "n-1", sub: str = "alice", now: float = NOW):
    return verify_face_result(token, policy, expected_nonce=nonce, expected_subject=sub, now=now)


def test_a_good_verdict_verifies(provider, policy) -> None:
    claims = verify(provider.issue_result("n-1", "alice", score=0.93, now=NOW), policy)
    assert claims.subject == "alice" and claims.nonce == "n-1" and claims.score == 0.93


@pytest.mark.parametrize("forged", [
    {"match": False},
    {"liveness": False},
    {"score": 0.79},
    {"score": 1.5},
    {"audience": "someone-else"},
    {"issuer": "https://other-provider.invalid"},
    {"now": NOW - 400},  # expired long ago
    {"now": NOW + 120},  # issued in the future
    {"lifetime": 3600},  # not a short-lived result
])
def test_a_wrong_verdict_fails_without_saying_why(provider, policy, forged) -> None:
    now = forged.pop("now", NOW)
    token = provider.issue_result("n-1", "alice", now=now, **forged)
    with pytest.raises(VerificationFailed) as info:
        verify(token, policy)
    assert info.value.code == "verification_failed"


def test_nonce_and_subject_must_be_the_expected_ones(provider, policy) -> None:
    token = provider.issue_result("n-1", "alice", now=NOW)
    for kwargs in ({"nonce": "n-2"}, {"sub": "bob"}):
        with pytest.raises(VerificationFailed):
            verify(token, policy, **kwargs)


def test_expiry_is_checked_at_now(provider, policy) -> None:
    token = provider.issue_result("n-1", "alice", now=NOW, lifetime=60)
    assert verify(token, policy, now=NOW + 59).nonce == "n-1"
    with pytest.raises(VerificationFailed):
        verify(token, policy, now=NOW + 60)


def test_another_key_or_algorithm_is_refused(provider, policy) -> None:
    impostor = TestFaceProvider(provider.issuer, kid=provider.kid)
    with pytest.raises(VerificationFailed):
        verify(impostor.issue_result("n-1", "alice", now=NOW), policy)
    claims = orjson.dumps({"iss": provider.issuer, "aud": "riskgate", "sub": "alice", "nonce": "n-1",
                           "match": True, "liveness": True, "score": 1, "iat": NOW, "exp": NOW + 60})
    unsigned = (base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + "."
                + base64.urlsafe_b64encode(claims).rstrip(b"=").decode() + ".")
    with pytest.raises(VerificationFailed):
        verify(unsigned, policy)
    hs = jws.serialize_compact({"alg": "HS256"}, claims, OctKey.import_key(b"a shared secret of 32 bytes!!!!!"),
                               algorithms=["HS256"])
    for garbage in (hs, "not.a.jws", "x" * 9000):
        with pytest.raises(VerificationFailed):
            verify(garbage, policy)
    with pytest.raises(BadToolInput):
        verify(None, policy)  # type: ignore[arg-type]


def test_provider_keys_load_from_pem_jwk_and_jwk_set(provider) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert len(load_provider_keys(pem)) == 1
    assert len(load_provider_keys(orjson.dumps(provider.public_jwks()).decode())) == 1
    private = ECKey.generate_key("P-256").as_dict(private=True)
    for bad in ("", "{}", "not json", orjson.dumps(private).decode(),
                orjson.dumps(ECKey.generate_key("P-384").as_dict(private=False)).decode(),
                '{"kty": "RSA", "n": "AQAB", "e": "AQAB"}'):
        with pytest.raises(ValueError):
            load_provider_keys(bad)


def test_ceremony_binds_nonce_to_challenge_transaction_and_user(provider, policy) -> None:
    options, state = face.begin("c-1", TXN, "alice", NOW, provider_url="https://face.example/v1")
    assert options["provider_url"] == "https://face.example/v1" and options["tool"] == "face"
    token = provider.issue_result(options["nonce"], "alice", now=NOW + 5)
    result = face.complete(state, token, policy, NOW + 10, challenge_id="c-1", txn=TXN, user_id="alice")
    assert result.amr == ("face",) and result.challenge_id == "c-1"
    for kwargs in ({"challenge_id": "c-2", "txn": TXN, "user_id": "alice"},
                   {"challenge_id": "c-1", "txn": Transaction(action="transfer", amount=100), "user_id": "alice"},
                   {"challenge_id": "c-1", "txn": TXN, "user_id": "bob"}):
        with pytest.raises(VerificationFailed):
            face.complete(state, token, policy, NOW + 10, **kwargs)
    _other_options, other_state = face.begin("c-1", TXN, "alice", NOW)
    with pytest.raises(VerificationFailed):  # a result for the first session's nonce
        face.complete(other_state, token, policy, NOW + 10, challenge_id="c-1", txn=TXN, user_id="alice")
    with pytest.raises(ChallengeExpired):
        face.complete(state, token, policy, NOW + 121, challenge_id="c-1", txn=TXN, user_id="alice")


def test_face_is_inherence_only_in_the_tier_table() -> None:
    default = TierPolicy.default()
    # A provider's face match is not the device biometric: alone it reaches nothing.
    assert default.satisfied_tier({"face": {"amr": ["face"]}}, present={"bound_device"}) == 0
    activation = TierPolicy.from_dict({"T3": ["sms_armor", "totp", "fido_uv", "face+sms"]})
    assert activation.satisfied_tier({"face": {"amr": ["face"]}, "sms": {"amr": ["sms"]}}) == 3
    assert activation.amr({"face": {"amr": ["face"]}, "sms": {"amr": ["sms"]}}) == ("face", "mfa", "sms")
    assert activation.satisfied_tier({"face": {"amr": ["face"]}}) == 0

"""FIDO2/WebAuthn ceremonies against a software authenticator (fast; no browser).

The browser-driven tests (Chromium's virtual authenticator) are in
test_fido_browser.py; these cover what a browser will not produce on demand:
missing UV, synced passkeys, cloned keys, tampered bytes.
"""

from __future__ import annotations

import copy
import time

import orjson
import pytest

from auth_tools.dynamic_linking import Transaction, txn_hash, webauthn_challenge
from auth_tools.errors import (
    BadToolInput,
    ChallengeExpired,
    CredentialRevoked,
    FidoAssertionInvalid,
    FidoAttestationInvalid,
    FidoBackupEligibilityChanged,
    FidoChallengeMismatch,
    FidoConfigInvalid,
    FidoCredentialAlreadyRegistered,
    FidoCredentialFlagged,
    FidoCredentialUnknown,
    FidoResponseMalformed,
    FidoSignCountRegression,
    FidoUserVerificationMissing,
    NotEnrolled,
)
from auth_tools.fido import (
    FidoConfig,
    FidoCredential,
    begin_authentication,
    begin_registration,
    complete_authentication,
    complete_registration,
)
from tests.auth_tools.fido_testkit import ORIGIN, RP_ID, SoftAuthenticator, b64url, unb64url

CONFIG = FidoConfig(RP_ID, "Riskgate Bank", (ORIGIN,))
TXN_A = Transaction("transfer", 25_000_000, "CNY", "6222000011112222", "6222000099998888")
TXN_B = Transaction("transfer", 25_000_100, "CNY", "6222000011112222", "6222000099998888")
TXN_C = Transaction("transfer", 25_000_000, "CNY", "6222000011112222", "6222000077776666")


def now() -> float:
    return time.time()


def register(authenticator: SoftAuthenticator, user: str = "u42") -> FidoCredential:
    options, state = begin_registration(CONFIG, user, "alice", [], now=now())
    return complete_registration(state, authenticator.create(options), now())


def authenticate(authenticator: SoftAuthenticator, credential: FidoCredential,
                 challenge_id: str = "ch-1", txn: Transaction = TXN_A):
    options, state = begin_authentication(CONFIG, challenge_id, txn, [credential], now=now())
    return state, authenticator.get(options)


def test_security_key_with_uv_reaches_t4_and_counter_advances() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    assert (credential.backup_eligible, credential.backup_state, credential.uv_initialized) == (
        False, False, True)
    assert credential.aaguid == key.aaguid_text and credential.transports == ("usb",)

    state, response = authenticate(key, credential)
    result = complete_authentication(state, response, credential, now(), challenge_id="ch-1",
                                     txn=TXN_A)
    assert (result.max_tier, result.amr, result.uv, result.be) == (4, ("hwk", "user"), True, False)
    assert result.txn_hash == txn_hash(TXN_A) and result.challenge_id == "ch-1"
    assert result.new_sign_count == 2 and result.credential.sign_count == 2


def test_options_carry_the_transaction_challenge_and_require_uv() -> None:
    credential = register(SoftAuthenticator())
    options, state = begin_authentication(CONFIG, "ch-9", TXN_A, [credential], now=now())
    assert unb64url(options["challenge"]) == webauthn_challenge("ch-9", TXN_A)
    assert options["userVerification"] == "required" and options["rpId"] == RP_ID
    assert [c["id"] for c in options["allowCredentials"]] == [credential.credential_id]
    orjson.dumps(state)  # the gateway stores it in Redis as JSON


async def test_state_and_credential_survive_redis(redis) -> None:
    """The gateway keeps state with a TTL and deletes it on use; the credential as JSON."""
    key = SoftAuthenticator()
    credential = register(key)
    await redis.set("{u:42}:fido:cred", orjson.dumps(credential.as_dict()))
    options, state = begin_authentication(CONFIG, "ch-r", TXN_A, [credential], now=now())
    await redis.set("{u:42}:fido:state:ch-r", orjson.dumps(state), ex=300)

    stored_state = orjson.loads(await redis.getdel("{u:42}:fido:state:ch-r"))
    stored = FidoCredential.from_dict(orjson.loads(await redis.get("{u:42}:fido:cred")))
    assert stored == credential
    result = complete_authentication(stored_state, orjson.dumps(key.get(options)).decode(),
                                     stored, now())
    assert result.max_tier == 4
    assert await redis.get("{u:42}:fido:state:ch-r") is None


def test_synced_passkey_counts_at_most_t3() -> None:
    passkey = SoftAuthenticator(be=True, bs=True, counter_step=0)
    credential = register(passkey)
    assert credential.backup_eligible and credential.backup_state
    state, response = authenticate(passkey, credential)
    result = complete_authentication(state, response, credential, now())
    assert (result.max_tier, result.amr, result.be, result.bs) == (3, ("swk", "user"), True, True)


def test_zero_counters_are_accepted_repeatedly() -> None:
    passkey = SoftAuthenticator(be=True, bs=True, counter_step=0)
    credential = register(passkey)
    for i in range(3):
        state, response = authenticate(passkey, credential, challenge_id=f"ch-{i}")
        credential = complete_authentication(state, response, credential, now()).credential
    assert credential.sign_count == 0 and not credential.flagged


def test_assertion_without_uv_is_refused() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    key.uv = False  # the key skipped its PIN/biometric check
    state, response = authenticate(key, credential)
    with pytest.raises(FidoUserVerificationMissing) as err:
        complete_authentication(state, response, credential, now())
    assert err.value.code == "fido_user_verification_missing"


def test_without_uv_requested_the_factor_stays_below_t3() -> None:
    key = SoftAuthenticator(uv=False)
    options, state = begin_registration(CONFIG, "u42", "alice", [], now=now(),
                                        user_verification="discouraged")
    credential = complete_registration(state, key.create(options), now())
    options, state = begin_authentication(CONFIG, "ch-1", TXN_A, [credential], "discouraged",
                                          now=now())
    result = complete_authentication(state, key.get(options), credential, now())
    assert (result.max_tier, result.amr) == (2, ("hwk",))


def test_registration_without_uv_is_refused() -> None:
    options, state = begin_registration(CONFIG, "u42", "alice", [], now=now())
    with pytest.raises(FidoUserVerificationMissing):
        complete_registration(state, SoftAuthenticator(uv=False).create(options), now())


def test_assertion_for_one_transaction_fails_for_another() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    options_a, _ = begin_authentication(CONFIG, "ch-1", TXN_A, [credential], now=now())
    response_for_a = key.get(options_a)
    for other in (TXN_B, TXN_C):  # one fen more; another payee
        _, state_other = begin_authentication(CONFIG, "ch-1", other, [credential], now=now())
        with pytest.raises(FidoChallengeMismatch):
            complete_authentication(state_other, response_for_a, credential, now())
    _, state_next = begin_authentication(CONFIG, "ch-2", TXN_A, [credential], now=now())
    with pytest.raises(FidoChallengeMismatch):
        complete_authentication(state_next, response_for_a, credential, now())


def test_challenge_is_recomputed_from_what_is_being_approved() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    state, response = authenticate(key, credential, "ch-1", TXN_A)
    with pytest.raises(FidoChallengeMismatch):
        complete_authentication(state, response, credential, now(), challenge_id="ch-1", txn=TXN_B)
    with pytest.raises(BadToolInput):
        complete_authentication(state, response, credential, now(), challenge_id="ch-1")


def test_replayed_assertion_is_refused() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    state, response = authenticate(key, credential)
    credential = complete_authentication(state, response, credential, now()).credential
    # Same state again (a gateway that forgot to delete it): the counter has not moved.
    with pytest.raises(FidoSignCountRegression):
        complete_authentication(state, response, credential, now())
    # A fresh challenge: the old assertion does not answer it.
    fresh, _ = authenticate(key, credential, challenge_id="ch-2")
    with pytest.raises(FidoChallengeMismatch):
        complete_authentication(fresh, response, credential, now())


def test_cloned_authenticator_counter_regression_flags_the_credential() -> None:
    original = SoftAuthenticator()
    credential = register(original)
    clone = copy.deepcopy(original)  # same private key, extracted at counter 1
    for i in range(3):
        state, response = authenticate(original, credential, challenge_id=f"ch-{i}")
        credential = complete_authentication(state, response, credential, now()).credential
    assert credential.sign_count == 4

    state, response = authenticate(clone, credential, challenge_id="ch-clone")
    with pytest.raises(FidoSignCountRegression) as err:
        complete_authentication(state, response, credential, now())
    assert isinstance(err.value, CredentialRevoked)
    assert err.value.code == "fido_sign_count_regression"
    flagged = err.value.credential
    assert flagged.flagged and "2 after 4" in flagged.flagged_reason

    # Once persisted, the flag refuses even the genuine key.
    state, response = authenticate(original, credential, challenge_id="ch-after")
    with pytest.raises(FidoCredentialFlagged):
        complete_authentication(state, response, flagged, now())
    with pytest.raises(NotEnrolled):
        begin_authentication(CONFIG, "ch-x", TXN_A, [flagged], now=now())


def test_tampered_assertion_and_wrong_origin_are_refused() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    state, response = authenticate(key, credential)
    signature = bytearray(unb64url(response["response"]["signature"]))
    signature[-1] ^= 1
    tampered = copy.deepcopy(response)
    tampered["response"]["signature"] = b64url(bytes(signature))
    with pytest.raises(FidoAssertionInvalid):
        complete_authentication(state, tampered, credential, now())

    options, state = begin_authentication(CONFIG, "ch-2", TXN_A, [credential], now=now())
    phished = key.get(options, origin="https://bank-example.phish")
    with pytest.raises(FidoAssertionInvalid):
        complete_authentication(state, phished, credential, now())


def test_assertion_by_another_credential_is_refused() -> None:
    key, other = SoftAuthenticator(), SoftAuthenticator()
    credential, other_credential = register(key), register(other)
    state, response = authenticate(key, credential)
    with pytest.raises(FidoCredentialUnknown):
        complete_authentication(state, response, other_credential, now())


def test_backup_eligibility_cannot_change_after_registration() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    key.be = True
    state, response = authenticate(key, credential)
    with pytest.raises(FidoBackupEligibilityChanged):
        complete_authentication(state, response, credential, now())


def test_expired_state_and_malformed_response() -> None:
    key = SoftAuthenticator()
    credential = register(key)
    options, state = begin_authentication(CONFIG, "ch-1", TXN_A, [credential], now=1000.0)
    with pytest.raises(ChallengeExpired):
        complete_authentication(state, key.get(options), credential, 1000.0 + CONFIG.state_ttl)
    with pytest.raises(FidoResponseMalformed):
        complete_authentication(state, {"id": "x"}, credential, 1001.0)
    with pytest.raises(BadToolInput):
        complete_registration(state, {"id": "x"}, 1001.0)  # an authentication state


def test_registration_excludes_existing_credentials() -> None:
    key = SoftAuthenticator()
    options, state = begin_registration(CONFIG, "u42", "alice", [], now=now())
    first = key.create(options)
    credential = complete_registration(state, first, now())
    options, state = begin_registration(CONFIG, "u42", "alice", [credential], now=now())
    assert [c["id"] for c in options["excludeCredentials"]] == [credential.credential_id]
    with pytest.raises(FidoCredentialAlreadyRegistered):
        complete_registration(state, first, now())


def test_registration_for_another_challenge_is_refused() -> None:
    options, _ = begin_registration(CONFIG, "u42", "alice", [], now=now())
    _, other_state = begin_registration(CONFIG, "u42", "alice", [], now=now())
    with pytest.raises(FidoAttestationInvalid):
        complete_registration(other_state, SoftAuthenticator().create(options), now())


@pytest.mark.parametrize("origins", [("https://evil.example",), ("http://bank.example",), ()])
def test_config_refuses_origins_outside_the_rp(origins) -> None:
    with pytest.raises(FidoConfigInvalid):
        FidoConfig(RP_ID, "Riskgate Bank", origins)

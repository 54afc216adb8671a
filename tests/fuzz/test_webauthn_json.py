"""WebAuthn registration and assertion JSON: any response is verified or refused as an AuthToolError."""

from __future__ import annotations

import time

import orjson
from hypothesis import given
from hypothesis import strategies as st

from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import AuthToolError
from auth_tools.fido import (
    FidoConfig,
    FidoCredential,
    begin_authentication,
    begin_registration,
    complete_authentication,
    complete_registration,
)
from tests.auth_tools.fido_testkit import ORIGIN, RP_ID, SoftAuthenticator
from tests.fuzz.fuzzing import FUZZ, json_values
from tests.fuzz.webauthn_damage import damage

CONFIG = FidoConfig(RP_ID, "Riskgate Bank", (ORIGIN,))
TXN = Transaction("transfer", 25_000_000, "CNY", "6222000011112222", "6222000099998888")


def _registered(key: SoftAuthenticator) -> tuple[dict, dict]:
    options, state = begin_registration(CONFIG, "u42", "alice", [], now=time.time())
    return state, key.create(options, ORIGIN)


@FUZZ
@given(spoil=damage(), attestation=st.sampled_from(["none", "self"]), as_text=st.booleans())
def test_damaged_registration_is_verified_or_refused(spoil, attestation: str, as_text: bool) -> None:  # noqa: ANN001
    state, response = _registered(SoftAuthenticator(attestation=attestation))
    damaged = spoil(response)
    try:
        credential = complete_registration(state, orjson.dumps(damaged).decode() if as_text else damaged,
                                           time.time())
    except AuthToolError:
        return
    assert isinstance(credential, FidoCredential)


@FUZZ
@given(spoil=damage(), as_text=st.booleans())
def test_damaged_assertion_is_verified_or_refused(spoil, as_text: bool) -> None:  # noqa: ANN001
    key = SoftAuthenticator()
    state, response = _registered(key)
    credential = complete_registration(state, response, time.time())
    options, auth_state = begin_authentication(CONFIG, "ch-1", TXN, [credential], now=time.time())
    damaged = spoil(key.get(options, ORIGIN))
    try:
        result = complete_authentication(auth_state, orjson.dumps(damaged).decode() if as_text else damaged,
                                         credential, time.time(), challenge_id="ch-1", txn=TXN)
    except AuthToolError:
        return
    assert result.credential_id == credential.credential_id


@FUZZ
@given(doc=json_values)
def test_any_json_as_a_webauthn_response_is_refused(doc: object) -> None:
    state, _ = _registered(SoftAuthenticator())
    for text in (doc, orjson.dumps(doc).decode()):
        try:
            complete_registration(state, text, time.time())  # type: ignore[arg-type]
        except AuthToolError:
            continue
        raise AssertionError("an arbitrary document registered a credential")

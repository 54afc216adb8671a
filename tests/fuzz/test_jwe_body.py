"""The JWE request body: any token is decrypted or refused with a jwe_* error."""

from __future__ import annotations

import base64
import time

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.errors import PayloadEncryptionError
from gateway.payload_encryption import JweHeader, decrypt_request, parse_jwe_header
from mobile_client.encryption import PayloadCipher
from tests.fuzz.fuzzing import FUZZ, edits, json_values, mutate


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


EPK = PayloadCipher().public_jwk
header_values = st.fixed_dictionaries(
    {"alg": st.one_of(st.sampled_from(["ECDH-ES+A256KW", "ECDH-ES", "dir", "none"]), json_values),
     "enc": st.one_of(st.just("A256GCM"), json_values)},
    optional={"kid": st.one_of(st.text(max_size=140), json_values),
              "epk": st.one_of(st.just(EPK), json_values,
                               st.fixed_dictionaries({"kty": st.just("EC"), "crv": st.just("P-256"),
                                                      "x": json_values, "y": json_values})),
              "cty": json_values, "zip": json_values, "crit": json_values},
)
near_valid = st.tuples(header_values, st.lists(st.binary(max_size=40), min_size=4, max_size=4)).map(
    lambda t: ".".join([b64(orjson.dumps(t[0])), *(b64(p) for p in t[1])]).encode())


def _header_or_refusal(token: bytes) -> None:
    try:
        header = parse_jwe_header(token)
    except PayloadEncryptionError as exc:
        assert exc.code.startswith("jwe_") and exc.status == 400
        return
    assert isinstance(header, JweHeader)


@FUZZ
@given(token=st.one_of(st.binary(max_size=300), near_valid))
@example(token=b"." * 4)
@example(token=(b64(orjson.dumps({"alg": "ECDH-ES", "enc": "A256GCM", "kid": "k", "epk": EPK,
                                  "cty": ["application/json"]})) + "....").encode())
def test_any_jwe_header_parses_or_is_refused(token: bytes) -> None:
    _header_or_refusal(token)


@FUZZ
@given(edit=edits)
async def test_mutated_real_jwe_decrypts_or_is_refused(gw, edit) -> None:  # noqa: ANN001
    await gw.services.enc_keys.current_kid(time.time())
    cipher = PayloadCipher()
    cipher.use_jwks(await gw.services.enc_keys.jwks(time.time()))
    token = mutate(cipher.encrypt(b'{"amount": "1.00"}'), edit)
    try:
        plaintext, header = await decrypt_request(token, gw.services.enc_keys, time.time())
    except PayloadEncryptionError as exc:
        assert exc.code.startswith("jwe_")
        return
    assert isinstance(header, JweHeader) and isinstance(plaintext, bytes)

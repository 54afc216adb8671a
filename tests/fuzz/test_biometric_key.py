"""Biometric enrolment keys (JWK or SPKI PEM): loaded as P-256 or refused as BiometricKeyUnsupported."""

from __future__ import annotations

import base64

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from auth_tools.biometric import load_public_key
from auth_tools.errors import AuthToolError
from device_fingerprint.signature import public_key_to_jwk
from tests.fuzz.fuzzing import FUZZ, edits, json_values, mutate


def _spki_der(key) -> bytes:  # noqa: ANN001
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


KEYS = [_spki_der(ec.generate_private_key(curve)) for curve in (ec.SECP256R1(), ec.SECP384R1(),
                                                                ec.SECP256K1(), ec.BrainpoolP256R1())]
KEYS += [_spki_der(rsa.generate_private_key(65537, 2048)), _spki_der(ed25519.Ed25519PrivateKey.generate())]
JWK = public_key_to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())


def pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n"


def _loaded_or_refused(key: object) -> None:
    try:
        public = load_public_key(key)  # type: ignore[arg-type]
    except AuthToolError as exc:
        assert exc.code in ("biometric_key_unsupported", "bad_tool_input")
        return
    assert isinstance(public.curve, ec.SECP256R1)


@FUZZ
@given(index=st.integers(0, len(KEYS) - 1), edit=st.none() | edits)
def test_damaged_pem_key_is_loaded_or_refused(index: int, edit) -> None:  # noqa: ANN001
    der = KEYS[index] if edit is None else mutate(KEYS[index], edit)
    _loaded_or_refused(pem(der))


@FUZZ
@given(doc=st.one_of(json_values, st.fixed_dictionaries(
    {"kty": st.just("EC"), "crv": st.just("P-256"), "x": st.just(JWK["x"]) | json_values,
     "y": st.just(JWK["y"]) | json_values})), as_text=st.booleans())
def test_any_jwk_key_is_loaded_or_refused(doc: object, as_text: bool) -> None:
    _loaded_or_refused(orjson.dumps(doc).decode() if as_text else doc)

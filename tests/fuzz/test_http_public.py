"""Unauthenticated HTTP surfaces: any body, header or path gets a 4xx JSON error, never a 5xx."""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st

from device_fingerprint.signature import public_key_to_jwk, sign_request
from mobile_client.client import reference_attributes
from mobile_client.encryption import PayloadCipher
from tests.fuzz.fuzzing import FUZZ, assert_refused_as_json, edits, json_values, mutate
from tests.gateway.conftest import PASSWORD

KEY = ec.generate_private_key(ec.SECP256R1())
JWK = public_key_to_jwk(KEY.public_key())
CIPHER = PayloadCipher()  # the app's encryption key: answers to an encrypted registration come to it
content_types = st.sampled_from([None, "application/json", "application/jose", "text/plain",
                                 "application/json; charset=latin-1", "APPLICATION/JOSE; x=1"])
# What an HTTP server lets through in a header value (no CR, LF or NUL).
header_bytes = st.binary(max_size=120).map(lambda b: b.translate(None, b"\r\n\x00"))
registration = st.fixed_dictionaries(
    {"user_id": st.sampled_from(["alice", "alice", "bob", ""]) | st.text(max_size=20),
     "password": st.sampled_from([PASSWORD, PASSWORD, "wrong password"]) | json_values,
     "public_key": st.just(JWK) | json_values
     | st.fixed_dictionaries({"kty": st.just("EC"), "crv": st.just("P-256"), "x": json_values,
                              "y": json_values}),
     "attributes": st.just(reference_attributes()) | json_values
     | st.dictionaries(st.sampled_from(sorted(reference_attributes())), json_values, max_size=4).map(
         lambda d: {**reference_attributes(), **d})},
    optional={"enc_jwk": st.just(CIPHER.public_jwk) | json_values,
              "signals": json_values | st.dictionaries(st.text(max_size=10), st.booleans()),
              "install_id": json_values},
)


async def _alice(gw) -> None:  # noqa: ANN001
    if not await gw.services.users.exists("alice"):
        await gw.services.users.create("alice", PASSWORD, time.time())


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), json_values.map(orjson.dumps), registration.map(orjson.dumps)),
       content_type=content_types, signed=st.booleans(), encrypted=st.booleans())
async def test_any_device_registration_is_answered_in_json(gw, http, body: bytes, content_type,  # noqa: ANN001
                                                           signed: bool, encrypted: bool) -> None:
    await _alice(gw)
    headers = {"content-type": content_type} if content_type else {}
    if signed:  # signed by the key the body registers, as the app does
        headers["x-device-signature"] = sign_request(
            KEY, method="POST", path="/devices", query="", body=body, device_id="", ts=int(time.time()),
            nonce=secrets.token_urlsafe(16))
    if encrypted:  # the device signs the plaintext; the body travels as a JWE
        await gw.services.enc_keys.current_kid(time.time())
        CIPHER.use_jwks(await gw.services.enc_keys.jwks(time.time()))
        body, headers["content-type"] = CIPHER.encrypt(body), "application/jose"
    resp = await http.post("/devices", content=body, headers=headers)
    assert_refused_as_json(resp, decrypt=CIPHER.decrypt)


@FUZZ
@given(device_id=header_bytes, signature=header_bytes | st.sampled_from([
    b"v1; ts=\xb2; nonce=Qm9vS2x1bW9uQm9vS2x1; sig=" + b"A" * 86,
    b"v1; ts=1; nonce=Qm9vS2x1bW9uQm9vS2x1; sig=" + b"A" * 86]),
       body=st.binary(max_size=80), content_type=content_types)
@example(device_id=b"alice.3q2x9Vb0Qk2h1nT8cYpJ0w",
         signature=b"v1; ts=\xb2; nonce=Qm9vS2x1bW9uQm9vS2x1; sig=" + b"A" * 86, body=b"{}",
         content_type="application/json")
async def test_any_login_headers_are_answered_in_json(gw, http, device_id: bytes, signature: bytes,  # noqa: ANN001
                                                      body: bytes, content_type) -> None:  # noqa: ANN001
    headers = {b"x-device-id": device_id, b"x-device-signature": signature}
    if content_type:
        headers[b"content-type"] = content_type.encode()
    assert_refused_as_json(await http.post("/auth/login", content=body, headers=headers))


@FUZZ
@given(edit=edits, which=st.sampled_from(["x-device-signature", "x-device-id", "authorization"]))
async def test_mutated_login_of_a_real_device_is_answered_in_json(alice, http, edit, which: str) -> None:  # noqa: ANN001
    method, url, headers, body = alice.build("POST", "/auth/login", {"password": PASSWORD},
                                              session=False)
    raw = {k.lower().encode(): v.encode() for k, v in headers.items()}
    raw[which.encode()] = mutate(raw.get(which.encode(), b"Bearer x"), edit).translate(None, b"\r\n\x00")
    assert_refused_as_json(await http.post(url, content=body, headers=raw))


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
       path=st.one_of(st.text(max_size=40), st.lists(st.sampled_from(
           ["v1", "auth", "devices", "admin", "tools", "challenges", "pki", "..", ".", "%00", "{x}",
            "begin", "complete", "enrol", "fido", "totp", "sms", "cert", "accounts", "transfers"]),
           max_size=5).map("/".join)),
       body=st.binary(max_size=60))
async def test_any_method_and_path_is_answered_in_json(http, method: str, path: str, body: bytes) -> None:  # noqa: ANN001
    target = "/" + quote(path.lstrip("/"), safe="/%")
    if target.rstrip("/") == "/readyz":
        return  # 503 while the (absent) upstream is down: the only 5xx by design
    resp = await http.request(method, target, content=body or None)
    if resp.headers.get("content-type", "").startswith("application/json") or resp.status_code >= 400:
        assert_refused_as_json(resp)

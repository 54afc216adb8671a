"""X-Device-Signature and X-Device-Id: any header value parses or is refused as a DeviceError."""

from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st

from device_fingerprint.errors import DeviceError
from device_fingerprint.signature import ParsedSignature, parse_signature_header, sign_request
from gateway.device_check import SignedRequest
from tests.fuzz.fuzzing import FUZZ, edits, mutate

KEY = ec.generate_private_key(ec.SECP256R1())
DEVICE_ID = "alice.3q2x9Vb0Qk2h1nT8cYpJ0w"
VALID = sign_request(KEY, method="POST", path="/auth/login", query="", body=b"{}",
                     device_id=DEVICE_ID, ts=int(time.time()), nonce="Qm9vS2x1bW9uQm9vS2x1")

# Header values as the gateway sees them: bytes decoded as latin-1.
latin1 = st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
fields = st.sampled_from(["ts", "nonce", "sig", "v1", "", "ts ", " sig"])
near_valid = st.lists(
    st.tuples(fields, st.sampled_from(["=", "", "=="]),
              st.one_of(st.text(max_size=100), st.from_regex(r"[0-9\u00b2\u0661]{1,14}", fullmatch=True),
                        st.from_regex(r"[A-Za-z0-9_\-=]{0,100}", fullmatch=True))),
    max_size=5,
).map(lambda parts: "; ".join(["v1", *(f"{n}{s}{v}" for n, s, v in parts)]))


def _parses_or_refuses(value: str | None) -> None:
    try:
        parsed = parse_signature_header(value)
    except DeviceError as exc:
        assert exc.code.startswith("device_signature_")
        return
    assert isinstance(parsed, ParsedSignature) and len(parsed.sig) == 64 and parsed.ts >= 0


@FUZZ
@given(value=st.one_of(st.none(), st.text(max_size=200), latin1, near_valid))
@example(value="v1; ts=\u00b2; nonce=Qm9vS2x1bW9uQm9vS2x1; sig=" + "A" * 86)
def test_any_signature_header_parses_or_is_malformed(value: str | None) -> None:
    _parses_or_refuses(value)


@FUZZ
@given(edit=edits)
def test_mutated_valid_signature_header_parses_or_is_malformed(edit) -> None:  # noqa: ANN001
    _parses_or_refuses(mutate(VALID.encode(), edit).decode("latin-1"))


@FUZZ
@given(device_id=st.binary(max_size=80), signature=st.one_of(st.none(), st.binary(max_size=200)))
def test_signed_request_headers_build_or_are_refused(device_id: bytes, signature: bytes | None) -> None:
    headers = {b"x-device-id": device_id}
    if signature is not None:
        headers[b"x-device-signature"] = signature
    try:
        SignedRequest("POST", "/auth/login", "", b"", headers)
    except DeviceError:
        pass

"""Device-key request signatures.

Every request after device registration carries two headers::

    X-Device-Id: alice.3q2x9Vb0Qk2h1nT8cYpJ0w
    X-Device-Signature: v1; ts=1795000000; nonce=Qm9vS2x1bW9u; sig=<base64url r||s>

``sig`` is ECDSA P-256 / SHA-256 (64 raw bytes, r||s, base64url without
padding) over the UTF-8 string::

    riskgate-device-sig-v1\\n
    <METHOD>\\n<path>\\n<raw query string>\\n<hex sha256 of the body>\\n
    <ts>\\n<nonce>\\n<device id>

``ts`` is unix seconds and must be within the allowed skew of the gateway's
clock; ``nonce`` (16-64 base64url characters) is accepted once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from device_fingerprint.errors import (
    BadDeviceKey,
    SignatureInvalid,
    SignatureMalformed,
    SignatureMissing,
    SignatureStale,
)

__all__ = [
    "SIGNATURE_HEADER",
    "DEVICE_ID_HEADER",
    "ParsedSignature",
    "canonical_request",
    "parse_signature_header",
    "public_key_from_jwk",
    "public_key_to_jwk",
    "sign_request",
    "verify_device_signature",
]

SIGNATURE_HEADER = "x-device-signature"
DEVICE_ID_HEADER = "x-device-id"
_TS_RE = re.compile(r"[0-9]{1,12}\Z")  # ASCII digits only: str.isdigit() also takes "²"
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIG_RE = re.compile(r"^[A-Za-z0-9_-]{80,90}$")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class ParsedSignature:
    ts: int
    nonce: str
    sig: bytes


def canonical_request(method: str, path: str, query: str, body_sha256_hex: str,
                      ts: int, nonce: str, device_id: str) -> bytes:
    return "\n".join((
        "riskgate-device-sig-v1", method.upper(), path, query, body_sha256_hex,
        str(ts), nonce, device_id,
    )).encode()


def parse_signature_header(value: str | None) -> ParsedSignature:
    if not value:
        raise SignatureMissing()
    parts = [p.strip() for p in value.split(";")]
    if not parts or parts[0] != "v1":
        raise SignatureMalformed("the device signature must start with 'v1'")
    fields: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, val = part.partition("=")
        if not sep or name in fields:
            raise SignatureMalformed()
        fields[name] = val
    if set(fields) != {"ts", "nonce", "sig"}:
        raise SignatureMalformed("the device signature needs exactly ts, nonce and sig")
    if not _TS_RE.match(fields["ts"]):
        raise SignatureMalformed("ts must be unix seconds")
    if not _NONCE_RE.match(fields["nonce"]):
        raise SignatureMalformed("nonce must be 16-64 base64url characters")
    if not _SIG_RE.match(fields["sig"]):
        raise SignatureMalformed("sig must be a base64url P-256 signature (r||s)")
    try:
        sig = _b64d(fields["sig"])
    except (binascii.Error, ValueError) as exc:
        raise SignatureMalformed() from exc
    if len(sig) != 64:
        raise SignatureMalformed("sig must be 64 bytes (r||s)")
    return ParsedSignature(int(fields["ts"]), fields["nonce"], sig)


def public_key_from_jwk(jwk: dict[str, object]) -> ec.EllipticCurvePublicKey:
    """Load a P-256 public key from a JWK; refuses anything else."""
    try:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
            raise BadDeviceKey("the device key must be a public EC P-256 JWK")
        x = int.from_bytes(_b64d(str(jwk["x"])), "big")
        y = int.from_bytes(_b64d(str(jwk["y"])), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except BadDeviceKey:
        raise
    except (KeyError, ValueError, binascii.Error, TypeError) as exc:
        raise BadDeviceKey() from exc


def public_key_to_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64e(numbers.x.to_bytes(32, "big")),
        "y": _b64e(numbers.y.to_bytes(32, "big")),
    }


def verify_device_signature(*, public_key: ec.EllipticCurvePublicKey, header: ParsedSignature,
                            method: str, path: str, query: str, body: bytes, device_id: str,
                            now: float, max_skew: int) -> None:
    """Check the signature and the timestamp. The nonce is the caller's (Redis)."""
    if abs(now - header.ts) > max_skew:
        raise SignatureStale()
    message = canonical_request(method, path, query, hashlib.sha256(body).hexdigest(),
                                header.ts, header.nonce, device_id)
    r = int.from_bytes(header.sig[:32], "big")
    s = int.from_bytes(header.sig[32:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureInvalid() from exc


def sign_request(private_key: ec.EllipticCurvePrivateKey, *, method: str, path: str, query: str,
                 body: bytes, device_id: str, ts: int, nonce: str) -> str:
    """Client side: the ``X-Device-Signature`` value for one request."""
    message = canonical_request(method, path, query, hashlib.sha256(body).hexdigest(), ts, nonce,
                                device_id)
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"v1; ts={ts}; nonce={nonce}; sig={_b64e(sig)}"

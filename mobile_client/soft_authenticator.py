"""A WebAuthn authenticator in software (ES256), for the demo and the tests.

It is the client side of FIDO2 (what a security key or a phone's platform
authenticator does), built from the WebAuthn spec with real ECDSA keys and
real CBOR, so the gateway sees exactly the bytes a browser would send. A real
app uses the platform authenticator (Android Credential Manager, iOS
AuthenticationServices); this one keeps its keys in memory and exists so the
demo can show a FIDO2 step-up without a browser. Never use it to protect an
account.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.cose import ES256

__all__ = ["SoftAuthenticator", "SoftCredential"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class SoftCredential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """A WebAuthn authenticator in software (ES256).

    ``attestation`` is ``"none"``, ``"self"`` (packed without x5c) or
    ``"packed"`` with ``attestation_chain`` = [(cert, key), intermediates...].
    ``counter_step`` 0 models passkeys that always report zero.
    """

    aaguid: bytes = field(default_factory=lambda: uuid.uuid4().bytes)
    uv: bool = True
    be: bool = False
    bs: bool = False
    counter_step: int = 1
    attestation: str = "none"
    attestation_chain: list = field(default_factory=list)
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

    @property
    def aaguid_text(self) -> str:
        return str(uuid.UUID(bytes=self.aaguid))

    def _flags(self, *, attested: bool) -> int:
        flags = 0x01 | (0x04 if self.uv else 0) | (0x08 if self.be else 0) | (0x10 if self.bs else 0)
        return flags | (0x40 if attested else 0)

    def create(self, options: dict, origin: str) -> dict:
        """navigator.credentials.create(): options JSON in, RegistrationResponseJSON out."""
        rp_id = options["rp"]["id"]
        key = ec.generate_private_key(ec.SECP256R1())
        cred_id = uuid.uuid4().bytes + uuid.uuid4().bytes
        cred = SoftCredential(cred_id, key, rp_id, unb64url(options["user"]["id"]))
        self.credentials[cred_id] = cred
        client_data = self.client_data("webauthn.create", options["challenge"], origin)
        cose = cbor.encode(dict(ES256.from_cryptography_key(key.public_key())))
        cred.sign_count += self.counter_step
        auth_data = (hashlib.sha256(rp_id.encode()).digest()
                     + bytes([self._flags(attested=True)]) + struct.pack(">I", cred.sign_count)
                     + self.aaguid + struct.pack(">H", len(cred_id)) + cred_id + cose)
        signed = auth_data + hashlib.sha256(client_data).digest()
        if self.attestation == "none":
            fmt, stmt = "none", {}
        elif self.attestation == "self":
            fmt, stmt = "packed", {"alg": -7, "sig": key.sign(signed, ec.ECDSA(hashes.SHA256()))}
        else:
            leaf_cert, leaf_key = self.attestation_chain[0]
            fmt, stmt = "packed", {"alg": -7,
                                   "sig": leaf_key.sign(signed, ec.ECDSA(hashes.SHA256())),
                                   "x5c": [der(c) for c, _ in self.attestation_chain]}
        att_obj = cbor.encode({"fmt": fmt, "attStmt": stmt, "authData": auth_data})
        return {"id": b64url(cred_id), "rawId": b64url(cred_id), "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data),
                             "attestationObject": b64url(att_obj), "transports": ["usb"]},
                "authenticatorAttachment": "cross-platform", "clientExtensionResults": {}}

    def get(self, options: dict, origin: str, *, credential_id: bytes | None = None) -> dict:
        """navigator.credentials.get(): options JSON in, AuthenticationResponseJSON out."""
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials", [])]
        cred_id = credential_id or next(c for c in allowed if c in self.credentials)
        cred = self.credentials[cred_id]
        cred.sign_count += self.counter_step
        client_data = self.client_data("webauthn.get", options["challenge"], origin)
        auth_data = (hashlib.sha256(cred.rp_id.encode()).digest()
                     + bytes([self._flags(attested=False)]) + struct.pack(">I", cred.sign_count))
        signature = cred.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"id": b64url(cred_id), "rawId": b64url(cred_id), "type": "public-key",
                "response": {"clientDataJSON": b64url(client_data),
                             "authenticatorData": b64url(auth_data), "signature": b64url(signature),
                             "userHandle": b64url(cred.user_handle)},
                "authenticatorAttachment": "cross-platform", "clientExtensionResults": {}}

    @staticmethod
    def client_data(kind: str, challenge_b64url: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge_b64url, "origin": origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()

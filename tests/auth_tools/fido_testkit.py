"""Test-only FIDO pieces: a software authenticator, an attestation PKI and an MDS3 BLOB signer.

The authenticator is the client side (what a security key or phone does),
built from the WebAuthn spec with real ECDSA keys and real CBOR, so the
server code under test sees exactly the bytes a browser would send. It can
do what Chromium's virtual authenticator will not: omit the UV flag, claim
BE=1, replay a counter.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
import uuid
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from fido2 import cbor
from fido2.cose import ES256

ORIGIN = "https://bank.example"
RP_ID = "bank.example"
AAGUID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "riskgate tests")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _when(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def make_ca(cn: str, *, rsa_key: bool = False, not_before_days: float = -30,
            not_after_days: float = 3650) -> tuple[x509.Certificate, object]:
    """A self-signed CA certificate and its key."""
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_when(not_before_days)).not_valid_after(_when(not_after_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca_cert: x509.Certificate, ca_key, cn: str, *, rsa_key: bool = False, ou: str | None = None,
          aaguid: bytes | None = None, not_before_days: float = -1,
          not_after_days: float = 365) -> tuple[x509.Certificate, object]:
    """A leaf certificate (CA=false) issued by ``ca_cert``."""
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn, ou)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(_when(not_before_days)).not_valid_after(_when(not_after_days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if aaguid is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(AAGUID_EXTENSION, b"\x04\x10" + aaguid), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


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

    def create(self, options: dict, origin: str = ORIGIN) -> dict:
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

    def get(self, options: dict, origin: str = ORIGIN, *, credential_id: bytes | None = None) -> dict:
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


def metadata_entry(aaguid: str, statuses: list[tuple[str, str]], roots: list[x509.Certificate],
                   *, compromised_cert: x509.Certificate | None = None) -> dict:
    """One MDS3 entry: ``statuses`` is [(status, effective ISO date), ...]."""
    reports = []
    for status, date in statuses:
        report = {"status": status, "effectiveDate": date}
        if status == "ATTESTATION_KEY_COMPROMISE" and compromised_cert is not None:
            report["certificate"] = base64.b64encode(der(compromised_cert)).decode()
        reports.append(report)
    return {
        "aaguid": aaguid,
        "statusReports": reports,
        "timeOfLastStatusChange": statuses[-1][1] if statuses else "2025-01-01",
        "metadataStatement": {
            "legalHeader": "test", "aaguid": aaguid, "description": f"Test key {aaguid[:8]}",
            "authenticatorVersion": 1, "protocolFamily": "fido2", "schema": 3,
            "upv": [{"major": 1, "minor": 0}], "authenticationAlgorithms": ["secp256r1_ecdsa_sha256_raw"],
            "publicKeyAlgAndEncodings": ["cose"], "attestationTypes": ["basic_full"],
            "userVerificationDetails": [[{"userVerificationMethod": "passcode_internal"}]],
            "keyProtection": ["hardware", "secure_element"], "matcherProtection": ["on_chip"],
            "attachmentHint": ["external", "wired"], "tcDisplay": [],
            "attestationRootCertificates": [base64.b64encode(der(r)).decode() for r in roots],
        },
    }


def sign_blob(entries: list[dict], signer_cert: x509.Certificate, signer_key, *,
              next_update: str = "2099-01-01", no: int = 7) -> bytes:
    """An MDS3 BLOB: an RS256 JWT with the signer in x5c, as the FIDO Alliance publishes it."""
    header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der(signer_cert)).decode()]}
    payload = {"legalHeader": "riskgate test BLOB", "no": no, "nextUpdate": next_update,
               "entries": entries}
    message = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())).encode()
    signature = signer_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return message + b"." + b64url(signature).encode()

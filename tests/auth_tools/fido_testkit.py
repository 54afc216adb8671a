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
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mobile_client.soft_authenticator import SoftAuthenticator as _SoftAuthenticator
from mobile_client.soft_authenticator import SoftCredential  # noqa: F401 - re-exported

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


class SoftAuthenticator(_SoftAuthenticator):
    """The reference client's software authenticator, with the tests' origin as default."""

    def create(self, options: dict, origin: str = ORIGIN) -> dict:
        return super().create(options, origin)

    def get(self, options: dict, origin: str = ORIGIN, *, credential_id: bytes | None = None) -> dict:
        return super().get(options, origin, credential_id=credential_id)


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

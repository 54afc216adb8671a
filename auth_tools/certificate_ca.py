"""The gateway CA: a P-256 root that issues cloud and hardware-key certificates.

The CA key travels as PEM bytes next to the certificate; the gateway encrypts
it at rest (AES-GCM under its key-encryption key) before it reaches Redis, so
nothing here writes or encrypts keys.

Certificates are issued from PKCS#10 requests made on the device: the request
signature proves possession of the key, only ECDSA P-256 and RSA >= 2048 keys
are accepted, and the subject comes from the caller (the authenticated user),
never from the request.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auth_tools.errors import BadToolInput, CaKeyUnavailable, CsrInvalid, CsrKeyUnsupported

__all__ = [
    "PRIVATE_ARC",
    "POLICY_CLOUD",
    "POLICY_HARDWARE",
    "CertificateProfile",
    "GatewayCA",
    "IssuedCertificate",
    "create_ca",
    "issue_from_csr",
    "user_uri",
]

# riskgate's private OID arc. A UUID OID (ITU-T X.667, RFC 4122 section 1):
# every UUID written as an integer under 2.25 is globally unique without
# registering anything. This one was drawn once (uuid4
# 5928988c-911d-4ce4-9028-c00e87dec25c) and must never change: issued
# certificates carry it. Sub-arcs: .1 certificate policies.
PRIVATE_ARC = "2.25.118512077562312161233453721115613381212"
POLICY_CLOUD = x509.ObjectIdentifier(f"{PRIVATE_ARC}.1.4")
"""Cloud certificate: key made in the app, unlocked by PIN or biometric; qualifies for T4."""
POLICY_HARDWARE = x509.ObjectIdentifier(f"{PRIVATE_ARC}.1.5")
"""Hardware key (USB/Bluetooth) issued at a branch, PIN enforced by the key; qualifies for T5."""

_DAY = 86_400.0
_MIN_RSA_BITS = 2048
_MAX_RSA_BITS = 8192  # larger keys are a CPU sink on every verification


class CertificateProfile(enum.Enum):
    """What a certificate stands for, and therefore which tier it may reach."""

    CLOUD = "cloud"
    HARDWARE = "hardware"

    @property
    def policy_oid(self) -> x509.ObjectIdentifier:
        return POLICY_CLOUD if self is CertificateProfile.CLOUD else POLICY_HARDWARE

    @property
    def max_tier(self) -> int:
        return 4 if self is CertificateProfile.CLOUD else 5

    @property
    def amr(self) -> tuple[str, ...]:
        """RFC 8176 methods a signature proves.

        The PIN never reaches the gateway: it unlocks the key on the device (app
        keystore for the cloud certificate, the token itself for a hardware key),
        so a valid signature stands for possession of the key plus that PIN.
        """
        return ("swk", "pin") if self is CertificateProfile.CLOUD else ("hwk", "pin")

    @property
    def default_validity_days(self) -> int:
        return 365 if self is CertificateProfile.CLOUD else 3 * 365

    @classmethod
    def from_policy_oid(cls, oid: x509.ObjectIdentifier) -> CertificateProfile | None:
        for profile in cls:
            if profile.policy_oid == oid:
                return profile
        return None


@dataclass(frozen=True, slots=True)
class GatewayCA:
    """The CA certificate and, when issuing or signing CRLs, its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | None = None

    @classmethod
    def from_pem(cls, cert_pem: bytes | str, key_pem: bytes | str | None = None) -> GatewayCA:
        cert = x509.load_pem_x509_certificate(_as_bytes(cert_pem))
        key = None
        if key_pem is not None:
            loaded = serialization.load_pem_private_key(_as_bytes(key_pem), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise CaKeyUnavailable("the CA key must be an EC private key")
            key = loaded
        return cls(cert=cert, key=key)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def signing_key(self) -> ec.EllipticCurvePrivateKey:
        if self.key is None:
            raise CaKeyUnavailable()
        return self.key


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate the CA issued; store serial and fingerprint with the enrolment."""

    cert_pem: bytes
    serial: int
    user_id: str
    profile: CertificateProfile
    not_before: float
    not_after: float
    fingerprint: str  # lowercase hex SHA-256 of the DER certificate


def create_ca(name: str, now: float, validity_days: int = 3650) -> tuple[bytes, bytes]:
    """Create the gateway's root CA.

    Returns ``(ca_cert_pem, ca_key_pem)``; the key is unencrypted PKCS#8 PEM,
    for the caller to encrypt before storing it.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "riskgate"),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now))
        .not_valid_after(_utc(now + validity_days * _DAY))
        # path_length=0: this root issues end-entity certificates only.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def user_uri(user_id: str) -> str:
    """The subjectAltName URI naming a user (``urn:riskgate:user:<percent-encoded id>``)."""
    return "urn:riskgate:user:" + quote(user_id, safe="")


def issue_from_csr(
    csr_pem: bytes | str,
    ca: GatewayCA,
    subject_user_id: str,
    profile: CertificateProfile,
    now: float,
    serial: int | None = None,
    *,
    validity_days: int | None = None,
    crl_url: str | None = None,
) -> IssuedCertificate:
    """Issue a client certificate for ``subject_user_id`` from a device's PKCS#10 request.

    The request's own subject and extensions are ignored. The certificate gets
    CN and UID = the user id, a ``urn:riskgate:user:`` SAN, digitalSignature,
    clientAuth and the profile's policy OID. Its lifetime never outlasts the CA.
    """
    if not subject_user_id or len(subject_user_id) > 64:
        raise BadToolInput("the user id must be 1 to 64 characters")
    csr = _load_csr(csr_pem)
    if not _csr_key_read(lambda: csr.is_signature_valid):
        raise CsrInvalid("the certificate request signature does not verify")
    public_key = _csr_key_read(csr.public_key)
    _check_key(public_key)
    if serial is None:
        serial = x509.random_serial_number()
    elif not 0 < serial < 2**159:
        raise BadToolInput("serial must be a positive integer below 2**159")

    days = validity_days if validity_days is not None else profile.default_validity_days
    not_before = now
    not_after = min(now + days * _DAY, ca.cert.not_valid_after_utc.timestamp())
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, subject_user_id),
            x509.NameAttribute(NameOID.USER_ID, subject_user_id),
        ]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(_utc(not_before))
        .not_valid_after(_utc(not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(
            user_uri(subject_user_id))]), critical=False)
        .add_extension(x509.CertificatePolicies([x509.PolicyInformation(profile.policy_oid, None)]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None,
            reasons=None, crl_issuer=None)]), critical=False)
    cert = builder.sign(ca.signing_key(), hashes.SHA256())
    return IssuedCertificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        serial=serial,
        user_id=subject_user_id,
        profile=profile,
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
    )


def _load_csr(csr: bytes | str) -> x509.CertificateSigningRequest:
    data = _as_bytes(csr)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CsrInvalid() from exc


def _csr_key_read(read):  # noqa: ANN001, ANN202
    """``read()`` of the request's key: a damaged or unknown key surfaces only here, not at loading."""
    try:
        return read()
    except UnsupportedAlgorithm as exc:
        raise CsrKeyUnsupported() from exc
    except ValueError as exc:
        raise CsrInvalid("the certificate request carries an unreadable key") from exc


def _check_key(public_key: object) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return
        raise CsrKeyUnsupported(f"EC curve {public_key.curve.name} is not accepted; use P-256")
    if isinstance(public_key, rsa.RSAPublicKey):
        if _MIN_RSA_BITS <= public_key.key_size <= _MAX_RSA_BITS:
            return
        raise CsrKeyUnsupported(f"RSA keys must have 2048 to 8192 bits, not {public_key.key_size}")
    raise CsrKeyUnsupported()


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False,
               crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
        crl_sign=crl_sign, encipher_only=False, decipher_only=False,
    )


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value

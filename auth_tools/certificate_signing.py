"""Certificate verification and the transaction-signing ceremony.

The device signs ``dynamic_linking.signing_payload(challenge_id, txn)`` with
its certificate key: ECDSA P-256 with SHA-256 (DER, as Android Keystore, iOS
and ``openssl dgst -sha256 -sign`` produce; raw 64-byte r||s as WebCrypto
produces is accepted too) or RSA PKCS#1 v1.5 with SHA-256.

Each failure has its own error: another CA -> ``certificate_untrusted``,
revoked -> ``certificate_revoked``, outside its validity ->
``certificate_expired`` / ``certificate_not_yet_valid``, no digitalSignature or
clientAuth -> ``certificate_key_usage``, no riskgate policy ->
``certificate_policy_missing``, another user's certificate ->
``certificate_wrong_user``, a signature over anything else (another amount,
payee or challenge) -> ``transaction_signature_invalid``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from collections.abc import Container
from dataclasses import asdict, dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from auth_tools.certificate_ca import CertificateProfile, GatewayCA
from auth_tools.dynamic_linking import Transaction, signing_payload, txn_hash
from auth_tools.errors import (
    BadToolInput,
    CertificateExpired,
    CertificateKeyUsage,
    CertificateMalformed,
    CertificateNotYetValid,
    CertificatePolicyMissing,
    CertificateRevoked,
    CertificateUntrusted,
    CertificateWrongUser,
    ChallengeExpired,
    TransactionSignatureInvalid,
)

__all__ = [
    "CertificateApproval",
    "VerifiedCertificate",
    "begin",
    "complete",
    "load_certificate",
    "verify_certificate",
    "verify_transaction_signature",
]

DEFAULT_TTL = 300.0


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    """A certificate that chains to the gateway CA and is usable at the given time."""

    user_id: str
    serial: int
    profile: CertificateProfile
    fingerprint: str  # lowercase hex SHA-256 of the DER certificate
    not_after: float

    @property
    def max_tier(self) -> int:
        return self.profile.max_tier

    @property
    def amr(self) -> tuple[str, ...]:
        return self.profile.amr


@dataclass(frozen=True, slots=True)
class CertificateApproval:
    """A transaction approved by a certificate signature."""

    certificate: VerifiedCertificate
    challenge_id: str
    txn_hash: str


def load_certificate(cert: bytes | str | x509.Certificate) -> x509.Certificate:
    """Parse a PEM or DER certificate (or pass a parsed one through)."""
    if isinstance(cert, x509.Certificate):
        return cert
    data = cert.encode() if isinstance(cert, str) else cert
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (ValueError, x509.InvalidVersion) as exc:
        raise CertificateMalformed() from exc


def verify_certificate(
    cert: bytes | str | x509.Certificate,
    *,
    ca: GatewayCA,
    revoked: Container[int],
    now: float,
    expected_user_id: str | None = None,
) -> VerifiedCertificate:
    """Check a client certificate against the gateway CA at time ``now``.

    Also the check for a certificate presented over mTLS. The explicit checks
    give each failure its own error; ``cryptography.x509.verification`` then
    validates the whole path (signature, basic constraints, EKU, profile).
    """
    leaf = load_certificate(cert)
    ca_cert = ca.cert
    try:
        if leaf.issuer != ca_cert.subject:
            raise CertificateUntrusted()
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise CertificateUntrusted() from exc
    if leaf.serial_number in revoked:
        raise CertificateRevoked()
    for checked in (leaf, ca_cert):
        if now < checked.not_valid_before_utc.timestamp():
            raise CertificateNotYetValid()
        if now > checked.not_valid_after_utc.timestamp():
            raise CertificateExpired()
    _check_usage(leaf)
    profile = _profile(leaf)

    verifier = (PolicyBuilder().store(Store([ca_cert]))
                .time(dt.datetime.fromtimestamp(now, tz=dt.UTC)).build_client_verifier())
    try:
        verifier.verify(leaf, [])
    except VerificationError as exc:
        raise CertificateUntrusted("the certificate failed path validation against this "
                                   "gateway's CA") from exc

    user_id = _user_id(leaf)
    if expected_user_id is not None and not hmac.compare_digest(
            user_id.encode(), expected_user_id.encode()):
        raise CertificateWrongUser()
    return VerifiedCertificate(
        user_id=user_id,
        serial=leaf.serial_number,
        profile=profile,
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        not_after=leaf.not_valid_after_utc.timestamp(),
    )


def verify_transaction_signature(
    cert: bytes | str | x509.Certificate,
    signature: bytes,
    challenge_id: str,
    txn: Transaction,
    *,
    ca: GatewayCA,
    revoked: Container[int],
    now: float,
    expected_user_id: str | None = None,
) -> VerifiedCertificate:
    """Verify the certificate, then its key's signature over the challenge and transaction."""
    verified = verify_certificate(cert, ca=ca, revoked=revoked, now=now,
                                  expected_user_id=expected_user_id)
    public_key = load_certificate(cert).public_key()
    payload = signing_payload(challenge_id, txn)
    if not _signature_valid(public_key, signature, payload):
        raise TransactionSignatureInvalid()
    return verified


def begin(challenge_id: str, txn: Transaction, *, now: float,
          ttl: float = DEFAULT_TTL) -> tuple[dict[str, object], dict[str, object]]:
    """Start a signing ceremony.

    ``options`` go to the device: the base64url ``payload`` to sign and the
    ``txn_hash`` it must show. ``state`` is for the caller to keep (Redis, TTL)
    and hand to ``complete`` once.
    """
    payload = signing_payload(challenge_id, txn)
    expires_at = now + ttl
    options: dict[str, object] = {
        "challenge_id": challenge_id,
        "txn_hash": txn_hash(txn),
        "payload": base64.urlsafe_b64encode(payload).rstrip(b"=").decode(),
        "algorithms": ["ES256", "RS256"],
        "expires_at": expires_at,
    }
    state: dict[str, object] = {
        "challenge_id": challenge_id,
        "txn": asdict(txn),
        "txn_hash": txn_hash(txn),
        "expires_at": expires_at,
    }
    return options, state


def complete(
    state: dict[str, object],
    cert: bytes | str | x509.Certificate,
    signature: bytes,
    *,
    ca: GatewayCA,
    revoked: Container[int],
    now: float,
    expected_user_id: str | None = None,
) -> CertificateApproval:
    """Finish a signing ceremony started by ``begin``; the caller deletes ``state``."""
    try:
        challenge_id = str(state["challenge_id"])
        txn = Transaction(**state["txn"])  # type: ignore[arg-type]
        expected_hash = str(state["txn_hash"])
        expires_at = float(state["expires_at"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadToolInput("the ceremony state is malformed") from exc
    if now > expires_at:
        raise ChallengeExpired()
    if not hmac.compare_digest(txn_hash(txn), expected_hash):
        raise BadToolInput("the ceremony state is inconsistent")
    verified = verify_transaction_signature(cert, signature, challenge_id, txn, ca=ca,
                                            revoked=revoked, now=now,
                                            expected_user_id=expected_user_id)
    return CertificateApproval(certificate=verified, challenge_id=challenge_id,
                               txn_hash=expected_hash)


def _check_usage(leaf: x509.Certificate) -> None:
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise CertificateKeyUsage() from exc
    if not key_usage.digital_signature or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise CertificateKeyUsage()


def _profile(leaf: x509.Certificate) -> CertificateProfile:
    try:
        policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound as exc:
        raise CertificatePolicyMissing() from exc
    found = [p for p in (CertificateProfile.from_policy_oid(info.policy_identifier)
                         for info in policies) if p is not None]
    if not found:
        raise CertificatePolicyMissing()
    # Both policies on one certificate never comes from our CA; take the weaker.
    return min(found, key=lambda p: p.max_tier)


def _user_id(leaf: x509.Certificate) -> str:
    for oid in (NameOID.USER_ID, NameOID.COMMON_NAME):
        attrs = leaf.subject.get_attributes_for_oid(oid)
        if attrs:
            return str(attrs[0].value)
    raise CertificateMalformed("the certificate names no user")


def _signature_valid(public_key: object, signature: bytes, payload: bytes) -> bool:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        candidates = [signature]
        if len(signature) == 64:  # raw r||s (IEEE P1363), as WebCrypto signs
            candidates.append(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                                   int.from_bytes(signature[32:], "big")))
        for candidate in candidates:
            try:
                public_key.verify(candidate, payload, ec.ECDSA(hashes.SHA256()))
                return True
            except (InvalidSignature, ValueError):
                continue
        return False
    if isinstance(public_key, rsa.RSAPublicKey):
        try:
            public_key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
            return True
        except (InvalidSignature, ValueError):
            return False
    return False

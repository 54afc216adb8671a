"""Revocation: the record the gateway keeps per revoked serial, and the CRL it publishes.

The gateway stores ``Revocation.to_dict()`` per serial (and a set of serials
for the hot path), calls ``build_crl`` when the list changes or before
``next_update``, and serves the DER at ``/pki/crl``
(``application/pkix-crl``). Verification takes the set of revoked serials,
not a CRL, so a revocation takes effect at once rather than at the next CRL.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth_tools.certificate_ca import GatewayCA
from auth_tools.errors import BadToolInput, CrlInvalid

__all__ = ["Crl", "Revocation", "RevocationReason", "build_crl", "revoke", "revoked_serials"]


class RevocationReason(enum.Enum):
    """RFC 5280 reason codes a bank uses (certificateHold is left out: revocation is final)."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key_compromise"
    AFFILIATION_CHANGED = "affiliation_changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation_of_operation"
    PRIVILEGE_WITHDRAWN = "privilege_withdrawn"

    @property
    def x509_flag(self) -> x509.ReasonFlags:
        return x509.ReasonFlags[self.value]


@dataclass(frozen=True, slots=True)
class Revocation:
    serial: int
    reason: RevocationReason
    revoked_at: float

    def to_dict(self) -> dict[str, object]:
        """JSON form; the serial is hex because it is up to 159 bits."""
        return {"serial": format(self.serial, "x"), "reason": self.reason.value,
                "revoked_at": self.revoked_at}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Revocation:
        return cls(serial=int(str(data["serial"]), 16), reason=RevocationReason(data["reason"]),
                   revoked_at=float(data["revoked_at"]))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Crl:
    der: bytes
    number: int
    this_update: float
    next_update: float

    @property
    def pem(self) -> bytes:
        crl = x509.load_der_x509_crl(self.der)
        return crl.public_bytes(serialization.Encoding.PEM)


def revoke(serial: int, reason: RevocationReason | str, now: float) -> Revocation:
    """The revocation record for ``serial``, effective ``now``."""
    if not isinstance(serial, int) or serial <= 0:
        raise BadToolInput("serial must be a positive integer")
    try:
        reason = RevocationReason(reason)
    except ValueError as exc:
        raise BadToolInput(f"unknown revocation reason {reason!r}") from exc
    return Revocation(serial=serial, reason=reason, revoked_at=now)


def build_crl(ca: GatewayCA, revoked: Iterable[Revocation], now: float, next_update: float,
              crl_number: int | None = None) -> Crl:
    """Sign a CRL listing ``revoked``; ``crl_number`` defaults to ``int(now)`` (monotonic
    as long as CRLs are built at most once a second)."""
    if next_update <= now:
        raise BadToolInput("next_update must be after now")
    number = int(now) if crl_number is None else crl_number
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(_utc(now))
        .next_update(_utc(next_update))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )
    for entry in sorted(revoked, key=lambda r: r.serial):
        item = (x509.RevokedCertificateBuilder().serial_number(entry.serial)
                .revocation_date(_utc(entry.revoked_at)))
        # RFC 5280 5.3.1: omit the reason rather than write "unspecified".
        if entry.reason is not RevocationReason.UNSPECIFIED:
            item = item.add_extension(x509.CRLReason(entry.reason.x509_flag), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    crl = builder.sign(ca.signing_key(), hashes.SHA256())
    return Crl(der=crl.public_bytes(serialization.Encoding.DER), number=number,
               this_update=crl.last_update_utc.timestamp(),
               next_update=crl.next_update_utc.timestamp())  # type: ignore[union-attr]


def revoked_serials(crl_data: bytes | str, ca: GatewayCA) -> frozenset[int]:
    """The serials listed in a CRL (DER or PEM) after checking the CA signed it."""
    data = crl_data.encode() if isinstance(crl_data, str) else crl_data
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CrlInvalid() from exc
    public_key = ca.cert.public_key()
    if (crl.issuer != ca.cert.subject or not isinstance(public_key, ec.EllipticCurvePublicKey)
            or not crl.is_signature_valid(public_key)):
        raise CrlInvalid()
    return frozenset(entry.serial_number for entry in crl)


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)

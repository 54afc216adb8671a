"""FIDO Metadata Service (MDS3): what the operator's BLOB says about an authenticator.

The operator downloads the MDS3 BLOB (a JWT signed under the FIDO Alliance
root) and gives the gateway the file and the root certificate. python-fido2's
``fido2.mds3.parse_blob`` checks the signature and the x5c chain up to that
root; this module adds what it leaves to the caller (certificate validity and
the BLOB's ``nextUpdate`` at an explicit ``now``) and boils each AAGUID's
``statusReports`` down to two answers the FIDO tool needs:

* the certification level (``FIDO_CERTIFIED_L2`` and up qualifies for T4);
* a compromise (``USER_VERIFICATION_BYPASS``, ``USER_KEY_REMOTE_COMPROMISE``,
  ``USER_KEY_PHYSICAL_COMPROMISE``, ``REVOKED``): the credential is refused.

``ATTESTATION_KEY_COMPROMISE`` does not expose users' keys, but attestations
from that batch can be forged, so it withdraws T4 (the attestation proves
nothing) without refusing the credential; a registration whose attestation
chain holds the named compromised certificate is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from fido2.attestation import InvalidSignature as ChainSignatureInvalid
from fido2.mds3 import (
    AuthenticatorStatus,
    MetadataBlobPayload,
    MetadataBlobPayloadEntry,
    parse_blob,
)
from fido2.webauthn import Aaguid

from auth_tools.errors import FidoMetadataInvalid, FidoMetadataStale

__all__ = [
    "COMPROMISED_STATUSES",
    "CERTIFICATION_ORDER",
    "AuthenticatorMetadata",
    "FidoMetadata",
    "load_metadata",
    "parse_metadata",
]

COMPROMISED_STATUSES = frozenset({
    AuthenticatorStatus.USER_VERIFICATION_BYPASS,
    AuthenticatorStatus.USER_KEY_REMOTE_COMPROMISE,
    AuthenticatorStatus.USER_KEY_PHYSICAL_COMPROMISE,
    AuthenticatorStatus.REVOKED,
})

# FIDO certification levels, lowest first; plain FIDO_CERTIFIED is the old name of L1.
CERTIFICATION_ORDER = (
    AuthenticatorStatus.FIDO_CERTIFIED,
    AuthenticatorStatus.FIDO_CERTIFIED_L1,
    AuthenticatorStatus.FIDO_CERTIFIED_L1plus,
    AuthenticatorStatus.FIDO_CERTIFIED_L2,
    AuthenticatorStatus.FIDO_CERTIFIED_L2plus,
    AuthenticatorStatus.FIDO_CERTIFIED_L3,
    AuthenticatorStatus.FIDO_CERTIFIED_L3plus,
)
_LEVEL = {status: index for index, status in enumerate(CERTIFICATION_ORDER)}
_L2 = _LEVEL[AuthenticatorStatus.FIDO_CERTIFIED_L2]


@dataclass(frozen=True, slots=True)
class AuthenticatorMetadata:
    """One AAGUID's standing at ``now`` according to the BLOB."""

    aaguid: str
    description: str
    certification: str | None  # highest FIDO_CERTIFIED_* in effect, e.g. "FIDO_CERTIFIED_L2"
    compromise: str | None  # the compromising status in effect, if any
    attestation_key_compromised: bool
    compromised_attestation_certs: tuple[bytes, ...]  # DER, from ATTESTATION_KEY_COMPROMISE
    attestation_roots_pem: tuple[bytes, ...]

    @property
    def certified_l2(self) -> bool:
        """FIDO_CERTIFIED_L2 or higher, and no attestation-key compromise."""
        if self.certification is None or self.attestation_key_compromised:
            return False
        return _LEVEL[AuthenticatorStatus(self.certification)] >= _L2


class FidoMetadata:
    """A verified MDS3 BLOB, indexed by AAGUID, evaluated at a fixed time."""

    def __init__(self, payload: MetadataBlobPayload, now: float) -> None:
        self.serial = payload.no
        self.next_update = payload.next_update
        self._today = datetime.fromtimestamp(now, UTC).date()
        self._entries: Mapping[str, MetadataBlobPayloadEntry] = {
            str(entry.aaguid): entry for entry in payload.entries if entry.aaguid
        }

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, aaguid: str) -> AuthenticatorMetadata | None:
        """The AAGUID's standing, or ``None`` when the BLOB does not list it."""
        try:
            key = str(Aaguid.parse(aaguid))
        except ValueError:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        in_effect = [r for r in entry.status_reports
                     if r.effective_date is None or r.effective_date <= self._today]
        levels = [r.status for r in in_effect if r.status in _LEVEL]
        compromise = next((r.status for r in in_effect if r.status in COMPROMISED_STATUSES), None)
        key_compromise = [r for r in in_effect
                          if r.status == AuthenticatorStatus.ATTESTATION_KEY_COMPROMISE]
        statement = entry.metadata_statement
        roots = tuple(_der_to_pem(der) for der in
                      (statement.attestation_root_certificates if statement else ()))
        return AuthenticatorMetadata(
            aaguid=key,
            description=statement.description if statement else "",
            certification=str(max(levels, key=_LEVEL.__getitem__)) if levels else None,
            compromise=str(compromise) if compromise else None,
            attestation_key_compromised=bool(key_compromise),
            compromised_attestation_certs=tuple(r.certificate for r in key_compromise
                                                if r.certificate),
            attestation_roots_pem=roots,
        )


def _der_to_pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def _root_der(trust_root: bytes) -> bytes:
    try:
        if trust_root.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(trust_root)
        else:
            cert = x509.load_der_x509_certificate(trust_root)
    except ValueError as exc:
        raise FidoMetadataInvalid("the MDS root certificate could not be read") from exc
    return cert.public_bytes(serialization.Encoding.DER)


def _check_chain_times(blob: bytes, root_der: bytes, now: float) -> None:
    """fido2 checks signatures only; certificates must also be valid at ``now``."""
    header_b64 = blob.split(b".", 1)[0]
    header = json.loads(base64.urlsafe_b64decode(header_b64 + b"=" * (-len(header_b64) % 4)))
    chain = [base64.b64decode(c) for c in header.get("x5c", [])] + [root_der]
    moment = datetime.fromtimestamp(now, UTC)
    for der in chain:
        cert = x509.load_der_x509_certificate(der)
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            raise FidoMetadataInvalid("an MDS signing certificate is not valid at this time")


def parse_metadata(blob: bytes, trust_root: bytes, now: float, *,
                   stale_grace: float = 0.0) -> FidoMetadata:
    """Verify an MDS3 BLOB (JWT bytes) under ``trust_root`` (PEM or DER) at ``now``.

    Raises :class:`FidoMetadataInvalid` when the signature, the chain or the
    payload fails, and :class:`FidoMetadataStale` when ``now`` is more than
    ``stale_grace`` seconds past the BLOB's ``nextUpdate`` (fetch a new one).
    """
    root_der = _root_der(trust_root)
    blob = blob.strip()
    try:
        _check_chain_times(blob, root_der, now)
        payload = parse_blob(blob, root_der)
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error,
            InvalidSignature, ChainSignatureInvalid) as exc:
        raise FidoMetadataInvalid() from exc
    next_update = datetime.combine(payload.next_update, datetime.min.time(), UTC).timestamp()
    if now > next_update + stale_grace:
        raise FidoMetadataStale()
    return FidoMetadata(payload, now)


def load_metadata(path: str | Path, trust_root: bytes, now: float, *,
                  stale_grace: float = 0.0) -> FidoMetadata:
    """Read and verify the operator's MDS3 BLOB file; see :func:`parse_metadata`."""
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise FidoMetadataInvalid(f"the MDS BLOB file could not be read: {exc.strerror}") from exc
    return parse_metadata(blob, trust_root, now, stale_grace=stale_grace)

"""FIDO2 / WebAuthn: security keys and passkeys, registration and step-up.

py_webauthn runs both ceremonies; this module adds what a bank needs on top:

* the step-up challenge is ``dynamic_linking.webauthn_challenge(challenge_id,
  txn)``, so an assertion approves exactly one transaction;
* user verification (PIN or biometric on the authenticator) is required for
  T3 and above; an assertion without the UV flag is refused;
* backup eligibility (BE) is fixed at registration: a synced passkey (BE=1)
  counts at most as T3 (RFC 8176 ``swk``), a device-bound authenticator
  (BE=0) with UV may reach T4 (``hwk``);
* a signature counter that does not move forward (new <= stored, unless both
  are zero) refuses the assertion and flags the credential as possibly cloned;
* with an MDS3 BLOB loaded (``fido_metadata``), T4 further needs an
  attestation that chains to the metadata's roots for that AAGUID and a
  FIDO_CERTIFIED_L2 or higher status; a compromised status refuses.

Options are returned as the JSON dicts ``navigator.credentials.create/get``
take (binary fields base64url); responses are the JSON the browser's
``PublicKeyCredential.toJSON()`` gives.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography import x509
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from auth_tools.dynamic_linking import Transaction, txn_hash, webauthn_challenge
from auth_tools.errors import (
    BadToolInput,
    ChallengeExpired,
    FidoAssertionInvalid,
    FidoAttestationInvalid,
    FidoAuthenticatorCompromised,
    FidoBackupEligibilityChanged,
    FidoChallengeMismatch,
    FidoConfigInvalid,
    FidoCredentialAlreadyRegistered,
    FidoCredentialFlagged,
    FidoCredentialUnknown,
    FidoResponseMalformed,
    FidoSignCountRegression,
    FidoUserVerificationMissing,
    NotEnrolled,
)
from auth_tools.fido_metadata import AuthenticatorMetadata, FidoMetadata

__all__ = [
    "UserVerification",
    "FidoConfig",
    "FidoCredential",
    "FidoResult",
    "user_handle",
    "begin_registration",
    "complete_registration",
    "begin_authentication",
    "complete_authentication",
]

_REG_KIND = "fido_registration"
_AUTH_KIND = "fido_authentication"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# id-fido-gen-ce-aaguid: the AAGUID an attestation certificate vouches for.
_AAGUID_EXTENSION = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
_TRUSTABLE_FORMATS = frozenset(f.value for f in AttestationFormat) - {AttestationFormat.NONE.value}


class UserVerification(enum.Enum):
    """WebAuthn ``userVerification``; only ``required`` can reach T3 and above."""

    REQUIRED = "required"
    PREFERRED = "preferred"
    DISCOURAGED = "discouraged"


@dataclass(frozen=True, slots=True)
class FidoConfig:
    """The relying party: its RP ID (a registrable domain) and accepted origins."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    timeout_ms: int = 120_000
    state_ttl: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.origins, str):
            object.__setattr__(self, "origins", (self.origins,))
        else:
            object.__setattr__(self, "origins", tuple(self.origins))
        if not self.rp_id or "/" in self.rp_id or ":" in self.rp_id:
            raise FidoConfigInvalid("rp_id must be a bare domain such as 'bank.example'")
        if not self.origins:
            raise FidoConfigInvalid("at least one origin is required")
        for origin in self.origins:
            scheme, _, host = origin.partition("://")
            host = host.split(":", 1)[0]
            if scheme not in ("https", "http") or not (host == self.rp_id
                                                       or host.endswith("." + self.rp_id)):
                raise FidoConfigInvalid(f"origin {origin!r} is not within rp_id {self.rp_id!r}")
            if scheme == "http" and host != "localhost":
                raise FidoConfigInvalid("plain http origins are only allowed for localhost")


@dataclass(frozen=True, slots=True)
class FidoCredential:
    """A registered authenticator credential, as the gateway stores it.

    ``credential_id`` is base64url; ``public_key`` the COSE key bytes.
    ``attestation_trusted`` is true only when the attestation chained to the
    MDS roots listed for ``aaguid``. ``flagged`` credentials are refused.
    """

    credential_id: str
    public_key: bytes
    sign_count: int
    aaguid: str
    backup_eligible: bool
    backup_state: bool
    uv_initialized: bool
    transports: tuple[str, ...]
    created_at: float
    user_id: str = ""
    attestation_format: str = "none"
    attestation_trusted: bool = False
    flagged: bool = False
    flagged_reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"credential_id": self.credential_id, "public_key": _b64url(self.public_key),
                "sign_count": self.sign_count, "aaguid": self.aaguid,
                "backup_eligible": self.backup_eligible, "backup_state": self.backup_state,
                "uv_initialized": self.uv_initialized, "transports": list(self.transports),
                "created_at": self.created_at, "user_id": self.user_id,
                "attestation_format": self.attestation_format,
                "attestation_trusted": self.attestation_trusted, "flagged": self.flagged,
                "flagged_reason": self.flagged_reason}

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> FidoCredential:
        return cls(
            credential_id=str(doc["credential_id"]),
            public_key=_unb64url(doc["public_key"], "public_key"),
            sign_count=int(doc["sign_count"]),  # type: ignore[call-overload]
            aaguid=str(doc["aaguid"]),
            backup_eligible=bool(doc["backup_eligible"]),
            backup_state=bool(doc["backup_state"]),
            uv_initialized=bool(doc["uv_initialized"]),
            transports=tuple(str(t) for t in doc.get("transports") or ()),  # type: ignore[attr-defined]
            created_at=float(doc["created_at"]),  # type: ignore[arg-type]
            user_id=str(doc.get("user_id", "")),
            attestation_format=str(doc.get("attestation_format", "none")),
            attestation_trusted=bool(doc.get("attestation_trusted", False)),
            flagged=bool(doc.get("flagged", False)),
            flagged_reason=str(doc.get("flagged_reason", "")),
        )


@dataclass(frozen=True, slots=True)
class FidoResult:
    """A verified step-up assertion.

    ``credential`` is the stored credential updated with the new counter and
    backup state: persist it. ``max_tier`` is the highest tier this factor
    may help reach (3 for synced passkeys or uncertified authenticators).
    """

    challenge_id: str
    txn_hash: str
    credential_id: str
    uv: bool
    be: bool
    bs: bool
    new_sign_count: int
    max_tier: int
    amr: tuple[str, ...]
    credential: FidoCredential


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise BadToolInput(f"{what} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadToolInput(f"{what} is not base64url") from exc


def user_handle(user_id: str) -> bytes:
    """The WebAuthn user handle: a hash, so the authenticator never holds the user id."""
    return hashlib.sha256(b"riskgate-webauthn-user-v1\n" + user_id.encode()).digest()


def _descriptor(credential: FidoCredential) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in credential.transports:
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue  # a transport newer than py_webauthn knows is only a hint
    return PublicKeyCredentialDescriptor(id=_unb64url(credential.credential_id, "credential_id"),
                                         transports=transports or None)


def begin_registration(
    config: FidoConfig,
    user_id: str,
    user_name: str,
    existing_credentials: Sequence[FidoCredential],
    *,
    now: float,
    display_name: str | None = None,
    attestation: str = "direct",
    resident_key: str = "preferred",
    authenticator_attachment: str | None = None,
    user_verification: UserVerification | str = UserVerification.REQUIRED,
) -> tuple[dict[str, object], dict[str, object]]:
    """Start registering an authenticator (the caller has already required step-up).

    Returns ``(options, state)``: ``options`` is the
    PublicKeyCredentialCreationOptions JSON for ``navigator.credentials.create``;
    ``existing_credentials`` are excluded so one authenticator registers once.
    ``attestation="direct"`` lets an MDS-listed authenticator prove its model.
    """
    uv = UserVerification(user_verification)
    try:
        selection = AuthenticatorSelectionCriteria(
            authenticator_attachment=(AuthenticatorAttachment(authenticator_attachment)
                                      if authenticator_attachment else None),
            resident_key=ResidentKeyRequirement(resident_key),
            require_resident_key=resident_key == "required",
            user_verification=UserVerificationRequirement(uv.value),
        )
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=config.rp_id, rp_name=config.rp_name, user_name=user_name,
            user_id=user_handle(user_id), user_display_name=display_name or user_name,
            challenge=challenge, timeout=config.timeout_ms,
            attestation=AttestationConveyancePreference(attestation),
            authenticator_selection=selection,
            exclude_credentials=[_descriptor(c) for c in existing_credentials],
        )
    except ValueError as exc:
        raise BadToolInput(f"invalid registration option: {exc}") from exc
    state: dict[str, object] = {
        "kind": _REG_KIND, "user_id": user_id, "challenge": _b64url(challenge),
        "rp_id": config.rp_id, "origins": list(config.origins),
        "user_verification": uv.value,
        "existing": [c.credential_id for c in existing_credentials],
        "expires_at": now + config.state_ttl,
    }
    return options_to_json_dict(options), state


def complete_registration(state: dict[str, object], response_json: str | dict[str, object],
                          now: float, *, metadata: FidoMetadata | None = None) -> FidoCredential:
    """Verify the browser's registration response and return the credential to store.

    With ``metadata``, an attestation from an MDS-listed AAGUID must chain to
    that entry's roots (otherwise the AAGUID claim is a lie and registration
    is refused); a compromised model is refused.
    """
    _check_state(state, _REG_KIND, now)
    try:
        parsed = parse_registration_credential_json(response_json)  # type: ignore[arg-type]
        attestation_object = parse_attestation_object(parsed.response.attestation_object)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise FidoResponseMalformed() from exc
    if _constant_time_in(_b64url(parsed.raw_id), state.get("existing") or []):
        raise FidoCredentialAlreadyRegistered()

    fmt = str(attestation_object.fmt.value if isinstance(attestation_object.fmt, AttestationFormat)
              else attestation_object.fmt)
    attested = attestation_object.auth_data.attested_credential_data
    aaguid = _aaguid_text(attested.aaguid) if attested else ""
    entry = metadata.lookup(aaguid) if metadata is not None and aaguid else None
    x5c = list(attestation_object.att_stmt.x5c or [])
    roots: list[bytes] = list(entry.attestation_roots_pem) if entry else []
    if entry is not None:
        _refuse_compromised(entry)
        if any(der in entry.compromised_attestation_certs for der in x5c):
            raise FidoAuthenticatorCompromised("this authenticator's attestation key is compromised")
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=_unb64url(state["challenge"], "challenge"),
            expected_rp_id=str(state["rp_id"]),
            expected_origin=[str(o) for o in state["origins"]],  # type: ignore[attr-defined]
            require_user_verification=False,  # checked below, with its own error
            pem_root_certs_bytes_by_fmt={AttestationFormat(fmt): roots} if roots else None,
        )
    except (WebAuthnException, ValueError) as exc:
        raise FidoAttestationInvalid() from exc

    trusted = bool(roots) and fmt in _TRUSTABLE_FORMATS and bool(x5c)
    if trusted:
        _check_aaguid_extension(x5c[0], attested.aaguid if attested else b"")
    if state.get("user_verification") == UserVerification.REQUIRED.value and not verified.user_verified:
        raise FidoUserVerificationMissing()
    transports = tuple(t.value if isinstance(t, AuthenticatorTransport) else str(t)
                       for t in parsed.response.transports or ())
    return FidoCredential(
        credential_id=_b64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backup_state=verified.credential_backed_up,
        uv_initialized=verified.user_verified,
        transports=transports,
        created_at=now,
        user_id=str(state["user_id"]),
        attestation_format=fmt,
        attestation_trusted=trusted,
    )


def begin_authentication(
    config: FidoConfig,
    challenge_id: str,
    txn: Transaction,
    credentials: Sequence[FidoCredential],
    user_verification: UserVerification | str = UserVerification.REQUIRED,
    *,
    now: float,
) -> tuple[dict[str, object], dict[str, object]]:
    """Ask an authenticator to approve the transaction of ``challenge_id``.

    The WebAuthn challenge is ``webauthn_challenge(challenge_id, txn)``.
    Flagged credentials are left out; with none usable, :class:`NotEnrolled`.
    """
    uv = UserVerification(user_verification)
    usable = [c for c in credentials if not c.flagged]
    if not usable:
        raise NotEnrolled()
    challenge = webauthn_challenge(challenge_id, txn)
    options = generate_authentication_options(
        rp_id=config.rp_id, challenge=challenge, timeout=config.timeout_ms,
        allow_credentials=[_descriptor(c) for c in usable],
        user_verification=UserVerificationRequirement(uv.value),
    )
    state: dict[str, object] = {
        "kind": _AUTH_KIND, "challenge_id": challenge_id, "txn_hash": txn_hash(txn),
        "challenge": _b64url(challenge), "rp_id": config.rp_id,
        "origins": list(config.origins), "user_verification": uv.value,
        "allowed": [c.credential_id for c in usable], "expires_at": now + config.state_ttl,
    }
    return options_to_json_dict(options), state


def complete_authentication(
    state: dict[str, object],
    response_json: str | dict[str, object],
    credential: FidoCredential,
    now: float,
    *,
    metadata: FidoMetadata | None = None,
    challenge_id: str | None = None,
    txn: Transaction | None = None,
) -> FidoResult:
    """Verify a step-up assertion by ``credential`` (the one its id names).

    Pass ``challenge_id`` and ``txn`` (what is about to be approved) to have
    the challenge recomputed rather than trusted from ``state``. Raises
    :class:`FidoSignCountRegression` carrying the flagged credential to persist.
    """
    _check_state(state, _AUTH_KIND, now)
    if credential.flagged:
        raise FidoCredentialFlagged()
    try:
        parsed = parse_authentication_credential_json(response_json)  # type: ignore[arg-type]
        client_data = parse_client_data_json(parsed.response.client_data_json)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        raise FidoResponseMalformed() from exc

    response_id = _b64url(parsed.raw_id)
    if not (hmac.compare_digest(response_id.encode(), credential.credential_id.encode())
            and _constant_time_in(response_id, state.get("allowed") or [])):
        raise FidoCredentialUnknown()
    expected = _unb64url(state["challenge"], "challenge")
    if challenge_id is not None or txn is not None:
        if challenge_id is None or txn is None:
            raise BadToolInput("pass both challenge_id and txn, or neither")
        bound = hmac.compare_digest(expected, webauthn_challenge(challenge_id, txn))
        bound &= hmac.compare_digest(str(state["challenge_id"]).encode(), challenge_id.encode())
        if not bound:
            raise FidoChallengeMismatch()
    if not hmac.compare_digest(client_data.challenge, expected):
        raise FidoChallengeMismatch()

    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=expected,
            expected_rp_id=str(state["rp_id"]),
            expected_origin=[str(o) for o in state["origins"]],  # type: ignore[attr-defined]
            credential_public_key=credential.public_key,
            # The counter is checked below, after the signature, so that only a
            # genuine signature with a stale counter flags the credential.
            credential_current_sign_count=0,
            require_user_verification=False,
        )
    except (WebAuthnException, ValueError) as exc:
        raise FidoAssertionInvalid() from exc

    new_count = verified.new_sign_count
    if (new_count or credential.sign_count) and new_count <= credential.sign_count:
        raise FidoSignCountRegression(replace(
            credential, flagged=True,
            flagged_reason=f"sign count {new_count} after {credential.sign_count}"))
    be = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if be != credential.backup_eligible:
        raise FidoBackupEligibilityChanged()
    required = state.get("user_verification") == UserVerification.REQUIRED.value
    if required and not verified.user_verified:
        raise FidoUserVerificationMissing()
    entry = metadata.lookup(credential.aaguid) if metadata is not None else None
    if entry is not None:
        _refuse_compromised(entry)

    updated = replace(credential, sign_count=new_count, backup_state=verified.credential_backed_up)
    return FidoResult(
        challenge_id=str(state["challenge_id"]), txn_hash=str(state["txn_hash"]),
        credential_id=credential.credential_id, uv=verified.user_verified, be=be,
        bs=verified.credential_backed_up, new_sign_count=new_count,
        max_tier=_max_tier(credential, verified.user_verified, be, metadata, entry),
        amr=(("swk",) if be else ("hwk",)) + (("user",) if verified.user_verified else ()),
        credential=updated,
    )


def _max_tier(credential: FidoCredential, uv: bool, be: bool, metadata: FidoMetadata | None,
              entry: AuthenticatorMetadata | None) -> int:
    """T4 needs UV, a device-bound key and (with metadata) a proven L2+ model."""
    if not uv:
        return 2  # possession only: never enough for linked tiers
    if be:
        return 3
    if metadata is None:
        return 4
    if entry is not None and entry.certified_l2 and credential.attestation_trusted:
        return 4
    return 3


def _refuse_compromised(entry: AuthenticatorMetadata) -> None:
    if entry.compromise is not None:
        raise FidoAuthenticatorCompromised(
            f"the FIDO Metadata Service reports this authenticator as {entry.compromise}")


def _check_aaguid_extension(leaf_der: bytes, aaguid: bytes) -> None:
    """An attestation certificate naming an AAGUID must name this one (WebAuthn 8.2.1)."""
    try:
        cert = x509.load_der_x509_certificate(leaf_der)
        ext = cert.extensions.get_extension_for_oid(_AAGUID_EXTENSION)
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise FidoAttestationInvalid() from exc
    value = ext.value.value  # type: ignore[attr-defined]
    # The extension holds an OCTET STRING of the 16 AAGUID bytes: 04 10 <aaguid>.
    if not hmac.compare_digest(value, b"\x04\x10" + aaguid):
        raise FidoAttestationInvalid("the attestation certificate vouches for another AAGUID")


def _aaguid_text(aaguid: bytes) -> str:
    h = aaguid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _constant_time_in(value: str, candidates: object) -> bool:
    found = False
    for candidate in candidates if isinstance(candidates, list) else []:
        found |= hmac.compare_digest(value.encode(), str(candidate).encode())
    return found


def _check_state(state: dict[str, object], kind: str, now: float) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise BadToolInput("not a FIDO ceremony state")
    expires_at = state.get("expires_at")
    if not isinstance(expires_at, int | float) or now >= expires_at:
        raise ChallengeExpired()

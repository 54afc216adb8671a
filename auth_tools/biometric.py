"""Device biometric key: the Android Keystore / Secure Enclave model.

The app creates a P-256 key in the device's secure hardware that can only be
used after the user passes the OS biometric prompt (Android
``setUserAuthenticationRequired`` + ``setInvalidatedByBiometricEnrollment``;
iOS ``.biometryCurrentSet``). Enrolment registers its public key together with
the ``biometric_set_id`` the OS reports (an opaque id of the enrolled
fingerprints or faces) and proves possession with a first signature. To
approve a transaction the key signs
``dynamic_linking.signing_payload(challenge_id, txn)`` (ECDSA P-256 SHA-256).

When the device reports a different biometric set, someone added or removed a
fingerprint or face: the OS has already invalidated the key, and the gateway
refuses the credential until the user enrols again.

A passed signature is possession of the device key plus inherence: RFC 8176
``hwk`` and ``fpt`` or ``face``, and ``user`` (the OS prompt is a user test).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from auth_tools.dynamic_linking import Transaction, format_amount, signing_payload, txn_hash
from auth_tools.errors import (
    BadToolInput,
    BiometricKeyUnsupported,
    BiometricSetChanged,
    BiometricSignatureInvalid,
    BiometricStateMismatch,
    ChallengeExpired,
    CredentialRevoked,
)

__all__ = [
    "Modality",
    "BiometricCredential",
    "BiometricResult",
    "load_public_key",
    "enrollment_payload",
    "begin_enrollment",
    "complete_enrollment",
    "revoke",
    "verify_biometric_signature",
    "begin",
    "complete",
]

_ENROL_KIND = "biometric_enrol"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_CHALLENGE_KIND = "biometric_challenge"


class Modality(enum.Enum):
    """Which biometric unlocks the key; decides the RFC 8176 method name."""

    FINGERPRINT = "fingerprint"
    FACE = "face"

    @property
    def amr(self) -> tuple[str, ...]:
        return ("hwk", "fpt" if self is Modality.FINGERPRINT else "face", "user")


@dataclass(frozen=True, slots=True)
class BiometricCredential:
    """An enrolled device key. ``credential_id`` is the b64url SHA-256 of its SPKI."""

    credential_id: str
    user_id: str
    device_id: str
    public_key_pem: str
    biometric_set_id: str
    modality: Modality
    enrolled_at: float
    revoked_at: float | None = None
    revoked_reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"credential_id": self.credential_id, "user_id": self.user_id,
                "device_id": self.device_id, "public_key_pem": self.public_key_pem,
                "biometric_set_id": self.biometric_set_id, "modality": self.modality.value,
                "enrolled_at": self.enrolled_at, "revoked_at": self.revoked_at,
                "revoked_reason": self.revoked_reason}

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> BiometricCredential:
        revoked_at = doc.get("revoked_at")
        return cls(str(doc["credential_id"]), str(doc["user_id"]), str(doc["device_id"]),
                   str(doc["public_key_pem"]), str(doc["biometric_set_id"]),
                   Modality(doc["modality"]), float(doc["enrolled_at"]),  # type: ignore[arg-type]
                   None if revoked_at is None else float(revoked_at),  # type: ignore[arg-type]
                   str(doc.get("revoked_reason", "")))


@dataclass(frozen=True, slots=True)
class BiometricResult:
    """A verified transaction signature by an enrolled device key."""

    challenge_id: str
    txn_hash: str
    credential_id: str
    modality: Modality

    @property
    def amr(self) -> tuple[str, ...]:
        return self.modality.amr


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise BadToolInput(f"{what} must be a base64url string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadToolInput(f"{what} is not base64url") from exc


def load_public_key(key: str | dict[str, object]) -> ec.EllipticCurvePublicKey:
    """Read a device public key given as a JWK (dict or JSON text) or SPKI PEM.

    Only ECDSA P-256 keys are accepted: that is what Android Keystore and the
    Secure Enclave make for signing.
    """
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        try:
            public = serialization.load_pem_public_key(key.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise BiometricKeyUnsupported() from exc
    else:
        public = _load_jwk(key)
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        raise BiometricKeyUnsupported()
    return public


def _load_jwk(key: str | dict[str, object]) -> ec.EllipticCurvePublicKey:
    if isinstance(key, str):
        try:
            key = orjson.loads(key)
        except orjson.JSONDecodeError as exc:
            raise BiometricKeyUnsupported() from exc
    if not isinstance(key, dict) or key.get("kty") != "EC" or key.get("crv") != "P-256" or "d" in key:
        raise BiometricKeyUnsupported()
    x, y = _unb64url(key.get("x"), "x"), _unb64url(key.get("y"), "y")
    if len(x) != 32 or len(y) != 32:
        raise BiometricKeyUnsupported()
    try:
        # from_encoded_point checks that the point lies on the curve.
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except ValueError as exc:
        raise BiometricKeyUnsupported() from exc


def _spki(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _raw_to_der(signature: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                int.from_bytes(signature[32:], "big"))


def verify_biometric_signature(public_key_pem: str, payload: bytes, signature: bytes) -> None:
    """Check an ECDSA P-256 SHA-256 signature; raise :class:`BiometricSignatureInvalid`.

    DER signatures (Android Keystore, iOS ``SecKeyCreateSignature``) are the
    norm; a 64-byte raw ``r || s`` (WebCrypto, JOSE) is accepted too.
    """
    public = load_public_key(public_key_pem)
    candidates = [signature] + ([_raw_to_der(signature)] if len(signature) == 64 else [])
    for candidate in candidates:
        try:
            public.verify(candidate, payload, ec.ECDSA(hashes.SHA256()))
            return
        except (InvalidSignature, ValueError):
            continue
    raise BiometricSignatureInvalid()


def enrollment_payload(user_id: str, nonce_b64url: str, biometric_set_id: str) -> bytes:
    """What the new key signs at enrolment (binds the key to the user and biometric set)."""
    return f"riskgate-biometric-enrol-v1\n{user_id}\n{nonce_b64url}\n{biometric_set_id}".encode()


def begin_enrollment(user_id: str, device_id: str, now: float, *,
                     ttl: float = 300.0) -> tuple[dict[str, object], dict[str, object]]:
    """Start enrolling a device key (the caller has already required step-up).

    The options carry a nonce; the app creates the key, unlocks it with the
    biometric prompt and signs :func:`enrollment_payload` with it.
    """
    nonce = _b64url(secrets.token_bytes(32))
    options: dict[str, object] = {"tool": "biometric", "nonce": nonce, "key_algorithm": "ES256",
                                  "key_curve": "P-256", "user_authentication_required": True,
                                  "invalidated_by_biometric_enrollment": True}
    state: dict[str, object] = {"kind": _ENROL_KIND, "user_id": user_id, "device_id": device_id,
                                "nonce": nonce, "expires_at": now + ttl}
    return options, state


def complete_enrollment(state: dict[str, object], public_key: str | dict[str, object],
                        biometric_set_id: str, modality: Modality | str,
                        signature_b64url: str, now: float) -> BiometricCredential:
    """Register the device key once its signature over the enrolment payload verifies."""
    _check_state(state, _ENROL_KIND, now)
    if not isinstance(biometric_set_id, str) or not biometric_set_id:
        raise BadToolInput("biometric_set_id is required")
    try:
        modality = Modality(modality)
    except ValueError as exc:
        raise BadToolInput("modality must be 'fingerprint' or 'face'") from exc
    spki = _spki(load_public_key(public_key))
    pem = serialization.load_der_public_key(spki).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    user_id = str(state["user_id"])
    payload = enrollment_payload(user_id, str(state["nonce"]), biometric_set_id)
    verify_biometric_signature(pem, payload, _unb64url(signature_b64url, "signature"))
    return BiometricCredential(_b64url(hashlib.sha256(spki).digest()), user_id,
                               str(state["device_id"]), pem, biometric_set_id, modality, now)


def revoke(credential: BiometricCredential, now: float, reason: str) -> BiometricCredential:
    """The credential marked revoked (removed by the user, or its biometric set changed)."""
    return replace(credential, revoked_at=now, revoked_reason=reason)


def _shown_transaction(txn: Transaction) -> dict[str, str]:
    payee = f"**** {txn.payee[-4:]}" if len(txn.payee) > 4 else ("****" if txn.payee else "")
    return {"action": txn.action, "amount": format_amount(txn.amount), "currency": txn.currency,
            "payee": payee}


def begin(challenge_id: str, txn: Transaction, credential: BiometricCredential, now: float, *,
          ttl: float = 120.0) -> tuple[dict[str, object], dict[str, object]]:
    """Ask the device key to sign the transaction.

    Returns ``(options, state)``: options carry ``payload`` (base64url of
    ``signing_payload(challenge_id, txn)``, the bytes to sign) and the
    transaction for the biometric prompt; the state binds the step to the
    challenge, the transaction hash and this credential.
    """
    _check_usable(credential)
    shown = _shown_transaction(txn)
    digest = txn_hash(txn)
    options: dict[str, object] = {
        "tool": "biometric",
        "credential_id": credential.credential_id,
        "payload": _b64url(signing_payload(challenge_id, txn)),
        "algorithm": "ES256",
        "transaction": shown,
        "txn_hash": digest,
        "prompt": f"Approve {shown['action']} of {shown['amount']} {shown['currency']}"
                  + (f" to {shown['payee']}" if shown["payee"] else ""),
        "expires_in": ttl,
    }
    state: dict[str, object] = {"kind": _CHALLENGE_KIND, "challenge_id": challenge_id,
                                "txn_hash": digest, "credential_id": credential.credential_id,
                                "expires_at": now + ttl}
    return options, state


def complete(state: dict[str, object], signature_b64url: str, credential: BiometricCredential,
             now: float, *, biometric_set_id: str, challenge_id: str,
             txn: Transaction) -> BiometricResult:
    """Verify the device's signature over the challenge and transaction.

    ``biometric_set_id`` is what the device reports now; ``challenge_id`` and
    ``txn`` are what the caller is about to approve. The signature is checked
    over ``signing_payload(challenge_id, txn)`` recomputed here, so a signature
    made for another challenge, amount or payee fails. A changed biometric set
    raises :class:`BiometricSetChanged`: revoke the credential and re-enrol.
    """
    _check_state(state, _CHALLENGE_KIND, now)
    _check_usable(credential)
    digest = txn_hash(txn)
    bound = hmac.compare_digest(str(state["challenge_id"]).encode(), challenge_id.encode())
    bound &= hmac.compare_digest(str(state["txn_hash"]).encode(), digest.encode())
    bound &= hmac.compare_digest(str(state["credential_id"]).encode(),
                                 credential.credential_id.encode())
    if not bound:
        raise BiometricStateMismatch()
    if not isinstance(biometric_set_id, str):
        raise BadToolInput("biometric_set_id is required")
    if not hmac.compare_digest(biometric_set_id.encode(), credential.biometric_set_id.encode()):
        raise BiometricSetChanged()
    verify_biometric_signature(credential.public_key_pem, signing_payload(challenge_id, txn),
                               _unb64url(signature_b64url, "signature"))
    return BiometricResult(challenge_id, digest, credential.credential_id, credential.modality)


def _check_usable(credential: BiometricCredential) -> None:
    if credential.revoked_at is not None:
        raise CredentialRevoked()


def _check_state(state: dict[str, object], kind: str, now: float) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise BadToolInput("not a biometric ceremony state")
    expires_at = state.get("expires_at")
    if not isinstance(expires_at, int | float) or now >= expires_at:
        raise ChallengeExpired()

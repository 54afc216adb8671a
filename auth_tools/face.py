"""Server-side face match by an external provider (``face``).

riskgate does not compare faces. The bank's liveness / face-match vendor
does, against the reference photo it holds for the customer; riskgate only
checks the vendor's signed verdict. The contract (docs/face-provider.md):

1. ``begin`` makes a random face-session ``nonce`` bound, in the ceremony
   state, to the challenge id, the ``txn_hash`` and the user. The app hands
   the nonce to the vendor SDK, which sends it to the provider with the
   selfie.
2. The provider answers the app with a compact JWS (ES256, the provider's
   key) whose claims are ``iss`` (the provider), ``aud`` (``"riskgate"``),
   ``sub`` (the riskgate user id), ``nonce``, ``match`` and ``liveness``
   (booleans), ``score`` (0..1), ``iat`` and ``exp``.
3. ``complete`` takes that token: signature (ES256 only), issuer, audience,
   a short and current lifetime, the nonce of this ceremony, the user, both
   booleans true and the score at or above the threshold. Every failure is
   :class:`VerificationFailed`, never saying which part was wrong.

A passed match is inherence only: RFC 8176 ``face``. The tier table decides
which combinations it is part of.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from auth_tools.dynamic_linking import Transaction, format_amount, txn_hash
from auth_tools.errors import BadToolInput, ChallengeExpired, VerificationFailed

__all__ = [
    "AUDIENCE",
    "AMR",
    "MAX_TOKEN_LIFETIME",
    "FacePolicy",
    "FaceClaims",
    "FaceResult",
    "load_provider_keys",
    "verify_face_result",
    "begin",
    "complete",
]

AUDIENCE = "riskgate"
AMR = ("face",)
# A result token is used seconds after the selfie: it may live at most this long.
MAX_TOKEN_LIFETIME = 300.0
# Tolerated clock difference between the provider and the gateway.
CLOCK_SKEW = 30.0
_MAX_TOKEN_CHARS = 8192
_CHALLENGE_KIND = "face_challenge"


@dataclass(frozen=True, slots=True)
class FacePolicy:
    """Who is trusted to say "this is the customer", and how sure they must be."""

    issuer: str
    keys: tuple[ECKey, ...]
    min_score: float = 0.8

    def __post_init__(self) -> None:
        if not self.issuer or not self.keys:
            raise ValueError("a face policy needs the provider's issuer and at least one key")
        if not 0.0 < self.min_score <= 1.0:
            raise ValueError("min_score must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class FaceClaims:
    """The verified claims of a provider's result token."""

    issuer: str
    subject: str
    nonce: str
    score: float
    issued_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class FaceResult:
    """A verified face match for one challenge and transaction."""

    challenge_id: str
    txn_hash: str
    score: float

    @property
    def amr(self) -> tuple[str, ...]:
        return AMR


def _public_ec_key(key: ECKey) -> ECKey:
    if key.as_dict(private=False).get("crv") != "P-256":
        raise ValueError("the face provider key must be an EC P-256 (ES256) key")
    if key.is_private:
        raise ValueError("configure the face provider's public key, not its private key")
    return key


def load_provider_keys(text: str) -> tuple[ECKey, ...]:
    """The provider's public keys from a SPKI PEM, a JWK or a JWK set (JSON text).

    Only EC P-256 public keys are accepted (ES256). Raises ``ValueError``
    with a reason an operator can act on.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            return (_public_ec_key(ECKey.import_key(text)),)
        doc = orjson.loads(text)
        entries = doc.get("keys") if isinstance(doc, dict) and "keys" in doc else [doc]
        if not isinstance(entries, list) or not entries:
            raise ValueError("the JWK set holds no keys")
        keys = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("kty") != "EC":
                raise ValueError("the face provider key must be an EC P-256 (ES256) key")
            keys.append(_public_ec_key(ECKey.import_key(entry)))
        return tuple(keys)
    except orjson.JSONDecodeError as exc:
        raise ValueError("not a PEM public key, a JWK or a JWK set") from exc
    except (JoseError, TypeError, KeyError) as exc:
        raise ValueError(f"the face provider key could not be read: {exc}") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _same(a: object, b: str) -> bool:
    return isinstance(a, str) and hmac.compare_digest(a.encode(), b.encode())


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _candidate_keys(token: str, keys: Iterable[ECKey]) -> list[ECKey]:
    """The key the header's ``kid`` names, or every key when it names none."""
    keys = list(keys)
    try:
        header = orjson.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
    except (ValueError, orjson.JSONDecodeError):
        return keys
    kid = header.get("kid") if isinstance(header, dict) else None
    named = [k for k in keys if kid is not None and k.kid == kid]
    return named or keys


def _signed_claims(token: str, keys: Iterable[ECKey]) -> dict[str, object]:
    for key in _candidate_keys(token, keys):
        try:
            signed = jws.deserialize_compact(token, key, algorithms=["ES256"])
        except (JoseError, ValueError, TypeError):
            continue
        try:
            claims = orjson.loads(signed.payload)
        except orjson.JSONDecodeError:
            break
        if isinstance(claims, dict):
            return claims
        break
    raise VerificationFailed()


def _audience_ok(aud: object) -> bool:
    if isinstance(aud, list):
        return any(_same(a, AUDIENCE) for a in aud)
    return _same(aud, AUDIENCE)


def verify_face_result(token: object, policy: FacePolicy, *, expected_nonce: str,
                       expected_subject: str, now: float) -> FaceClaims:
    """Check a provider's result token; raise :class:`VerificationFailed` on any fault.

    ``expected_nonce`` is the nonce issued for this ceremony and
    ``expected_subject`` the user being authenticated; ``now`` is the
    verification time (seconds since the epoch).
    """
    if not isinstance(token, str) or not token:
        raise BadToolInput("token is required (the face provider's compact JWS)")
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 2:
        raise VerificationFailed()
    claims = _signed_claims(token, policy.keys)
    iat, exp, score = _number(claims.get("iat")), _number(claims.get("exp")), _number(claims.get("score"))
    ok = _same(claims.get("iss"), policy.issuer)
    ok &= _audience_ok(claims.get("aud"))
    ok &= _same(claims.get("sub"), expected_subject)
    ok &= _same(claims.get("nonce"), expected_nonce)
    ok &= claims.get("match") is True and claims.get("liveness") is True
    ok &= score is not None and 0.0 <= score <= 1.0 and score >= policy.min_score
    ok &= (iat is not None and exp is not None and iat <= now + CLOCK_SKEW and now < exp
           and 0 < exp - iat <= MAX_TOKEN_LIFETIME)
    if not ok:
        raise VerificationFailed()
    return FaceClaims(str(claims["iss"]), str(claims["sub"]), str(claims["nonce"]),
                      float(score), float(iat), float(exp))  # type: ignore[arg-type]


def begin(challenge_id: str, txn: Transaction, user_id: str, now: float, *,
          provider_url: str = "", ttl: float = 120.0) -> tuple[dict[str, object], dict[str, object]]:
    """Start a face session for the challenge.

    Returns ``(options, state)``: options carry the ``nonce`` the vendor SDK
    sends with the selfie and the provider's URL; the state binds the nonce
    to the challenge, the transaction hash and the user.
    """
    nonce = _b64url(secrets.token_bytes(32))
    digest = txn_hash(txn)
    options: dict[str, object] = {
        "tool": "face",
        "nonce": nonce,
        "provider_url": provider_url,
        "sub": user_id,
        "audience": AUDIENCE,
        "txn_hash": digest,
        "prompt": f"Look at the camera to approve {txn.action} of {format_amount(txn.amount)} {txn.currency}",
        "expires_in": ttl,
    }
    state: dict[str, object] = {"kind": _CHALLENGE_KIND, "challenge_id": challenge_id, "txn_hash": digest,
                                "user_id": user_id, "nonce": nonce, "expires_at": now + ttl}
    return options, state


def complete(state: Mapping[str, object], token: object, policy: FacePolicy, now: float, *,
             challenge_id: str, txn: Transaction, user_id: str) -> FaceResult:
    """Verify the provider's result for the challenge and transaction being approved."""
    if not isinstance(state, Mapping) or state.get("kind") != _CHALLENGE_KIND:
        raise BadToolInput("not a face ceremony state")
    expires_at = _number(state.get("expires_at"))
    if expires_at is None or now >= expires_at:
        raise ChallengeExpired()
    digest = txn_hash(txn)
    bound = _same(state.get("challenge_id"), challenge_id)
    bound &= _same(state.get("txn_hash"), digest)
    bound &= _same(state.get("user_id"), user_id)
    nonce = state.get("nonce")
    if not bound or not isinstance(nonce, str):
        raise VerificationFailed()
    claims = verify_face_result(token, policy, expected_nonce=nonce, expected_subject=user_id, now=now)
    return FaceResult(challenge_id, digest, claims.score)

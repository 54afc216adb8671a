"""The signed assertion the upstream trusts (``X-Riskgate-Assertion``).

A compact JWS, ES256, ``kid`` in the header. Claims are documented in
docs/assertion.md; claims owned by later stages (risk, limit) are added by
those stages and never filled with placeholders.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import orjson
from joserfc import jws

from auth_tools.dynamic_linking import Transaction, format_amount, txn_hash
from gateway.signing_keys import SigningKeyStore

__all__ = ["AssertionClaims", "AssertionSigner"]


@dataclass(frozen=True, slots=True)
class AssertionClaims:
    sub: str
    sid: str
    device_id: str
    device_status: str
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    decision_id: str
    txn: Transaction | None = None
    # Money movement: {"tier_limit": "...", "remaining_today": "..."} (CNY strings; None = unlimited)
    limit: dict[str, object] | None = None
    # {"score", "level", "model", "rules"} from the risk engine
    risk: dict[str, object] | None = None


class AssertionSigner:
    def __init__(self, keys: SigningKeyStore, *, issuer: str, audience: str, lifetime: int) -> None:
        self._keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime

    async def sign(self, claims: AssertionClaims, now: float) -> tuple[str, dict[str, object]]:
        key = await self._keys.current(now)
        iat = int(now)
        payload: dict[str, object] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": claims.sub,
            "iat": iat,
            "exp": iat + self.lifetime,
            "jti": secrets.token_urlsafe(16),
            "sid": claims.sid,
            "dev": {"id": claims.device_id, "status": claims.device_status},
            "acr": claims.acr,
            "amr": list(claims.amr),
            "auth_time": claims.auth_time,
            "decision_id": claims.decision_id,
        }
        if claims.txn is not None:
            payload["txn"] = {
                "hash": txn_hash(claims.txn),
                "action": claims.txn.action,
                "amount": format_amount(claims.txn.amount),
                "currency": claims.txn.currency,
                "payee": claims.txn.payee,
            }
        if claims.risk is not None:
            payload["risk"] = claims.risk
        if claims.limit is not None:
            payload["limit"] = claims.limit
        token = jws.serialize_compact({"alg": "ES256", "kid": key.kid, "typ": "JWT"},
                                      orjson.dumps(payload), key.private, algorithms=["ES256"])
        return token, payload

"""Helpers for the upstream tests: account numbers, a JWKS server, an assertion minter."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from joserfc import jws
from joserfc.jwk import ECKey

from auth_tools.dynamic_linking import Transaction, format_amount, parse_amount, txn_hash

ALICE_MAIN = "6222020000000001"
ALICE_II = "6222020000000002"
BOB = "6222020000000003"
CAROL = "6222020000000004"
UTILITY = "6217000000000099"


@dataclass
class JwksServer:
    """A real HTTP server publishing a JWKS the test controls; counts fetches."""

    url: str = ""
    keys: list[ECKey] = field(default_factory=list)
    fetches: int = 0
    status: int = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.fetches += 1
        doc = {"keys": [k.as_dict(private=False) for k in self.keys]}
        return web.Response(body=orjson.dumps(doc), status=self.status, content_type="application/json")


def new_key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


class Minter:
    """Signs assertions the way the gateway does (gateway/assertion.py)."""

    def __init__(self, key: ECKey) -> None:
        self.key = key

    def claims(self, user: str = "alice", txn: Transaction | None = None, **overrides: Any) -> dict:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "riskgate", "aud": "riskgate-upstream", "sub": user, "iat": now, "exp": now + 30,
            "jti": secrets.token_urlsafe(16), "sid": "s-" + secrets.token_hex(4),
            "dev": {"id": f"{user}.dev", "status": "bound"}, "acr": "T1", "amr": ["pwd"],
            "auth_time": now - 10, "decision_id": "d-" + secrets.token_hex(4),
        }
        if txn is not None:
            claims["txn"] = {"hash": txn_hash(txn), "action": txn.action,
                             "amount": format_amount(txn.amount), "currency": txn.currency,
                             "payee": txn.payee}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict, *, key: ECKey | None = None, kid: str | None = None) -> str:
        key = key or self.key
        header = {"alg": "ES256", "kid": kid or key.kid, "typ": "JWT"}
        return jws.serialize_compact(header, orjson.dumps(claims), key, algorithms=["ES256"])

    def token(self, user: str = "alice", txn: Transaction | None = None, **overrides: Any) -> str:
        return self.sign(self.claims(user, txn, **overrides))


def transfer_txn(body: dict) -> Transaction:
    return Transaction("transfer", parse_amount(body["amount"]), body.get("currency", "CNY"),
                       body["from_account"], body["payee_account"])

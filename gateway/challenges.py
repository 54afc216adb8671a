"""Step-up challenges and approvals, kept in Redis under the user's hash tag.

A challenge is created when a request needs a higher tier than its session
has. It holds the transaction exactly as the user must see it, its hash, the
tier required, and per tool the ceremony state and the completed results.
When the completed tools satisfy the tier, the challenge is deleted and a
single-use approval token is issued, bound to session, device and txn_hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis

from auth_tools.dynamic_linking import Transaction, txn_hash
from device_fingerprint.registry import user_tag
from gateway.errors import GatewayError, Unauthorized

__all__ = ["Approval", "Challenge", "ChallengeStore"]

_ID_RE = re.compile(r"^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{22})$")
_APPROVAL_RE = re.compile(r"^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$")


class ChallengeNotFound(GatewayError):
    status = 404
    code = "challenge_not_found"
    message = "the challenge does not exist, has expired or was already used"


@dataclass
class Challenge:
    challenge_id: str
    user_id: str
    device_id: str
    sid: str
    txn: Transaction
    required_tier: int
    created: float
    expires_at: float
    states: dict[str, dict[str, object]] = field(default_factory=dict)
    completed: dict[str, dict[str, object]] = field(default_factory=dict)
    bound_device: bool = False
    decision_id: str = ""  # the risk decision that asked for this step-up (for weak labels)
    # When set, only these tool combinations approve (online activation), not the tier table.
    rows: list[list[str]] = field(default_factory=list)

    @property
    def txn_hash(self) -> str:
        return txn_hash(self.txn)

    def to_json(self) -> bytes:
        return orjson.dumps({
            "user": self.user_id, "device": self.device_id, "sid": self.sid,
            "txn": {"action": self.txn.action, "amount": self.txn.amount, "currency": self.txn.currency,
                    "source": self.txn.source, "payee": self.txn.payee},
            "tier": self.required_tier, "created": self.created, "expires_at": self.expires_at,
            "states": self.states, "completed": self.completed, "bound": self.bound_device,
            "decision": self.decision_id, **({"rows": self.rows} if self.rows else {}),
        })

    @classmethod
    def from_json(cls, challenge_id: str, raw: bytes) -> Challenge:
        doc = orjson.loads(raw)
        t = doc["txn"]
        return cls(challenge_id, doc["user"], doc["device"], doc["sid"],
                   Transaction(t["action"], t["amount"], t["currency"], t["source"], t["payee"]),
                   doc["tier"], doc["created"], doc["expires_at"], doc["states"], doc["completed"],
                   bool(doc.get("bound")), str(doc.get("decision", "")),
                   [list(map(str, row)) for row in doc.get("rows", [])])


@dataclass(frozen=True, slots=True)
class Approval:
    user_id: str
    device_id: str
    sid: str
    txn_hash: str
    acr: str
    amr: tuple[str, ...]
    tools: tuple[str, ...]
    approved_at: float
    extra: dict[str, object] = field(default_factory=dict, compare=False)


def user_of_id(identifier: str, pattern: re.Pattern[str]) -> str | None:
    m = pattern.match(identifier)
    return m.group(1) if m else None


class ChallengeStore:
    def __init__(self, redis: Redis, *, challenge_ttl: int, approval_ttl: int) -> None:
        self._redis = redis
        self.challenge_ttl = challenge_ttl
        self.approval_ttl = approval_ttl

    @staticmethod
    def _key(challenge_id: str) -> str:
        user = user_of_id(challenge_id, _ID_RE)
        if user is None:
            raise ChallengeNotFound()
        return f"{user_tag(user)}:chal:{challenge_id}"

    async def create(self, *, user_id: str, device_id: str, sid: str, txn: Transaction,
                     required_tier: int, now: float, bound_device: bool = False,
                     decision_id: str = "", rows: list[list[str]] | None = None) -> Challenge:
        challenge = Challenge(f"{user_id}.{secrets.token_urlsafe(16)}", user_id, device_id, sid, txn,
                              required_tier, now, now + self.challenge_ttl,
                              bound_device=bound_device, decision_id=decision_id, rows=list(rows or []))
        await self._redis.set(self._key(challenge.challenge_id), challenge.to_json(), ex=self.challenge_ttl)
        return challenge

    async def load(self, challenge_id: str, *, sid: str, device_id: str, now: float) -> Challenge:
        raw = await self._redis.get(self._key(challenge_id))
        if raw is None:
            raise ChallengeNotFound()
        challenge = Challenge.from_json(challenge_id, raw)
        if challenge.sid != sid or challenge.device_id != device_id:
            # Another session's challenge: indistinguishable from a missing one.
            raise ChallengeNotFound()
        if now >= challenge.expires_at:
            raise ChallengeNotFound()
        return challenge

    async def save(self, challenge: Challenge, now: float) -> None:
        ttl = max(1, int(challenge.expires_at - now))
        await self._redis.set(self._key(challenge.challenge_id), challenge.to_json(), ex=ttl, xx=True)

    async def delete(self, challenge_id: str) -> None:
        await self._redis.delete(self._key(challenge_id))

    async def approve(self, challenge: Challenge, *, acr: str, amr: tuple[str, ...],
                      tools: tuple[str, ...], now: float, extra: dict[str, object] | None = None) -> str:
        """Replace the challenge by a single-use approval token."""
        token = f"{challenge.user_id}.{secrets.token_urlsafe(32)}"
        doc = orjson.dumps({"user": challenge.user_id, "device": challenge.device_id, "sid": challenge.sid,
                            "txn_hash": challenge.txn_hash, "acr": acr, "amr": list(amr),
                            "tools": list(tools), "at": now, "extra": extra or {}})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._approval_key(token), doc, ex=self.approval_ttl)
            pipe.delete(self._key(challenge.challenge_id))
            await pipe.execute()
        return token

    @staticmethod
    def _approval_key(token: str) -> str:
        user = user_of_id(token, _APPROVAL_RE)
        if user is None:
            raise Unauthorized("approval_invalid", "the approval token is not valid")
        return f"{user_tag(user)}:appr:{hashlib.sha256(token.encode()).hexdigest()}"

    async def consume_approval(self, token: str, *, sid: str, device_id: str, txn_hash_hex: str) -> Approval:
        """Take the approval (deleted whatever the outcome) and check its bindings."""
        raw = await self._redis.getdel(self._approval_key(token))
        if raw is None:
            raise Unauthorized("approval_invalid", "the approval token has expired or was already used")
        doc = orjson.loads(raw)
        if doc["sid"] != sid or doc["device"] != device_id:
            raise Unauthorized("approval_invalid", "the approval belongs to another session or device")
        if doc["txn_hash"] != txn_hash_hex:
            raise Unauthorized("approval_mismatch",
                               "the approval was given for another transaction (amount or payee differ)")
        return Approval(doc["user"], doc["device"], doc["sid"], doc["txn_hash"], doc["acr"],
                        tuple(doc["amr"]), tuple(doc["tools"]), doc["at"], doc.get("extra", {}))

"""A verifiable audit trail of console changes: an append-only hash chain in Redis.

Each entry is ``seq, at, actor, action, details, prev_hash, hash`` where ``hash``
is the SHA-256 (hex) of the canonical JSON (sorted keys, no spaces) of the other
fields and ``prev_hash`` is the previous entry's hash (64 zeros for the first).
Changing, removing or reordering any entry breaks the chain at that entry;
dropping entries at the end is caught against the head record.

Keys (one hash tag, so the append script stays in one cluster slot):

    {console:audit}:log     list of entry JSON, entry ``seq`` at index seq - 1
    {console:audit}:head    hash: seq, hash of the last entry
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = [
    "GENESIS_HASH",
    "AuditAppendConflict",
    "AuditEntry",
    "AuditTrail",
    "AuditTrailError",
    "AuditUnavailable",
    "ChainVerification",
    "entry_hash",
    "verify_chain",
]

TAG = "{console:audit}"
LOG_KEY = f"{TAG}:log"
HEAD_KEY = f"{TAG}:head"
GENESIS_HASH = "0" * 64
_APPEND_RETRIES = 20
_PAGE = 1000

# Append only if the head is still what the caller hashed against (optimistic:
# Redis Lua has no SHA-256, so the hash is computed in Python).
_APPEND_LUA = """
local seq = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local head = redis.call('HGET', KEYS[2], 'hash') or ARGV[4]
if seq ~= tonumber(ARGV[1]) - 1 or head ~= ARGV[2] then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('HSET', KEYS[2], 'seq', ARGV[1], 'hash', ARGV[5])
return 1
"""


class AuditTrailError(Exception):
    code = "audit_error"
    message = "the audit trail failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.message
        super().__init__(self.message)


class AuditUnavailable(AuditTrailError):
    code = "audit_unavailable"
    message = "the audit trail cannot be read or written"


class AuditAppendConflict(AuditTrailError):
    code = "audit_append_conflict"
    message = "the audit trail kept moving while appending; try again"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "actor": self.actor, "action": self.action,
                "details": self.details, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class ChainVerification:
    ok: bool
    entries: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_hash": self.head_hash,
                "first_broken_seq": self.first_broken_seq, "problem": self.problem}


def entry_hash(seq: int, at: float, actor: str, action: str, details: Mapping[str, Any],
               prev_hash: str) -> str:
    """SHA-256 hex over the canonical JSON of everything but the hash itself."""
    body = orjson.dumps({"seq": seq, "at": at, "actor": actor, "action": action,
                         "details": details, "prev_hash": prev_hash},
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _check(doc: dict[str, Any] | None, seq: int, prev_hash: str) -> str:
    """Why the entry expected at ``seq`` is not valid, or "" when it is."""
    if doc is None:
        return "entry is not a JSON object"
    try:
        if doc["seq"] != seq:
            return f"entry carries seq {doc['seq']!r}, expected {seq}"
        if not hmac.compare_digest(str(doc["prev_hash"]), prev_hash):
            return "prev_hash does not match the previous entry's hash"
        computed = entry_hash(doc["seq"], doc["at"], doc["actor"], doc["action"],
                              doc["details"], doc["prev_hash"])
    except (KeyError, TypeError) as exc:
        return f"entry is malformed ({exc})"
    if not hmac.compare_digest(str(doc.get("hash")), computed):
        return "hash does not match the entry's contents"
    return ""


def _verify_run(raw_entries: list[bytes], start_seq: int, prev_hash: str) -> ChainVerification:
    """Check the links of consecutive entries starting at ``start_seq``."""
    seq = start_seq - 1
    for raw in raw_entries:
        seq += 1
        doc = _parse(raw)
        problem = _check(doc, seq, prev_hash)
        if problem:
            return ChainVerification(False, seq - 1, prev_hash, seq, problem)
        prev_hash = doc["hash"]  # type: ignore[index]
    return ChainVerification(True, seq, prev_hash)


def _against_head(run: ChainVerification, head_seq: int, head_hash: str) -> ChainVerification:
    if not run.ok:
        return run
    if run.entries != head_seq or not hmac.compare_digest(run.head_hash, head_hash):
        broken = run.entries + 1 if run.entries < head_seq else run.entries
        return ChainVerification(False, run.entries, run.head_hash, broken,
                                 f"the chain ends at seq {run.entries} but the head record says "
                                 f"{head_seq}; entries were removed or rewritten")
    return run


def verify_chain(raw_entries: list[bytes], *, head_seq: int, head_hash: str) -> ChainVerification:
    """Pure check of the whole stored chain against the head record."""
    return _against_head(_verify_run(raw_entries, 1, GENESIS_HASH), head_seq, head_hash)


def _as_entry(raw: bytes, position: int) -> AuditEntry:
    """An entry as stored; one too damaged to read shows as ``unreadable`` at its position."""
    doc = _parse(raw)
    try:
        if doc is None:
            raise TypeError("not a JSON object")
        return AuditEntry(int(doc["seq"]), float(doc["at"]), str(doc["actor"]), str(doc["action"]),
                          dict(doc["details"]), str(doc["prev_hash"]), str(doc["hash"]))
    except (KeyError, TypeError, ValueError):
        return AuditEntry(position, 0.0, "", "unreadable", {}, "", "")


class AuditTrail:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._append = redis.register_script(_APPEND_LUA)

    async def append(self, *, actor: str, action: str, details: Mapping[str, Any],
                     now: float) -> AuditEntry:
        """Add one entry at the end of the chain and return it."""
        plain = orjson.loads(orjson.dumps(details))  # JSON-native values only, as verify sees them
        for _ in range(_APPEND_RETRIES):
            seq, prev = await self._head()
            seq += 1
            digest = entry_hash(seq, now, actor, action, plain, prev)
            entry = AuditEntry(seq, now, actor, action, plain, prev, digest)
            try:
                done = await self._append(
                    keys=[LOG_KEY, HEAD_KEY],
                    args=[seq, prev, orjson.dumps(entry.to_dict()), GENESIS_HASH, digest])
            except RedisError as exc:
                raise AuditUnavailable(f"appending to the audit trail failed: {exc}") from exc
            if int(done) == 1:
                return entry
        raise AuditAppendConflict()

    async def _head(self) -> tuple[int, str]:
        try:
            seq, digest = await self._redis.hmget(HEAD_KEY, ["seq", "hash"])
        except RedisError as exc:
            raise AuditUnavailable(f"reading the audit head failed: {exc}") from exc
        return (int(seq), digest.decode()) if seq is not None else (0, GENESIS_HASH)

    async def entries(self, *, count: int = 100, before_seq: int | None = None
                      ) -> list[AuditEntry]:
        """Up to ``count`` entries, newest first, ending before ``before_seq`` if given.

        Entries are returned as stored; use ``verify`` to know they are genuine."""
        head, _ = await self._head()
        last = head if before_seq is None else min(head, before_seq - 1)
        if last < 1:
            return []
        first = max(1, last - count + 1)
        try:
            rows = await self._redis.lrange(LOG_KEY, first - 1, last - 1)
        except RedisError as exc:
            raise AuditUnavailable(f"reading the audit trail failed: {exc}") from exc
        return [_as_entry(raw, seq) for seq, raw in reversed(list(enumerate(rows, start=first)))]

    async def verify(self) -> ChainVerification:
        """Recompute the whole chain; report the first entry that does not hold."""
        head_seq, head_hash = await self._head()
        run = ChainVerification(True, 0, GENESIS_HASH)
        try:
            # only up to the head read above: entries appended meanwhile are not judged
            while run.ok and run.entries < head_seq:
                start = run.entries + 1
                rows = await self._redis.lrange(LOG_KEY, start - 1,
                                                min(start - 1 + _PAGE, head_seq) - 1)
                if not rows:
                    break
                run = _verify_run(rows, start, run.head_hash)
        except RedisError as exc:
            raise AuditUnavailable(f"reading the audit trail failed: {exc}") from exc
        return _against_head(run, head_seq, head_hash)

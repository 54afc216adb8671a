"""Hash chains over the decision stream: every recorded decision is linked to the one
recorded before it by the same writer, so changing, removing or reordering a decision
is found by recomputing the chain.

Each gateway process writes its own chain (a random ``chain`` id), so writers never
wait for one another; a stream entry carries, beside the event JSON ``e``:

    c   the chain id
    p   the previous entry's hash in that chain (64 zeros for the first)
    h   SHA-256 hex of ``p + "\\n" + e``

and, in the stream's hash slot:

    {risk:decisions}:chain:heads    hash: chain id -> hash of its last entry
    {risk:decisions}:chain:starts   hash: chain id -> stream id of its first entry

The recording script appends only while the stored head is the one the hashes were
computed from (a writer whose view is stale re-reads it and recomputes). The stream
is trimmed (MAXLEN ~): a chain whose first entries are older than the oldest entry
kept is checked from its first kept entry; a chain that began after it must be whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine.errors import RiskStateUnavailable

__all__ = ["GENESIS", "DecisionChain", "DecisionChainVerification", "chain_hash", "loop_chain",
           "verify_decision_chains"]

GENESIS = "0" * 64
_ATTEMPTS = 5
_PAGE = 1000


def chain_hash(prev: str, event_json: bytes) -> str:
    return hashlib.sha256(prev.encode() + b"\n" + event_json).hexdigest()


# KEYS: stream, heads, starts, index key per event
# ARGV: maxlen, index ttl, chain id, expected head, new head, then (json, prev, hash) per event
RECORD_CHAINED_LUA = """
local cur = redis.call('HGET', KEYS[2], ARGV[3])
if (cur or '""" + GENESIS + """') ~= ARGV[4] then return {0, cur or ''} end
local ids = {}
local n = (#ARGV - 5) / 3
for i = 1, n do
  local b = 5 + 3 * (i - 1)
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
                        'e', ARGV[b + 1], 'c', ARGV[3], 'p', ARGV[b + 2], 'h', ARGV[b + 3])
  redis.call('SET', KEYS[3 + i], id, 'EX', ARGV[2])
  if i == 1 and not cur then redis.call('HSET', KEYS[3], ARGV[3], id) end
  ids[#ids + 1] = id
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[5])
return {1, ids}
"""


class DecisionChain:
    """One writer's chain. Appends are serialised within the process (a lock) and
    checked against the stored head in Redis (the script)."""

    def __init__(self, chain_id: str | None = None) -> None:
        self.chain_id = chain_id or f"c{secrets.token_hex(8)}"
        self._head = GENESIS
        self._lock: asyncio.Lock | None = None

    async def append(self, redis: Redis, stream: str, heads: str, starts: str,
                     index_keys: Sequence[str], events: Sequence[bytes], *, maxlen: int,
                     index_ttl: int) -> list[str]:
        """Record ``events`` (JSON) linked to this chain; their stream ids."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        script = redis.register_script(RECORD_CHAINED_LUA)  # EVALSHA, loaded once per server
        async with self._lock:
            head = self._head
            for _ in range(_ATTEMPTS):
                links, prev = [], head
                for e in events:
                    h = chain_hash(prev, e)
                    links += [e, prev, h]
                    prev = h
                try:
                    done, value = await script(
                        keys=[stream, heads, starts, *index_keys],
                        args=[maxlen, index_ttl, self.chain_id, head, prev, *links])
                except RedisError as exc:
                    raise RiskStateUnavailable(f"recording decisions failed: {exc}") from exc
                if int(done) == 1:
                    self._head = prev
                    return [i.decode() for i in value]
                # another Redis than the one this chain last wrote to, or a write whose
                # answer was lost: the stored head is the truth for this writer
                head = value.decode() if value else GENESIS
            raise RiskStateUnavailable("recording decisions failed: the chain head kept moving")


_LOOP_CHAINS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DecisionChain] = \
    weakref.WeakKeyDictionary()


def loop_chain() -> DecisionChain:
    """The chain of this event loop: one per gateway process (its one loop)."""
    loop = asyncio.get_running_loop()
    chain = _LOOP_CHAINS.get(loop)
    if chain is None:
        chain = _LOOP_CHAINS[loop] = DecisionChain()
    return chain


@dataclass(frozen=True, slots=True)
class DecisionChainVerification:
    ok: bool
    decisions: int  # entries whose link verified
    chains: int
    unchained: int = 0  # entries recorded before chaining began
    trimmed_chains: int = 0  # chains whose first entries were trimmed away with the stream
    first_broken_id: str | None = None  # stream id of the first entry that does not verify
    first_broken_decision: str | None = None
    chain: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "summary": self.summary()}

    def summary(self) -> str:
        """One line for people: intact with counts, or where and why it broke."""
        if self.ok:
            extra = "".join([f", {self.unchained} recorded before chaining" if self.unchained else "",
                             f", {self.trimmed_chains} chain(s) begin before the oldest decision kept"
                             if self.trimmed_chains else ""])
            return f"decision chains intact: {self.decisions} decisions in {self.chains} chain(s){extra}"
        where = (f"decision {self.first_broken_decision} (stream entry {self.first_broken_id})"
                 if self.first_broken_id else "its end")
        return (f"decision chain {self.chain} BROKEN at {where}: {self.problem} "
                f"({self.decisions} decisions before it verify)")


def _decision_id(raw: bytes) -> str | None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc.get("decision_id") if isinstance(doc, dict) else None


async def verify_decision_chains(redis: Redis, stream: str, heads: str,
                                 starts: str) -> DecisionChainVerification:
    """Walk the stream oldest first and recompute every chain; name the first entry that
    does not hold (its contents, its link to the one before, or a missing end)."""
    try:
        stored_heads = {k.decode(): v.decode() for k, v in (await redis.hgetall(heads)).items()}
        stored_starts = {k.decode(): v.decode() for k, v in (await redis.hgetall(starts)).items()}
    except RedisError as exc:
        raise RiskStateUnavailable(f"reading the decision chains failed: {exc}") from exc
    last: dict[str, str] = {}
    first_kept: str | None = None
    verified = unchained = 0
    cursor = "-"

    def broken(sid: str | None, raw: bytes | None, chain: str | None,
               problem: str) -> DecisionChainVerification:
        return DecisionChainVerification(False, verified, len(stored_heads), unchained,
                                         first_broken_id=sid,
                                         first_broken_decision=_decision_id(raw) if raw else None,
                                         chain=chain, problem=problem)

    while True:
        try:
            rows = await redis.xrange(stream, min=cursor, max="+", count=_PAGE)
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading decisions failed: {exc}") from exc
        for rid, f in rows:
            sid = rid.decode()
            first_kept = first_kept or sid
            e, c = f.get(b"e"), f.get(b"c")
            if c is None:
                if last:
                    return broken(sid, e, None, "an entry without a chain link after chaining began")
                unchained += 1
                continue
            chain, p, h = c.decode(), f.get(b"p", b"").decode(), f.get(b"h", b"").decode()
            if e is None or not hmac.compare_digest(chain_hash(p, e), h):
                return broken(sid, e, chain, "its contents do not match its hash")
            if chain in last:
                if p != last[chain]:
                    return broken(sid, e, chain, "it does not follow the entry before it in its chain "
                                                 "(an entry was removed or moved)")
            elif p != GENESIS:
                start = stored_starts.get(chain)
                if start is None or _id_key(start) >= _id_key(first_kept):
                    return broken(sid, e, chain, "the first entries of its chain are missing "
                                                 "(newer than the oldest entry kept)")
            last[chain] = h
            verified += 1
        if len(rows) < _PAGE:
            break
        cursor = "(" + rows[-1][0].decode()
    trimmed = 0
    for chain, head in sorted(stored_heads.items()):
        if chain in last:
            if last[chain] != head:
                return broken(None, None, chain, "entries at the end of its chain are missing")
            start = stored_starts.get(chain)
            if start and first_kept and _id_key(start) < _id_key(first_kept):
                trimmed += 1
        else:
            start = stored_starts.get(chain)
            if start is None or first_kept is None or _id_key(start) >= _id_key(first_kept):
                return broken(None, None, chain, "every entry of the chain is missing")
            trimmed += 1
    for chain in last:
        if chain not in stored_heads:
            return broken(None, None, chain, "a chain the gateway never recorded a head for")
    return DecisionChainVerification(True, verified, len(stored_heads), unchained, trimmed)


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)

"""Rule sets versioned in Redis: publish (validated, with author and reason), roll back,
and a per-process source that picks up a new active version within a second.

Keys (global, not per user; one hash tag, so the publish script stays in one
Redis Cluster slot):

    {risk:rules}:seq        last version number handed out
    {risk:rules}:v:<n>      rule set JSON of version n (immutable once written)
    {risk:rules}:active     the version every gateway evaluates
    {risk:rules}:audit      stream of publish / rollback records (who, why, when)

Keys written before the tag (``risk:rules:*``) are moved on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine.errors import (
    RiskStateUnavailable,
    RuleProblem,
    RuleSetInvalid,
    RuleSetNotFound,
)
from risk_engine.key_moves import move_keys
from risk_engine.refresh import PeriodicRefresh
from risk_engine.rules import CompiledRuleSet, RuleSet
from risk_engine.schema import FEATURE_SCHEMA, FeatureType
from risk_engine.validation import compile_rule_set

__all__ = ["RuleAuditEntry", "RuleSource", "RuleStore"]

PREFIX = "{risk:rules}"
LEGACY_PREFIX = "risk:rules"

_PUBLISH_LUA = """
local n = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2] .. n, ARGV[1])
local previous = redis.call('GET', KEYS[3]) or ''
redis.call('SET', KEYS[3], n)
redis.call('XADD', KEYS[4], '*', 'action', 'publish', 'version', n, 'previous', previous,
           'author', ARGV[2], 'reason', ARGV[3], 'at', ARGV[4])
return n
"""

_ROLLBACK_LUA = """
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local previous = redis.call('GET', KEYS[3]) or ''
redis.call('SET', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[4], '*', 'action', 'rollback', 'version', ARGV[1], 'previous', previous,
           'author', ARGV[2], 'reason', ARGV[3], 'at', ARGV[4])
return tonumber(ARGV[1])
"""


@dataclass(frozen=True, slots=True)
class RuleAuditEntry:
    action: str  # publish | rollback
    version: int
    previous: int | None
    author: str
    reason: str
    at: float


class RuleStore:
    def __init__(self, redis: Redis, schema: Mapping[str, FeatureType] = FEATURE_SCHEMA) -> None:
        self._redis = redis
        self._schema = schema
        self._publish = redis.register_script(_PUBLISH_LUA)
        self._rollback = redis.register_script(_ROLLBACK_LUA)
        self._moved = False

    async def _move_legacy(self) -> None:
        """Once per process: move rule sets stored before the keys gained their hash tag."""
        if self._moved:
            return
        try:
            seq = int(await self._redis.get(f"{LEGACY_PREFIX}:seq") or 0)
            names = ["seq", "active", "audit", *(f"v:{n}" for n in range(1, seq + 1))]
            await move_keys(self._redis, [(f"{LEGACY_PREFIX}:{n}", f"{PREFIX}:{n}") for n in names])
        except RedisError as exc:
            raise RiskStateUnavailable(f"moving stored rule sets failed: {exc}") from exc
        self._moved = True

    async def publish(self, rule_set: RuleSet, *, author: str, reason: str, now: float) -> int:
        """Validate, store as a new version and make it active. Returns the version.

        Raises RuleSetInvalid (nothing is written) when validation fails.
        """
        if not author.strip() or not reason.strip():
            raise RuleSetInvalid([RuleProblem("-", "definition",
                                              "a publish needs an author and a reason")])
        compile_rule_set(rule_set, self._schema)
        doc = replace(rule_set, version=0, author=author, reason=reason, published_at=now).to_json()
        await self._move_legacy()
        try:
            return int(await self._publish(
                keys=[f"{PREFIX}:seq", f"{PREFIX}:v:", f"{PREFIX}:active", f"{PREFIX}:audit"],
                args=[doc, author, reason, repr(now)]))
        except RedisError as exc:
            raise RiskStateUnavailable(f"publishing rules failed: {exc}") from exc

    async def rollback(self, version: int, *, author: str, reason: str, now: float) -> None:
        """Make an earlier (or any stored) version active again; recorded in the audit."""
        await self._move_legacy()
        try:
            done = await self._rollback(
                keys=[f"{PREFIX}:seq", f"{PREFIX}:v:{version}", f"{PREFIX}:active",
                      f"{PREFIX}:audit"],
                args=[str(version), author, reason, repr(now)])
        except RedisError as exc:
            raise RiskStateUnavailable(f"rolling back rules failed: {exc}") from exc
        if int(done) < 0:
            raise RuleSetNotFound(f"rule set version {version} does not exist")

    async def active_version(self) -> int | None:
        await self._move_legacy()
        try:
            raw = await self._redis.get(f"{PREFIX}:active")
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading the active rule version failed: {exc}") from exc
        return int(raw) if raw is not None else None

    async def get(self, version: int) -> RuleSet:
        await self._move_legacy()
        try:
            raw = await self._redis.get(f"{PREFIX}:v:{version}")
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading rule set {version} failed: {exc}") from exc
        if raw is None:
            raise RuleSetNotFound(f"rule set version {version} does not exist")
        return replace(RuleSet.from_json(raw), version=version)

    async def active(self) -> RuleSet:
        version = await self.active_version()
        if version is None:
            raise RuleSetNotFound("no rule set has been published")
        return await self.get(version)

    async def audit(self, count: int = 100) -> list[RuleAuditEntry]:
        """The most recent publish / rollback records, newest first."""
        await self._move_legacy()
        try:
            rows = await self._redis.xrevrange(f"{PREFIX}:audit", count=count)
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading the rule audit failed: {exc}") from exc
        out = []
        for _id, f in rows:
            prev = f.get(b"previous", b"")
            out.append(RuleAuditEntry(f[b"action"].decode(), int(f[b"version"]),
                                      int(prev) if prev else None, f[b"author"].decode(),
                                      f[b"reason"].decode(), float(f[b"at"])))
        return out


class RuleSource:
    """The compiled active rule set for one process, refreshed at most every
    ``refresh_interval`` seconds with one GET (so a publish reaches every gateway
    within that interval). A version that no longer validates is refused and the
    last good one kept; ``last_error`` says why."""

    def __init__(self, store: RuleStore, *, refresh_interval: float = 0.5,
                 fallback: RuleSet | None = None,
                 schema: Mapping[str, FeatureType] = FEATURE_SCHEMA) -> None:
        self._store = store
        self._schema = schema
        self._fallback = compile_rule_set(fallback, schema) if fallback is not None else None
        self._compiled: CompiledRuleSet | None = None
        self._refresher = PeriodicRefresh(self._refresh, refresh_interval)
        self.last_error: Exception | None = None

    async def current(self, now: float) -> CompiledRuleSet:
        await self._refresher.run(now, loaded=self._compiled is not None)
        if self._compiled is not None:
            return self._compiled
        if self._fallback is not None:
            return self._fallback
        raise RuleSetNotFound("no rule set has been published")

    async def _refresh(self) -> None:
        try:
            version = await self._store.active_version()
            if version is None or (self._compiled is not None and self._compiled.version == version):
                return
            self._compiled = compile_rule_set(await self._store.get(version), self._schema)
            self.last_error = None
        except (RiskStateUnavailable, RuleSetInvalid, RuleSetNotFound) as exc:
            self.last_error = exc  # keep serving the last good version


"""The operations settings in Redis (versioned) and their per-process copy.

Keys (one hash tag, so the publish script stays in one Redis Cluster slot):

    {ops}:settings   the current version's record (JSON)
    {ops}:history    every version's record, version n at index n - 1

A record is ``{"version", "document", "author", "reason", "at", "rollback_of"}``.
A rollback publishes an earlier version's document as a new version, so the
version number only grows and every process notices the change with one GET
at most every ``refresh_interval`` seconds (:class:`OpsSwitches`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson
from redis.exceptions import RedisError

from auth_tools.lockout import ToolLockout
from gateway.challenges import ChallengeStore
from gateway.stepup_setup import sms_policy_for
from gateway.switches import (
    OpsDocumentInvalid,
    OpsSettings,
    OpsUnavailable,
    OpsVersionConflict,
    OpsVersionNotFound,
    Parameters,
    parse_document,
)
from limits import LimitsConfig, ReservationStore, UserLimitStore
from risk_engine.refresh import PeriodicRefresh

if TYPE_CHECKING:
    from gateway.config import StepUpConfig
    from gateway.services import Services

__all__ = ["OpsRecord", "OpsStore", "OpsSwitches", "ops_settings"]

log = logging.getLogger("riskgate.ops")

TAG = "{ops}"
SETTINGS_KEY = f"{TAG}:settings"
HISTORY_KEY = f"{TAG}:history"

# Append a version: ARGV[1] is the record as a JSON object without its version
# (spliced in here, so the document is stored byte for byte as given); ARGV[2]
# the version the caller based it on ('' = any).
_PUBLISH_LUA = """
local n = redis.call('LLEN', KEYS[2])
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= n then return {0, n} end
local raw = '{"version":' .. (n + 1) .. ',' .. string.sub(ARGV[1], 2)
redis.call('RPUSH', KEYS[2], raw)
redis.call('SET', KEYS[1], raw)
return {1, n + 1}
"""


@dataclass(frozen=True, slots=True)
class OpsRecord:
    version: int
    document: dict[str, Any]
    author: str
    reason: str
    at: float
    rollback_of: int | None = None

    @classmethod
    def from_json(cls, raw: bytes) -> OpsRecord:
        doc = orjson.loads(raw)
        return cls(int(doc["version"]), dict(doc["document"]), str(doc["author"]),
                   str(doc["reason"]), float(doc["at"]), doc.get("rollback_of"))

    def summary(self) -> dict[str, object]:
        return {"version": self.version, "author": self.author, "reason": self.reason,
                "at": self.at, "rollback_of": self.rollback_of}


class OpsStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._publish = redis.register_script(_PUBLISH_LUA)

    async def publish(self, settings: OpsSettings, *, author: str, reason: str, now: float,
                      base_version: int | None = None, rollback_of: int | None = None) -> int:
        """Store a validated document as the next version and make it current."""
        body = orjson.dumps({"document": settings.document(), "author": author, "reason": reason,
                             "at": now, "rollback_of": rollback_of})
        try:
            done, version = await self._publish(
                keys=[SETTINGS_KEY, HISTORY_KEY],
                args=[body, "" if base_version is None else str(base_version)])
        except RedisError as exc:
            raise OpsUnavailable(f"storing the operations settings failed: {exc}") from exc
        if int(done) != 1:
            raise OpsVersionConflict(f"the current version is {int(version)}, not {base_version}")
        return int(version)

    async def current_raw(self) -> bytes | None:
        try:
            return await self._redis.get(SETTINGS_KEY)
        except RedisError as exc:
            raise OpsUnavailable(f"reading the operations settings failed: {exc}") from exc

    async def current(self) -> OpsRecord | None:
        raw = await self.current_raw()
        return OpsRecord.from_json(raw) if raw is not None else None

    async def get(self, version: int) -> OpsRecord:
        if version < 1:
            raise OpsVersionNotFound(f"version {version} does not exist")
        try:
            raw = await self._redis.lindex(HISTORY_KEY, version - 1)
        except RedisError as exc:
            raise OpsUnavailable(f"reading the operations settings failed: {exc}") from exc
        if raw is None:
            raise OpsVersionNotFound(f"version {version} does not exist")
        return OpsRecord.from_json(raw)

    async def history(self, count: int = 20) -> list[OpsRecord]:
        """The newest ``count`` versions, newest first."""
        try:
            rows = await self._redis.lrange(HISTORY_KEY, -count, -1)
        except RedisError as exc:
            raise OpsUnavailable(f"reading the operations history failed: {exc}") from exc
        return [OpsRecord.from_json(raw) for raw in reversed(rows)]


class OpsSwitches:
    """This process's copy of the current settings, refreshed at most every
    ``refresh_interval`` seconds with one GET. While Redis cannot be read the
    last settings read stay in force; ``last_error`` says why."""

    def __init__(self, store: OpsStore, *, limits: LimitsConfig, stepup: StepUpConfig,
                 refresh_interval: float = 0.5) -> None:
        self.store = store
        self.base_limits = limits
        self.base_stepup = stepup
        self.base_sms = sms_policy_for(stepup)
        self._settings = OpsSettings()
        self._raw: bytes | None = None
        self._refresher = PeriodicRefresh(self._refresh, refresh_interval)
        self._applied: OpsSettings | None = None
        self.last_error: Exception | None = None

    def parse(self, document: object, *, version: int = 0, now: float | None = None) -> OpsSettings:
        """Validate ``document`` against this gateway's configured limits."""
        return parse_document(document, self.base_limits, version=version, now=now,
                              sms_resend_interval=self.base_sms.resend_interval)

    def invalidate(self) -> None:
        """Read the settings again at the next :meth:`current` (after a change made here)."""
        self._refresher.invalidate()

    async def current(self, now: float) -> OpsSettings:
        # A burst right after startup waits for the first read: a switched-off action
        # must not pass while it is on its way.
        await self._refresher.run(now, loaded=self._raw is not None)
        return self._settings

    async def _refresh(self) -> None:
        try:
            raw = await self.store.current_raw()
        except OpsUnavailable as exc:
            self.last_error = exc
            return
        if raw == self._raw:
            return
        self._raw = raw
        if raw is None:
            self._settings, self.last_error = OpsSettings(), None
            return
        try:
            record = OpsRecord.from_json(raw)
            self._settings, self.last_error = self.stored(record)
        except (OpsDocumentInvalid, ValueError, KeyError, TypeError) as exc:
            log.error("operations settings unreadable, the previous ones stay in force: %s", exc)
            self.last_error = exc
            return
        if self.last_error is not None:
            log.error("operations settings version %d: parameters ignored (%s)",
                      record.version, self.last_error)

    def stored(self, record: OpsRecord) -> tuple[OpsSettings, OpsDocumentInvalid | None]:
        """The settings of a stored version, and why its parameters are ignored, if they are.

        Limits configured since that version may conflict with its overrides:
        its switches still hold (a stop must survive a restart), its parameters not.
        """
        try:
            return self.parse(record.document, version=record.version), None
        except OpsDocumentInvalid as exc:
            switches = {k: v for k, v in record.document.items() if k != "parameters"}
            return self.parse(switches, version=record.version), exc

    def apply(self, svc: Services, settings: OpsSettings) -> None:
        """Rebuild the components whose parameters the settings change (once per version)."""
        if settings is self._applied:
            return
        self._applied = settings
        _apply_parameters(svc, settings.parameters, self.base_limits, self.base_stepup)


def _apply_parameters(svc: Services, p: Parameters, base_limits: LimitsConfig,
                      base_stepup: StepUpConfig) -> None:
    limits = p.limits(base_limits)
    if limits != svc.limits:
        svc.limits = limits
        svc.reservations = ReservationStore(svc.redis, limits)
        svc.user_limits = UserLimitStore(svc.redis, limits)
    cfg = p.stepup(base_stepup)
    policy = replace(svc.tool_lockout.policy, max_failures=cfg.tool_max_failures,
                     lock_seconds=cfg.tool_lockout_seconds)
    if policy != svc.tool_lockout.policy:
        svc.tool_lockout = ToolLockout(svc.redis, policy)
    if (cfg.challenge_ttl, cfg.approval_ttl) != (svc.challenges.challenge_ttl, svc.challenges.approval_ttl):
        svc.challenges = ChallengeStore(svc.redis, challenge_ttl=cfg.challenge_ttl,
                                        approval_ttl=cfg.approval_ttl)
    # Codes already sent keep the length and expiry they were sent with (in their state).
    svc.sms_policy = sms_policy_for(cfg)


async def ops_settings(svc: Services, now: float) -> OpsSettings:
    """The settings in force for a request, their parameters applied to ``svc``."""
    settings = await svc.switches.current(now)
    svc.switches.apply(svc, settings)
    return settings

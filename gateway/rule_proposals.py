"""Maker-checker rule publishing: a rule set is proposed (validated and backtested),
then published only when a different person approves it.

Keys (one hash tag; global, not per user):

    {console:proposals}:p:<id>   hash: doc (immutable JSON: rules, author, reason,
                                 created_at, base_version, backtest), status,
                                 decided_by, decided_at, note, version
    {console:proposals}:index    sorted set of ids by creation time

A proposal is approved against the rule version that was active when it was
made: if someone published since, approving it would silently undo their change,
so it is refused as stale and must be proposed again.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine import (
    BacktestReport,
    RiskThresholds,
    RuleSet,
    RuleStore,
    backtest,
    compile_rule_set,
)

__all__ = [
    "MakerCheckerSamePerson",
    "ProposalError",
    "ProposalNotFound",
    "ProposalNotPending",
    "ProposalStale",
    "ProposalStatus",
    "ProposalStore",
    "ProposalsUnavailable",
    "RuleProposal",
    "backtest_summary",
]

TAG = "{console:proposals}"
INDEX_KEY = f"{TAG}:index"
MAX_CHANGED_LISTED = 100

# Move a proposal from one status to another only if it is still in the first.
_TRANSITION_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], unpack(ARGV, 3))
return 1
"""


class ProposalError(Exception):
    code = "proposal_error"
    message = "the rule proposal cannot be handled"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.message
        super().__init__(self.message)


class ProposalNotFound(ProposalError):
    code = "proposal_not_found"
    message = "no rule proposal with that id"


class ProposalNotPending(ProposalError):
    code = "proposal_not_pending"
    message = "the rule proposal has already been decided"


class MakerCheckerSamePerson(ProposalError):
    code = "maker_checker_same_person"
    message = "a rule proposal must be approved by someone other than its author"


class ProposalStale(ProposalError):
    code = "proposal_stale"
    message = "the active rule set changed since this proposal was made; propose it again"


class ProposalsUnavailable(ProposalError):
    code = "proposals_unavailable"
    message = "the rule proposals cannot be read or written"


class ProposalStatus(StrEnum):
    PENDING = "pending"
    PUBLISHING = "publishing"  # claimed by an approver, being published
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class RuleProposal:
    proposal_id: str
    rules: tuple[dict[str, Any], ...]
    author: str
    reason: str
    created_at: float
    base_version: int | None
    backtest: dict[str, Any]
    status: ProposalStatus = ProposalStatus.PENDING
    decided_by: str = ""
    decided_at: float | None = None
    note: str = ""
    published_version: int | None = None

    def rule_set(self) -> RuleSet:
        return RuleSet.from_document({"rules": list(self.rules)})

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.proposal_id, "rules": list(self.rules), "author": self.author,
                "reason": self.reason, "created_at": self.created_at,
                "base_version": self.base_version, "backtest": self.backtest,
                "status": self.status.value, "decided_by": self.decided_by or None,
                "decided_at": self.decided_at, "note": self.note,
                "published_version": self.published_version}


def backtest_summary(report: BacktestReport, max_changed: int = MAX_CHANGED_LISTED) -> dict[str, Any]:
    """The report as JSON: recorded vs candidate stats and the changed outcomes."""
    return {"recorded": asdict(report.recorded), "candidate": asdict(report.candidate),
            "changed_count": len(report.changed),
            "changed": [asdict(c) for c in report.changed[:max_changed]],
            "model_version": report.model_version}


def _same_person(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def _key(proposal_id: str) -> str:
    return f"{TAG}:p:{proposal_id}"


class ProposalStore:
    def __init__(self, redis: Redis, rule_store: RuleStore,
                 thresholds: RiskThresholds | None = None) -> None:
        # the gateway passes its configured thresholds so the backtest judges as production does
        self._redis = redis
        self._rules = rule_store
        self._thresholds = thresholds or RiskThresholds()
        self._transition = redis.register_script(_TRANSITION_LUA)

    async def propose(self, rule_set: RuleSet, *, author: str, reason: str,
                      now: float) -> RuleProposal:
        """Validate and backtest ``rule_set`` over the recorded decisions, then store it.

        Raises RuleSetInvalid (nothing stored) when it does not validate."""
        compiled = compile_rule_set(rule_set)
        base = await self._rules.active_version()
        report = await backtest(self._redis, compiled, thresholds=self._thresholds)
        proposal = RuleProposal(f"p_{secrets.token_hex(8)}",
                                tuple(r.to_dict() for r in rule_set.rules), author, reason,
                                now, base, backtest_summary(report))
        doc = orjson.dumps({"rules": proposal.rules, "author": author, "reason": reason,
                            "created_at": now, "base_version": base,
                            "backtest": proposal.backtest})
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(_key(proposal.proposal_id),
                          mapping={"doc": doc, "status": ProposalStatus.PENDING.value})
                pipe.zadd(INDEX_KEY, {proposal.proposal_id: now})
                await pipe.execute()
        except RedisError as exc:
            raise ProposalsUnavailable(f"storing the proposal failed: {exc}") from exc
        return proposal

    async def get(self, proposal_id: str) -> RuleProposal:
        try:
            raw = await self._redis.hgetall(_key(proposal_id))
        except RedisError as exc:
            raise ProposalsUnavailable(f"reading the proposal failed: {exc}") from exc
        if not raw:
            raise ProposalNotFound()
        doc = orjson.loads(raw[b"doc"])
        version = raw.get(b"version")
        decided_at = raw.get(b"decided_at")
        return RuleProposal(proposal_id, tuple(doc["rules"]), doc["author"], doc["reason"],
                            doc["created_at"], doc["base_version"], doc["backtest"],
                            ProposalStatus(raw[b"status"].decode()),
                            raw.get(b"decided_by", b"").decode(),
                            float(decided_at) if decided_at else None,
                            raw.get(b"note", b"").decode(),
                            int(version) if version else None)

    async def list(self, *, status: ProposalStatus | None = None,
                   count: int = 50) -> list[RuleProposal]:
        """Newest first, optionally only those in ``status``."""
        try:
            ids = await self._redis.zrevrange(INDEX_KEY, 0, -1)
        except RedisError as exc:
            raise ProposalsUnavailable(f"listing proposals failed: {exc}") from exc
        out: list[RuleProposal] = []
        for raw_id in ids:
            try:
                proposal = await self.get(raw_id.decode())
            except ProposalNotFound:
                continue
            if status is None or proposal.status is status:
                out.append(proposal)
                if len(out) >= count:
                    break
        return out

    async def approve(self, proposal_id: str, *, approver: str, now: float) -> RuleProposal:
        """Publish the proposal's rule set through the RuleStore, as approved by ``approver``.

        Raises MakerCheckerSamePerson, ProposalNotPending, ProposalStale, ProposalNotFound,
        or RuleSetInvalid / RiskStateUnavailable from the publish (the proposal stays pending)."""
        proposal = await self.get(proposal_id)
        if proposal.status is not ProposalStatus.PENDING:
            raise ProposalNotPending(f"the proposal is {proposal.status.value}")
        if _same_person(proposal.author, approver):
            raise MakerCheckerSamePerson()
        if await self._rules.active_version() != proposal.base_version:
            raise ProposalStale()
        # claim first, so two approvers cannot both publish it
        await self._move(proposal_id, ProposalStatus.PENDING, ProposalStatus.PUBLISHING,
                         decided_by=approver)
        try:
            version = await self._rules.publish(
                proposal.rule_set(), author=proposal.author,
                reason=f"{proposal.reason} [proposal {proposal_id}, approved by {approver}]",
                now=now)
        except BaseException:
            await self._move(proposal_id, ProposalStatus.PUBLISHING, ProposalStatus.PENDING,
                             decided_by="")
            raise
        await self._move(proposal_id, ProposalStatus.PUBLISHING, ProposalStatus.APPROVED,
                         decided_at=repr(now), version=str(version))
        return await self.get(proposal_id)

    async def reject(self, proposal_id: str, *, rejector: str, note: str,
                     now: float) -> RuleProposal:
        """Close a pending proposal without publishing (its author may withdraw it too)."""
        proposal = await self.get(proposal_id)
        if proposal.status is not ProposalStatus.PENDING:
            raise ProposalNotPending(f"the proposal is {proposal.status.value}")
        await self._move(proposal_id, ProposalStatus.PENDING, ProposalStatus.REJECTED,
                         decided_by=rejector, decided_at=repr(now), note=note)
        return await self.get(proposal_id)

    async def _move(self, proposal_id: str, old: ProposalStatus, new: ProposalStatus,
                    **fields: str) -> None:
        args: list[str] = [old.value, new.value]
        for name, value in fields.items():
            args += [name, value]
        try:
            moved = await self._transition(keys=[_key(proposal_id)], args=args)
        except RedisError as exc:
            raise ProposalsUnavailable(f"updating the proposal failed: {exc}") from exc
        if int(moved) != 1:
            raise ProposalNotPending("the proposal was decided by someone else meanwhile")

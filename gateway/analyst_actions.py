"""What an analyst does, shared by the JSON admin API and the console pages: propose,
approve and reject rule sets (maker-checker), label decisions, and the audit entry each
of these appends. Both surfaces authenticate and authorise; these functions act and
record, and translate library failures into HTTP errors with stable codes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.audit_trail import AuditAppendConflict, AuditTrail, AuditTrailError, AuditUnavailable
from gateway.errors import BadRequest, Forbidden, GatewayError, NotFound
from gateway.rule_proposals import (
    MakerCheckerSamePerson,
    ProposalError,
    ProposalNotFound,
    ProposalNotPending,
    ProposalStale,
    ProposalStore,
    ProposalsUnavailable,
    RuleProposal,
    backtest_summary,
)
from gateway.services import Services
from gateway.text_fields import required_text
from risk_engine import (
    DecisionNotFound,
    LabelInvalid,
    LabelSource,
    RuleSet,
    RuleSetInvalid,
    RuleSetNotFound,
    backtest,
    compile_rule_set,
    submit_label,
)

__all__ = ["Conflict", "RuleSetRefused", "StateUnavailable", "approve_rules", "audit", "backtest_rules",
           "label_decision", "stored_rules",
           "propose_rollback", "propose_rules", "proposals", "refusal", "reject_rules", "rule_set_refused", "rules_digest"]


class Conflict(GatewayError):
    status = 409
    code = "conflict"
    message = "the request conflicts with the current state"


class StateUnavailable(GatewayError):
    status = 503
    code = "state_unavailable"
    message = "the gateway cannot reach its state store; retry shortly"


class RuleSetRefused(GatewayError):
    status = 422
    code = "rule_set_invalid"
    message = "the rule set does not validate"


# Library failures of the console -> the HTTP error class carrying their code.
_REFUSALS: dict[type[Exception], type[GatewayError]] = {
    ProposalNotFound: NotFound,
    MakerCheckerSamePerson: Forbidden,
    ProposalNotPending: Conflict,
    ProposalStale: Conflict,
    ProposalsUnavailable: StateUnavailable,
    AuditUnavailable: StateUnavailable,
    AuditAppendConflict: StateUnavailable,
}


def refusal(exc: ProposalError | AuditTrailError) -> GatewayError:
    for cls in type(exc).__mro__:
        if cls in _REFUSALS:
            return _REFUSALS[cls](exc.code, exc.message)
    return StateUnavailable(exc.code, exc.message)


def rule_set_refused(exc: RuleSetInvalid) -> RuleSetRefused:
    return RuleSetRefused(message=str(exc), extra={"problems": [
        {"rule": p.rule_id, "kind": p.kind, "message": p.message, "line": p.line,
         "column": p.column} for p in exc.problems]})


def proposals(svc: Services) -> ProposalStore:
    return ProposalStore(svc.redis, svc.risk.rule_store, svc.risk.thresholds)


def rules_digest(proposal: RuleProposal) -> str:
    return hashlib.sha256(orjson.dumps(list(proposal.rules), option=orjson.OPT_SORT_KEYS)).hexdigest()


async def audit(svc: Services, actor: str, action: str, details: dict[str, Any], now: float) -> int:
    """Append one audit entry; its sequence number."""
    try:
        return (await AuditTrail(svc.redis).append(actor=actor, action=action, details=details,
                                                   now=now)).seq
    except AuditTrailError as exc:
        raise refusal(exc) from exc


def _reason(reason: object) -> str:
    return required_text(reason, "reason", what="why this change")


async def stored_rules(svc: Services, version: int) -> RuleSet:
    """A published rule set version (404 ``rule_version_not_found``)."""
    try:
        return await svc.risk.rule_store.get(version)
    except RuleSetNotFound as exc:
        raise NotFound("rule_version_not_found", f"rule set version {version} does not exist") from exc


async def backtest_rules(svc: Services, rule_set: RuleSet) -> dict[str, Any]:
    """Replay the recorded decisions with ``rule_set``; the summary a proposal also keeps.
    Nothing is stored."""
    try:
        report = await backtest(svc.redis, compile_rule_set(rule_set), thresholds=svc.risk.thresholds)
    except RuleSetInvalid as exc:
        raise rule_set_refused(exc) from exc
    return backtest_summary(report)


async def propose_rules(svc: Services, rule_set: RuleSet, *, author: str, reason: object,
                        now: float) -> tuple[RuleProposal, int]:
    """Store a proposal with its backtest; the proposal and its audit entry's number.
    400 ``reason_required`` without a reason (before anything is backtested)."""
    reason = _reason(reason)
    try:
        proposal = await proposals(svc).propose(rule_set, author=author, reason=reason, now=now)
    except RuleSetInvalid as exc:
        raise rule_set_refused(exc) from exc
    except ProposalError as exc:
        raise refusal(exc) from exc
    bt = proposal.backtest
    seq = await audit(svc, author, "rule_proposal.create", {
        "proposal_id": proposal.proposal_id, "reason": reason,
        "rule_ids": [r["id"] for r in proposal.rules], "rules_sha256": rules_digest(proposal),
        "base_version": proposal.base_version, "changed_outcomes": bt["changed_count"],
        "step_up_rate": [bt["recorded"]["step_up_rate"], bt["candidate"]["step_up_rate"]],
    }, now)
    return proposal, seq


async def propose_rollback(svc: Services, version: int, *, author: str, reason: object,
                           now: float) -> tuple[RuleProposal, int]:
    """Roll back by proposal: the rules of stored ``version`` become a new proposal, which
    a second person approves like any other (the rollback is a publish of old rules)."""
    reason = _reason(reason)
    old = await stored_rules(svc, version)
    return await propose_rules(svc, old, author=author, reason=f"rollback to v{version}: {reason}",
                               now=now)


async def approve_rules(svc: Services, proposal_id: str, *, approver: str,
                        now: float) -> tuple[RuleProposal, int]:
    """Publish a pending proposal; the approver must not be its author (recorded if tried)."""
    try:
        proposal = await proposals(svc).approve(proposal_id, approver=approver, now=now)
    except MakerCheckerSamePerson as exc:
        # an attempt to bypass the four-eyes rule is itself worth a record
        await audit(svc, approver, "rule_proposal.approve_refused",
                    {"proposal_id": proposal_id, "error": exc.code}, now)
        raise refusal(exc) from exc
    except ProposalError as exc:
        raise refusal(exc) from exc
    except RuleSetInvalid as exc:
        raise rule_set_refused(exc) from exc
    seq = await audit(svc, approver, "rule_proposal.approve", {
        "proposal_id": proposal_id, "author": proposal.author, "approver": approver,
        "published_version": proposal.published_version, "rules_sha256": rules_digest(proposal),
    }, now)
    return proposal, seq


async def reject_rules(svc: Services, proposal_id: str, *, reviewer: str, reason: object,
                       now: float) -> tuple[RuleProposal, int]:
    reason = _reason(reason)
    try:
        proposal = await proposals(svc).reject(proposal_id, rejector=reviewer, note=reason, now=now)
    except ProposalError as exc:
        raise refusal(exc) from exc
    seq = await audit(svc, reviewer, "rule_proposal.reject", {
        "proposal_id": proposal_id, "author": proposal.author, "reason": reason}, now)
    return proposal, seq


async def label_decision(svc: Services, decision_id: str, *, fraud: bool, author: str,
                         now: float) -> tuple[str, int]:
    """An analyst's (strong) label for the learner; "queued" or "kept_stronger_label", and
    the audit entry's number."""
    try:
        queued = await submit_label(svc.redis, decision_id, fraud=fraud, source=LabelSource.ANALYST,
                                    now=now, author=author)
    except DecisionNotFound as exc:
        raise NotFound("decision_not_found", "no recorded decision with that id") from exc
    except LabelInvalid as exc:
        raise BadRequest("label_invalid", str(exc)) from exc
    status = "queued" if queued else "kept_stronger_label"
    seq = await audit(svc, author, "decision.label",
                      {"decision_id": decision_id, "fraud": fraud, "status": status}, now)
    return status, seq

"""Analyst console back end (JSON, admin token): maker-checker rule publishing,
labels, a filtered decisions feed and the hash-chained audit trail.

    POST /admin/rule-proposals                  {"rules", "author", "reason"}  validate, backtest, store
    GET  /admin/rule-proposals?status=&count=   newest first
    GET  /admin/rule-proposals/{id}
    POST /admin/rule-proposals/{id}/approve     {"approver"}  publish; the approver is not the author
    POST /admin/rule-proposals/{id}/reject      {"reviewer", "reason"}
    POST /admin/console/labels                  {"decision_id", "fraud", "author"}
    GET  /admin/console/decisions?outcome=&level=&user=&rule=&action=&count=&before=
    GET  /admin/audit?count=&before=            audit entries, newest first
    GET  /admin/audit/verify                    recompute the chain, name the first broken entry

Every change made here is appended to the audit trail (gateway.audit_trail).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api_admin import require_admin
from gateway.api_auth import _json_body, json_response
from gateway.audit_trail import AuditAppendConflict, AuditTrail, AuditTrailError, AuditUnavailable
from gateway.errors import BadRequest, Forbidden, GatewayError, NotFound
from gateway.rule_proposals import (
    MakerCheckerSamePerson,
    ProposalError,
    ProposalNotFound,
    ProposalNotPending,
    ProposalStale,
    ProposalStatus,
    ProposalStore,
    ProposalsUnavailable,
    RuleProposal,
)
from gateway.services import Services
from risk_engine import (
    DecisionEvent,
    DecisionNotFound,
    LabelInvalid,
    LabelSource,
    Outcome,
    RiskLevel,
    RiskStateUnavailable,
    RuleSet,
    RuleSetInvalid,
    read_decisions,
    submit_label,
)

__all__ = ["ROUTES"]

_OUTCOMES = frozenset(v for k, v in vars(Outcome).items() if k.isupper())
_FEED_PAGE = 500
_STREAM_ID_RE = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_SMALL_INT_RE = re.compile(r"[0-9]{1,6}\Z")
_SEQ_RE = re.compile(r"[0-9]{1,20}\Z")
_FEED_MAX_SCAN = 20_000  # a filter matching nothing must not read the whole stream


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


def _refusal(exc: ProposalError | AuditTrailError) -> GatewayError:
    for cls in type(exc).__mro__:
        if cls in _REFUSALS:
            return _REFUSALS[cls](exc.code, exc.message)
    return StateUnavailable(exc.code, exc.message)


def _rule_set_refused(exc: RuleSetInvalid) -> RuleSetRefused:
    return RuleSetRefused(message=str(exc), extra={"problems": [
        {"rule": p.rule_id, "kind": p.kind, "message": p.message, "line": p.line,
         "column": p.column} for p in exc.problems]})


def _person(doc: dict[str, object], field: str) -> str:
    who = doc.get(field)
    if not isinstance(who, str) or not who.strip() or len(who) > 64:
        raise BadRequest(f"{field}_required", f"{field} (who makes this change) is required")
    return who.strip()


def _text(doc: dict[str, object], field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > 1000:
        raise BadRequest(f"{field}_required", f"{field} (why this change, up to 1000 characters) is required")
    return value.strip()


def _count(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("count", str(default))
    if not _SMALL_INT_RE.match(raw) or not 1 <= int(raw) <= 500:
        raise BadRequest("invalid_count", "count must be between 1 and 500")
    return int(raw)


def _proposals(svc: Services) -> ProposalStore:
    return ProposalStore(svc.redis, svc.risk.rule_store, svc.risk.thresholds)


def _rules_digest(proposal: RuleProposal) -> str:
    return hashlib.sha256(orjson.dumps(list(proposal.rules), option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _audit(svc: Services, actor: str, action: str, details: dict[str, Any], now: float) -> int:
    try:
        return (await AuditTrail(svc.redis).append(actor=actor, action=action, details=details,
                                                   now=now)).seq
    except AuditTrailError as exc:
        raise _refusal(exc) from exc


async def create_proposal(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    author, reason = _person(doc, "author"), _text(doc, "reason")
    now = time.time()
    try:
        rule_set = RuleSet.from_document({"rules": doc.get("rules")})
        proposal = await _proposals(svc).propose(rule_set, author=author, reason=reason, now=now)
    except RuleSetInvalid as exc:
        raise _rule_set_refused(exc) from exc
    except ProposalError as exc:
        raise _refusal(exc) from exc
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    bt = proposal.backtest
    seq = await _audit(svc, author, "rule_proposal.create", {
        "proposal_id": proposal.proposal_id, "reason": reason,
        "rule_ids": [r["id"] for r in proposal.rules], "rules_sha256": _rules_digest(proposal),
        "base_version": proposal.base_version, "changed_outcomes": bt["changed_count"],
        "step_up_rate": [bt["recorded"]["step_up_rate"], bt["candidate"]["step_up_rate"]],
    }, now)
    return json_response({**proposal.to_dict(), "audit_seq": seq}, status=201)


async def list_proposals(request: Request) -> Response:
    svc = require_admin(request)
    raw = request.query_params.get("status")
    try:
        status = ProposalStatus(raw) if raw else None
    except ValueError as exc:
        raise BadRequest("invalid_status", "status must be one of "
                         + ", ".join(s.value for s in ProposalStatus)) from exc
    try:
        proposals = await _proposals(svc).list(status=status, count=_count(request))
    except ProposalError as exc:
        raise _refusal(exc) from exc
    return json_response({"proposals": [p.to_dict() for p in proposals]})


async def get_proposal(request: Request) -> Response:
    svc = require_admin(request)
    try:
        proposal = await _proposals(svc).get(request.path_params["proposal_id"])
    except ProposalError as exc:
        raise _refusal(exc) from exc
    return json_response(proposal.to_dict())


async def approve_proposal(request: Request) -> Response:
    svc = require_admin(request)
    approver = _person(_json_body(request), "approver")
    proposal_id = request.path_params["proposal_id"]
    now = time.time()
    store = _proposals(svc)
    try:
        proposal = await store.approve(proposal_id, approver=approver, now=now)
    except MakerCheckerSamePerson as exc:
        # an attempt to bypass the four-eyes rule is itself worth a record
        await _audit(svc, approver, "rule_proposal.approve_refused",
                     {"proposal_id": proposal_id, "error": exc.code}, now)
        raise _refusal(exc) from exc
    except ProposalError as exc:
        raise _refusal(exc) from exc
    except RuleSetInvalid as exc:
        raise _rule_set_refused(exc) from exc
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    seq = await _audit(svc, approver, "rule_proposal.approve", {
        "proposal_id": proposal_id, "author": proposal.author, "approver": approver,
        "published_version": proposal.published_version, "rules_sha256": _rules_digest(proposal),
    }, now)
    return json_response({**proposal.to_dict(), "audit_seq": seq})


async def reject_proposal(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    reviewer, reason = _person(doc, "reviewer"), _text(doc, "reason")
    proposal_id = request.path_params["proposal_id"]
    now = time.time()
    try:
        proposal = await _proposals(svc).reject(proposal_id, rejector=reviewer, note=reason, now=now)
    except ProposalError as exc:
        raise _refusal(exc) from exc
    seq = await _audit(svc, reviewer, "rule_proposal.reject", {
        "proposal_id": proposal_id, "author": proposal.author, "reason": reason}, now)
    return json_response({**proposal.to_dict(), "audit_seq": seq})


async def console_label(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    author = _person(doc, "author")
    decision_id, fraud = doc.get("decision_id"), doc.get("fraud")
    if not isinstance(decision_id, str) or not decision_id:
        raise BadRequest("missing_field", "decision_id is required")
    if not isinstance(fraud, bool):
        raise BadRequest("missing_field", "fraud (true or false) is required")
    now = time.time()
    try:
        queued = await submit_label(svc.redis, decision_id, fraud=fraud, source=LabelSource.ANALYST,
                                    now=now, author=author)
    except DecisionNotFound as exc:
        raise NotFound("decision_not_found", "no recorded decision with that id") from exc
    except LabelInvalid as exc:
        raise BadRequest("label_invalid", str(exc)) from exc
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    status = "queued" if queued else "kept_stronger_label"
    seq = await _audit(svc, author, "decision.label",
                       {"decision_id": decision_id, "fraud": fraud, "status": status}, now)
    return json_response({"status": status, "decision_id": decision_id, "fraud": fraud,
                          "audit_seq": seq}, status=202)


def _feed_filter(request: Request) -> dict[str, str]:
    q = request.query_params
    wanted = {k: q[k] for k in ("outcome", "level", "user", "rule", "action") if q.get(k)}
    if "outcome" in wanted and wanted["outcome"] not in _OUTCOMES:
        raise BadRequest("invalid_outcome", "outcome must be one of " + ", ".join(sorted(_OUTCOMES)))
    if "level" in wanted and wanted["level"] not in {lv.value for lv in RiskLevel}:
        raise BadRequest("invalid_level", "level must be one of "
                         + ", ".join(lv.value for lv in RiskLevel))
    return wanted


def _matches(event: DecisionEvent, wanted: dict[str, str]) -> bool:
    return (event.outcome == wanted.get("outcome", event.outcome)
            and event.level == wanted.get("level", event.level)
            and event.user_id == wanted.get("user", event.user_id)
            and event.action == wanted.get("action", event.action)
            and ("rule" not in wanted
                 or wanted["rule"] in event.rules_hit or wanted["rule"] in event.shadow_rules_hit))


async def decisions_feed(request: Request) -> Response:
    """Newest first, filtered; ``next_before`` pages on (pass it back as ``before``)."""
    svc = require_admin(request)
    wanted, count = _feed_filter(request), _count(request)
    before = request.query_params.get("before")
    if before is not None and not (_STREAM_ID_RE.match(before)
                                   and all(int(part) < 2**64 for part in before.split("-"))):
        raise BadRequest("invalid_cursor", "before must be a stream id from next_before")
    end = f"({before}" if before else "+"
    found: list[dict[str, Any]] = []
    scanned, last_id, exhausted = 0, before, False
    try:
        while len(found) < count and scanned < _FEED_MAX_SCAN:
            rows = await read_decisions(svc.redis, end=end, count=_FEED_PAGE, newest_first=True)
            consumed = 0
            for sid, event in rows:
                consumed, scanned, last_id = consumed + 1, scanned + 1, sid
                if _matches(event, wanted):
                    found.append({"stream_id": sid, **asdict(event)})
                    if len(found) >= count:
                        break
            exhausted = len(rows) < _FEED_PAGE and consumed == len(rows)
            if exhausted:
                break
            end = f"({last_id}"
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    return json_response({"decisions": found, "scanned": scanned, "filters": wanted,
                          "next_before": None if exhausted else last_id})


async def audit_entries(request: Request) -> Response:
    svc = require_admin(request)
    raw = request.query_params.get("before")
    if raw is not None and not _SEQ_RE.match(raw):
        raise BadRequest("invalid_cursor", "before must be an audit seq")
    try:
        entries = await AuditTrail(svc.redis).entries(count=_count(request, 100),
                                                      before_seq=int(raw) if raw else None)
    except AuditTrailError as exc:
        raise _refusal(exc) from exc
    return json_response({"entries": [e.to_dict() for e in entries]})


async def audit_verify(request: Request) -> Response:
    svc = require_admin(request)
    try:
        result = await AuditTrail(svc.redis).verify()
    except AuditTrailError as exc:
        raise _refusal(exc) from exc
    return json_response(result.to_dict())


ROUTES = [
    Route("/admin/rule-proposals", create_proposal, methods=["POST"]),
    Route("/admin/rule-proposals", list_proposals, methods=["GET"]),
    Route("/admin/rule-proposals/{proposal_id}", get_proposal, methods=["GET"]),
    Route("/admin/rule-proposals/{proposal_id}/approve", approve_proposal, methods=["POST"]),
    Route("/admin/rule-proposals/{proposal_id}/reject", reject_proposal, methods=["POST"]),
    Route("/admin/console/labels", console_label, methods=["POST"]),
    Route("/admin/console/decisions", decisions_feed, methods=["GET"]),
    Route("/admin/audit", audit_entries, methods=["GET"]),
    Route("/admin/audit/verify", audit_verify, methods=["GET"]),
]

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

import datetime as dt
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.analyst_actions import (
    approve_rules,
    label_decision,
    proposals,
    propose_rules,
    refusal,
    reject_rules,
    rule_set_refused,
)
from gateway.api_admin import require_admin
from gateway.api_auth import _json_body, json_response
from gateway.audit_trail import AuditTrail, AuditTrailError
from gateway.errors import BadRequest
from gateway.rule_proposals import (
    ProposalError,
    ProposalStatus,
    RuleProposal,
)
from gateway.services import Services
from gateway.text_fields import required_text
from risk_engine import (
    RECORDING_SLACK,
    DecisionEvent,
    Outcome,
    RiskLevel,
    RuleSet,
    RuleSetInvalid,
    read_decisions,
)

__all__ = ["FEED_MAX_SCAN", "FEED_PAGE", "ROUTES", "FeedPage", "audit_cursor", "feed_cursor", "feed_filter", "listed_proposals", "matches",
           "query_count", "read_feed"]

_OUTCOMES = frozenset(v for k, v in vars(Outcome).items() if k.isupper())
FEED_PAGE = 500
_STREAM_ID_RE = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_SMALL_INT_RE = re.compile(r"[0-9]{1,6}\Z")
_SEQ_RE = re.compile(r"[0-9]{1,20}\Z")
_SECONDS_RE = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?\Z")
FEED_MAX_SCAN = 20_000  # a filter matching nothing must not read the whole stream


def _person(doc: dict[str, object], field: str) -> str:
    return required_text(doc.get(field), field, what="who makes this change", limit=64)


def query_count(request: Request, default: int = 50) -> int:
    """The ``count`` query parameter, 1 to 500."""
    raw = request.query_params.get("count", str(default))
    if not _SMALL_INT_RE.match(raw) or not 1 <= int(raw) <= 500:
        raise BadRequest("invalid_count", "count must be between 1 and 500")
    return int(raw)


async def create_proposal(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    author, reason = _person(doc, "author"), doc.get("reason")
    try:
        rule_set = RuleSet.from_document({"rules": doc.get("rules")})
    except RuleSetInvalid as exc:
        raise rule_set_refused(exc) from exc
    proposal, seq = await propose_rules(svc, rule_set, author=author, reason=reason, now=time.time())
    return json_response({**proposal.to_dict(), "audit_seq": seq}, status=201)


async def listed_proposals(svc: Services, request: Request) -> list[RuleProposal]:
    """Proposals by the ``status`` and ``count`` query parameters, newest first."""
    raw = request.query_params.get("status")
    try:
        status = ProposalStatus(raw) if raw else None
    except ValueError as exc:
        raise BadRequest("invalid_status", "status must be one of "
                         + ", ".join(s.value for s in ProposalStatus)) from exc
    try:
        return await proposals(svc).list(status=status, count=query_count(request))
    except ProposalError as exc:
        raise refusal(exc) from exc


async def list_proposals(request: Request) -> Response:
    found = await listed_proposals(require_admin(request), request)
    return json_response({"proposals": [p.to_dict() for p in found]})


async def get_proposal(request: Request) -> Response:
    svc = require_admin(request)
    try:
        proposal = await proposals(svc).get(request.path_params["proposal_id"])
    except ProposalError as exc:
        raise refusal(exc) from exc
    return json_response(proposal.to_dict())


async def approve_proposal(request: Request) -> Response:
    svc = require_admin(request)
    approver = _person(_json_body(request), "approver")
    proposal, seq = await approve_rules(svc, request.path_params["proposal_id"], approver=approver,
                                        now=time.time())
    return json_response({**proposal.to_dict(), "audit_seq": seq})


async def reject_proposal(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    reviewer, reason = _person(doc, "reviewer"), doc.get("reason")
    proposal, seq = await reject_rules(svc, request.path_params["proposal_id"], reviewer=reviewer,
                                       reason=reason, now=time.time())
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
    status, seq = await label_decision(svc, decision_id, fraud=fraud, author=author, now=time.time())
    return json_response({"status": status, "decision_id": decision_id, "fraud": fraud,
                          "audit_seq": seq}, status=202)


def _instant(name: str, raw: str) -> str:
    """A time filter: unix seconds, or ISO 8601 (UTC unless it names an offset)."""
    text = raw.strip()
    try:
        if _SECONDS_RE.match(text):
            at = float(text)
        else:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            at = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    except (ValueError, OverflowError) as exc:
        raise BadRequest("invalid_time", f"{name} must be unix seconds or an ISO 8601 time, "
                                         "for example 2026-12-01T08:00 (UTC) or 2026-12-01T16:00+08:00") from exc
    if not 0 <= at < 2**37:
        raise BadRequest("invalid_time", f"{name} is out of range")
    return repr(at)


def feed_filter(request: Request) -> dict[str, str]:
    """The feed's filters: outcome, level, user, rule, action, and the time window
    ``since`` (inclusive) .. ``until`` (exclusive)."""
    q = request.query_params
    wanted = {k: q[k] for k in ("outcome", "level", "user", "rule", "action") if q.get(k)}
    for name in ("since", "until"):
        if q.get(name, "").strip():
            wanted[name] = _instant(name, q[name])
    if "outcome" in wanted and wanted["outcome"] not in _OUTCOMES:
        raise BadRequest("invalid_outcome", "outcome must be one of " + ", ".join(sorted(_OUTCOMES)))
    if "level" in wanted and wanted["level"] not in {lv.value for lv in RiskLevel}:
        raise BadRequest("invalid_level", "level must be one of "
                         + ", ".join(lv.value for lv in RiskLevel))
    return wanted


def matches(event: DecisionEvent, wanted: dict[str, str]) -> bool:
    return (event.outcome == wanted.get("outcome", event.outcome)
            and ("since" not in wanted or event.at >= float(wanted["since"]))
            and ("until" not in wanted or event.at < float(wanted["until"]))
            and event.level == wanted.get("level", event.level)
            and event.user_id == wanted.get("user", event.user_id)
            and event.action == wanted.get("action", event.action)
            and ("rule" not in wanted
                 or wanted["rule"] in event.rules_hit or wanted["rule"] in event.shadow_rules_hit))


def feed_cursor(request: Request) -> str | None:
    """The ``before`` query parameter: a decision stream id (from ``next_before``) or None."""
    before = request.query_params.get("before")
    if before is not None and not (_STREAM_ID_RE.match(before)
                                   and all(int(part) < 2**64 for part in before.split("-"))):
        raise BadRequest("invalid_cursor", "before must be a stream id from next_before")
    return before


@dataclass(frozen=True, slots=True)
class FeedPage:
    decisions: list[dict[str, Any]]  # each with its "stream_id"
    scanned: int
    next_before: str | None  # None once the stream is exhausted

    def to_dict(self, wanted: dict[str, str]) -> dict[str, Any]:
        return {"decisions": self.decisions, "scanned": self.scanned, "filters": wanted,
                "next_before": self.next_before}


async def read_feed(redis: Redis, wanted: dict[str, str], *, count: int, before: str | None) -> FeedPage:
    """Up to ``count`` decisions matching ``wanted``, newest first, older than ``before``;
    at most FEED_MAX_SCAN are read."""
    end = f"({before}" if before else "+"
    found: list[dict[str, Any]] = []
    scanned, last_id, exhausted = 0, before, False
    since = float(wanted["since"]) if "since" in wanted else None
    while len(found) < count and scanned < FEED_MAX_SCAN:
        rows = await read_decisions(redis, end=end, count=FEED_PAGE, newest_first=True)
        consumed = 0
        for sid, event in rows:
            consumed, scanned, last_id = consumed + 1, scanned + 1, sid
            if since is not None and event.at < since - RECORDING_SLACK:
                exhausted = True  # everything older is outside the window
                break
            if matches(event, wanted):
                found.append({"stream_id": sid, **asdict(event)})
                if len(found) >= count:
                    break
        exhausted = exhausted or (len(rows) < FEED_PAGE and consumed == len(rows))
        if exhausted:
            break
        end = f"({last_id}"
    return FeedPage(found, scanned, None if exhausted else last_id)


async def decisions_feed(request: Request) -> Response:
    """Newest first, filtered; ``next_before`` pages on (pass it back as ``before``)."""
    svc = require_admin(request)
    wanted, count = feed_filter(request), query_count(request)
    page = await read_feed(svc.redis, wanted, count=count, before=feed_cursor(request))
    return json_response(page.to_dict(wanted))


def audit_cursor(request: Request) -> int | None:
    """The ``before`` query parameter of the audit listing: an entry's seq, or None."""
    raw = request.query_params.get("before")
    if raw is not None and not _SEQ_RE.match(raw):
        raise BadRequest("invalid_cursor", "before must be an audit seq")
    return int(raw) if raw else None


async def audit_entries(request: Request) -> Response:
    svc = require_admin(request)
    before = audit_cursor(request)
    try:
        entries = await AuditTrail(svc.redis).entries(count=query_count(request, 100), before_seq=before)
    except AuditTrailError as exc:
        raise refusal(exc) from exc
    return json_response({"entries": [e.to_dict() for e in entries]})


async def audit_verify(request: Request) -> Response:
    svc = require_admin(request)
    try:
        result = await AuditTrail(svc.redis).verify()
    except AuditTrailError as exc:
        raise refusal(exc) from exc
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

"""Rules over /admin/api: the active set with its hits and history, stored versions and
their differences, validation and backtests, and maker-checker proposals (rollbacks too).

Proposals, approvals, refusals and rejections go through gateway.analyst_actions:
the same records and audit entries as the console's rule pages. Nothing is
published until a second analyst approves; an author's own approval is refused
(403 ``maker_checker_same_person``) and the attempt is audited.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.auth import answer, json_body, operation
from gateway.analyst_actions import (
    approve_rules,
    backtest_rules,
    proposals,
    propose_rollback,
    propose_rules,
    refusal,
    reject_rules,
    rule_set_refused,
    stored_rules,
)
from gateway.api_console import listed_proposals
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, may_reject, services
from gateway.console.rule_text import parse_rule_text
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.rule_history import diff_rule_sets, rule_hit_counts
from gateway.rule_proposals import ProposalError
from gateway.services import Services
from risk_engine import (
    RuleSet,
    RuleSetInvalid,
)

__all__ = ["ROUTES"]

HISTORY = 30
_VERSION_RE = re.compile(r"[0-9]{1,12}\Z")


def _version(raw: object, field: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and _VERSION_RE.match(raw):
        return int(raw)
    raise BadRequest(f"invalid_{field}", f"{field} must be a rule set version number")


def _rule_set(doc: dict[str, Any]) -> RuleSet:
    try:
        return RuleSet.from_document({"rules": doc.get("rules")})
    except RuleSetInvalid as exc:
        raise rule_set_refused(exc) from exc


async def _stored(svc: Services, version: int) -> list[dict[str, Any]]:
    return [r.to_dict() for r in (await stored_rules(svc, version)).rules]


@operation(Permission.VIEW)
async def active(request: Request, who: SignedIn) -> Response:
    """The active version and its rules, each rule's recent hits, the publish history."""
    svc = services(request)
    version = await svc.risk.rule_store.active_version()
    history = await svc.risk.rule_store.audit(HISTORY)
    hits = await rule_hit_counts(svc.redis)
    return answer({"version": version,
                   "rules": await _stored(svc, version) if version is not None else [],
                   "hits": hits.to_dict(), "history": [asdict(e) for e in history]})


@operation(Permission.VIEW)
async def stored_version(request: Request, who: SignedIn) -> Response:
    svc = services(request)
    version = _version(request.path_params["version"], "version")
    rules = await _stored(svc, version)
    return answer({"version": version, "active": version == await svc.risk.rule_store.active_version(), "rules": rules})


@operation(Permission.VIEW)
async def diff(request: Request, who: SignedIn) -> Response:
    """What changed from version ``from`` to version ``to`` (the active one by default)."""
    svc = services(request)
    q = request.query_params
    old = _version(q.get("from"), "from")
    new = _version(q["to"], "to") if "to" in q else await svc.risk.rule_store.active_version()
    if new is None:
        raise NotFound("rule_version_not_found", "no rule set has been published")
    changes = diff_rule_sets(await _stored(svc, old), await _stored(svc, new),
                             old_name=f"v{old}", new_name=f"v{new}")
    return answer({"from": old, "to": new, **changes})


@operation(Permission.PROPOSE_RULES)
async def validate(request: Request, who: SignedIn) -> Response:
    """Always 200: the problems of the editor's text (an empty list when it is valid)."""
    text = json_body(request).get("text")
    if not isinstance(text, str):
        raise BadRequest("text_required", "text (the rule set as the editor shows it) is required")
    parsed = parse_rule_text(text)
    return answer({"ok": parsed.ok, "problems": list(parsed.problems),
                   "rules": len(parsed.rule_set.rules) if parsed.rule_set else 0})


@operation(Permission.PROPOSE_RULES)
async def dry_backtest(request: Request, who: SignedIn) -> Response:
    """Replay the recorded decisions with candidate rules; nothing is stored."""
    return answer({"backtest": await backtest_rules(services(request), _rule_set(json_body(request)))})


@operation(Permission.PROPOSE_RULES)
async def propose(request: Request, who: SignedIn) -> Response:
    doc = json_body(request)
    proposal, seq = await propose_rules(services(request), _rule_set(doc), author=who.name,
                                        reason=doc.get("reason"), now=time.time())
    return answer({**proposal.to_dict(), "audit_seq": seq}, status=201)


@operation(Permission.PROPOSE_RULES)
async def rollback(request: Request, who: SignedIn) -> Response:
    """A proposal to publish a stored version's rules again, approved like any other."""
    doc = json_body(request)
    proposal, seq = await propose_rollback(services(request), _version(doc.get("version"), "version"),
                                           author=who.name, reason=doc.get("reason"), now=time.time())
    return answer({**proposal.to_dict(), "audit_seq": seq}, status=201)


@operation(Permission.VIEW)
async def list_proposals(request: Request, who: SignedIn) -> Response:
    found = await listed_proposals(services(request), request)
    return answer({"proposals": [p.to_dict() for p in found]})


@operation(Permission.VIEW)
async def get_proposal(request: Request, who: SignedIn) -> Response:
    try:
        proposal = await proposals(services(request)).get(request.path_params["proposal_id"])
    except ProposalError as exc:
        raise refusal(exc) from exc
    return answer(proposal.to_dict())


@operation(Permission.APPROVE_RULES)
async def approve(request: Request, who: SignedIn) -> Response:
    proposal, seq = await approve_rules(services(request), request.path_params["proposal_id"],
                                        approver=who.name, now=time.time())
    return answer({**proposal.to_dict(), "audit_seq": seq})


@operation(Permission.APPROVE_RULES, Permission.PROPOSE_RULES)
async def reject(request: Request, who: SignedIn) -> Response:
    """Approvers reject; an author may withdraw their own proposal."""
    svc = services(request)
    proposal_id = request.path_params["proposal_id"]
    try:
        proposal = await proposals(svc).get(proposal_id)
    except ProposalError as exc:
        raise refusal(exc) from exc
    if not may_reject(who, proposal.author):
        raise Forbidden("console_role_forbidden",
                        f"the {who.role.value} role may not reject another analyst's proposal")
    proposal, seq = await reject_rules(svc, proposal_id, reviewer=who.name,
                                       reason=json_body(request).get("reason"), now=time.time())
    return answer({**proposal.to_dict(), "audit_seq": seq})


ROUTES = [
    Route("/rules", active, methods=["GET"]),
    Route("/rules/versions/{version}", stored_version, methods=["GET"]),
    Route("/rules/diff", diff, methods=["GET"]),
    Route("/rules/validate", validate, methods=["POST"]),
    Route("/rules/backtest", dry_backtest, methods=["POST"]),
    Route("/rules/rollback", rollback, methods=["POST"]),
    Route("/rules/proposals", propose, methods=["POST"]),
    Route("/rules/proposals", list_proposals, methods=["GET"]),
    Route("/rules/proposals/{proposal_id}", get_proposal, methods=["GET"]),
    Route("/rules/proposals/{proposal_id}/approve", approve, methods=["POST"]),
    Route("/rules/proposals/{proposal_id}/reject", reject, methods=["POST"]),
]

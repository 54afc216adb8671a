"""Console rule pages: the active set with each rule's recent hits, the version history
with what each version changed, the editor (validate as you type, backtest), and
maker-checker proposals published only by a second analyst, rollbacks included.

The author and approver are the signed-in analysts, never names from a form.
Proposals, publishes and refusals are the same records and audit entries as
through the admin API (gateway.api_console).
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.analyst_actions import (
    approve_rules,
    backtest_rules,
    proposals,
    propose_rollback,
    propose_rules,
    refusal,
    reject_rules,
    stored_rules,
)
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, action, done, may_reject, page, services
from gateway.console.render import fragment, render
from gateway.console.rule_text import ParsedRules, parse_rule_text, rule_text
from gateway.errors import BadRequest, Forbidden, GatewayError
from gateway.rule_history import diff_rule_sets, rule_hit_counts
from gateway.rule_proposals import (
    ProposalError,
    ProposalStatus,
)

__all__ = ["ROUTES"]


class RuleTextInvalid(GatewayError):
    status = 422
    code = "rule_set_invalid"
    message = "the rule set does not validate"


def _json(doc: object) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json",
                    headers={"cache-control": "no-store"})


def _parsed(fields: dict[str, str]) -> ParsedRules:
    parsed = parse_rule_text(fields.get("text", ""))
    if not parsed.ok:
        raise RuleTextInvalid(extra={"problems": list(parsed.problems)})
    return parsed


_VERSION_RE = re.compile(r"[0-9]{1,12}\Z")


def _line_class(index: int, line: str) -> str:
    if index < 2 and line.startswith(("+++", "---")):  # the two names; "-" "--..." is a removed line
        return "diff-file"
    if line.startswith("@@"):
        return "diff-hunk"
    return {"+": "diff-add", "-": "diff-del"}.get(line[:1], "diff-ctx")


def _diff_view(old: list[dict[str, Any]], new: list[dict[str, Any]], *, old_name: str,
               new_name: str) -> dict[str, Any]:
    """diff_rule_sets for a page: the rules added and removed whole, and each unified line
    with its class."""
    diff = diff_rule_sets(old, new, old_name=old_name, new_name=new_name)
    before, after = {str(r.get("id")): r for r in old}, {str(r.get("id")): r for r in new}
    return {"old_name": old_name, "new_name": new_name,
            "added": [after[i] for i in diff["added"]], "removed": [before[i] for i in diff["removed"]],
            "changed": diff["changed"],
            "lines": [(_line_class(i, line), line) for i, line in enumerate(diff["unified"])]}


@page(Permission.VIEW)
async def rules_home(request: Request, who: SignedIn) -> Response:
    svc = services(request)
    store = svc.risk.rule_store
    try:
        version = await store.active_version()
        active = await store.active() if version is not None else None
        history = await store.audit(30)
        pending = await proposals(svc).list(count=30)
        hits = await rule_hit_counts(svc.redis)
    except ProposalError as exc:
        raise refusal(exc) from exc
    return render("rules.html", who=who, version=version,
                  rules=[r.to_dict() for r in active.rules] if active else [],
                  history=history, proposals=pending, hits=hits)


@page(Permission.VIEW)
async def version_page(request: Request, who: SignedIn) -> Response:
    """One stored version: its rules and what changed against another (by default the one before)."""
    version: int = request.path_params["version"]
    raw = request.query_params.get("against", "")
    if raw and not _VERSION_RE.match(raw):
        raise BadRequest("invalid_against", "against must be a rule set version number")
    svc = services(request)
    rule_set = await stored_rules(svc, version)
    against = int(raw) if raw else (version - 1 if version > 1 else None)
    old = [r.to_dict() for r in (await stored_rules(svc, against)).rules] if against else []
    active = await svc.risk.rule_store.active_version()
    rules = [r.to_dict() for r in rule_set.rules]
    diff = _diff_view(old, rules, old_name=f"version {against}" if against else "nothing",
                      new_name=f"version {version}")
    return render("rule_version.html", who=who, rs=rule_set, version=version, rules=rules,
                  against=against, active=active, diff=diff)


@action(Permission.PROPOSE_RULES)
async def rollback(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """Propose the rules of a stored version again; a second analyst approves it as usual."""
    version: int = request.path_params["version"]
    proposal, seq = await propose_rollback(services(request), version, author=who.name,
                                           reason=fields.get("reason"), now=time.time())
    return done(request, f"/console/rules/proposals/{proposal.proposal_id}",
                proposal_id=proposal.proposal_id, audit_seq=seq)


@page(Permission.PROPOSE_RULES)
async def editor(request: Request, who: SignedIn) -> Response:
    store = services(request).risk.rule_store
    version = await store.active_version()
    active = await store.active() if version is not None else None
    text = rule_text([r.to_dict() for r in active.rules] if active else [])
    return render("rule_edit.html", who=who, version=version, text=text)


@action(Permission.PROPOSE_RULES)
async def validate(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """Always 200: the editor shows the problems (an empty list when the text is valid)."""
    parsed = parse_rule_text(fields.get("text", ""))
    return _json({"ok": parsed.ok, "problems": list(parsed.problems),
                  "rules": len(parsed.rule_set.rules) if parsed.rule_set else 0})


@action(Permission.PROPOSE_RULES)
async def dry_backtest(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """Replay the recorded decisions with the edited rules; nothing is stored."""
    summary = await backtest_rules(services(request), _parsed(fields).rule_set)  # type: ignore[arg-type]
    return _json({"ok": True, "backtest": summary,
                  "html": fragment("_backtest.html", bt=summary)})


@action(Permission.PROPOSE_RULES)
async def propose(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    parsed = _parsed(fields)
    proposal, seq = await propose_rules(services(request), parsed.rule_set,  # type: ignore[arg-type]
                                        author=who.name, reason=fields.get("reason"), now=time.time())
    return done(request, f"/console/rules/proposals/{proposal.proposal_id}",
                proposal_id=proposal.proposal_id, audit_seq=seq)


@page(Permission.VIEW)
async def proposal_page(request: Request, who: SignedIn) -> Response:
    svc = services(request)
    try:
        proposal = await proposals(svc).get(request.path_params["proposal_id"])
    except ProposalError as exc:
        raise refusal(exc) from exc
    base = proposal.base_version
    old = [r.to_dict() for r in (await stored_rules(svc, base)).rules] if base else []
    diff = _diff_view(old, list(proposal.rules), old_name=f"version {base}" if base else "nothing",
                      new_name=f"proposal {proposal.proposal_id}")
    return render("proposal.html", who=who, p=proposal, pending=proposal.status is ProposalStatus.PENDING,
                  text=rule_text(list(proposal.rules)), bt=proposal.backtest, diff=diff)


@action(Permission.APPROVE_RULES)
async def approve(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    proposal_id = request.path_params["proposal_id"]
    svc = services(request)
    now = time.time()
    proposal, seq = await approve_rules(svc, proposal_id, approver=who.name, now=now)
    return done(request, f"/console/rules/proposals/{proposal_id}",
                published_version=proposal.published_version, audit_seq=seq)


@action(Permission.VIEW)
async def reject(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """Approvers reject; an author may withdraw their own proposal."""
    proposal_id = request.path_params["proposal_id"]
    svc = services(request)
    store = proposals(svc)
    if not (who.allows(Permission.APPROVE_RULES) or who.allows(Permission.PROPOSE_RULES)):
        raise Forbidden("console_role_forbidden", f"the {who.role.value} role may not reject proposals")
    try:
        proposal = await store.get(proposal_id)
        if not may_reject(who, proposal.author):
            raise Forbidden("console_role_forbidden",
                            f"the {who.role.value} role may not reject another analyst's proposal")
    except ProposalError as exc:
        raise refusal(exc) from exc
    proposal, seq = await reject_rules(svc, proposal_id, reviewer=who.name, reason=fields.get("reason"),
                                       now=time.time())
    return done(request, f"/console/rules/proposals/{proposal_id}", audit_seq=seq)


ROUTES = [
    Route("/rules", rules_home, methods=["GET"]),
    Route("/rules/edit", editor, methods=["GET"]),
    Route("/rules/validate", validate, methods=["POST"]),
    Route("/rules/backtest", dry_backtest, methods=["POST"]),
    Route("/rules/proposals", propose, methods=["POST"]),
    Route("/rules/proposals/{proposal_id}", proposal_page, methods=["GET"]),
    Route("/rules/proposals/{proposal_id}/approve", approve, methods=["POST"]),
    Route("/rules/proposals/{proposal_id}/reject", reject, methods=["POST"]),
    Route("/rules/versions/{version:int}", version_page, methods=["GET"]),
    Route("/rules/versions/{version:int}/rollback", rollback, methods=["POST"]),
]

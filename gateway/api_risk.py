"""Admin API for the risk engine: labels, fraud reports, rule sets, recent decisions.

All need the admin token (``admin.token``; Authorization: Bearer).

    POST /admin/labels                 {"decision_id", "fraud": bool, "author"}     analyst label
    POST /admin/fraud-reports          {"decision_id", "author"}                    the bank confirms fraud
    GET  /admin/rules                  active version, its rules, the publish audit
    POST /admin/rules                  {"rules": [...], "author", "reason"}          validate + publish
    POST /admin/rules/rollback         {"version", "author", "reason"}
    GET  /admin/decisions?count=50     the newest decisions (features, score, rules, tier, outcome)

A rule set that does not validate is refused with 422 ``rule_set_invalid`` and
a ``problems`` list (rule id, kind, message, line, column); nothing is written.
"""

from __future__ import annotations

import re
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api_admin import require_admin
from gateway.api_auth import _json_body, json_response
from gateway.errors import BadRequest, GatewayError, NotFound
from risk_engine import (
    DecisionNotFound,
    LabelInvalid,
    LabelSource,
    RuleSet,
    RuleSetInvalid,
    RuleSetNotFound,
    read_decisions,
    submit_label,
)

__all__ = ["ROUTES"]


class RuleSetRefused(GatewayError):
    status = 422
    code = "rule_set_invalid"
    message = "the rule set does not validate"


def _author(doc: dict[str, object]) -> str:
    author = doc.get("author")
    if not isinstance(author, str) or not author.strip() or len(author) > 64:
        raise BadRequest("author_required", "author (who makes this change) is required")
    return author.strip()


async def _label(request: Request, source: LabelSource, fraud: bool | None) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    decision_id = doc.get("decision_id")
    if not isinstance(decision_id, str) or not decision_id:
        raise BadRequest("missing_field", "decision_id is required")
    if fraud is None:
        fraud = doc.get("fraud")  # type: ignore[assignment]
        if not isinstance(fraud, bool):
            raise BadRequest("missing_field", "fraud (true or false) is required")
    try:
        entry = await submit_label(svc.redis, decision_id, fraud=fraud, source=source,
                                   now=time.time(), author=_author(doc))
    except DecisionNotFound as exc:
        raise NotFound("decision_not_found", "no recorded decision with that id") from exc
    except LabelInvalid as exc:
        raise BadRequest("label_invalid", str(exc)) from exc
    return json_response({"status": "queued" if entry else "kept_stronger_label",
                          "decision_id": decision_id, "fraud": fraud, "source": source.value},
                         status=202)


async def analyst_label(request: Request) -> Response:
    return await _label(request, LabelSource.ANALYST, None)


async def fraud_report(request: Request) -> Response:
    return await _label(request, LabelSource.UPSTREAM_REPORT, True)


async def get_rules(request: Request) -> Response:
    svc = require_admin(request)
    store = svc.risk.rule_store
    version = await store.active_version()
    active = await store.active() if version is not None else None
    audit = await store.audit(20)
    return json_response({
        "active_version": version,
        "rules": [r.to_dict() for r in active.rules] if active else None,
        "audit": [{"version": e.version, "action": e.action, "previous": e.previous,
                   "author": e.author, "reason": e.reason, "at": e.at} for e in audit],
    })


async def publish_rules(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    author = _author(doc)
    reason = doc.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest("reason_required", "reason (why this change) is required")
    try:
        rule_set = RuleSet.from_document({"rules": doc.get("rules")})
        version = await svc.risk.rule_store.publish(rule_set, author=author, reason=reason,
                                                    now=time.time())
    except RuleSetInvalid as exc:
        raise RuleSetRefused(message=str(exc), extra={"problems": [
            {"rule": p.rule_id, "kind": p.kind, "message": p.message, "line": p.line,
             "column": p.column} for p in exc.problems]}) from exc
    return json_response({"status": "published", "version": version}, status=201)


async def rollback_rules(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    version = doc.get("version")
    reason = doc.get("reason")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BadRequest("missing_field", "version (an integer) is required")
    if not isinstance(reason, str) or not reason.strip():
        raise BadRequest("reason_required", "reason (why this change) is required")
    try:
        await svc.risk.rule_store.rollback(version, author=_author(doc), reason=reason, now=time.time())
    except RuleSetNotFound as exc:
        raise NotFound("rule_set_not_found", f"no rule set version {version}") from exc
    return json_response({"status": "rolled_back", "version": version})


async def recent_decisions(request: Request) -> Response:
    svc = require_admin(request)
    raw = request.query_params.get("count", "50")
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= 500:  # not isdigit(): "²"
        raise BadRequest("invalid_count", "count must be between 1 and 500")
    rows = await read_decisions(svc.redis, count=int(raw), newest_first=True)
    return json_response({"decisions": [{"stream_id": sid, **_event(e)} for sid, e in rows]})


def _event(event: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(event)  # type: ignore[call-overload]


ROUTES = [
    Route("/admin/labels", analyst_label, methods=["POST"]),
    Route("/admin/fraud-reports", fraud_report, methods=["POST"]),
    Route("/admin/rules", get_rules, methods=["GET"]),
    Route("/admin/rules", publish_rules, methods=["POST"]),
    Route("/admin/rules/rollback", rollback_rules, methods=["POST"]),
    Route("/admin/decisions", recent_decisions, methods=["GET"]),
]

"""``GET /admin/api/openapi.json``: the OpenAPI 3.0 description of the session admin API.

Written by hand, like gateway.openapi for the public routes. Paths are relative
to the server ``/admin/api``. Every operation carries ``x-riskgate-permissions``
(the console permissions, any one of which the role must grant); every unsafe
one takes the ``X-CSRF-Token`` header. A test holds the document and the
mounted routes to each other, both ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.admin_api.auth import answer, operation
from gateway.console.analysts import Permission, Role
from gateway.console.auth import SignedIn
from gateway.rule_proposals import ProposalStatus
from risk_engine import Outcome, RiskLevel

__all__ = ["OPENAPI", "openapi"]

_P = Permission
_OBJECT: dict[str, Any] = {"type": "object"}
_STRING = {"type": "string"}
_VERSION = {"type": "integer", "minimum": 0}
_CSRF = {"$ref": "#/components/parameters/CsrfToken"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _path(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or _STRING}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    out = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": _json({"type": "object", "required": required,
                                                 "properties": properties})}


def _op(summary: str, *permissions: Permission, unsafe: bool = False, params: Sequence[dict[str, Any]] = (),
        body: dict[str, Any] | None = None, ok: str = "200", ok_description: str = "Done",
        refusals: tuple[str, ...] = ()) -> dict[str, Any]:
    """One operation: the 401/403 (and 400 for bad input) every call can get, plus ``refusals``."""
    op: dict[str, Any] = {
        "summary": summary,
        "x-riskgate-permissions": [p.value for p in permissions],
        "parameters": [*params, *([_CSRF] if unsafe else [])],
        "responses": {ok: {"description": ok_description, "content": _json(_OBJECT)},
                      "400": _ref("BadRequest"), "401": _ref("SignInRequired"), "403": _ref("Forbidden"),
                      **{code: _ref(_NAMES[code]) for code in refusals}},
    }
    if body is not None:
        op["requestBody"] = body
    return op


_NAMES = {"404": "NotFound", "409": "Conflict", "422": "Invalid", "503": "StateUnavailable"}
_RULES = {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}
_REASON = {"type": "string", "minLength": 1, "maxLength": 1000}
_OUTCOMES = sorted(v for k, v in vars(Outcome).items() if k.isupper())
_FEED_PARAMS = [
    _query("outcome", {"type": "string", "enum": _OUTCOMES}),
    _query("level", {"type": "string", "enum": [lv.value for lv in RiskLevel]}),
    _query("rule", _STRING, "a rule id, hit active or in shadow"),
    _query("user", _STRING),
    _query("action", _STRING),
    _query("since", _STRING, "decided at or after: unix seconds or ISO 8601 (UTC unless an offset is given)"),
    _query("until", _STRING, "decided before: unix seconds or ISO 8601"),
    _query("count", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    _query("before", {"type": "string", "pattern": "^[0-9]{1,20}-[0-9]{1,20}$"},
           "next_before of the previous page"),
]
_PROPOSAL_ID = _path("proposal_id")
_ANALYST = _path("name", {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"})
_ROLE = {"type": "string", "enum": [r.value for r in Role]}
_OPS_DOCUMENT = {"business": _OBJECT, "channels": _OBJECT, "parameters": _OBJECT,
                 "reason": _REASON, "base_version": _VERSION}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "riskgate admin API", "version": "1",
        "description": "The analyst console's operations as JSON, behind the console's passkey "
                       "sessions and roles (docs/admin-api.md). Sign in at /console/login; GET "
                       "/session gives the CSRF token every call but GET sends as X-CSRF-Token.",
    },
    "servers": [{"url": "/admin/api"}],
    "security": [{"consoleSession": []}],
    "paths": {
        "/openapi.json": {"get": _op("This document", _P.VIEW, ok_description="OpenAPI 3.0")},
        "/session": {
            "get": _op("The signed-in analyst: name, role, permissions and the CSRF token", _P.VIEW),
            "delete": _op("Sign out (the console too); the cookies are cleared", _P.VIEW, unsafe=True),
        },
        "/decisions": {"get": _op("Recorded decisions, newest first, filtered", _P.VIEW,
                                  params=_FEED_PARAMS, refusals=("503",))},
        "/decisions/{decision_id}": {"get": _op(
            "One decision with its label and the model's feature contributions", _P.VIEW,
            params=[_path("decision_id")], refusals=("404", "503"))},
        "/decisions/{decision_id}/label": {"post": _op(
            "Label a decision (unsure: kept for the review queue only)", _P.LABEL, unsafe=True,
            params=[_path("decision_id")],
            body=_body({"verdict": {"type": "string", "enum": ["fraud", "legitimate", "unsure"]}},
                       ["verdict"]),
            refusals=("404", "503"))},
        "/review": {"get": _op("Medium and high risk decisions waiting for a label", _P.VIEW,
                               refusals=("503",))},
        "/rules": {"get": _op("The active rule set, each rule's recent hits, the publish history",
                              _P.VIEW, refusals=("503",))},
        "/rules/versions/{version}": {"get": _op("A stored rule set version", _P.VIEW,
                                                 params=[_path("version", _VERSION)],
                                                 refusals=("404", "503"))},
        "/rules/diff": {"get": _op(
            "Rules added, removed and changed between two versions", _P.VIEW,
            params=[{**_query("from", _VERSION), "required": True},
                    _query("to", _VERSION, "the active version by default")],
            refusals=("404", "503"))},
        "/rules/validate": {"post": _op(
            "Validate the editor's text (always 200, with the problems)", _P.PROPOSE_RULES, unsafe=True,
            body=_body({"text": _STRING}, ["text"]))},
        "/rules/backtest": {"post": _op(
            "Replay the recorded decisions with candidate rules; nothing is stored",
            _P.PROPOSE_RULES, unsafe=True, body=_body({"rules": _RULES}, ["rules"]),
            refusals=("422", "503"))},
        "/rules/rollback": {"post": _op(
            "Propose publishing a stored version again (a second analyst approves)", _P.PROPOSE_RULES,
            unsafe=True, body=_body({"version": _VERSION, "reason": _REASON}, ["version", "reason"]),
            ok="201", ok_description="The proposal", refusals=("404", "422", "503"))},
        "/rules/proposals": {
            "get": _op("Rule proposals, newest first", _P.VIEW, params=[
                _query("status", {"type": "string", "enum": [s.value for s in ProposalStatus]}),
                _query("count", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50})],
                refusals=("503",)),
            "post": _op("Propose a rule set: validated, backtested, stored for a second analyst",
                        _P.PROPOSE_RULES, unsafe=True,
                        body=_body({"rules": _RULES, "reason": _REASON}, ["rules", "reason"]),
                        ok="201", ok_description="The proposal with its backtest",
                        refusals=("422", "503")),
        },
        "/rules/proposals/{proposal_id}": {"get": _op("One proposal", _P.VIEW, params=[_PROPOSAL_ID],
                                                      refusals=("404", "503"))},
        "/rules/proposals/{proposal_id}/approve": {"post": _op(
            "Publish a pending proposal; refused (403 maker_checker_same_person, audited) for its author",
            _P.APPROVE_RULES, unsafe=True, params=[_PROPOSAL_ID], refusals=("404", "409", "422", "503"))},
        "/rules/proposals/{proposal_id}/reject": {"post": _op(
            "Reject a pending proposal (an approver), or withdraw one's own (its author)",
            _P.APPROVE_RULES, _P.PROPOSE_RULES, unsafe=True, params=[_PROPOSAL_ID],
            body=_body({"reason": _REASON}, ["reason"]), refusals=("404", "409", "503"))},
        "/ops": {
            "get": _op("The operations settings in force, their values and history", _P.VIEW,
                       refusals=("503",)),
            "put": _op("Publish a whole new operations document", _P.MANAGE_OPS, unsafe=True,
                       body=_body(_OPS_DOCUMENT, ["reason"]), refusals=("409", "422", "503")),
        },
        "/ops/rollback": {"post": _op(
            "Publish a stored operations version again", _P.MANAGE_OPS, unsafe=True,
            body=_body({"version": _VERSION, "reason": _REASON}, ["version", "reason"]),
            refusals=("404", "422", "503"))},
        "/model": {"get": _op(
            "The published champion and challenger, and per time bucket ROC AUC, precision and "
            "recall at each threshold, step-up rate and score histogram", _P.VIEW,
            params=[_query("days", {"type": "integer", "minimum": 1, "maximum": 90, "default": 14},
                           "the window; by the hour up to 2 days, else by the day")],
            refusals=("503",))},
        "/audit": {"get": _op("Audit trail entries, newest first", _P.VIEW, params=[
            _query("count", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}),
            _query("before", {"type": "integer", "minimum": 0}, "an entry's seq")], refusals=("503",))},
        "/audit/verify": {"get": _op("Recompute the audit hash chain", _P.VIEW, refusals=("503",))},
        "/audit/decisions/verify": {"get": _op(
            "Recompute the hash chains of the decision stream; the first decision that does not hold",
            _P.VIEW, refusals=("503",))},
        "/analysts": {
            "get": _op("Analysts, their roles and passkeys", _P.MANAGE_ANALYSTS, refusals=("503",)),
            "post": _op("Invite an analyst: a one-time enrolment link", _P.MANAGE_ANALYSTS, unsafe=True,
                        body=_body({"name": _ANALYST["schema"], "role": _ROLE}, ["name", "role"]),
                        ok="201", ok_description="The enrolment link", refusals=("409", "503")),
        },
        "/analysts/{name}/role": {"post": _op(
            "Change an analyst's role (not one's own)", _P.MANAGE_ANALYSTS, unsafe=True, params=[_ANALYST],
            body=_body({"role": _ROLE}, ["role"]), refusals=("404", "503"))},
        "/analysts/{name}": {"delete": _op("Remove an analyst and their passkeys (not oneself)",
                                           _P.MANAGE_ANALYSTS, unsafe=True, params=[_ANALYST],
                                           refusals=("404", "503"))},
    },
    "components": {
        "securitySchemes": {
            "consoleSession": {"type": "apiKey", "in": "cookie", "name": "riskgate_console",
                               "description": "The console session, set by a passkey sign-in at "
                                              "/console/login for Path=/console and Path=/admin/api"},
        },
        "parameters": {
            "CsrfToken": {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": _STRING,
                          "description": "The session's CSRF token (csrf from GET /session)"},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message"],
                      "properties": {"error": _STRING, "message": _STRING,
                                     "problems": {"type": "array", "items": _OBJECT}}},
            "Rule": {"type": "object", "required": ["id", "expression", "effect"], "properties": {
                "id": _STRING, "expression": _STRING, "description": _STRING,
                "effect": {"type": "string", "enum": ["add_score", "min_level", "block", "allow", "tag"]},
                "mode": {"type": "string", "enum": ["active", "shadow"]},
                "score": {"type": "number"}, "level": _STRING, "tag": _STRING}},
        },
        "responses": {
            name: {"description": description,
                   "content": _json({"$ref": "#/components/schemas/Error"})}
            for name, description in {
                "BadRequest": "Malformed input (invalid_json, invalid_verdict, reason_required, ...)",
                "SignInRequired": "console_sign_in_required: no live console session",
                "Forbidden": "csrf_invalid, origin_refused, console_role_forbidden, "
                             "maker_checker_same_person or analyst_self_change",
                "NotFound": "decision_not_found, proposal_not_found, rule_version_not_found, "
                            "ops_version_not_found or analyst_not_found",
                "Conflict": "proposal_not_pending, proposal_stale, ops_version_conflict or analyst_exists",
                "Invalid": "rule_set_invalid or ops_settings_invalid, with problems",
                "StateUnavailable": "state_unavailable: Redis is unreachable; retry",
            }.items()
        },
    },
}


@operation(Permission.VIEW)
async def openapi(request: Request, who: SignedIn) -> Response:
    return answer(OPENAPI)

"""Admin API for the operations settings (admin token): business and channel
switches and live parameters, versioned and audited.

    GET  /admin/ops                      current version, its document, the values in force, history
    PUT  /admin/ops                      {"business", "channels", "parameters", "author", "reason",
                                          "base_version"?}  the new full document
    POST /admin/ops/rollback             {"version", "author", "reason"}

A document that does not validate is refused with 422 ``ops_settings_invalid``
and a ``problems`` list (field, message); nothing is written. Every change is
appended to the audit trail (gateway.audit_trail) with the author as actor.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.dynamic_linking import format_amount
from gateway.analyst_actions import audit
from gateway.api_admin import require_admin
from gateway.api_auth import _json_body, json_response
from gateway.audit_trail import AuditTrailError
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.services import Services
from gateway.switches import (
    TOOL_PARAMETERS,
    OpsDocumentInvalid,
    OpsError,
    OpsSettings,
    OpsVersionConflict,
    OpsVersionNotFound,
)
from gateway.switches_store import OpsRecord
from limits import Tier

__all__ = ["ROUTES"]

_HISTORY = 20
_META = frozenset({"author", "reason", "base_version"})


class OpsRefused(GatewayError):
    status = 422
    code = "ops_settings_invalid"
    message = "the operations settings do not validate"


class OpsConflict(GatewayError):
    status = 409
    code = "ops_version_conflict"
    message = "the operations settings changed meanwhile"


class OpsStateUnavailable(GatewayError):
    status = 503
    code = "state_unavailable"
    message = "the gateway cannot reach its state store; retry shortly"


def _http(exc: OpsError | AuditTrailError) -> GatewayError:
    if isinstance(exc, OpsDocumentInvalid):
        return OpsRefused(message=exc.message, extra={"problems": exc.problems})
    if isinstance(exc, OpsVersionNotFound):
        return NotFound(exc.code, exc.message)
    if isinstance(exc, OpsVersionConflict):
        return OpsConflict(exc.code, exc.message)
    return OpsStateUnavailable(message=exc.message)


def _person(doc: dict[str, object]) -> str:
    who = doc.get("author")
    if not isinstance(who, str) or not who.strip() or len(who) > 64:
        raise BadRequest("author_required", "author (who makes this change) is required")
    return who.strip()


def _reason(doc: dict[str, object]) -> str:
    why = doc.get("reason")
    if not isinstance(why, str) or not why.strip() or len(why) > 1000:
        raise BadRequest("reason_required", "reason (why this change, up to 1000 characters) is required")
    return why.strip()


def _version(doc: dict[str, object], field: str, *, required: bool) -> int | None:
    value = doc.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"invalid_{field}", f"{field} must be a version number")
    return value


def _in_force(svc: Services, settings: OpsSettings) -> dict[str, object]:
    """The limit table and tool parameters once the settings' overrides apply."""
    switches = svc.switches
    limits = settings.parameters.limits(switches.base_limits)
    doc: dict[str, object] = {"tiers": {t.label: {
        "per_transaction": format_amount(limits.tier_limit(t).per_transaction),
        "daily": format_amount(limits.tier_limit(t).daily)} for t in Tier}}
    for name in TOOL_PARAMETERS:
        override = getattr(settings.parameters, name)
        doc[name] = override if override is not None else getattr(switches.base_stepup, name)
    return doc


async def get_ops(request: Request) -> Response:
    svc = require_admin(request)
    store = svc.switches.store
    try:
        record, history = await store.current(), await store.history(_HISTORY)
    except OpsError as exc:
        raise _http(exc) from exc
    if record is None:
        record = OpsRecord(0, OpsSettings().document(), "", "", 0.0)
    try:
        settings, ignored = svc.switches.stored(record)
    except OpsDocumentInvalid as exc:  # not even its switches read: gateways keep what they had
        settings, ignored = OpsSettings(version=record.version), exc
    doc = {**record.summary(), "document": record.document, "in_force": _in_force(svc, settings),
           "history": [r.summary() for r in history]}
    if ignored is not None:
        doc["problems"] = ignored.problems
    return json_response(doc)


async def _publish(svc: Services, settings: OpsSettings, *, author: str, reason: str, now: float,
                   base_version: int | None = None, rollback_of: int | None = None) -> int:
    try:
        version = await svc.switches.store.publish(settings, author=author, reason=reason, now=now,
                                                   base_version=base_version, rollback_of=rollback_of)
    except OpsError as exc:
        raise _http(exc) from exc
    svc.switches.invalidate()  # this process: at its next request, not 0.5 s later
    return version


async def put_ops(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    author, reason = _person(doc), _reason(doc)
    base_version = _version(doc, "base_version", required=False)
    now = time.time()
    try:
        settings = svc.switches.parse({k: v for k, v in doc.items() if k not in _META}, now=now)
    except OpsDocumentInvalid as exc:
        raise _http(exc) from exc
    version = await _publish(svc, settings, author=author, reason=reason, now=now,
                             base_version=base_version)
    seq = await audit(svc, author, "ops.publish", {
        "version": version, "reason": reason, "document": settings.document()}, now)
    return json_response({"version": version, "document": settings.document(),
                          "in_force": _in_force(svc, settings), "audit_seq": seq})


async def rollback_ops(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    target = _version(doc, "version", required=True)
    author, reason = _person(doc), _reason(doc)
    now = time.time()
    try:
        record = await svc.switches.store.get(target)  # type: ignore[arg-type]
        # Not against `now`: an until time that has passed only means that switch is on.
        settings = svc.switches.parse(record.document)
    except OpsError as exc:
        raise _http(exc) from exc
    version = await _publish(svc, settings, author=author, reason=reason, now=now, rollback_of=target)
    seq = await audit(svc, author, "ops.rollback", {
        "version": version, "rollback_of": target, "reason": reason,
        "document": settings.document()}, now)
    return json_response({"version": version, "rollback_of": target, "document": settings.document(),
                          "in_force": _in_force(svc, settings), "audit_seq": seq})


ROUTES = [
    Route("/admin/ops", get_ops, methods=["GET"]),
    Route("/admin/ops", put_ops, methods=["PUT"]),
    Route("/admin/ops/rollback", rollback_ops, methods=["POST"]),
]

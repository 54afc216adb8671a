"""Console pages for the audit trail (with the chain check) and for analysts (admins only)."""

from __future__ import annotations

import re
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.analyst_actions import refusal
from gateway.audit_trail import AuditTrail, AuditTrailError
from gateway.console import analyst_admin
from gateway.console.analysts import ENROLMENT_TTL, AnalystStore, Permission, Role
from gateway.console.auth import SignedIn, action, page, services
from gateway.console.render import render
from gateway.errors import BadRequest
from risk_engine import verify_decisions

__all__ = ["ROUTES"]

_SEQ_RE = re.compile(r"[0-9]{1,20}\Z")
PAGE = 100


@page(Permission.VIEW)
async def audit(request: Request, who: SignedIn) -> Response:
    raw = request.query_params.get("before")
    if raw is not None and not _SEQ_RE.match(raw):
        raise BadRequest("invalid_cursor", "before must be an audit seq")
    trail = AuditTrail(services(request).redis)
    try:
        entries = await trail.entries(count=PAGE, before_seq=int(raw) if raw else None)
        check = await trail.verify()
    except AuditTrailError as exc:
        raise refusal(exc) from exc
    older = entries[-1].seq if entries and entries[-1].seq > 1 else None
    return render("audit.html", who=who, entries=entries, check=check, older=older)


@page(Permission.VIEW)
async def decision_chains(request: Request, who: SignedIn) -> Response:
    """Recompute every decision's hash-chain link (reads the whole decision stream)."""
    check = await verify_decisions(services(request).redis)
    return render("decision_chains.html", who=who, check=check, summary=check.summary())


async def _analysts_page(request: Request, who: SignedIn, **extra: object) -> Response:
    analysts = await AnalystStore(services(request).redis).list()
    return render("analysts.html", who=who, analysts=analysts, roles=[r.value for r in Role],
                  ttl_hours=ENROLMENT_TTL // 3600, **{"link": None, "invited": None, **extra})


@page(Permission.MANAGE_ANALYSTS)
async def analysts(request: Request, who: SignedIn) -> Response:
    return await _analysts_page(request, who)


@action(Permission.MANAGE_ANALYSTS)
async def invite(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    name, role = fields.get("name", "").strip(), analyst_admin.role_named(fields.get("role", ""))
    token, _seq = await analyst_admin.invite(services(request), name, role, actor=who.name,
                                             now=time.time())
    link = analyst_admin.enrolment_link(request, token)
    if request.headers.get("content-type", "").startswith("application/json"):
        return Response(orjson.dumps({"ok": True, "name": name, "role": role.value, "link": link}),
                        media_type="application/json", headers={"cache-control": "no-store"})
    return await _analysts_page(request, who, link=link, invited=name)


ROUTES = [
    Route("/audit", audit, methods=["GET"]),
    Route("/audit/decisions", decision_chains, methods=["GET"]),
    Route("/analysts", analysts, methods=["GET"]),
    Route("/analysts", invite, methods=["POST"]),
]

"""The hash-chained audit trail over /admin/api: entries newest first, and the chain check."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.auth import answer, operation
from gateway.analyst_actions import refusal
from gateway.api_console import audit_cursor, query_count
from gateway.audit_trail import AuditTrail, AuditTrailError
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, services
from risk_engine import verify_decisions

__all__ = ["ROUTES"]


@operation(Permission.VIEW)
async def entries(request: Request, who: SignedIn) -> Response:
    """``count`` entries (100 by default) older than seq ``before``, newest first."""
    before, count = audit_cursor(request), query_count(request, 100)
    try:
        found = await AuditTrail(services(request).redis).entries(count=count, before_seq=before)
    except AuditTrailError as exc:
        raise refusal(exc) from exc
    return answer({"entries": [e.to_dict() for e in found]})


@operation(Permission.VIEW)
async def verify(request: Request, who: SignedIn) -> Response:
    """Recompute the chain; name the first entry whose contents, link or position do not hold."""
    try:
        result = await AuditTrail(services(request).redis).verify()
    except AuditTrailError as exc:
        raise refusal(exc) from exc
    return answer(result.to_dict())


@operation(Permission.VIEW)
async def verify_decision_chains(request: Request, who: SignedIn) -> Response:
    """Recompute every recorded decision's hash-chain link; name the first that does not hold."""
    result = await verify_decisions(services(request).redis)
    return answer(result.to_dict())


ROUTES = [
    Route("/audit", entries, methods=["GET"]),
    Route("/audit/verify", verify, methods=["GET"]),
    Route("/audit/decisions/verify", verify_decision_chains, methods=["GET"]),
]

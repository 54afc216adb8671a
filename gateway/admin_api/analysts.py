"""Analysts over /admin/api (``manage_analysts``): list, invite with a one-time
enrolment link, change a role, remove — through gateway.console.analyst_admin, each
audited with the signed-in admin as actor.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.auth import answer, json_body, operation
from gateway.console import analyst_admin
from gateway.console.analysts import ENROLMENT_TTL, Analyst, AnalystStore, Permission
from gateway.console.auth import SignedIn, services

__all__ = ["ROUTES"]


def _view(analyst: Analyst) -> dict[str, object]:
    return {"name": analyst.name, "role": analyst.role.value, "created_at": analyst.created_at,
            "passkeys": len(analyst.credentials),
            "flagged_passkeys": sum(1 for c in analyst.credentials if c.flagged)}


@operation(Permission.MANAGE_ANALYSTS)
async def list_analysts(request: Request, who: SignedIn) -> Response:
    found = await AnalystStore(services(request).redis).list()
    return answer({"analysts": [_view(a) for a in found]})


@operation(Permission.MANAGE_ANALYSTS)
async def invite(request: Request, who: SignedIn) -> Response:
    """A new analyst without passkeys and the link (valid once, for 24 hours) to register one."""
    doc = json_body(request)
    name = doc.get("name")
    name = name.strip() if isinstance(name, str) else ""
    role = analyst_admin.role_named(doc.get("role"))
    token, seq = await analyst_admin.invite(services(request), name, role, actor=who.name, now=time.time())
    return answer({"name": name, "role": role.value, "link": analyst_admin.enrolment_link(request, token),
                   "expires_in": ENROLMENT_TTL, "audit_seq": seq}, status=201)


@operation(Permission.MANAGE_ANALYSTS)
async def change_role(request: Request, who: SignedIn) -> Response:
    role = analyst_admin.role_named(json_body(request).get("role"))
    before, seq = await analyst_admin.change_role(services(request), request.path_params["name"], role,
                                                  actor=who.name, now=time.time())
    return answer({"name": before.name, "role": role.value, "previous": before.role.value,
                   "audit_seq": seq})


@operation(Permission.MANAGE_ANALYSTS)
async def remove(request: Request, who: SignedIn) -> Response:
    removed, seq = await analyst_admin.remove(services(request), request.path_params["name"],
                                              actor=who.name, now=time.time())
    return answer({"name": removed.name, "removed": True, "audit_seq": seq})


ROUTES = [
    Route("/analysts", list_analysts, methods=["GET"]),
    Route("/analysts", invite, methods=["POST"]),
    Route("/analysts/{name}/role", change_role, methods=["POST"]),
    Route("/analysts/{name}", remove, methods=["DELETE"]),
]

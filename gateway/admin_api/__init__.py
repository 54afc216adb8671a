"""The session admin API at /admin/api: the analyst console's operations as JSON.

Behind the console's own authentication: the passkey session cookie (set for
Path=/admin/api at sign-in), the same roles, and for every method but GET an
``X-CSRF-Token`` header (gateway.admin_api.auth). Every action calls the same
shared functions as the console pages (gateway.analyst_actions, ops_actions,
decision_review, console.analyst_admin), with the signed-in analyst as actor.
Described by ``GET /admin/api/openapi.json`` (gateway.admin_api.openapi).
Mounted by gateway.app as ``Mount("/admin/api", routes=ROUTES)``.

The older admin API under /admin/* (gateway.api_console, api_ops, api_admin)
takes the static admin bearer token and is for other services.
"""

from __future__ import annotations

from starlette.routing import Route

from gateway.admin_api import analysts, audit, decisions, model, ops, rules
from gateway.admin_api.auth import sign_out, who_am_i
from gateway.admin_api.openapi import OPENAPI, openapi

__all__ = ["OPENAPI", "ROUTES"]

ROUTES = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/session", who_am_i, methods=["GET"]),
    Route("/session", sign_out, methods=["DELETE"]),
    *decisions.ROUTES,
    *rules.ROUTES,
    *model.ROUTES,
    *ops.ROUTES,
    *audit.ROUTES,
    *analysts.ROUTES,
]

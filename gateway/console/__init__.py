"""The analyst console at /console: server-rendered pages over the gateway's own stores.

Analysts sign in with passkeys; every page and action is authorised on the
server by role (gateway.console.auth) and every change is appended to the
audit trail with the signed-in analyst as actor. Mounted by gateway.app as
``Mount("/console", routes=ROUTES)``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.console import (
    audit_pages,
    decisions_pages,
    model_pages,
    ops_pages,
    rules_pages,
    signin,
)
from gateway.console.render import STATIC
from gateway.errors import NotFound

__all__ = ["ROUTES"]

_STATIC_TYPES = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


async def home(request: Request) -> Response:
    return RedirectResponse("/console/decisions", 303)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC_TYPES:  # a fixed list: no path ever reaches the filesystem
        raise NotFound("not_found", f"{request.url.path} is not a console file")
    return FileResponse(STATIC / name, media_type=_STATIC_TYPES[name],
                        headers={"cache-control": "no-cache", "x-content-type-options": "nosniff"})


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/static/{name}", static, methods=["GET"]),
    *signin.ROUTES,
    *decisions_pages.ROUTES,
    *rules_pages.ROUTES,
    *model_pages.ROUTES,
    *ops_pages.ROUTES,
    *audit_pages.ROUTES,
]

"""How every /admin/api operation is authorised, and the session it runs in.

An operation needs the console's session cookie (gateway.console.auth: the
same sessions, roles and CSRF tokens as the pages). In this order:

1. a live session, else 401 ``console_sign_in_required``;
2. for every method but GET and HEAD: the same-site ``Origin`` (403
   ``origin_refused``) and an ``X-CSRF-Token`` header equal to the session's
   token (403 ``csrf_invalid``) — a cookie alone never changes anything;
3. the role, else 403 ``console_role_forbidden``.

Only then is the body read (a JSON object). The actor of everything an
operation does is the signed-in analyst, never a name from the body.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api_auth import _json_body
from gateway.console.analysts import AnalystError, Permission
from gateway.console.auth import (
    SignedIn,
    SignInRequired,
    analyst_refusal,
    check_csrf,
    check_origin,
    clear_cookie,
    current,
    end_session,
    require,
    services,
)
from gateway.errors import BadRequest

__all__ = ["SAFE_METHODS", "answer", "json_body", "operation", "sign_out", "who_am_i"]

SAFE_METHODS = frozenset({"GET", "HEAD"})

Operation = Callable[[Request, SignedIn], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def answer(doc: object, status: int = 200) -> Response:
    """A JSON answer; nothing the admin API says is cached."""
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``)."""
    body: bytes = request.scope.get("riskgate.body", b"")
    if not body:
        return {}
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise BadRequest("unsupported_media_type", "send the body as application/json")
    return _json_body(request)


def operation(permission: Permission, *alternatives: Permission) -> Callable[[Operation], Endpoint]:
    """Authorise an operation: a session, origin and CSRF for unsafe methods, then the role
    (``permission`` or one of the ``alternatives``). The handler gets the analyst."""

    def wrap(handler: Operation) -> Endpoint:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            who = await current(request, now=time.time())
            if who is None:
                raise SignInRequired()
            if request.method not in SAFE_METHODS:
                check_origin(request)
                check_csrf(request, who)  # the header only: there are no forms here
            require(who, permission, *alternatives)
            try:
                return await handler(request, who)
            except AnalystError as exc:
                raise analyst_refusal(exc) from exc

        run.permissions = (permission, *alternatives)  # type: ignore[attr-defined]  # read by the tests
        return run
    return wrap


@operation(Permission.VIEW)
async def who_am_i(request: Request, who: SignedIn) -> Response:
    """The signed-in analyst, their role's permissions and the CSRF token unsafe calls send."""
    return answer({"name": who.name, "role": who.role.value,
                   "permissions": sorted(p.value for p in who.role.permissions), "csrf": who.csrf})


@operation(Permission.VIEW)
async def sign_out(request: Request, who: SignedIn) -> Response:
    """End the session (for the console pages too) and clear its cookies."""
    await end_session(services(request).redis, who)
    out = answer({"ok": True})
    clear_cookie(request, out)
    return out

"""Console sessions, CSRF and role checks: every page and action is authorised here.

A session is a random token in an HTTP-only, SameSite=Strict cookie (Secure
when served over HTTPS); Redis keeps only its SHA-256, with the analyst's name
and the session's CSRF token, and forgets it after 15 minutes without a
request (or 12 hours after sign-in). The role is read from the analyst record
on every request, so a changed role applies at once.

The cookie is set twice, for Path=/console and for Path=/admin/api (the JSON
admin API, gateway.admin_api, authorised by the same checks), and never for
the proxied /v1 routes.

    {console:sessions}:<sha256(token)>   hash: name, csrf, created_at (TTL: idle timeout)
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

import orjson
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.console.analysts import (
    Analyst,
    AnalystError,
    AnalystExists,
    AnalystNotFound,
    AnalystStore,
    AnalystsUnavailable,
    EnrolmentInvalid,
    Permission,
    Role,
)
from gateway.errors import BadRequest, Forbidden, GatewayError, NotFound, Unauthorized
from gateway.services import Services

__all__ = [
    "COOKIE",
    "COOKIE_PATHS",
    "IDLE_TIMEOUT",
    "SignInRequired",
    "SignedIn",
    "action",
    "analyst_refusal",
    "check_csrf",
    "check_origin",
    "clear_cookie",
    "current",
    "done",
    "end_session",
    "form",
    "may_reject",
    "page",
    "public",
    "require",
    "services",
    "set_cookie",
    "start_session",
]

COOKIE = "riskgate_console"
COOKIE_PATHS = ("/console", "/admin/api")  # never "/": /v1 goes to the bank
IDLE_TIMEOUT = 15 * 60
ABSOLUTE_TIMEOUT = 12 * 3600
TAG = "{console:sessions}"
_MAX_FIELD = 100_000


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The analyst behind a request, as the server knows them (never from the request body)."""

    name: str
    role: Role
    csrf: str
    token_hash: str

    def allows(self, permission: Permission) -> bool:
        return self.role.allows(permission)


def services(request: Request) -> Services:
    return request.app.state.services


def _session_key(token: str) -> str:
    return f"{TAG}:{hashlib.sha256(token.encode()).hexdigest()}"


async def start_session(redis: Redis, name: str, *, now: float) -> str:
    """A new session for ``name``; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    key = _session_key(token)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"name": name, "csrf": secrets.token_urlsafe(32),
                                "created_at": repr(now)})
        pipe.expire(key, IDLE_TIMEOUT)
        await pipe.execute()
    return token


async def end_session(redis: Redis, who: SignedIn) -> None:
    await redis.delete(f"{TAG}:{who.token_hash}")


async def current(request: Request, *, now: float) -> SignedIn | None:
    """The signed-in analyst, sliding the idle timeout; None without a live session."""
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > 100:
        return None
    redis = services(request).redis
    key = _session_key(token)
    raw = await redis.hgetall(key)
    if not raw or now - float(raw[b"created_at"]) > ABSOLUTE_TIMEOUT:
        return None
    analyst: Analyst | None = await AnalystStore(redis).get(raw[b"name"].decode())
    if analyst is None:  # removed since sign-in
        await redis.delete(key)
        return None
    await redis.expire(key, IDLE_TIMEOUT)
    return SignedIn(analyst.name, analyst.role, raw[b"csrf"].decode(), key.rsplit(":", 1)[1])


def set_cookie(request: Request, response: Response, token: str) -> None:
    """The session cookie for the console pages and the admin API (same token, same flags)."""
    for path in COOKIE_PATHS:
        response.set_cookie(COOKIE, token, path=path, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")


def clear_cookie(request: Request, response: Response) -> None:
    for path in COOKIE_PATHS:
        response.delete_cookie(COOKIE, path=path, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")


def form(request: Request) -> dict[str, str]:
    """The POSTed fields: a JSON object (scripts) or a urlencoded form (plain HTML)."""
    body: bytes = request.scope.get("riskgate.body", b"")
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            doc = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise BadRequest("invalid_json", "the request body is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise BadRequest("invalid_json", "the request body must be a JSON object")
        return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in doc.items()}
    if ctype in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                              max_num_fields=100)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest("invalid_form", "the form data cannot be read") from exc
        return {k: v for k, v in pairs if len(v) <= _MAX_FIELD}
    raise BadRequest("unsupported_media_type", "post a form or a JSON object")


def check_origin(request: Request) -> None:
    """A browser names the page's origin on every POST: it must be this console's."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = f"{request.url.scheme}://{request.url.netloc}"
    allowed = (own, *services(request).config.stepup.origin_list)
    if origin not in allowed:
        raise Forbidden("origin_refused", "the request comes from another site")


def check_csrf(request: Request, who: SignedIn, fields: dict[str, str] | None = None) -> None:
    """The ``X-CSRF-Token`` header (or a form's ``csrf`` field) must be the session's token."""
    given = request.headers.get("x-csrf-token") or (fields or {}).get("csrf", "")
    if not given or not hmac.compare_digest(given.encode(), who.csrf.encode()):
        raise Forbidden("csrf_invalid", "the form is missing its CSRF token or it is wrong; reload the page")


Handler = Callable[..., Awaitable[Response]]


class ConsoleStateUnavailable(GatewayError):
    status = 503
    code = "state_unavailable"
    message = "the console cannot reach its state store; retry shortly"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class SignInRequired(Unauthorized):
    code = "console_sign_in_required"
    message = "sign in to the console again (the session ended or never began)"


def require(who: SignedIn, permission: Permission, *alternatives: Permission) -> None:
    """403 ``console_role_forbidden`` unless the analyst's role allows ``permission`` (or one
    of the ``alternatives``)."""
    wanted = (permission, *alternatives)
    if not any(who.allows(p) for p in wanted):
        what = " or ".join(p.value.replace("_", " ") for p in wanted)
        raise Forbidden("console_role_forbidden", f"the {who.role.value} role may not {what}")


def may_reject(who: SignedIn, author: str) -> bool:
    """Approvers reject any rule proposal; a rule author may withdraw their own."""
    own = author.strip().casefold() == who.name.casefold()
    return who.allows(Permission.APPROVE_RULES) or (own and who.allows(Permission.PROPOSE_RULES))


def analyst_refusal(exc: AnalystError) -> GatewayError:
    """The HTTP error for a failure of the analyst store."""
    if isinstance(exc, AnalystsUnavailable):
        return ConsoleStateUnavailable(exc.code, exc.message)
    if isinstance(exc, AnalystNotFound | EnrolmentInvalid):
        return NotFound(exc.code, exc.message)
    if isinstance(exc, AnalystExists):
        return Conflict(exc.code, exc.message)
    return BadRequest(exc.code, exc.message)


def public(handler: Handler) -> Handler:
    """The sign-in and enrolment ceremonies: no session yet, but only from this site."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        if request.method == "POST":
            check_origin(request)
        try:
            return await handler(request)
        except AnalystError as exc:
            raise analyst_refusal(exc) from exc
    return run


def page(permission: Permission = Permission.VIEW) -> Callable[[Handler], Handler]:
    """GET pages: without a session go to the sign-in page; a missing permission is 403."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            who = await current(request, now=time.time())
            if who is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/login?next={quote(target, safe='')}", 303)
            require(who, permission)
            try:
                return await handler(request, who)
            except AnalystError as exc:
                raise analyst_refusal(exc) from exc
        return run
    return wrap


def action(permission: Permission) -> Callable[[Handler], Handler]:
    """POST actions: a live session (401), the same-site origin and CSRF token (403), the role (403)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            who = await current(request, now=time.time())
            if who is None:
                raise SignInRequired()
            check_origin(request)
            fields = form(request)
            check_csrf(request, who, fields)
            require(who, permission)
            try:
                return await handler(request, who, fields)
            except AnalystError as exc:
                raise analyst_refusal(exc) from exc
        return run
    return wrap


def done(request: Request, redirect: str, **doc: object) -> Response:
    """Success of an action: scripts get JSON, a plain HTML form is redirected."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return Response(orjson.dumps({"ok": True, "redirect": redirect, **doc}),
                        media_type="application/json")
    return RedirectResponse(redirect, 303)

"""Passkey enrolment and sign-in for the console (WebAuthn through auth_tools.fido).

Both ceremonies keep their state in Redis under a random ceremony id for the
step-up challenge TTL and delete it on first use. Sign-in requires user
verification; the WebAuthn challenge binds the ceremony id and the analyst's
name (as a ``console_sign_in`` transaction), so an assertion answers one
sign-in only.
"""

from __future__ import annotations

import secrets
import time

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from auth_tools import fido
from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import FidoSignCountRegression
from auth_tools.fido import UserVerification
from gateway.console.analysts import AnalystStore, EnrolmentInvalid, Permission
from gateway.console.auth import (
    SignedIn,
    action,
    clear_cookie,
    current,
    end_session,
    form,
    public,
    services,
    set_cookie,
    start_session,
)
from gateway.console.render import render
from gateway.errors import BadRequest, NotFound, Unauthorized
from gateway.stepup_fido import fido_config

__all__ = ["ROUTES"]

TAG = "{console:ceremony}"
_SIGN_IN_FAILED = "the name or passkey was not accepted"


def _json(doc: object, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


async def _keep_state(request: Request, state: dict[str, object], **extra: str) -> str:
    ceremony = secrets.token_urlsafe(18)
    svc = services(request)
    await svc.redis.set(f"{TAG}:{ceremony}", orjson.dumps({"state": state, **extra}),
                        ex=int(svc.config.stepup.challenge_ttl))
    return ceremony


async def _take_state(request: Request, ceremony: str) -> dict[str, object]:
    if not ceremony or len(ceremony) > 64:
        raise BadRequest("ceremony_required", "ceremony (from begin) is required")
    raw = await services(request).redis.getdel(f"{TAG}:{ceremony}")
    if raw is None:
        raise Unauthorized("challenge_expired", "the sign-in took too long or was already used; try again")
    return orjson.loads(raw)


def _safe_next(raw: str | None) -> str:
    # only paths inside the console, never another site
    if raw and raw.startswith("/console/") and not raw.startswith("/console//") and "\\" not in raw:
        return raw
    return "/console/decisions"


@public
async def login_page(request: Request) -> Response:
    who = await current(request, now=time.time())
    nxt = _safe_next(request.query_params.get("next"))
    if who is not None:
        return RedirectResponse(nxt, 303)
    return render("login.html", next=nxt)


@public
async def login_begin(request: Request) -> Response:
    name = form(request).get("name", "").strip()
    svc = services(request)
    analyst = await AnalystStore(svc.redis).get(name)
    if analyst is None or not any(not c.flagged for c in analyst.credentials):
        raise Unauthorized("sign_in_failed", _SIGN_IN_FAILED)
    ceremony_id = secrets.token_urlsafe(18)
    options, state = fido.begin_authentication(
        fido_config(svc), ceremony_id, Transaction("console_sign_in", payee=analyst.name),
        analyst.credentials, UserVerification.REQUIRED, now=time.time())
    ceremony = await _keep_state(request, state, name=analyst.name)
    return _json({"ceremony": ceremony, "publicKey": options})


@public
async def login_complete(request: Request) -> Response:
    fields = form(request)
    kept = await _take_state(request, fields.get("ceremony", ""))
    svc = services(request)
    store = AnalystStore(svc.redis)
    analyst = await store.get(str(kept["name"]))
    try:
        response = orjson.loads(fields.get("response", "null"))
        credential_id = str(response["id"])
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise BadRequest("fido_response_malformed", "response must be the PublicKeyCredential JSON") from exc
    credential = analyst.credential(credential_id) if analyst else None
    if analyst is None or credential is None:
        raise Unauthorized("sign_in_failed", _SIGN_IN_FAILED)
    now = time.time()
    try:
        result = fido.complete_authentication(kept["state"], response, credential, now)  # type: ignore[arg-type]
    except FidoSignCountRegression as exc:
        await store.save_credential(analyst.name, exc.credential)  # flagged: a clone is about
        raise
    await store.save_credential(analyst.name, result.credential)
    token = await start_session(svc.redis, analyst.name, now=now)
    out = _json({"ok": True, "redirect": _safe_next(fields.get("next"))})
    set_cookie(request, out, token)
    return out


@public
async def enrol_page(request: Request) -> Response:
    token = request.query_params.get("token", "")
    try:
        name = await AnalystStore(services(request).redis).enrolment_name(token)
    except EnrolmentInvalid as exc:
        raise NotFound(exc.code, exc.message) from exc
    return render("enrol.html", name=name, token=token)


@public
async def enrol_begin(request: Request) -> Response:
    token = form(request).get("token", "")
    svc = services(request)
    store = AnalystStore(svc.redis)
    try:
        name = await store.enrolment_name(token)
    except EnrolmentInvalid as exc:
        raise NotFound(exc.code, exc.message) from exc
    analyst = await store.get(name)
    if analyst is None:
        raise NotFound("enrolment_link_invalid", EnrolmentInvalid.message)
    options, state = fido.begin_registration(
        fido_config(svc), f"console:{analyst.name.casefold()}", analyst.name, analyst.credentials,
        now=time.time(), attestation="none", resident_key="preferred",
        user_verification=UserVerification.REQUIRED)
    ceremony = await _keep_state(request, state, name=analyst.name)
    return _json({"ceremony": ceremony, "publicKey": options})


@public
async def enrol_complete(request: Request) -> Response:
    fields = form(request)
    kept = await _take_state(request, fields.get("ceremony", ""))
    svc = services(request)
    store = AnalystStore(svc.redis)
    now = time.time()
    try:
        response = orjson.loads(fields.get("response", "null"))
    except orjson.JSONDecodeError as exc:
        raise BadRequest("fido_response_malformed", "response must be the PublicKeyCredential JSON") from exc
    credential = fido.complete_registration(kept["state"], response, now)  # type: ignore[arg-type]
    try:
        # used up only by a passkey that verified, so a failed try can be repeated
        name = await store.enrolment_name(fields.get("token", ""), consume=True)
    except EnrolmentInvalid as exc:
        raise NotFound(exc.code, exc.message) from exc
    if name.casefold() != str(kept["name"]).casefold():
        raise BadRequest("enrolment_link_invalid", "the link and the ceremony are for different analysts")
    await store.save_credential(name, credential)
    token = await start_session(svc.redis, name, now=now)
    out = _json({"ok": True, "redirect": "/console/decisions"})
    set_cookie(request, out, token)
    return out


@action(Permission.VIEW)
async def logout(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    await end_session(services(request).redis, who)
    out = RedirectResponse("/console/login", 303)
    clear_cookie(request, out)
    return out


ROUTES = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login/begin", login_begin, methods=["POST"]),
    Route("/login/complete", login_complete, methods=["POST"]),
    Route("/enrol", enrol_page, methods=["GET"]),
    Route("/enrol/begin", enrol_begin, methods=["POST"]),
    Route("/enrol/complete", enrol_complete, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]

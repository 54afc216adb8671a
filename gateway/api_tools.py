"""The user's own step-up tools: list, enrol, remove.

    GET    /auth/tools                         what is enrolled (never secrets)
    POST   /auth/tools/{tool}/enrol/begin      needs the tool's enrol tier (approval)
    POST   /auth/tools/{tool}/enrol/complete   {"enrolment_id", ...tool fields}
    DELETE /auth/tools/{tool}/{cred_id}        needs T2 (approval)

All are device-signed and need a session. Enrolling or removing a tool is a
sensitive change: the session must reach the tier the tool names, through the
same challenge protocol as a payment, over ``Transaction(action="enrol_<tool>")``
or ``("remove_<tool>", payee=<cred_id>)``. The enrolment's in-between state
(a TOTP seed, a WebAuthn challenge) is sealed in Redis and single use.
"""

from __future__ import annotations

import secrets
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import NotEnrolled
from device_fingerprint.registry import Device, user_tag
from gateway.api_auth import _json_body, _signed, json_response
from gateway.errors import NotFound, Unauthorized
from gateway.services import Services
from gateway.sessions import Session
from gateway.stepup_gate import offered_rows, require_tier
from gateway.stepup_tools import EnrolContext, NotEnrolledOnline

__all__ = ["ROUTES", "REMOVE_TIER"]

REMOVE_TIER = 2
_ENROL_TTL = 600


async def authenticated(request: Request, now: float) -> tuple[Services, Session, Device]:
    svc: Services = request.app.state.services
    device = await svc.device_check.verify_registered(_signed(request), now)
    raw = request.scope["riskgate.headers"].get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("session_required", "this call needs a session (Authorization: Bearer)")
    session = await svc.sessions.load(token.strip(), device_id=device.device_id, now=now)
    return svc, session, device


def _adapter(svc: Services, tool: str):  # noqa: ANN202 - a StepUpTool
    adapter = svc.stepup_tools.get(tool)
    if adapter is None:
        raise NotFound("unknown_tool", f"no step-up tool named {tool!r}")
    return adapter


def _body(request: Request) -> dict[str, object]:
    return _json_body(request) if request.scope["riskgate.body"] else {}


def _enrol_key(user_id: str, enrolment_id: str) -> str:
    return f"{user_tag(user_id)}:enrol:{enrolment_id}"


def _aad(user_id: str, tool: str, enrolment_id: str) -> bytes:
    return f"riskgate-enrol-v1|{user_id}|{tool}|{enrolment_id}".encode()


async def list_tools(request: Request) -> Response:
    now = time.time()
    svc, session, _device = await authenticated(request, now)
    out: dict[str, list[dict[str, object]]] = {}
    for name, adapter in svc.stepup_tools.items():
        creds = await svc.credentials.all(session.user_id, name)
        if creds:
            out[name] = [adapter.describe(cred_id, doc) for cred_id, doc in sorted(creds.items())]
    enrollable = {name: f"T{a.enrol_tier}" for name, a in svc.stepup_tools.items() if a.enrol_tier is not None}
    activation = {name: list(rows[0]) for name in enrollable if (rows := activation_rows(svc, name))}
    return json_response({"user_id": session.user_id, "tools": out, "enrollable": enrollable,
                          **({"activation": activation} if activation else {})})


def activation_rows(svc: Services, tool: str) -> tuple[tuple[str, ...], ...]:
    """The combination that must approve enrolling ``tool`` online (``stepup.online_activation``),
    when it applies: the tool is one of ``online_activation_tools`` and every tool of the
    combination is offered here."""
    cfg = svc.config.stepup
    if tool not in cfg.activation_tools:
        return ()
    return offered_rows(svc, (cfg.activation_combination,))


async def enrol_begin(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    tool = request.path_params["tool"]
    adapter = _adapter(svc, tool)
    if adapter.enrol_tier is None:
        raise NotEnrolledOnline()
    reached = await require_tier(svc, session=session, device=device,
                                 txn=Transaction(action=f"enrol_{tool}"), required=adapter.enrol_tier,
                                 headers=request.scope["riskgate.headers"], now=now,
                                 rows=activation_rows(svc, tool))
    ctx = EnrolContext(svc, session.user_id, device.device_id, now)
    options, state = await adapter.enrol_begin(ctx, _body(request))
    enrolment_id = secrets.token_urlsafe(16)
    doc = {"tool": tool, "device": device.device_id, "sid": session.sid, "state": state,
           "acr": f"T{reached.tier}"}
    sealed = svc.sealer.seal(orjson.dumps(doc), _aad(session.user_id, tool, enrolment_id))
    await svc.redis.set(_enrol_key(session.user_id, enrolment_id), sealed, ex=_ENROL_TTL)
    return json_response({"enrolment_id": enrolment_id, "tool": tool, "expires_in": _ENROL_TTL, **options})


async def enrol_complete(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    tool = request.path_params["tool"]
    adapter = _adapter(svc, tool)
    body = _body(request)
    enrolment_id = body.get("enrolment_id")
    if not isinstance(enrolment_id, str) or not 8 <= len(enrolment_id) <= 64:
        raise NotFound("enrolment_not_found", "enrolment_id is missing or unknown")
    raw = await svc.redis.getdel(_enrol_key(session.user_id, enrolment_id))
    if raw is None:
        raise NotFound("enrolment_not_found", "the enrolment has expired or was already completed")
    doc = orjson.loads(svc.sealer.open(raw.decode(), _aad(session.user_id, tool, enrolment_id)))
    if doc["device"] != device.device_id or doc["sid"] != session.sid:
        raise NotFound("enrolment_not_found", "the enrolment has expired or was already completed")
    await svc.tool_lockout.attempt(session.user_id, f"enrol_{tool}"[:32], now)
    enrolled = await adapter.enrol_complete(EnrolContext(svc, session.user_id, device.device_id, now),
                                            doc["state"], body)
    await svc.tool_lockout.record_success(session.user_id, f"enrol_{tool}"[:32])
    await svc.credentials.put(session.user_id, tool, enrolled.cred_id,
                              {**enrolled.doc, "enrolled_via": doc["acr"]})
    return json_response({"status": "enrolled", "tool": tool, "credential": enrolled.shown}, status=201)


async def remove_tool(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    tool = request.path_params["tool"]
    adapter = _adapter(svc, tool)
    cred_id = request.path_params["cred_id"]
    doc = await svc.credentials.get(session.user_id, tool, cred_id)
    if doc is None:
        raise NotEnrolled("no such credential is enrolled")
    await require_tier(svc, session=session, device=device,
                       txn=Transaction(action=f"remove_{tool}", payee=cred_id[:64]),
                       required=max(REMOVE_TIER, adapter.enrol_tier or 0),
                       headers=request.scope["riskgate.headers"], now=now)
    await svc.credentials.delete(session.user_id, tool, cred_id)
    on_removed = getattr(adapter, "on_removed", None)  # certificates: revoke, so the CRL says so
    if on_removed is not None:
        await on_removed(svc, session.user_id, cred_id, doc, now)
    return json_response({"status": "removed", "tool": tool, "id": cred_id})


ROUTES = [
    Route("/auth/tools", list_tools, methods=["GET"]),
    Route("/auth/tools/{tool}/enrol/begin", enrol_begin, methods=["POST"]),
    Route("/auth/tools/{tool}/enrol/complete", enrol_complete, methods=["POST"]),
    Route("/auth/tools/{tool}/{cred_id}", remove_tool, methods=["DELETE"]),
]

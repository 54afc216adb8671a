"""Gateway endpoints for devices and sessions: register, login, logout."""

from __future__ import annotations

import time

import orjson
from starlette.requests import Request
from starlette.responses import Response

from device_fingerprint.errors import NonceReplayed
from device_fingerprint.registry import USER_ID_RE, user_tag
from device_fingerprint.signature import (
    parse_signature_header,
    public_key_from_jwk,
    verify_device_signature,
)
from gateway import device_binding
from gateway.device_check import SignedRequest
from gateway.errors import BadRequest, Unauthorized
from gateway.payload_encryption import valid_enc_jwk
from gateway.services import Services

__all__ = ["login", "logout", "register_device"]


def json_response(doc: object, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def _services(request: Request) -> Services:
    return request.app.state.services


def _json_body(request: Request) -> dict[str, object]:
    try:
        doc = orjson.loads(request.scope["riskgate.body"] or b"null")
    except orjson.JSONDecodeError as exc:
        raise BadRequest("invalid_json", "the request body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BadRequest("invalid_json", "the request body must be a JSON object")
    return doc


def _client_ip(request: Request) -> str:
    client = request.scope.get("client")
    return client[0] if client else ""


def _signed(request: Request) -> SignedRequest:
    scope = request.scope
    return SignedRequest(scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"),
                         scope["riskgate.body"], scope["riskgate.headers"])


def _enc_jwk(value: object, signing_jwk: dict[str, object]) -> dict[str, object] | None:
    """The optional response-encryption key: P-256, and not the signing key."""
    if value is None:
        return None
    try:
        valid_enc_jwk(value)
    except ValueError as exc:
        raise BadRequest("invalid_enc_key", str(exc)) from exc
    if (value["x"], value["y"]) == (signing_jwk.get("x"), signing_jwk.get("y")):  # type: ignore[index]
        raise BadRequest("invalid_enc_key", "enc_jwk must be a separate key from the signing key")
    return value  # type: ignore[return-value]


async def register_device(request: Request) -> Response:
    """POST /devices: password + a new P-256 public key, signed with that key."""
    svc = _services(request)
    now = time.time()
    doc = _json_body(request)
    user_id, password = doc.get("user_id"), doc.get("password")
    jwk, attributes = doc.get("public_key"), doc.get("attributes", {})
    if not isinstance(jwk, dict):
        raise BadRequest("invalid_public_key", "public_key must be an EC P-256 JWK")
    if not isinstance(attributes, dict) or len(orjson.dumps(attributes)) > 4096:
        raise BadRequest("invalid_attributes", "attributes must be a JSON object under 4 KiB")
    public_key = public_key_from_jwk(jwk)
    enc_jwk = _enc_jwk(doc.get("enc_jwk"), jwk)
    # Proof of possession: the registration is signed with the new key. The
    # device id is not known yet, so the signed device id is empty.
    raw_sig = request.scope["riskgate.headers"].get(b"x-device-signature")
    sig = parse_signature_header(raw_sig.decode("latin-1") if raw_sig else None)
    verify_device_signature(public_key=public_key, header=sig, method="POST", path=request.url.path,
                            query=request.scope.get("query_string", b"").decode("latin-1"),
                            body=request.scope["riskgate.body"], device_id="", now=now,
                            max_skew=svc.config.device.max_skew)
    if not isinstance(user_id, str) or not USER_ID_RE.match(user_id):
        raise Unauthorized("invalid_credentials", "the user id or the password is wrong")
    if not await svc.redis.set(f"{user_tag(user_id)}:nonce:register:{sig.nonce}", b"1", nx=True,
                               ex=svc.config.device.nonce_ttl):
        raise NonceReplayed()
    await svc.users.check_password(user_id, password)
    if enc_jwk is None and request.scope.get("riskgate.encrypted"):
        raise BadRequest("invalid_enc_key", "an encrypted registration must carry enc_jwk")
    # Recognised against the user's devices: bound at once (first device) or pending step-up.
    device, recognition = await device_binding.register(
        svc, user_id=user_id, jwk=jwk, enc_jwk=enc_jwk, raw_attributes=attributes,
        raw_signals=doc.get("signals"), client_ip=_client_ip(request), now=now)
    return json_response({"device_id": device.device_id, "user_id": user_id,
                          "status": device.status.value, **recognition}, status=201)


async def login(request: Request) -> Response:
    """POST /auth/login from a registered device: password -> session token."""
    svc = _services(request)
    now = time.time()
    doc = _json_body(request)
    req = _signed(request)
    device = await svc.device_check.verify_registered(req, now)
    user_id = doc.get("user_id", device.user_id)
    if user_id != device.user_id:
        # Same answer as a wrong password; counts towards the lockout.
        await svc.users.check_password(device.user_id, None)
    signals = device_binding.login_signals(svc, device, doc.get("signals"))
    await svc.users.check_password(device.user_id, doc.get("password"))
    token, session = await svc.sessions.create(device.user_id, device.device_id, {"pwd": now}, now)
    # Stores the signals, pins the session; a pending device gets its binding challenge.
    device_state = await device_binding.after_login(svc, device=device, session=session, signals=signals,
                                                    client_ip=_client_ip(request), now=now)
    return json_response({
        "session_token": token, "token_type": "Bearer", "user_id": session.user_id,
        "device_id": session.device_id, "idle_timeout": svc.sessions.idle_timeout,
        "absolute_timeout": svc.sessions.absolute_timeout, **device_state,
    })


async def logout(request: Request) -> Response:
    svc = _services(request)
    now = time.time()
    req = _signed(request)
    device = await svc.device_check.verify_registered(req, now)
    raw = request.scope["riskgate.headers"].get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("session_required", "logout needs the session token")
    await svc.sessions.load(token.strip(), device_id=device.device_id, now=now)
    await svc.sessions.delete(token.strip())
    return json_response({"status": "logged_out"})



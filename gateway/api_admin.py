"""Admin API: customer enrolment (seeding password verifiers)."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from starlette.requests import Request
from starlette.responses import Response

from gateway.api_auth import _json_body, json_response
from gateway.errors import BadRequest, Forbidden, NotFound, Unauthorized
from gateway.services import Services
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass

__all__ = ["create_user", "require_admin", "require_token"]

_PHONE_RE = re.compile(r"^\+?[0-9]{6,20}$")
_ACCOUNT_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def require_token(request: Request, expected: str, *, name: str, config_key: str) -> Services:
    """Check ``Authorization: Bearer <token>`` against a configured service token.

    Off (404 ``<name>_api_disabled``) while the token is empty; compared in
    constant time (over SHA-256, so lengths do not leak either).
    """
    svc: Services = request.app.state.services
    if not expected:
        raise NotFound(f"{name}_api_disabled" if name != "admin" else "admin_disabled",
                       f"the {name} API is disabled ({config_key} is empty)")
    raw = request.scope["riskgate.headers"].get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(f"{name}_token_required",
                           f"the {name} API needs Authorization: Bearer <{name} token>")
    if not hmac.compare_digest(hashlib.sha256(token.strip().encode()).digest(),
                               hashlib.sha256(expected.encode()).digest()):
        raise Forbidden(f"{name}_token_invalid", f"the {name} token is wrong")
    return svc


def require_admin(request: Request) -> Services:
    svc: Services = request.app.state.services
    return require_token(request, svc.config.admin.token, name="admin", config_key="admin.token")


async def create_user(request: Request) -> Response:
    """POST /admin/users: enrol a customer.

    Body: ``user_id``, ``password``; optional ``phone`` (the reserved phone
    number SMS codes go to, stored sealed) and ``accounts`` (account id ->
    class "I", "II" or "III", for limits).
    """
    svc = require_admin(request)
    doc = _json_body(request)
    now = time.time()
    phone = doc.get("phone")
    if phone is not None and (not isinstance(phone, str) or not _PHONE_RE.match(phone)):
        raise BadRequest("invalid_phone", "phone must be digits with an optional leading +")
    accounts_raw = doc.get("accounts", {})
    try:
        if not isinstance(accounts_raw, dict) or not all(
                isinstance(a, str) and _ACCOUNT_RE.match(a) for a in accounts_raw):
            raise ValueError
        accounts = {a: AccountClass.parse(c) for a, c in accounts_raw.items()}
    except ValueError as exc:
        raise BadRequest("invalid_accounts", 'accounts must map account ids to "I", "II" or "III"') from exc
    user_id = doc.get("user_id")
    await svc.users.create(user_id, doc.get("password"), now)  # type: ignore[arg-type]
    if phone:
        await set_reserved_phone(svc, str(user_id), phone, now)
    await svc.accounts.set(str(user_id), accounts)
    return json_response({"user_id": user_id, "status": "enrolled"}, status=201)

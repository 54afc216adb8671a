"""Admin API: customer enrolment (seeding password verifiers)."""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.requests import Request
from starlette.responses import Response

from gateway.api_auth import _json_body, json_response
from gateway.errors import Forbidden, NotFound, Unauthorized
from gateway.services import Services

__all__ = ["create_user"]


def require_admin(request: Request) -> Services:
    svc: Services = request.app.state.services
    expected = svc.config.admin.token
    if not expected:
        raise NotFound("admin_disabled", "the admin API is disabled (admin.token is empty)")
    raw = request.scope["riskgate.headers"].get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("admin_token_required", "the admin API needs Authorization: Bearer <admin token>")
    if not hmac.compare_digest(hashlib.sha256(token.strip().encode()).digest(),
                               hashlib.sha256(expected.encode()).digest()):
        raise Forbidden("admin_token_invalid", "the admin token is wrong")
    return svc


async def create_user(request: Request) -> Response:
    """POST /admin/users {"user_id", "password"}: enrol a customer's password."""
    svc = require_admin(request)
    doc = _json_body(request)
    await svc.users.create(doc.get("user_id"), doc.get("password"), time.time())  # type: ignore[arg-type]
    return json_response({"user_id": doc.get("user_id"), "status": "enrolled"}, status=201)

"""SIM-swap and number-porting reports from a carrier or the bank's core system.

    POST /carrier/sim-swaps   Authorization: Bearer <device.carrier_token>
        {"user_id": "alice", "kind": "sim_swap" | "number_port",
         "at": <unix seconds the swap happened>, "source": "carrier.cmcc"}

For ``device.sms_block_days`` after ``at`` SMS and SMS armor do not count as
factors for the user (gateway.sim_swap_guard), and the risk engine's
``sim_swap_recent`` feature is set (the default rules raise money movement to
high risk and block it from a new device). The API is off (404) while the
token is empty.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from device_fingerprint.errors import SimSwapReportInvalid
from gateway.api_admin import require_token
from gateway.api_auth import _json_body, json_response
from gateway.device_errors import UnknownUser
from gateway.errors import BadRequest
from gateway.services import Services

__all__ = ["ROUTES", "require_carrier"]


def require_carrier(request: Request) -> Services:
    svc: Services = request.app.state.services
    return require_token(request, svc.config.device.carrier_token, name="carrier",
                         config_key="device.carrier_token")


async def report_sim_swap(request: Request) -> Response:
    svc = require_carrier(request)
    now = time.time()
    doc = _json_body(request)
    user_id = doc.get("user_id")
    try:
        if not isinstance(user_id, str) or not await svc.users.exists(user_id):
            raise UnknownUser()
        report = await svc.recognition.sim_swaps.report(
            user_id, doc.get("kind", ""), source=doc.get("source", ""),  # type: ignore[arg-type]
            at=doc.get("at", now), now=now)  # type: ignore[arg-type]
    except SimSwapReportInvalid as exc:
        raise BadRequest(exc.code, exc.message, extra={"field": exc.field}) from exc
    # The risk engine's history dates the swap by when it happened.
    await svc.risk.history.record_sim_change(user_id, report.at)
    return json_response({
        "user_id": user_id, "kind": report.kind.value, "at": report.at, "source": report.source,
        "sms_blocked_until": await svc.recognition.sim_swaps.sms_blocked_until(user_id, now),
    }, status=201)


ROUTES = [Route("/carrier/sim-swaps", report_sim_swap, methods=["POST"])]

"""The user's own devices: list, finish binding, unbind.

    GET    /devices              my devices (bound and pending) and the binding history
    POST   /devices/bind         bind this pending device (X-Approval-Token of the binding challenge)
    DELETE /devices/{device_id}  unbind one of my devices; needs ``device.unbind_tier`` (approval)

All are device-signed and need a session. Unbinding approves
``Transaction(action="unbind_device", payee=<device id>)`` through the usual
challenge protocol, so the approval cannot remove another device.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.dynamic_linking import Transaction, format_amount
from device_fingerprint.binding import cool_off_until
from device_fingerprint.registry import Device, DeviceStatus
from gateway.api_auth import _client_ip, json_response
from gateway.api_tools import authenticated
from gateway.device_binding import complete_binding
from gateway.errors import NotFound
from gateway.services import Services
from gateway.stepup_gate import require_tier

__all__ = ["ROUTES", "UNBIND_ACTION"]

UNBIND_ACTION = "unbind_device"


def _describe(svc: Services, device: Device, current: str, now: float) -> dict[str, object]:
    rec = svc.recognition
    until = (cool_off_until(device.bound_at, now, rec.binding_config)
             if device.bound_at is not None else None)
    attrs = device.attributes
    return {
        "device_id": device.device_id,
        "status": device.status.value,
        "current": device.device_id == current,
        "model": attrs.get("model", ""),
        "os": attrs.get("os", ""),
        "os_version": attrs.get("os_version", ""),
        "registered_at": device.created,
        "bound_at": device.bound_at,
        "cool_off_until": until,
        "signals": list(device.signals),
        "max_tier": f"T{rec.tier_cap(device)}",
    }


async def list_devices(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    devices = await svc.devices.list(session.user_id)
    history = await svc.recognition.binding.history(session.user_id, limit=20)
    return json_response({
        "user_id": session.user_id,
        "max_devices": svc.config.device.max_devices,
        "devices": [_describe(svc, d, device.device_id, now) for d in devices],
        "history": [{"kind": e.kind.value, "device_id": e.device_id, "at": e.at, "reason": e.reason,
                     "replaces": e.replaces, "match": e.match_status, "model": e.model}
                    for e in history],
    })


async def bind_device(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    bound = await complete_binding(svc, session=session, device=device,
                                   headers=request.scope["riskgate.headers"],
                                   client_ip=_client_ip(request), now=now)
    return json_response({"status": "bound", **_describe(svc, bound, bound.device_id, now),
                          "cool_off_daily_limit": format_amount(svc.recognition.binding_config.cool_off_daily_limit)
                          if bound.bound_at is not None else None})


async def unbind_device(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    target = request.path_params["device_id"]
    mine = {d.device_id: d for d in await svc.devices.list(session.user_id)}
    if target not in mine or mine[target].status is not DeviceStatus.BOUND:
        raise NotFound("device_not_found", "no such bound device among yours")
    await require_tier(svc, session=session, device=device,
                       txn=Transaction(action=UNBIND_ACTION, payee=target),
                       required=svc.config.device.unbind_tier,
                       headers=request.scope["riskgate.headers"], now=now,
                       reason={"device": target, "model": mine[target].attributes.get("model", "")})
    event = await svc.recognition.binding.unbind(session.user_id, target, now, reason="user")
    return json_response({"status": "unbound", "device_id": event.device_id, "at": event.at,
                          "current": target == device.device_id})


ROUTES = [
    Route("/devices", list_devices, methods=["GET"]),
    Route("/devices/bind", bind_device, methods=["POST"]),
    Route("/devices/{device_id}", unbind_device, methods=["DELETE"]),
]

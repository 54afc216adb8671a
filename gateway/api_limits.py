"""The user's own limits.

    GET /auth/limits                     the bank's tier table, the user's settings, today's spend
    PUT /auth/limits/{setting}           {"amount": "20000.00"} or {"amount": null} (bank default)

``setting`` is ``per_transaction``, ``daily`` or ``t2``. Lowering takes effect at
once with a session. Raising needs the tier the new value belongs to, through
the challenge protocol over ``Transaction(action="change_limit_<setting>",
amount=<new value>)``: the approval is for exactly that value.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.dynamic_linking import InvalidAmount, Transaction, format_amount, parse_amount
from gateway.api_auth import _json_body, json_response
from gateway.api_tools import authenticated
from gateway.errors import BadRequest, NotFound
from gateway.stepup_gate import require_tier
from limits import LimitSetting, Tier, UserLimits
from limits.user_limits import limit_change_tier

__all__ = ["ROUTES"]


def _cny(fen: int | None) -> str | None:
    return None if fen is None else format_amount(fen)


def _settings_doc(settings: UserLimits) -> dict[str, str | None]:
    return {s.value: _cny(settings.get(s)) for s in LimitSetting}


async def get_limits(request: Request) -> Response:
    now = time.time()
    svc, session, _device = await authenticated(request, now)
    settings = await svc.user_limits.get(session.user_id)
    spent = await svc.reservations.spent(session.user_id, now=now)
    table = {t.label: {"per_transaction": _cny(svc.limits.tier_limit(t).per_transaction),
                       "daily": _cny(svc.limits.tier_limit(t).daily)} for t in Tier}
    return json_response({"user_id": session.user_id, "tiers": table, "settings": _settings_doc(settings),
                          "spent": {"today": _cny(spent.day), "this_year": _cny(spent.year),
                                    "today_to_others": _cny(spent.day_to_others)},
                          "timezone": svc.limits.timezone})


async def change_limit(request: Request) -> Response:
    now = time.time()
    svc, session, device = await authenticated(request, now)
    try:
        setting = LimitSetting(request.path_params["setting"])
    except ValueError as exc:
        raise NotFound("unknown_limit", "limits are per_transaction, daily and t2") from exc
    raw = _json_body(request).get("amount", "missing")
    if raw == "missing":
        raise BadRequest("missing_field", "'amount' is required (a decimal string, or null for the default)")
    try:
        new = None if raw is None else parse_amount(raw)
    except InvalidAmount as exc:
        raise BadRequest("invalid_amount", str(exc)) from exc
    current = await svc.user_limits.get(session.user_id)
    needed = int(limit_change_tier(svc.limits, setting, current, new))
    reached = 0
    if needed > 0:
        txn = Transaction(action=f"change_limit_{setting.value}", amount=new or 0)
        reached = (await require_tier(svc, session=session, device=device, txn=txn, required=needed,
                                      headers=request.scope["riskgate.headers"], now=now)).tier
    updated = await svc.user_limits.change(session.user_id, setting, new, reached=Tier(reached))
    return json_response({"status": "changed", "setting": setting.value, "settings": _settings_doc(updated)})


ROUTES = [
    Route("/auth/limits", get_limits, methods=["GET"]),
    Route("/auth/limits/{setting}", change_limit, methods=["PUT"]),
]

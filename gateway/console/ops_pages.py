"""Console page for the operations settings: business and channel switches, the tier
limit table and the step-up tools' parameters, the version history and rollback.

Everyone may look; changing needs ``manage_ops``. Each form names the version it
was read from (``base_version``), so a change made meanwhile by someone else is
refused with 409 instead of being overwritten, and each needs a reason. A change
publishes a whole new version through gateway.ops_actions (the same records and
audit entries as the admin API) with the signed-in analyst as author; every
gateway applies it within a second.

The forms are plain HTML: a refusal renders this page again with its status, the
message, each problem beside the field it concerns and the values as entered.
A script posting JSON gets the JSON error instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.dynamic_linking import format_amount
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, action, done, page, services
from gateway.console.render import render
from gateway.errors import BadRequest, GatewayError
from gateway.ops_actions import change_ops, ops_state, rollback_ops
from gateway.route_policy import Action
from gateway.services import Services
from gateway.switches import CHANNELS, MOBILE, TOOL_PARAMETERS, OpsSettings, Switch
from gateway.switches_store import OpsRecord
from limits import Tier

__all__ = ["ROUTES"]

HISTORY = 30
EDITABLE_TIERS = tuple(t for t in Tier if t is not Tier.T0)  # T0 moves no money
SECTIONS = ("business", "channels")
_VERSION_RE = re.compile(r"[0-9]{1,12}\Z")

BUSINESS_LABELS = {
    Action.VIEW_ACCOUNTS: "View accounts and balances",
    Action.VIEW_HISTORY: "View transaction history",
    Action.VIEW_PAYEES: "View payees",
    Action.TRANSFER: "Outgoing transfers",
    Action.PAY: "Payments",
    Action.ADD_PAYEE: "Add a payee",
    Action.BIND_DEVICE: "Bind a device",
    Action.CHANGE_LIMIT: "Change a personal limit",
}
TOOL_LABELS = {
    "tool_max_failures": ("Wrong attempts before a tool locks", ""),
    "tool_lockout_seconds": ("Lockout after too many wrong attempts", "s"),
    "challenge_ttl": ("Step-up challenge lifetime", "s"),
    "approval_ttl": ("Approval lifetime (after the step-up, to replay the request)", "s"),
    "sms_code_digits": ("Digits of an SMS code (a code sent keeps its length)", ""),
    "sms_code_ttl": ("SMS code lifetime (not shorter than the wait between resends)", "s"),
}


@dataclass(frozen=True, slots=True)
class SwitchRow:
    section: str  # business | channels
    name: str
    label: str
    on: bool  # in force now
    switch: Switch | None  # as in the document (None: not mentioned, so on)

    @property
    def form_id(self) -> str:
        return f"{self.section}.{self.name}"


def _switch_rows(settings: OpsSettings, now: float) -> dict[str, list[SwitchRow]]:
    channels = [MOBILE, *sorted(CHANNELS - {MOBILE})]
    return {
        "business": [SwitchRow("business", a.value, BUSINESS_LABELS.get(a, a.value),
                               not settings.business.get(a.value, Switch()).stopped_at(now),
                               settings.business.get(a.value)) for a in Action],
        "channels": [SwitchRow("channels", c, "Every call of the app" if c == MOBILE
                               else f"App on {c.split('.', 1)[1]} devices",
                               not settings.channels.get(c, Switch()).stopped_at(now),
                               settings.channels.get(c)) for c in channels],
    }


def _tier_rows(svc: Services, settings: OpsSettings) -> list[dict[str, Any]]:
    base = svc.switches.base_limits
    limits = settings.parameters.limits(base)
    return [{"tier": t.label, "per_transaction": limits.tier_limit(t).per_transaction,
             "daily": limits.tier_limit(t).daily, "configured": base.tier_limit(t),
             "overridden": t in settings.parameters.tiers} for t in EDITABLE_TIERS]


def _tool_rows(svc: Services, settings: OpsSettings) -> list[dict[str, Any]]:
    rows = []
    base = svc.switches.base_stepup
    in_force = settings.parameters.stepup(base)
    for name, (low, high) in TOOL_PARAMETERS.items():
        label, unit = TOOL_LABELS.get(name, (name, ""))
        rows.append({"name": name, "label": label, "unit": unit, "low": low, "high": high,
                     "override": getattr(settings.parameters, name), "configured": getattr(base, name),
                     "in_force": getattr(in_force, name)})
    return rows


def _parameter_values(settings: OpsSettings) -> dict[str, str]:
    """The parameter form's fields as the version in force fills them ("" = configured)."""
    values = {}
    for tier in EDITABLE_TIERS:
        limit = settings.parameters.tiers.get(tier)
        values[f"tiers.{tier.label}.per_transaction"] = format_amount(limit.per_transaction) if limit else ""
        values[f"tiers.{tier.label}.daily"] = format_amount(limit.daily) if limit else ""
    for name in TOOL_PARAMETERS:
        value = getattr(settings.parameters, name)
        values[name] = "" if value is None else str(value)
    return values


def _placed(problems: list[dict[str, str]], switches: dict[str, list[SwitchRow]]
            ) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """Problems by the field the page shows them beside (``parameters.`` dropped), and
    those it has no field for."""
    fields = {*TOOL_PARAMETERS, *(f"tiers.{t.label}{k}" for t in EDITABLE_TIERS
                                  for k in ("", ".per_transaction", ".daily"))}
    fields |= {f"{row.form_id}{k}" for rows in switches.values() for row in rows
               for k in ("", ".enabled", ".until", ".message")}
    placed: dict[str, list[str]] = {}
    elsewhere = []
    for p in problems:
        field = p["field"].removeprefix("parameters.")
        if field in fields:
            placed.setdefault(field, []).append(p["message"])
        else:
            elsewhere.append(p)
    return placed, elsewhere


async def _ops_page(request: Request, who: SignedIn, *, status: int = 200,
                    error: GatewayError | None = None, form_id: str = "",
                    fields: Mapping[str, str] | None = None) -> Response:
    svc = services(request)
    state = await ops_state(svc, history=HISTORY)
    now = time.time()
    switches = _switch_rows(state.settings, now)
    problems, elsewhere = _placed(list(error.extra.get("problems", [])) if error else [], switches)
    values = _parameter_values(state.settings)
    if form_id == "parameters" and fields is not None:
        values.update({k: v for k, v in fields.items() if k in values})
    published = request.query_params.get("published", "")
    response = render(
        "ops.html", who=who, record=state.record, history=state.history, now=now,
        switches=switches, tiers=_tier_rows(svc, state.settings),
        tools=_tool_rows(svc, state.settings), values=values,
        ignored=state.ignored.problems if state.ignored else [],
        error=error, problems=problems, elsewhere=elsewhere, form_id=form_id,
        entered=dict(fields or {}),
        published=int(published) if _VERSION_RE.match(published) else None,
        editable=who.allows(Permission.MANAGE_OPS))
    response.status_code = status
    return response


@page(Permission.VIEW)
async def ops_home(request: Request, who: SignedIn) -> Response:
    return await _ops_page(request, who)


def _base_version(fields: Mapping[str, str]) -> int:
    raw = fields.get("base_version", "").strip()
    if not _VERSION_RE.match(raw):
        raise BadRequest("invalid_base_version",
                         "base_version (the version this page shows) is required; reload the page")
    return int(raw)


def _live_document(settings: OpsSettings, now: float) -> dict[str, Any]:
    """The version in force as a document to change: switches that are on (or whose stop
    has ended) are left out, parameters are those applied."""
    return {section: {k: s.to_json() for k, s in sorted(getattr(settings, section).items())
                      if s.stopped_at(now)} for section in SECTIONS} | {
        "parameters": settings.parameters.to_json()}


def _parameters(fields: Mapping[str, str]) -> dict[str, Any]:
    """The parameter form as the document's ``parameters``; a blank field is the configured value.
    Values are passed on as typed, for the validation to name what is wrong with them."""
    params: dict[str, Any] = {}
    tiers: dict[str, dict[str, str]] = {}
    for tier in EDITABLE_TIERS:
        row = {}
        for key in ("per_transaction", "daily"):
            value = fields.get(f"tiers.{tier.label}.{key}", "").strip().replace(",", "")
            if value:
                row[key] = value
        if row:
            tiers[tier.label] = row
    if tiers:
        params["tiers"] = tiers
    for name in TOOL_PARAMETERS:
        value = fields.get(name, "").strip()
        if value:
            params[name] = int(value) if value.isascii() and value.isdigit() else value
    return params


Act = Callable[[], Awaitable[tuple[OpsRecord, int]]]


async def _act(request: Request, who: SignedIn, fields: dict[str, str], form_id: str,
               act: Act) -> Response:
    try:
        record, seq = await act()
    except GatewayError as exc:
        if request.headers.get("content-type", "").startswith("application/json"):
            raise
        if exc.status == 409:  # the page shows the new version; values typed over the old are dropped
            return await _ops_page(request, who, status=409, error=exc)
        return await _ops_page(request, who, status=exc.status, error=exc, form_id=form_id,
                               fields=fields)
    return done(request, f"/console/ops?published={record.version}", version=record.version,
                audit_seq=seq)


@action(Permission.MANAGE_OPS)
async def set_switch(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """Stop or resume one business or channel switch; the rest of the version stays."""
    section, name = fields.get("section", ""), fields.get("name", "")

    async def act() -> tuple[OpsRecord, int]:
        if section not in SECTIONS:
            raise BadRequest("invalid_section", "section must be business or channels")
        state = fields.get("state", "")
        if state not in ("on", "off"):
            raise BadRequest("invalid_state", "state must be on or off")
        base_version = _base_version(fields)
        svc = services(request)
        now = time.time()
        document = _live_document((await ops_state(svc, history=1)).settings, now)
        if state == "on":
            document[section].pop(name, None)
        else:
            stop: dict[str, object] = {"enabled": False}
            if fields.get("until", "").strip():
                stop["until"] = fields["until"].strip()
            if fields.get("message", "").strip():
                stop["message"] = fields["message"].strip()
            document[section][name] = stop
        return await change_ops(svc, document, author=who.name, reason=fields.get("reason", ""),
                                base_version=base_version, now=now)

    return await _act(request, who, fields, f"{section}.{name}", act)


@action(Permission.MANAGE_OPS)
async def set_parameters(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """The limit table and tool parameters as a whole; the switches stay as they are."""

    async def act() -> tuple[OpsRecord, int]:
        base_version = _base_version(fields)
        svc = services(request)
        now = time.time()
        document = _live_document((await ops_state(svc, history=1)).settings, now)
        document["parameters"] = _parameters(fields)
        return await change_ops(svc, document, author=who.name, reason=fields.get("reason", ""),
                                base_version=base_version, now=now)

    return await _act(request, who, fields, "parameters", act)


@action(Permission.MANAGE_OPS)
async def rollback(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    """Publish an earlier version's document again as a new version."""
    raw = fields.get("version", "").strip()

    async def act() -> tuple[OpsRecord, int]:
        if not _VERSION_RE.match(raw):
            raise BadRequest("invalid_version", "version must be a version number")
        return await rollback_ops(services(request), int(raw), author=who.name,
                                  reason=fields.get("reason", ""), now=time.time(),
                                  base_version=_base_version(fields))

    return await _act(request, who, fields, f"rollback.{raw}", act)


ROUTES = [
    Route("/ops", ops_home, methods=["GET"]),
    Route("/ops/switches", set_switch, methods=["POST"]),
    Route("/ops/parameters", set_parameters, methods=["POST"]),
    Route("/ops/rollback", rollback, methods=["POST"]),
]

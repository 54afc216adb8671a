"""Operations settings: business switches, channel switches and live parameters.

One versioned document in Redis, changed through the admin API and applied by
every gateway process within a second, without a restart::

    {"business":   {"transfer": {"enabled": false, "until": "2026-12-01T16:00:00+08:00",
                                 "message": "..."}, "add_payee": true},
     "channels":   {"mobile": true, "mobile.ios": false},
     "parameters": {"tiers": {"T1": {"per_transaction": "500.00", "daily": "500.00"}},
                    "tool_max_failures": 3, "tool_lockout_seconds": 1800,
                    "challenge_ttl": 300, "approval_ttl": 120,
                    "sms_code_digits": 8, "sms_code_ttl": 180}}

A business switch is keyed by route action (gateway.route_policy.Action); a
channel is the kind of client: ``mobile`` is every device-signed call of the
app, ``mobile.<os>`` those from devices registered with that ``os`` attribute.
A switch that is off with an ``until`` is on again from that time. Parameters
override the configuration's values while they are in the document.

gateway.switches_store keeps the versions in Redis and applies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from auth_tools.dynamic_linking import InvalidAmount, format_amount, parse_amount
from auth_tools.sms import MAX_DIGITS, MIN_DIGITS
from device_fingerprint.attributes import DeviceOS
from gateway.errors import GatewayError
from gateway.route_policy import Action
from limits import LimitsConfig, Tier, TierLimit
from limits.errors import LimitsConfigInvalid

if TYPE_CHECKING:
    from device_fingerprint.registry import Device
    from gateway.config import StepUpConfig

__all__ = [
    "CHANNELS",
    "MOBILE",
    "ChannelSuspended",
    "OpsDocumentInvalid",
    "OpsError",
    "OpsSettings",
    "OpsUnavailable",
    "OpsVersionConflict",
    "OpsVersionNotFound",
    "Parameters",
    "ServiceSuspended",
    "Switch",
    "parse_document",
]

MOBILE = "mobile"
CHANNELS = frozenset({MOBILE, *(f"{MOBILE}.{os.value}" for os in DeviceOS)})
BUSINESS = frozenset(a.value for a in Action)
# name -> (lowest, highest): the ranges gateway.config.StepUpConfig accepts.
TOOL_PARAMETERS: Mapping[str, tuple[int, int]] = MappingProxyType({
    "tool_max_failures": (1, 100),
    "tool_lockout_seconds": (1, 30 * 86_400),
    "challenge_ttl": (30, 1800),
    "approval_ttl": (10, 600),
    "sms_code_digits": (MIN_DIGITS, MAX_DIGITS),
    "sms_code_ttl": (30, 1800),  # and not shorter than the SMS resend interval
})
_SECTIONS = frozenset({"business", "channels", "parameters"})
_MAX_MESSAGE = 200

class OpsError(Exception):
    code = "ops_error"
    message = "the operations settings failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.message
        super().__init__(self.message)


class OpsDocumentInvalid(OpsError):
    code = "ops_settings_invalid"
    message = "the operations settings do not validate"

    def __init__(self, problems: list[dict[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems[:3]))


class OpsVersionNotFound(OpsError):
    code = "ops_version_not_found"
    message = "no such version of the operations settings"


class OpsVersionConflict(OpsError):
    code = "ops_version_conflict"
    message = "the operations settings changed since base_version; read them again"


class OpsUnavailable(OpsError):
    code = "state_unavailable"
    message = "the operations settings cannot be read or written"


class ServiceSuspended(GatewayError):
    status = 503
    code = "service_suspended"
    message = "this service is suspended; try again later"


class ChannelSuspended(GatewayError):
    status = 503
    code = "channel_suspended"
    message = "this channel is suspended; try again later"


@dataclass(frozen=True, slots=True)
class Switch:
    enabled: bool = True
    until: float | None = None  # off until then (epoch seconds), on afterwards
    message: str = ""

    def stopped_at(self, now: float) -> bool:
        return not self.enabled and (self.until is None or now < self.until)

    def to_json(self) -> object:
        if self.until is None and not self.message:
            return self.enabled
        doc: dict[str, object] = {"enabled": self.enabled}
        if self.until is not None:
            doc["until"] = datetime.fromtimestamp(self.until, UTC).isoformat()
        if self.message:
            doc["message"] = self.message
        return doc


_ON = Switch()


@dataclass(frozen=True, slots=True)
class Parameters:
    """Overrides of configured values; None = the configuration's value."""

    tiers: Mapping[Tier, TierLimit] = field(default_factory=dict)
    tool_max_failures: int | None = None
    tool_lockout_seconds: int | None = None
    challenge_ttl: int | None = None
    approval_ttl: int | None = None
    sms_code_digits: int | None = None
    sms_code_ttl: int | None = None

    def limits(self, base: LimitsConfig) -> LimitsConfig:
        if not self.tiers:
            return base
        table = tuple(self.tiers.get(t, base.tier_limit(t)) for t in Tier)
        return replace(base, tiers=table)

    def stepup(self, base: StepUpConfig) -> StepUpConfig:
        """The step-up configuration with these overrides (each parameter is named after
        the ``stepup`` setting it overrides)."""
        overrides = {name: getattr(self, name) for name in TOOL_PARAMETERS if getattr(self, name) is not None}
        return replace(base, **overrides) if overrides else base

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {}
        if self.tiers:
            doc["tiers"] = {t.label: {"per_transaction": format_amount(v.per_transaction),
                                      "daily": format_amount(v.daily)} for t, v in sorted(self.tiers.items())}
        for name in TOOL_PARAMETERS:
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        return doc


@dataclass(frozen=True, slots=True)
class OpsSettings:
    version: int = 0
    business: Mapping[str, Switch] = field(default_factory=dict)
    channels: Mapping[str, Switch] = field(default_factory=dict)
    parameters: Parameters = field(default_factory=Parameters)

    def check_action(self, action: str, now: float) -> None:
        """Raise ServiceSuspended (503) when the action's switch is off."""
        switch = self.business.get(action, _ON)
        if switch.stopped_at(now):
            raise _refusal(ServiceSuspended, switch, now, {"action": action})

    def check_channel(self, channel: str, now: float) -> None:
        """Raise ChannelSuspended (503) when the channel's switch is off."""
        switch = self.channels.get(channel, _ON)
        if switch.stopped_at(now):
            raise _refusal(ChannelSuspended, switch, now, {"channel": channel})

    def check_device(self, device: Device, now: float) -> None:
        """The ``mobile.<os>`` channel of the device's registered ``os`` attribute."""
        os = device.attributes.get("os")
        if isinstance(os, str) and os:
            self.check_channel(f"{MOBILE}.{os}", now)

    def document(self) -> dict[str, object]:
        return {"business": {k: v.to_json() for k, v in sorted(self.business.items())},
                "channels": {k: v.to_json() for k, v in sorted(self.channels.items())},
                "parameters": self.parameters.to_json()}


def _refusal(cls: type[GatewayError], switch: Switch, now: float,
             extra: dict[str, object]) -> GatewayError:
    headers = {}
    if switch.until is not None:
        headers["retry-after"] = str(max(1, math.ceil(switch.until - now)))
        extra["until"] = datetime.fromtimestamp(switch.until, UTC).isoformat()
    return cls(message=switch.message or None, headers=headers, extra=extra)


# -- validation ------------------------------------------------------------------------------


class _Problems(list):
    def add(self, where: str, message: str) -> None:
        self.append({"field": where, "message": message})


def _switch(where: str, raw: object, now: float | None, problems: _Problems) -> Switch | None:
    if isinstance(raw, bool):
        return Switch(enabled=raw)
    if not isinstance(raw, Mapping):
        problems.add(where, "must be true, false or {\"enabled\", \"until\", \"message\"}")
        return None
    for key in sorted(set(raw) - {"enabled", "until", "message"}, key=str):
        problems.add(f"{where}.{key}", "unknown key")
    enabled, until, message = raw.get("enabled"), raw.get("until"), raw.get("message", "")
    if not isinstance(enabled, bool):
        problems.add(f"{where}.enabled", "must be true or false")
        return None
    if not isinstance(message, str) or len(message) > _MAX_MESSAGE:
        problems.add(f"{where}.message", f"must be text of at most {_MAX_MESSAGE} characters")
        return None
    at = None
    if until is not None:
        at = _instant(f"{where}.until", until, problems)
        if at is None:
            return None
        if enabled:
            problems.add(f"{where}.until", "only a switch that is off has an until time")
            return None
        if now is not None and at <= now:
            problems.add(f"{where}.until", "is in the past")
            return None
    return Switch(enabled=enabled, until=at, message=message.strip())


def _instant(where: str, raw: object, problems: _Problems) -> float | None:
    try:
        if not isinstance(raw, str):
            raise ValueError
        when = datetime.fromisoformat(raw)
        if when.tzinfo is None:
            raise ValueError
    except ValueError:
        problems.add(where, "must be an ISO 8601 time with its offset, e.g. 2026-12-01T16:00:00+08:00")
        return None
    return when.timestamp()


def _switches(section: str, raw: object, known: frozenset[str], now: float | None,
              problems: _Problems) -> dict[str, Switch]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(section, "must be an object")
        return {}
    out = {}
    for name, value in raw.items():
        where = f"{section}.{name}"
        if name not in known:
            problems.add(where, f"unknown name (known: {', '.join(sorted(known))})")
            continue
        switch = _switch(where, value, now, problems)
        if switch is not None:
            out[name] = switch
    return out


def _whole(where: str, raw: object, low: int, high: int, problems: _Problems) -> int | None:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        problems.add(where, f"must be a whole number in [{low}, {high}]")
        return None
    return raw


def _amount(where: str, raw: object, problems: _Problems) -> int | None:
    try:
        return parse_amount(raw)
    except InvalidAmount as exc:
        problems.add(where, f"must be an amount in CNY ({exc})")
        return None


def _tiers(raw: object, base: LimitsConfig, problems: _Problems) -> dict[Tier, TierLimit]:
    if not isinstance(raw, Mapping):
        problems.add("parameters.tiers", "must be an object of T1..T5")
        return {}
    out: dict[Tier, TierLimit] = {}
    found = len(problems)
    for name, value in raw.items():
        where = f"parameters.tiers.{name}"
        try:
            tier = Tier.parse(name)
        except ValueError:
            tier = None
        if tier is None or tier is Tier.T0:
            problems.add(where, "unknown tier (T1..T5; T0 moves no money)")
            continue
        current = base.tier_limit(tier)
        if not isinstance(value, Mapping):
            value = {"per_transaction": value, "daily": value}
        for key in sorted(set(value) - {"per_transaction", "daily"}, key=str):
            problems.add(f"{where}.{key}", "unknown key")
        per_txn = (_amount(f"{where}.per_transaction", value["per_transaction"], problems)
                   if "per_transaction" in value else current.per_transaction)
        daily = _amount(f"{where}.daily", value["daily"], problems) if "daily" in value else current.daily
        if per_txn is not None and daily is not None:
            out[tier] = TierLimit(per_txn, daily)
    if len(problems) > found:
        return out
    previous = TierLimit(0, 0)
    for tier in Tier:
        limit = out.get(tier, base.tier_limit(tier))
        where = f"parameters.tiers.{tier.label}"
        if limit.per_transaction > limit.daily:
            problems.add(where, "per_transaction is above daily")
        if limit.per_transaction < previous.per_transaction or limit.daily < previous.daily:
            problems.add(where, f"allows less than T{int(tier) - 1} "
                                f"({format_amount(previous.per_transaction)} / {format_amount(previous.daily)})")
        previous = limit
    return out


def _parameters(raw: object, base: LimitsConfig, sms_resend_interval: float,
                problems: _Problems) -> Parameters:
    if raw is None:
        return Parameters()
    if not isinstance(raw, Mapping):
        problems.add("parameters", "must be an object")
        return Parameters()
    values: dict[str, Any] = {}
    found = len(problems)
    for name, value in raw.items():
        if name == "tiers":
            values["tiers"] = MappingProxyType(_tiers(value, base, problems))
        elif name in TOOL_PARAMETERS:
            values[name] = _whole(f"parameters.{name}", value, *TOOL_PARAMETERS[name], problems)
        else:
            problems.add(f"parameters.{name}",
                         f"unknown parameter (known: tiers, {', '.join(TOOL_PARAMETERS)})")
    sms_ttl = values.get("sms_code_ttl")
    if sms_ttl is not None and sms_ttl < sms_resend_interval:  # it would expire before a resend
        problems.add("parameters.sms_code_ttl",
                     f"must not be shorter than the {sms_resend_interval:g} s between SMS resends")
    params = Parameters(**values)
    if len(problems) == found:
        try:
            params.limits(base)
        except LimitsConfigInvalid as exc:  # t2_user_max must stay between T2 and T5
            problems.add("parameters.tiers", f"conflicts with the configuration: {exc}")
    return params


def parse_document(doc: object, base: LimitsConfig, *, sms_resend_interval: float, version: int = 0,
                   now: float | None = None) -> OpsSettings:
    """Validate a settings document against the configured limit table and SMS resend interval.

    ``now`` (for a new document) refuses ``until`` times in the past; a stored
    document is read without it. Raises OpsDocumentInvalid with every problem.
    """
    problems = _Problems()
    if not isinstance(doc, Mapping):
        raise OpsDocumentInvalid([{"field": "-", "message": "the settings must be a JSON object"}])
    for key in sorted(set(doc) - _SECTIONS, key=str):
        problems.add(str(key)[:64], "unknown section (business, channels, parameters)")
    settings = OpsSettings(
        version=version,
        business=MappingProxyType(_switches("business", doc.get("business"), BUSINESS, now, problems)),
        channels=MappingProxyType(_switches("channels", doc.get("channels"), CHANNELS, now, problems)),
        parameters=_parameters(doc.get("parameters"), base, sms_resend_interval, problems),
    )
    if problems:
        raise OpsDocumentInvalid(list(problems))
    return settings

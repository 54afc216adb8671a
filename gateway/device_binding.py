"""Binding devices: registration verdicts, the device-change step-up, notifications.

``POST /devices`` proves the key and the password and reports attributes and
signals. The user's very first device is bound at once while
``device.first_device_trusted`` (enrolment). Any other device is registered
PENDING: it may log in and run the binding challenge, nothing else (see
:class:`BindingAwareDeviceCheck`; the ``/v1`` path answers with the binding
challenge). The challenge approves ``Transaction(action="bind_device",
payee=<device id>)`` at ``device.new_device_tier`` (moved up by risk); the
approval is presented to ``POST /devices/bind`` or with any ``/v1`` call.
Binding starts the cool-off, unbinds the device a re-install replaces, texts
the reserved phone and appends a ``bind_device`` decision to the stream.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import AuthToolError, NotEnrolled
from device_fingerprint.errors import DeviceError, DeviceUnknown, TooManyDevices
from device_fingerprint.matching import DeviceMatch, MatchStatus
from device_fingerprint.registry import Device, DeviceStatus, user_tag
from device_fingerprint.signals import DeviceSignals, parse_signals
from gateway.config import combination_rows
from gateway.device_check import DeviceCheck, SignedRequest
from gateway.device_errors import DeviceLimitReached, DeviceNotBound
from gateway.errors import BadRequest, Forbidden, InsufficientAuthentication
from gateway.services import Services
from gateway.sessions import Session
from gateway.stepup_gate import offered_rows, require_tier
from gateway.stepup_sms import reserved_phone
from risk_engine import Outcome, RequestFacts, RiskLevel, risk_tier

__all__ = [
    "BIND_ACTION",
    "BindingAwareDeviceCheck",
    "after_login",
    "binding_txn",
    "complete_binding",
    "login_signals",
    "register",
]

log = logging.getLogger("riskgate.devices")

BIND_ACTION = "bind_device"
_TZ = ZoneInfo("Asia/Shanghai")

# What a PENDING device may call: log in and out, run the binding challenge, bind.
_PENDING_ALLOWED = (("POST", "/auth/login"), ("POST", "/auth/logout"), ("POST", "/devices/bind"))
_PENDING_PREFIX = "/auth/challenges/"


def binding_txn(device_id: str) -> Transaction:
    """What the user approves to bind a device: the device itself."""
    return Transaction(action=BIND_ACTION, payee=device_id)


@dataclass(frozen=True, slots=True)
class PendingBinding:
    """Kept beside a PENDING device until it is bound (same TTL as the record)."""

    match: MatchStatus
    similarity: float
    matched_device_id: str | None

    def to_json(self) -> bytes:
        return orjson.dumps({"match": self.match.value, "similarity": self.similarity,
                             "matched": self.matched_device_id})

    @classmethod
    def from_json(cls, raw: bytes) -> PendingBinding:
        doc = orjson.loads(raw)
        return cls(MatchStatus(doc["match"]), float(doc["similarity"]), doc.get("matched"))


def _pending_key(device_id: str, user_id: str) -> str:
    return f"{user_tag(user_id)}:devbind:{device_id}"


class BindingAwareDeviceCheck(DeviceCheck):
    """The device check of every non-``/v1`` endpoint, refusing PENDING devices
    everywhere but login, logout, the challenge API and ``POST /devices/bind``."""

    async def verify_registered(self, req: SignedRequest, now: float) -> Device:
        device = await super().verify_registered(req, now)
        if device.status is DeviceStatus.PENDING and not (
                (req.method, req.path) in _PENDING_ALLOWED or req.path.startswith(_PENDING_PREFIX)):
            raise DeviceNotBound()
        return device


# -- registration -----------------------------------------------------------

async def register(svc: Services, *, user_id: str, jwk: dict[str, object],
                   enc_jwk: dict[str, object] | None, raw_attributes: object, raw_signals: object,
                   client_ip: str, now: float) -> tuple[Device, dict[str, object]]:
    """Record a new device key (password and proof of possession already checked).

    Returns the device and what the registration response says about it.
    """
    rec = svc.recognition
    cfg = svc.config.device
    attributes, signals = rec.parse_report(raw_attributes, raw_signals)
    recognised = await rec.recognise(user_id, attributes, signals, now)
    match = recognised.match
    replaces = match.matched_device_id if match.status is MatchStatus.KNOWN_REINSTALLED else None
    if replaces is None and recognised.bound_count >= cfg.max_devices:
        raise DeviceLimitReached(extra={"max_devices": cfg.max_devices,
                                        "bound": recognised.bound_count})
    first = recognised.bound_count == 0 and not await rec.binding.history(user_id, limit=1)
    device = await svc.devices.register(
        user_id, jwk, attributes.to_dict() if attributes else {}, now, enc_jwk=enc_jwk,
        status=DeviceStatus.PENDING, signals=rec.merged_signals(None, signals),
        pending_ttl=cfg.pending_ttl)
    cap = rec.tier_cap(device)
    doc: dict[str, object] = {
        "recognition": "first" if first else match.status.value,
        "similarity": match.similarity,
        "signals": list(device.signals),
        "max_tier": f"T{cap}",
    }
    if recognised.context.sms_blocked_until is not None:
        doc["sms_blocked_until"] = recognised.context.sms_blocked_until
    if first and cfg.first_device_trusted:
        bound = await _activate(svc, device, match, replaces=None, reason="enrolment",
                                cool_off=False, now=now)
        await _notify_bound(svc, bound, now)
        return bound, {**doc, "step_up_required": False}
    pending = PendingBinding(match.status, match.similarity, match.matched_device_id)
    await svc.redis.set(_pending_key(device.device_id, user_id), pending.to_json(), ex=cfg.pending_ttl)
    return device, {**doc, "step_up_required": True, "required_tier": f"T{cfg.new_device_tier}",
                    "replaces": replaces, "expires_in": cfg.pending_ttl,
                    "next": "log in from this device, pass the step-up, then POST /devices/bind"}


# -- login ------------------------------------------------------------------

def login_signals(svc: Services, device: Device, raw: object) -> DeviceSignals | None:
    """Validate the signals a login reports (None when it reports none)."""
    if raw is None:
        return None
    try:
        return parse_signals(raw, config=svc.recognition.signals_config,
                             app_signature_hash=str(device.attributes.get("app_signature_hash", "")))
    except DeviceError as exc:
        raise BadRequest(exc.code, exc.message) from exc


async def after_login(svc: Services, *, device: Device, session: Session,
                      signals: DeviceSignals | None, client_ip: str, now: float) -> dict[str, object]:
    """Store the reported signals, pin the session, and for a PENDING device
    return the binding challenge (what the login response adds)."""
    rec = svc.recognition
    if signals is not None:
        merged = rec.merged_signals(device, signals)
        if merged != device.signals:
            await svc.devices.set_signals(device.device_id, merged)
            device = replace(device, signals=merged)
    await rec.pin_session(session, client_ip, ttl=svc.sessions.absolute_timeout)
    out: dict[str, object] = {"device_status": device.status.value,
                              "max_tier": f"T{rec.tier_cap(device)}"}
    if device.status is DeviceStatus.PENDING:
        try:
            await complete_binding(svc, session=session, device=device, headers={},
                                   client_ip=client_ip, now=now)
            out["device_status"] = DeviceStatus.BOUND.value
        except InsufficientAuthentication as exc:
            out["binding"] = exc.extra
    return out


# -- the binding step-up ----------------------------------------------------

async def complete_binding(svc: Services, *, session: Session, device: Device,
                           headers: dict[bytes, bytes], client_ip: str, now: float) -> Device:
    """Bind a PENDING device once the session proves the binding tier.

    Raises InsufficientAuthentication (401 with the binding challenge) until an
    approval of :func:`binding_txn` comes with ``headers``; ``risk_blocked``
    when the risk engine blocks the change.
    """
    from gateway.decision import Decision, finish  # decision imports this module

    if device.status is not DeviceStatus.PENDING:
        return device
    raw = await svc.redis.get(_pending_key(device.device_id, device.user_id))
    if raw is None:
        raise DeviceUnknown("the registration expired; register the device again")
    pending = PendingBinding.from_json(raw)
    rec = svc.recognition
    facts = RequestFacts(
        user_id=device.user_id, action=BIND_ACTION, moves_money=False, device_id=device.device_id,
        device_status="known" if pending.match is MatchStatus.KNOWN_REINSTALLED else "new",
        device_created=device.created, device_similarity=pending.similarity,
        device_signals={**rec.risk_flags(device),
                        "reinstalled": pending.match is MatchStatus.KNOWN_REINSTALLED},
        ip=client_ip, geo=rec.geo(client_ip),
        sim_swap_window_hours=svc.config.device.sms_block_days * 24)
    features, risk = await svc.risk.assess(facts, now)
    d = Decision(secrets.token_hex(12), facts, dict(features), risk,
                 base_tier=svc.config.device.new_device_tier)
    if risk.level is RiskLevel.BLOCK:
        finish(svc, d, Outcome.BLOCKED, now=now)
        raise Forbidden("risk_blocked", "this device change was refused; contact the bank if it was yours",
                        extra={"decision_id": d.decision_id})
    d.required = risk_tier(d.base_tier, risk.level)
    # At low risk the configured combinations (SMS + face) bind, while their tools are
    # offered; above it, or without them, the tier table decides.
    rows = (offered_rows(svc, combination_rows(svc.config.device.new_device_combinations))
            if d.required == d.base_tier else ())
    try:
        d.reached = await require_tier(
            svc, session=session, device=device, txn=binding_txn(device.device_id),
            required=d.required, headers=headers, now=now, rows=rows,
            reason={"device": "known_reinstalled" if pending.match is MatchStatus.KNOWN_REINSTALLED
                    else "new", "similarity": pending.similarity, "risk_level": risk.level.value})
    except InsufficientAuthentication:
        finish(svc, d, Outcome.STEP_UP, now=now)
        raise
    replaces = pending.matched_device_id if pending.match is MatchStatus.KNOWN_REINSTALLED else None
    bound = await _activate(svc, device, DeviceMatch(pending.match, pending.matched_device_id,
                                                     pending.similarity),
                            replaces=replaces, reason="step_up", cool_off=True, now=now)
    await svc.redis.delete(_pending_key(device.device_id, device.user_id))
    finish(svc, d, Outcome.ALLOWED, now=now, completed=True)
    await _notify_bound(svc, bound, now)
    return bound


async def _activate(svc: Services, device: Device, match: DeviceMatch, *, replaces: str | None,
                    reason: str, cool_off: bool, now: float) -> Device:
    try:
        result = await svc.recognition.binding.activate(
            device.user_id, device.device_id, now, match=match, replaces=replaces, reason=reason,
            cool_off=cool_off)
    except TooManyDevices as exc:
        raise DeviceLimitReached(extra={"max_devices": svc.config.device.max_devices}) from exc
    return result.device


async def _notify_bound(svc: Services, device: Device, now: float) -> None:
    """Text the reserved phone: the customer learns of a binding they did not make."""
    try:
        phone = await reserved_phone(svc, device.user_id)
    except NotEnrolled:
        return
    model = str(device.attributes.get("model", "")) or "unknown model"
    when = datetime.fromtimestamp(now, _TZ).strftime("%Y-%m-%d %H:%M")
    text = (f"[riskgate] A new device ({model}) was bound to your account at {when}. "
            "If this was not you, call the bank immediately.")
    try:
        await svc.sms_sender.send(phone, text)
    except AuthToolError:
        # The binding stands; a lost notice must not undo it. Logged for operations.
        log.warning("the bind notice for user %s could not be sent", device.user_id)

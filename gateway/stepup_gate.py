"""The step-up gate: does this session reach the tier this request needs?

The session alone reaches T1 when the password was entered within
``session.recent_password_window`` (T0 otherwise). Anything higher needs an
approval: the client completes a challenge and repeats the request with
``X-Approval-Token``. The approval is single use and bound to session,
device and ``txn_hash``, so it cannot approve another amount or payee.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth_tools.dynamic_linking import Transaction, format_amount, txn_hash
from auth_tools.tier_policy import amr_claim
from device_fingerprint.registry import Device, DeviceStatus
from gateway.device_errors import DeviceTierCapped
from gateway.errors import InsufficientAuthentication
from gateway.services import Services
from gateway.sessions import Session
from gateway.stepup_tools import mask_payee

__all__ = ["APPROVAL_HEADER", "Reached", "offered_rows", "require_tier", "session_tier"]

APPROVAL_HEADER = b"x-approval-token"


@dataclass(frozen=True, slots=True)
class Reached:
    tier: int
    amr: tuple[str, ...]
    tools: tuple[str, ...]
    via_approval: bool


def offered_rows(svc: Services, rows: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """The combinations whose every tool this gateway offers (face needs a provider)."""
    def offered(name: str) -> bool:
        adapter = svc.stepup_tools.get(name)
        return adapter is not None and getattr(adapter, "offered", lambda _svc: True)(svc)

    return tuple(row for row in rows if row and all(offered(t) for t in row))


def _present(device: Device) -> tuple[str, ...]:
    return ("bound_device",) if device.status is DeviceStatus.BOUND else ()


def session_tier(svc: Services, session: Session, device: Device, now: float) -> Reached:
    """What the session reaches by itself: a recent password is T1."""
    pwd_age = session.factor_age("pwd", now)
    recent = ["pwd"] if pwd_age is not None and pwd_age <= svc.config.session.recent_password_window else []
    tier = svc.tier_policy.satisfied_tier(recent, present=_present(device)) if recent else 0
    return Reached(tier, amr_claim(session.factors), tuple(recent), False)


async def require_tier(svc: Services, *, session: Session, device: Device, txn: Transaction,
                       required: int, headers: dict[bytes, bytes], now: float,
                       reason: dict[str, object] | None = None,
                       decision_id: str = "", rows: tuple[tuple[str, ...], ...] = ()) -> Reached:
    """Return the tier reached for ``txn``, or raise 401 with a fresh challenge.

    A device that reported emulator, hooking or a repackaged app is capped
    (``Services.recognition.tier_cap``): a request above the cap is refused
    before any challenge (no tool could lift it), and an approval never
    counts for more than the cap.

    With ``rows`` (online activation) only an approval whose tools include one
    of those combinations will do, whatever the session or other tools reach;
    the challenge lists them as its acceptable combinations.
    """
    cap = svc.recognition.tier_cap(device) if svc.recognition is not None else 5
    if required > cap:
        raise DeviceTierCapped(extra={"required_tier": f"T{required}", "max_tier": f"T{cap}",
                                      "signals": list(device.signals)})
    reached = session_tier(svc, session, device, now)
    token = headers.get(APPROVAL_HEADER, b"").decode("latin-1").strip()
    if token:
        # Consumed whatever happens next: an approval is single use.
        approval = await svc.challenges.consume_approval(
            token, sid=session.sid, device_id=device.device_id, txn_hash_hex=txn_hash(txn))
        tier = min(int(approval.acr.removeprefix("T")), cap)
        if rows and not any(set(row) <= set(approval.tools) for row in rows):
            tier = 0  # an approval by other tools does not activate
        if tier > reached.tier or (rows and tier >= required):
            reached = Reached(tier, amr_claim([*approval.amr, *reached.amr]), approval.tools, True)
    if reached.tier >= required and (not rows or reached.via_approval):
        return reached
    challenge = await svc.challenges.create(user_id=session.user_id, device_id=device.device_id,
                                            sid=session.sid, txn=txn, required_tier=required, now=now,
                                            bound_device=device.status is DeviceStatus.BOUND,
                                            decision_id=decision_id, rows=[list(r) for r in rows])
    body: dict[str, object] = {
        "challenge_id": challenge.challenge_id,
        "required_tier": f"T{required}",
        "current_tier": f"T{reached.tier}",
        "acceptable": [list(r) for r in rows] if rows else svc.tier_policy.combinations(required),
        "transaction": {"action": txn.action, "amount": format_amount(txn.amount),
                        "currency": txn.currency, "payee": mask_payee(txn.payee) if txn.payee else ""},
        "txn_hash": challenge.txn_hash,
        "expires_in": svc.challenges.challenge_ttl,
        "approval_header": "X-Approval-Token",
    }
    if reason:
        body["reason"] = reason
    if svc.recognition is not None:
        blocked = await svc.recognition.sim_swaps.sms_blocked_until(session.user_id, now)
        if blocked is not None:
            # SMS and SMS armor are refused until then (gateway.sim_swap_guard).
            body["unavailable_tools"] = ["sms", "sms_armor"]
            body["sms_blocked_until"] = blocked
    raise InsufficientAuthentication(
        headers={"www-authenticate":
                 f'Bearer error="insufficient_user_authentication", acr_values="T{required}"'},
        extra=body)


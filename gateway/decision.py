"""Pipeline steps 5-7 for one proxied call: risk, required tier, step-up gate, spend.

risk assessment (features, rules, model) -> the tier the action and amount
need under the limits -> moved up by the risk level -> the step-up gate ->
for money movement, an atomic spend reservation at the tier reached.

Every outcome (allowed, step-up, blocked, over a limit) is appended to the
decision stream with its features, score, rules and stage latencies; history
updates and the stream write happen after the response, off the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from auth_tools.dynamic_linking import Transaction, format_amount
from auth_tools.tier_policy import amr_for
from device_fingerprint.registry import Device, DeviceStatus, user_tag
from gateway.accounts import AccountDirectory
from gateway.device_binding import complete_binding
from gateway.errors import Forbidden, InsufficientAuthentication
from gateway.route_policy import MatchedRoute
from gateway.services import Services
from gateway.sessions import Session
from gateway.stepup_gate import APPROVAL_HEADER, Reached, require_tier
from gateway.stepup_sms import PHONE_TOOL
from limits import (
    LargeTransferNoticeRequired,
    LimitExceeded,
    LimitsError,
    LimitsUnavailable,
    Reservation,
    Spent,
    Tier,
    UserLimits,
    required_tier,
)
from risk_engine import DecisionEvent, Outcome, RequestFacts, RiskAssessment, RiskLevel, risk_tier
from risk_engine.history import UserHistory

__all__ = ["Decision", "MoneyRows", "decide", "finish", "held_tools", "money_rows", "parse_money_rows",
           "queue_user_rows"]

log = logging.getLogger("riskgate.decision")


@dataclass
class Decision:
    decision_id: str
    facts: RequestFacts
    features: dict[str, object]
    risk: RiskAssessment
    base_tier: int = 0
    required: int = 0
    reached: Reached | None = None
    reservation: Reservation | None = None
    limit_claim: dict[str, object] | None = None
    latencies_ms: dict[str, float] = field(default_factory=dict)
    device: Device | None = None  # as it is after this request (bound by its approval, say)


# What each enrolled tool can prove at best (a FIDO key with user verification,
# not synced; a biometric key; a certificate key unlocked by its PIN).
_BEST_AMR: dict[str, tuple[str, ...]] = {
    "fido": ("hwk", "user"), "biometric": ("hwk", "user", "fpt"),
    "cloud_cert": ("swk", "pin"), "hardware_cert": ("hwk", "pin"),
}


def held_tools(svc: Services) -> list[str]:
    return [*svc.stepup_tools, PHONE_TOOL]


def reachable_tier(svc: Services, counts: dict[str, int], device: Device) -> int:
    """The highest tier this customer could reach with the tools they hold (``counts``:
    credentials per tool, read with the rest of the money rows), on this device.

    A money movement over every limit up to that tier is refused at once
    (403 limit_exceeded naming the tier that would allow it) rather than
    answered with a challenge no tool of theirs could pass.
    """
    held = ["pwd", *(("sms", "sms_armor") if counts.get(PHONE_TOOL) else ()),
            *(t for t in counts if t in svc.stepup_tools and t not in ("pwd", "sms", "sms_armor"))]
    completed = {t: {"amr": list(_BEST_AMR.get(t, amr_for(t)))} for t in held}
    present = ("bound_device",) if device.status is DeviceStatus.BOUND else ()
    # A device capped below this (emulator, hooking) is refused by the step-up gate
    # with its own error, device_tier_capped.
    return svc.tier_policy.satisfied_tier(completed, present=present)


def queue_user_rows(svc: Services, pipe, user: str) -> None:  # noqa: ANN001 - a redis pipeline
    """Queue the reads ``decide`` needs about the user: account classes, enrolment time."""
    pipe.hgetall(svc.accounts.key(user))
    pipe.hget(f"{user_tag(user)}:user", "created")


MoneyRows = tuple[UserLimits, Spent, dict[str, int]]


def queue_money_rows(svc: Services, pipe, user: str, now: float) -> None:  # noqa: ANN001 - a pipeline
    """Queue the reads a money movement needs: the user's own limits, today's spend and the
    enrolled tools; :func:`parse_money_rows` reads their replies."""
    svc.user_limits.queue_get(pipe, user)
    svc.reservations.queue_spent(pipe, user, now=now)
    svc.credentials.queue_tools_of(pipe, user, held_tools(svc))


def parse_money_rows(svc: Services, replies: list[object]) -> MoneyRows:
    for reply in replies:
        if isinstance(reply, Exception):
            raise LimitsUnavailable(f"limit counters unavailable: {reply}") from reply
    raw_settings, raw_spent, *counts = replies
    return (svc.user_limits.parse(raw_settings), svc.reservations.parse_spent(raw_spent),  # type: ignore[arg-type]
            svc.credentials.parse_tools_of(held_tools(svc), counts))


async def money_rows(svc: Services, user: str, now: float) -> MoneyRows:
    """The user's own limits, today's spend and enrolled tools, in one round trip."""
    try:
        async with svc.redis.pipeline(transaction=False) as pipe:
            queue_money_rows(svc, pipe, user, now)
            replies = await pipe.execute(raise_on_error=False)
    except RedisError as exc:
        raise LimitsUnavailable(f"limit counters unavailable: {exc}") from exc
    return parse_money_rows(svc, replies)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


async def decide(svc: Services, *, matched: MatchedRoute, txn: Transaction | None, session: Session,
                 device: Device, headers: dict[bytes, bytes], client_ip: str, now: float,
                 decision_id: str, user_rows: tuple[dict[bytes, bytes], bytes | None],
                 history: UserHistory, money_rows: MoneyRows | None) -> Decision:
    """Return the decision for a call that may go ahead, or raise the refusal.

    The caller read, in the request's first round trip: ``user_rows``, the user's account
    directory hash and enrolment time (:func:`queue_user_rows`); ``history``, the user's
    risk history; and for a money movement ``money_rows``, its limits, spend and tools
    (:func:`queue_money_rows`).
    """
    action = matched.route.action
    moves_money = txn is not None and action.moves_money
    user = session.user_id
    t0 = time.perf_counter()
    rec = svc.recognition
    await rec.check_pin(session, client_ip)
    raw_accounts, raw_created = user_rows
    accounts = AccountDirectory.parse(raw_accounts) if txn is not None else {}
    account_class = svc.accounts.class_of(accounts, txn.source) if txn is not None else None
    pending = device.status is DeviceStatus.PENDING
    facts = RequestFacts(
        user_id=user, action=action.value, moves_money=moves_money,
        amount_fen=txn.amount if txn is not None else 0, payee=txn.payee if txn is not None else "",
        device_id=device.device_id, device_status="new" if pending else device.status.value,
        device_created=device.created, device_signals=rec.risk_flags(device),
        ip=client_ip, geo=rec.geo(client_ip),
        account_created=float(raw_created) if raw_created else 0.0,
        account_class=account_class.value if account_class is not None else "I",
        sim_swap_window_hours=svc.config.device.sms_block_days * 24)
    features, risk = await svc.risk.assess(facts, now, history=history)
    d = Decision(decision_id, facts, dict(features), risk)
    d.latencies_ms["risk"] = _ms(t0)
    if risk.level is RiskLevel.BLOCK:
        finish(svc, d, Outcome.BLOCKED, now=now)
        raise Forbidden("risk_blocked", "this request was refused; contact the bank if it was yours",
                        extra={"decision_id": decision_id})
    if pending:
        # A device-change step-up first (401 with the binding challenge until approved).
        try:
            device = await complete_binding(svc, session=session, device=device, headers=headers,
                                            client_ip=client_ip, now=now)
        except InsufficientAuthentication:
            finish(svc, d, Outcome.STEP_UP, now=now)
            raise
        # That approval is spent; the request itself may need its own challenge.
        headers = {k: v for k, v in headers.items() if k != APPROVAL_HEADER}
    d.device = device
    device_since = rec.device_since(device)

    t1 = time.perf_counter()
    to_others = txn is not None and bool(txn.payee) and txn.payee not in accounts
    settings = spent = tool_counts = None
    if moves_money:
        # a device bound just now may change what the user holds: read afresh then
        fresh = money_rows is None or pending
        settings, spent, tool_counts = await money_rows(svc, user, now) if fresh else money_rows
    try:
        if moves_money:
            cap = svc.config.risk.high_risk_cap_fen
            if risk.level is RiskLevel.HIGH and txn.amount > cap:  # type: ignore[union-attr]
                # High risk: two tiers up *and* the limit capped, whatever the tools.
                raise Forbidden("limit_exceeded", "at this risk level the amount is capped", extra={
                    "window": "transaction", "cap": "risk_high", "limit": _cny(cap),
                    "remaining": _cny(cap), "allowed_by": None, "tools": []})
            check = required_tier(svc.limits, amount=txn.amount, spent=spent,  # type: ignore[union-attr,arg-type]
                                  account_class=account_class, now=now, settings=settings,  # type: ignore[arg-type]
                                  to_others=to_others, device_since=device_since,
                                  max_tier=Tier(reachable_tier(svc, tool_counts, device)))  # type: ignore[arg-type]
            d.base_tier = int(check.required_tier)
            if check.notice_required and headers.get(b"x-large-transfer-notice") != b"confirmed":
                # Asked before any step-up, so an approval is never spent on it.
                raise LargeTransferNoticeRequired(svc.limits.large_notice_daily)
        elif txn is not None:
            d.base_tier = svc.config.limits.add_payee_tier
        d.required = risk_tier(d.base_tier, risk.level)
        d.latencies_ms["limits"] = _ms(t1)
        if txn is None and d.required == 0:
            from gateway.stepup_gate import session_tier

            d.reached = session_tier(svc, session, device, now)
        else:
            d.reached = await require_tier(
                svc, session=session, device=device, txn=txn or Transaction(action=action.value),
                required=d.required, headers=headers, now=now,
                reason={"amount_tier": f"T{d.base_tier}", "risk_level": risk.level.value,
                        "rules": list(risk.rules_hit)}, decision_id=decision_id)
        if moves_money:
            idem = headers.get(b"idempotency-key", b"").decode("latin-1") or decision_id
            d.reservation = await svc.reservations.reserve(
                user, txn.amount, idempotency_key=f"{session.device_id}:{idem}",  # type: ignore[union-attr]
                tier=Tier(d.reached.tier), account_class=account_class, now=now,  # type: ignore[arg-type]
                settings=settings, to_others=to_others, device_since=device_since,  # type: ignore[arg-type]
                notice_confirmed=headers.get(b"x-large-transfer-notice", b"") == b"confirmed")
            d.limit_claim = {"tier_limit": _cny(d.reservation.tier_limit),
                             "remaining_today": _cny(d.reservation.remaining_today)}
    except InsufficientAuthentication:
        finish(svc, d, Outcome.STEP_UP, now=now)
        raise
    except LimitExceeded as exc:
        finish(svc, d, Outcome.LIMIT_EXCEEDED, now=now)
        raise Forbidden("limit_exceeded", str(exc), extra={
            "window": exc.window.value, "cap": exc.cap.value, "limit": _cny(exc.limit),
            "remaining": _cny(exc.remaining),
            "allowed_by": f"T{int(exc.allowed_by)}" if exc.allowed_by is not None else None,
            "tools": svc.tier_policy.combinations(int(exc.allowed_by))
            if exc.allowed_by is not None else [],
        }) from exc
    except LimitsError:
        finish(svc, d, Outcome.LIMIT_EXCEEDED, now=now)
        raise
    except Forbidden as exc:  # the high-risk cap, a device capped below the tier
        finish(svc, d, Outcome.LIMIT_EXCEEDED if exc.code == "limit_exceeded" else Outcome.BLOCKED,
               now=now)
        raise
    d.latencies_ms["decide"] = _ms(t0)
    return d


def finish(svc: Services, d: Decision, outcome: str, *, now: float, completed: bool = False,
           assertion: dict[str, object] | None = None, upstream: dict[str, object] | None = None) -> None:
    """Record the decision (with the assertion forwarded and the upstream's answer, when
    there was one) and update the user's history, after the response."""
    event = DecisionEvent.build(
        decision_id=d.decision_id, at=now, user_id=d.facts.user_id, action=d.facts.action,
        amount_fen=d.facts.amount_fen, moves_money=d.facts.moves_money,
        device_status=d.facts.device_status, features=d.features, assessment=d.risk,
        required_tier=d.required, base_tier=d.base_tier,
        session_tier=d.reached.tier if d.reached is not None else 0, outcome=outcome,
        latencies_ms=d.latencies_ms, tools=tuple(d.reached.tools) if d.reached is not None else (),
        assertion=assertion, upstream=upstream)

    svc.decision_writer.put(event)
    svc.metrics.observe_decision(
        outcome=outcome, tier=event.session_tier, level=d.risk.level.value, action=d.facts.action,
        score=d.risk.score, model_version=d.risk.model_version, latencies_ms=d.latencies_ms)
    # A challenged request comes back with its approval: count it once, then.
    if outcome == Outcome.STEP_UP or not _history_due(d.facts, now):
        return

    async def write_history() -> None:
        try:
            await svc.risk.after_decision(d.facts, decision_id=d.decision_id, now=now,
                                          completed=completed)
        except Exception:  # noqa: BLE001 - never fails the request it describes
            log.exception("recording history for decision %s failed", d.decision_id)

    task = asyncio.get_running_loop().create_task(write_history())
    svc.background.add(task)
    task.add_done_callback(svc.background.discard)


# Views only refresh "last seen here, on this device" (for IP change and impossible
# travel); one write per user, device and IP every VIEW_HISTORY_INTERVAL seconds
# per process is enough and keeps two Redis scripts off most reads.
VIEW_HISTORY_INTERVAL = 30.0
_view_history: OrderedDict[tuple[str, str, str], float] = OrderedDict()


def _history_due(facts: RequestFacts, now: float) -> bool:
    if facts.moves_money or not facts.action.startswith("view_"):
        return True
    key = (facts.user_id, facts.device_id, facts.ip)
    last = _view_history.get(key)
    if last is not None and now - last < VIEW_HISTORY_INTERVAL:
        return False
    _view_history[key] = now
    _view_history.move_to_end(key)
    while len(_view_history) > 50_000:
        _view_history.popitem(last=False)
    return True


def _cny(fen: int | None) -> str | None:
    return None if fen is None else format_amount(fen)

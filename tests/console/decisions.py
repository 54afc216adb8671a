"""Recorded decisions for console tests, made by the gateway's own risk engine."""

from __future__ import annotations

from risk_engine import DecisionEvent, RequestFacts, required_tier

NOW = 1_790_000_000.0
TAKEOVER_RULE = {"id": "dissimilar_device_money", "effect": "min_level", "level": "medium",
                 "expression": "moves_money && device_similarity < 0.5 && amount_cny >= 2000",
                 "description": "money from a device unlike the user's own"}


def facts(**kw) -> RequestFacts:
    base = dict(user_id="alice", action="transfer", moves_money=True, amount_fen=80_000,
                payee="p-known", device_id="alice.dev1", device_status="bound",
                device_created=NOW - 400 * 86400, ip="10.0.0.1", geo=(31.23, 121.47),
                account_created=NOW - 1000 * 86400, account_class="I")
    base.update(kw)
    return RequestFacts(**base)


async def decide(gw, f: RequestFacts, at: float, decision_id: str) -> DecisionEvent:
    """One decision through the gateway's risk engine, recorded on the decision stream."""
    engine = gw.services.risk
    features, a = await engine.assess(f, at)
    req = required_tier(f.action, f.amount_fen, a.level, f.device_status,
                        moves_money=f.moves_money, payee_new=bool(features["payee_new"]))
    outcome = "blocked" if req.refused else "step_up" if req.tier > 2 else "allowed"
    event = DecisionEvent.build(
        decision_id=decision_id, at=at, user_id=f.user_id, action=f.action,
        amount_fen=f.amount_fen, moves_money=f.moves_money, device_status=f.device_status,
        features=features, assessment=a, required_tier=req.tier, base_tier=req.base_tier,
        session_tier=2, outcome=outcome)
    await engine.record(event)
    await engine.after_decision(f, decision_id=decision_id, now=at, completed=True)
    return event


async def history(gw, start: float = NOW) -> None:
    """Ordinary transfers and three takeovers from unfamiliar devices the rules let through."""
    for i in range(6):
        await decide(gw, facts(user_id=f"u{i}"), start + i, f"ok{i}")
    for i in range(3):
        await decide(gw, facts(user_id=f"v{i}", amount_fen=400_000, device_similarity=0.2),
                     start + 50 + i, f"takeover{i}")

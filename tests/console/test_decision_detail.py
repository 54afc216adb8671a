"""Decision detail: the tools used, the assertion's claims, the upstream's answer and the
model's per-feature contributions, as recorded by the gateway and its model store."""

from __future__ import annotations

import html
import random

from gateway.console.analysts import Role
from risk_engine import DecisionEvent, ModelSnapshot, default_model, model_input
from tests.console.decisions import NOW, facts


def _trained() -> object:
    """A champion that learned large amounts from new payees are fraud."""
    rng = random.Random(3)
    model = default_model()
    for _ in range(1500):
        fraud = rng.random() < 0.1
        model.learn_one({"amount_cny": rng.gauss(40_000 if fraud else 800, 300),
                         "payee_new": 1.0 if fraud else float(rng.random() < 0.1)}, fraud)
    return model


async def _record(gw, decision_id: str, **kw) -> DecisionEvent:
    f = facts(user_id="u1", amount_fen=4_000_000)
    features, risk = await gw.services.risk.assess(f, NOW)
    event = DecisionEvent.build(
        decision_id=decision_id, at=NOW, user_id=f.user_id, action=f.action, amount_fen=f.amount_fen,
        moves_money=True, device_status="bound", features=features, assessment=risk,
        required_tier=3, base_tier=3, session_tier=3, outcome=kw.pop("outcome", "allowed"), **kw)
    await gw.services.risk.record(event)
    return event


async def test_detail_shows_tools_assertion_upstream_and_model_contributions(console):
    gw = console.gw
    claims = {"iss": "riskgate", "aud": "bank-core", "acr": "T3", "amr": ["pwd", "otp"],
              "txn": {"hash": "abc123", "amount": "40000.00", "payee": "p-known"}}
    await _record(gw, "fwd1", tools=("totp",), assertion=claims, upstream={"status": 201})
    await _record(gw, "late1", outcome="upstream_error", assertion=claims,
                  upstream={"error": "upstream_timeout"})
    await _record(gw, "stepped1", outcome="step_up")

    viewer = await console.analyst("vera", Role.VIEWER)
    page = html.unescape((await viewer.http.get("/console/decisions/fwd1")).text)
    assert "totp" in page and "answered HTTP 201" in page
    assert '"bank-core"' in page and '"hash": "abc123"' in page.replace('":"', '": "')
    late = html.unescape((await viewer.http.get("/console/decisions/late1")).text)
    assert "failed: upstream_timeout" in late
    stepped = html.unescape((await viewer.http.get("/console/decisions/stepped1")).text)
    assert "not forwarded" in stepped and "no assertion was signed" in stepped
    assert '<dd id="tools">none</dd>' in stepped


async def test_contributions_name_the_features_that_moved_the_score(console):
    from gateway.decision_detail import model_contributions

    gw = console.gw
    store = gw.services.risk.model_store
    snapshot = await store.publish(ModelSnapshot("champion", 0, _trained(), 1500, NOW))
    event = DecisionEvent(
        "c1", NOW, "u1", "transfer", 4_000_000, {"amount_cny": 40_000.0, "payee_new": True},
        0.9, "high", (), 4, 2, "step_up", model_version=snapshot.label, model_score=0.9)
    found = await model_contributions(store, event)
    assert found["model"] == snapshot.label
    top = found["contributions"][0]
    assert top["feature"] == "amount_cny" and top["log_odds"] > 0
    assert model_input(event.features)["payee_new"] == 1.0

    gone = await model_contributions(store, DecisionEvent(
        "c2", NOW, "u1", "transfer", 1, {}, 0.1, "low", (), 2, 2, "allowed",
        model_version="champion:v999"))
    assert gone == {"model": "champion:v999", "unavailable": "that model version is no longer stored"}
    none = await model_contributions(store, DecisionEvent(
        "c3", NOW, "u1", "transfer", 1, {}, 0.1, "low", (), 2, 2, "allowed"))
    assert none["unavailable"] == "no model took part in this decision"

    # the page shows them
    await gw.services.risk.record(event)
    viewer = await console.analyst("vera", Role.VIEWER)
    page = (await viewer.http.get("/console/decisions/c1")).text
    assert 'id="contributions"' in page and "amount_cny" in page and snapshot.label in page

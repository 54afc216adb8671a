"""The simulator: deterministic population and traffic, ground truth, and what each
attacker really holds (judged by the real tier policy of auth_tools)."""

from __future__ import annotations

import collections

import pytest

from auth_tools.tier_policy import TierPolicy
from mobile_client.simulator import FraudMix, Scenario, simulate

DAY = 86400.0
TIERS = TierPolicy.default()


@pytest.fixture(scope="module")
def sim():
    return simulate(11, customers=150, days=30, warmup_days=10, mix=FraudMix().scaled(0.2))


def _reach(a) -> int:
    tools = a.tools if a.device_status == "bound" else a.tools - {"bound_device"}
    return TIERS.satisfied_tier(tools)


def test_same_seed_same_traffic_other_seed_other_traffic(sim):
    again = simulate(11, customers=150, days=30, warmup_days=10, mix=FraudMix().scaled(0.2))
    assert again.attempts == sim.attempts and again.customers == sim.customers
    other = simulate(12, customers=150, days=30, warmup_days=10, mix=FraudMix().scaled(0.2))
    assert other.attempts != sim.attempts


def test_time_order_ids_and_every_scenario_labelled(sim):
    ats = [a.at for a in sim.attempts]
    assert ats == sorted(ats)
    assert len({a.attempt_id for a in sim.attempts}) == len(sim.attempts)
    seen = collections.Counter(a.scenario for a in sim.attempts)
    assert set(seen) == set(Scenario)
    assert all(a.fraud == (a.scenario is not Scenario.LEGIT) for a in sim.attempts)
    assert all(a.at >= sim.fraud_start for a in sim.attempts if a.fraud)
    fraud_share = sum(a.fraud for a in sim.attempts) / len(sim.attempts)
    assert 0.005 < fraud_share < 0.1  # rare, as fraud is


def test_legitimate_traffic_follows_habits(sim):
    customers = {c.user_id: c for c in sim.customers}
    legit = [a for a in sim.attempts if not a.fraud]
    known = sum(a.payee in {p.account for p in customers[a.user_id].payees} for a in legit)
    assert known / len(legit) > 0.6  # most money goes to people paid before
    in_hours = sum(int(((a.at + 8 * 3600) % DAY) // 3600) in customers[a.user_id].active_hours
                   for a in legit)
    assert in_hours / len(legit) > 0.9
    assert sum(a.device_status == "bound" for a in legit) / len(legit) > 0.98
    assert all(a.tools == customers[a.user_id].tools for a in legit)


def test_attackers_hold_only_what_their_scenario_gives(sim):
    customers = {c.user_id: c for c in sim.customers}
    by = collections.defaultdict(list)
    for a in sim.attempts:
        by[a.scenario].append(a)
    for a in by[Scenario.ATO_SIM_SWAP]:
        # the SIM gives SMS and SMS-armor codes; no phone, biometrics, token or keys
        assert a.tools == {"pwd", "sms", "sms_armor"} and a.device_status == "new"
        assert a.sim_changed_at is not None and a.sim_changed_at < a.at
        assert _reach(a) == 3 and a.amount_fen < 50_000 * 100
    for a in by[Scenario.CREDENTIAL_STUFFING]:
        assert a.tools == {"pwd"} and _reach(a) == 1 and a.device_status == "new"
    for a in by[Scenario.EMULATOR_FARM]:
        assert a.tools == {"pwd", "sms", "sms_armor"} and a.device_status == "new"
    assert sum("emulator" in a.device_signals for a in by[Scenario.EMULATOR_FARM]) > 0
    for a in by[Scenario.SOCIAL_ENGINEERING]:
        # the victim acts: own phone, every tool they hold; only a block stops it
        victim = customers[a.user_id]
        assert a.tools == victim.tools and a.device_id == victim.device_id
        assert a.device_status == "bound"
    for a in by[Scenario.MALWARE_PAYEE_SWAP]:
        assert "hardware_cert" not in a.tools and a.device_status == "bound"
        assert a.payee not in {p.account for p in customers[a.user_id].payees}
    for campaign in {a.campaign for a in by[Scenario.MULE_FAN_OUT]}:
        burst = [a for a in by[Scenario.MULE_FAN_OUT] if a.campaign == campaign]
        assert len(burst) >= 5 and len({a.payee for a in burst}) == len(burst)
        assert customers[burst[0].user_id].mule
        assert burst[-1].at - burst[0].at < 4 * 3600

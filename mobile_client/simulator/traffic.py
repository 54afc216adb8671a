"""Legitimate traffic from the population's habits, fraud campaigns mixed in, in time order."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from mobile_client.simulator import scenarios
from mobile_client.simulator.attempts import Scenario, TransferAttempt
from mobile_client.simulator.population import (
    CITIES,
    CNY,
    DAY,
    Customer,
    Payee,
    build_population,
)

__all__ = ["FraudMix", "Simulation", "legit_traffic", "simulate"]

HOUR = 3600.0
CLASS_DAILY_CAP_FEN = {"I": 2_000_000 * CNY, "II": 10_000 * CNY, "III": 2_000 * CNY}


@dataclass(frozen=True, slots=True)
class FraudMix:
    """Campaigns per scenario over the fraud period."""

    account_takeover: int = 40
    social_engineering: int = 40
    mule_fan_out: int = 12
    credential_stuffing: int = 8  # each hits 8-20 accounts
    emulator_farm: int = 6  # each drives 4-10 accounts
    malware_payee_swap: int = 40

    def scaled(self, factor: float) -> FraudMix:
        """The same mix for a population ``factor`` times the default 2,000 customers."""
        return FraudMix(*(max(round(getattr(self, f) * factor), 1) for f in self.__slots__))


@dataclass(frozen=True, slots=True)
class Simulation:
    customers: tuple[Customer, ...]
    attempts: tuple[TransferAttempt, ...]
    start: float
    fraud_start: float  # no fraud before this (the warm-up builds habits)
    end: float


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _local_midnight(t: float, utc_offset_hours: float = 8.0) -> float:
    shift = utc_offset_hours * HOUR
    return math.floor((t + shift) / DAY) * DAY - shift


def legit_traffic(c: Customer, seed: int, start: float, days: int) -> Iterator[TransferAttempt]:
    """One customer's own transfers, following their habits, with life's irregularities:
    new payees (now and then a large purchase), a new phone, travel, a new SIM card."""
    rng = random.Random(f"{seed}:legit:{c.user_id}")
    payees: list[Payee] = list(c.payees)
    device, device_created, device_new_until = c.device_id, c.device_created, 0.0
    sim_changed: float | None = None
    city, trip_until = c.home, 0.0
    ip = f"{city.ip_prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    cap = CLASS_DAILY_CAP_FEN[c.account_class]
    midnight = _local_midnight(start)
    n = 0
    for day in range(days):
        day0 = midnight + day * DAY
        if rng.random() < 0.002:  # a new phone: unknown device until it is bound
            device = f"{c.user_id}.d{day}"
            device_created = day0 + rng.uniform(6, 20) * HOUR
            device_new_until = device_created + rng.uniform(0.2, 2) * HOUR
        if rng.random() < 0.0008:  # lost or replaced SIM card
            sim_changed = day0 + rng.uniform(8, 20) * HOUR
        if day0 >= trip_until and rng.random() < 0.02:
            city = rng.choice(CITIES)
            trip_until = day0 + rng.randint(1, 5) * DAY
        elif day0 >= trip_until:
            city = c.home
        if rng.random() < 0.5:
            ip = f"{city.ip_prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        spent = 0
        times = sorted(
            day0 + (rng.choice(c.active_hours) if rng.random() < 0.95 else rng.randrange(24)) * HOUR
            + rng.uniform(0, HOUR)
            for _ in range(_poisson(rng, c.transfers_per_day)))
        for at in times:
            if device_created > at:
                continue  # the new phone is not set up yet
            r = rng.random()
            if r < 0.9:
                payee = rng.choices(payees, weights=[p.weight for p in payees])[0]
                account = payee.account
                amount = int(payee.typical_fen * math.exp(rng.gauss(0.0, 0.45)))
            else:
                account = "6228" + "".join(rng.choice("0123456789") for _ in range(12))
                if r < 0.985:
                    amount = int(c.salary_fen * math.exp(rng.gauss(math.log(0.05), 1.0)))
                else:  # a deposit, a car, a family emergency: large, to someone new
                    amount = int(c.salary_fen * rng.uniform(0.5, 5.0))
                    if rng.random() < 0.5:
                        amount = max(round(amount / (1_000 * CNY)), 1) * 1_000 * CNY
                payees.append(Payee(account, at, max(amount, 50 * CNY), 0.3))
            amount = max(min(amount, cap - spent, 1_000_000 * CNY), 10 * CNY)
            if spent + amount > cap:
                continue
            spent += amount
            status = "new" if at < device_new_until else "bound"
            signals = set()
            if c.rooted:
                signals.add("rooted")
            if c.emulator:
                signals.add("emulator")
            yield TransferAttempt(
                attempt_id=f"{c.user_id}-{n}", at=at, user_id=c.user_id, amount_fen=amount,
                payee=account, device_id=device, device_status=status,
                device_created=device_created,
                device_similarity=rng.uniform(0.3, 0.8) if status == "new" else 1.0,
                device_signals=frozenset(signals), ip=ip, geo=(city.lat, city.lon),
                account_created=c.account_created, account_class=c.account_class,
                sim_changed_at=sim_changed if sim_changed is not None and sim_changed <= at else None,
                scenario=Scenario.LEGIT, tools=c.tools)
            n += 1


def _fraud(seed: int, customers: tuple[Customer, ...], start: float, end: float,
           mix: FraudMix) -> list[TransferAttempt]:
    rng = random.Random(f"{seed}:fraud")
    ordinary = [c for c in customers if not c.mule]
    mules = [c for c in customers if c.mule]
    out: list[TransferAttempt] = []

    def when() -> float:
        return rng.uniform(start, end)

    def victim(min_savings_cny: float = 0.0) -> Customer:
        for _ in range(100):
            c = rng.choice(ordinary)
            if c.savings_fen >= min_savings_cny * CNY and c.account_class == "I":
                return c
        return rng.choice(ordinary)

    for i in range(mix.account_takeover):
        out += scenarios.account_takeover(rng, victim(5_000), when(), f"ato{i}")
    for i in range(mix.social_engineering):
        out += scenarios.social_engineering(rng, victim(10_000), when(), f"se{i}")
    for i in range(mix.mule_fan_out):
        if mules:
            out += scenarios.mule_fan_out(rng, mules[i % len(mules)], when(), f"mule{i}")
    for i in range(mix.credential_stuffing):
        out += scenarios.credential_stuffing(
            rng, [victim() for _ in range(rng.randint(8, 20))], when(), f"cs{i}")
    for i in range(mix.emulator_farm):
        out += scenarios.emulator_farm(
            rng, [victim() for _ in range(rng.randint(4, 10))], when(), f"emu{i}")
    for i in range(mix.malware_payee_swap):
        out += scenarios.malware_payee_swap(rng, victim(), when(), f"mal{i}")
    return out


def simulate(seed: int = 7, *, customers: int = 2_000, days: int = 60, warmup_days: int = 20,
             start: float = 1_790_000_000.0, mix: FraudMix = FraudMix()) -> Simulation:
    """The whole run: legitimate traffic for ``days`` and fraud campaigns after the first
    ``warmup_days``, ordered by time. Same arguments, same attempts."""
    mules = max(mix.mule_fan_out // 2, 1) if mix.mule_fan_out else 0
    population = build_population(seed, customers, start, mules=mules)
    attempts: list[TransferAttempt] = []
    for c in population:
        attempts.extend(legit_traffic(c, seed, start, days))
    fraud_start = start + warmup_days * DAY
    end = start + days * DAY
    attempts += [a for a in _fraud(seed, population, fraud_start, end - DAY, mix) if a.at < end]
    attempts.sort(key=lambda a: (a.at, a.attempt_id))
    return Simulation(population, tuple(attempts), start, fraud_start, end)

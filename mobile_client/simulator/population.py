"""A seeded, deterministic population of bank customers and their habits."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["CITIES", "City", "Customer", "Payee", "build_population"]

DAY = 86400.0
CNY = 100


@dataclass(frozen=True, slots=True)
class City:
    name: str
    lat: float
    lon: float
    ip_prefix: str


CITIES: tuple[City, ...] = (
    City("shanghai", 31.23, 121.47, "101.80"),
    City("beijing", 39.90, 116.40, "111.192"),
    City("shenzhen", 22.54, 114.06, "113.116"),
    City("guangzhou", 23.13, 113.26, "14.145"),
    City("chengdu", 30.57, 104.07, "118.112"),
    City("hangzhou", 30.27, 120.16, "115.192"),
    City("wuhan", 30.59, 114.31, "59.172"),
    City("xian", 34.34, 108.94, "113.200"),
    City("harbin", 45.80, 126.53, "1.58"),
    City("kunming", 25.04, 102.71, "116.52"),
)


@dataclass(frozen=True, slots=True)
class Payee:
    account: str
    first_used: float
    typical_fen: int  # the median amount the customer sends this payee
    weight: float  # relative frequency among the customer's payees


@dataclass(frozen=True, slots=True)
class Customer:
    """One customer's habits. ``tools`` are the tier-policy elements they hold."""

    user_id: str
    account_class: str
    account_created: float
    salary_fen: int  # monthly
    savings_fen: int
    payees: tuple[Payee, ...]
    active_hours: tuple[int, ...]  # local hours they usually transact in
    transfers_per_day: float
    device_id: str
    device_created: float
    home: City
    tools: frozenset[str]
    rooted: bool = False  # some real customers run rooted phones
    emulator: bool = False  # and a very few bank from an emulator on a PC
    mule: bool = False  # an account recruited as a money mule (see traffic.mule_fan_out)


def _account(rng: random.Random) -> str:
    return "6222" + "".join(rng.choice("0123456789") for _ in range(12))


def _tools(rng: random.Random, salary_fen: int) -> frozenset[str]:
    tools = {"pwd", "sms", "sms_armor", "bound_device"}
    if rng.random() < 0.8:
        tools.add("biometric")
    if rng.random() < 0.2:
        tools.add("totp")
    if rng.random() < 0.35:
        tools |= {"cloud_cert", "pin"}
    if rng.random() < 0.1:
        tools.add("fido_uv")
    if salary_fen >= 20_000 * CNY and rng.random() < 0.5:
        tools |= {"hardware_cert", "pin"}
    return frozenset(tools)


def _customer(seed: int, i: int, start: float, *, mule: bool = False) -> Customer:
    rng = random.Random(f"{seed}:customer:{i}")
    user_id = f"c{i:05d}" if not mule else f"m{i:05d}"
    if mule:
        klass = rng.choice(("I", "II"))
    else:
        klass = "I" if rng.random() < 0.8 else rng.choice(("II", "II", "III"))
    salary = int(math.exp(rng.gauss(math.log(9_000), 0.6)) * CNY)
    if klass == "III":
        salary = min(salary, 4_000 * CNY)
    created = start - (rng.uniform(5, 60) if mule else rng.uniform(60, 4000)) * DAY
    n_payees = rng.randint(1, 3) if mule else rng.randint(2, 9)
    payees = []
    for _ in range(n_payees):
        # most payments are a fraction of the salary; rent/family transfers are larger
        share = math.exp(rng.gauss(math.log(0.06), 1.0))
        payees.append(Payee(_account(rng), created + rng.uniform(0, max(start - created - DAY, DAY)),
                            max(int(salary * min(share, 1.5)), 50 * CNY), rng.paretovariate(1.2)))
    peak = rng.choice((8, 9, 10, 12, 13, 14, 17, 19, 20, 21, 22))
    spread = rng.choice((1, 2, 3))
    hours = tuple(sorted({(peak + d) % 24 for d in range(-spread, spread + 1)}))
    if rng.random() < 0.05:  # night owls / shift workers
        hours = tuple(sorted(set(hours) | {0, 1, 2, 23}))
    return Customer(
        user_id=user_id, account_class=klass, account_created=created, salary_fen=salary,
        savings_fen=int(salary * rng.uniform(0.5, 12)), payees=tuple(payees),
        active_hours=hours, transfers_per_day=rng.uniform(0.08, 0.6),
        device_id=f"{user_id}.d0", device_created=max(created, start - rng.uniform(20, 900) * DAY),
        home=CITIES[int(rng.paretovariate(0.9)) % len(CITIES)], tools=_tools(rng, salary),
        rooted=rng.random() < 0.02, emulator=rng.random() < 0.0005, mule=mule)


def build_population(seed: int, customers: int, start: float, *, mules: int = 0
                     ) -> tuple[Customer, ...]:
    """``customers`` ordinary customers (and ``mules`` recruited mule accounts), the same
    for the same arguments."""
    out = [_customer(seed, i, start) for i in range(customers)]
    out += [_customer(seed, customers + i, start, mule=True) for i in range(mules)]
    return tuple(out)

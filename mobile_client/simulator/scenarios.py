"""The six fraud scenarios. Each returns the attempts of one campaign; the actor
holds only what the scenario gives it."""

from __future__ import annotations

import math
import random

from mobile_client.simulator.attempts import Scenario, TransferAttempt
from mobile_client.simulator.population import CITIES, CNY, City, Customer

__all__ = [
    "account_takeover",
    "credential_stuffing",
    "emulator_farm",
    "malware_payee_swap",
    "mule_fan_out",
    "social_engineering",
]

HOUR = 3600.0
PHONE_TOOLS = frozenset({"pwd", "sms", "sms_armor", "totp", "biometric", "bound_device", "pin",
                         "cloud_cert", "fido_uv", "fido_uv_not_synced"})


def _ip(rng: random.Random, prefix: str) -> str:
    return f"{prefix}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _mule_account(rng: random.Random) -> str:
    return "6217" + "".join(rng.choice("0123456789") for _ in range(12))


def _amount(rng: random.Random, low_cny: float, high_cny: float, *, round_to: int = 0) -> int:
    cny = math.exp(rng.uniform(math.log(low_cny), math.log(high_cny)))
    if round_to:
        cny = max(round(cny / round_to) * round_to, round_to)
    return int(cny * CNY)


def _other_city(rng: random.Random, home: City) -> City:
    return rng.choice([c for c in CITIES if c is not home])


def _attempt(victim: Customer, scenario: Scenario, campaign: str, k: int, at: float, *,
             amount_fen: int, payee: str, device_id: str, device_status: str,
             device_created: float | None, similarity: float, signals: frozenset[str],
             ip: str, city: City, tools: frozenset[str], sim_changed_at: float | None = None
             ) -> TransferAttempt:
    return TransferAttempt(
        attempt_id=f"{campaign}-{k}", at=at, user_id=victim.user_id, amount_fen=amount_fen,
        payee=payee, device_id=device_id, device_status=device_status,
        device_created=device_created, device_similarity=similarity, device_signals=signals,
        ip=ip, geo=(city.lat, city.lon), account_created=victim.account_created,
        account_class=victim.account_class, sim_changed_at=sim_changed_at, scenario=scenario,
        tools=tools, campaign=campaign)


def _own_phone(victim: Customer) -> dict:
    signals = frozenset({"rooted"}) if victim.rooted else frozenset()
    return dict(device_id=victim.device_id, device_status="bound",
                device_created=victim.device_created, similarity=1.0, signals=signals)


def account_takeover(rng: random.Random, victim: Customer, at: float, campaign: str
                     ) -> list[TransferAttempt]:
    """SIM swapped, password phished: the thief gets SMS codes (and SMS armor codes) on
    its own phone, but has neither the victim's phone, biometrics, token nor keys. It
    keeps each transfer under the 50,000 CNY T4 threshold."""
    swapped = at - rng.uniform(0.3, 8) * HOUR
    city = _other_city(rng, victim.home) if rng.random() < 0.6 else victim.home
    device = f"ato.{campaign}"
    created = at - rng.uniform(60, 1800)
    signals = frozenset({"reinstalled"}) if rng.random() < 0.2 else frozenset()
    payees = [_mule_account(rng) for _ in range(rng.randint(1, 2))]
    budget = int(victim.savings_fen * rng.uniform(0.5, 0.95))
    out, t, k = [], at, 0
    while budget > 1_000 * CNY and k < 4:
        amount = min(budget, _amount(rng, 5_000, 49_000, round_to=100))
        out.append(_attempt(victim, Scenario.ATO_SIM_SWAP, campaign, k, t, amount_fen=amount,
                            payee=rng.choice(payees), device_id=device, device_status="new",
                            device_created=created, similarity=rng.uniform(0.05, 0.4),
                            signals=signals, ip=_ip(rng, city.ip_prefix), city=city,
                            tools=frozenset({"pwd", "sms", "sms_armor"}), sim_changed_at=swapped))
        budget -= amount
        t += rng.uniform(60, 900)
        k += 1
    return out


def social_engineering(rng: random.Random, victim: Customer, at: float, campaign: str
                       ) -> list[TransferAttempt]:
    """A caller posing as police or bank staff talks the victim into moving savings to a
    "safe account": the victim's own phone, home network and every tool they hold."""
    payees = [_mule_account(rng) for _ in range(rng.randint(1, 2))]
    total = int(victim.savings_fen * rng.uniform(0.3, 0.95))
    parts = rng.randint(1, 3)
    out, t = [], at
    for k in range(parts):
        amount = max(total // parts, 2_000 * CNY)
        amount = int(round(amount / (1_000 * CNY)) * 1_000 * CNY) if rng.random() < 0.6 else amount
        out.append(_attempt(victim, Scenario.SOCIAL_ENGINEERING, campaign, k, t,
                            amount_fen=max(amount, 1_000 * CNY), payee=payees[k % len(payees)],
                            ip=_ip(rng, victim.home.ip_prefix), city=victim.home,
                            tools=victim.tools, **_own_phone(victim)))
        t += rng.uniform(300, 3600)
    return out


def mule_fan_out(rng: random.Random, mule: Customer, at: float, campaign: str
                 ) -> list[TransferAttempt]:
    """A recruited mule account spreads money it just received over many new payees,
    each under 10,000 CNY, from the mule's own phone."""
    n = rng.randint(5, 14)
    out, t = [], at
    for k in range(n):
        out.append(_attempt(mule, Scenario.MULE_FAN_OUT, campaign, k, t,
                            amount_fen=_amount(rng, 1_500, 9_900, round_to=100 if rng.random() < 0.5 else 0),
                            payee=_mule_account(rng), ip=_ip(rng, mule.home.ip_prefix),
                            city=mule.home, tools=mule.tools, **_own_phone(mule)))
        t += rng.uniform(60, 900)
    return out


def credential_stuffing(rng: random.Random, victims: list[Customer], at: float, campaign: str
                        ) -> list[TransferAttempt]:
    """Leaked passwords replayed by scripts from rented servers; the login works for the
    victims below, nothing else does (no SIM, no phone, no token)."""
    city = rng.choice(CITIES)
    prefix = f"45.{rng.randint(32, 80)}"
    payees = [_mule_account(rng) for _ in range(3)]
    out, t = [], at
    for k, victim in enumerate(victims):
        hooked = rng.random() < 0.3
        out.append(_attempt(victim, Scenario.CREDENTIAL_STUFFING, campaign, k, t,
                            amount_fen=_amount(rng, 1_000, 30_000, round_to=100),
                            payee=rng.choice(payees), device_id=f"cs.{campaign}.{k}",
                            device_status="new", device_created=t - rng.uniform(5, 300),
                            similarity=rng.uniform(0.0, 0.2),
                            signals=frozenset({"hooked"}) if hooked else frozenset(),
                            ip=_ip(rng, prefix), city=city, tools=frozenset({"pwd"})))
        t += rng.uniform(5, 120)
    return out


def emulator_farm(rng: random.Random, victims: list[Customer], at: float, campaign: str
                  ) -> list[TransferAttempt]:
    """Phished accounts driven from a rack of emulators; SMS codes are relayed in real time
    by the phishing page (SMS armor too: the victim reads it out). Emulator detection
    catches most instances, not all."""
    city = rng.choice(CITIES)
    prefix = f"103.{rng.randint(100, 200)}"
    out, t, k = [], at, 0
    for j, victim in enumerate(victims):
        detected = rng.random() < 0.85
        signals = {"emulator"} if detected else set()
        if rng.random() < 0.5:
            signals.add("rooted")
        payee = _mule_account(rng)
        for _ in range(rng.randint(1, 3)):
            out.append(_attempt(victim, Scenario.EMULATOR_FARM, campaign, k, t,
                                amount_fen=_amount(rng, 3_000, 45_000, round_to=100),
                                payee=payee, device_id=f"emu.{campaign}.{j}", device_status="new",
                                device_created=t - rng.uniform(60, 3600),
                                similarity=rng.uniform(0.0, 0.3), signals=frozenset(signals),
                                ip=_ip(rng, prefix), city=city,
                                tools=frozenset({"pwd", "sms", "sms_armor"})))
            t += rng.uniform(30, 600)
            k += 1
    return out


def malware_payee_swap(rng: random.Random, victim: Customer, at: float, campaign: str
                       ) -> list[TransferAttempt]:
    """A banking trojan on the victim's phone rewrites the payee of the victim's own,
    habitual transfer. Everything that runs on the phone (password, SMS, biometric
    prompt, cloud certificate, platform passkey) approves what the malware shows; only a
    hardware key with its own display shows the real payee."""
    hooked = rng.random() < 0.5
    payee = victim.payees[int(rng.random() * len(victim.payees))]
    own = _own_phone(victim)
    own["signals"] = own["signals"] | ({"hooked"} if hooked else set())
    out, t = [], at
    for k in range(rng.randint(1, 2)):
        amount = int(payee.typical_fen * math.exp(rng.gauss(0.0, 0.4)))
        out.append(_attempt(victim, Scenario.MALWARE_PAYEE_SWAP, campaign, k, t,
                            amount_fen=max(amount, 100 * CNY), payee=_mule_account(rng),
                            ip=_ip(rng, victim.home.ip_prefix), city=victim.home,
                            tools=(victim.tools & PHONE_TOOLS), **own))
        t += rng.uniform(3600, 86400)
    return out

"""Feature extraction: a pure function from the request facts and the user's history."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from risk_engine.history import UserHistory

__all__ = ["RequestFacts", "extract_features", "local_hour"]

HOUR = 3600.0
DAY = 86400.0
NEVER = 1.0e6  # "hours since" for something that never happened (~114 years)
SIM_SWAP_RECENT_HOURS = 72.0
IMPOSSIBLE_SPEED_KMH = 900.0  # faster than an airliner
MIN_TRAVEL_KM = 100.0  # below this, geolocation noise rather than travel
HOUR_HABIT_MIN = 5.0  # decayed transactions before an hour can be called unusual
HOUR_UNUSUAL_SHARE = 0.05


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the gateway knows about one request, as plain values.

    ``device_status`` is one of bound / known / new / changed (the device
    step's verdict); ``device_signals`` are named booleans from the device
    context (rooted, emulator, hooked, reinstalled); ``geo`` is (lat, lon) from
    IP geolocation when the gateway has it.
    """

    user_id: str
    action: str
    moves_money: bool
    amount_fen: int = 0
    payee: str = ""
    device_id: str = ""
    device_status: str = "bound"
    device_created: float | None = None
    device_similarity: float = 1.0
    device_signals: Mapping[str, bool] = field(default_factory=dict)
    ip: str = ""
    geo: tuple[float, float] | None = None
    account_created: float = 0.0
    account_class: str = "I"
    utc_offset_hours: float = 8.0
    # How long after a reported SIM swap it counts as recent (the gateway passes
    # device.sms_block_days: the days SMS codes do not count either).
    sim_swap_window_hours: float = SIM_SWAP_RECENT_HOURS


def local_hour(now: float, utc_offset_hours: float) -> int:
    return int(((now + utc_offset_hours * HOUR) % DAY) // HOUR)


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def extract_features(facts: RequestFacts, history: UserHistory, now: float
                     ) -> dict[str, float | str | bool]:
    """The flat feature dict of FEATURE_SCHEMA for one request. Pure."""
    amount_cny = facts.amount_fen / 100.0

    st = history.amount
    age = now - history.amount_updated if history.amount_updated else 0.0
    weight = st.decayed_weight(age)
    if weight >= 1.0 and facts.amount_fen > 0:
        typical_cny = math.exp(st.mean) / 100.0
        sd = math.sqrt(max(st.variance, 0.0))
        z = (math.log(facts.amount_fen) - st.mean) / max(sd, 0.25)
        ratio = amount_cny / typical_cny if typical_cny > 0 else 0.0
    else:
        # no habit yet: compare with nothing rather than invent one
        typical_cny, z, ratio = 0.0, 0.0, 1.0 if facts.amount_fen else 0.0

    payee_known = facts.payee and history.payee_first_seen is not None
    payee_age_h = (now - history.payee_first_seen) / HOUR if payee_known else 0.0
    payee_new = bool(facts.payee) and not payee_known

    # a payee first paid in the last day is "added in 24h" even though it is known now
    payee_added_24h = payee_new or (payee_known and payee_age_h < 24.0) or (
        bool(facts.payee) and history.payee_new_24h)

    hour = local_hour(now, facts.utc_offset_hours)
    hours = history.hours
    total = sum(hours)
    window = hours[(hour - 1) % 24] + hours[hour] + hours[(hour + 1) % 24]
    share = window / total if total > 0 else 0.0

    dev_first = facts.device_created if facts.device_created is not None else history.device_first_seen
    device_age_days = max(now - dev_first, 0.0) / DAY if dev_first is not None else 0.0
    signals = facts.device_signals

    sim_hours = (now - history.sim_changed) / HOUR if history.sim_changed is not None else NEVER

    distance = speed = 0.0
    if facts.geo is not None and history.last_geo is not None and history.last_seen is not None:
        distance = _km(history.last_geo, facts.geo)
        elapsed_h = max(now - history.last_seen, 60.0) / HOUR
        speed = distance / elapsed_h

    return {
        "action": facts.action,
        "moves_money": facts.moves_money,
        "amount_cny": amount_cny,
        "amount_log10": math.log10(1.0 + amount_cny),
        "amount_history_n": weight,
        "amount_typical_cny": typical_cny,
        "amount_ratio_typical": ratio,
        "amount_zscore": z,
        "payee_new": payee_new,
        "payee_age_hours": payee_age_h,
        "payee_added_24h": bool(payee_added_24h),
        "txn_count_1h": float(history.txn_count_1h),
        "txn_count_24h": float(history.txn_count_24h),
        "amount_sum_24h_cny": history.amount_sum_24h_fen / 100.0,
        "new_payees_24h": float(history.new_payees_24h),
        "stepup_fail_1h": float(history.stepup_fail_1h),
        "stepup_fail_24h": float(history.stepup_fail_24h),
        "hour_of_day": float(hour),
        "night": hour < 6,
        "hour_share": share,
        "hour_unusual": total >= HOUR_HABIT_MIN and share < HOUR_UNUSUAL_SHARE,
        "device_status": facts.device_status,
        "device_new": facts.device_status in ("new", "changed"),
        "device_age_days": device_age_days,
        "device_similarity": float(facts.device_similarity),
        "device_rooted": bool(signals.get("rooted", False)),
        "device_emulator": bool(signals.get("emulator", False)),
        "device_hooked": bool(signals.get("hooked", False)),
        "device_reinstalled": bool(signals.get("reinstalled", False)),
        "sim_swap_hours": sim_hours,
        "sim_swap_recent": sim_hours < facts.sim_swap_window_hours,
        "ip_changed": bool(history.last_ip) and bool(facts.ip) and facts.ip != history.last_ip,
        "geo_distance_km": distance,
        "travel_speed_kmh": speed,
        "impossible_travel": distance >= MIN_TRAVEL_KM and speed > IMPOSSIBLE_SPEED_KMH,
        "account_age_days": max(now - facts.account_created, 0.0) / DAY if facts.account_created else 0.0,
        "account_class": facts.account_class,
    }

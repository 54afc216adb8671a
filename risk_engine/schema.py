"""The feature schema: every feature name the engine produces, with its CEL type.

Numbers are always doubles (CEL does not mix int and double in arithmetic, so
one numeric type keeps rules simple: write ``amount_cny > 5000.0 * 2.0`` or
compare with integer literals, which CEL allows).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from risk_engine.errors import FeatureSchemaViolation

__all__ = ["FEATURE_SCHEMA", "FeatureType", "check_features", "probe_values"]


class FeatureType(StrEnum):
    NUMBER = "double"
    BOOL = "bool"
    STRING = "string"

    def accepts(self, value: object) -> bool:
        if self is FeatureType.BOOL:
            return isinstance(value, bool)
        if self is FeatureType.NUMBER:
            return isinstance(value, float)
        return isinstance(value, str)


N, B, S = FeatureType.NUMBER, FeatureType.BOOL, FeatureType.STRING

FEATURE_SCHEMA: Mapping[str, FeatureType] = MappingProxyType({
    # the request
    "action": S,
    "moves_money": B,
    "amount_cny": N,
    "amount_log10": N,
    # the user's amount habit (time-decayed log-amount mean/deviation, ~90 days)
    "amount_history_n": N,
    "amount_typical_cny": N,
    "amount_ratio_typical": N,
    "amount_zscore": N,
    # payee
    "payee_new": B,
    "payee_age_hours": N,
    "payee_added_24h": B,
    # velocity
    "txn_count_1h": N,
    "txn_count_24h": N,
    "amount_sum_24h_cny": N,
    "new_payees_24h": N,
    "stepup_fail_1h": N,
    "stepup_fail_24h": N,
    # time of day against the user's habit
    "hour_of_day": N,
    "night": B,
    "hour_share": N,
    "hour_unusual": B,
    # device
    "device_status": S,
    "device_new": B,
    "device_age_days": N,
    "device_similarity": N,
    "device_rooted": B,
    "device_emulator": B,
    "device_hooked": B,
    "device_reinstalled": B,
    # SIM and network
    "sim_swap_hours": N,
    "sim_swap_recent": B,
    "ip_changed": B,
    "geo_distance_km": N,
    "travel_speed_kmh": N,
    "impossible_travel": B,
    # account
    "account_age_days": N,
    "account_class": S,
})


def check_features(features: Mapping[str, object],
                   schema: Mapping[str, FeatureType] = FEATURE_SCHEMA) -> None:
    """Raise FeatureSchemaViolation unless ``features`` has exactly the schema's names and types."""
    missing = sorted(set(schema) - set(features))
    extra = sorted(set(features) - set(schema))
    wrong = sorted(k for k, t in schema.items() if k in features and not t.accepts(features[k]))
    if missing or extra or wrong:
        raise FeatureSchemaViolation(
            f"missing={missing} unexpected={extra} wrong_type={wrong}")


def probe_values(kind: FeatureType) -> tuple[object, ...]:
    """Values of each type used to exercise a rule's branches during validation."""
    if kind is FeatureType.BOOL:
        return (False, True)
    if kind is FeatureType.NUMBER:
        return (0.0, 1.0e9)
    return ("", "new")

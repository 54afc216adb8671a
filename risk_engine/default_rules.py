"""The default rule pack.

Covers the PSD2 RTS Art. 2 (fraud monitoring: abnormal amounts, known fraud
scenarios, malware signs, abnormal location) and Art. 18 (transaction risk
analysis: spending habits, payee history, device and location) factors, and
the practice of the seed banks (new device => extra authentication, SIM swap
checks, night-time limits, velocity).
"""

from __future__ import annotations

from risk_engine.levels import RiskLevel
from risk_engine.rules import Rule, RuleEffect, RuleMode, RuleSet

__all__ = ["DEFAULT_RULES", "default_rule_set"]

_M, _H = RiskLevel.MEDIUM, RiskLevel.HIGH

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("new_payee_large", "moves_money && payee_new && amount_cny >= 5000",
         RuleEffect.MIN_LEVEL, "new payee with a large amount", level=_M),
    Rule("new_payee_very_large", "moves_money && payee_new && amount_cny >= 50000",
         RuleEffect.MIN_LEVEL, "new payee with a very large amount", level=_H),
    Rule("night_large", "moves_money && night && amount_cny >= 5000",
         RuleEffect.ADD_SCORE, "night-time (00:00-06:00 local) large transfer", score=0.25),
    Rule("new_device_large", "moves_money && (device_new || device_reinstalled) && amount_cny >= 1000",
         RuleEffect.MIN_LEVEL, "new, changed or re-installed device with a large amount", level=_M),
    Rule("sim_swap_money", "moves_money && sim_swap_recent",
         RuleEffect.MIN_LEVEL, "money movement while a reported SIM swap is recent (device.sms_block_days)", level=_H),
    Rule("sim_swap_new_device", "sim_swap_recent && device_new && moves_money && amount_cny >= 1000",
         RuleEffect.BLOCK, "SIM swap followed by a new device moving money: account takeover pattern"),
    Rule("hooked_money", "device_hooked && moves_money",
         RuleEffect.BLOCK, "code-injection framework in the app while moving money: the "
         "banking-trojan pattern (malware approves whatever it shows the user)"),
    Rule("rooted_large", "device_rooted && moves_money && amount_cny >= 5000",
         RuleEffect.ADD_SCORE, "large transfer from a rooted device (some customers root "
         "their phones, so this only adds to the score)", score=0.15),
    Rule("emulator", "device_emulator && moves_money",
         RuleEffect.BLOCK, "money movement from an emulator"),
    Rule("velocity_burst", "moves_money && (txn_count_1h >= 5 || new_payees_24h >= 3)",
         RuleEffect.MIN_LEVEL, "burst of transfers or fan-out to new payees", level=_M),
    Rule("velocity_extreme", "moves_money && (txn_count_1h >= 10 || new_payees_24h >= 6)",
         RuleEffect.MIN_LEVEL, "extreme transfer velocity (mule fan-out)", level=_H),
    Rule("amount_far_above_habit",
         "moves_money && amount_history_n >= 3 && amount_ratio_typical >= 10 && amount_cny >= 2000",
         RuleEffect.ADD_SCORE, "amount at least 10x the user's typical amount", score=0.3),
    Rule("fresh_payee", "moves_money && payee_added_24h && !payee_new && amount_cny >= 5000",
         RuleEffect.ADD_SCORE, "transfer to a payee first used in the last 24 h", score=0.2),
    Rule("stepup_failures", "stepup_fail_1h >= 3 || stepup_fail_24h >= 5",
         RuleEffect.MIN_LEVEL, "repeated step-up failures", level=_H),
    Rule("impossible_travel", "impossible_travel",
         RuleEffect.MIN_LEVEL, "location moved faster than an airliner since the last request",
         level=_H),
    Rule("unusual_hour_large", "moves_money && hour_unusual && amount_cny >= 5000",
         RuleEffect.ADD_SCORE, "large transfer at an hour the user never transacts", score=0.15),
    Rule("young_account_large", "moves_money && account_age_days < 30 && amount_cny >= 20000",
         RuleEffect.ADD_SCORE, "large transfer from an account opened less than 30 days ago",
         score=0.2),
    Rule("low_device_similarity", "device_similarity < 0.5 && moves_money",
         RuleEffect.TAG, "device looks little like the user's known devices",
         mode=RuleMode.SHADOW, tag="device_dissimilar"),
)


def default_rule_set() -> RuleSet:
    return RuleSet(DEFAULT_RULES, author="riskgate", reason="default rule pack")

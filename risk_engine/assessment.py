"""From features to a RiskAssessment: rules + model score -> score, level, reasons. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from risk_engine.levels import RiskLevel
from risk_engine.model import model_input, score_and_explain
from risk_engine.rules import CompiledRuleSet, RuleOutcome
from risk_engine.snapshots import ModelSnapshot

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Reason",
    "RiskAssessment",
    "RiskThresholds",
    "assess",
    "combine",
    "model_probability",
]


@dataclass(frozen=True, slots=True)
class RiskThresholds:
    """Score thresholds (configuration) and the model's warm-up gate."""

    # tuned with bench/risk_quality.py: the fraud class is up-weighted in training, so
    # probabilities run high (~1% of legitimate transfers score above 0.4, ~0.1% above 0.8)
    medium: float = 0.5
    high: float = 0.7
    block: float = 0.9
    min_labels: int = 500  # the model contributes nothing until it has learned this many
    explain_top: int = 3

    def level(self, score: float) -> RiskLevel:
        if score >= self.block:
            return RiskLevel.BLOCK
        if score >= self.high:
            return RiskLevel.HIGH
        if score >= self.medium:
            return RiskLevel.MEDIUM
        return RiskLevel.LOW


DEFAULT_THRESHOLDS = RiskThresholds()


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason: a rule hit (``kind="rule"``), a feature that moved the model score
    (``kind="feature"``, ``weight`` = its contribution to the log-odds) or a note."""

    kind: str
    name: str
    weight: float = 0.0


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    score: float
    level: RiskLevel
    reasons: tuple[Reason, ...]
    rules_hit: tuple[str, ...]
    shadow_rules_hit: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    rule_set_version: int = 0
    model_version: str | None = None  # "champion:v12" when the model took part
    model_score: float | None = None
    challenger_version: str | None = None
    challenger_score: float | None = None  # recorded only, never changes the outcome

    def claims(self) -> dict[str, object]:
        """The ``risk`` claim of the upstream assertion."""
        return {"score": round(self.score, 4), "level": self.level.value,
                "model": self.model_version, "rules": list(self.rules_hit)}


def model_probability(snapshot: ModelSnapshot, x: Mapping[str, float | str]) -> float:
    proba = snapshot.model.predict_proba_one(dict(x))  # type: ignore[attr-defined]
    return float(proba.get(True, 0.0))


def combine(outcome: RuleOutcome, model_score: float | None,
            thresholds: RiskThresholds) -> tuple[float, RiskLevel]:
    """Score and level from the rules' outcome and the model's probability (None = no model)."""
    score = min(max((model_score or 0.0) + outcome.score_delta, 0.0), 1.0)
    level = thresholds.level(score)
    if level is RiskLevel.BLOCK and (model_score or 0.0) < thresholds.block:
        # additive rule scores raise the level up to high; refusing a customer takes a
        # block rule or the model's own confidence (bench/risk_quality.py: the large,
        # legitimate first payments to new payees were the blocks this removed)
        level = RiskLevel.HIGH
    level = level.at_least(outcome.min_level)
    if outcome.blocked:
        level = RiskLevel.BLOCK
    elif outcome.allowed:
        level = RiskLevel.LOW
    return score, level


def assess(features: Mapping[str, object], rules: CompiledRuleSet,
           champion: ModelSnapshot | None, *, challenger: ModelSnapshot | None = None,
           thresholds: RiskThresholds = DEFAULT_THRESHOLDS) -> RiskAssessment:
    """Score one request.

    score = model probability (once warmed up, else 0) + the rules' score
    deltas, clipped to 0..1; level = the score's threshold level (block only
    when the model probability alone reaches it, else at most high), raised by
    min_level rules; a block rule blocks; an allow rule (absent a block) makes
    it low. Shadow rules and the challenger are recorded only.
    """
    outcome = rules.evaluate(features)
    reasons = [Reason("rule", rid) for rid in outcome.hits]
    for rid in outcome.errors:
        reasons.append(Reason("note", f"rule_error:{rid}"))

    x = None
    model_score = None
    model_version = None
    if champion is not None and champion.labels_learned >= thresholds.min_labels:
        x = model_input(features)
        model_score, top = score_and_explain(champion.model, x, thresholds.explain_top)
        model_version = champion.label
        reasons.extend(Reason("feature", name, weight) for name, weight in top)
    else:
        reasons.append(Reason("note", "model_warming_up" if champion else "model_absent"))

    challenger_score = None
    if challenger is not None:
        x = x if x is not None else model_input(features)
        challenger_score = model_probability(challenger, x)

    score, level = combine(outcome, model_score, thresholds)
    return RiskAssessment(
        score=score, level=level, reasons=tuple(reasons), rules_hit=outcome.hits,
        shadow_rules_hit=outcome.shadow_hits, tags=outcome.tags,
        rule_set_version=rules.version, model_version=model_version, model_score=model_score,
        challenger_version=challenger.label if challenger is not None else None,
        challenger_score=challenger_score)

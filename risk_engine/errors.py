"""Failures of the risk engine, one class per failure.

RiskEngineError
 +-- RuleSetInvalid         a rule set failed validation (carries every problem found)
 +-- RuleSetNotFound        no rule set published yet, or an unknown version
 +-- RuleEvaluationFailed   a published rule raised at evaluation time
 +-- FeatureSchemaViolation features that do not match the declared schema
 +-- SnapshotNotFound       no model snapshot under that name / version
 +-- SnapshotSignatureInvalid  unsigned, tampered or wrongly keyed model snapshot
 +-- SnapshotCorrupt        signed, but the payload does not load as a model
 +-- ModelUnsupported       an operation the configured model cannot do
 +-- DecisionNotFound       a label for a decision the stream no longer holds
 +-- LabelInvalid           a label with an unknown value, source or weight
 +-- RiskStateUnavailable   Redis failed while reading or writing risk state
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DecisionNotFound",
    "FeatureSchemaViolation",
    "LabelInvalid",
    "ModelUnsupported",
    "RiskEngineError",
    "RiskStateUnavailable",
    "RuleEvaluationFailed",
    "RuleProblem",
    "RuleSetInvalid",
    "RuleSetNotFound",
    "SnapshotCorrupt",
    "SnapshotNotFound",
    "SnapshotSignatureInvalid",
]


class RiskEngineError(Exception):
    code = "risk_engine_error"
    message = "the risk engine failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One validation problem: which rule, what kind, where (1-based line/column; 0 = unknown)."""

    rule_id: str
    kind: str  # syntax | unknown_name | unknown_function | type | result_type | definition
    message: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = f" at {self.line}:{self.column}" if self.line else ""
        return f"rule {self.rule_id!r}{where}: {self.kind}: {self.message}"


class RuleSetInvalid(RiskEngineError):
    code = "rule_set_invalid"
    message = "the rule set is invalid"

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems) or self.message)


class RuleSetNotFound(RiskEngineError):
    code = "rule_set_not_found"
    message = "no such rule set version"


class RuleEvaluationFailed(RiskEngineError):
    code = "rule_evaluation_failed"
    message = "a rule failed to evaluate"


class FeatureSchemaViolation(RiskEngineError):
    code = "feature_schema_violation"
    message = "features do not match the schema"


class SnapshotNotFound(RiskEngineError):
    code = "model_snapshot_not_found"
    message = "no such model snapshot"


class SnapshotSignatureInvalid(RiskEngineError):
    code = "model_snapshot_signature_invalid"
    message = "model snapshot signature is missing or invalid; refusing to load it"


class SnapshotCorrupt(RiskEngineError):
    code = "model_snapshot_corrupt"
    message = "model snapshot does not load"


class ModelUnsupported(RiskEngineError):
    code = "model_unsupported"
    message = "the model does not support this operation"


class DecisionNotFound(RiskEngineError):
    code = "decision_not_found"
    message = "no recorded decision with that id"


class LabelInvalid(RiskEngineError):
    code = "label_invalid"
    message = "invalid label"


class RiskStateUnavailable(RiskEngineError):
    code = "risk_state_unavailable"
    message = "risk state store is unavailable"

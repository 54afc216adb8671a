"""riskgate risk engine: features, analyst rules (CEL), the River model, risk levels,
the tier decision, the decision stream, labels, the learner and backtests."""

from risk_engine.assessment import Reason, RiskAssessment, RiskThresholds, assess, combine
from risk_engine.backtest import (
    BacktestReport,
    ChangedOutcome,
    OutcomeStats,
    backtest,
    backtest_events,
)
from risk_engine.decision_chain import DecisionChainVerification
from risk_engine.decisions import (
    DECISION_STREAM,
    RECORDING_SLACK,
    DecisionEvent,
    Outcome,
    get_decision,
    iter_decisions,
    read_decisions,
    record_decision,
    record_decisions,
    verify_decisions,
)
from risk_engine.default_rules import DEFAULT_RULES, default_rule_set
from risk_engine.engine import RiskEngine
from risk_engine.errors import (
    DecisionNotFound,
    FeatureSchemaViolation,
    LabelInvalid,
    ModelUnsupported,
    RiskEngineError,
    RiskStateUnavailable,
    RuleEvaluationFailed,
    RuleProblem,
    RuleSetInvalid,
    RuleSetNotFound,
    SnapshotCorrupt,
    SnapshotNotFound,
    SnapshotSignatureInvalid,
)
from risk_engine.features import RequestFacts, extract_features, local_hour
from risk_engine.history import HistoryStore, UserHistory
from risk_engine.labels import LABEL_STREAM, Label, LabelSource, read_labels, submit_label
from risk_engine.learner import BATCH_LEARNING_RATE, CHALLENGER, CHAMPION, Learner, batch_model
from risk_engine.levels import RiskLevel
from risk_engine.model import WeightedLogisticRegression, default_model, explain, model_input
from risk_engine.progressive import ProgressiveMetrics
from risk_engine.rule_store import RuleAuditEntry, RuleSource, RuleStore
from risk_engine.rules import (
    CompiledRuleSet,
    Rule,
    RuleEffect,
    RuleMode,
    RuleOutcome,
    RuleSet,
    load_rule_file,
)
from risk_engine.schema import FEATURE_SCHEMA, FeatureType, check_features
from risk_engine.snapshots import (
    ModelSnapshot,
    ModelSource,
    ModelStore,
    sign_snapshot,
    verify_snapshot,
)
from risk_engine.tiers import MAX_TIER, TierPolicy, TierRequirement, required_tier, risk_tier
from risk_engine.validation import compile_rule_set, validate_rule_set

__all__ = [
    "RECORDING_SLACK",
    "BATCH_LEARNING_RATE", "BacktestReport", "CHALLENGER", "CHAMPION", "ChangedOutcome", "CompiledRuleSet",
    "DECISION_STREAM", "DEFAULT_RULES", "DecisionEvent", "DecisionNotFound", "FEATURE_SCHEMA",
    "FeatureSchemaViolation", "FeatureType", "HistoryStore", "LABEL_STREAM", "Label",
    "LabelInvalid", "LabelSource", "Learner", "MAX_TIER", "ModelSnapshot", "ModelSource",
    "ModelStore", "ModelUnsupported", "Outcome", "OutcomeStats", "ProgressiveMetrics", "Reason", "RequestFacts",
    "RiskAssessment", "RiskEngine", "RiskEngineError", "RiskLevel", "RiskStateUnavailable",
    "RiskThresholds", "Rule", "RuleAuditEntry", "RuleEffect", "RuleEvaluationFailed", "RuleMode",
    "RuleOutcome", "RuleProblem", "RuleSet", "RuleSetInvalid", "RuleSetNotFound", "RuleSource",
    "RuleStore", "SnapshotCorrupt", "SnapshotNotFound", "SnapshotSignatureInvalid", "TierPolicy",
    "TierRequirement", "UserHistory", "WeightedLogisticRegression", "assess", "backtest",
    "backtest_events", "batch_model", "check_features", "combine", "compile_rule_set", "default_model",
    "default_rule_set", "explain", "extract_features", "get_decision", "iter_decisions",
    "load_rule_file", "local_hour", "model_input", "read_decisions", "read_labels",
    "record_decision", "record_decisions", "verify_decisions", "DecisionChainVerification", "required_tier", "risk_tier", "sign_snapshot", "submit_label",
    "validate_rule_set", "verify_snapshot",
]

"""Backtest: replay recorded decisions with a candidate rule set and/or model.

Features are the ones stored with each decision (never recomputed). The
amount/action/payee part of the tier is the recorded ``base_tier``; the
candidate's risk level moves it as in production. Nothing is written.

"Flagged" means risk acted on the decision (level medium or above: stepped up
beyond what the amount required, or blocked); precision and recall are of
flagged against fraud labels, over labelled decisions only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from risk_engine.assessment import DEFAULT_THRESHOLDS, RiskThresholds, combine, model_probability
from risk_engine.decisions import DecisionEvent, Outcome, iter_decisions
from risk_engine.labels import Label, read_labels
from risk_engine.levels import RiskLevel
from risk_engine.model import model_input
from risk_engine.rules import CompiledRuleSet, RuleSet
from risk_engine.snapshots import ModelSnapshot
from risk_engine.tiers import risk_tier
from risk_engine.validation import compile_rule_set

__all__ = ["BacktestReport", "ChangedOutcome", "OutcomeStats", "backtest", "backtest_events"]


@dataclass(frozen=True, slots=True)
class ChangedOutcome:
    decision_id: str
    before: str
    after: str
    level_before: str
    level_after: str
    fraud: bool | None  # the label, None when unlabelled


@dataclass(frozen=True, slots=True)
class OutcomeStats:
    decisions: int
    step_up_rate: float
    block_rate: float
    flagged_rate: float
    labelled: int
    precision: float | None
    recall: float | None
    fraud_amount_fen: int
    fraud_amount_caught_fen: int


@dataclass(frozen=True, slots=True)
class BacktestReport:
    recorded: OutcomeStats
    candidate: OutcomeStats
    changed: tuple[ChangedOutcome, ...]
    rule_set_version: int
    model_version: str | None


def _outcome(level: RiskLevel, tier: int, session_tier: int) -> str:
    if level is RiskLevel.BLOCK:
        return Outcome.BLOCKED
    return Outcome.STEP_UP if tier > session_tier else Outcome.ALLOWED


def _stats(rows: list[tuple[DecisionEvent, RiskLevel, str]],
           labels: Mapping[str, Label]) -> OutcomeStats:
    n = len(rows)
    step = sum(1 for _e, _l, o in rows if o == Outcome.STEP_UP)
    block = sum(1 for _e, _l, o in rows if o == Outcome.BLOCKED)
    flagged = [lv is not RiskLevel.LOW for _e, lv, _o in rows]
    tp = fp = fn = 0
    fraud_amt = caught_amt = 0
    labelled = 0
    for (e, _lv, _o), flag in zip(rows, flagged, strict=True):
        label = labels.get(e.decision_id)
        if label is None:
            continue
        labelled += 1
        if label.fraud:
            fraud_amt += e.amount_fen
            if flag:
                tp += 1
                caught_amt += e.amount_fen
            else:
                fn += 1
        elif flag:
            fp += 1
    return OutcomeStats(
        decisions=n, step_up_rate=step / n if n else 0.0, block_rate=block / n if n else 0.0,
        flagged_rate=sum(flagged) / n if n else 0.0, labelled=labelled,
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        fraud_amount_fen=fraud_amt, fraud_amount_caught_fen=caught_amt)


def backtest_events(events: Iterable[DecisionEvent], labels: Mapping[str, Label],
                    candidate: CompiledRuleSet, *, model: ModelSnapshot | None = None,
                    thresholds: RiskThresholds = DEFAULT_THRESHOLDS) -> BacktestReport:
    """Pure core: replay ``events`` with ``candidate`` rules (and ``model`` if given,
    else each decision's recorded model score)."""
    before: list[tuple[DecisionEvent, RiskLevel, str]] = []
    after: list[tuple[DecisionEvent, RiskLevel, str]] = []
    changed = []
    for e in events:
        old_level = RiskLevel(e.level)
        old = _outcome(old_level, e.required_tier, e.session_tier)
        outcome = candidate.evaluate(e.features, shadow=False)
        if model is not None:
            score = (model_probability(model, model_input(e.features))
                     if model.labels_learned >= thresholds.min_labels else None)
        else:
            score = e.model_score
        _s, level = combine(outcome, score, thresholds)
        new = _outcome(level, risk_tier(e.base_tier, level), e.session_tier)
        before.append((e, old_level, old))
        after.append((e, level, new))
        if new != old or level is not old_level:
            label = labels.get(e.decision_id)
            changed.append(ChangedOutcome(e.decision_id, old, new, old_level.value, level.value,
                                          label.fraud if label else None))
    return BacktestReport(_stats(before, labels), _stats(after, labels), tuple(changed),
                          candidate.version, model.label if model is not None else None)


async def backtest(redis: Redis, candidate: RuleSet | CompiledRuleSet, *,
                   model: ModelSnapshot | None = None,
                   thresholds: RiskThresholds = DEFAULT_THRESHOLDS,
                   start: str = "-", end: str = "+", money_only: bool = True) -> BacktestReport:
    """Replay the stored decisions between two stream ids. Reads only.

    Raises RuleSetInvalid if the candidate does not validate.
    """
    compiled = candidate if isinstance(candidate, CompiledRuleSet) else compile_rule_set(candidate)
    events = [e async for _id, e in iter_decisions(redis, start=start, end=end)
              if e.moves_money or not money_only]
    labels: dict[str, Label] = {}
    for i in range(0, len(events), 1000):
        labels.update(await read_labels(redis, (e.decision_id for e in events[i:i + 1000])))
    return backtest_events(events, labels, compiled, model=model, thresholds=thresholds)

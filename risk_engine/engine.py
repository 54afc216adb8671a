"""RiskEngine: the per-process facade the gateway holds (pipeline steps 5 and 10)."""

from __future__ import annotations

from redis.asyncio import Redis

from risk_engine.assessment import DEFAULT_THRESHOLDS, RiskAssessment, RiskThresholds, assess
from risk_engine.decisions import DecisionEvent, record_decision
from risk_engine.default_rules import default_rule_set
from risk_engine.features import RequestFacts, extract_features, local_hour
from risk_engine.history import HistoryStore, UserHistory
from risk_engine.learner import CHALLENGER, CHAMPION
from risk_engine.rule_store import RuleSource, RuleStore
from risk_engine.rules import RuleSet
from risk_engine.snapshots import ModelSource, ModelStore

__all__ = ["RiskEngine"]

_DEFAULT = object()


class RiskEngine:
    """Features from Redis-held history, the active rules and the current models.

    Until a rule set is published, ``fallback_rules`` (the default pack unless
    given None) is evaluated. Rule and model versions are re-checked at most
    every ``rule_refresh`` / ``model_refresh`` seconds (one GET each).
    """

    def __init__(self, redis: Redis, *, model_key: bytes,
                 thresholds: RiskThresholds = DEFAULT_THRESHOLDS,
                 fallback_rules: RuleSet | None | object = _DEFAULT,
                 rule_refresh: float = 0.5, model_refresh: float = 1.0,
                 score_challenger: bool = True, decision_maxlen: int = 1_000_000) -> None:
        self.redis = redis
        self.thresholds = thresholds
        self.history = HistoryStore(redis)
        self.rule_store = RuleStore(redis)
        self.model_store = ModelStore(redis, model_key)
        fallback = default_rule_set() if fallback_rules is _DEFAULT else fallback_rules
        self.rules = RuleSource(self.rule_store, refresh_interval=rule_refresh,
                                fallback=fallback)  # type: ignore[arg-type]
        self.champion = ModelSource(self.model_store, CHAMPION, refresh_interval=model_refresh)
        self.challenger = (ModelSource(self.model_store, CHALLENGER, refresh_interval=model_refresh)
                           if score_challenger else None)
        self._maxlen = decision_maxlen

    async def assess(self, facts: RequestFacts, now: float, *, history: UserHistory | None = None
                     ) -> tuple[dict[str, float | str | bool], RiskAssessment]:
        """Features and assessment for one request (one history round trip, none when
        the caller read ``history`` already, e.g. in its own script with ``read_history``)."""
        if history is None:
            history = await self.history.read(facts.user_id, payee=facts.payee,
                                              device_id=facts.device_id, now=now)
        features = extract_features(facts, history, now)
        rules = await self.rules.current(now)
        champion = await self.champion.current(now)
        challenger = await self.challenger.current(now) if self.challenger else None
        return features, assess(features, rules, champion, challenger=challenger,
                                thresholds=self.thresholds)

    async def after_decision(self, facts: RequestFacts, *, decision_id: str, now: float,
                             completed: bool) -> None:
        """Update the user's history once the outcome is known (off the hot path)."""
        await self.history.record(
            user_id=facts.user_id, decision_id=decision_id, now=now, amount_fen=facts.amount_fen,
            payee=facts.payee, device_id=facts.device_id, ip=facts.ip, geo=facts.geo,
            moves_money=facts.moves_money, completed=completed,
            local_hour=local_hour(now, facts.utc_offset_hours))

    async def record(self, event: DecisionEvent) -> str:
        """Append the decision to the stream; returns its stream id."""
        return await record_decision(self.redis, event, maxlen=self._maxlen)

"""Prometheus metrics of one gateway process, served at ``/metrics``.

Each app gets its own registry (tests build many apps in one process). With
several uvicorn workers every worker serves its own counters; scrape each, or
run one worker per port (docs/operations.md).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SCORE_BUCKETS = tuple(i / 20 for i in range(1, 21))


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.responses = Counter("riskgate_http_responses", "HTTP responses by status code and kind",
                                 ["status", "kind"], registry=r)
        self.request_seconds = Histogram("riskgate_request_seconds",
                                         "Time from request to response start, by kind",
                                         ["kind"], buckets=_LATENCY_BUCKETS, registry=r)
        self.decisions = Counter("riskgate_decisions", "Decisions by outcome, tier reached and risk level",
                                 ["outcome", "tier", "level"], registry=r)
        self.limit_rejections = Counter("riskgate_limit_rejections",
                                        "Money movements refused by a limit, by action",
                                        ["action"], registry=r)
        self.stage_seconds = Histogram("riskgate_stage_seconds", "Decision stage latency",
                                       ["stage"], buckets=_LATENCY_BUCKETS, registry=r)
        self.risk_score = Histogram("riskgate_risk_score", "Distribution of combined risk scores",
                                    buckets=_SCORE_BUCKETS, registry=r)
        self.model = Gauge("riskgate_model", "1 for the model version that scored the last decision",
                           ["version"], registry=r)
        self._model_version: str | None = None
        self.stepups = Counter("riskgate_stepups", "Step-up factor completions by tool and result",
                               ["tool", "result"], registry=r)
        self.redis_errors = Counter("riskgate_redis_errors",
                                    "Requests refused because Redis could not be reached", registry=r)
        self.upstream_errors = Counter("riskgate_upstream_errors",
                                       "Upstream calls that failed, by error code", ["error"], registry=r)

    def observe_decision(self, *, outcome: str, tier: int, level: str, action: str, score: float,
                         model_version: str | None, latencies_ms: dict[str, float]) -> None:
        self.decisions.labels(outcome, f"T{tier}", level).inc()
        if outcome == "limit_exceeded":
            self.limit_rejections.labels(action).inc()
        self.risk_score.observe(score)
        if model_version is not None and model_version != self._model_version:
            self.model.clear()
            self.model.labels(model_version).set(1)
            self._model_version = model_version
        for stage, ms in latencies_ms.items():
            self.stage_seconds.labels(stage).observe(ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)

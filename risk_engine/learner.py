"""The learner: consumes the label stream, learns champion (and challenger) online,
publishes signed snapshots every gateway picks up.

One learner process runs at a time. Its position in the label stream is
stored inside each snapshot, so a restarted learner resumes exactly where the
last published model stopped (labels after it are learned again, none twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from river import metrics

from risk_engine.errors import RiskStateUnavailable, SnapshotNotFound
from risk_engine.labels import LABEL_STREAM
from risk_engine.model import default_model, model_input
from risk_engine.snapshots import ModelSnapshot, ModelStore

__all__ = ["CHALLENGER", "CHAMPION", "Learner"]

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(slots=True)
class _Trainee:
    name: str
    model: object
    labels_learned: int = 0
    auc: metrics.ROCAUC = field(default_factory=metrics.ROCAUC)
    logloss: metrics.LogLoss = field(default_factory=metrics.LogLoss)

    def snapshot(self, now: float, position: str) -> ModelSnapshot:
        return ModelSnapshot(self.name, 0, self.model, self.labels_learned, now, position,
                             {"progressive_roc_auc": float(self.auc.get()),
                              "progressive_log_loss": float(self.logloss.get())})


class Learner:
    def __init__(self, redis: Redis, store: ModelStore, *,
                 model_factory: Callable[[], object] = default_model,
                 challenger_factory: Callable[[], object] | None = None,
                 publish_every: int = 1000, progressive_metrics: bool = True) -> None:
        self._redis = redis
        self._store = store
        self._factory = model_factory
        self._challenger_factory = challenger_factory
        self._publish_every = publish_every
        self._metrics = progressive_metrics
        self._trainees: list[_Trainee] = []
        self._position = "0-0"
        self._unpublished = 0

    @property
    def position(self) -> str:
        return self._position

    @property
    def labels_learned(self) -> int:
        return self._trainees[0].labels_learned if self._trainees else 0

    async def start(self) -> None:
        """Resume from the latest champion snapshot, or start fresh models."""
        try:
            snap = await self._store.load(CHAMPION)
            champion = _Trainee(CHAMPION, snap.model, snap.labels_learned)
            self._position = snap.label_position
        except SnapshotNotFound:
            champion = _Trainee(CHAMPION, self._factory())
        self._trainees = [champion]
        if self._challenger_factory is not None:
            try:
                snap = await self._store.load(CHALLENGER)
                model, n = snap.model, snap.labels_learned
                if snap.label_position != self._position:
                    # out of step with the champion: restart it so both see the same labels
                    model, n = self._challenger_factory(), 0
            except SnapshotNotFound:
                model, n = self._challenger_factory(), 0
            self._trainees.append(_Trainee(CHALLENGER, model, n))

    def learn(self, features: dict, fraud: bool, weight: float) -> None:
        """Learn one label on every model (progressive validation first)."""
        x = model_input(features)
        for t in self._trainees:
            if self._metrics:
                p = t.model.predict_proba_one(x).get(True, 0.0)  # type: ignore[attr-defined]
                t.auc.update(fraud, p)
                t.logloss.update(fraud, p)
            t.model.learn_one(x, fraud, w=weight)  # type: ignore[attr-defined]
            t.labels_learned += 1

    async def step(self, now: float, *, count: int = 5000, block_ms: int | None = None) -> int:
        """Learn the next batch of labels; publish when ``publish_every`` are pending."""
        if not self._trainees:
            await self.start()
        try:
            reply = await self._redis.xread({LABEL_STREAM: self._position}, count=count,
                                            block=block_ms)
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading labels failed: {exc}") from exc
        rows = reply[0][1] if reply else []
        for entry_id, f in rows:
            self.learn(orjson.loads(f[b"f"]), f[b"y"] == b"1", float(f[b"w"]))
            self._position = entry_id.decode()
        self._unpublished += len(rows)
        if self._unpublished >= self._publish_every:
            await self.publish(now)
        return len(rows)

    async def publish(self, now: float) -> list[ModelSnapshot]:
        """Publish every model at the current position (challenger first, so a gateway
        never sees a champion ahead of its challenger)."""
        out = []
        for t in reversed(self._trainees):
            out.append(await self._store.publish(t.snapshot(now, self._position)))
        self._unpublished = 0
        return out

    async def run(self, stop: asyncio.Event, clock: Callable[[], float], *,
                  publish_interval: float = 5.0, block_ms: int = 1000) -> None:
        """Loop until ``stop`` is set; publishes pending labels at least every interval."""
        await self.start()
        last = clock()
        while not stop.is_set():
            await self.step(clock(), block_ms=block_ms)
            now = clock()
            if self._unpublished and now - last >= publish_interval:
                await self.publish(now)
                last = now
        if self._unpublished:
            await self.publish(clock())

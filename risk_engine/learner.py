"""The learner: consumes the label stream, learns champion (and challenger) online,
publishes signed snapshots every gateway picks up.

One learner process runs at a time: the single consumer of the consumer group
``learner`` on the label stream. Its position in the stream is stored inside
each snapshot; on start a learner points the group at that position, so a
restarted learner, or a standby taking over, resumes exactly where the last
published model stopped (labels after it are learned again, none twice).
``XINFO CONSUMERS`` shows which learner reads and how long it has been idle.

Throughput: with ``batch_size`` > 1 the learner reads up to ``count`` labels
per XREAD and learns them in mini-batches with River's ``learn_many`` (one
pandas DataFrame per batch; progressive validation scores each batch with
``predict_proba_many`` before learning it). Gateways only see snapshots
published every ``publish_every`` labels, so batches no larger than that delay
nothing they see; batching does change the optimiser (one mean-gradient step
per batch), so the batch model takes a larger SGD step: ``batch_model()``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from risk_engine.errors import RiskStateUnavailable, SnapshotNotFound
from risk_engine.labels import LABEL_STREAM
from risk_engine.model import default_model, model_input
from risk_engine.progressive import ProgressiveMetrics
from risk_engine.snapshots import ModelSnapshot, ModelStore

__all__ = ["BATCH_LEARNING_RATE", "CHALLENGER", "CHAMPION", "LEARNER_GROUP", "Learner", "batch_model"]

CHAMPION = "champion"
CHALLENGER = "challenger"
BATCH_LEARNING_RATE = 1.0
LEARNER_GROUP = "learner"


def batch_model() -> object:
    """The default pipeline with the SGD step tuned for ``learn_many`` mini-batches."""
    return default_model(learning_rate=BATCH_LEARNING_RATE)


@dataclass(slots=True)
class _Trainee:
    name: str
    model: object
    labels_learned: int = 0
    progressive: ProgressiveMetrics = field(default_factory=ProgressiveMetrics)

    def snapshot(self, now: float, position: str) -> ModelSnapshot:
        return ModelSnapshot(self.name, 0, self.model, self.labels_learned, now, position,
                             {"progressive_roc_auc": self.progressive.roc_auc(),
                              "progressive_log_loss": self.progressive.log_loss()})


class Learner:
    def __init__(self, redis: Redis, store: ModelStore, *,
                 model_factory: Callable[[], object] | None = None,
                 challenger_factory: Callable[[], object] | None = None,
                 publish_every: int = 1000, progressive_metrics: bool = True,
                 batch_size: int = 1000) -> None:
        self._redis = redis
        self._store = store
        # a mini-batch takes one mean-gradient step, so it needs the larger SGD step
        self._factory = model_factory or (batch_model if batch_size > 1 else default_model)
        self._challenger_factory = challenger_factory
        self._publish_every = publish_every
        self._metrics = progressive_metrics
        self._batch_size = max(int(batch_size), 1)
        self._trainees: list[_Trainee] = []
        self._position = "0-0"
        self._unpublished = 0
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._joined = False

    @property
    def position(self) -> str:
        return self._position

    @property
    def labels_learned(self) -> int:
        return self._trainees[0].labels_learned if self._trainees else 0

    def start_fresh(self) -> None:
        """Fresh models at the start of the label stream, without reading Redis
        (evaluation on one's own data, benchmarks)."""
        self._trainees = [_Trainee(CHAMPION, self._factory())]
        if self._challenger_factory is not None:
            self._trainees.append(_Trainee(CHALLENGER, self._challenger_factory()))
        self._position = "0-0"
        self._joined = False

    async def start(self) -> None:
        """Resume from the latest champion snapshot, or start fresh models."""
        try:
            snap = await self._store.load(CHAMPION)
            champion = _Trainee(CHAMPION, snap.model, snap.labels_learned)
            self._position = snap.label_position
        except SnapshotNotFound:
            champion = _Trainee(CHAMPION, self._factory())
        self._trainees = [champion]
        self._joined = False
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
                t.progressive.update(fraud, p)
            t.model.learn_one(x, fraud, w=weight)  # type: ignore[attr-defined]
            t.labels_learned += 1

    def learn_many(self, rows: Sequence[tuple[dict, bool, float]]) -> None:
        """Learn (features, fraud, weight) rows in order: mini-batches of ``batch_size`` when
        the models support ``learn_many``, else one by one."""
        size = self._batch_size
        if size <= 1 or not all(hasattr(t.model, "learn_many") for t in self._trainees):
            for features, fraud, weight in rows:
                self.learn(features, fraud, weight)
            return
        import pandas as pd  # the mini-batch path only

        for i in range(0, len(rows), size):
            chunk = rows[i:i + size]
            X = pd.DataFrame.from_records([f for f, _y, _w in chunk])  # noqa: N806
            # model_input, by column: booleans become 0.0/1.0
            flags = X.select_dtypes(include="bool").columns
            if len(flags):
                X[flags] = X[flags].astype(float)
            y = pd.Series([fraud for _f, fraud, _w in chunk], dtype=bool)
            w = pd.Series([weight for _f, _y, weight in chunk], dtype=float)
            for t in self._trainees:
                if self._metrics and t.labels_learned:
                    # an untrained model has nothing to validate; scored before learning
                    proba = t.model.predict_proba_many(X)  # type: ignore[attr-defined]
                    t.progressive.update_many(y.to_numpy(), proba[True].to_numpy())
                t.model.learn_many(X, y, w=w)  # type: ignore[attr-defined]
                t.labels_learned += len(chunk)

    async def step(self, now: float, *, count: int = 5000, block_ms: int | None = None) -> int:
        """Learn the next batch of labels; publish when ``publish_every`` are pending."""
        if not self._trainees:
            await self.start()
        try:
            reply = await self._read(count, block_ms)
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading labels failed: {exc}") from exc
        rows = reply[0][1] if reply else []
        self.learn_many([(orjson.loads(f[b"f"]), f[b"y"] == b"1", float(f[b"w"]))
                         for _id, f in rows])
        if rows:
            self._position = rows[-1][0].decode()
        self._unpublished += len(rows)
        if self._unpublished >= self._publish_every:
            await self.publish(now)
        return len(rows)

    async def _join(self) -> None:
        """Point the group at this learner's position (created with the stream if need be)."""
        try:
            await self._redis.xgroup_create(LABEL_STREAM, LEARNER_GROUP, id=self._position, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            await self._redis.xgroup_setid(LABEL_STREAM, LEARNER_GROUP, id=self._position)
        self._joined = True

    async def _read(self, count: int, block_ms: int | None) -> list:
        # NOACK: the group is a cursor; what was learned is recorded by the snapshots.
        for attempt in (1, 2):
            if not self._joined:
                await self._join()
            try:
                return await self._redis.xreadgroup(LEARNER_GROUP, self._consumer, {LABEL_STREAM: ">"},
                                                    count=count, block=block_ms, noack=True)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc) or attempt == 2:
                    raise
                self._joined = False  # the stream was deleted: join again at our position
        return []

    def snapshot_models(self, now: float = 0.0) -> list[ModelSnapshot]:
        """The models as they stand (champion first), unpublished: for evaluation."""
        return [t.snapshot(now, self._position) for t in self._trainees]

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

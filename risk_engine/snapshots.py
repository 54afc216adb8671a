"""Model snapshots: pickled, HMAC-signed, versioned in Redis.

Blob layout: ``b"RGM1" + HMAC-SHA256(key, context + payload) + payload`` where
payload is the pickle and context binds the model name and version, so a
challenger snapshot cannot be swapped in as the champion nor an old version
replayed under a new number. The HMAC is verified (constant time) before
anything is unpickled; an unsigned, tampered or wrongly keyed blob is refused.

Keys: ``{risk:model:<name>}:seq``, ``{risk:model:<name>}:v:<n>`` (blob),
``{risk:model:<name>}:meta:<n>`` (JSON, informational), ``{risk:model:<name>}:current``:
one hash tag per model, so a publish is one transaction in one Redis Cluster
slot. Snapshots stored before the tag (``risk:model:<name>:*``) are moved on
first use.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from dataclasses import dataclass, field

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from risk_engine.errors import (
    RiskStateUnavailable,
    SnapshotCorrupt,
    SnapshotNotFound,
    SnapshotSignatureInvalid,
)
from risk_engine.key_moves import move_keys
from risk_engine.refresh import PeriodicRefresh

__all__ = ["ModelSnapshot", "ModelSource", "ModelStore", "sign_snapshot", "verify_snapshot"]

MAGIC = b"RGM1"
MIN_KEY_BYTES = 32
KEEP_VERSIONS = 20


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """A model at one point of its learning, with what the gateway needs to trust it."""

    name: str  # "champion" or "challenger"
    version: int
    model: object = field(compare=False, repr=False)
    labels_learned: int = 0
    created: float = 0.0
    label_position: str = "0-0"  # last label stream entry learned
    metrics: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}:v{self.version}"


def _context(name: str, version: int) -> bytes:
    return b"riskgate-model-v1\n" + name.encode() + b"\n" + str(version).encode() + b"\n"


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the model signing key must be at least {MIN_KEY_BYTES} bytes")


def sign_snapshot(snapshot: ModelSnapshot, key: bytes) -> bytes:
    _check_key(key)
    payload = pickle.dumps({
        "model": snapshot.model, "labels_learned": snapshot.labels_learned,
        "created": snapshot.created, "label_position": snapshot.label_position,
        "metrics": dict(snapshot.metrics),
    }, protocol=pickle.HIGHEST_PROTOCOL)
    mac = hmac.new(key, _context(snapshot.name, snapshot.version) + payload, hashlib.sha256).digest()
    return MAGIC + mac + payload


def verify_snapshot(blob: bytes, *, name: str, version: int, key: bytes) -> ModelSnapshot:
    """Check the HMAC, then unpickle. Never unpickles an unverified blob."""
    _check_key(key)
    if len(blob) < len(MAGIC) + 32 or not hmac.compare_digest(blob[:4], MAGIC):
        raise SnapshotSignatureInvalid()
    mac, payload = blob[4:36], blob[36:]
    expected = hmac.new(key, _context(name, version) + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise SnapshotSignatureInvalid()
    try:
        doc = pickle.loads(payload)  # noqa: S301 - authenticated above
        return ModelSnapshot(name, version, doc["model"], int(doc["labels_learned"]),
                             float(doc["created"]), str(doc["label_position"]),
                             dict(doc["metrics"]))
    except Exception as exc:  # any unpickling failure means the snapshot is unusable
        raise SnapshotCorrupt(f"signed snapshot {name}:v{version} does not load: {exc!r}") from exc


class ModelStore:
    def __init__(self, redis: Redis, key: bytes, prefix: str = "risk:model") -> None:
        _check_key(key)
        self._redis = redis
        self._key = key
        self._prefix = prefix
        self._moved: set[str] = set()

    def _k(self, name: str, suffix: str) -> str:
        return f"{{{self._prefix}:{name}}}:{suffix}"

    async def _move_legacy(self, name: str) -> None:
        """Once per process and model: move snapshots stored before the keys gained their tag."""
        if name in self._moved:
            return
        old = f"{self._prefix}:{name}"
        try:
            seq = int(await self._redis.get(f"{old}:seq") or 0)
            suffixes = ["seq", "current", *(f"{kind}:{n}" for n in range(1, seq + 1) for kind in ("v", "meta"))]
            await move_keys(self._redis, [(f"{old}:{s}", self._k(name, s)) for s in suffixes])
        except RedisError as exc:
            raise RiskStateUnavailable(f"moving stored model snapshots failed: {exc}") from exc
        self._moved.add(name)

    async def publish(self, snapshot: ModelSnapshot) -> ModelSnapshot:
        """Store under the next version number and make it current. Returns it with its version."""
        await self._move_legacy(snapshot.name)
        try:
            version = int(await self._redis.incr(self._k(snapshot.name, "seq")))
            stored = ModelSnapshot(snapshot.name, version, snapshot.model, snapshot.labels_learned,
                                   snapshot.created, snapshot.label_position,
                                   dict(snapshot.metrics))
            meta = orjson.dumps({"version": version, "labels_learned": stored.labels_learned,
                                 "created": stored.created, "metrics": stored.metrics,
                                 "label_position": stored.label_position})
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._k(snapshot.name, f"v:{version}"), sign_snapshot(stored, self._key))
                pipe.set(self._k(snapshot.name, f"meta:{version}"), meta)
                pipe.set(self._k(snapshot.name, "current"), version)
                old = version - KEEP_VERSIONS
                if old > 0:
                    pipe.delete(self._k(snapshot.name, f"v:{old}"))
                await pipe.execute()
        except RedisError as exc:
            raise RiskStateUnavailable(f"publishing a model snapshot failed: {exc}") from exc
        return stored

    async def current_version(self, name: str) -> int | None:
        await self._move_legacy(name)
        try:
            raw = await self._redis.get(self._k(name, "current"))
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading the model version failed: {exc}") from exc
        return int(raw) if raw is not None else None

    async def load(self, name: str, version: int | None = None) -> ModelSnapshot:
        if version is None:
            version = await self.current_version(name)
            if version is None:
                raise SnapshotNotFound(f"no {name} model has been published")
        await self._move_legacy(name)
        try:
            blob = await self._redis.get(self._k(name, f"v:{version}"))
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading a model snapshot failed: {exc}") from exc
        if blob is None:
            raise SnapshotNotFound(f"no snapshot {name}:v{version}")
        return verify_snapshot(blob, name=name, version=version, key=self._key)

    async def metadata(self, name: str, count: int = KEEP_VERSIONS) -> list[dict]:
        """Informational metadata of the latest versions, newest first (for the console)."""
        top = await self.current_version(name)
        if top is None:
            return []
        keys = [self._k(name, f"meta:{v}") for v in range(top, max(top - count, 0), -1)]
        try:
            raws = await self._redis.mget(keys)
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading model metadata failed: {exc}") from exc
        return [orjson.loads(r) for r in raws if r is not None]


class ModelSource:
    """The current snapshot of one model name for one process, refreshed at most every
    ``refresh_interval`` seconds. A snapshot that fails verification is refused and the
    last good one kept; ``last_error`` says why."""

    def __init__(self, store: ModelStore, name: str, *, refresh_interval: float = 1.0) -> None:
        self._store = store
        self._name = name
        self._refresher = PeriodicRefresh(self._refresh, refresh_interval)
        self.snapshot: ModelSnapshot | None = None
        self.last_error: Exception | None = None

    async def current(self, now: float) -> ModelSnapshot | None:
        await self._refresher.run(now, loaded=self.snapshot is not None)
        return self.snapshot

    async def _refresh(self) -> None:
        try:
            version = await self._store.current_version(self._name)
            if version is not None and (self.snapshot is None or self.snapshot.version != version):
                self.snapshot = await self._store.load(self._name, version)
                self.last_error = None
        except (RiskStateUnavailable, SnapshotNotFound, SnapshotSignatureInvalid,
                SnapshotCorrupt) as exc:
            self.last_error = exc  # keep the last good snapshot

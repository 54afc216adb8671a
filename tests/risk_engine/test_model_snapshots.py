from __future__ import annotations

import pickle
import random

import pytest

from risk_engine import (
    ModelSnapshot,
    ModelSource,
    ModelStore,
    SnapshotSignatureInvalid,
    default_model,
    explain,
    sign_snapshot,
    verify_snapshot,
)

from .conftest import NOW


def _trained(n: int = 2000):
    rng = random.Random(7)
    m = default_model()
    for _ in range(n):
        fraud = rng.random() < 0.03
        x = {"amount": rng.gauss(8.0 if fraud else 5.0, 1.0), "noise": rng.gauss(0, 1),
             "device": "new" if fraud and rng.random() < 0.8 else "bound"}
        m.learn_one(x, fraud)
    return m


def test_default_model_learns_any_numeric_dict_and_explains():
    m = _trained()
    fraud_like = {"amount": 9.0, "noise": 0.0, "device": "new"}
    normal = {"amount": 5.0, "noise": 0.0, "device": "bound"}
    assert m.predict_proba_one(fraud_like)[True] > 0.8 > 0.2 > m.predict_proba_one(normal)[True]
    top = explain(m, fraud_like)
    assert top[0][0] == "amount" and top[0][1] > 0
    fresh = default_model()
    assert fresh.predict_proba_one({"a": 1.0}) in ({}, {False: 0.5, True: 0.5})


def test_snapshot_roundtrip_and_refusals(model_key):
    snap = ModelSnapshot("champion", 3, _trained(200), labels_learned=200, created=NOW)
    blob = sign_snapshot(snap, model_key)
    back = verify_snapshot(blob, name="champion", version=3, key=model_key)
    assert back.labels_learned == 200 and back.label == "champion:v3"
    flipped = blob[:-10] + bytes([blob[-10] ^ 1]) + blob[-9:]
    for bad, name, version, key in [
        (flipped, "champion", 3, model_key),  # tampered payload
        (blob, "champion", 3, b"x" * 32),  # wrong key
        (blob, "challenger", 3, model_key),  # a challenger blob presented as champion
        (blob, "champion", 4, model_key),  # an old version replayed as a new one
        (pickle.dumps(snap.model), "champion", 3, model_key),  # unsigned pickle
    ]:
        with pytest.raises(SnapshotSignatureInvalid) as info:
            verify_snapshot(bad, name=name, version=version, key=key)
        assert info.value.code == "model_snapshot_signature_invalid"


class _Boom:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/riskgate-pwned-by-pickle",))


async def test_malicious_snapshot_is_never_unpickled(redis, model_key, tmp_path):
    import os
    store = ModelStore(redis, model_key)
    good = await store.publish(ModelSnapshot("champion", 0, _trained(100), 100, NOW))
    source = ModelSource(store, "champion", refresh_interval=0.0)
    assert (await source.current(NOW)).version == good.version
    evil = b"RGM1" + b"\0" * 32 + pickle.dumps(_Boom())
    await redis.set("{risk:model:champion}:v:2", evil)
    await redis.set("{risk:model:champion}:current", 2)
    snap = await source.current(NOW + 1)
    assert snap.version == good.version  # last good kept
    assert isinstance(source.last_error, SnapshotSignatureInvalid)
    assert not os.path.exists("/tmp/riskgate-pwned-by-pickle")


async def test_gateways_pick_up_new_versions(redis, model_key):
    store = ModelStore(redis, model_key)
    source = ModelSource(store, "champion", refresh_interval=1.0)
    assert await source.current(NOW) is None
    await store.publish(ModelSnapshot("champion", 0, default_model(), 0, NOW))
    assert await source.current(NOW + 0.5) is None  # within the refresh interval
    assert (await source.current(NOW + 1.0)).version == 1
    meta = await store.metadata("champion")
    assert meta[0]["version"] == 1

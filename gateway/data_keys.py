"""The keyring: data-encryption keys (DEKs) kept in Redis, wrapped by the KEK.

``riskgate:{data-keys}`` maps a key id to a JSON record
``{"kind": "dek" | "former-kek", "created": t, "wrapped": {kek_id: "w1.<nonce>.<ct>"}}``;
``riskgate:{data-keys}:current`` names the DEK new secrets are sealed under.
Each wrapping is AES-256-GCM under one KEK, with the key id and the KEK id as
associated data. A gateway unwraps the wrappings of its own KEK id, so
:func:`rotate_kek` adds the new KEK's wrappings beside the old ones in one
transaction: gateways still running with the old KEK keep working until they
restart with the new one, and :func:`drop_other_keks` then removes the old
wrappings.

A deployment that sealed secrets before the keyring existed (v1 values, under
the KEK itself) keeps that KEK in the keyring as a ``former-kek`` record, so
its v1 values still open after the KEK is rotated.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from gateway.config import ConfigError
from gateway.sealing import DataKeysNotLoaded, Sealer, _b64d, _b64e, kek_id_of
from gateway.stepup_setup import DERIVED_KEY_PURPOSES, derive_key

__all__ = ["DataKeyError", "DataKeys", "PendingDerivedKeys", "drop_other_keks", "load_data_keys",
           "load_when_reachable", "open_keyring", "rotate_kek", "sealer_for"]

log = logging.getLogger(__name__)

KEYS_HASH = "riskgate:{data-keys}"
CURRENT_KEY = "riskgate:{data-keys}:current"
# Present when a gateway ran before the keyring existed: it sealed v1 values.
PRE_KEYRING_MARKERS = ("riskgate:signing-keys", "riskgate:enc-keys")


class DataKeyError(ConfigError):
    """The keyring cannot be unwrapped with this KEK (wrong KEK, or tampered)."""

    def __init__(self, problem: str) -> None:
        super().__init__("assertion.kek", problem)


@dataclass(frozen=True, slots=True)
class DataKeys:
    current_id: str
    deks: dict[str, bytes]
    former_keks: dict[str, bytes]  # KEK id -> KEK that sealed v1 values

    def derived_keys(self) -> dict[str, bytes]:
        """The purpose-bound keys (SMS code MACs, model snapshots), from the current DEK."""
        dek = self.deks[self.current_id]
        return {purpose: derive_key(dek, purpose) for purpose in DERIVED_KEY_PURPOSES}


def _aad(key_id: str, kek_id: str) -> bytes:
    return f"riskgate-data-key:{key_id}:{kek_id}".encode()


def _wrap(kek: bytes, key_id: str, key: bytes) -> str:
    nonce = os.urandom(12)
    return f"w1.{_b64e(nonce)}.{_b64e(AESGCM(kek).encrypt(nonce, key, _aad(key_id, kek_id_of(kek))))}"


def _unwrap(kek: bytes, key_id: str, record: dict[str, object]) -> bytes:
    kek_id = kek_id_of(kek)
    wrapped = record["wrapped"].get(kek_id)  # type: ignore[attr-defined]
    if wrapped is None:
        others = ", ".join(sorted(record["wrapped"])) or "none"  # type: ignore[arg-type]
        raise DataKeyError(f"data key {key_id} is not wrapped for KEK {kek_id} (only for: {others}); "
                           "start with the KEK the keyring was rotated to")
    parts = str(wrapped).split(".")
    try:
        if len(parts) != 3 or parts[0] != "w1":
            raise ValueError(wrapped)
        key = AESGCM(kek).decrypt(_b64d(parts[1]), _b64d(parts[2]), _aad(key_id, kek_id))
    except (InvalidTag, ValueError) as exc:
        raise DataKeyError(f"the wrapped data key {key_id} does not open under KEK {kek_id} "
                           "(tampered with)") from exc
    if len(key) != 32:
        raise DataKeyError(f"the wrapped data key {key_id} is not a 32-byte key")
    return key


async def _records(redis: Redis) -> dict[str, dict[str, object]]:
    return {k.decode(): orjson.loads(v) for k, v in (await redis.hgetall(KEYS_HASH)).items()}


async def _create_first(redis: Redis, kek: bytes, now: float) -> None:
    """Make the deployment's first DEK (and keep a pre-keyring KEK); a racing process may win."""
    dek_id = secrets.token_hex(6)
    records = {dek_id: {"kind": "dek", "created": now,
                        "wrapped": {kek_id_of(kek): _wrap(kek, dek_id, secrets.token_bytes(32))}}}
    if await redis.exists(*PRE_KEYRING_MARKERS):
        kek_id = kek_id_of(kek)
        records[kek_id] = {"kind": "former-kek", "created": now,
                           "wrapped": {kek_id: _wrap(kek, kek_id, kek)}}
    async with redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(CURRENT_KEY)
            if await pipe.get(CURRENT_KEY) is not None:
                return
            pipe.multi()
            pipe.hset(KEYS_HASH, mapping={k: orjson.dumps(v) for k, v in records.items()})
            pipe.set(CURRENT_KEY, dek_id)
            await pipe.execute()
        except WatchError:
            return
    log.info("created data key %s under KEK %s%s", dek_id, kek_id_of(kek),
             " (secrets sealed before it stay readable)" if len(records) > 1 else "")


async def load_data_keys(redis: Redis, kek: bytes, now: float | None = None) -> DataKeys:
    """Unwrap every key of the keyring with ``kek``; make the first DEK on first start."""
    current = await redis.get(CURRENT_KEY)
    if current is None:
        await _create_first(redis, kek, time.time() if now is None else now)
        current = await redis.get(CURRENT_KEY)
    records = await _records(redis)
    deks: dict[str, bytes] = {}
    former: dict[str, bytes] = {}
    for key_id, record in records.items():
        (deks if record.get("kind") == "dek" else former)[key_id] = _unwrap(kek, key_id, record)
    current_id = current.decode()
    if current_id not in deks:
        raise DataKeyError(f"the current data key {current_id} is missing from the keyring")
    return DataKeys(current_id, deks, former)


async def rotate_kek(redis: Redis, old_kek: bytes, new_kek: bytes) -> list[str]:
    """Wrap every key of the keyring under ``new_kek`` too, in one transaction.

    Returns the re-wrapped key ids. Wrappings under other KEKs stay until
    :func:`drop_other_keks`.
    """
    old_id, new_id = kek_id_of(old_kek), kek_id_of(new_kek)
    if old_id == new_id:
        raise DataKeyError(f"the new KEK is the current one ({old_id})")
    await load_data_keys(redis, old_kek)  # first start of the keyring, and a full check
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(KEYS_HASH, CURRENT_KEY)
                records = {k.decode(): orjson.loads(v) for k, v in (await pipe.hgetall(KEYS_HASH)).items()}
                for key_id, record in records.items():
                    key = _unwrap(old_kek, key_id, record)
                    record["wrapped"][new_id] = _wrap(new_kek, key_id, key)
                pipe.multi()
                pipe.hset(KEYS_HASH, mapping={k: orjson.dumps(v) for k, v in records.items()})
                await pipe.execute()
                return sorted(records)
            except WatchError:
                continue


async def drop_other_keks(redis: Redis, kek: bytes) -> list[str]:
    """Keep only the wrappings under ``kek`` (after every gateway runs with it).

    Refuses unless ``kek`` unwraps every key, so no key is ever left without a
    wrapping. Returns the ids of the KEKs whose wrappings were removed.
    """
    kek_id = kek_id_of(kek)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(KEYS_HASH)
                records = {k.decode(): orjson.loads(v) for k, v in (await pipe.hgetall(KEYS_HASH)).items()}
                dropped: set[str] = set()
                for key_id, record in records.items():
                    _unwrap(kek, key_id, record)
                    dropped |= set(record["wrapped"]) - {kek_id}
                    record["wrapped"] = {kek_id: record["wrapped"][kek_id]}
                pipe.multi()
                if records:
                    pipe.hset(KEYS_HASH, mapping={k: orjson.dumps(v) for k, v in records.items()})
                await pipe.execute()
                return sorted(dropped)
            except WatchError:
                continue


class PendingDerivedKeys(dict[str, bytes]):
    """The derived keys before the keyring is loaded: a lookup fails closed like Redis down."""

    def __missing__(self, purpose: str) -> bytes:
        raise DataKeysNotLoaded(f"the {purpose} key is not loaded yet (Redis was unreachable)")


async def load_when_reachable(redis: Redis, kek: bytes, sealer: Sealer,
                              derived: PendingDerivedKeys, retry: float = 1.0) -> None:
    """Load the keyring once Redis answers, then arm ``sealer`` and ``derived``."""
    while True:
        try:
            keys = await load_data_keys(redis, kek)
        except RedisError:
            await asyncio.sleep(retry)
            continue
        except DataKeyError as exc:
            log.error("cannot load the data keys: %s", exc)
            return
        sealer.attach(keys)
        derived.update(keys.derived_keys())
        log.info("data keys loaded; sealed secrets are available again")
        return


_loaders: set[asyncio.Task[None]] = set()


async def open_keyring(redis: Redis, kek: bytes) -> tuple[Sealer, dict[str, bytes]]:
    """A gateway's sealer and derived keys, from the keyring unwrapped with ``kek``.

    With Redis unreachable the gateway still starts: sealing and the derived
    keys fail closed (503 ``state_unavailable``) until a background task has
    loaded the keyring. ``DataKeyError`` (wrong KEK, tampered keyring) stops startup.
    """
    try:
        keys = await load_data_keys(redis, kek)
    except RedisError as exc:
        log.error("cannot read the data keys (%s); secrets stay sealed until Redis returns", exc)
        sealer, derived = Sealer(kek, pending=True), PendingDerivedKeys()
        task = asyncio.get_running_loop().create_task(load_when_reachable(redis, kek, sealer, derived))
        _loaders.add(task)
        task.add_done_callback(_loaders.discard)
        return sealer, derived
    return Sealer(kek, keys), keys.derived_keys()


async def sealer_for(redis: Redis, kek: bytes) -> Sealer:
    """A sealer for offline commands (key rotation): the keyring must be readable."""
    return Sealer(kek, await load_data_keys(redis, kek))

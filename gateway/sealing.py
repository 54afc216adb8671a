"""Secrets at rest: AES-256-GCM under a data-encryption key (DEK).

Sealed values read ``v2.<dek_id>.<nonce>.<ciphertext>`` (base64url parts).
The DEKs live in Redis wrapped by the key-encryption key (KEK), see
:mod:`gateway.data_keys`, so rotating the KEK re-wraps the DEKs and no sealed
value changes. Values sealed before DEKs existed read
``v1.<kek_id>.<nonce>.<ciphertext>``: they were sealed directly under a KEK
and still open, with the live KEK or with a former KEK the keyring kept for
them. The associated data names what the secret is for
(``b"signing-key:<kid>"``), so a sealed value copied into another Redis key
does not open there.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.exceptions import ConnectionError as RedisConnectionError

if TYPE_CHECKING:
    from gateway.data_keys import DataKeys

__all__ = ["DataKeysNotLoaded", "Sealer", "SealError", "kek_id_of", "load_kek", "parse_kek", "read_kek_file"]

log = logging.getLogger(__name__)


class SealError(Exception):
    """A sealed value is malformed, from another key, or was tampered with."""


class DataKeysNotLoaded(RedisConnectionError):
    """The keyring could not be read from Redis yet: fail closed as Redis being down does."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def kek_id_of(kek: bytes) -> str:
    """The public name of a KEK (12 hex digits of a hash; reveals nothing of the key)."""
    return hashlib.sha256(b"riskgate-kek-id" + kek).hexdigest()[:12]


class Sealer:
    """Seals under the current DEK; opens v2 values by DEK id and v1 values by KEK id.

    Without ``data_keys`` (no Redis at hand, e.g. benchmarks) it seals v1 values
    under the KEK itself, as releases before the keyring did; with
    ``pending=True`` it refuses everything until :meth:`attach`.
    """

    def __init__(self, kek: bytes, data_keys: DataKeys | None = None, *, pending: bool = False) -> None:
        if len(kek) != 32:
            raise ValueError("the KEK must be 32 bytes")
        self.kek_id = kek_id_of(kek)
        self._kek = AESGCM(kek)
        self.dek_id: str | None = None
        self._deks: dict[str, AESGCM] = {}
        self._v1: dict[str, AESGCM] = {self.kek_id: self._kek}
        self._pending = pending
        if data_keys is not None:
            self.attach(data_keys)

    def attach(self, data_keys: DataKeys) -> None:
        """Use the unwrapped keyring: seal under its current DEK from now on."""
        self._deks = {dek_id: AESGCM(key) for dek_id, key in data_keys.deks.items()}
        self._v1 = {self.kek_id: self._kek,
                    **{kek_id: AESGCM(key) for kek_id, key in data_keys.former_keks.items()}}
        self.dek_id = data_keys.current_id
        self._pending = False

    def _check_loaded(self) -> None:
        if self._pending:
            raise DataKeysNotLoaded("the data keys are not loaded yet (Redis was unreachable)")

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        self._check_loaded()
        nonce = os.urandom(12)
        if self.dek_id is None:
            return f"v1.{self.kek_id}.{_b64e(nonce)}.{_b64e(self._kek.encrypt(nonce, plaintext, aad))}"
        ct = self._deks[self.dek_id].encrypt(nonce, plaintext, aad)
        return f"v2.{self.dek_id}.{_b64e(nonce)}.{_b64e(ct)}"

    def open(self, sealed: str, aad: bytes) -> bytes:
        self._check_loaded()
        parts = sealed.split(".")
        if len(parts) != 4 or parts[0] not in ("v1", "v2"):
            raise SealError("not a sealed value")
        if parts[0] == "v2":
            aead = self._deks.get(parts[1])
            if aead is None:
                raise SealError(f"sealed under data key {parts[1]}, which this gateway has not loaded")
        else:
            aead = self._v1.get(parts[1])
            if aead is None:
                raise SealError(f"sealed under another KEK ({parts[1]}); this gateway has {self.kek_id}")
        try:
            return aead.decrypt(_b64d(parts[2]), _b64d(parts[3]), aad)
        except (InvalidTag, ValueError) as exc:
            raise SealError("the sealed value does not open (tampered or wrong context)") from exc


def load_kek(inline: str, kek_file: str, data_dir: Path) -> bytes:
    """The KEK from config/env, from a file, or (embedded setups) generated once.

    A generated KEK lives beside the embedded Redis in the data directory with
    mode 0600; production deployments set ``RISKGATE_ASSERTION_KEK`` or
    ``assertion.kek_file`` instead.
    """
    if inline:
        return _b64d(inline)
    path = Path(kek_file) if kek_file else data_dir / "kek"
    if path.exists():
        return read_kek_file(path, "assertion.kek_file")
    if kek_file:
        from gateway.config import ConfigError

        raise ConfigError("assertion.kek_file", f"{path} does not exist")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(_b64e(key) + "\n")
    log.warning("generated a new key-encryption key at %s (set RISKGATE_ASSERTION_KEK in production)", path)
    return key


def parse_kek(text: str, where: str, source: str) -> bytes:
    """A base64url 32-byte KEK (as ``riskgate keys kek`` prints it), or ConfigError."""
    from gateway.config import ConfigError

    try:
        key = _b64d(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(where, f"{source} does not hold a 32-byte base64url key")
    return key


def read_kek_file(path: Path, where: str) -> bytes:
    return parse_kek(path.read_text(), where, str(path))

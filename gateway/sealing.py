"""Secrets at rest: AES-256-GCM under the key-encryption key (KEK).

Sealed values read ``v1.<kek_id>.<nonce>.<ciphertext>`` (base64url parts).
The associated data names what the secret is for (``b"signing-key:<kid>"``),
so a sealed value copied into another Redis key does not open there.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer", "SealError", "load_kek"]

log = logging.getLogger(__name__)


class SealError(Exception):
    """A sealed value is malformed, from another KEK, or was tampered with."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealer:
    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the KEK must be 32 bytes")
        self._aead = AESGCM(kek)
        self.kek_id = hashlib.sha256(b"riskgate-kek-id" + kek).hexdigest()[:12]

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext, aad)
        return f"v1.{self.kek_id}.{_b64e(nonce)}.{_b64e(ct)}"

    def open(self, sealed: str, aad: bytes) -> bytes:
        parts = sealed.split(".")
        if len(parts) != 4 or parts[0] != "v1":
            raise SealError("not a sealed value")
        if parts[1] != self.kek_id:
            raise SealError(f"sealed under another KEK ({parts[1]}); this gateway has {self.kek_id}")
        try:
            return self._aead.decrypt(_b64d(parts[2]), _b64d(parts[3]), aad)
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
        key = _b64d(path.read_text().strip())
        if len(key) != 32:
            from gateway.config import ConfigError

            raise ConfigError("assertion.kek_file", f"{path} does not hold a 32-byte base64url key")
        return key
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

"""The gateway's signing keys, fetched from its JWKS URL and cached.

An unknown ``kid`` triggers a refetch (the gateway may have rotated), but at
most one fetch per ``min_refetch_interval``: a caller spraying random kids must
not turn the upstream into a JWKS flooder. Concurrent misses share one fetch.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from banking_upstream.errors import AssertionUnknownKey, JwksUnavailable

__all__ = ["JwksCache", "parse_jwks"]

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 32
# Keys the gateway removed (after rotation) stop being trusted within this time.
DEFAULT_MAX_AGE = 300.0


def parse_jwks(document: bytes) -> dict[str, ECKey]:
    """Public ES256 keys by kid from a JWKS document; other keys are ignored.

    Raises JwksUnavailable when the document is not a JWKS at all.
    """
    try:
        doc = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise JwksUnavailable("the JWKS is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksUnavailable("the JWKS has no keys list")
    keys: dict[str, ECKey] = {}
    for entry in doc["keys"][:MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("kty") != "EC" or entry.get("crv") != "P-256":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", "ES256") != "ES256":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        # Only the public coordinates: a JWKS that leaks "d" must not make us hold a private key.
        public = {"kty": "EC", "crv": "P-256", "x": entry.get("x"), "y": entry.get("y"), "kid": kid}
        try:
            keys[kid] = ECKey.import_key(public)
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("ignoring unusable JWKS key %r: %s", kid, exc)
    return keys


class JwksCache:
    """ES256 verification keys by kid, refreshed from ``url`` on demand."""

    def __init__(self, session: aiohttp.ClientSession, url: str, *, min_refetch_interval: float,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self._session = session
        self.url = url
        self.min_refetch_interval = min_refetch_interval
        self.max_age = max_age
        self._keys: dict[str, ECKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_failed = False
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str, now: float) -> ECKey:
        """The key named ``kid``; ``now`` is a monotonic clock reading.

        Raises AssertionUnknownKey, or JwksUnavailable when the key set cannot
        be fetched and no usable copy is cached.
        """
        key = self._keys.get(kid)
        if key is not None and not self._stale(now):
            return key
        async with self._lock:
            key = self._keys.get(kid)
            if key is not None and not self._stale(now):
                return key
            if self._attempted_at is not None and now - self._attempted_at < self.min_refetch_interval:
                if key is not None:
                    return key
                if self._last_failed:
                    raise JwksUnavailable()
                raise AssertionUnknownKey()
            self._attempted_at = now
            try:
                self._keys = await self._fetch()
            except JwksUnavailable:
                self._last_failed = True
                if key is not None:
                    log.warning("JWKS refresh failed; still trusting the cached key set")
                    return key
                raise
            self._last_failed = False
            self._fetched_at = now
        key = self._keys.get(kid)
        if key is None:
            raise AssertionUnknownKey()
        return key

    def _stale(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self.max_age

    async def _fetch(self) -> dict[str, ECKey]:
        try:
            async with self._session.get(self.url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise JwksUnavailable(f"the JWKS answered HTTP {resp.status}")
                body = await resp.content.read(MAX_JWKS_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JwksUnavailable(f"the JWKS could not be fetched: {type(exc).__name__}") from exc
        if len(body) > MAX_JWKS_BYTES:
            raise JwksUnavailable("the JWKS is too large")
        return parse_jwks(body)

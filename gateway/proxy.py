"""Forwarding to the upstream over one pooled aiohttp session."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gateway.errors import UpstreamTimeout, UpstreamUnavailable

__all__ = ["HOP_BY_HOP", "UpstreamClient", "UpstreamResponse"]

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade", b"host", b"content-length",
})
# Client credentials and anything the client might forge about the gateway.
STRIPPED_REQUEST = frozenset({
    b"authorization", b"cookie", b"x-device-id", b"x-device-signature", b"x-approval-token",
    b"x-riskgate-assertion", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
    b"x-real-ip", b"forwarded", b"x-request-id", b"x-client-cert",
})
_STRIPPED_RESPONSE = HOP_BY_HOP | {b"server", b"date", b"x-request-id"}


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]  # lower-case names
    body: bytes


class UpstreamClient:
    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float,
                 pool_size: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

    async def reachable(self) -> bool:
        """Whether a TCP (or TLS) connection to the upstream opens within the connect timeout."""
        url = URL(self.base_url)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(url.host, url.port), self._timeout.sock_connect)
        except (TimeoutError, OSError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, method: str, path_qs: str, headers: list[tuple[str, str]],
                      body: bytes) -> UpstreamResponse:
        assert self._session is not None, "UpstreamClient.start() was not called"
        try:
            async with self._session.request(method, self.base_url + path_qs, headers=headers,
                                             data=body or None, allow_redirects=False) as resp:
                payload = await resp.read()
                out = [(k.lower(), v) for k, v in resp.raw_headers if k.lower() not in _STRIPPED_RESPONSE]
                return UpstreamResponse(resp.status, out, payload)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout() from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable() from exc

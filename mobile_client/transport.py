"""How the reference client reaches the gateway: any async ``send``.

``AiohttpTransport`` talks over real sockets; ``HttpxTransport`` wraps an
``httpx.AsyncClient`` (tests use it with ``httpx.ASGITransport`` to call the
app in-process).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import orjson

__all__ = ["AiohttpTransport", "ApiResponse", "HttpxTransport", "Transport"]


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float = 0.0
    request: tuple[str, str, dict[str, str], bytes] = field(default=("", "", {}, b""), repr=False)

    def json(self) -> object:
        return orjson.loads(self.body) if self.body else None

    @property
    def error(self) -> str | None:
        try:
            doc = self.json()
        except orjson.JSONDecodeError:
            return None
        return doc.get("error") if isinstance(doc, dict) else None


class Transport(Protocol):
    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> ApiResponse: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    def __init__(self, *, timeout: float = 30.0, ssl: object = None) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        if self._session is None:
            self._session = self._aiohttp.ClientSession(timeout=self._timeout)
        start = time.perf_counter()
        kwargs: dict[str, object] = {"headers": headers, "data": body or None}
        if self._ssl is not None:
            kwargs["ssl"] = self._ssl
        async with self._session.request(method, url, **kwargs) as resp:
            payload = await resp.read()
            return ApiResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, payload,
                               (time.perf_counter() - start) * 1000, (method, url, dict(headers), body))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HttpxTransport:
    def __init__(self, client: object) -> None:
        self._client = client

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        start = time.perf_counter()
        resp = await self._client.request(method, url, headers=headers, content=body or None)  # type: ignore[attr-defined]
        return ApiResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, resp.content,
                           (time.perf_counter() - start) * 1000, (method, url, dict(headers), body))

    async def close(self) -> None:
        await self._client.aclose()  # type: ignore[attr-defined]

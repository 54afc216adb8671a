"""Console fixtures: the real gateway (real Redis) with analysts who enrolled a
software passkey and hold a console session, driven over httpx in-process."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from gateway.console.analysts import AnalystStore, Role, create_with_link
from mobile_client.soft_authenticator import SoftAuthenticator
from tests.gateway.conftest import gateway_factory  # noqa: F401 - the fixture, re-used here

ORIGIN = "http://localhost:8080"  # the default stepup.origins; RP ID localhost
_CSRF_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Analyst:
    name: str
    http: httpx.AsyncClient
    authenticator: SoftAuthenticator = field(default_factory=SoftAuthenticator)
    csrf: str = ""

    async def refresh_csrf(self) -> str:
        page = await self.http.get("/console/decisions")
        assert page.status_code == 200, page.text
        self.csrf = _CSRF_RE.search(page.text).group(1)
        return self.csrf

    async def post(self, path: str, data: dict | None = None, *, csrf: bool = True) -> httpx.Response:
        body = dict(data or {})
        headers = {"x-csrf-token": self.csrf} if csrf else {}
        return await self.http.post(path, json=body, headers=headers)

    async def enrol(self, token: str) -> httpx.Response:
        begun = await self.http.post("/console/enrol/begin", json={"token": token})
        assert begun.status_code == 200, begun.text
        response = self.authenticator.create(begun.json()["publicKey"], ORIGIN)
        return await self.http.post("/console/enrol/complete", json={
            "token": token, "ceremony": begun.json()["ceremony"], "response": response})

    async def sign_in(self, name: str | None = None) -> httpx.Response:
        begun = await self.http.post("/console/login/begin", json={"name": name or self.name})
        if begun.status_code != 200:
            return begun
        response = self.authenticator.get(begun.json()["publicKey"], ORIGIN)
        return await self.http.post("/console/login/complete", json={
            "ceremony": begun.json()["ceremony"], "response": response})


@dataclass
class Console:
    gw: object
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def http(self, base_url: str = ORIGIN) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.gw.app), base_url=base_url)
        self.clients.append(client)
        return client

    async def link(self, name: str, role: Role) -> str:
        return await create_with_link(AnalystStore(self.gw.services.redis), name, role, now=time.time())

    async def analyst(self, name: str, role: Role, *, base_url: str = ORIGIN) -> Analyst:
        """An analyst who enrolled a passkey through their link and is signed in."""
        who = Analyst(name, self.http(base_url))
        done = await who.enrol(await self.link(name, role))
        assert done.status_code == 200, done.text
        await who.refresh_csrf()
        return who


@pytest.fixture
async def console(gateway_factory) -> AsyncIterator[Console]:  # noqa: F811
    gw = await gateway_factory()
    c = Console(gw)
    yield c
    for client in c.clients:
        await client.aclose()

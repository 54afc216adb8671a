"""Admin API fixtures: the console fixtures (the real gateway on the real Redis, analysts
who enrolled a software passkey and are signed in), and a client that calls /admin/api
with the session cookie and the CSRF token learnt from GET /admin/api/session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from gateway.console.analysts import Role
from tests.console.conftest import Analyst, Console, console  # noqa: F401 - the fixture, re-used here
from tests.gateway.conftest import gateway_factory  # noqa: F401 - needed by the console fixture

API = "/admin/api"


@dataclass
class ApiUser:
    """A signed-in analyst calling the admin API."""

    analyst: Analyst
    csrf: str = ""

    @property
    def name(self) -> str:
        return self.analyst.name

    @property
    def http(self) -> httpx.AsyncClient:
        return self.analyst.http

    async def learn_csrf(self) -> str:
        session = await self.http.get(f"{API}/session")
        assert session.status_code == 200, session.text
        self.csrf = session.json()["csrf"]
        return self.csrf

    async def call(self, method: str, path: str, body: object = None, *, csrf: str | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """``method`` on /admin/api``path``; unsafe methods send the session's CSRF token
        unless ``csrf`` says otherwise ("" sends none)."""
        sent = dict(headers or {})
        token = self.csrf if csrf is None else csrf
        if method not in ("GET", "HEAD") and token:
            sent["x-csrf-token"] = token
        return await self.http.request(method, API + path, json=body, headers=sent)


Signer = Callable[[str, Role], Awaitable[ApiUser]]


@pytest.fixture
def signed_in(console) -> Signer:  # noqa: F811
    async def make(name: str, role: Role) -> ApiUser:
        user = ApiUser(await console.analyst(name, role))
        await user.learn_csrf()
        return user
    return make

"""Upstream fixtures: a real JWKS server on 127.0.0.1, real ES256 keys, the
upstream app in-process over httpx.ASGITransport with its lifespan running."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from banking_upstream import (
    CLEARING_ACCOUNT,
    DEMO_CUSTOMERS,
    OPENING_ACCOUNT,
    Ledger,
    UpstreamConfig,
    create_upstream_app,
    seed_demo,
)
from tests.banking_upstream.upstream_kit import JwksServer, Minter, new_key, transfer_txn


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    try:
        yield server
    finally:
        await runner.cleanup()


@dataclass
class Upstream:
    app: Any
    client: httpx.AsyncClient
    ledger: Ledger
    minter: Minter
    jwks: JwksServer
    config: UpstreamConfig

    async def get(self, path: str, *, token: str | None = None, sub: str = "alice") -> httpx.Response:
        headers = {"X-Riskgate-Assertion": token or self.minter.token(sub)}
        return await self.client.get(path, headers=headers)

    async def transfer(self, body: dict, *, key: str | None = None, token: str | None = None,
                       sub: str = "alice") -> httpx.Response:
        if token is None:
            token = self.minter.token(sub, transfer_txn(body))
        headers = {"X-Riskgate-Assertion": token, "Idempotency-Key": key or secrets.token_hex(8)}
        return await self.client.post("/v1/transfers", content=orjson.dumps(body), headers=headers)

    def snapshot(self) -> tuple:
        """Everything a refused request must leave untouched."""
        ids = [OPENING_ACCOUNT, CLEARING_ACCOUNT]
        for user in DEMO_CUSTOMERS:
            ids += [a.account_id for a in self.ledger.accounts(user)]
        payees = {user: self.ledger.payees(user) for user in DEMO_CUSTOMERS}
        return ({a: self.ledger.balance(a) for a in ids}, self.ledger.transfer_count(), payees)


@pytest.fixture
async def upstream_factory(jwks_server: JwksServer, tmp_path: Path):
    """Build (and tear down) upstreams over one seeded ledger file."""
    db = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(str(db))
    seed_demo(ledger)
    ledger.close()
    key = new_key("gw-1")
    jwks_server.keys.append(key)

    @contextlib.asynccontextmanager
    async def make(**config: Any) -> AsyncIterator[Upstream]:
        cfg = UpstreamConfig(db_path=str(db), jwks_url=jwks_server.url, **config)
        app = create_upstream_app(cfg)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://upstream") as client:
                yield Upstream(app, client, app.state.services.ledger, Minter(key), jwks_server, cfg)

    return make


@pytest.fixture
async def upstream(upstream_factory) -> AsyncIterator[Upstream]:
    async with upstream_factory() as up:
        yield up

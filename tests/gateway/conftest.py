"""Gateway fixtures: the real app on the real Redis, called in-process.

``gateway`` builds the gateway's services against the session Redis and
serves the app through ``httpx.ASGITransport``; ``enrolled`` gives a client
whose device is registered and logged in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.app import build_services, close_services, create_app
from gateway.config import Config, load_config
from gateway.services import Services
from mobile_client import HttpxTransport, MobileClient
from risk_engine import RiskStateUnavailable, Rule, RuleEffect, RuleMode, RuleSet

PASSWORD = "a long enough password"


@dataclass
class GatewayHarness:
    config: Config
    services: Services
    app: object
    clients: list[MobileClient]

    def client(self, **kwargs: object) -> MobileClient:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gateway")
        client = MobileClient("http://gateway", HttpxTransport(http), **kwargs)  # type: ignore[arg-type]
        self.clients.append(client)
        return client

    async def enrolled(self, user_id: str = "alice", password: str = PASSWORD) -> MobileClient:
        if not await self.services.users.exists(user_id):
            await self.services.users.create(user_id, password, time.time())
        client = self.client()
        assert (await client.register_device(user_id, password)).status == 201
        assert (await client.login(password)).status == 200
        return client


def make_config(redis_url: str, data_dir: Path, **sections: dict[str, object]) -> Config:
    overrides: dict[str, dict[str, object]] = {
        "redis": {"url": redis_url},
        "server": {"data_dir": str(data_dir)},
        "upstream": {"url": "http://127.0.0.1:9"},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_config(None, env={}, overrides=overrides)


async def publish_quiet_rules(services: Services) -> None:
    """An empty analyst rule set (one shadow rule that never hits): tests of authentication
    and limits then do not depend on the hour (the default pack's night-time rules) or
    on the user's history."""
    quiet = Rule("tests_quiet", "false", RuleEffect.TAG, "tests run without analyst rules",
                 mode=RuleMode.SHADOW, tag="tests")
    await services.risk.rule_store.publish(RuleSet((quiet,)), author="tests",
                                           reason="no analyst rules", now=time.time())


@pytest.fixture
async def gateway_factory(redis, redis_url: str, tmp_path: Path
                          ) -> AsyncIterator[Callable[..., object]]:
    harnesses: list[GatewayHarness] = []

    async def make(rules: str = "none", **sections: dict[str, object]) -> GatewayHarness:
        """``rules="none"`` publishes an empty analyst rule set, so tests of
        authentication and limits do not depend on the hour or the user's
        history; ``rules="default"`` keeps the default pack."""
        config = make_config(redis_url, tmp_path / "gateway", **sections)
        services = await build_services(config)
        if rules == "none":
            with contextlib.suppress(RiskStateUnavailable):  # a test of Redis being down
                await publish_quiet_rules(services)
        harness = GatewayHarness(config, services, create_app(config, services=services), [])
        harnesses.append(harness)
        return harness

    yield make
    for harness in harnesses:
        for client in harness.clients:
            await client.transport.close()
        await close_services(harness.services)


@pytest.fixture
async def gateway(gateway_factory) -> GatewayHarness:
    return await gateway_factory()


class EchoUpstream:
    """A plain HTTP echo service on a real socket, for proxy mechanics only
    (headers, timeouts); business behaviour is tested against banking_upstream."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.delay = 0.0

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        import asyncio

        import orjson

        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        record = {"method": scope["method"], "path": scope["path"],
                  "query": scope["query_string"].decode(),
                  "headers": {k.decode(): v.decode() for k, v in scope["headers"]}, "body": body.decode()}
        self.requests.append(record)
        if self.delay:
            await asyncio.sleep(self.delay)
        payload = orjson.dumps({"echo": True, "path": scope["path"]})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"x-upstream", b"echo"),
                                (b"connection", b"keep-alive")]})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
async def echo_upstream() -> AsyncIterator[tuple[EchoUpstream, str]]:
    from gateway.servers import free_port, serving

    echo = EchoUpstream()
    port = free_port()
    async with serving(echo, port):
        yield echo, f"http://127.0.0.1:{port}"

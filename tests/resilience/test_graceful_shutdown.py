"""``riskgate serve`` gets SIGTERM while a transfer is with a slow upstream: the
transfer completes, the process exits cleanly, and no spend stays reserved."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
import time

import pytest

from banking_upstream import Ledger, UpstreamConfig, create_upstream_app, seed_demo
from bench.loadgen import start_server, stop_server
from gateway.app import build_services, close_services
from gateway.servers import free_port, serving
from limits import ReservationStore
from mobile_client import AiohttpTransport, MobileClient
from tests.gateway.conftest import PASSWORD, make_config
from tests.resilience.conftest import (
    ALICE_MAIN,
    BOB,
    FaultyUpstream,
    open_reservations,
    seed_gateway,
)

pytestmark = pytest.mark.slow


async def test_sigterm_lets_the_transfer_in_flight_finish_and_settle(redis, redis_url, tmp_path):
    gport, uport = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gport}"
    kek = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    config = make_config(redis_url, tmp_path / "gateway", upstream={"url": f"http://127.0.0.1:{uport}"},
                         assertion={"kek": kek})
    seeding = await build_services(config)
    await seed_gateway(seeding, time.time())
    await close_services(seeding)
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(str(ledger_path))
    seed_demo(ledger)
    seeded = ledger.transfer_count()
    ledger.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({"RISKGATE_REDIS_URL": redis_url, "RISKGATE_UPSTREAM_URL": config.upstream.url,
                "RISKGATE_ASSERTION_KEK": kek, "RISKGATE_SERVER_PORT": str(gport),
                "RISKGATE_SERVER_DATA_DIR": str(tmp_path / "gateway")})
    gateway = start_server([sys.executable, "-m", "gateway", "--log-level", "warning", "serve"],
                           gport, env=env)
    upstream = FaultyUpstream(create_upstream_app(UpstreamConfig(
        db_path=str(ledger_path), jwks_url=f"{gateway_url}/.well-known/jwks.json",
        issuer=config.assertion.issuer, audience=config.upstream.audience)))
    transport = AiohttpTransport()
    try:
        async with serving(upstream, uport):
            phone = MobileClient(gateway_url, transport)
            assert (await phone.register_device("alice", PASSWORD)).status == 201
            assert (await phone.login(PASSWORD)).status == 200
            # The upstream has the gateway's keys before this gateway stops listening
            # (in production its JWKS URL points at the load balancer, not at one process).
            assert (await phone.balance(ALICE_MAIN)).status == 200
            upstream.mode, upstream.delay = "slow", 1.5
            in_flight = asyncio.create_task(
                phone.transfer(ALICE_MAIN, BOB, "700.00", idempotency_key="shutdown-1"))
            while not upstream.in_flight and not in_flight.done():
                await asyncio.sleep(0.01)
            gateway.send_signal(signal.SIGTERM)
            done = await in_flight
            assert done.status == 201, done.body
            exit_code = await asyncio.to_thread(gateway.wait, 30)
            err = gateway.stderr.read().decode(errors="replace") if gateway.stderr else ""
            # uvicorn re-raises the signal once it has shut down cleanly.
            assert exit_code in (0, -signal.SIGTERM), err
            assert "Traceback" not in err
    finally:
        await transport.close()
        stop_server(gateway)

    ledger = Ledger.open(str(ledger_path))
    try:
        assert ledger.transfer_count() == seeded + 1
    finally:
        ledger.close()
    assert await open_reservations(redis) == 0
    spent = await ReservationStore(redis, config.limits.load()).spent("alice", now=time.time())
    assert spent.day == 700_00

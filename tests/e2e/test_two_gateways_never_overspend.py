"""Two riskgate processes on one Redis: 200 concurrent 10,000 CNY transfers from one
account with a 1,000,000 daily limit. The committed sum never exceeds the limit,
and the upstream ledger and the gateway's counters agree to the yuan."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
import time
from pathlib import Path

import orjson
import pytest

from banking_upstream import Ledger, seed_demo
from bench.loadgen import free_port, start_server, stop_server
from limits import LimitsConfig, ReservationStore
from mobile_client import AiohttpTransport, MobileClient
from risk_engine import Rule, RuleEffect, RuleMode, RuleSet, RuleStore

pytestmark = pytest.mark.slow

ADMIN = "admin-token-two-gateways-0123456789"
ACCOUNT, PAYEE = "6222020000000001", "6222020000000003"
PASSWORD = "two gateways, one redis"
LIMITS = """
[limits]
to_others_t4_daily = 5000000
large_transfer_notice_daily = 5000000
[limits.tiers]
T1 = { per_transaction = 10000, daily = 1000000 }
T2 = { per_transaction = 10000, daily = 1000000 }
T3 = { per_transaction = 50000, daily = 1000000 }
"""


async def test_two_gateway_processes_never_overspend(redis, redis_url, tmp_path: Path):
    await RuleStore(redis).publish(
        RuleSet((Rule("quiet", "false", RuleEffect.TAG, "no analyst rules", mode=RuleMode.SHADOW,
                      tag="t"),)), author="tests", reason="limits only", now=time.time())
    (tmp_path / "limits.toml").write_text(LIMITS)
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(str(ledger_path))
    seed_demo(ledger)
    before = ledger.account(ACCOUNT).balance  # type: ignore[union-attr]
    ledger.close()

    ports = [free_port(), free_port()]
    up_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({
        "RISKGATE_REDIS_URL": redis_url,
        "RISKGATE_UPSTREAM_URL": f"http://127.0.0.1:{up_port}",
        "RISKGATE_ASSERTION_KEK": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
        "RISKGATE_LIMITS_FILE": str(tmp_path / "limits.toml"),
        "RISKGATE_ADMIN_TOKEN": ADMIN,
        "RISKGATE_SERVER_DATA_DIR": str(tmp_path / "gateway"),
    })
    gateway = [sys.executable, "-m", "gateway", "--log-level", "warning"]
    procs = []
    try:
        for port in ports:
            procs.append(start_server([*gateway, "serve"], port, env={**env, "RISKGATE_SERVER_PORT": str(port)}))
        procs.append(start_server([*gateway, "upstream", "--port", str(up_port), "--db", str(ledger_path),
                                   "--jwks-url", f"http://127.0.0.1:{ports[0]}/.well-known/jwks.json"],
                                  up_port, env=env))
        transport = AiohttpTransport()
        try:
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            created = await transport.send("POST", f"{urls[0]}/admin/users", {
                "Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
                orjson.dumps({"user_id": "alice", "password": PASSWORD, "accounts": {ACCOUNT: "I"}}))
            assert created.status == 201, created.body
            first = MobileClient(urls[0], transport, encrypt=False)
            assert (await first.register_device("alice", PASSWORD)).status == 201
            assert (await first.login(PASSWORD)).status == 200
            second = MobileClient(urls[1], transport, device_key=first.device_key,
                                  device_id=first.device_id, encrypt=False)
            second.session_token = first.session_token

            async def transfer(i: int):
                phone = (first, second)[i % 2]
                return await phone.transfer(ACCOUNT, PAYEE, "10000.00", idempotency_key=f"two-{i}")

            results = await asyncio.gather(*(transfer(i) for i in range(200)))
        finally:
            await transport.close()
    finally:
        for proc in procs:
            stop_server(proc)

    statuses = [r.status for r in results]
    refused = {r.error for r in results if r.status != 201}
    assert statuses.count(201) == 100, (statuses.count(201), refused)
    assert refused == {"limit_exceeded"}
    spent = await ReservationStore(redis, LimitsConfig.from_dict(
        __import__("tomllib").loads(LIMITS)["limits"])).spent("alice", now=time.time())
    ledger = Ledger.open(str(ledger_path))
    after = ledger.account(ACCOUNT).balance  # type: ignore[union-attr]
    ledger.close()
    assert spent.day == 1_000_000 * 100
    assert before - after == spent.day  # the ledger and the counters agree to the fen

"""The demo journey through real sockets: uvicorn, aiohttp, the real upstream."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.servers import free_port

pytestmark = pytest.mark.slow


def test_riskgate_demo_once_exits_zero_and_prints_the_journey(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "--log-level", "warning", "demo", "--once",
         "--port", str(free_port()), "--upstream-port", str(free_port()),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "journey complete" in out
    assert "UNEXPECTED" not in out
    assert "refused: insufficient_user_authentication" in out
    assert "refused: device_nonce_replayed" in out
    assert "refused: assertion_missing" in out
    assert '"acr":"T1"' in out and '"amount":"500.00"' in out
    assert "Traceback" not in proc.stderr


@pytest.mark.asyncio
async def test_journey_moves_money_once_and_refusals_leave_no_trace(redis, redis_url, tmp_path):
    from gateway.demo import ALICE_MAIN, BOB_ACCOUNT, DEMO_PASSWORD, start_stack
    from mobile_client import AiohttpTransport, MobileClient

    stack = await start_stack(gateway_port=0, upstream_port=0, data_dir=tmp_path,
                              overrides={"redis": {"url": redis_url}})
    transport = AiohttpTransport()
    try:
        phone = MobileClient(stack.gateway_url, transport)
        assert (await phone.register_device("alice", DEMO_PASSWORD)).status == 201
        assert (await phone.login(DEMO_PASSWORD)).status == 200

        async def balances() -> tuple[str, str]:
            a = (await phone.balance(ALICE_MAIN)).json()["balance"]
            return a, "n/a"

        before, _ = await balances()
        ok = await phone.transfer(ALICE_MAIN, BOB_ACCOUNT, "500.00", idempotency_key="demo-1")
        assert ok.status == 201, ok.body
        after, _ = await balances()
        assert float(before) - float(after) == pytest.approx(500.0)

        refused = await phone.transfer(ALICE_MAIN, BOB_ACCOUNT, "20000.00")
        assert (refused.status, refused.error) == (401, "insufficient_user_authentication")
        replay = await phone.send(ok.request)
        assert (replay.status, replay.error) == (401, "device_nonce_replayed")
        # A fresh signature with the same idempotency key returns the first result.
        again = await phone.transfer(ALICE_MAIN, BOB_ACCOUNT, "500.00", idempotency_key="demo-1")
        assert again.status == 201 and again.json()["transfer_id"] == ok.json()["transfer_id"]
        assert (await balances())[0] == after

        direct = await transport.send("GET", f"{stack.upstream_url}/v1/accounts/{ALICE_MAIN}/balance", {}, b"")
        assert (direct.status, direct.error) == (401, "assertion_missing")
    finally:
        await transport.close()
        await stack.close()


def test_riskgate_demo_over_tls_runs_the_journey_against_its_own_ca(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "--log-level", "warning", "demo", "--once", "--tls",
         "--port", str(free_port()), "--upstream-port", str(free_port()),
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "riskgate demo: gateway https://127.0.0.1:" in out
    assert "journey complete" in out and "UNEXPECTED" not in out
    # The server certificate the demo made chains to the demo's CA, for localhost and 127.0.0.1.
    check = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "pki" / "demo-ca.pem"),
                            str(tmp_path / "pki" / "server.pem")], capture_output=True, text=True)
    assert check.returncode == 0 and "OK" in check.stdout, check.stdout + check.stderr
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "pki" / "server.pem"), "-noout",
                           "-ext", "subjectAltName"], capture_output=True, text=True).stdout
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text

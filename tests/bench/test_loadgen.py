"""Smoke tests for the benchmark harness: the bare proxy forwards faithfully, both
load engines measure real servers and never send a pre-built request twice."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.loadgen import (
    LoadResult,
    RequestPoolExhausted,
    RequestSpec,
    _parse_wrk,
    free_port,
    pool_factory,
    print_table,
    run_load,
    run_wrk,
    running,
    uvicorn_args,
    wrk_available,
)
from bench.procstat import cpu_seconds, process_tree

ROOT = Path(__file__).resolve().parents[2]
needs_wrk = pytest.mark.skipif(not wrk_available(), reason="wrk is not installed")


@dataclass(frozen=True)
class Stack:
    upstream_url: str
    proxy_url: str
    upstream_pid: int
    proxy_pid: int

    def stats(self) -> dict[str, int]:
        return httpx.get(self.upstream_url + "/_stats").json()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The selftest upstream and the bare proxy in front of it, as real processes."""
    up, px = free_port(), free_port()
    up_url = f"http://127.0.0.1:{up}"
    with running(uvicorn_args("bench.loadgen:create_selftest_upstream", up, factory=True),
                 up, cwd=ROOT) as upstream, \
         running([sys.executable, "-m", "bench.bare_proxy", "--upstream", up_url,
                  "--port", str(px)], px, cwd=ROOT) as proxy:
        yield Stack(up_url, f"http://127.0.0.1:{px}", upstream.pid, proxy.pid)


def _hello(tag: str, count: int) -> list[RequestSpec]:
    return [("GET", "/hello", {"X-Bench-Seq": f"{tag}-{i}"}, None) for i in range(count)]


@pytest.mark.slow
def test_bare_proxy_forwards_method_path_query_headers_and_body(stack: Stack) -> None:
    resp = httpx.post(
        stack.proxy_url + "/echo/accounts/a%2Fb?page=2&q=a%20b", content=b'{"amount": 50000}',
        headers={"X-Device-Signature": "sig", "Connection": "keep-alive, X-Drop-Me",
                 "X-Drop-Me": "hop", "Keep-Alive": "timeout=5", "TE": "trailers"},
    )
    assert resp.status_code == 200
    echoed = resp.json()
    assert echoed["method"] == "POST"
    assert echoed["raw_path"] == "/echo/accounts/a%2Fb"
    assert echoed["query"] == "page=2&q=a%20b"
    assert echoed["body"] == '{"amount": 50000}'
    sent = {k: v for k, v in echoed["headers"]}
    assert sent["x-device-signature"] == "sig"
    assert sent["host"] == stack.upstream_url.removeprefix("http://")
    for hop in ("x-drop-me", "keep-alive", "te"):
        assert hop not in sent
    # The upstream's own hop-by-hop headers do not come back to the client.
    assert resp.headers["x-upstream"] == "echo"
    assert "x-hop" not in resp.headers


@pytest.mark.slow
def test_bare_proxy_answers_502_when_the_upstream_is_down() -> None:
    px = free_port()
    with running([sys.executable, "-m", "bench.bare_proxy", "--upstream",
                  f"http://127.0.0.1:{free_port()}", "--port", str(px)], px, cwd=ROOT):
        resp = httpx.get(f"http://127.0.0.1:{px}/hello")
    assert resp.status_code == 502
    assert resp.json() == {"error": "upstream_unavailable"}


@pytest.mark.slow
async def test_asyncio_generator_measures_the_proxy_and_sends_each_request_once(
        stack: Stack) -> None:
    before = stack.stats()["distinct"]
    pool = _hello("async", 20_000)
    result = await run_load(pool_factory(stack.proxy_url, pool), connections=4, duration=1.0,
                            warmup=0.3, cpu_pids=[stack.proxy_pid, stack.upstream_pid])
    assert result.requests > 100 and result.errors == 0
    assert result.status_counts == {200: result.requests}
    assert result.rps == pytest.approx(result.requests / result.seconds)
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.cpu_ms_per_request is not None and result.cpu_ms_per_request > 0
    after = stack.stats()
    assert after["repeated"] == 0
    assert after["distinct"] - before >= result.requests  # warm-up requests count too


@pytest.mark.slow
async def test_asyncio_generator_stops_when_the_pool_runs_out(stack: Stack) -> None:
    with pytest.raises(RequestPoolExhausted):
        await run_load(pool_factory(stack.upstream_url, _hello("tiny", 5)), connections=2,
                       duration=1.0, warmup=0.0)


@pytest.mark.slow
async def test_error_statuses_are_counted_as_errors(stack: Stack) -> None:
    result = await run_load(lambda i: ("GET", stack.upstream_url + "/nowhere", {}, None),
                            connections=2, duration=0.5, warmup=0.0)
    assert result.requests > 0
    assert result.status_counts == {404: result.requests}
    assert result.errors == result.requests


@pytest.mark.slow
@needs_wrk
def test_wrk_measures_the_proxy_and_sends_each_request_once(stack: Stack) -> None:
    before = stack.stats()["distinct"]
    result = run_wrk(stack.proxy_url, _hello("wrk", 40_000), connections=8, duration=1,
                     warmup=1, cpu_pids=[stack.proxy_pid, stack.upstream_pid])
    assert result.requests > 100 and result.errors == 0
    assert set(result.status_counts) == {200}
    assert result.status_counts[200] >= result.requests
    assert 0 < result.p50_ms <= result.p99_ms
    assert result.cpu_ms_per_request is not None and result.cpu_ms_per_request > 0
    after = stack.stats()
    assert after["repeated"] == 0
    assert after["distinct"] - before >= result.requests


@pytest.mark.slow
@needs_wrk
def test_wrk_refuses_to_resend_requests_when_the_pool_runs_out(stack: Stack) -> None:
    with pytest.raises(RequestPoolExhausted):
        run_wrk(stack.upstream_url, _hello("wrk-tiny", 50), connections=4, duration=1, warmup=0)


def test_wrk_latency_distribution_is_parsed_in_milliseconds() -> None:
    output = """Running 10s test @ http://127.0.0.1:8080/
  2 threads and 32 connections
  Latency Distribution
     50%  850.00us
     75%    1.66ms
     90%    1.95ms
     99%    1.20s
  210357 requests in 10.00s, 30.09MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:  21035.70
BENCH last=210400 reused=0 statuses=200=210345,401=12
"""
    result = _parse_wrk(output, cpu_seconds_used=21.0357).result
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.requests == 210357 and result.seconds == 10.0
    assert result.errors == 15
    assert result.status_counts == {200: 210345, 401: 12}
    assert result.cpu_ms_per_request == pytest.approx(0.1, rel=1e-3)


def test_print_table_shows_ratios_against_the_baseline() -> None:
    base = LoadResult(1000, 0, 10.0, 100.0, 1.0, 2.0, {200: 1000}, 0.5)
    slower = LoadResult(450, 0, 10.0, 45.0, 2.0, 5.0, {200: 450}, 1.0)
    out = io.StringIO()
    print_table([("riskgate", slower), ("bare proxy", base)], baseline="bare proxy", file=out)
    lines = out.getvalue().splitlines()
    assert "req/s" in lines[0] and "CPU ms/req" in lines[0] and "ratio" in lines[0]
    assert lines[2].split()[:1] == ["riskgate"]
    assert "0.45" in lines[2] and "2.00" in lines[2]


def test_cpu_seconds_follow_a_busy_child_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.process_time()\n"
                              "while time.process_time()-t < 0.3: pass\ntime.sleep(30)"])
    try:
        assert child.pid in process_tree(os.getpid())
        deadline = time.monotonic() + 10
        while (busy := cpu_seconds([child.pid])) < 0.25:
            assert time.monotonic() < deadline, "the child's CPU never showed up"
            time.sleep(0.05)
        # Our own figure includes the child's (and any other live children's).
        me = os.getpid()
        assert cpu_seconds([me]) - cpu_seconds([me], children=False) >= busy
    finally:
        child.kill()
        child.wait()

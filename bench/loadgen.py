"""Load generation for the benchmarks: wrk when installed, else an asyncio generator.

Both engines take requests built before the timed run (each may carry its own
device signature and nonce, so none is ever sent twice), run a warm-up and then a
fixed-duration timed run at fixed concurrency, and return a ``LoadResult``. CPU
per request of the servers under test comes from /proc (see ``bench.procstat``).

``python -m bench.loadgen --selftest`` runs a trivial upstream and the bare proxy
in front of it and prints both side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from bench.procstat import cpu_seconds

__all__ = [
    "LoadResult",
    "RequestPoolExhausted",
    "RequestSpec",
    "WrkFailed",
    "create_selftest_upstream",
    "free_port",
    "pool_factory",
    "print_table",
    "run_benchmark",
    "run_load",
    "run_wrk",
    "running",
    "start_server",
    "stop_server",
    "uvicorn_args",
    "wrk_available",
]

# (method, path with query, headers, body): one request, built before the run.
RequestSpec = tuple[str, str, Mapping[str, str], bytes | None]
# What a make_request factory returns: the same with a full URL instead of a path.
RequestFactory = Callable[[int], tuple[str, str, Mapping[str, str], bytes | None]]


class RequestPoolExhausted(RuntimeError):
    """The run needed more pre-built requests than it was given."""

    code = "request_pool_exhausted"


class WrkFailed(RuntimeError):
    """wrk exited with an error or printed output we cannot read."""

    code = "wrk_failed"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """One timed run. ``requests`` counts responses of any status completed in
    the timed window; ``errors`` counts transport failures plus responses with
    status >= 400 (as wrk does); a run with errors is not a valid measurement."""

    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    status_counts: Mapping[int, int]
    cpu_ms_per_request: float | None = None  # servers' CPU, when pids were given
    # CPU of the first of those pids alone (the server under test, without its upstream).
    lead_cpu_ms_per_request: float | None = None


# ---------------------------------------------------------------- asyncio engine

def pool_factory(url_base: str, requests: Sequence[RequestSpec]) -> RequestFactory:
    """A ``make_request`` that hands out each pre-built request once, in order."""
    base = url_base.rstrip("/")

    def make_request(i: int) -> tuple[str, str, Mapping[str, str], bytes | None]:
        if i >= len(requests):
            raise RequestPoolExhausted(
                f"all {len(requests)} pre-built requests were used; build more for this rate")
        method, path, headers, body = requests[i]
        return method, base + path, headers, body

    return make_request


def _percentile_ms(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000


async def run_load(make_request: RequestFactory, *, connections: int, duration: float,
                   warmup: float = 1.0, cpu_pids: Iterable[int] = (),
                   timeout: float = 30.0, rate: float | None = None) -> LoadResult:
    """Drive ``connections`` concurrent keep-alive connections for ``warmup`` then
    ``duration`` seconds; only responses completed in the timed window count.

    With ``rate`` (requests per second) the load is open-loop: request ``i`` is
    due at ``start + i / rate`` and its latency counts from that moment, so a
    server that falls behind is charged for the queueing it causes (no
    coordinated omission). ``connections`` must then cover the concurrency the
    rate needs.

    ``make_request(i)`` returns ``(method, url, headers, body)`` for the i-th request
    (0, 1, 2 ... across warm-up and timed run). Exceptions it raises end the run.
    """
    pids = list(cpu_pids)
    counter = itertools.count()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    failures = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start, window_end = start + warmup, start + warmup + duration
    cpu_marks: list[float] = []
    lead_marks: list[float] = []

    async def mark_cpu() -> None:
        for moment in (window_start, window_end):
            await asyncio.sleep(max(0.0, moment - loop.time()))
            cpu_marks.append(cpu_seconds(pids) if pids else 0.0)
            lead_marks.append(cpu_seconds(pids[:1]) if pids else 0.0)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while loop.time() < window_end:
            i = next(counter)
            method, url, headers, body = make_request(i)
            if rate is not None:
                due = start + i / rate
                if due >= window_end:
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                sent = due
            else:
                sent = loop.time()
            try:
                async with session.request(method, url, headers=headers, data=body,
                                           allow_redirects=False) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = None
            done = loop.time()
            if window_start <= done <= window_end:
                if status is None:
                    failures += 1
                else:
                    statuses[status] += 1
                    latencies.append(done - sent)

    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=timeout),
        auto_decompress=False, skip_auto_headers=("User-Agent", "Accept-Encoding"),
    ) as session:
        marker = asyncio.create_task(mark_cpu())
        workers = [asyncio.create_task(worker(session)) for _ in range(connections)]
        try:
            await asyncio.gather(*workers)
            await marker
        finally:
            for task in [*workers, marker]:
                task.cancel()

    latencies.sort()
    completed = sum(statuses.values())
    bad = failures + sum(n for code, n in statuses.items() if code >= 400)
    measured = pids and completed and len(cpu_marks) == 2
    cpu = (cpu_marks[1] - cpu_marks[0]) * 1000 / completed if measured else None
    lead = (lead_marks[1] - lead_marks[0]) * 1000 / completed if measured else None
    return LoadResult(
        requests=completed, errors=bad, seconds=duration, rps=completed / duration,
        p50_ms=_percentile_ms(latencies, 50), p99_ms=_percentile_ms(latencies, 99),
        status_counts=dict(sorted(statuses.items())), cpu_ms_per_request=cpu,
        lead_cpu_ms_per_request=lead,
    )


# -------------------------------------------------------------------- wrk engine

def wrk_available() -> bool:
    return shutil.which("wrk") is not None


# Each wrk thread has its own Lua state: thread k (1..T) takes requests k, k+T,
# k+2T ... of the data file, so no request goes out twice across threads. The file
# is netstring-like ("<len>:<bytes>") so bodies and headers need no escaping.
_WRK_SCRIPT = r"""
local threads, counter = {}, 1
local data_path, nthreads, offset = %(path)s, %(threads)d, %(offset)d

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local fh = assert(io.open(data_path, "rb"))
  local s = fh:read("*a")
  fh:close()
  local pos = 1
  local function field()
    local colon = string.find(s, ":", pos, true)
    local n = tonumber(string.sub(s, pos, colon - 1))
    local value = string.sub(s, colon + 1, colon + n)
    pos = colon + n + 1
    return value
  end
  reqs = {}
  local n = 0
  while pos <= #s do
    local method, path = field(), field()
    local headers = {}
    for _ = 1, tonumber(field()) do
      local k = field()
      headers[k] = field()
    end
    local body = field()
    if body == "" then body = nil end
    n = n + 1
    reqs[n] = wrk.format(method, path, headers, body)
  end
  total, issued, reused, last = n, 0, 0, 0
  statuses = {}
end

function request()
  local index = offset + id + issued * nthreads
  issued = issued + 1
  if index > total then
    reused = reused + 1
    index = (index - 1) %% total + 1
  else
    last = index
  end
  return reqs[index]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local last_index, reuse_count, counts = 0, 0, {}
  for _, thread in ipairs(threads) do
    last_index = math.max(last_index, thread:get("last"))
    reuse_count = reuse_count + thread:get("reused")
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do table.insert(parts, status .. "=" .. n) end
  io.write(string.format("BENCH last=%%d reused=%%d statuses=%%s\n",
                         last_index, reuse_count, table.concat(parts, ",")))
end
"""

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_RE_PCT = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RE_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_RE_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_RE_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RE_BENCH = re.compile(r"^BENCH last=(\d+) reused=(\d+) statuses=(\S*)$", re.M)


def _netstring(value: str | bytes) -> bytes:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return str(len(raw)).encode() + b":" + raw


def _write_requests(path: Path, requests: Sequence[RequestSpec]) -> None:
    with open(path, "wb") as fh:
        for method, target, headers, body in requests:
            parts = [_netstring(method), _netstring(target), _netstring(str(len(headers)))]
            for name, value in headers.items():
                parts += [_netstring(name), _netstring(value)]
            parts.append(_netstring(body or b""))
            fh.write(b"".join(parts))


@dataclass(frozen=True, slots=True)
class _WrkRun:
    result: LoadResult
    last_index: int  # 1-based index of the last pre-built request sent
    reused: int


def _parse_wrk(output: str, cpu_seconds_used: float | None,
               lead_cpu_seconds_used: float | None = None) -> _WrkRun:
    total, marks = _RE_TOTAL.search(output), _RE_BENCH.search(output)
    percentiles = {int(q): float(v) * _UNIT_MS[u] for q, v, u in _RE_PCT.findall(output)}
    if total is None or marks is None or not {50, 99} <= percentiles.keys():
        raise WrkFailed(f"unexpected wrk output:\n{output}")
    completed = int(total.group(1))
    seconds = float(total.group(2)) * _UNIT_MS[total.group(3)] / 1000
    socket_errors = sum(int(x) for x in m.groups()) if (m := _RE_SOCKET.search(output)) else 0
    non2xx = int(m.group(1)) if (m := _RE_NON2XX.search(output)) else 0
    statuses = {int(s): int(n) for s, _, n in
                (pair.partition("=") for pair in marks.group(3).split(",") if pair)}
    return _WrkRun(
        result=LoadResult(
            requests=completed, errors=socket_errors + non2xx, seconds=seconds,
            rps=completed / seconds if seconds else 0.0,
            p50_ms=percentiles[50], p99_ms=percentiles[99],
            status_counts=dict(sorted(statuses.items())),
            cpu_ms_per_request=(cpu_seconds_used * 1000 / completed
                                if cpu_seconds_used is not None and completed else None),
            lead_cpu_ms_per_request=(lead_cpu_seconds_used * 1000 / completed
                                     if lead_cpu_seconds_used is not None and completed else None),
        ),
        last_index=int(marks.group(1)), reused=int(marks.group(2)),
    )


def run_wrk(url_base: str, requests: Sequence[RequestSpec], connections: int, duration: float,
            *, warmup: float = 1.0, threads: int = 2, cpu_pids: Iterable[int] = (),
            allow_reuse: bool = False, timeout: float = 10.0) -> LoadResult:
    """Run wrk (``--latency``) over the pre-built ``requests``, each sent at most once.

    The warm-up is a separate wrk run over the head of the list; the timed run
    continues after the last request the warm-up sent. Raises
    ``RequestPoolExhausted`` when the list ran out (unless ``allow_reuse``, for
    requests that may be repeated) and ``WrkFailed`` when wrk fails.
    """
    if not wrk_available():
        raise WrkFailed("wrk is not on PATH")
    if not requests:
        raise RequestPoolExhausted("no requests were given")
    pids = list(cpu_pids)
    threads = max(1, min(threads, connections))
    with tempfile.TemporaryDirectory(prefix="riskgate-wrk-") as tmp:
        data = Path(tmp) / "requests.bin"
        _write_requests(data, requests)

        def wrk(seconds: float, offset: int) -> _WrkRun:
            script = Path(tmp) / f"run-{offset}.lua"
            script.write_text(_WRK_SCRIPT % {
                "path": '"' + str(data).replace("\\", "\\\\").replace('"', '\\"') + '"',
                "threads": threads, "offset": offset,
            })
            before = cpu_seconds(pids) if pids else None
            lead_before = cpu_seconds(pids[:1]) if pids else None
            proc = subprocess.run(
                ["wrk", "--latency", "-t", str(threads), "-c", str(connections),
                 "-d", f"{max(1, round(seconds))}s", "--timeout", f"{max(1, round(timeout))}s",
                 "-s", str(script), url_base.rstrip("/") + "/"],
                capture_output=True, text=True, timeout=seconds + timeout + 60, check=False,
            )
            used = cpu_seconds(pids) - before if before is not None else None
            lead_used = cpu_seconds(pids[:1]) - lead_before if lead_before is not None else None
            if proc.returncode != 0:
                raise WrkFailed(f"wrk exited {proc.returncode}: {proc.stderr or proc.stdout}")
            run = _parse_wrk(proc.stdout, used, lead_used)
            if run.reused and not allow_reuse:
                raise RequestPoolExhausted(
                    f"wrk needed {run.reused} more requests than the {len(requests)} given "
                    f"(offset {offset}); build more for this rate")
            return run

        offset = 0
        if warmup > 0:
            warm = wrk(warmup, 0)
            offset = warm.last_index % len(requests) if allow_reuse else warm.last_index
        timed = wrk(duration, offset)
    return timed.result


# ------------------------------------------------------------- choosing an engine

def run_benchmark(url_base: str, requests: Sequence[RequestSpec], *, connections: int,
                  duration: float, warmup: float = 1.0, cpu_pids: Iterable[int] = (),
                  engine: str = "auto", rate: float | None = None) -> LoadResult:
    """Blocking: wrk when installed (``engine="auto"``), else the asyncio generator.
    A fixed ``rate`` (open loop) always uses the asyncio generator.

    Call it from synchronous code with the servers in other processes.
    """
    pids = list(cpu_pids)
    if rate is not None:
        return asyncio.run(run_load(pool_factory(url_base, requests), connections=connections,
                                    duration=duration, warmup=warmup, cpu_pids=pids, rate=rate))
    if engine == "wrk" or (engine == "auto" and wrk_available()):
        return run_wrk(url_base, requests, connections, duration, warmup=warmup, cpu_pids=pids)
    if engine not in ("auto", "asyncio"):
        raise ValueError(f"unknown engine {engine!r}; use auto, wrk or asyncio")
    return asyncio.run(run_load(pool_factory(url_base, requests), connections=connections,
                                duration=duration, warmup=warmup, cpu_pids=pids))


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def print_table(rows: Sequence[tuple[str, LoadResult]], *, baseline: str | None = None,
                file: TextIO | None = None) -> None:
    """Print one line per ``(name, result)``; ratios are against ``baseline``
    (a row name; the first row when omitted)."""
    out = file or sys.stdout
    base = dict(rows)[baseline] if baseline else rows[0][1]
    header = (f"{'name':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}"
              f"{'req/s ratio':>13}{'CPU ratio':>11}{'requests':>10}{'errors':>8}")
    print(header, file=out)
    print("-" * len(header), file=out)
    for name, r in rows:
        rps_ratio = r.rps / base.rps if base.rps else None
        cpu_ratio = (r.cpu_ms_per_request / base.cpu_ms_per_request
                     if r.cpu_ms_per_request and base.cpu_ms_per_request else None)
        print(f"{name:<24}{_fmt(r.rps, 0):>10}{_fmt(r.p50_ms, 2):>9}{_fmt(r.p99_ms, 2):>9}"
              f"{_fmt(r.cpu_ms_per_request, 3):>12}{_fmt(rps_ratio, 2):>13}"
              f"{_fmt(cpu_ratio, 2):>11}{r.requests:>10,}{r.errors:>8,}", file=out)


# ------------------------------------------------------------- server processes

def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS reports free right now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server(args: Sequence[str], port: int, *, host: str = "127.0.0.1",
                 env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                 ready_timeout: float = 20.0) -> subprocess.Popen[bytes]:
    """Start ``args`` (e.g. ``[sys.executable, "-m", "uvicorn", ...]``) and return once
    ``host:port`` accepts connections; the process is stopped if it never does."""
    proc = subprocess.Popen(list(args), env=dict(env) if env is not None else None, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{err}")
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.2):
                return proc
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(args)} did not listen on {host}:{port}")
            time.sleep(0.05)
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()


@contextlib.contextmanager
def running(args: Sequence[str], port: int, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """``start_server`` for the length of a with-block; always stopped."""
    proc = start_server(args, port, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        stop_server(proc)


def uvicorn_args(app: str, port: int, *, factory: bool = False) -> list[str]:
    """The command line every benchmarked server uses: one worker, httptools, uvloop."""
    args = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--http", "httptools", "--loop", "uvloop", "--no-access-log",
            "--log-level", "warning"]
    return args + ["--factory"] if factory else args


# ----------------------------------------------------------------------- selftest

def create_selftest_upstream():  # noqa: ANN201 - keeps Starlette out of import time
    """A trivial upstream: ``GET /hello`` answers JSON and remembers each
    ``X-Bench-Seq`` it saw; ``GET /_stats`` reports how many repeated; ``/echo``
    reflects the request (for proxy tests)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: set[str] = set()
    repeats = Counter[str]()

    async def hello(request: Request) -> JSONResponse:
        if (seq := request.headers.get("x-bench-seq")) is not None:
            if seq in seen:
                repeats["n"] += 1
            seen.add(seq)
        return JSONResponse({"hello": "world", "balance_fen": 123_456})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"distinct": len(seen), "repeated": repeats["n"]})

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({
            "method": request.method, "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")]
                        for k, v in request.scope["headers"]],
            "body": (await request.body()).decode("latin-1"),
        }, headers={"X-Upstream": "echo", "Connection": "keep-alive, X-Hop",
                    "X-Hop": "must-not-pass"})

    return Starlette(routes=[
        Route("/hello", hello), Route("/_stats", stats),
        Route("/echo/{rest:path}", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ])


def _selftest_requests(tag: str, count: int) -> list[RequestSpec]:
    return [("GET", "/hello", {"X-Bench-Seq": f"{tag}-{i}"}, None) for i in range(count)]


def _fetch_stats(url_base: str) -> dict[str, int]:
    import json
    import urllib.request

    with urllib.request.urlopen(url_base + "/_stats", timeout=5) as resp:
        return json.loads(resp.read())


def selftest(*, connections: int, duration: float, warmup: float, engine: str,
             max_rate: int) -> None:
    """Upstream alone, then the bare proxy in front of it, printed side by side."""
    root = Path(__file__).resolve().parent.parent
    up_port, proxy_port = free_port(), free_port()
    upstream_url, proxy_url = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{proxy_port}"
    pool = int(max_rate * (warmup + duration)) + 1000
    use_wrk = engine == "wrk" or (engine == "auto" and wrk_available())
    print(f"engine: {'wrk' if use_wrk else 'asyncio'}; {connections} connections, "
          f"{warmup:g} s warm-up + {duration:g} s timed; {pool:,} pre-built requests per target")
    with running(uvicorn_args("bench.loadgen:create_selftest_upstream", up_port, factory=True),
                 up_port, cwd=root) as upstream, \
         running([sys.executable, "-m", "bench.bare_proxy", "--upstream", upstream_url,
                  "--port", str(proxy_port)], proxy_port, cwd=root) as proxy:
        rows = []
        for name, url, pids, tag in (("upstream", upstream_url, [upstream.pid], "u"),
                                     ("bare proxy", proxy_url, [proxy.pid, upstream.pid], "p")):
            result = run_benchmark(url, _selftest_requests(tag, pool), connections=connections,
                                   duration=duration, warmup=warmup, cpu_pids=pids,
                                   engine="wrk" if use_wrk else "asyncio")
            rows.append((name, result))
        stats = _fetch_stats(upstream_url)
    print_table(rows)
    print("CPU ms/req counts every server process behind the load "
          "(bare proxy row = proxy + upstream).")
    print(f"upstream saw {stats['distinct']:,} distinct requests, "
          f"{stats['repeated']} sent more than once.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--selftest", action="store_true", required=True,
                        help="benchmark a trivial upstream and the bare proxy in front of it")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--engine", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--max-rate", type=int, default=40_000,
                        help="req/s to pre-build requests for (default 40000)")
    args = parser.parse_args(argv)
    selftest(connections=args.connections, duration=args.duration, warmup=args.warmup,
             engine=args.engine, max_rate=args.max_rate)


if __name__ == "__main__":
    main()

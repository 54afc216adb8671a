"""One "gateway process" for the concurrency tests: many concurrent transfers from one account.

Run as ``python tests/limits/spend_worker.py '<json job>'``. Each transfer
reserves, calls the "upstream" (writes the ledger row in a shared SQLite file,
or fails), then commits or releases, exactly as pipeline steps 7-9 do. Some
transfers are retried by the client under the same idempotency key. Prints a
JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from limits import AccountClass, LimitExceeded, LimitsConfig, ReservationStore, Tier


def connect(spec: dict):
    if "cluster" in spec:
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in spec["cluster"]])
    return aioredis.Redis(unix_socket_path=spec["unix"])


async def main(job: dict) -> dict:
    client = connect(job["redis"])
    if isinstance(client, RedisCluster):
        # A gateway learns the slot map at startup, before it takes traffic; a
        # cold client hit by 100 first calls at once reinitialises under them.
        await client.initialize()
    store = ReservationStore(client, LimitsConfig())
    ledger = sqlite3.connect(job["ledger"], timeout=30, isolation_level=None)
    rng = random.Random(job["seed"])
    outcome = {"committed": 0, "refused": 0, "failed": 0}
    amount = job["amount_cny"] * 100
    start = asyncio.Event()

    async def transfer(i: int) -> None:
        key = f"{job['prefix']}-{i}"
        await start.wait()
        try:
            await store.reserve(job["user"], amount, idempotency_key=key, tier=Tier(job["tier"]),
                                account_class=AccountClass.I, now=job["now"], to_others=True,
                                notice_confirmed=True)
            if i % 5 == 0:  # the client retried before the answer came: counted once
                await store.reserve(job["user"], amount, idempotency_key=key,
                                    tier=Tier(job["tier"]), account_class=AccountClass.I,
                                    now=job["now"], to_others=True, notice_confirmed=True)
        except LimitExceeded:
            outcome["refused"] += 1
            return
        await asyncio.sleep(rng.random() * 0.02)  # the upstream at work
        if i % job["fail_every"] == 0:
            await store.release(job["user"], key, now=job["now"])
            outcome["failed"] += 1
            return
        ledger.execute("INSERT INTO ledger (key, amount) VALUES (?, ?)", (key, amount))
        await store.commit(job["user"], key, now=job["now"])
        outcome["committed"] += 1

    tasks = [asyncio.create_task(transfer(i)) for i in range(job["n"])]
    await asyncio.sleep(0.05)
    start.set()
    await asyncio.gather(*tasks)
    await client.aclose()
    ledger.close()
    return outcome


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))

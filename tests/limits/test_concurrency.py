"""Never overspend: concurrent reservations from two processes, and every interleaving.

The committed sum never exceeds the limit, and the ledger, the reservation
records and the counters agree to the fen.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from limits import (
    AccountClass,
    LimitExceeded,
    LimitsConfig,
    ReservationCommitted,
    ReservationConflict,
    ReservationReleased,
    ReservationState,
    ReservationStore,
    ReservationUnknown,
    Tier,
)
from tests.limits.bank_time import at

CNY = 100
NOW = at(2026, 11, 22, 10)
ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("spend_worker.py")


async def run_two_gateways(redis_spec: dict, tmp_path: Path, user: str) -> tuple[list[dict], int]:
    """Two worker processes, 100 transfers of 10,000 CNY each; returns outcomes and ledger sum."""
    ledger = tmp_path / "ledger.sqlite"
    with sqlite3.connect(ledger) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE ledger (key TEXT PRIMARY KEY, amount INTEGER NOT NULL)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for n in range(2):
        job = {"redis": redis_spec, "user": user, "n": 100, "amount_cny": 10_000,
               "prefix": f"gw{n}", "fail_every": 9, "seed": n, "now": NOW,
               "tier": int(Tier.T4), "ledger": str(ledger)}
        procs.append(await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), json.dumps(job), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE))
    outcomes = []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
        outcomes.append(json.loads(out))
    with sqlite3.connect(ledger) as db:
        ledger_sum = db.execute("SELECT COALESCE(SUM(amount), 0) FROM ledger").fetchone()[0]
    return outcomes, ledger_sum


async def committed_in_records(client, user: str) -> int:
    total = 0
    async for key in client.scan_iter(match=f"{{u:{user}}}:lim:r:*"):
        record = orjson.loads(await client.get(key))
        assert record["state"] in ("committed", "released")  # nothing left dangling
        if record["state"] == "committed":
            total += int(record["amount"])
    return total


async def assert_agree(store, client, outcomes, ledger_sum, user):
    limit = 1_000_000 * CNY
    committed = sum(o["committed"] for o in outcomes) * 10_000 * CNY
    assert sum(o["refused"] for o in outcomes) > 0  # 2,000,000 asked against 1,000,000
    assert committed == ledger_sum <= limit
    assert await committed_in_records(client, user) == ledger_sum
    spent = await store.spent(user, now=NOW)
    assert spent.day == spent.year == spent.day_to_others == ledger_sum


@pytest.mark.slow
async def test_two_gateway_processes_never_overspend(redis, redis_server, store, tmp_path):
    outcomes, ledger_sum = await run_two_gateways(
        {"unix": redis_server.socket_file}, tmp_path, "acct-1")
    await assert_agree(store, redis, outcomes, ledger_sum, "acct-1")


async def test_many_concurrent_reservations_in_one_process(redis, redis_server, config):
    # 300 reservations of 3,000..9,000 CNY at once against a T4 day of 1,000,000, over a
    # bounded pool as the gateway uses (redis-py refuses past max_connections otherwise).
    pool = aioredis.BlockingConnectionPool(
        connection_class=aioredis.UnixDomainSocketConnection, path=redis_server.socket_file,
        max_connections=32, timeout=10)
    client = aioredis.Redis(connection_pool=pool)
    store = ReservationStore(client, config)
    amounts = [(3_000 + 1_000 * (i % 7)) * CNY for i in range(300)]

    async def one(i: int) -> int:
        try:
            await store.reserve("acct-2", amounts[i], idempotency_key=f"k{i}", tier=Tier.T4,
                                account_class=AccountClass.I, now=NOW)
        except LimitExceeded:
            return 0
        await store.commit("acct-2", f"k{i}", now=NOW)
        return amounts[i]

    spent_each = await asyncio.gather(*(one(i) for i in range(300)))
    total = sum(spent_each)
    assert total <= 1_000_000 * CNY
    assert total > 1_000_000 * CNY - 9_000 * CNY  # the day was filled, not starved
    assert (await store.spent("acct-2", now=NOW)).day == total
    await client.aclose()
    await pool.disconnect()


# --- every interleaving of the atomic operations, against a model -------------------------

KEYS = ["a", "b", "c", "d"]
AMOUNTS = {"a": 20_000 * CNY, "b": 15_000 * CNY, "c": 10_000 * CNY, "d": 25_000 * CNY}
DAILY = 50_000 * CNY  # T3
TTL = 120.0

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.sampled_from(KEYS)),
        st.tuples(st.just("conflict"), st.sampled_from(KEYS)),
        st.tuples(st.just("commit"), st.sampled_from(KEYS)),
        st.tuples(st.just("release"), st.sampled_from(KEYS)),
        st.tuples(st.just("advance"), st.sampled_from([1.0, 30.0, 119.0, 121.0])),
        st.tuples(st.just("reap"), st.none()),
    ),
    max_size=25,
)


async def play(socket_file: str, ops: list) -> None:
    client = aioredis.Redis(unix_socket_path=socket_file)
    try:
        await client.flushall()
        store = ReservationStore(client, LimitsConfig(reservation_ttl=TTL))
        model: dict[str, tuple[str, float]] = {}  # key -> (state, expires_at)
        now = NOW
        recounted = False

        def counted() -> int:
            return sum(AMOUNTS[k] for k, (s, _) in model.items() if s in ("reserved", "committed"))

        for op, arg in ops:
            if op == "advance":
                now += arg
            elif op == "reap":
                due = [k for k, (s, exp) in model.items() if s == "reserved" and exp <= now]
                assert await store.reap(now=now) == len(due)
                for k in due:
                    model[k] = ("expired", model[k][1])
            elif op == "reserve":
                state = model.get(arg, ("absent", 0))[0]
                try:
                    r = await store.reserve("m", AMOUNTS[arg], idempotency_key=arg, tier=Tier.T3,
                                            account_class=AccountClass.I, now=now)
                except LimitExceeded:
                    assert state not in ("reserved", "committed")
                    assert counted() + AMOUNTS[arg] > DAILY
                else:
                    if state in ("reserved", "committed"):
                        assert r.replayed and r.state.value == state
                    else:
                        assert counted() + AMOUNTS[arg] <= DAILY
                        model[arg] = ("reserved", now + TTL)
            elif op == "conflict":
                state = model.get(arg, ("absent", 0))[0]
                try:
                    await store.reserve("m", AMOUNTS[arg] + 1, idempotency_key=arg,
                                        tier=Tier.T3, account_class=AccountClass.I, now=now)
                except ReservationConflict:
                    assert state != "absent"
                except LimitExceeded:
                    assert state == "absent"
                else:
                    assert state == "absent"
                    model[arg] = ("reserved", now + TTL)
                    AMOUNTS[arg] += 1  # the key now holds this amount
            elif op == "commit":
                state, exp = model.get(arg, ("absent", 0))
                try:
                    r = await store.commit("m", arg, now=now)
                except ReservationUnknown:
                    assert state == "absent"
                except ReservationReleased:
                    assert state == "released"
                else:
                    assert state in ("reserved", "committed", "expired")
                    assert r.state is ReservationState.COMMITTED
                    recounted = recounted or state == "expired"
                    model[arg] = ("committed", exp)
            elif op == "release":
                state, exp = model.get(arg, ("absent", 0))
                try:
                    await store.release("m", arg, now=now)
                except ReservationUnknown:
                    assert state == "absent"
                except ReservationCommitted:
                    assert state == "committed"
                else:
                    if state == "reserved":
                        model[arg] = ("released", exp)
            spent = await store.spent("m", now=now)
            assert spent.day == spent.year == counted()
            committed = sum(AMOUNTS[k] for k, (s, _) in model.items() if s == "committed")
            if not recounted:  # only a commit after the reaper can pass the limit
                assert committed <= spent.day <= DAILY
    finally:
        AMOUNTS.update({"a": 20_000 * CNY, "b": 15_000 * CNY, "c": 10_000 * CNY,
                        "d": 25_000 * CNY})
        await client.aclose()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_every_interleaving_keeps_counters_and_records_in_agreement(redis_server, ops):
    asyncio.run(play(redis_server.socket_file, ops))

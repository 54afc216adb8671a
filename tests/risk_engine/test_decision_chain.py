"""The decision stream is hash-chained: changing, removing or cutting off decisions is
found, trimming old decisions is not mistaken for tampering, and writers never wait for
one another."""

from __future__ import annotations

import asyncio

import orjson

from risk_engine import DecisionEvent, record_decision, record_decisions, verify_decisions
from risk_engine.decision_chain import DecisionChain
from risk_engine.decisions import CHAIN_HEADS, CHAIN_STARTS, DECISION_STREAM, INDEX_TTL, _index_key

NOW = 1_790_000_000.0


def _event(i: int, amount: int = 100_00) -> DecisionEvent:
    return DecisionEvent(f"d{i}", NOW + i, "alice", "transfer", amount, {"amount_cny": amount / 100},
                         0.1, "low", (), 2, 2, "allowed", moves_money=True)


async def _entries(redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return await redis.xrange(DECISION_STREAM)


async def _rewrite(redis, change) -> None:  # noqa: ANN001
    """What someone with write access to Redis could do: rebuild the stream, same ids."""
    rows = await _entries(redis)
    await redis.delete(DECISION_STREAM)
    for rid, fields in rows:
        fields = change(rid, dict(fields))
        if fields is not None:
            await redis.xadd(DECISION_STREAM, fields, id=rid)


async def test_recorded_decisions_verify_and_a_changed_amount_is_named(redis):
    await record_decisions(redis, [_event(i) for i in range(5)])
    await record_decision(redis, _event(5))
    await record_decisions(redis, [_event(i) for i in range(6, 9)])
    result = await verify_decisions(redis)
    assert result.ok and (result.decisions, result.chains) == (9, 1), result

    def raise_amount(rid, fields):
        if orjson.loads(fields[b"e"])["decision_id"] == "d4":
            doc = orjson.loads(fields[b"e"])
            doc["amount_fen"] = 1_00
            fields[b"e"] = orjson.dumps(doc)
        return fields

    await _rewrite(redis, raise_amount)
    result = await verify_decisions(redis)
    assert not result.ok and result.first_broken_decision == "d4"
    assert result.problem == "its contents do not match its hash" and result.decisions == 4


async def test_a_removed_decision_and_a_cut_off_end_are_found(redis):
    ids = await record_decisions(redis, [_event(i) for i in range(6)])
    await redis.xdel(DECISION_STREAM, ids[2])
    result = await verify_decisions(redis)
    assert not result.ok and result.first_broken_decision == "d3"
    assert "does not follow the entry before it" in result.problem

    await redis.flushall()
    ids = await record_decisions(redis, [_event(i) for i in range(6)])
    await redis.xdel(DECISION_STREAM, ids[-1])
    result = await verify_decisions(redis)
    assert not result.ok and result.problem == "entries at the end of its chain are missing"

    await redis.flushall()
    ids = await record_decisions(redis, [_event(i) for i in range(6)])
    # the chain's first entry removed while an older entry is still kept: not trimming
    rows = await _entries(redis)
    await redis.delete(DECISION_STREAM)
    await redis.xadd(DECISION_STREAM, {"e": _event(99).to_json()}, id="1-0")
    for rid, fields in rows[1:]:
        await redis.xadd(DECISION_STREAM, fields, id=rid)
    result = await verify_decisions(redis)
    assert not result.ok and result.first_broken_decision == "d1", result


async def test_trimming_old_decisions_is_not_tampering(redis):
    await record_decisions(redis, [_event(i) for i in range(10)])
    await redis.xtrim(DECISION_STREAM, maxlen=4, approximate=False)
    result = await verify_decisions(redis)
    assert result.ok and result.decisions == 4 and result.trimmed_chains == 1, result
    await redis.xtrim(DECISION_STREAM, maxlen=0, approximate=False)
    await record_decisions(redis, [_event(20)])  # a new chain (new loop) after everything went
    assert (await verify_decisions(redis)).ok


async def test_entries_from_before_chaining_are_counted_and_an_unchained_insert_is_not(redis):
    await redis.xadd(DECISION_STREAM, {"e": _event(0).to_json()})
    await record_decisions(redis, [_event(1), _event(2)])
    result = await verify_decisions(redis)
    assert result.ok and (result.unchained, result.decisions) == (1, 2)
    await redis.xadd(DECISION_STREAM, {"e": _event(3).to_json()})
    result = await verify_decisions(redis)
    assert not result.ok and result.first_broken_decision == "d3"


async def test_writers_keep_their_own_chains_and_never_wait_for_one_another(redis):
    a, b = DecisionChain(), DecisionChain()

    async def write(chain: DecisionChain, base: int) -> None:
        for n in range(20):
            events = [_event(base + 3 * n + k) for k in range(3)]
            await chain.append(redis, DECISION_STREAM, CHAIN_HEADS, CHAIN_STARTS,
                               [_index_key(e.decision_id) for e in events], [e.to_json() for e in events],
                               maxlen=10_000, index_ttl=INDEX_TTL)

    await asyncio.gather(write(a, 0), write(b, 1000), write(a, 2000))
    result = await verify_decisions(redis)
    assert result.ok and (result.decisions, result.chains) == (180, 2), result


async def test_a_writer_whose_view_of_its_head_is_stale_rejoins_its_chain(redis):
    chain = DecisionChain()
    args = {"maxlen": 10_000, "index_ttl": INDEX_TTL}
    e1, e2 = _event(1), _event(2)
    await chain.append(redis, DECISION_STREAM, CHAIN_HEADS, CHAIN_STARTS, [_index_key("d1")],
                       [e1.to_json()], **args)
    chain._head = "f" * 64  # as after a write whose answer was lost
    await chain.append(redis, DECISION_STREAM, CHAIN_HEADS, CHAIN_STARTS, [_index_key("d2")],
                       [e2.to_json()], **args)
    assert (await verify_decisions(redis)).ok

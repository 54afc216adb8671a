"""The gateway's Redis client packs commands in C and bounds each call by one deadline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from gateway.redis_deadline import open_deadline_client

ARG = st.one_of(st.text(), st.binary(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                st.floats(allow_nan=False, allow_infinity=False))
NAME = st.sampled_from(["SET", "EVALSHA", b"HSET", "CONFIG GET", b"CLIENT SETNAME"])


@settings(max_examples=300, deadline=None)
@given(NAME, st.lists(ARG, max_size=12))
def test_commands_are_packed_byte_for_byte_like_redis_py_does(name, args):
    packed = open_deadline_client(url="redis://127.0.0.1:1").connection_pool.make_connection()
    reference = Connection(host="127.0.0.1", port=1)
    assert type(packed) is not Connection
    assert b"".join(packed.pack_command(name, *args)) == b"".join(reference.pack_command(name, *args))


def test_unpackable_arguments_are_refused_like_redis_py_does():
    packed = open_deadline_client(unix_socket_path="/nonexistent").connection_pool.make_connection()
    assert isinstance(packed, UnixDomainSocketConnection)
    for bad in (None, True, [1]):
        with pytest.raises(DataError):
            packed.pack_command("SET", "k", bad)


async def test_the_client_talks_to_a_real_redis(redis_url):
    client = open_deadline_client(url=redis_url, deadline=2.0)
    try:
        await client.set("rg:test:packing", "välue")
        assert await client.get("rg:test:packing") == "välue".encode()
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset("rg:test:h", mapping={"a": 1, "b": 0.25})
            pipe.hgetall("rg:test:h")
            pipe.delete("rg:test:h", "rg:test:packing")
            assert await pipe.execute() == [2, {b"a": b"1", b"b": b"0.25"}, 2]
    finally:
        await client.aclose()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(NAME, st.lists(ARG, max_size=6)), min_size=1, max_size=8))
def test_pipelines_are_packed_byte_for_byte_like_redis_py_does(commands):
    packed = open_deadline_client(url="redis://127.0.0.1:1").connection_pool.make_connection()
    reference = Connection(host="127.0.0.1", port=1)
    flat = [(name, *args) for name, args in commands]
    assert b"".join(packed.pack_commands(flat)) == b"".join(reference.pack_commands(flat))

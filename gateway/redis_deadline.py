"""The gateway's Redis client: one deadline per command or pipeline, hiredis packing.

redis-py's ``socket_timeout`` arms a timer for every socket write (a task of its
own, through ``asyncio.wait_for``) and one for every reply read: about thirteen
for the one pipelined round trip a signed request makes before forwarding. On
the request path that was a tenth of the gateway's CPU per transfer
(``bench/ab_gateways.py``). This client turns the per-socket timeout off and
arms one timer per command or per pipeline instead. A Redis that stops
answering still fails the call: after ``deadline`` seconds the call raises
redis-py's :class:`~redis.exceptions.TimeoutError` (a ``RedisError``, which the
edge answers with 503 ``state_unavailable``), and redis-py drops the connection
it was reading from, so the next call starts on a clean one.

Its connections also pack commands with ``hiredis.pack_command`` (C), as
redis-py's synchronous client does when hiredis is installed; the asyncio
client packs in Python, which was about a tenth of the gateway's CPU per
transfer in the profile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["DEFAULT_DEADLINE", "DeadlineRedis", "open_deadline_client"]

DEFAULT_DEADLINE = 5.0  # seconds; redis-py's own default socket timeout


async def _within(deadline: float, call: Awaitable[Any]) -> Any:
    """``call``, or redis-py's TimeoutError (a RedisError) once ``deadline`` s have passed."""
    try:
        async with asyncio.timeout(deadline):
            return await call
    except TimeoutError as exc:
        raise RedisTimeoutError(f"Redis did not answer within {deadline:g} s") from exc


class _HiredisPacking:
    """``pack_command`` in C: the same RESP bytes as redis-py's Python packer
    (redis-py's own ``HiredisRespSerializer``, which its asyncio client lacks)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [self._pack(args)]

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join([self._pack(tuple(c)) for c in commands])]

    @staticmethod
    def _pack(args: tuple[Any, ...]) -> bytes:
        first = args[0]
        if isinstance(first, str):
            args = tuple(first.encode().split()) + args[1:]
        elif b" " in first:
            args = tuple(first.split()) + args[1:]
        args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return hiredis.pack_command(args)
        except TypeError as exc:
            raise DataError(str(exc)) from exc


class _PackedConnection(_HiredisPacking, Connection):
    pass


class _PackedUnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


class _PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


_PACKED = {Connection: _PackedConnection, UnixDomainSocketConnection: _PackedUnixConnection,
           SSLConnection: _PackedSSLConnection}


class DeadlinePipeline(Pipeline):
    deadline: float = DEFAULT_DEADLINE

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return await _within(self.deadline, super().execute(raise_on_error))

    async def immediate_execute_command(self, *args: Any, **options: Any) -> Any:
        # WATCH and the reads between WATCH and MULTI
        return await _within(self.deadline, super().immediate_execute_command(*args, **options))


class DeadlineRedis(aioredis.Redis):
    deadline: float = DEFAULT_DEADLINE

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await _within(self.deadline, super().execute_command(*args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> DeadlinePipeline:
        pipe = DeadlinePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.deadline = self.deadline
        return pipe


def open_deadline_client(*, url: str = "", unix_socket_path: str = "",
                         deadline: float = DEFAULT_DEADLINE) -> DeadlineRedis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``) or a unix socket.
    A ``socket_timeout`` in the URL's query still applies, on top of the deadline."""
    options: dict[str, Any] = {"socket_timeout": None, "socket_connect_timeout": deadline}
    if url:
        client = DeadlineRedis.from_url(url, **options)
    else:
        client = DeadlineRedis(unix_socket_path=unix_socket_path, **options)
    client.deadline = deadline
    pool = client.connection_pool
    pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
    return client

"""Redis goes away under a running gateway, then comes back on the same socket."""

from __future__ import annotations

import time

import pytest

from tests.gateway.conftest import PASSWORD
from tests.resilience.conftest import ALICE_MAIN, BOB, running_stack

pytestmark = pytest.mark.slow


async def test_money_fails_closed_while_redis_is_down_and_flows_again_when_it_returns(
        private_redis, tmp_path):
    async with running_stack(private_redis.url, tmp_path) as stack:
        phone = await stack.phone(encrypt=False)
        before = stack.transfers()

        private_redis.stop()
        refused = await phone.transfer(ALICE_MAIN, BOB, "100.00", idempotency_key="while-down")
        assert (refused.status, refused.error) == (503, "state_unavailable")
        assert int(refused.headers["retry-after"]) >= 1
        assert stack.transfers() == before
        assert stack.upstream.statuses == []

        # Reads are refused the same way: a session cannot be checked without Redis.
        read = await phone.balance(ALICE_MAIN)
        assert (read.status, read.error) == (503, "state_unavailable")
        assert "retry-after" in read.headers
        ready = await stack.transport.send("GET", f"{stack.gateway_url}/readyz", {}, b"")
        assert (ready.status, ready.json()["status"]) == (503, "redis_unavailable")
        alive = await stack.transport.send("GET", f"{stack.gateway_url}/healthz", {}, b"")
        assert alive.status == 200  # not a reason to restart the process
        login = await phone.login(PASSWORD)
        assert (login.status, login.error) == (503, "state_unavailable")

        private_redis.start()  # same socket, same data directory
        ready = await stack.transport.send("GET", f"{stack.gateway_url}/readyz", {}, b"")
        assert ready.status == 200
        ok = await phone.transfer(ALICE_MAIN, BOB, "100.00", idempotency_key="after-return")
        assert ok.status == 201, ok.body
        assert stack.transfers() == before + 1
        limits = await phone.call("GET", "/auth/limits")
        assert limits.json()["spent"]["today"] == "100.00"


async def test_encrypted_transfer_while_redis_is_down_says_when_to_retry(private_redis, tmp_path):
    async with running_stack(private_redis.url, tmp_path) as stack:
        phone = await stack.phone()  # JWE bodies, the mobile client's default
        private_redis.stop()
        refused = await phone.transfer(ALICE_MAIN, BOB, "100.00")
        assert (refused.status, refused.error) == (503, "state_unavailable")
        assert stack.upstream.statuses == []
        assert "retry-after" in refused.headers


async def test_a_redis_that_stops_answering_fails_money_closed_within_the_deadline(
        private_redis, tmp_path):
    """SIGSTOP: the socket stays open and nothing answers. Each call gives up after
    redis.timeout, the request is refused with 503, and the gateway carries on when
    the server does."""
    async with running_stack(private_redis.url, tmp_path, redis={"timeout": 0.5}) as stack:
        phone = await stack.phone(encrypt=False)
        before = stack.transfers()
        private_redis.pause()
        try:
            started = time.monotonic()
            refused = await phone.transfer(ALICE_MAIN, BOB, "100.00", idempotency_key="while-stalled")
            took = time.monotonic() - started
            assert (refused.status, refused.error) == (503, "state_unavailable")
            assert "retry-after" in refused.headers
            assert took < 5.0, took  # one deadline (0.5 s), not redis-py's 5 s per read
            read = await phone.balance(ALICE_MAIN)
            assert (read.status, read.error) == (503, "state_unavailable")
            assert stack.transfers() == before and stack.upstream.statuses == []
        finally:
            private_redis.resume()
        ok = await phone.transfer(ALICE_MAIN, BOB, "100.00", idempotency_key="after-resume")
        assert ok.status == 201, ok.body
        assert stack.transfers() == before + 1
        limits = await phone.call("GET", "/auth/limits")
        assert limits.json()["spent"]["today"] == "100.00"  # the refused one left no spend

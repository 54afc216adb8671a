"""`riskgate keys rotate` while 50 signed reads and transfers are in flight: every
request succeeds and the upstream accepts every assertion, old kid or new, also
when the upstream rate-limits its JWKS refetches (the new key is published
``assertion.key_publish_ahead`` seconds before it signs)."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.resilience.conftest import ALICE_MAIN, BOB, running_stack

pytestmark = pytest.mark.slow


async def rotate_with_cli(stack) -> str:  # noqa: ANN001 - Stack
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({"RISKGATE_REDIS_URL": stack.config.redis.url,
                "RISKGATE_SERVER_DATA_DIR": str(stack.config.data_path),
                "RISKGATE_ASSERTION_KEY_PUBLISH_AHEAD": str(stack.config.assertion.key_publish_ahead)})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "--log-level", "warning", "keys", "rotate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture(params=[
    # (the upstream's minimum interval between JWKS refetches, the gateway's publish-ahead)
    pytest.param((0.0, 0.0), id="upstream-may-refetch-at-once"),
    pytest.param((3.0, 4.0), id="upstream-refetch-rate-limited"),
])
async def stack(request, redis, redis_url, tmp_path):  # noqa: ANN001, ANN201
    refetch, ahead = request.param
    async with running_stack(redis_url, tmp_path, assertion={"key_publish_ahead": ahead},
                             upstream_options={"jwks_min_refetch_interval": refetch}) as s:
        yield s


async def test_rotating_the_signing_key_under_load_fails_no_request(stack):
    phone = await stack.phone()
    assert (await phone.balance(ALICE_MAIN)).status == 200  # the upstream has the keys
    first_kid = (await stack.services.keys.current(0)).kid
    before = stack.transfers()

    async def one(i: int):  # noqa: ANN202
        await asyncio.sleep(0.02 * i)  # spread over the rotation
        if i % 2:
            return await phone.balance(ALICE_MAIN)
        return await phone.transfer(ALICE_MAIN, BOB, "10.00", idempotency_key=f"rot-{i}")

    load = asyncio.gather(*(one(i) for i in range(50)))
    await asyncio.sleep(0.3)
    printed = await rotate_with_cli(stack)
    results = await load
    # A second wave, all signed with the new key once every process has refreshed.
    await asyncio.sleep(stack.config.assertion.key_publish_ahead + stack.config.assertion.key_refresh_interval)
    results += await asyncio.gather(*(one(i) for i in range(50, 60)))

    failed = [(r.status, r.body) for r in results if r.status >= 300]
    assert failed == []
    assert stack.transfers() == before + 30
    assert "new signing key" in printed
    new_kid = (await stack.services.keys.current(float("inf"))).kid
    assert new_kid != first_kid and new_kid in printed
    # The upstream saw both keys and accepted every assertion.
    assert {first_kid, new_kid} <= set(stack.upstream.kids)
    assert all(s < 300 for s in stack.upstream.statuses)

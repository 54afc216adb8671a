"""Fuzz fixtures: one gateway (admin and carrier APIs on) and a raw HTTP client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.gateway.conftest import gateway_factory  # noqa: F401 - re-exported fixture
from tests.gateway.device_flows import CARRIER_TOKEN
from tests.gateway.stepup_flows import ADMIN_TOKEN, customer


@pytest.fixture
async def gw(gateway_factory):  # noqa: ANN001, ANN201, F811 - a GatewayHarness
    """One gateway for all the examples of a test (Redis is flushed per test, not per example)."""
    # Lockouts stay out of reach, so that every example reaches the parsers.
    return await gateway_factory(admin={"token": ADMIN_TOKEN}, device={"carrier_token": CARRIER_TOKEN},
                                 login={"max_failures": 100}, stepup={"tool_max_failures": 100})


@pytest.fixture
async def http(gw) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    """A raw client: it sends whatever bytes and headers a test gives it."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app),
                                 base_url="http://gateway") as client:
        yield client


@pytest.fixture
async def alice(gw):  # noqa: ANN001, ANN201 - a MobileClient
    """A logged-in customer on a bound device, with a reserved phone and a class I account."""
    return await customer(gw, "alice")

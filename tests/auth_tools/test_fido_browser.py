"""FIDO2 end to end in Chromium with its CDP virtual authenticator.

A real uvicorn on 127.0.0.1 serves tests/auth_tools/fido_page.py; the page
(origin http://localhost:PORT, RP ID ``localhost``) calls
navigator.credentials.create/get with our options and posts the responses
back. Needs Debian's ``chromium`` and the ``playwright`` package (never
``playwright install``); skipped with a message when they are missing.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import uvicorn

from auth_tools.fido import FidoConfig
from tests.auth_tools.fido_page import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
TXN_A = {"action": "transfer", "amount": 30_000_000, "from": "6222000011112222",
         "payee": "6222000099998888"}
TXN_B = {**TXN_A, "amount": 30_000_100}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def site(redis_url: str) -> AsyncIterator[tuple[object, str]]:
    """Chromium (headless) and the test relying party on uvicorn; both stopped at the end."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium not installed: apt-get install -y chromium (CI installs it)")
    playwright_api = pytest.importorskip("playwright.async_api",
                                         reason="pip install playwright (never `playwright install`)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    origin = f"http://localhost:{port}"
    app = create_app(FidoConfig("localhost", "Riskgate test bank", (origin,)), redis_url,
                     prefix=f"fidotest-{uuid.uuid4().hex[:8]}")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    playwright = None
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        playwright = await playwright_api.async_playwright().start()
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_FLAGS)
        try:
            yield browser, origin
        finally:
            await browser.close()
    finally:
        if playwright is not None:
            await playwright.stop()
        server.should_exit = True
        await serving
        sock.close()


class Device:
    """One browser page with one virtual authenticator attached over CDP."""

    def __init__(self, page, cdp, authenticator_id: str) -> None:
        self.page, self.cdp, self.authenticator_id = page, cdp, authenticator_id

    async def register(self, user: str) -> dict:
        return await self.page.evaluate("(u) => fidoRegister(u)", user)

    async def assertion(self, user: str, challenge_id: str, txn: dict,
                        override: dict | None = None) -> dict:
        return await self.page.evaluate("([u, c, t, o]) => fidoAssert(u, c, t, o)",
                                        [user, challenge_id, txn, override])

    async def complete(self, user: str, challenge_id: str, response: dict) -> dict:
        return await self.page.evaluate("([u, c, r]) => fidoComplete(u, c, r)",
                                        [user, challenge_id, response])

    async def approve(self, user: str, challenge_id: str, txn: dict) -> dict:
        got = await self.assertion(user, challenge_id, txn)
        assert "response" in got, got
        return await self.complete(user, challenge_id, got["response"])

    async def set_user_verified(self, verified: bool) -> None:
        await self.cdp.send("WebAuthn.setUserVerified",
                            {"authenticatorId": self.authenticator_id, "isUserVerified": verified})

    async def credentials(self) -> list[dict]:
        got = await self.cdp.send("WebAuthn.getCredentials",
                                  {"authenticatorId": self.authenticator_id})
        return got["credentials"]


@pytest.fixture
async def device_factory(site):
    browser, origin = site
    contexts = []

    async def make(**options) -> Device:
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        await page.goto(origin + "/")
        cdp = await context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable", {"enableUI": False})
        authenticator = {"protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "usb",
                         "hasResidentKey": True, "hasUserVerification": True,
                         "isUserVerified": True, "automaticPresenceSimulation": True} | options
        added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": authenticator})
        return Device(page, cdp, added["authenticatorId"])

    yield make
    for context in contexts:
        await context.close()


def user() -> str:
    return uuid.uuid4().hex[:12]


async def test_register_and_approve_with_uv_reaches_t4(device_factory) -> None:
    device, alice = await device_factory(), user()
    registered = await device.register(alice)
    credential = registered["credential"]
    assert credential["backup_eligible"] is False and credential["uv_initialized"] is True
    assert credential["transports"] == ["usb"]
    # No MDS loaded: the virtual key's packed attestation is kept but proves no model.
    assert credential["attestation_format"] == "packed" and not credential["attestation_trusted"]

    approved = await device.approve(alice, "ch-a", TXN_A)
    assert approved["max_tier"] == 4 and approved["amr"] == ["hwk", "user"], approved
    assert approved["uv"] is True and approved["be"] is False
    assert approved["new_sign_count"] > credential["sign_count"]


async def test_synced_passkey_is_capped_at_t3(device_factory) -> None:
    device = await device_factory(transport="internal", defaultBackupEligibility=True,
                                  defaultBackupState=True)
    bob = user()
    credential = (await device.register(bob))["credential"]
    assert credential["backup_eligible"] is True and credential["backup_state"] is True
    approved = await device.approve(bob, "ch-s", TXN_A)
    assert approved["max_tier"] == 3 and approved["amr"] == ["swk", "user"], approved


async def test_user_not_verified(device_factory) -> None:
    device, carol = await device_factory(), user()
    assert "credential" in await device.register(carol)
    await device.set_user_verified(False)
    # The page asks for UV (required): the browser refuses outright.
    refused = await device.assertion(carol, "ch-u1", TXN_A)
    assert refused == {"browser_error": "NotAllowedError"}
    # A tampering script downgrades the request: the assertion lacks UV and we refuse it.
    got = await device.assertion(carol, "ch-u2", TXN_A, {"userVerification": "discouraged"})
    answer = await device.complete(carol, "ch-u2", got["response"])
    assert answer["error"] == "fido_user_verification_missing", answer


async def test_assertion_for_one_transaction_is_refused_for_another(device_factory) -> None:
    device, dave = await device_factory(), user()
    await device.register(dave)
    for_a = await device.assertion(dave, "ch-a", TXN_A)
    # The same user is asked to approve transaction B; the A assertion is posted instead.
    begun_b = await device.assertion(dave, "ch-b", TXN_B)
    answer = await device.complete(dave, "ch-b", for_a["response"])
    assert answer["error"] == "fido_challenge_mismatch", answer
    # B's own assertion is fine only until its state was consumed by the failed attempt.
    assert (await device.complete(dave, "ch-b", begun_b["response"]))["error"] == "challenge_expired"


async def test_replayed_assertion_is_refused(device_factory) -> None:
    device, erin = await device_factory(), user()
    await device.register(erin)
    got = await device.assertion(erin, "ch-r1", TXN_A)
    assert (await device.complete(erin, "ch-r1", got["response"]))["max_tier"] == 4
    # Same challenge again: its state was deleted on use.
    again = await device.complete(erin, "ch-r1", got["response"])
    assert again["error"] == "challenge_expired", again
    # A new challenge for the same transaction: the old assertion does not answer it.
    await device.assertion(erin, "ch-r2", TXN_A)
    replay = await device.complete(erin, "ch-r2", got["response"])
    assert replay["error"] == "fido_challenge_mismatch", replay


async def test_cloned_authenticator_sign_counter_regression(device_factory) -> None:
    original, frank = await device_factory(), user()
    await original.register(frank)
    [exported] = await original.credentials()  # private key and counter, as a cloner would
    assert exported["signCount"] == 1
    for i in range(3):
        assert (await original.approve(frank, f"ch-{i}", TXN_A))["max_tier"] == 4

    clone = await device_factory()
    await clone.cdp.send("WebAuthn.addCredential", {
        "authenticatorId": clone.authenticator_id,
        "credential": exported})  # the clone still says signCount 1
    answer = await clone.approve(frank, "ch-clone", TXN_A)
    assert answer["error"] == "fido_sign_count_regression", answer
    # The flag was persisted: the genuine key is refused too until re-registration.
    refused = await original.assertion(frank, "ch-after", TXN_A)
    assert refused["error"] == "not_enrolled", refused

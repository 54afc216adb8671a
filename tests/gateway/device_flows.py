"""Journeys for the device-recognition tests, over the gateway's HTTP API.

Nothing here reaches into the gateway except to seed what the bank sets (the
reserved phone, accounts) and to read the dev SMS outbox.
"""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import HttpxTransport, MobileClient
from mobile_client.transport import ApiResponse

PASSWORD = "a long enough password"
SOURCE = "6222020000000001"
PAYEE = "6217000000004321"
PHONE = "+8613800138000"
CARRIER_TOKEN = "carrier-token-for-tests-0123456789"
_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6})")


def client_at(harness, ip: str = "127.0.0.1", **kwargs: object) -> MobileClient:
    """A client whose requests come from ``ip`` (the ASGI scope's client address)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app, client=(ip, 50_000)),
                             base_url="http://gateway")
    client = MobileClient("http://gateway", HttpxTransport(http), **kwargs)  # type: ignore[arg-type]
    harness.clients.append(client)
    return client


def move(harness, client: MobileClient, ip: str) -> None:
    """The same phone, now on another network."""
    moved = client_at(harness, ip)
    client.transport = moved.transport


async def first_device(harness, user_id: str = "alice", ip: str = "127.0.0.1",
                       **kwargs: object) -> tuple[MobileClient, ApiResponse]:
    """A customer (reserved phone, a class I account) with their first device, logged in."""
    svc = harness.services
    if not await svc.users.exists(user_id):
        await svc.users.create(user_id, PASSWORD, time.time())
        await set_reserved_phone(svc, user_id, PHONE, time.time())
        await svc.accounts.set(user_id, {SOURCE: AccountClass.I})
    client = client_at(harness, ip, **kwargs)
    registered = await client.register_device(user_id, PASSWORD)
    assert registered.status == 201, registered.json()
    assert (await client.login(PASSWORD)).status == 200
    return client, registered


def sms_code(harness) -> str:
    text = harness.services.sms_sender.last_text(PHONE)
    assert text, "no text message was sent"
    match = _CODE_RE.search(text)
    assert match, text
    return match.group(1)


async def run_tool(client: MobileClient, challenge_id: str, tool: str, answer) -> ApiResponse:  # noqa: ANN001
    begun = await client.call("POST", f"/auth/challenges/{challenge_id}/{tool}/begin", {})
    if begun.status != 200:
        return begun
    return await client.call("POST", f"/auth/challenges/{challenge_id}/{tool}/complete", answer())


async def approve_pwd_sms(harness, client: MobileClient, challenge_id: str) -> str:
    """Password + SMS to the reserved phone (T2): the default device-change step-up."""
    pwd = await run_tool(client, challenge_id, "pwd", lambda: {"password": PASSWORD})
    assert pwd.status == 200 and pwd.json()["status"] == "pending", pwd.json()
    sms = await run_tool(client, challenge_id, "sms", lambda: {"code": sms_code(harness)})
    assert sms.status == 200 and sms.json()["status"] == "approved", sms.json()
    return sms.json()["approval_token"]


async def approve_sms_armor(harness, client: MobileClient, challenge_id: str) -> str:
    done = await run_tool(client, challenge_id, "sms_armor", lambda: {"code": sms_code(harness)})
    assert done.status == 200 and done.json()["status"] == "approved", done.json()
    return done.json()["approval_token"]


async def new_bound_device(harness, user_id: str = "alice", **kwargs: object) -> MobileClient:
    """Another phone of the customer, registered, logged in and bound through the step-up."""
    phone = client_at(harness, **kwargs)
    assert (await phone.register_device(user_id, PASSWORD)).json()["status"] == "pending"
    login = await phone.login(PASSWORD)
    token = await approve_pwd_sms(harness, phone, login.json()["binding"]["challenge_id"])
    bound = await phone.bind_device(token)
    assert bound.status == 200, bound.json()
    return phone


async def transfer(client: MobileClient, amount: str, *, approval: str | None = None) -> ApiResponse:
    headers = {"Idempotency-Key": f"t-{time.monotonic_ns()}", "X-Large-Transfer-Notice": "confirmed"}
    if approval:
        headers["X-Approval-Token"] = approval
    body = {"from_account": SOURCE, "payee_account": PAYEE, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body, headers=headers)


async def settle_background(harness) -> None:
    """Wait for the decision-stream and history writes that follow each response."""
    while harness.services.background:
        await asyncio.gather(*list(harness.services.background))


async def carrier_report(harness, body: dict, token: str | None = CARRIER_TOKEN) -> ApiResponse:
    import orjson

    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    http = harness.client().transport
    return await http.send("POST", "http://gateway/carrier/sim-swaps", headers, orjson.dumps(body))

"""Test journeys over the gateway's HTTP API shared by the certificate, biometric and FIDO tests.

Nothing here talks to the gateway's internals except to seed what the bank
would set (reserved phone, account classes) and to read the dev SMS outbox.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import MobileClient
from mobile_client.transport import ApiResponse

SOURCE = "6222020000000001"
PAYEE_A = "6217000000004321"
PAYEE_B = "6217000000009999"
PHONE = "+8613800138000"
ADMIN_TOKEN = "admin-token-for-tests-0123456789"
_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6})")

Answer = Callable[[dict], Awaitable[dict] | dict]


async def customer(harness, user_id: str = "alice") -> MobileClient:
    """A logged-in client on a bound device, with a reserved phone and a class I account."""
    client = await harness.enrolled(user_id)
    svc = harness.services
    await set_reserved_phone(svc, user_id, PHONE, time.time())
    await svc.accounts.set(user_id, {SOURCE: AccountClass.I})
    return client


async def transfer(client: MobileClient, amount: str, payee: str = PAYEE_A, *,
                   approval: str | None = None, idem: str | None = None) -> ApiResponse:
    headers = {"Idempotency-Key": idem or f"t-{time.monotonic_ns()}", "X-Large-Transfer-Notice": "confirmed"}
    if approval:
        headers["X-Approval-Token"] = approval
    body = {"from_account": SOURCE, "payee_account": payee, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body, headers=headers)


def challenge_of(resp: ApiResponse) -> dict:
    doc = resp.json()
    assert resp.status == 401 and doc["error"] == "insufficient_user_authentication", (resp.status, doc)
    return doc


async def begin(client: MobileClient, challenge_id: str, tool: str, body: dict | None = None) -> ApiResponse:
    return await client.call("POST", f"/auth/challenges/{challenge_id}/{tool}/begin", body or {})


async def complete(client: MobileClient, challenge_id: str, tool: str, body: dict) -> ApiResponse:
    return await client.call("POST", f"/auth/challenges/{challenge_id}/{tool}/complete", body)


async def run_tool(client: MobileClient, challenge_id: str, tool: str, answer: Answer,
                   begin_body: dict | None = None) -> ApiResponse:
    begun = await begin(client, challenge_id, tool, begin_body)
    assert begun.status == 200, (begun.status, begun.json())
    body = answer(begun.json())
    if not isinstance(body, dict):
        body = await body
    return await complete(client, challenge_id, tool, body)


def sms_code(harness) -> str:
    text = harness.services.sms_sender.last_text(PHONE)
    assert text, "no text message was sent"
    return _CODE_RE.search(text).group(1)


async def approve_with_sms_armor(client: MobileClient, harness, challenge_id: str) -> str:
    done = await run_tool(client, challenge_id, "sms_armor", lambda _o: {"code": sms_code(harness)})
    assert done.status == 200 and done.json()["status"] == "approved", done.json()
    return done.json()["approval_token"]


async def enrol(client: MobileClient, harness, tool: str, answer: Answer,
                begin_body: dict | None = None) -> ApiResponse:
    """Enrol ``tool`` over the API: step up with SMS armor (T3), then run the enrolment."""
    path = f"/auth/tools/{tool}/enrol/begin"
    first = await client.call("POST", path, begin_body or {})
    token = await approve_with_sms_armor(client, harness, challenge_of(first)["challenge_id"])
    begun = await client.call("POST", path, begin_body or {}, headers={"X-Approval-Token": token})
    assert begun.status == 200, (begun.status, begun.json())
    options = begun.json()
    body = answer(options)
    if not isinstance(body, dict):
        body = await body
    return await client.call("POST", f"/auth/tools/{tool}/enrol/complete",
                             {"enrolment_id": options["enrolment_id"], **body})


async def remove(client: MobileClient, harness, tool: str, cred_id: str) -> ApiResponse:
    path = f"/auth/tools/{tool}/{cred_id}"
    first = await client.call("DELETE", path)
    token = await approve_with_sms_armor(client, harness, challenge_of(first)["challenge_id"])
    return await client.call("DELETE", path, headers={"X-Approval-Token": token})


async def hold_hardware_key(harness, user_id: str = "alice") -> None:
    """The branch issues the customer a hardware key (as POST /admin/users/{id}/hardware-cert
    does), so T5 is within their reach and a T5 challenge is answered, not refused."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from auth_tools.certificate import CertificateProfile
    from gateway.stepup_cert import issue

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usb key")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    svc = harness.services
    tool = svc.stepup_tools["hardware_cert"]
    enrolled = await issue(svc, CertificateProfile.HARDWARE, csr, user_id=user_id, device_id="",
                           now=time.time(), describe=tool.describe)
    await svc.credentials.put(user_id, "hardware_cert", enrolled.cred_id, enrolled.doc)

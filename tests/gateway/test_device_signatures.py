"""Device-key signatures on proxied calls: each attack refused with its own code."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

pytestmark = pytest.mark.asyncio


async def test_signed_request_passes_checks_and_reaches_forwarding(gateway):
    phone = await gateway.enrolled()
    resp = await phone.accounts()
    # The configured upstream is a closed port: the request got past every
    # check and failed only at forwarding, as JSON.
    assert resp.status == 502
    assert resp.error == "upstream_unavailable"
    assert resp.headers["content-type"] == "application/json"


async def test_unsigned_request_refused(gateway):
    phone = await gateway.enrolled()
    method, url, headers, body = phone.build("GET", "/v1/accounts")
    del headers["X-Device-Signature"]
    resp = await phone.send((method, url, headers, body))
    assert (resp.status, resp.error) == (401, "device_signature_missing")


async def test_request_without_device_id_refused(gateway):
    phone = await gateway.enrolled()
    method, url, headers, body = phone.build("GET", "/v1/accounts")
    del headers["X-Device-Id"]
    resp = await phone.send((method, url, headers, body))
    assert (resp.status, resp.error) == (401, "device_signature_missing")


async def test_forged_signature_refused(gateway):
    phone = await gateway.enrolled()
    attacker_key = ec.generate_private_key(ec.SECP256R1())
    real_key = phone.device_key
    phone.device_key = attacker_key  # same device id and session, another key
    resp = await phone.accounts()
    phone.device_key = real_key
    assert (resp.status, resp.error) == (401, "device_signature_invalid")


async def test_body_changed_after_signing_refused(gateway):
    phone = await gateway.enrolled()
    method, url, headers, body = phone.build(
        "POST", "/v1/transfers",
        {"from_account": "6222020000000001", "payee_account": "6222020000000003",
         "amount": "10.00", "currency": "CNY"},
        headers={"Idempotency-Key": "k-1"})
    tampered = body.replace(b"10.00", b"99.00")
    resp = await phone.send((method, url, headers, tampered))
    assert (resp.status, resp.error) == (401, "device_signature_invalid")


async def test_replayed_request_refused(gateway):
    phone = await gateway.enrolled()
    first = await phone.accounts()
    assert first.status == 502  # passed the checks
    again = await phone.send(first.request)
    assert (again.status, again.error) == (401, "device_nonce_replayed")


@pytest.mark.parametrize("offset", [-121, 121, -3600])
async def test_stale_or_future_timestamp_refused(gateway, offset):
    phone = await gateway.enrolled()
    resp = await phone.send(phone.build("GET", "/v1/accounts", ts=int(time.time()) + offset))
    assert (resp.status, resp.error) == (401, "device_signature_stale")


async def test_timestamp_within_skew_accepted(gateway):
    phone = await gateway.enrolled()
    resp = await phone.send(phone.build("GET", "/v1/accounts", ts=int(time.time()) - 100))
    assert resp.status == 502  # past the device check


@pytest.mark.parametrize("header", [
    "v2; ts=1; nonce=AAAAAAAAAAAAAAAAAAAA; sig=x",
    "v1; ts=abc; nonce=AAAAAAAAAAAAAAAAAAAA; sig=" + "A" * 86,
    "v1; ts=1; nonce=short; sig=" + "A" * 86,
    "v1; ts=1; nonce=AAAAAAAAAAAAAAAAAAAA",
    "garbage",
])
async def test_malformed_signature_header_refused(gateway, header):
    phone = await gateway.enrolled()
    method, url, headers, body = phone.build("GET", "/v1/accounts")
    headers["X-Device-Signature"] = header
    resp = await phone.send((method, url, headers, body))
    assert (resp.status, resp.error) == (401, "device_signature_malformed")


async def test_unknown_device_refused(gateway):
    phone = await gateway.enrolled()
    phone.device_id = "alice.AAAAAAAAAAAAAAAAAAAAAA"
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (401, "device_unknown")


async def test_revoked_device_refused(gateway):
    phone = await gateway.enrolled()
    await gateway.services.devices.revoke(phone.device_id)
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (401, "device_revoked")


async def test_registration_needs_proof_of_possession(gateway):
    await gateway.services.users.create("bob", "bob's long password", time.time())
    phone = gateway.client()
    other = ec.generate_private_key(ec.SECP256R1())
    # The body names phone's public key but the signature is made with another key.
    from device_fingerprint.signature import public_key_to_jwk

    body = {"user_id": "bob", "password": "bob's long password",
            "public_key": public_key_to_jwk(phone.device_key.public_key()), "attributes": {}}
    real = phone.device_key
    phone.device_key = other
    request = phone.build("POST", "/devices", session=False, device_id="", json=None)
    phone.device_key = real
    import orjson

    method, url, headers, _ = request
    raw = orjson.dumps(body)
    from device_fingerprint.signature import sign_request

    headers["X-Device-Signature"] = sign_request(other, method="POST", path="/devices", query="",
                                                 body=raw, device_id="", ts=int(time.time()),
                                                 nonce="N" * 22)
    headers["Content-Type"] = "application/json"
    resp = await phone.send((method, url, headers, raw))
    assert (resp.status, resp.error) == (401, "device_signature_invalid")
    assert await gateway.services.devices.list("bob") == []


async def test_a_forged_transfer_changes_nothing_but_its_own_nonce(gateway):
    """The first round trip reads everything before the signature is checked; the
    only thing a forged request may leave behind is the nonce it burnt."""
    phone = await gateway.enrolled()
    redis = gateway.services.redis
    await _settled(gateway)
    before = {k: await redis.dump(k) for k in await redis.keys("{u:alice}:*")}
    real_key = phone.device_key
    phone.device_key = ec.generate_private_key(ec.SECP256R1())
    resp = await phone.transfer("6222020000000001", "6222020000000003", "10.00")
    phone.device_key = real_key
    assert (resp.status, resp.error) == (401, "device_signature_invalid")
    await _settled(gateway)
    after = {k: await redis.dump(k) for k in await redis.keys("{u:alice}:*")}
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert [k.decode().split(":")[2] for k in changed] == ["nonce"], changed


async def _settled(gateway) -> None:  # noqa: ANN001
    """Until the after-response writes (decision record, history, idle timer) are done."""
    await asyncio.sleep(0.05)
    while gateway.services.background:
        await asyncio.gather(*list(gateway.services.background), return_exceptions=True)

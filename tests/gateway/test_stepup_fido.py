"""FIDO2 through the gateway: registration after step-up, approvals bound to the
transaction, UV, synced passkeys capped at T3, counter regression, removal.

The in-process tests use the software authenticator of tests/auth_tools/fido_testkit.py
(it can drop UV, claim BE=1 and be cloned); the slow test runs Chromium's
virtual authenticator against the gateway on a real uvicorn socket.
"""

from __future__ import annotations

import os
import time

import orjson
import pytest

from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import MobileClient
from tests.auth_tools.fido_testkit import SoftAuthenticator, b64url, unb64url
from tests.gateway.conftest import PASSWORD
from tests.gateway.stepup_flows import (
    PAYEE_A,
    PAYEE_B,
    PHONE,
    SOURCE,
    begin,
    challenge_of,
    complete,
    customer,
    enrol,
    hold_hardware_key,
    remove,
    transfer,
)

ORIGIN = "http://localhost:8080"  # the [stepup] defaults: rp_id localhost


@pytest.fixture
async def harness(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    return await gateway_factory(upstream={"url": url})


async def registered(harness, authenticator: SoftAuthenticator, user_id: str = "alice"):
    client = await customer(harness, user_id)
    done = await enrol(client, harness, "fido",
                       lambda o: {"response": authenticator.create(o["publicKey"], ORIGIN), "label": "YubiKey"})
    assert done.status == 201, done.json()
    return client, done.json()["credential"]


async def approve(client: MobileClient, authenticator: SoftAuthenticator, challenge_id: str):
    begun = await begin(client, challenge_id, "fido")
    assert begun.status == 200, begun.json()
    return await complete(client, challenge_id, "fido",
                          {"response": authenticator.get(begun.json()["publicKey"], ORIGIN)})


async def test_security_key_with_uv_approves_t4(harness, echo_upstream) -> None:
    echo, _url = echo_upstream
    key = SoftAuthenticator()
    client, cred = await registered(harness, key)
    assert cred["synced"] is False and cred["max_tier"] == 4 and cred["label"] == "YubiKey"

    chal = challenge_of(await transfer(client, "200000.00"))
    assert chal["required_tier"] == "T4"
    begun = (await begin(client, chal["challenge_id"], "fido")).json()
    assert begun["publicKey"]["userVerification"] == "required"
    assert begun["transaction"]["amount"] == "200000.00"
    done = await complete(client, chal["challenge_id"], "fido",
                          {"response": key.get(begun["publicKey"], ORIGIN)})
    approved = done.json()
    assert approved["status"] == "approved" and approved["acr"] == "T4", approved
    assert {"hwk", "user"} <= set(approved["amr"])
    assert (await transfer(client, "200000.00", approval=approved["approval_token"])).status == 200
    claims = orjson.loads(unb64url(echo.requests[-1]["headers"]["x-riskgate-assertion"].split(".")[1]))
    assert claims["acr"] == "T4"


async def test_synced_passkey_counts_at_most_as_t3(harness) -> None:
    passkey = SoftAuthenticator(be=True, bs=True, counter_step=0)
    client, cred = await registered(harness, passkey)
    assert cred["synced"] is True and cred["max_tier"] == 3
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    assert (await approve(client, passkey, cid)).json()["status"] == "pending"
    cid = challenge_of(await transfer(client, "20000.00"))["challenge_id"]
    approved = (await approve(client, passkey, cid)).json()
    assert approved["status"] == "approved" and approved["acr"] == "T3", approved


async def test_assertion_without_user_verification_is_refused(harness) -> None:
    key = SoftAuthenticator()
    client, _cred = await registered(harness, key)
    key.uv = False  # the PIN was not asked (a tampering client, or a key that skips it)
    cid = challenge_of(await transfer(client, "20000.00"))["challenge_id"]
    refused = await approve(client, key, cid)
    assert refused.status == 401 and refused.error == "fido_user_verification_missing"


async def test_wrong_signature_and_foreign_key_are_refused(harness) -> None:
    key = SoftAuthenticator()
    client, _cred = await registered(harness, key)
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    begun = (await begin(client, cid, "fido")).json()
    response = key.get(begun["publicKey"], ORIGIN)
    signature = bytearray(unb64url(response["response"]["signature"]))
    signature[-1] ^= 1
    response["response"]["signature"] = b64url(bytes(signature))
    refused = await complete(client, cid, "fido", {"response": response})
    assert refused.status == 401 and refused.error == "fido_assertion_invalid"

    # An assertion made for another transaction (same key): refused.
    begun = (await begin(client, cid, "fido")).json()
    other = dict(begun["publicKey"], challenge=b64url(b"\x01" * 32))
    refused = await complete(client, cid, "fido", {"response": key.get(other, ORIGIN)})
    assert refused.error == "fido_challenge_mismatch"

    # Another authenticator, unknown to the gateway.
    stranger = SoftAuthenticator()
    stranger_client = await customer(harness, "mallory")
    await enrol(stranger_client, harness, "fido",
                lambda o: {"response": stranger.create(o["publicKey"], ORIGIN)})
    begun = (await begin(client, cid, "fido")).json()
    cred_id = next(iter(stranger.credentials))
    refused = await complete(client, cid, "fido",
                             {"response": stranger.get(begun["publicKey"], ORIGIN, credential_id=cred_id)})
    assert refused.error == "fido_credential_unknown"
    assert (await approve(client, key, cid)).json()["status"] == "approved"


async def test_replayed_assertion_is_refused_without_flagging_the_key(harness) -> None:
    key = SoftAuthenticator()
    client, _cred = await registered(harness, key)
    await hold_hardware_key(harness)  # T5 within reach: a challenge, not a refusal
    cid = challenge_of(await transfer(client, "2000000.00"))["challenge_id"]  # T5: FIDO stays pending
    response = {"response": key.get((await begin(client, cid, "fido")).json()["publicKey"], ORIGIN)}
    assert (await complete(client, cid, "fido", response)).json()["status"] == "pending"
    assert (await complete(client, cid, "fido", response)).error == "tool_not_begun"
    await begin(client, cid, "fido")
    assert (await complete(client, cid, "fido", response)).error == "replayed"
    # The genuine key still works.
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    assert (await approve(client, key, cid)).json()["status"] == "approved"


async def test_approval_is_refused_for_another_amount_or_payee(harness) -> None:
    key = SoftAuthenticator()
    client, _cred = await registered(harness, key)
    cid = challenge_of(await transfer(client, "250000.00", PAYEE_A))["challenge_id"]
    token = (await approve(client, key, cid)).json()["approval_token"]
    assert (await transfer(client, "250001.00", PAYEE_A, approval=token)).error == "approval_mismatch"
    cid = challenge_of(await transfer(client, "250000.00", PAYEE_A))["challenge_id"]
    token = (await approve(client, key, cid)).json()["approval_token"]
    assert (await transfer(client, "250000.00", PAYEE_B, approval=token)).error == "approval_mismatch"


async def test_cloned_key_counter_regression_flags_the_credential(harness) -> None:
    key = SoftAuthenticator()
    client, cred = await registered(harness, key)
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    assert (await approve(client, key, cid)).json()["status"] == "approved"
    # A clone made before that approval: same private key, the old counter.
    for stored in key.credentials.values():
        stored.sign_count = 1
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    refused = await approve(client, key, cid)
    assert refused.status == 401 and refused.error == "fido_sign_count_regression"
    assert (await begin(client, cid, "fido")).error == "fido_credential_flagged"
    listed = (await client.call("GET", "/auth/tools")).json()["tools"]["fido"]
    assert listed[0]["id"] == cred["id"] and listed[0]["status"] == "flagged"


async def test_a_clone_racing_the_original_with_the_same_counter_is_caught(harness) -> None:
    """Both assertions verify against the counter stored before either completes;
    the counter still moves forward only once, and the key ends flagged."""
    import asyncio

    key = SoftAuthenticator()
    client, _cred = await registered(harness, key)
    cids = [challenge_of(await transfer(client, "200000.00"))["challenge_id"] for _ in range(2)]
    answers = []
    for cid in cids:
        begun = await begin(client, cid, "fido")
        counters = {k: c.sign_count for k, c in key.credentials.items()}
        answers.append((cid, key.get(begun.json()["publicKey"], ORIGIN)))
        for k, c in key.credentials.items():  # the clone: same key, same counter
            c.sign_count = counters[k]
    results = await asyncio.gather(*(complete(client, cid, "fido", {"response": answer})
                                     for cid, answer in answers))
    outcomes = [(r.status, r.error or r.json().get("status")) for r in results]
    # Which one is the clone cannot be told: at least one is refused, maybe both.
    assert (401, "fido_sign_count_regression") in outcomes, outcomes
    assert set(outcomes) <= {(200, "approved"), (401, "fido_sign_count_regression")}, outcomes
    listed = (await client.call("GET", "/auth/tools")).json()["tools"]["fido"]
    assert listed[0]["status"] == "flagged"


async def test_removed_key_is_refused(harness) -> None:
    key = SoftAuthenticator()
    client, cred = await registered(harness, key)
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    begun = (await begin(client, cid, "fido")).json()
    assert (await remove(client, harness, "fido", cred["id"])).status == 200
    refused = await complete(client, cid, "fido", {"response": key.get(begun["publicKey"], ORIGIN)})
    assert refused.status == 401 and refused.error == "credential_revoked"
    assert (await begin(client, cid, "fido")).error == "not_enrolled"


async def test_same_key_cannot_register_twice(harness) -> None:
    key = SoftAuthenticator()
    client, _cred = await registered(harness, key)

    def again(options: dict) -> dict:
        assert options["publicKey"]["excludeCredentials"], "the registered key must be excluded"
        # A browser would refuse; a tampering client replays the known credential id.
        response = key.create(options["publicKey"], ORIGIN)
        known = next(iter(key.credentials))
        response["id"] = response["rawId"] = b64url(known)
        return {"response": response}

    done = await enrol(client, harness, "fido", again)
    assert done.error == "fido_credential_already_registered"


# -- Chromium's virtual authenticator against the gateway on a real socket ----------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
WEBAUTHN_JS = """
(() => {
  const b64uToBuf = (s) => Uint8Array.from(
    atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4)),
    (c) => c.charCodeAt(0)).buffer;
  const bufToB64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  const ids = (list) => (list || []).map((c) => ({...c, id: b64uToBuf(c.id)}));
  window.rgCreate = async (o) => {
    const c = await navigator.credentials.create({publicKey: {...o, challenge: b64uToBuf(o.challenge),
      user: {...o.user, id: b64uToBuf(o.user.id)}, excludeCredentials: ids(o.excludeCredentials)}});
    return {id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: {},
      response: {clientDataJSON: bufToB64u(c.response.clientDataJSON),
                 attestationObject: bufToB64u(c.response.attestationObject),
                 transports: c.response.getTransports()}};
  };
  window.rgGet = async (o) => {
    const c = await navigator.credentials.get({publicKey: {...o, challenge: b64uToBuf(o.challenge),
      allowCredentials: ids(o.allowCredentials)}});
    return {id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: {},
      response: {clientDataJSON: bufToB64u(c.response.clientDataJSON),
                 authenticatorData: bufToB64u(c.response.authenticatorData),
                 signature: bufToB64u(c.response.signature),
                 userHandle: c.response.userHandle ? bufToB64u(c.response.userHandle) : null}};
  };
})();
"""


@pytest.mark.slow
async def test_chromium_security_key_approves_a_transfer_over_a_real_socket(gateway_factory,
                                                                            echo_upstream) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium not installed: apt-get install -y chromium (CI installs it)")
    playwright_api = pytest.importorskip("playwright.async_api",
                                         reason="pip install playwright (never `playwright install`)")
    from gateway.servers import free_port, serving
    from mobile_client import AiohttpTransport

    _echo, upstream_url = echo_upstream
    port = free_port()
    origin = f"http://localhost:{port}"  # an IP address is not a valid RP ID
    harness = await gateway_factory(upstream={"url": upstream_url},
                                    stepup={"rp_id": "localhost", "origins": origin})
    client = MobileClient(f"http://127.0.0.1:{port}", AiohttpTransport())
    harness.clients.append(client)  # closed by the fixture
    async with serving(harness.app, port):
        await harness.services.users.create("alice", PASSWORD, time.time())
        assert (await client.register_device("alice", PASSWORD)).status == 201
        assert (await client.login(PASSWORD)).status == 200
        await set_reserved_phone(harness.services, "alice", PHONE, time.time())
        await harness.services.accounts.set("alice", {SOURCE: AccountClass.I})

        pw = await playwright_api.async_playwright().start()
        try:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            try:
                page = await (await browser.new_context()).new_page()
                await page.goto(origin + "/healthz")  # any page of the origin: a secure context
                await page.evaluate(WEBAUTHN_JS)
                cdp = await page.context.new_cdp_session(page)
                await cdp.send("WebAuthn.enable", {"enableUI": False})
                await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                    "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "usb",
                    "hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True,
                    "automaticPresenceSimulation": True}})

                async def browser_create(options: dict) -> dict:
                    return {"response": await page.evaluate("(o) => rgCreate(o)", options["publicKey"])}

                done = await enrol(client, harness, "fido", browser_create)
                assert done.status == 201, done.json()
                assert done.json()["credential"]["synced"] is False

                chal = challenge_of(await transfer(client, "200000.00"))
                begun = (await begin(client, chal["challenge_id"], "fido")).json()
                response = await page.evaluate("(o) => rgGet(o)", begun["publicKey"])
                approved = (await complete(client, chal["challenge_id"], "fido", {"response": response})).json()
                assert approved["status"] == "approved" and approved["acr"] == "T4", approved
                paid = await transfer(client, "200000.00", approval=approved["approval_token"])
                assert paid.status == 200, paid.json()
                # The same browser assertion does not approve another amount.
                chal = challenge_of(await transfer(client, "200001.00"))
                await begin(client, chal["challenge_id"], "fido")
                refused = await complete(client, chal["challenge_id"], "fido", {"response": response})
                assert refused.error in ("replayed", "fido_challenge_mismatch"), refused.json()
            finally:
                await browser.close()
        finally:
            await pw.stop()

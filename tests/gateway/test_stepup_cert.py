"""Cloud and hardware-key certificates through the gateway: openssl makes the keys,
CSRs and signatures; the gateway CA issues, verifies, revokes and publishes its CRL."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509

from auth_tools.errors import CertificateRevoked, CertificateWrongUser, CredentialRevoked
from gateway.pki_store import CA_KEY, PkiStore
from gateway.stepup_cert import factor_from_client_certificate
from tests.gateway.stepup_flows import (
    ADMIN_TOKEN,
    PAYEE_A,
    PAYEE_B,
    begin,
    challenge_of,
    complete,
    customer,
    enrol,
    hold_hardware_key,
    remove,
    transfer,
)


def openssl(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["openssl", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Keystore:
    """The device side: an openssl key pair, its CSR, and signatures with it."""

    def __init__(self, work: Path, name: str) -> None:
        self.work, self.name = work, name
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", "/CN=ignored-by-the-ca", cwd=work)
        self.csr = (work / f"{name}.csr").read_text()

    def sign(self, payload: bytes) -> str:
        (self.work / f"{self.name}.payload").write_bytes(payload)
        return b64url(openssl("dgst", "-sha256", "-sign", f"{self.name}.key", f"{self.name}.payload",
                              cwd=self.work))

    def answer(self, options: dict) -> dict:
        """Sign what the gateway asked to be signed (the app shows options['transaction'] first)."""
        return {"signature": self.sign(unb64url(options["payload"]))}


@pytest.fixture
async def harness(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    return await gateway_factory(admin={"token": ADMIN_TOKEN}, upstream={"url": url})


@pytest.fixture
async def admin(harness):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=harness.app), base_url="http://gateway",
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as http:
        yield http


async def enrol_cloud_cert(client, harness, keystore: Keystore) -> dict:
    done = await enrol(client, harness, "cloud_cert", lambda _o: {"csr": keystore.csr})
    assert done.status == 201, done.json()
    return done.json()["credential"]


async def approve_with_cert(client, keystore: Keystore, challenge_id: str, tool: str = "cloud_cert"):
    begun = await begin(client, challenge_id, tool)
    assert begun.status == 200, begun.json()
    return await complete(client, challenge_id, tool, keystore.answer(begun.json()))


async def test_cloud_certificate_enrolment_and_a_300k_approval(harness, admin, echo_upstream, tmp_path) -> None:
    echo, _url = echo_upstream
    client = await customer(harness)
    phone = Keystore(tmp_path, "phone")
    credential = await enrol_cloud_cert(client, harness, phone)

    # openssl agrees: a client certificate for alice under the gateway CA.
    (tmp_path / "alice.pem").write_text(credential["certificate"])
    (tmp_path / "ca.pem").write_bytes((await admin.get("/pki/ca.pem")).content)
    openssl("verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "alice.pem", cwd=tmp_path)
    subject = openssl("x509", "-in", "alice.pem", "-noout", "-subject", cwd=tmp_path).decode()
    assert "alice" in subject and "ignored-by-the-ca" not in subject
    listed = (await client.call("GET", "/auth/tools")).json()["tools"]["cloud_cert"]
    assert [c["id"] for c in listed] == [credential["id"]] and listed[0]["status"] == "active"

    chal = challenge_of(await transfer(client, "300000.00"))
    assert chal["required_tier"] == "T4"
    begun = await begin(client, chal["challenge_id"], "cloud_cert")
    options = begun.json()
    assert options["transaction"]["amount"] == "300000.00" and options["txn_hash"] == chal["txn_hash"]
    done = await complete(client, chal["challenge_id"], "cloud_cert", phone.answer(options))
    approved = done.json()
    assert done.status == 200 and approved["status"] == "approved", approved
    assert approved["acr"] == "T4" and {"swk", "pin"} <= set(approved["amr"])

    paid = await transfer(client, "300000.00", approval=approved["approval_token"])
    assert paid.status == 200, paid.json()
    assertion = echo.requests[-1]["headers"]["x-riskgate-assertion"]
    claims = orjson.loads(unb64url(assertion.split(".")[1]))
    assert claims["acr"] == "T4" and "swk" in claims["amr"]


async def test_wrong_signatures_are_refused(harness, tmp_path) -> None:
    client = await customer(harness)
    phone, thief = Keystore(tmp_path, "phone"), Keystore(tmp_path, "thief")
    await enrol_cloud_cert(client, harness, phone)
    chal = challenge_of(await transfer(client, "200000.00"))
    cid = chal["challenge_id"]

    # Signed by another key.
    assert (await approve_with_cert(client, thief, cid)).error == "transaction_signature_invalid"
    # The device's key, but over another amount (what a tampered app would show and sign).
    begun = (await begin(client, cid, "cloud_cert")).json()
    payload = unb64url(begun["payload"]).replace(b'"200000.00"', b'"2000.00"')
    refused = await complete(client, cid, "cloud_cert", {"signature": phone.sign(payload)})
    assert refused.status == 401 and refused.error == "transaction_signature_invalid"
    # Garbage is malformed input, not a verification.
    await begin(client, cid, "cloud_cert")
    assert (await complete(client, cid, "cloud_cert", {"signature": "!!"})).error == "bad_tool_input"
    # The right answer still works afterwards.
    assert (await approve_with_cert(client, phone, cid)).json()["status"] == "approved"


async def test_replayed_signature_is_refused(harness, tmp_path) -> None:
    client = await customer(harness)
    phone = Keystore(tmp_path, "phone")
    await enrol_cloud_cert(client, harness, phone)
    await hold_hardware_key(harness)  # T5 within reach: a challenge, not a refusal
    # 2,000,000 needs T5: the cloud certificate alone leaves the challenge pending.
    cid = challenge_of(await transfer(client, "2000000.00"))["challenge_id"]
    begun = (await begin(client, cid, "cloud_cert")).json()
    answer = phone.answer(begun)
    first = await complete(client, cid, "cloud_cert", answer)
    assert first.status == 200 and first.json()["status"] == "pending", first.json()
    # Same completion again: the ceremony state was single use.
    assert (await complete(client, cid, "cloud_cert", answer)).error == "tool_not_begun"
    # Re-begun, the captured signature is still refused.
    await begin(client, cid, "cloud_cert")
    assert (await complete(client, cid, "cloud_cert", answer)).error == "replayed"

    # After an approval the challenge is gone: a replay finds nothing.
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    answer = phone.answer((await begin(client, cid, "cloud_cert")).json())
    assert (await complete(client, cid, "cloud_cert", answer)).json()["status"] == "approved"
    assert (await complete(client, cid, "cloud_cert", answer)).status == 404


async def test_approval_is_refused_for_another_amount_or_payee(harness, tmp_path) -> None:
    client = await customer(harness)
    phone = Keystore(tmp_path, "phone")
    await enrol_cloud_cert(client, harness, phone)

    cid = challenge_of(await transfer(client, "250000.00"))["challenge_id"]
    token = (await approve_with_cert(client, phone, cid)).json()["approval_token"]
    other_amount = await transfer(client, "250000.01", approval=token)
    assert other_amount.status == 401 and other_amount.error == "approval_mismatch"
    # The approval was consumed by the failed attempt.
    assert (await transfer(client, "250000.00", approval=token)).error == "approval_invalid"

    cid = challenge_of(await transfer(client, "250000.00", PAYEE_A))["challenge_id"]
    token = (await approve_with_cert(client, phone, cid)).json()["approval_token"]
    other_payee = await transfer(client, "250000.00", PAYEE_B, approval=token)
    assert other_payee.status == 401 and other_payee.error == "approval_mismatch"


async def test_revoked_certificate_is_refused_and_listed_in_the_crl(harness, admin, tmp_path) -> None:
    client = await customer(harness)
    phone = Keystore(tmp_path, "phone")
    serial = (await enrol_cloud_cert(client, harness, phone))["serial"]
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    begun = (await begin(client, cid, "cloud_cert")).json()

    assert (await admin.post(f"/admin/certificates/{serial}/revoke",
                             json={"reason": "key_compromise"})).status_code == 200
    # Begun before the revocation, completed after: refused.
    refused = await complete(client, cid, "cloud_cert", phone.answer(begun))
    assert refused.status == 401 and refused.error == "certificate_revoked"
    assert (await begin(client, cid, "cloud_cert")).error == "certificate_revoked"
    listed = (await client.call("GET", "/auth/tools")).json()["tools"]["cloud_cert"]
    assert listed[0]["status"] == "revoked"

    crl = await admin.get("/pki/crl")
    assert crl.status_code == 200 and crl.headers["content-type"] == "application/pkix-crl"
    (tmp_path / "crl.der").write_bytes(crl.content)
    (tmp_path / "ca.pem").write_bytes((await admin.get("/pki/ca.pem")).content)
    openssl("crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-noout", cwd=tmp_path)
    text = openssl("crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", cwd=tmp_path).decode()
    assert serial.upper() in text.replace(":", "").upper() and "Key Compromise" in text
    # An unknown serial is not ours to revoke.
    assert (await admin.post("/admin/certificates/abcdef/revoke")).status_code == 404


async def test_removed_certificate_is_refused(harness, admin, tmp_path) -> None:
    client = await customer(harness)
    phone = Keystore(tmp_path, "phone")
    cred = await enrol_cloud_cert(client, harness, phone)
    cid = challenge_of(await transfer(client, "200000.00"))["challenge_id"]
    begun = (await begin(client, cid, "cloud_cert")).json()

    removed = await remove(client, harness, "cloud_cert", cred["id"])
    assert removed.status == 200, removed.json()
    refused = await complete(client, cid, "cloud_cert", phone.answer(begun))
    assert refused.status == 401 and refused.error == "credential_revoked"
    assert (await begin(client, cid, "cloud_cert")).error == "not_enrolled"
    # Removing it revoked it: the published CRL lists it (openssl reads the CRL).
    (tmp_path / "crl.der").write_bytes((await admin.get("/pki/crl")).content)
    text = openssl("crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text", cwd=tmp_path).decode()
    assert cred["serial"].upper().lstrip("0") in text.replace(":", "").upper()


async def test_hardware_key_issued_at_the_branch_approves_2m(harness, admin, tmp_path) -> None:
    client = await customer(harness)
    token_key = Keystore(tmp_path, "usbkey")
    # Online enrolment of a hardware key is refused: branch only.
    online = await client.call("POST", "/auth/tools/hardware_cert/enrol/begin", {})
    assert online.status == 409 and online.error == "enrolment_not_online"
    assert (await admin.post("/admin/users/alice/hardware-cert", content=token_key.csr,
                             headers={"Authorization": "Bearer wrong-token-wrong-token-xx"})).status_code == 403
    assert (await admin.post("/admin/users/nobody/hardware-cert", content=token_key.csr)).status_code == 404

    issued = await admin.post("/admin/users/alice/hardware-cert", content=token_key.csr,
                              headers={"Content-Type": "application/pkcs10"})
    assert issued.status_code == 201 and issued.headers["content-type"].startswith("application/x-pem-file")
    cert = x509.load_pem_x509_certificate(issued.content)
    assert format(cert.serial_number, "x") == issued.headers["x-certificate-serial"]

    cid = challenge_of(await transfer(client, "2000000.00"))["challenge_id"]
    # A cloud certificate would not do; the hardware key does.
    done = await approve_with_cert(client, token_key, cid, tool="hardware_cert")
    approved = done.json()
    assert approved["status"] == "approved" and approved["acr"] == "T5", approved
    assert {"hwk", "pin"} <= set(approved["amr"])
    assert (await transfer(client, "2000000.00", approval=approved["approval_token"])).status == 200


async def test_ca_key_is_sealed_and_created_once(harness) -> None:
    svc = harness.services
    now = time.time()
    first = await PkiStore(svc.redis, svc.sealer).ca(now)
    second = await PkiStore(svc.redis, svc.sealer).ca(now)
    assert first.cert_pem == second.cert_pem
    stored = await svc.redis.get(CA_KEY)
    assert b"PRIVATE KEY" not in stored and b"BEGIN CERTIFICATE" in stored


async def test_mtls_client_certificate_counts_as_the_certificate_factor(harness, tmp_path) -> None:
    client = await customer(harness)
    phone = Keystore(tmp_path, "phone")
    cred = await enrol_cloud_cert(client, harness, phone)
    svc, now = harness.services, time.time()
    # What TlsHttpToolsProtocol puts in the scope after a verified handshake.
    scope = {"type": "http", "client": ("127.0.0.1", 50000),
             "extensions": {"tls": {"client_cert_chain": [cred["certificate"]]}}}
    factor = await factor_from_client_certificate(svc, scope, user_id="alice", now=now)
    assert factor is not None and factor.tool == "cloud_cert" and factor.max_tier == 4
    assert factor.amr == ("swk", "pin") and factor.detail["txn_bound"] is False
    assert await factor_from_client_certificate(svc, {"type": "http"}, user_id="alice", now=now) is None
    with pytest.raises(CertificateWrongUser):
        await factor_from_client_certificate(svc, scope, user_id="bob", now=now)
    # Forwarded by a proxy: only from a trusted address.
    from urllib.parse import quote

    proxied = {"type": "http", "client": ("10.0.0.5", 443),
               "headers": [(b"x-ssl-client-cert", quote(cred["certificate"]).encode())]}
    assert await factor_from_client_certificate(svc, proxied, user_id="alice", now=now,
                                                trusted_proxy_header="x-ssl-client-cert") is None
    assert await factor_from_client_certificate(svc, proxied, user_id="alice", now=now,
                                                trusted_proxy_header="x-ssl-client-cert",
                                                trusted_proxies=["10.0.0.0/8"]) is not None
    await svc.credentials.delete("alice", "cloud_cert", cred["id"])
    with pytest.raises(CredentialRevoked):
        await factor_from_client_certificate(svc, scope, user_id="alice", now=now)
    await svc.credentials.put("alice", "cloud_cert", cred["id"], {"serial": cred["serial"]})
    await PkiStore(svc.redis, svc.sealer).revoke(int(cred["serial"], 16), "superseded", now)
    with pytest.raises(CertificateRevoked):
        await factor_from_client_certificate(svc, scope, user_id="alice", now=now)

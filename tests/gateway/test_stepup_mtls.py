"""A verified TLS client certificate as a factor: with the password it makes T2,
and it never approves the transaction-signing tiers (it signs nothing)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.gateway.stepup_flows import (
    ADMIN_TOKEN,
    begin,
    challenge_of,
    complete,
    customer,
    transfer,
)
from tests.gateway.test_stepup_cert import Keystore, enrol_cloud_cert


@pytest.fixture
async def harness(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    # The in-process transport's peer is 127.0.0.1: it stands for the TLS-terminating proxy.
    return await gateway_factory(admin={"token": ADMIN_TOKEN}, upstream={"url": url},
                                 tls={"client_cert_header": "x-ssl-client-cert",
                                      "trusted_proxies": "127.0.0.1"})


async def test_client_certificate_and_password_approve_t2_only(harness, tmp_path) -> None:
    client = await customer(harness)
    cred = await enrol_cloud_cert(client, harness, Keystore(tmp_path, "phone"))
    forwarded = {"X-SSL-Client-Cert": quote(cred["certificate"])}

    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    begun = await client.call("POST", f"/auth/challenges/{cid}/mtls_cert/begin", {}, headers=forwarded)
    assert begun.status == 200, begun.body
    done = await client.call("POST", f"/auth/challenges/{cid}/mtls_cert/complete", {}, headers=forwarded)
    assert done.json()["status"] == "pending"
    await begin(client, cid, "pwd")
    approved = (await complete(client, cid, "pwd", {"password": "a long enough password"})).json()
    assert approved["status"] == "approved" and approved["acr"] == "T2"
    assert (await transfer(client, "3000.00", approval=approved["approval_token"])).status == 200

    # Without a certificate on the connection the tool has nothing to go on.
    cid = challenge_of(await transfer(client, "3000.00"))["challenge_id"]
    bare = await client.call("POST", f"/auth/challenges/{cid}/mtls_cert/begin", {})
    assert (bare.status, bare.error) == (409, "not_enrolled")

    # A 300,000 transfer needs the key to sign the transaction: mTLS is not offered.
    big = challenge_of(await transfer(client, "300000.00"))
    assert not any("mtls_cert" in row for row in big["acceptable"])

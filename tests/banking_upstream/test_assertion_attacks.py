"""Attacks on the assertion: each is refused with its own 401 code and the ledger is unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import ECKey

from tests.banking_upstream.upstream_kit import ALICE_II, ALICE_MAIN, BOB, new_key, transfer_txn

BODY = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "500.00", "currency": "CNY"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(upstream, token: str | None, body: dict = BODY, *, code: str) -> None:
    """Send a transfer with ``token``; assert the refusal and that nothing was written."""
    before = upstream.snapshot()
    headers = {"Idempotency-Key": "attack"}
    if token is not None:
        headers["X-Riskgate-Assertion"] = token
    resp = await upstream.client.post("/v1/transfers", content=orjson.dumps(body), headers=headers)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == code
    assert set(resp.json()) == {"error", "message"}
    assert upstream.snapshot() == before


def signed(upstream, body: dict = BODY, **overrides) -> str:
    return upstream.minter.token("alice", transfer_txn(body), **overrides)


async def test_no_assertion(upstream):
    await refused(upstream, None, code="assertion_missing")
    resp = await upstream.client.get(f"/v1/accounts/{ALICE_MAIN}/balance")
    assert (resp.status_code, resp.json()["error"]) == (401, "assertion_missing")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "e30.e30.", "x" * 9000, "..",
                                   b64(b'{"alg":"ES256"}') + ".e30.AAAA"])
async def test_malformed(upstream, token):
    code = "assertion_malformed"
    await refused(upstream, token, code=code)


async def test_forged_signature_with_a_published_kid(upstream):
    rogue = new_key("gw-1")  # same kid as the gateway's key, different key pair
    token = upstream.minter.sign(upstream.minter.claims("alice", transfer_txn(BODY)), key=rogue)
    await refused(upstream, token, code="assertion_bad_signature")


async def test_tampered_payload_breaks_the_signature(upstream):
    head, _, sig = signed(upstream).split(".")
    claims = upstream.minter.claims("alice", transfer_txn(BODY))
    claims["acr"] = "T5"
    await refused(upstream, f"{head}.{b64(orjson.dumps(claims))}.{sig}", code="assertion_bad_signature")


async def test_alg_none(upstream):
    claims = upstream.minter.claims("alice", transfer_txn(BODY))
    for alg in ("none", "None", "NONE"):
        token = f"{b64(orjson.dumps({'alg': alg, 'kid': 'gw-1'}))}.{b64(orjson.dumps(claims))}."
        await refused(upstream, token, code="assertion_algorithm_refused")


async def test_hs256_with_the_public_key_as_secret(upstream):
    pem = upstream.minter.key.as_pem(private=False)
    claims = upstream.minter.claims("alice", transfer_txn(BODY))
    signing_input = f"{b64(orjson.dumps({'alg': 'HS256', 'kid': 'gw-1'}))}.{b64(orjson.dumps(claims))}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    await refused(upstream, f"{signing_input}.{b64(mac)}", code="assertion_algorithm_refused")
    # the same trick with the JWK's raw coordinates as secret
    raw = upstream.minter.key.get_op_key("verify").public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    mac = hmac.new(raw, signing_input.encode(), hashlib.sha256).digest()
    await refused(upstream, f"{signing_input}.{b64(mac)}", code="assertion_algorithm_refused")


async def test_other_asymmetric_algorithms_are_refused(upstream):
    key = ECKey.generate_key("P-384", parameters={"kid": "gw-1"})
    token = jws.serialize_compact({"alg": "ES384", "kid": "gw-1"},
                                  orjson.dumps(upstream.minter.claims("alice", transfer_txn(BODY))),
                                  key, algorithms=["ES384"])
    await refused(upstream, token, code="assertion_algorithm_refused")


async def test_header_tricks_are_refused(upstream):
    claims = upstream.minter.claims("alice", transfer_txn(BODY))
    attacker = new_key("evil")
    # jwk/jku in the header try to make us trust a key the attacker supplies
    token = jws.serialize_compact({"alg": "ES256", "kid": "gw-1", "jwk": attacker.as_dict(private=False)},
                                  orjson.dumps(claims), attacker, algorithms=["ES256"])
    await refused(upstream, token, code="assertion_malformed")
    no_kid = jws.serialize_compact({"alg": "ES256"}, orjson.dumps(claims), upstream.minter.key,
                                   algorithms=["ES256"])
    await refused(upstream, no_kid, code="assertion_malformed")


async def test_unknown_kid(upstream):
    stranger = new_key("not-published")
    token = upstream.minter.sign(upstream.minter.claims("alice", transfer_txn(BODY)), key=stranger)
    await refused(upstream, token, code="assertion_unknown_key")


async def test_expired(upstream):
    now = int(time.time())
    await refused(upstream, signed(upstream, iat=now - 100, exp=now - 50), code="assertion_expired")


async def test_within_leeway_is_accepted(upstream):
    now = int(time.time())
    resp = await upstream.transfer(BODY, token=signed(upstream, iat=now - 40, exp=now - 2))
    assert resp.status_code == 201


async def test_issued_in_the_future(upstream):
    now = int(time.time())
    await refused(upstream, signed(upstream, iat=now + 120, exp=now + 150), code="assertion_not_yet_valid")


async def test_lifetime_over_60_seconds(upstream):
    now = int(time.time())
    await refused(upstream, signed(upstream, iat=now, exp=now + 61), code="assertion_lifetime_too_long")
    await refused(upstream, signed(upstream, iat=now - 10, exp=now + 3600),
                  code="assertion_lifetime_too_long")


async def test_wrong_audience(upstream):
    await refused(upstream, signed(upstream, aud="another-service"), code="assertion_wrong_audience")
    await refused(upstream, signed(upstream, aud=["riskgate-upstream"]), code="assertion_wrong_audience")


async def test_wrong_issuer(upstream):
    await refused(upstream, signed(upstream, iss="evil-gateway"), code="assertion_wrong_issuer")


async def test_missing_claims_are_malformed(upstream):
    for claim in ("sub", "jti", "iat", "exp", "dev", "acr"):
        await refused(upstream, signed(upstream, **{claim: None}), code="assertion_malformed")


async def test_replayed_jti(upstream):
    token = signed(upstream)
    first = await upstream.transfer(BODY, token=token, key="once")
    assert first.status_code == 201
    await refused(upstream, token, code="assertion_replayed")
    assert upstream.ledger.balance(BOB) == 1_500_00  # applied exactly once


async def test_replayed_jti_on_a_read(upstream):
    token = upstream.minter.token("alice")
    assert (await upstream.get("/v1/accounts", token=token)).status_code == 200
    again = await upstream.get("/v1/accounts", token=token)
    assert (again.status_code, again.json()["error"]) == (401, "assertion_replayed")


async def test_replay_is_refused_after_a_restart(upstream_factory):
    async with upstream_factory() as first:
        token = signed(first)
        assert (await first.transfer(BODY, token=token)).status_code == 201
    async with upstream_factory() as second:
        await refused(second, token, code="assertion_replayed")


async def test_amount_changed_after_signing(upstream):
    token = signed(upstream, BODY)
    await refused(upstream, token, {**BODY, "amount": "501.00"}, code="assertion_txn_mismatch")


async def test_payee_changed_after_signing(upstream):
    token = signed(upstream, BODY)
    await refused(upstream, token, {**BODY, "payee_account": "6217000000000666"},
                  code="assertion_txn_mismatch")


async def test_source_changed_after_signing(upstream):
    token = signed(upstream, BODY)
    await refused(upstream, token, {**BODY, "from_account": ALICE_II}, code="assertion_txn_mismatch")


async def test_transfer_without_txn_claim(upstream):
    await refused(upstream, upstream.minter.token("alice"), code="assertion_txn_missing")


async def test_payee_added_without_or_with_other_txn(upstream):
    from auth_tools.dynamic_linking import Transaction

    body = orjson.dumps({"name": "Mallory", "account": "6217000000000666"})
    before = upstream.snapshot()
    for token, code in (
        (upstream.minter.token("alice"), "assertion_txn_missing"),
        (upstream.minter.token("alice", Transaction("add_payee", 0, "CNY", "", "6217000000000001")),
         "assertion_txn_mismatch"),
    ):
        resp = await upstream.client.post("/v1/payees", content=body, headers={"X-Riskgate-Assertion": token})
        assert (resp.status_code, resp.json()["error"]) == (401, code)
    assert upstream.snapshot() == before


async def test_subject_not_owning_the_source_account(upstream):
    # bob holds a valid assertion for a transfer out of alice's account
    token = upstream.minter.token("bob", transfer_txn(BODY))
    await refused(upstream, token, code="assertion_subject_mismatch")


async def test_subject_not_owning_the_account_read(upstream):
    for path in (f"/v1/accounts/{ALICE_MAIN}/balance", f"/v1/accounts/{ALICE_MAIN}/history",
                 "/v1/accounts/6222029999999999/balance"):
        resp = await upstream.get(path, sub="bob")
        assert (resp.status_code, resp.json()["error"]) == (401, "assertion_subject_mismatch")
    resp = await upstream.get("/v1/accounts", sub="nobody")
    assert (resp.status_code, resp.json()["error"]) == (401, "assertion_subject_mismatch")

"""The assertion, checked by a second JOSE library (jwcrypto) that gets only
the published JWKS; key rotation keeps old tokens verifiable until they expire."""

from __future__ import annotations

import time

import pytest
from jwcrypto import jwk, jws, jwt

pytestmark = pytest.mark.asyncio


async def _published_jwks(phone) -> jwk.JWKSet:
    resp = await phone.transport.send("GET", "http://gateway/.well-known/jwks.json", {}, b"")
    assert resp.status == 200
    return jwk.JWKSet.from_json(resp.body.decode())


async def _assertion(gw, echo, phone) -> str:
    assert (await phone.accounts()).status == 200
    return echo.requests[-1]["headers"]["x-riskgate-assertion"]


async def test_assertion_verifies_with_jwcrypto_and_jwks_only(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled("alice")
    token = await _assertion(gw, echo, phone)
    keyset = await _published_jwks(phone)
    for key in keyset["keys"]:
        assert not key.has_private
    verified = jwt.JWT(jwt=token, key=keyset, algs=["ES256"],
                       check_claims={"iss": "riskgate", "aud": "riskgate-upstream", "exp": None})
    claims = __import__("json").loads(verified.claims)
    header = __import__("json").loads(verified.header)
    assert header["alg"] == "ES256" and header["kid"] in {k["kid"] for k in keyset["keys"]}
    assert claims["sub"] == "alice"
    assert claims["dev"] == {"id": phone.device_id, "status": "bound"}
    # A password entered moments ago: the session itself reaches T1.
    assert claims["acr"] == "T1" and claims["amr"] == ["pwd"]
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert {"jti", "sid", "auth_time", "decision_id"} <= set(claims)
    assert set(claims["risk"]) == {"score", "level", "model", "rules"}
    assert claims["risk"]["level"] == "low" and claims["risk"]["model"] is None  # model still warming up
    assert "limit" not in claims  # views move no money


async def test_tampered_assertion_fails_in_jwcrypto(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled("alice")
    token = await _assertion(gw, echo, phone)
    keyset = await _published_jwks(phone)
    header, payload, sig = token.split(".")
    forged_payload = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
    kid = jws.JWS.from_jose_token(token).jose_header["kid"]
    with pytest.raises(jws.InvalidJWSSignature):
        jwt.JWT(jwt=f"{header}.{forged_payload}.{sig}", key=keyset.get_key(kid), algs=["ES256"])


async def test_rotation_keeps_old_key_published_until_its_tokens_expire(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, assertion={"key_refresh_interval": 0.1})
    phone = await gw.enrolled("alice")
    old_token = await _assertion(gw, echo, phone)
    old_kid = jws.JWS.from_jose_token(old_token).jose_header["kid"]

    now = time.time()
    new_kid, previous = await gw.services.keys.rotate(now)
    assert previous == old_kid and new_kid != old_kid
    time.sleep(0.15)  # past the refresh interval: every process picks up the new key
    new_token = await _assertion(gw, echo, phone)
    assert jws.JWS.from_jose_token(new_token).jose_header["kid"] == new_kid

    keyset = await _published_jwks(phone)
    assert {k["kid"] for k in keyset["keys"] if k.get("use") == "sig"} == {old_kid, new_kid}
    jwt.JWT(jwt=old_token, key=keyset, algs=["ES256"])  # old tokens still verify
    jwt.JWT(jwt=new_token, key=keyset, algs=["ES256"])

    later = now + gw.config.assertion.lifetime + 10
    published = await gw.services.keys.jwks(later)
    assert {k["kid"] for k in published["keys"]} == {new_kid}


async def test_private_keys_are_sealed_in_redis(gateway, redis):
    raw = await redis.hgetall("riskgate:signing-keys")
    assert raw
    for record in raw.values():
        assert b'"d":' not in record.replace(b" ", b"")
        assert b'"private":"v2.' in record  # sealed under the data key

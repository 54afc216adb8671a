"""The JWKS cache: refetch on an unknown kid, rate-limited; rotation; outages."""

from __future__ import annotations

import asyncio
import secrets

import orjson

from banking_upstream import parse_jwks
from tests.banking_upstream.upstream_kit import ALICE_MAIN, new_key


async def test_random_kid_spray_costs_at_most_one_fetch_per_interval(upstream):
    assert (await upstream.get("/v1/accounts")).status_code == 200
    assert upstream.jwks.fetches == 1
    before = upstream.snapshot()

    async def spray() -> tuple[int, str]:
        key = new_key("spray-" + secrets.token_hex(6))
        token = upstream.minter.sign(upstream.minter.claims("alice"), key=key)
        resp = await upstream.get(f"/v1/accounts/{ALICE_MAIN}/balance", token=token)
        return resp.status_code, resp.json()["error"]

    results = await asyncio.gather(*(spray() for _ in range(60)))
    assert set(results) == {(401, "assertion_unknown_key")}
    assert upstream.jwks.fetches == 1  # the first fetch was within the interval: none more
    assert upstream.snapshot() == before


async def test_concurrent_unknown_kids_share_one_fetch(upstream_factory):
    async with upstream_factory(jwks_min_refetch_interval=0.0) as up:
        keys = [new_key(f"k{i}") for i in range(20)]

        async def call(key):
            token = up.minter.sign(up.minter.claims("alice"), key=key)
            return (await up.get("/v1/accounts", token=token)).status_code

        await asyncio.gather(*(call(k) for k in keys))
        # each miss refetches at most once, never one fetch per waiting request in parallel
        assert up.jwks.fetches <= len(keys) + 1


async def test_rotation_picks_up_a_new_key_after_the_interval(upstream_factory, jwks_server):
    async with upstream_factory(jwks_min_refetch_interval=0.2) as up:
        assert (await up.get("/v1/accounts")).status_code == 200
        rotated = new_key("gw-2")
        jwks_server.keys.append(rotated)
        await asyncio.sleep(0.25)
        token = up.minter.sign(up.minter.claims("alice"), key=rotated)
        assert (await up.get("/v1/accounts", token=token)).status_code == 200
        assert jwks_server.fetches == 2
        # the old key stays valid while it is published
        assert (await up.get("/v1/accounts")).status_code == 200


async def test_rate_limited_miss_then_refetch_after_interval(upstream_factory, jwks_server):
    async with upstream_factory(jwks_min_refetch_interval=0.2) as up:
        assert (await up.get("/v1/accounts")).status_code == 200
        late = new_key("gw-late")
        token = up.minter.sign(up.minter.claims("alice"), key=late)
        jwks_server.keys.append(late)
        # published, but within the interval: not fetched yet
        resp = await up.get("/v1/accounts", token=token)
        assert resp.json()["error"] == "assertion_unknown_key"
        await asyncio.sleep(0.25)
        token = up.minter.sign(up.minter.claims("alice"), key=late)
        assert (await up.get("/v1/accounts", token=token)).status_code == 200


async def test_jwks_down_is_503_and_writes_nothing(upstream, jwks_server):
    jwks_server.status = 500
    before = upstream.snapshot()
    resp = await upstream.get("/v1/accounts")
    assert (resp.status_code, resp.json()["error"]) == (503, "jwks_unavailable")
    assert upstream.snapshot() == before


def test_parse_jwks_keeps_only_public_es256_keys():
    ec = new_key("ec")
    doc = {"keys": [
        ec.as_dict(private=True),  # a leaked private part is dropped, not kept
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {**new_key("enc").as_dict(private=False), "use": "enc"},
        {"kty": "EC", "crv": "P-256", "kid": "broken", "x": "AA", "y": "AA"},
    ]}
    keys = parse_jwks(orjson.dumps(doc))
    assert list(keys) == ["ec"]
    assert not keys["ec"].is_private

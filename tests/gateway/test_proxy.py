"""The reverse proxy: route policy, header hygiene, timeouts, body limits."""

from __future__ import annotations

import asyncio
import base64

import orjson
import pytest

pytestmark = pytest.mark.asyncio


def claims_of(token: str) -> dict:
    """The claims, read without our own JOSE code (signature checked elsewhere)."""
    payload = token.split(".")[1]
    return orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_view_is_forwarded_with_clean_headers(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    method, full, headers, body = phone.build("GET", "/v1/accounts/6222020000000001/history?limit=5")
    headers.update({"X-Riskgate-Assertion": "forged-by-client", "X-Forwarded-For": "6.6.6.6",
                    "Cookie": "a=b", "X-Request-Id": "client-req-0001", "Connection": "keep-alive"})
    resp = await phone.send((method, full, headers, body))
    assert resp.status == 200
    assert resp.headers["x-request-id"] == "client-req-0001"
    assert resp.headers["x-upstream"] == "echo"
    assert "x-riskgate-decision" in resp.headers
    (seen,) = echo.requests
    assert seen["path"] == "/v1/accounts/6222020000000001/history"
    assert seen["query"] == "limit=5"
    fwd = seen["headers"]
    for stripped in ("authorization", "x-device-id", "x-device-signature", "cookie"):
        assert stripped not in fwd
    assert fwd["x-riskgate-assertion"] != "forged-by-client"
    assert fwd["x-riskgate-assertion"].count(".") == 2
    assert fwd["x-forwarded-for"] == "127.0.0.1"
    assert fwd["x-forwarded-proto"] == "http"
    assert fwd["x-request-id"] == "client-req-0001"


async def test_request_id_generated_when_absent(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    resp = await phone.accounts()
    rid = resp.headers["x-request-id"]
    assert len(rid) >= 8
    assert echo.requests[-1]["headers"]["x-request-id"] == rid


async def test_unknown_route_is_404_and_never_forwarded(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    for method, path in (("GET", "/v1/admin/dump"), ("DELETE", "/v1/accounts"),
                         ("GET", "/v1/accounts/%2e%2e/balance"), ("POST", "/v1/accounts")):
        resp = await phone.call(method, path)
        assert (resp.status, resp.error) == (404, "route_not_found"), path
    resp = await phone.call("GET", "/nowhere")
    assert (resp.status, resp.error) == (404, "not_found")
    assert echo.requests == []


async def test_upstream_down_is_502_json(gateway_factory):
    from gateway.servers import free_port

    gw = await gateway_factory(upstream={"url": f"http://127.0.0.1:{free_port()}"})
    phone = await gw.enrolled()
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (502, "upstream_unavailable")


async def test_upstream_slow_is_504_json(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    echo.delay = 1.5
    gw = await gateway_factory(upstream={"url": url, "read_timeout": 0.3})
    phone = await gw.enrolled()
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (504, "upstream_timeout")
    await asyncio.sleep(0)  # the echo request was received, the answer came too late
    assert len(echo.requests) == 1


async def test_oversize_body_is_413(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, server={"max_body_bytes": 2048})
    phone = await gw.enrolled()
    big = {"from_account": "6222020000000001", "payee_account": "6222020000000003",
           "amount": "1.00", "currency": "CNY", "memo": "x" * 5000}
    resp = await phone.call("POST", "/v1/transfers", big, headers={"Idempotency-Key": "k"})
    assert (resp.status, resp.error) == (413, "payload_too_large")
    assert echo.requests == []


@pytest.mark.parametrize("body,code", [
    (b"{not json", "invalid_json"),
    (b"[1,2]", "invalid_json"),
    (b'{"from_account":"a","payee_account":"b","amount":12.5}', "invalid_amount"),
    (b'{"from_account":"a","payee_account":"b","amount":"-5"}', "invalid_amount"),
    (b'{"from_account":"a","payee_account":"b"}', "missing_field"),
    (b'{"from_account":"a","payee_account":"b","amount":"1.00","currency":"USD"}', "unsupported_currency"),
])
async def test_bad_transfer_bodies_are_400_json(gateway_factory, echo_upstream, body, code):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    method, full, headers, _ = phone.build("POST", "/v1/transfers", headers={"Idempotency-Key": "k"})
    import secrets
    import time

    from device_fingerprint.signature import sign_request

    headers["X-Device-Signature"] = sign_request(phone.device_key, method="POST", path="/v1/transfers",
                                                 query="", body=body, device_id=phone.device_id,
                                                 ts=int(time.time()), nonce=secrets.token_urlsafe(16))
    resp = await phone.send((method, full, headers, body))
    assert (resp.status, resp.error) == (400, code)
    assert echo.requests == []


async def test_small_transfer_forwarded_with_transaction_claims(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    resp = await phone.transfer("6222020000000001", "6222020000000003", "1000.00")
    assert resp.status == 200
    claims = claims_of(echo.requests[-1]["headers"]["x-riskgate-assertion"])
    assert claims["acr"] == "T1"
    assert claims["amr"] == ["pwd"]
    assert claims["txn"]["amount"] == "1000.00"
    assert claims["txn"]["payee"] == "6222020000000003"


async def test_large_transfer_needs_step_up_and_is_not_forwarded(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    # With only a password, T1 (1,000) is as far as this customer can go: refused outright.
    resp = await phone.transfer("6222020000000001", "6222020000000003", "1000.01")
    assert (resp.status, resp.error) == (403, "limit_exceeded")
    assert resp.json()["allowed_by"] == "T2" and ["pwd", "sms"] in resp.json()["tools"]
    # With a reserved phone on file, SMS is within reach: a step-up challenge.
    import time

    from gateway.stepup_sms import set_reserved_phone

    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    resp = await phone.transfer("6222020000000001", "6222020000000003", "1000.01")
    assert (resp.status, resp.error) == (401, "insufficient_user_authentication")
    assert echo.requests == []


async def test_small_transfer_needs_a_recent_password(gateway_factory, echo_upstream, redis):
    import time

    import orjson

    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    phone = await gw.enrolled()
    (key,) = [k async for k in redis.scan_iter(match="{u:alice}:sess:*")]
    await redis.hset(key, "factors", orjson.dumps({"pwd": time.time() - 301}))
    resp = await phone.transfer("6222020000000001", "6222020000000003", "10.00")
    assert (resp.status, resp.error) == (401, "insufficient_user_authentication")
    assert (await phone.accounts()).status == 200  # views still pass
    assert len(echo.requests) == 1


async def test_redis_unreachable_fails_closed_with_503(gateway_factory, echo_upstream, tmp_path):
    from gateway.servers import free_port

    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, redis={"url": f"redis://127.0.0.1:{free_port()}/0"})
    phone = gw.client()
    phone.device_id = "alice.AAAAAAAAAAAAAAAAAAAAAA"
    phone.session_token = "alice." + "A" * 43
    resp = await phone.transfer("6222020000000001", "6222020000000003", "10.00")
    assert (resp.status, resp.error) == (503, "state_unavailable")
    assert resp.headers["retry-after"] == "1"
    assert echo.requests == []

"""SMS senders: the webhook against a real local aiohttp server, and the dev outbox."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from auth_tools.errors import SmsConfigInvalid, SmsDeliveryFailed
from auth_tools.sms_senders import DevOutbox, SmsSender, WebhookSmsSender

PHONE = "+8613812345678"
TEXT = "[riskgate] Code 123456 approves: transfer CNY 20,000.00 to **** 0003."


@dataclass
class Gateway:
    """A stand-in SMS carrier on 127.0.0.1 that records what it receives."""

    base: str
    received: list[tuple[str, dict[str, object], dict[str, str]]] = field(default_factory=list)
    failures_left: int = 0


@pytest.fixture
async def carrier() -> AsyncIterator[Gateway]:
    gw = Gateway("")

    async def record(request: web.Request) -> None:
        gw.received.append((request.path, await request.json(), dict(request.headers)))

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"accepted": True})

    async def flaky(request: web.Request) -> web.Response:
        await record(request)
        if gw.failures_left > 0:
            gw.failures_left -= 1
            return web.json_response({"error": "busy"}, status=503 if gw.failures_left else 500)
        return web.json_response({"accepted": True})

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await asyncio.sleep(2)
        return web.json_response({"accepted": True})

    async def reject(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({"error": "bad number"}, status=400)

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/ok")

    app = web.Application()
    app.add_routes([web.post("/ok", ok), web.post("/flaky", flaky), web.post("/slow", slow),
                    web.post("/reject", reject), web.post("/redirect", redirect)])
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    gw.base = f"http://127.0.0.1:{port}"
    try:
        yield gw
    finally:
        await runner.cleanup()


async def test_webhook_posts_json_with_headers(carrier: Gateway) -> None:
    async with WebhookSmsSender(f"{carrier.base}/ok", headers={"Authorization": "Bearer t0ken"}) as sender:
        assert isinstance(sender, SmsSender)
        await sender.send(PHONE, TEXT)
    [(path, body, headers)] = carrier.received
    assert body["to"] == PHONE and body["text"] == TEXT
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == body["message_id"]


async def test_webhook_retries_5xx_with_the_same_message_id(carrier: Gateway) -> None:
    carrier.failures_left = 2  # 503, then 500, then 200
    async with WebhookSmsSender(f"{carrier.base}/flaky", retries=2, backoff=0.01) as sender:
        await sender.send(PHONE, TEXT)
    assert len(carrier.received) == 3
    assert len({body["message_id"] for _, body, _ in carrier.received}) == 1


async def test_webhook_gives_up_after_retries(carrier: Gateway) -> None:
    carrier.failures_left = 10
    async with WebhookSmsSender(f"{carrier.base}/flaky", retries=1, backoff=0.01) as sender:
        with pytest.raises(SmsDeliveryFailed) as err:
            await sender.send(PHONE, TEXT)
    assert err.value.code == "sms_delivery_failed"
    assert err.value.attempts == 2 and err.value.status == 503
    assert PHONE not in str(err.value) and "123456" not in str(err.value)


async def test_webhook_timeout_is_a_delivery_failure(carrier: Gateway) -> None:
    async with WebhookSmsSender(f"{carrier.base}/slow", timeout=0.2, retries=1, backoff=0.01) as sender:
        with pytest.raises(SmsDeliveryFailed) as err:
            await sender.send(PHONE, TEXT)
    assert err.value.attempts == 2 and err.value.status is None
    assert isinstance(err.value.__cause__, TimeoutError)
    assert len(carrier.received) == 2


async def test_webhook_4xx_is_not_retried(carrier: Gateway) -> None:
    async with WebhookSmsSender(f"{carrier.base}/reject", retries=3, backoff=0.01) as sender:
        with pytest.raises(SmsDeliveryFailed) as err:
            await sender.send(PHONE, TEXT)
    assert err.value.status == 400 and err.value.attempts == 1
    assert len(carrier.received) == 1


async def test_webhook_does_not_follow_redirects(carrier: Gateway) -> None:
    async with WebhookSmsSender(f"{carrier.base}/redirect", retries=0) as sender:
        with pytest.raises(SmsDeliveryFailed) as err:
            await sender.send(PHONE, TEXT)
    assert err.value.status == 302
    assert [path for path, _, _ in carrier.received] == ["/redirect"]


async def test_webhook_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with WebhookSmsSender(f"http://127.0.0.1:{port}/sms", retries=1, backoff=0.01) as sender:
        with pytest.raises(SmsDeliveryFailed) as err:
            await sender.send(PHONE, TEXT)
    assert err.value.attempts == 2


def test_webhook_config_validated() -> None:
    with pytest.raises(SmsConfigInvalid):
        WebhookSmsSender("ftp://example.org/sms")
    with pytest.raises(SmsConfigInvalid):
        WebhookSmsSender("http://127.0.0.1/sms", timeout=0)
    with pytest.raises(SmsConfigInvalid):
        WebhookSmsSender("http://127.0.0.1/sms", retries=9)


async def test_dev_outbox_keeps_texts_and_masks_numbers_in_redis(redis) -> None:  # noqa: ANN001
    outbox = DevOutbox(redis=redis, keep=2, clock=lambda: 1_763_800_000.0)
    assert isinstance(outbox, SmsSender)
    await outbox.send(PHONE, "first")
    await outbox.send("+8613900000000", "second")
    await outbox.send(PHONE, TEXT)
    assert [m.text for m in outbox.messages] == ["second", TEXT]
    assert outbox.last_text(PHONE) == TEXT and outbox.last_text("+1555") is None
    stored = await DevOutbox.read(redis)
    assert stored == [{"to": "+86138****5678", "text": TEXT, "sent_at": 1_763_800_000.0},
                      {"to": "+86139****0000", "text": "second", "sent_at": 1_763_800_000.0}]
    for key in await redis.keys("*"):
        for raw in await redis.lrange(key, 0, -1):
            assert b"13812345678" not in raw

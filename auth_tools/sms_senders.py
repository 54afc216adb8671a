"""Where text messages go: an HTTP webhook to a real SMS gateway, or a dev outbox.

The webhook contract (what an operator's SMS gateway adapter implements)::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <message_id>
    <configured headers, e.g. Authorization>

    {"to": "+8613812345678", "text": "...", "message_id": "<22 url-safe chars>"}

Any 2xx means accepted. 429, 5xx, timeouts and connection errors are retried
with the same ``message_id`` (so the gateway can drop duplicates) after an
exponential backoff; any other status is a refusal and is not retried.
Redirects are not followed. Failures surface as :class:`SmsDeliveryFailed`;
its message never contains the number or the text.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import aiohttp
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth_tools.errors import SmsConfigInvalid, SmsDeliveryFailed
from auth_tools.masking import mask_phone

__all__ = ["SmsSender", "WebhookSmsSender", "DevOutbox", "OutboxMessage"]


@runtime_checkable
class SmsSender(Protocol):
    async def send(self, phone: str, text: str) -> None:
        """Hand one text to the carrier; raise :class:`SmsDeliveryFailed` if it is not accepted."""
        ...


class WebhookSmsSender:
    """JSON POST to an SMS gateway, with timeout and retries (see the module docstring).

    Use as ``async with WebhookSmsSender(...) as sender`` or call :meth:`aclose`.
    A ``session`` may be shared with other aiohttp users; it is then not closed here.
    """

    def __init__(self, url: str, *, timeout: float = 5.0, retries: int = 2,
                 headers: dict[str, str] | None = None, backoff: float = 0.25,
                 max_backoff: float = 4.0, session: aiohttp.ClientSession | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SmsConfigInvalid("sms.webhook_url must be an http(s) URL")
        if not 0 < timeout <= 60:
            raise SmsConfigInvalid("sms.webhook_timeout must be in (0, 60] seconds")
        if not 0 <= retries <= 5:
            raise SmsConfigInvalid("sms.webhook_retries must be between 0 and 5")
        if not 0 <= backoff <= max_backoff:
            raise SmsConfigInvalid("sms.webhook_backoff must be between 0 and max_backoff")
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.headers = dict(headers or {})
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> WebhookSmsSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a ClientSession belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def send(self, phone: str, text: str) -> None:
        message_id = secrets.token_urlsafe(16)
        body = orjson.dumps({"to": phone, "text": text, "message_id": message_id})
        headers = {**self.headers, "Content-Type": "application/json", "Idempotency-Key": message_id}
        attempts = self.retries + 1
        status: int | None = None
        cause: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                async with self._client().post(self.url, data=body, headers=headers,
                                               timeout=self.timeout, allow_redirects=False) as resp:
                    status = resp.status
                    await resp.read()
                if 200 <= status < 300:
                    return
                cause = None
                if status != 429 and status < 500:
                    raise SmsDeliveryFailed(f"the SMS gateway refused the message (HTTP {status})",
                                            status=status, attempts=attempt)
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, cause = None, exc
            if attempt < attempts:
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))
        what = f"HTTP {status}" if status is not None else type(cause).__name__
        raise SmsDeliveryFailed(f"the SMS gateway did not accept the message after {attempts} attempts ({what})",
                                status=status, attempts=attempts) from cause


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    phone: str = field(repr=False)
    text: str = field(repr=False)
    sent_at: float


class DevOutbox:
    """A development sender that delivers nothing: it keeps the texts for the demo to print.

    Messages are kept in memory (the last ``keep``) and, with ``redis``, also
    pushed to the Redis list ``key`` (newest first) so another process can
    show them; there the number is masked. Never configure it in production:
    codes sit in the list in clear.
    """

    def __init__(self, *, redis: Redis | None = None, key: str = "riskgate:dev:sms_outbox",
                 keep: int = 100, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.key = key
        self.keep = keep
        self.clock = clock
        self._messages: deque[OutboxMessage] = deque(maxlen=keep)

    async def send(self, phone: str, text: str) -> None:
        message = OutboxMessage(phone, text, self.clock())
        self._messages.append(message)
        if self.redis is not None:
            doc = orjson.dumps({"to": mask_phone(phone), "text": text, "sent_at": message.sent_at})
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.lpush(self.key, doc)
                    pipe.ltrim(self.key, 0, self.keep - 1)
                    await pipe.execute()
            except RedisError as exc:
                raise SmsDeliveryFailed("the dev outbox could not store the message") from exc

    @property
    def messages(self) -> list[OutboxMessage]:
        """The kept messages, oldest first."""
        return list(self._messages)

    def last_text(self, phone: str) -> str | None:
        """The newest text sent to ``phone``, if any."""
        for message in reversed(self._messages):
            if message.phone == phone:
                return message.text
        return None

    @staticmethod
    async def read(redis: Redis, key: str = "riskgate:dev:sms_outbox", count: int = 20) -> list[dict[str, object]]:
        """The newest ``count`` messages from the Redis list (number masked), newest first."""
        return [orjson.loads(raw) for raw in await redis.lrange(key, 0, count - 1)]

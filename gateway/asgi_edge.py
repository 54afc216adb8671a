"""The outermost pure ASGI middleware: request id, body limit, JSON errors.

It reads the request body once (refusing more than ``server.max_body_bytes``
with 413), hands it to the inner app through ``scope["riskgate.body"]`` and a
replaying ``receive``, sends ``/v1/...`` to the proxy pipeline, and turns every
exception into a JSON error with a stable code. A client never sees a
traceback.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

import orjson
from redis.exceptions import RedisError

from auth_tools.errors import AuthToolError
from device_fingerprint.errors import DeviceError
from gateway.errors import GatewayError, PayloadTooLarge, status_for
from gateway.log_format import current_request_id
from gateway.metrics import GatewayMetrics
from limits.errors import LimitsError
from risk_engine.errors import RiskStateUnavailable

__all__ = ["EdgeMiddleware"]

log = logging.getLogger("riskgate.edge")
access_log = logging.getLogger("riskgate.access")
_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._-]{8,64}$")
_KINDS = frozenset({"v1", "auth", "admin", "console", "devices", "tools", "limits", "pki"})
_KNOWN_ERRORS: tuple[type[BaseException], ...] = (GatewayError, DeviceError, AuthToolError,
                                                   LimitsError)

ASGIApp = Callable[..., Awaitable[None]]


class _BodyTooLarge(Exception):
    pass


async def read_body(receive, limit: int, declared: int | None) -> bytes:  # noqa: ANN001
    """The whole request body, or PayloadTooLarge past ``limit`` bytes (declared or read)."""
    if declared is not None and declared > limit:
        raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, pipeline: ASGIApp, max_body_bytes: Callable[[], int],
                 extra_errors: tuple[type[BaseException], ...] = (),
                 metrics: Callable[[], GatewayMetrics | None] = lambda: None) -> None:
        self.app = app
        self.metrics = metrics
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes
        self.known_errors = _KNOWN_ERRORS + extra_errors

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"")
        request_id = incoming.decode() if _REQUEST_ID_RE.match(incoming) else secrets.token_hex(8)
        scope["riskgate.request_id"] = request_id
        scope["riskgate.headers"] = headers
        started = False
        rid = request_id.encode()
        t0 = time.perf_counter()
        token = current_request_id.set(request_id)

        async def send_with_id(message) -> None:  # noqa: ANN001
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
                self._observe(scope, message["status"], t0)
            await send(message)

        try:
            declared = headers.get(b"content-length")
            body = await read_body(receive, self.max_body_bytes(),
                                    int(declared) if declared and declared.isdigit() else None)
            scope["riskgate.body"] = body
            replayed = False

            async def replay():  # noqa: ANN202
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            path: str = scope["path"]
            target = self.pipeline if path == "/v1" or path.startswith("/v1/") else self.app
            await target(scope, replay, send_with_id)
        except Exception as exc:
            if started:
                log.exception("error after the response started (request %s)", request_id)
                raise
            if isinstance(exc, RedisError | RiskStateUnavailable):
                # Fail closed: without its state the gateway decides nothing. (The risk
                # engine wraps the Redis errors of its own stores.)
                if (m := self.metrics()) is not None:
                    m.redis_errors.inc()
                log.error("Redis unavailable (request %s): %s", request_id, exc)
                status = 503
                extra_headers = [("retry-after", "1")]
                body = orjson.dumps({"error": "state_unavailable",
                                     "message": "the gateway cannot reach its state store; retry shortly",
                                     "request_id": request_id})
            elif isinstance(exc, self.known_errors):
                status = status_for(exc)
                extra_headers = list(getattr(exc, "headers", {}).items())
                body = self._error_body(exc)
            else:
                log.exception("unhandled error (request %s)", request_id)
                status = 500
                extra_headers = []
                body = orjson.dumps({"error": "internal_error",
                                     "message": "the gateway failed to handle this request",
                                     "request_id": request_id})
            await send_with_id({
                "type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *((k.encode(), v.encode()) for k, v in extra_headers)],
            })
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            current_request_id.reset(token)

    def _observe(self, scope, status: int, t0: float) -> None:  # noqa: ANN001
        elapsed = time.perf_counter() - t0
        path: str = scope["path"]
        if access_log.isEnabledFor(logging.INFO):
            # the request id comes from the context (gateway.log_format)
            access_log.info("%s %s %d %.1fms", scope["method"], path, status, elapsed * 1000)
        m = self.metrics()
        if m is None:
            return
        first = path.split("/", 2)[1] if path.count("/") else ""
        kind = first if first in _KINDS else "other"
        m.responses.labels(str(status), kind).inc()
        m.request_seconds.labels(kind).observe(elapsed)

    @staticmethod
    def _error_body(exc: BaseException) -> bytes:
        doc: dict[str, object] = {"error": getattr(exc, "code", "bad_request"),
                                  "message": getattr(exc, "message", None) or str(exc)}
        doc.update(getattr(exc, "extra", {}) or {})
        return orjson.dumps(doc)

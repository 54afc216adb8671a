"""HTTPS serving: a hardened server TLS context, uvicorn options and HSTS.

TLS 1.2 is the floor; TLS 1.2 suites are ECDHE with AEAD only (forward
secrecy, no CBC, no RSA key exchange, no SHA-1 MACs); TLS 1.3 suites are
OpenSSL's, all AEAD. With a client CA, client certificates are requested and
verified during the handshake (optional or required), and
:class:`gateway.tls_protocol.TlsHttpToolsProtocol` puts the verified leaf in
the ASGI ``tls`` extension for the certificate step-up tool.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.config import ConfigError, TlsConfig
from gateway.tls_protocol import TlsHttpToolsProtocol

__all__ = ["TLS12_CIPHERS", "HstsMiddleware", "server_ssl_context", "uvicorn_tls_options"]

# Mozilla "intermediate" TLS 1.2 suites without DHE.
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


def server_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """The server context for ``tls``; a bad certificate, key or CA file raises ConfigError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
                    | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE)
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("tls.cert_file", f"cannot load the certificate and key: {exc}") from exc
    if tls.client_ca_file:
        try:
            ctx.load_verify_locations(tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("tls.client_ca_file", f"cannot load the client CA: {exc}") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.client_cert_required else ssl.CERT_OPTIONAL
    return ctx


def uvicorn_tls_options(tls: TlsConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run``; empty when TLS is off."""
    if not tls.enabled:
        return {}
    server_ssl_context(tls)  # fail at startup, with the key named, not at the first handshake
    return {"ssl_context_factory": lambda _config, _default: server_ssl_context(tls),
            "http": TlsHttpToolsProtocol}


class HstsMiddleware:
    """Adds ``Strict-Transport-Security`` to every response sent over HTTPS."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, max_age: int) -> None:
        self.app = app
        self.header = (b"strict-transport-security", f"max-age={max_age}; includeSubDomains".encode())
        self.max_age = max_age

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http" or scope.get("scheme") != "https" or self.max_age <= 0:
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_hsts)

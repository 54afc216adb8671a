"""End-to-end payload encryption: compact JWE request bodies and responses.

A request with ``Content-Type: application/jose`` carries a compact JWE
(``ECDH-ES+A256KW`` or ``ECDH-ES``, with ``A256GCM``) encrypted to one of the
gateway's encryption keys (:mod:`gateway.encryption_keys`). The outermost
middleware, :class:`PayloadEncryption`, decrypts it before anything else reads
the body, so the device signature, the route policy and the upstream all see
the plaintext: the device signs the plaintext, never the JWE.

When the request was encrypted, or it asks for ``Accept: application/jose``,
the response (errors included) is encrypted to the device's registered
encryption key (``enc_jwk`` at device registration). A registration encrypts
its response to the ``enc_jwk`` it carries.

With ``encryption.require_for_money_and_auth`` the gateway refuses plaintext on
``/devices`` and ``/devices/...``, every ``/auth/...`` endpoint and every route of the policy table
that is not a view: bodies must be JWE, and body-less calls must ask for an
encrypted response.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from redis.exceptions import RedisError

from device_fingerprint.errors import DeviceError
from device_fingerprint.registry import device_key
from gateway.asgi_edge import read_body
from gateway.encryption_keys import ENC_ALGORITHMS, ENC_CONTENT_ALGORITHM, EncryptionKeyStore
from gateway.errors import (
    EncryptionRequired,
    JweAlgorithmNotAllowed,
    JweBadHeader,
    JweBadTag,
    JweUnknownKid,
    PayloadEncryptionError,
    PayloadTooLarge,
    ResponseKeyMissing,
)

__all__ = [
    "JOSE_MEDIA_TYPE",
    "JweHeader",
    "PayloadEncryption",
    "decrypt_request",
    "encrypt_response",
    "parse_jwe_header",
    "valid_enc_jwk",
]

log = logging.getLogger("riskgate.encryption")

JOSE_MEDIA_TYPE = "application/jose"
_JOSE = JOSE_MEDIA_TYPE.encode()
_JSON = b"application/json"
_ACCEPTED_CTY = {"application/json", "json"}
ASGIApp = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JweHeader:
    alg: str
    enc: str
    kid: str
    cty: str


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_jwe_header(token: bytes) -> JweHeader:
    """Check a compact JWE's protected header against the allow-list (no key needed).

    Raises :class:`JweBadHeader` or :class:`JweAlgorithmNotAllowed`.
    """
    try:
        parts = token.decode("ascii").strip().split(".")
        if len(parts) != 5:
            raise JweBadHeader(message="a compact JWE has five base64url parts")
        header = orjson.loads(_b64d(parts[0]))
    except (UnicodeDecodeError, binascii.Error, ValueError) as exc:
        if isinstance(exc, JweBadHeader):
            raise
        raise JweBadHeader() from exc
    if not isinstance(header, dict):
        raise JweBadHeader(message="the protected header is not a JSON object")
    alg, enc = header.get("alg"), header.get("enc")
    if alg not in ENC_ALGORITHMS or enc != ENC_CONTENT_ALGORITHM:
        raise JweAlgorithmNotAllowed(extra={"allowed_alg": list(ENC_ALGORITHMS),
                                            "allowed_enc": [ENC_CONTENT_ALGORITHM]})
    if "zip" in header:
        raise JweBadHeader(message="compressed JWE is not accepted")
    if "crit" in header:
        raise JweBadHeader(message="no critical header extensions are understood")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 128:
        raise JweBadHeader(message="the protected header must name the gateway key (kid)")
    _check_epk(header.get("epk"))
    cty = header.get("cty", "application/json")
    if not isinstance(cty, str) or cty not in _ACCEPTED_CTY:
        raise JweBadHeader(message="the encrypted content must be application/json (cty)")
    return JweHeader(alg, enc, kid, "application/json")


def _check_epk(epk: object) -> None:
    # An ephemeral key off the curve would leak the private key (invalid-curve
    # attack); cryptography refuses such points, and so do we, before ECDH.
    if not isinstance(epk, dict) or epk.get("kty") != "EC" or epk.get("crv") != "P-256" or "d" in epk:
        raise JweBadHeader(message="epk must be a public EC P-256 key")
    try:
        x = int.from_bytes(_b64d(str(epk["x"])), "big")
        y = int.from_bytes(_b64d(str(epk["y"])), "big")
        ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError, binascii.Error) as exc:
        raise JweBadHeader(message="epk is not a point on P-256") from exc


async def decrypt_request(token: bytes, keys: EncryptionKeyStore, now: float) -> tuple[bytes, JweHeader]:
    """The plaintext of a request JWE and its header."""
    header = parse_jwe_header(token)
    key = await keys.get(header.kid, now)
    if key is None:
        raise JweUnknownKid()
    try:
        obj = jwe.decrypt_compact(token, key.private, algorithms=[header.alg, header.enc])
    except (JoseError, ValueError) as exc:
        raise JweBadTag() from exc
    return obj.plaintext or b"", header


@functools.lru_cache(maxsize=4096)
def _recipient_key(jwk_json: bytes) -> ECKey:
    doc = orjson.loads(jwk_json)
    return ECKey.import_key({k: doc[k] for k in ("kty", "crv", "x", "y")})


def encrypt_response(plaintext: bytes, recipient_jwk: bytes, *, alg: str = ENC_ALGORITHMS[0],
                     cty: str = "application/json") -> bytes:
    """A compact JWE of ``plaintext`` to the device's public JWK (JSON bytes)."""
    key = _recipient_key(recipient_jwk)
    header = {"alg": alg, "enc": ENC_CONTENT_ALGORITHM, "kid": key.thumbprint(), "cty": cty}
    return jwe.encrypt_compact(header, plaintext, key, algorithms=[alg, ENC_CONTENT_ALGORITHM]).encode()


def valid_enc_jwk(jwk: object) -> bytes:
    """The canonical JSON of a device's public encryption JWK; raises ValueError otherwise."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
        raise ValueError("enc_jwk must be a public EC P-256 JWK")
    try:
        _check_epk(jwk)
    except JweBadHeader as exc:
        raise ValueError("enc_jwk is not a point on P-256") from exc
    return orjson.dumps({k: jwk[k] for k in ("kty", "crv", "x", "y")}, option=orjson.OPT_SORT_KEYS)


def _media_type(value: bytes) -> bytes:
    return value.split(b";", 1)[0].strip().lower()


class PayloadEncryption:
    """Pure ASGI middleware, outside :class:`gateway.asgi_edge.EdgeMiddleware`.

    ``services`` returns the gateway's :class:`gateway.services.Services` (it
    needs ``enc_keys``, ``redis``, ``policy`` and ``config``).
    """

    def __init__(self, app: ASGIApp, *, services: Callable[[], Any],
                 max_body_bytes: Callable[[], int], clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.services = services
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        ctype = b""
        accept = b""
        device_id = b""
        for name, value in headers:
            if name == b"content-type":
                ctype = _media_type(value)
            elif name == b"accept":
                accept = value.lower()
            elif name == b"x-device-id":
                device_id = value
        encrypted = ctype == _JOSE
        wants_jose = encrypted or _JOSE in accept
        svc = self.services()
        try:
            if not encrypted and self._requires_encryption(svc, scope, wants_jose):
                raise EncryptionRequired()
            if not wants_jose:
                await self.app(scope, receive, send)
                return
            now = self.clock()
            alg = ENC_ALGORITHMS[0]
            plaintext: bytes | None = None
            if encrypted:
                token = await self._read_body(receive)
                plaintext, header = await decrypt_request(token, svc.enc_keys, now)
                alg = header.alg
            recipient = await self._response_key(svc, scope, device_id, plaintext)
        except (PayloadEncryptionError, PayloadTooLarge) as exc:
            await _send_error(send, exc.status, exc.code, exc.message, exc.extra)
            return
        except RedisError as exc:
            log.error("Redis unavailable while handling an encrypted request: %s", exc)
            await _send_error(send, 503, "state_unavailable",
                              "the gateway cannot reach its state store; retry shortly", {},
                              headers=[(b"retry-after", b"1")])
            return

        inner_scope = dict(scope)
        inner_scope["riskgate.encrypted"] = encrypted
        inner_receive = receive
        # The inner app and the upstream speak JSON; only this layer speaks JOSE.
        dropped = {b"accept", b"content-type", b"content-length"} if encrypted else {b"accept"}
        new_headers = [(k, v) for k, v in headers if k not in dropped]
        new_headers.append((b"accept", _JSON))
        if plaintext is not None:
            new_headers += [(b"content-type", _JSON), (b"content-length", str(len(plaintext)).encode())]
            body = plaintext
            delivered = False

            async def inner_receive():  # noqa: ANN202
                nonlocal delivered
                if not delivered:
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

        inner_scope["headers"] = new_headers
        await self.app(inner_scope, inner_receive, _EncryptingSend(send, recipient, alg))

    @staticmethod
    def _requires_encryption(svc: Any, scope: dict[str, Any], wants_jose: bool) -> bool:
        if not svc.config.encryption.require_for_money_and_auth:
            return False
        if scope["method"] in ("GET", "HEAD") and wants_jose:
            return False  # no body to encrypt; the response will be
        path: str = scope["path"]
        if path == "/devices" or path.startswith(("/devices/", "/auth/")):
            return True
        matched = svc.policy.match(scope["method"], path)
        return matched is not None and not matched.route.action.is_view

    async def _read_body(self, receive) -> bytes:  # noqa: ANN001
        return await read_body(receive, self.max_body_bytes(), None)

    @staticmethod
    async def _response_key(svc: Any, scope: dict[str, Any], device_id: bytes,
                            plaintext: bytes | None) -> bytes | None:
        """The device's public JWK (JSON), or None when the request names no known device.

        None lets the inner app answer: its refusal (unknown device, bad
        signature, ...) goes out in plaintext, and a success is replaced by
        ``jwe_no_response_key``. A known device without an encryption key is
        refused before anything runs.
        """
        if scope["path"] == "/devices" and scope["method"] == "POST" and plaintext is not None:
            # Registration: the device has no id yet; answer to the key it registers.
            try:
                doc = orjson.loads(plaintext)
                return valid_enc_jwk(doc.get("enc_jwk") if isinstance(doc, dict) else None)
            except ValueError:
                return None  # register_device refuses an encrypted registration without one
        try:
            key = device_key(device_id.decode("latin-1"))
        except DeviceError:
            return None
        async with svc.redis.pipeline(transaction=False) as pipe:
            pipe.exists(key)
            pipe.hget(key, "enc_jwk")
            exists, raw = await pipe.execute()
        if exists and not raw:
            raise ResponseKeyMissing()
        return raw or None


class _EncryptingSend:
    """Buffers the response and sends it as one JWE to the device key.

    Without a key (``recipient`` None) refusals pass in plaintext and any other
    answer becomes ``jwe_no_response_key``: an encrypted call never gets a
    plaintext success.
    """

    __slots__ = ("_send", "_recipient", "_alg", "_start", "_chunks")

    def __init__(self, send, recipient: bytes | None, alg: str) -> None:  # noqa: ANN001
        self._send = send
        self._recipient = recipient
        self._alg = alg
        self._start: dict[str, Any] | None = None
        self._chunks: list[bytes] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if self._recipient is None and message["status"] >= 400:
                await self._send(message)  # refusals carry no secrets
                return
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        start, self._start = self._start, None
        body = b"".join(self._chunks)
        if self._recipient is None:
            log.warning("an encrypted call succeeded (HTTP %s) but names no device to answer to",
                        start["status"])
            exc = ResponseKeyMissing()
            await _send_error(self._send, exc.status, exc.code, exc.message, {})
            return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-length",
                                                                                    b"content-type")]
        if body:
            cty = next((_media_type(v) for k, v in start.get("headers", []) if k.lower() == b"content-type"),
                       _JSON)
            body = encrypt_response(body, self._recipient, alg=self._alg, cty=cty.decode("latin-1"))
            headers.append((b"content-type", _JOSE))
        headers += [(b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_error(send, status: int, code: str, message: str,  # noqa: ANN001
                      extra: dict[str, object], *, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = orjson.dumps({"error": code, "message": message, **extra})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})

"""The reference mobile client: device keys, registration, login, signed calls."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from device_fingerprint.signature import public_key_to_jwk, sign_request
from mobile_client.transport import ApiResponse, Transport

__all__ = ["ClientError", "MobileClient"]


class ClientError(Exception):
    """The gateway refused a call the client needed to succeed."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(f"HTTP {response.status}: {response.body[:300]!r}")
        self.response = response


class MobileClient:
    """One app installation: a device key pair, at most one device id and session."""

    def __init__(self, base_url: str, transport: Transport, *,
                 device_key: ec.EllipticCurvePrivateKey | None = None,
                 device_id: str | None = None,
                 attributes: dict[str, object] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.device_key = device_key or ec.generate_private_key(ec.SECP256R1())
        self.device_id = device_id
        self.user_id: str | None = device_id.split(".", 1)[0] if device_id else None
        self.session_token: str | None = None
        self.attributes = attributes or {"platform": "android", "model": "riskgate-reference",
                                         "os_version": "14", "app_version": "1.0.0"}
        self._clock = clock

    # -- signing ---------------------------------------------------------
    def signed_headers(self, method: str, path_qs: str, body: bytes, *, device_id: str | None = None,
                       ts: int | None = None, nonce: str | None = None) -> dict[str, str]:
        parts = urlsplit(path_qs)
        did = self.device_id if device_id is None else device_id
        headers = {
            "X-Device-Signature": sign_request(
                self.device_key, method=method, path=parts.path, query=parts.query, body=body,
                device_id=did or "", ts=int(self._clock()) if ts is None else ts,
                nonce=nonce or secrets.token_urlsafe(16)),
        }
        if did:
            headers["X-Device-Id"] = did
        return headers

    def build(self, method: str, path_qs: str, json: object = None, *,
              headers: dict[str, str] | None = None, session: bool = True,
              **sign_kwargs: object) -> tuple[str, str, dict[str, str], bytes]:
        """A ready-to-send signed request (benchmarks pre-build these)."""
        body = orjson.dumps(json) if json is not None else b""
        out = {"Accept": "application/json"}
        if body:
            out["Content-Type"] = "application/json"
        if session and self.session_token:
            out["Authorization"] = f"Bearer {self.session_token}"
        out.update(self.signed_headers(method, path_qs, body, **sign_kwargs))  # type: ignore[arg-type]
        out.update(headers or {})
        return method, self.base_url + path_qs, out, body

    async def send(self, request: tuple[str, str, dict[str, str], bytes]) -> ApiResponse:
        method, url, headers, body = request
        return await self.transport.send(method, url, headers, body)

    async def call(self, method: str, path_qs: str, json: object = None, **kwargs: object) -> ApiResponse:
        return await self.send(self.build(method, path_qs, json, **kwargs))  # type: ignore[arg-type]

    # -- journeys --------------------------------------------------------
    async def register_device(self, user_id: str, password: str) -> ApiResponse:
        body = {"user_id": user_id, "password": password,
                "public_key": public_key_to_jwk(self.device_key.public_key()),
                "attributes": self.attributes}
        resp = await self.send(self.build("POST", "/devices", body, session=False, device_id=""))
        if resp.status == 201:
            doc = resp.json()
            self.device_id = doc["device_id"]  # type: ignore[index]
            self.user_id = user_id
        return resp

    async def login(self, password: str) -> ApiResponse:
        resp = await self.call("POST", "/auth/login", {"user_id": self.user_id, "password": password},
                               session=False)
        if resp.status == 200:
            self.session_token = resp.json()["session_token"]  # type: ignore[index]
        return resp

    async def logout(self) -> ApiResponse:
        resp = await self.call("POST", "/auth/logout")
        if resp.status == 200:
            self.session_token = None
        return resp

    async def accounts(self) -> ApiResponse:
        return await self.call("GET", "/v1/accounts")

    async def balance(self, account_id: str) -> ApiResponse:
        return await self.call("GET", f"/v1/accounts/{account_id}/balance")

    async def history(self, account_id: str, limit: int = 20, cursor: str | None = None) -> ApiResponse:
        qs = f"limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        return await self.call("GET", f"/v1/accounts/{account_id}/history?{qs}")

    async def transfer(self, from_account: str, payee_account: str, amount: str, *,
                       idempotency_key: str | None = None, currency: str = "CNY") -> ApiResponse:
        body = {"from_account": from_account, "payee_account": payee_account, "amount": amount,
                "currency": currency}
        return await self.call("POST", "/v1/transfers", body,
                               headers={"Idempotency-Key": idempotency_key or secrets.token_hex(16)})

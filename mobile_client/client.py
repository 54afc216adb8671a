"""The reference mobile client: device keys, registration, login, signed calls."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from device_fingerprint.signature import public_key_to_jwk, sign_request
from mobile_client.encryption import PayloadCipher
from mobile_client.transport import ApiResponse, Transport

__all__ = ["ClientError", "MobileClient", "REFERENCE_APP_SIGNATURE", "reference_attributes"]

# SHA-256 of the reference app's signing certificate (what a genuine build reports).
REFERENCE_APP_SIGNATURE = "5f" * 32


def reference_attributes(**overrides: str) -> dict[str, object]:
    """Attributes of one phone running the reference app; each call is another phone
    (its own SIM and install id) unless ``overrides`` say otherwise."""
    attributes: dict[str, object] = {
        "model": "Riskgate Reference R1", "os": "android", "os_version": "14", "app_version": "1.0.0",
        "app_signature_hash": REFERENCE_APP_SIGNATURE, "screen": "1080x2400", "locale": "zh-CN",
        "timezone": "Asia/Shanghai", "install_id": secrets.token_urlsafe(16), "carrier": "46000",
        "sim_hash": secrets.token_hex(32),
    }
    attributes.update(overrides)
    return attributes


class ClientError(Exception):
    """The gateway refused a call the client needed to succeed."""

    def __init__(self, response: ApiResponse) -> None:
        super().__init__(f"HTTP {response.status}: {response.body[:300]!r}")
        self.response = response


class MobileClient:
    """One app installation: a device key pair, at most one device id and session.

    With ``encrypt`` (the default) every call also carries an end-to-end JWE
    payload (:mod:`mobile_client.encryption`): bodies go out encrypted to the
    gateway's published key and answers come back encrypted to this device.
    """

    def __init__(self, base_url: str, transport: Transport, *,
                 device_key: ec.EllipticCurvePrivateKey | None = None,
                 device_id: str | None = None,
                 attributes: dict[str, object] | None = None,
                 signals: dict[str, bool] | None = None,
                 clock: Callable[[], float] = time.time, encrypt: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport
        self.device_key = device_key or ec.generate_private_key(ec.SECP256R1())
        self.device_id = device_id
        self.user_id: str | None = device_id.split(".", 1)[0] if device_id else None
        self.session_token: str | None = None
        # What the app reports about the phone (device_fingerprint.attributes); a
        # re-install keeps the phone's attributes and gets a new install_id and key.
        self.attributes = attributes or reference_attributes()
        # Runtime risk signals (rooted, emulator, hooked, ...), reported at registration and login.
        self.signals: dict[str, bool] = dict(signals or {})
        self._clock = clock
        # End-to-end payload encryption (JWE) above TLS; see mobile_client.encryption.
        self.cipher: PayloadCipher | None = PayloadCipher() if encrypt else None

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
        """Send a built request; with encryption on, seal it first and open the answer.

        A request that is already sealed (``resp.request`` of an earlier call)
        goes out byte for byte, so a replay stays a replay.
        """
        if self.cipher is None:
            return await self.transport.send(*request)
        if self.cipher.gateway_key is None:
            try:
                await self.load_gateway_keys()
            except ClientError as exc:
                return exc.response  # e.g. 503 while the gateway's state store is down
        resp = await self.transport.send(*self._sealed(request))
        if resp.error == "jwe_unknown_kid" and not self._is_sealed(request):
            await self.load_gateway_keys()  # the gateway rotated its key: fetch it, try once more
            resp = await self.transport.send(*self._sealed(request))
        return self.cipher.open_response(resp)

    @staticmethod
    def _is_sealed(request: tuple[str, str, dict[str, str], bytes]) -> bool:
        return request[2].get("Content-Type") == "application/jose"

    def _sealed(self, request: tuple[str, str, dict[str, str], bytes]) -> tuple[str, str, dict[str, str], bytes]:
        if self._is_sealed(request):
            return request
        method, url, headers, body = request
        headers = dict(headers)
        # The device signed the plaintext; only the transport sees the JWE.
        return method, url, headers, self.cipher.seal_request(method, headers, body)  # type: ignore[union-attr]

    async def load_gateway_keys(self) -> str:
        """Fetch the JWKS and encrypt to the gateway's current ``use: enc`` key (returns its kid)."""
        resp = await self.transport.send("GET", self.base_url + "/.well-known/jwks.json",
                                         {"Accept": "application/json"}, b"")
        if resp.status != 200:
            raise ClientError(resp)
        return self.cipher.use_jwks(resp.json())  # type: ignore[union-attr,arg-type]

    async def call(self, method: str, path_qs: str, json: object = None, **kwargs: object) -> ApiResponse:
        return await self.send(self.build(method, path_qs, json, **kwargs))  # type: ignore[arg-type]

    # -- journeys --------------------------------------------------------
    async def register_device(self, user_id: str, password: str) -> ApiResponse:
        body = {"user_id": user_id, "password": password,
                "public_key": public_key_to_jwk(self.device_key.public_key()),
                "attributes": self.attributes, "signals": self.signals}
        if self.cipher is not None:
            body["enc_jwk"] = self.cipher.public_jwk
        resp = await self.call("POST", "/devices", body, session=False, device_id="")
        if resp.status == 201:
            doc = resp.json()
            self.device_id = doc["device_id"]  # type: ignore[index]
            self.user_id = user_id
        return resp

    async def login(self, password: str) -> ApiResponse:
        resp = await self.call("POST", "/auth/login", {"user_id": self.user_id, "password": password,
                                                       "signals": self.signals}, session=False)
        if resp.status == 200:
            self.session_token = resp.json()["session_token"]  # type: ignore[index]
        return resp

    async def logout(self) -> ApiResponse:
        resp = await self.call("POST", "/auth/logout")
        if resp.status == 200:
            self.session_token = None
        return resp

    def reinstalled(self) -> MobileClient:
        """The same phone after the app is re-installed: same attributes, new key and install id."""
        attributes = {**self.attributes, "install_id": secrets.token_urlsafe(16)}
        return MobileClient(self.base_url, self.transport, attributes=attributes, clock=self._clock,
                            encrypt=self.cipher is not None, signals=self.signals)

    async def bind_device(self, approval_token: str | None = None) -> ApiResponse:
        """Finish binding this (pending) device with the binding challenge's approval."""
        headers = {"X-Approval-Token": approval_token} if approval_token else None
        return await self.call("POST", "/devices/bind", headers=headers)

    async def devices(self) -> ApiResponse:
        return await self.call("GET", "/devices")

    async def unbind_device(self, device_id: str, approval_token: str | None = None) -> ApiResponse:
        headers = {"X-Approval-Token": approval_token} if approval_token else None
        return await self.call("DELETE", f"/devices/{device_id}", headers=headers)

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

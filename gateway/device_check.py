"""Step 2 of the pipeline: the device-key signature on every request."""

from __future__ import annotations

from redis.asyncio import Redis

from device_fingerprint.errors import DeviceUnknown, NonceReplayed, SignatureMissing
from device_fingerprint.registry import Device, device_key, nonce_key, user_of_device
from device_fingerprint.signature import (
    ParsedSignature,
    parse_signature_header,
    verify_device_signature,
)

__all__ = ["DeviceCheck", "SignedRequest"]


class SignedRequest:
    """The parts of an HTTP request the device signature covers."""

    __slots__ = ("method", "path", "query", "body", "device_id", "signature")

    def __init__(self, method: str, path: str, query: str, body: bytes,
                 headers: dict[bytes, bytes]) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        raw_id = headers.get(b"x-device-id")
        if not raw_id:
            raise SignatureMissing("the request carries no X-Device-Id")
        self.device_id = raw_id.decode("latin-1")
        user_of_device(self.device_id)  # malformed ids are refused before any lookup
        raw_sig = headers.get(b"x-device-signature")
        self.signature: ParsedSignature = parse_signature_header(
            raw_sig.decode("latin-1") if raw_sig else None)


class DeviceCheck:
    def __init__(self, redis: Redis, *, max_skew: int, nonce_ttl: int) -> None:
        self._redis = redis
        self.max_skew = max_skew
        self.nonce_ttl = nonce_ttl

    def verify(self, device: Device, req: SignedRequest, now: float) -> None:
        """Signature and timestamp (pure); the nonce is claimed separately."""
        verify_device_signature(
            public_key=device.public_key, header=req.signature, method=req.method, path=req.path,
            query=req.query, body=req.body, device_id=req.device_id, now=now, max_skew=self.max_skew,
        )

    def nonce_key(self, req: SignedRequest) -> str:
        return nonce_key(req.device_id, req.signature.nonce)

    @staticmethod
    def nonce_claimed(result: object) -> None:
        if not result:
            raise NonceReplayed()

    async def verify_registered(self, req: SignedRequest, now: float) -> Device:
        """Full check for endpoints without a session (login)."""
        raw = await self._redis.hgetall(device_key(req.device_id))
        if not raw:
            raise DeviceUnknown()
        device = Device.from_hash(req.device_id, raw)
        self.verify(device, req, now)
        self.nonce_claimed(await self._redis.set(self.nonce_key(req), b"1", nx=True, ex=self.nonce_ttl))
        return device

"""The client half of end-to-end payload encryption (standard compact JWE).

Requests: the body the device signed is encrypted to the gateway's current
``use: enc`` key from its JWKS (``ECDH-ES+A256KW``, ``A256GCM``) and sent as
``Content-Type: application/jose``. Responses come back as a JWE to the
device's own encryption key, registered as ``enc_jwk``; it is a separate key
from the signing key.
"""

from __future__ import annotations

import base64
import dataclasses

import orjson
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from mobile_client.transport import ApiResponse

__all__ = ["JOSE_MEDIA_TYPE", "PayloadCipher", "PayloadCipherError"]

JOSE_MEDIA_TYPE = "application/jose"
_ALLOWED_ALGS = ("ECDH-ES+A256KW", "ECDH-ES")
_ENC = "A256GCM"


class PayloadCipherError(Exception):
    """The gateway's keys are missing, or a response JWE does not open."""


class PayloadCipher:
    """One device's encryption key plus the gateway key it encrypts to."""

    def __init__(self, enc_key: ECKey | None = None, *, alg: str = _ALLOWED_ALGS[0]) -> None:
        if alg not in _ALLOWED_ALGS:
            raise ValueError(f"alg must be one of {_ALLOWED_ALGS}")
        self.enc_key = enc_key or ECKey.generate_key("P-256", private=True)
        self.alg = alg
        self.gateway_key: ECKey | None = None

    @property
    def public_jwk(self) -> dict[str, object]:
        """What the device registers as ``enc_jwk``."""
        doc = self.enc_key.as_dict(private=False)
        return {k: doc[k] for k in ("kty", "crv", "x", "y")}

    def use_jwks(self, jwks: dict[str, object]) -> str:
        """Pick the gateway's current encryption key (published first); returns its kid."""
        for entry in jwks.get("keys", []):  # type: ignore[union-attr]
            if isinstance(entry, dict) and entry.get("use") == "enc" and entry.get("kty") == "EC":
                self.gateway_key = ECKey.import_key({k: entry[k] for k in ("kty", "crv", "x", "y", "kid")})
                return str(entry["kid"])
        raise PayloadCipherError("the gateway publishes no encryption key (use: enc)")

    def encrypt(self, plaintext: bytes) -> bytes:
        if self.gateway_key is None:
            raise PayloadCipherError("no gateway encryption key yet: load the JWKS first")
        header = {"alg": self.alg, "enc": _ENC, "kid": self.gateway_key.kid, "cty": "application/json"}
        return jwe.encrypt_compact(header, plaintext, self.gateway_key, algorithms=[self.alg, _ENC]).encode()

    def decrypt(self, token: bytes) -> bytes:
        try:
            head = orjson.loads(base64.urlsafe_b64decode(token.split(b".", 1)[0] + b"=="))
            if head.get("alg") not in _ALLOWED_ALGS or head.get("enc") != _ENC:
                raise PayloadCipherError(f"response JWE uses a refused algorithm: {head}")
            obj = jwe.decrypt_compact(token, self.enc_key, algorithms=[head["alg"], _ENC])
        except (JoseError, ValueError) as exc:
            raise PayloadCipherError("the response JWE does not decrypt") from exc
        return obj.plaintext or b""

    def seal_request(self, method: str, headers: dict[str, str], body: bytes) -> bytes:
        """Encrypt a signed request in place of its body; updates ``headers``."""
        headers["Accept"] = JOSE_MEDIA_TYPE
        if method in ("GET", "HEAD"):
            return body  # nothing to encrypt; the response still is
        headers["Content-Type"] = JOSE_MEDIA_TYPE
        return self.encrypt(body)

    def open_response(self, resp: ApiResponse) -> ApiResponse:
        """The response with its JWE body replaced by the plaintext.

        A successful response that comes back in plaintext is refused: the
        gateway encrypts every answer to an encrypted call.
        """
        ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != JOSE_MEDIA_TYPE:
            if 200 <= resp.status < 300 and resp.body:
                raise PayloadCipherError(f"HTTP {resp.status} came back unencrypted")
            return resp
        headers = dict(resp.headers, **{"content-type": "application/json"})
        return dataclasses.replace(resp, body=self.decrypt(resp.body), headers=headers)

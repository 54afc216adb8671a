"""A stand-in face-match provider, for demos and tests only.

:class:`TestFaceProvider` plays the bank's liveness / face-match vendor: it
holds its own P-256 key, publishes the public JWK, and signs result tokens in
the format of docs/face-provider.md. It looks at no picture and matches any
selfie; never configure its key in production.
"""

from __future__ import annotations

import time

import orjson
from joserfc import jws
from joserfc.jwk import ECKey

from auth_tools.face import AUDIENCE

__all__ = ["TestFaceProvider"]


class TestFaceProvider:
    """For demos and tests only: matches any selfie, with whatever verdict it is told.

    ``issue_result`` signs the claims a real provider would send back to the
    app after the selfie; keyword arguments let tests forge every way a
    result can be wrong (no match, no liveness, low score, stale, ...).
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, issuer: str = "https://face-test-provider.invalid", *, kid: str = "face-test-1") -> None:
        self.issuer = issuer
        self.kid = kid
        self._key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"})

    def public_jwk(self) -> dict[str, object]:
        """The provider's public key as a JWK (what ``stepup.face_provider_key`` holds)."""
        return dict(self._key.as_dict(private=False))

    def public_jwks(self) -> dict[str, object]:
        return {"keys": [self.public_jwk()]}

    def public_jwk_json(self) -> str:
        return orjson.dumps(self.public_jwk()).decode()

    def issue_result(self, nonce: str, subject: str, *, match: bool = True, liveness: bool = True,
                     score: float = 0.97, now: float | None = None, lifetime: float = 60.0,
                     audience: str = AUDIENCE, issuer: str | None = None) -> str:
        """The compact JWS the provider hands the app for ``nonce`` and the user ``subject``."""
        iat = int(time.time() if now is None else now)
        claims = {"iss": issuer or self.issuer, "aud": audience, "sub": subject, "nonce": nonce,
                  "match": match, "score": score, "liveness": liveness, "iat": iat,
                  "exp": iat + int(lifetime)}
        header = {"alg": "ES256", "typ": "JWT", "kid": self.kid}
        return jws.serialize_compact(header, orjson.dumps(claims), self._key, algorithms=["ES256"])

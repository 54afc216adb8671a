"""The gateway CA and its revocation list, kept in Redis.

The CA is created on first use. Its certificate is public; its private key is
sealed (AES-GCM under the KEK) in the same Redis value, ``riskgate:pki:ca``.
Creation uses SET NX, so two gateway processes starting together agree on one
CA. Revocations live in the hash ``riskgate:pki:revoked`` (hex serial ->
record) and every certificate the CA issued in ``riskgate:pki:issued`` (hex
serial -> owner), so an unknown serial can be told apart from ours.

These keys are global (no user hash tag): each command touches one key.
"""

from __future__ import annotations

import orjson
from redis.asyncio import Redis

from auth_tools.certificate import (
    Crl,
    GatewayCA,
    IssuedCertificate,
    Revocation,
    RevocationReason,
    build_crl,
    create_ca,
    revoke,
)
from gateway.sealing import Sealer

__all__ = ["CA_KEY", "CRL_LIFETIME", "ISSUED_KEY", "REVOKED_KEY", "PkiStore", "UnknownSerial"]

CA_KEY = "riskgate:pki:ca"
REVOKED_KEY = "riskgate:pki:revoked"
ISSUED_KEY = "riskgate:pki:issued"
CRL_NUMBER_KEY = "riskgate:pki:crl-number"
CRL_LIFETIME = 86_400.0
_CA_AAD = b"riskgate-pki-ca-key-v1"
_CA_NAME = "riskgate gateway CA"


class UnknownSerial(LookupError):
    """The serial was never issued by this gateway's CA."""


class PkiStore:
    """Load (or create) the CA, record issued and revoked certificates, build the CRL."""

    def __init__(self, redis: Redis, sealer: Sealer) -> None:
        self._redis = redis
        self._sealer = sealer
        # The CA never changes once created; parsing it on every approval is waste.
        self._cached: tuple[bytes, GatewayCA] | None = None

    async def ca(self, now: float) -> GatewayCA:
        """The gateway CA with its private key, created on first use."""
        raw = await self._redis.get(CA_KEY)
        if raw is None:
            cert_pem, key_pem = create_ca(_CA_NAME, now)
            doc = orjson.dumps({"cert_pem": cert_pem.decode(),
                                "key": self._sealer.seal(key_pem, _CA_AAD)})
            # Another process may have won the race: then its CA is the one.
            await self._redis.set(CA_KEY, doc, nx=True)
            raw = await self._redis.get(CA_KEY)
        if self._cached is not None and self._cached[0] == raw:
            return self._cached[1]
        doc = orjson.loads(raw)
        ca = GatewayCA.from_pem(doc["cert_pem"], self._sealer.open(doc["key"], _CA_AAD))
        self._cached = (raw, ca)
        return ca

    async def ca_pem(self, now: float) -> bytes:
        return (await self.ca(now)).cert_pem

    async def record_issued(self, issued: IssuedCertificate, *, tool: str, cred_id: str) -> None:
        await self._redis.hset(ISSUED_KEY, format(issued.serial, "x"), orjson.dumps({
            "user_id": issued.user_id, "tool": tool, "cred_id": cred_id,
            "profile": issued.profile.value, "not_after": issued.not_after}))

    async def issued(self, serial: int) -> dict[str, object]:
        raw = await self._redis.hget(ISSUED_KEY, format(serial, "x"))
        if raw is None:
            raise UnknownSerial(format(serial, "x"))
        return orjson.loads(raw)

    async def revoke(self, serial: int, reason: RevocationReason | str, now: float) -> Revocation:
        """Revoke a certificate this CA issued; revoking twice keeps the first record."""
        await self.issued(serial)
        record = revoke(serial, reason, now)
        await self._redis.hsetnx(REVOKED_KEY, format(serial, "x"), orjson.dumps(record.to_dict()))
        raw = await self._redis.hget(REVOKED_KEY, format(serial, "x"))
        return Revocation.from_dict(orjson.loads(raw))

    async def is_revoked(self, serial: int) -> bool:
        return bool(await self._redis.hexists(REVOKED_KEY, format(serial, "x")))

    async def revoked_set(self, serial: int) -> frozenset[int]:
        """The revoked serials that matter for one check: ``{serial}`` or nothing."""
        return frozenset({serial}) if await self.is_revoked(serial) else frozenset()

    async def revocations(self) -> list[Revocation]:
        raw = await self._redis.hgetall(REVOKED_KEY)
        return [Revocation.from_dict(orjson.loads(v)) for v in raw.values()]

    async def crl(self, now: float) -> Crl:
        """A freshly signed CRL; its number only ever grows."""
        number = int(await self._redis.incr(CRL_NUMBER_KEY))
        return build_crl(await self.ca(now), await self.revocations(), now, now + CRL_LIFETIME,
                         crl_number=number)

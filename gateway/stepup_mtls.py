"""``mtls_cert``: the certificate factor proven by the TLS handshake.

When the gateway serves TLS with client certificates (``riskgate serve
--client-ca``), or sits behind a TLS-terminating proxy that forwards the
verified certificate in ``tls.client_cert_header`` (believed only from
``tls.trusted_proxies``), a client certificate issued by the gateway CA to
this user, enrolled and not revoked, proves possession of the certificate key.

It signs no transaction, so it is not dynamic linking: by default it counts
with the password for T2 (``mtls_cert+pwd``), never for the T4/T5 rows, which
need the key to sign the challenge and transaction (``cloud_cert``,
``hardware_cert``).
"""

from __future__ import annotations

from auth_tools.errors import NotEnrolled, VerificationFailed
from gateway.stepup_cert import factor_from_client_certificate
from gateway.stepup_tools import (
    EnrolContext,
    Enrolled,
    FactorResult,
    NotEnrolledOnline,
    StepUpContext,
    display_transaction,
)

__all__ = ["MtlsCertTool"]


class MtlsCertTool:
    name = "mtls_cert"
    keeps_state_on_failure = False
    enrol_tier = None  # the certificate is enrolled as cloud_cert or hardware_cert

    async def _factor(self, ctx: StepUpContext) -> FactorResult:
        tls = ctx.services.config.tls
        proxies = [p.strip() for p in tls.trusted_proxies.split(",") if p.strip()]
        factor = await factor_from_client_certificate(
            ctx.services, ctx.scope or {}, user_id=ctx.user_id, now=ctx.now,
            trusted_proxy_header=tls.client_cert_header or None, trusted_proxies=proxies)
        if factor is None:
            raise NotEnrolled("no client certificate was presented on this connection")
        return factor

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        factor = await self._factor(ctx)
        return ({"tool": self.name, "certificate": factor.detail, "transaction": display_transaction(ctx.challenge)},
                {"serial": (factor.detail or {}).get("serial")})

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        factor = await self._factor(ctx)
        if (factor.detail or {}).get("serial") != state.get("serial"):
            raise VerificationFailed("the certificate changed between begin and complete")
        return FactorResult(self.name, ("swk",), max_tier=2, detail=factor.detail)

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        raise NotEnrolledOnline("client certificates are enrolled as cloud_cert or hardware_cert")

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        raise NotEnrolledOnline("client certificates are enrolled as cloud_cert or hardware_cert")

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id}

"""Certificates as step-up tools: ``cloud_cert`` (T4) and ``hardware_cert`` (T5).

A cloud certificate is issued online: the app makes a key pair in its
keystore and sends a PKCS#10 request; the gateway CA issues it with the
cloud policy once the user has passed the enrolment step-up. A hardware-key
certificate is issued only through the admin API (branch issuance, see
:mod:`gateway.api_pki`). To approve, the key signs
``signing_payload(challenge_id, txn)``; the gateway checks chain, validity at
``now``, key usage, policy, owner and revocation with ``auth_tools.certificate``.

The credential id is the certificate serial in hex; the stored document holds
the (public) certificate, sealed like every credential.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any

from auth_tools import certificate
from auth_tools.certificate import CertificateProfile, VerifiedCertificate
from auth_tools.errors import (
    BadToolInput,
    CertificatePolicyMissing,
    CertificateRevoked,
    ChallengeExpired,
    CredentialRevoked,
    NotEnrolled,
    TransactionSignatureInvalid,
)
from gateway.pki_store import PkiStore
from gateway.services import Services
from gateway.stepup_replay import claim_once
from gateway.stepup_tools import (
    EnrolContext,
    Enrolled,
    FactorResult,
    NotEnrolledOnline,
    StepUpContext,
    display_transaction,
)
from gateway.tls_protocol import client_certificate_from_scope

__all__ = ["CertificateTool", "CloudCertTool", "HardwareCertTool", "TOOL_BY_PROFILE",
           "certificate_document", "factor_from_client_certificate", "pki_of"]

TOOL_BY_PROFILE = {CertificateProfile.CLOUD: "cloud_cert", CertificateProfile.HARDWARE: "hardware_cert"}
_ENROL_KIND = "cert_enrol"
_ENROL_TTL = 300.0
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def pki_of(svc: Services) -> PkiStore:
    return PkiStore(svc.redis, svc.sealer)


def crl_url(svc: Services) -> str | None:
    base = svc.config.server.public_url
    return base.rstrip("/") + "/pki/crl" if base else None


def certificate_document(issued: certificate.IssuedCertificate, device_id: str, now: float) -> dict[str, object]:
    """What the credential store keeps for an issued certificate."""
    return {"serial": format(issued.serial, "x"), "profile": issued.profile.value,
            "fingerprint": issued.fingerprint, "cert_pem": issued.cert_pem.decode(),
            "not_before": issued.not_before, "not_after": issued.not_after,
            "device_id": device_id, "enrolled_at": now}


def _signature(body: Mapping[str, object]) -> bytes:
    text = body.get("signature")
    if not isinstance(text, str) or not text or len(text) > 2048:
        raise BadToolInput("signature is required (base64url)")
    if not _B64URL.fullmatch(text):
        raise BadToolInput("signature is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadToolInput("signature is not base64url") from exc


class CertificateTool:
    """One certificate profile as a step-up tool."""

    keeps_state_on_failure = False

    def __init__(self, profile: CertificateProfile, enrol_tier: int | None) -> None:
        self.profile = profile
        self.name = TOOL_BY_PROFILE[profile]
        self.enrol_tier = enrol_tier
        self._pki: tuple[Services, PkiStore] | None = None

    async def on_removed(self, svc: Services, user_id: str, cred_id: str, doc: Mapping[str, object],
                         now: float) -> None:
        """A certificate the customer removed is revoked too, so the CRL says so."""
        await self._pki_for(svc).revoke(int(str(doc["serial"]), 16), "cessation_of_operation", now)

    def _pki_for(self, svc: Services) -> PkiStore:
        # One store per Services, so the parsed CA is reused between approvals.
        if self._pki is None or self._pki[0] is not svc:
            self._pki = (svc, pki_of(svc))
        return self._pki[1]

    async def _pick(self, ctx: StepUpContext, body: Mapping[str, object]) -> tuple[str, dict[str, object]]:
        creds = await ctx.services.credentials.all(ctx.user_id, self.name)
        if not creds:
            raise NotEnrolled("no certificate of this kind is enrolled")
        wanted = body.get("cred_id")
        if wanted is not None:
            if not isinstance(wanted, str) or wanted not in creds:
                raise NotEnrolled("no such certificate is enrolled")
            return wanted, creds[wanted]
        # The newest certificate not known to be revoked, unless the app names one.
        live = {k: v for k, v in creds.items() if v.get("revoked_at") is None} or creds
        return max(live.items(), key=lambda item: float(item[1].get("enrolled_at", 0)))  # type: ignore[arg-type]

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        cred_id, doc = await self._pick(ctx, body)
        if await self._pki_for(ctx.services).is_revoked(int(str(doc["serial"]), 16)):
            raise CertificateRevoked()
        challenge = ctx.challenge
        options, state = certificate.begin(challenge.challenge_id, challenge.txn, now=ctx.now,
                                           ttl=max(1.0, challenge.expires_at - ctx.now))
        options.update({"tool": self.name, "cred_id": cred_id, "serial": doc["serial"],
                        "transaction": display_transaction(challenge)})
        return options, {**state, "cred_id": cred_id}

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        svc, challenge = ctx.services, ctx.challenge
        signature = _signature(body)
        doc = await svc.credentials.get(ctx.user_id, self.name, str(state.get("cred_id")))
        if doc is None:
            raise CredentialRevoked("the certificate was removed")
        bound = hmac.compare_digest(str(state.get("challenge_id")).encode(), challenge.challenge_id.encode())
        bound &= hmac.compare_digest(str(state.get("txn_hash")).encode(), challenge.txn_hash.encode())
        if not bound:
            raise TransactionSignatureInvalid()
        await claim_once(svc.redis, ctx.user_id, self.name, signature, challenge.expires_at - ctx.now)
        pki = self._pki_for(svc)
        serial = int(str(doc["serial"]), 16)
        approval = certificate.complete(state, str(doc["cert_pem"]), signature, ca=await pki.ca(ctx.now),
                                        revoked=await pki.revoked_set(serial), now=ctx.now,
                                        expected_user_id=ctx.user_id)
        verified = approval.certificate
        if verified.profile is not self.profile:
            raise CertificatePolicyMissing()
        return FactorResult(self.name, verified.amr, verified.max_tier,
                            detail={"serial": format(verified.serial, "x"), "cred_id": state["cred_id"]})

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        if self.enrol_tier is None:
            raise NotEnrolledOnline("hardware-key certificates are issued at a branch")
        options: dict[str, object] = {
            "tool": self.name, "profile": self.profile.value, "csr": "PKCS#10 in PEM",
            "key_algorithms": ["EC P-256", "RSA 2048-8192"],
            "note": "the certificate subject is your user id; the request's own subject is ignored",
            "ca_certificate": (await self._pki_for(ctx.services).ca_pem(ctx.now)).decode(),
        }
        state: dict[str, object] = {"kind": _ENROL_KIND, "user_id": ctx.user_id,
                                    "device_id": ctx.device_id, "expires_at": ctx.now + _ENROL_TTL}
        return options, state

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        if self.enrol_tier is None:
            raise NotEnrolledOnline("hardware-key certificates are issued at a branch")
        if state.get("kind") != _ENROL_KIND or state.get("user_id") != ctx.user_id \
                or state.get("device_id") != ctx.device_id:
            raise BadToolInput("not a certificate enrolment of this device")
        if not isinstance(state.get("expires_at"), int | float) or ctx.now >= state["expires_at"]:  # type: ignore[operator]
            raise ChallengeExpired()
        csr = body.get("csr")
        if not isinstance(csr, str) or len(csr) > 16_384:
            raise BadToolInput("csr is required (PKCS#10 PEM)")
        svc = ctx.services
        return await issue(svc, self.profile, csr, user_id=ctx.user_id, device_id=ctx.device_id,
                           now=ctx.now, describe=self.describe)

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id, "serial": doc.get("serial"), "profile": doc.get("profile"),
                "fingerprint": doc.get("fingerprint"), "not_after": doc.get("not_after"),
                "enrolled_at": doc.get("enrolled_at"),
                "status": "revoked" if doc.get("revoked_at") is not None else "active"}


async def issue(svc: Services, profile: CertificateProfile, csr: str | bytes, *, user_id: str,
                device_id: str, now: float, describe: Any) -> Enrolled:
    """Issue a certificate from ``csr`` and record it as issued (not yet stored as a credential)."""
    pki = pki_of(svc)
    ca = await pki.ca(now)
    issued = certificate.issue_from_csr(csr, ca, user_id, profile, now, crl_url=crl_url(svc))
    cred_id = format(issued.serial, "x")
    doc = certificate_document(issued, device_id, now)
    await pki.record_issued(issued, tool=TOOL_BY_PROFILE[profile], cred_id=cred_id)
    return Enrolled(cred_id, doc, {**describe(cred_id, doc), "certificate": issued.cert_pem.decode(),
                                   "ca_certificate": ca.cert_pem.decode()})


class CloudCertTool(CertificateTool):
    """A cloud certificate (app keystore key, PIN or biometric): enrolled online after T3."""

    def __init__(self) -> None:
        super().__init__(CertificateProfile.CLOUD, enrol_tier=3)


class HardwareCertTool(CertificateTool):
    """A USB/Bluetooth key certificate: issued at a branch (admin API) only."""

    def __init__(self) -> None:
        super().__init__(CertificateProfile.HARDWARE, enrol_tier=None)


async def factor_from_client_certificate(
    svc: Services,
    scope: Mapping[str, Any],
    *,
    user_id: str,
    now: float,
    trusted_proxy_header: str | None = None,
    trusted_proxies: Iterable[str] = (),
) -> FactorResult | None:
    """The certificate factor proven by a verified mTLS client certificate, or None.

    The certificate must chain to the gateway CA, be valid at ``now``, not be
    revoked, name ``user_id`` and still be enrolled (a removed credential does
    not count). It proves the key but signs no transaction: ``detail`` says
    ``txn_bound: False`` so the caller can decide whether that suffices.
    """
    presented = client_certificate_from_scope(scope, trusted_proxy_header, trusted_proxies)
    if presented is None:
        return None
    pki = pki_of(svc)
    verified: VerifiedCertificate = certificate.verify_certificate(
        presented, ca=await pki.ca(now), revoked=await pki.revoked_set(presented.serial_number),
        now=now, expected_user_id=user_id)
    tool = TOOL_BY_PROFILE[verified.profile]
    if await svc.credentials.get(user_id, tool, format(verified.serial, "x")) is None:
        raise CredentialRevoked("the certificate was removed")
    return FactorResult(tool, verified.amr, verified.max_tier,
                        detail={"serial": format(verified.serial, "x"), "via": "mtls", "txn_bound": False})

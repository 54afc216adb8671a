"""The device biometric key as a step-up tool (``biometric``).

Enrolment (after T2) registers the public key of a P-256 key that the app
made in the Android Keystore / Secure Enclave with user authentication
required, plus the id of the biometric set the OS reports. The key is bound
to the device that enrolled it: a challenge from another device never uses
it. When the device reports another biometric set, the credential is marked
revoked in the store and the user must enrol again.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from auth_tools import biometric
from auth_tools.biometric import BiometricCredential
from auth_tools.errors import (
    BadToolInput,
    BiometricSetChanged,
    BiometricStateMismatch,
    CredentialRevoked,
    NotEnrolled,
)
from gateway.stepup_replay import claim_once
from gateway.stepup_tools import EnrolContext, Enrolled, FactorResult, StepUpContext

__all__ = ["BiometricTool"]

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _signature_bytes(text: object) -> bytes:
    if not isinstance(text, str) or not text or len(text) > 512:
        raise BadToolInput("signature is required (base64url)")
    if not _B64URL.fullmatch(text):
        raise BadToolInput("signature is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadToolInput("signature is not base64url") from exc


class BiometricTool:
    name = "biometric"
    keeps_state_on_failure = False
    enrol_tier = 2

    async def _usable(self, ctx: StepUpContext, body: dict[str, object]) -> BiometricCredential:
        creds = await ctx.services.credentials.all(ctx.user_id, self.name)
        here = [BiometricCredential.from_dict(doc) for doc in creds.values()
                if doc.get("device_id") == ctx.challenge.device_id]
        wanted = body.get("cred_id")
        if wanted is not None:
            here = [c for c in here if c.credential_id == wanted]
        if not here:
            raise NotEnrolled("no biometric key is enrolled on this device")
        live = [c for c in here if c.revoked_at is None]
        if not live:
            raise CredentialRevoked("the biometric key was invalidated; enrol it again")
        return max(live, key=lambda c: c.enrolled_at)

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        credential = await self._usable(ctx, body)
        challenge = ctx.challenge
        return biometric.begin(challenge.challenge_id, challenge.txn, credential, ctx.now,
                               ttl=max(1.0, min(120.0, challenge.expires_at - ctx.now)))

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        svc, challenge = ctx.services, ctx.challenge
        signature = _signature_bytes(body.get("signature"))
        set_id = body.get("biometric_set_id")
        if not isinstance(set_id, str):
            raise BadToolInput("biometric_set_id is required")
        cred_id = str(state.get("credential_id"))
        doc = await svc.credentials.get(ctx.user_id, self.name, cred_id)
        if doc is None:
            raise CredentialRevoked("the biometric key was removed")
        credential = BiometricCredential.from_dict(doc)
        if not hmac.compare_digest(credential.device_id.encode(), challenge.device_id.encode()):
            raise BiometricStateMismatch()
        await claim_once(svc.redis, ctx.user_id, self.name, signature, challenge.expires_at - ctx.now)
        try:
            result = biometric.complete(state, body["signature"], credential, ctx.now,  # type: ignore[arg-type]
                                        biometric_set_id=set_id, challenge_id=challenge.challenge_id,
                                        txn=challenge.txn)
        except BiometricSetChanged:
            # The OS has already invalidated the key; keep the record, refuse it from now on.
            revoked = biometric.revoke(credential, ctx.now, "biometric_set_changed")
            await svc.credentials.put(ctx.user_id, self.name, cred_id, revoked.as_dict())
            raise
        return FactorResult(self.name, result.amr,
                            detail={"cred_id": cred_id, "modality": result.modality.value})

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        return biometric.begin_enrollment(ctx.user_id, ctx.device_id, ctx.now)

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        if state.get("user_id") != ctx.user_id or state.get("device_id") != ctx.device_id:
            raise BadToolInput("not a biometric enrolment of this device")
        public_key = body.get("public_key")
        if not isinstance(public_key, str | dict):
            raise BadToolInput("public_key is required (JWK or SPKI PEM)")
        credential = biometric.complete_enrollment(
            state, public_key, body.get("biometric_set_id"), body.get("modality"),  # type: ignore[arg-type]
            body.get("signature"), ctx.now)  # type: ignore[arg-type]
        doc = credential.as_dict()
        return Enrolled(credential.credential_id, doc, self.describe(credential.credential_id, doc))

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id, "modality": doc.get("modality"), "device_id": doc.get("device_id"),
                "enrolled_at": doc.get("enrolled_at"),
                "status": "invalidated" if doc.get("revoked_at") is not None else "active"}

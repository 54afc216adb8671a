"""FIDO2 / WebAuthn as a step-up tool (``fido``): security keys and passkeys.

RP ID, name and origins come from ``[stepup]``. The WebAuthn challenge is
``webauthn_challenge(challenge_id, txn)``, so an assertion approves one
transaction. User verification is required when the challenge needs T3 or
more. The BE/BS flags are recorded at registration and on every use; a
synced passkey (BE=1) helps reach T3 at most. A signature counter that goes
backwards refuses the assertion and flags the credential in the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from auth_tools import fido
from auth_tools.errors import (
    BadToolInput,
    CredentialRevoked,
    FidoCredentialFlagged,
    FidoCredentialUnknown,
    FidoSignCountRegression,
    NotEnrolled,
)
from auth_tools.fido import FidoConfig, FidoCredential, UserVerification
from auth_tools.fido_metadata import FidoMetadata
from device_fingerprint.registry import user_tag
from gateway.services import Services
from gateway.stepup_replay import claim_once
from gateway.stepup_tools import (
    EnrolContext,
    Enrolled,
    FactorResult,
    StepUpContext,
    display_transaction,
)

__all__ = ["FidoTool", "fido_config"]

UV_REQUIRED_FROM_TIER = 3


def fido_config(svc: Services) -> FidoConfig:
    cfg = svc.config.stepup
    return FidoConfig(cfg.rp_id, cfg.rp_name, cfg.origin_list, state_ttl=float(cfg.challenge_ttl))


def _response(body: Mapping[str, object]) -> dict[str, object]:
    response = body.get("response", body)
    if not isinstance(response, dict):
        raise BadToolInput("response must be the PublicKeyCredential JSON")
    return response


# KEYS: the credential's counter; ARGV: the new count. 1 when it moved forward; else 0,
# and the counter stays "flagged" from then on.
_ADVANCE_LUA = """
local raw = redis.call('GET', KEYS[1])
if raw == 'flagged' then return 0 end
if tonumber(ARGV[1]) <= tonumber(raw or '0') then
  redis.call('SET', KEYS[1], 'flagged')
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def _count_key(user_id: str, cred_id: str) -> str:
    return f"{user_tag(user_id)}:fido:count:{hashlib.sha256(cred_id.encode()).hexdigest()[:32]}"


async def advance_sign_count(redis: Any, user_id: str, cred_id: str, count: int) -> bool:
    """Move the credential's signature counter forward atomically. The sealed credential
    document also keeps the counter, but it is read before verification: two assertions
    verified at once would both pass that check."""
    return bool(await redis.eval(_ADVANCE_LUA, 1, _count_key(user_id, cred_id), count))


async def counter_flagged(redis: Any, user_id: str, cred_id: str) -> bool:
    return await redis.get(_count_key(user_id, cred_id)) == b"flagged"


class FidoTool:
    name = "fido"
    keeps_state_on_failure = False
    enrol_tier = 2

    def __init__(self, metadata: FidoMetadata | None = None) -> None:
        # With an MDS3 BLOB, T4 also needs a certified (L2+) model with a proven attestation.
        self.metadata = metadata

    async def _credentials(self, svc: Services, user_id: str) -> list[FidoCredential]:
        return [FidoCredential.from_dict(doc)
                for doc in (await svc.credentials.all(user_id, self.name)).values()]

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        credentials = await self._credentials(ctx.services, ctx.user_id)
        if not credentials:
            raise NotEnrolled("no security key or passkey is registered")
        if all(c.flagged for c in credentials):
            raise FidoCredentialFlagged()
        challenge = ctx.challenge
        uv = (UserVerification.REQUIRED if challenge.required_tier >= UV_REQUIRED_FROM_TIER
              else UserVerification.PREFERRED)
        options, state = fido.begin_authentication(fido_config(ctx.services), challenge.challenge_id,
                                                   challenge.txn, credentials, uv, now=ctx.now)
        return {"tool": self.name, "publicKey": options,
                "transaction": display_transaction(challenge)}, state

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        svc, challenge = ctx.services, ctx.challenge
        response = _response(body)
        cred_id = response.get("rawId") or response.get("id")
        if not isinstance(cred_id, str) or not cred_id:
            raise BadToolInput("the response names no credential")
        doc = await svc.credentials.get(ctx.user_id, self.name, cred_id)
        if doc is None:
            allowed = state.get("allowed")
            if isinstance(allowed, list) and cred_id in allowed:
                raise CredentialRevoked("the authenticator was removed")
            raise FidoCredentialUnknown()
        inner = response.get("response")
        signature = inner.get("signature") if isinstance(inner, dict) else None
        if not isinstance(signature, str):
            raise BadToolInput("the response carries no signature")
        await claim_once(svc.redis, ctx.user_id, self.name, signature.encode(),
                         challenge.expires_at - ctx.now)
        try:
            result = fido.complete_authentication(state, response, FidoCredential.from_dict(doc), ctx.now,
                                                  metadata=self.metadata,
                                                  challenge_id=challenge.challenge_id, txn=challenge.txn)
        except FidoSignCountRegression as exc:
            # Persist the flag before answering: a cloned key stays refused.
            flagged: FidoCredential = exc.credential  # type: ignore[assignment]
            await svc.credentials.put(ctx.user_id, self.name, cred_id, {**doc, **flagged.as_dict()})
            raise
        counted = not result.new_sign_count or await advance_sign_count(
            svc.redis, ctx.user_id, cred_id, result.new_sign_count)
        if counted:
            await svc.credentials.put(ctx.user_id, self.name, cred_id,
                                      {**doc, **result.credential.as_dict()})
        if not counted or (result.new_sign_count and await counter_flagged(svc.redis, ctx.user_id, cred_id)):
            # Two assertions raced with the same (or an older) counter: one of them comes
            # from a clone, and which one cannot be told. The stored credential was read
            # before either wrote; the counter key decides, and the key stays flagged
            # whichever of the two writes its document last.
            flagged = replace(result.credential, flagged=True,
                              flagged_reason=f"sign count {result.new_sign_count} raced another assertion")
            await svc.credentials.put(ctx.user_id, self.name, cred_id, {**doc, **flagged.as_dict()})
            raise FidoSignCountRegression(flagged)
        return FactorResult(self.name, result.amr, result.max_tier, detail={
            "cred_id": cred_id, "uv": result.uv, "be": result.be, "bs": result.bs,
            "sign_count": result.new_sign_count})

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        existing = await self._credentials(ctx.services, ctx.user_id)
        options, state = fido.begin_registration(fido_config(ctx.services), ctx.user_id, ctx.user_id,
                                                 existing, now=ctx.now)
        return {"tool": self.name, "publicKey": options}, {**state, "device_id": ctx.device_id}

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        if state.get("user_id") != ctx.user_id or state.get("device_id") != ctx.device_id:
            raise BadToolInput("not a FIDO registration of this device")
        credential = fido.complete_registration(state, _response(body), ctx.now, metadata=self.metadata)
        label = body.get("label")
        doc = {**credential.as_dict(), "label": label if isinstance(label, str) else "security key"}
        return Enrolled(credential.credential_id, doc, self.describe(credential.credential_id, doc))

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        synced = bool(doc.get("backup_eligible"))
        return {"id": cred_id, "label": doc.get("label", "security key"), "aaguid": doc.get("aaguid"),
                "synced": synced, "backed_up": bool(doc.get("backup_state")),
                "max_tier": 3 if synced else 4, "enrolled_at": doc.get("created_at"),
                "status": "flagged" if doc.get("flagged") else "active"}

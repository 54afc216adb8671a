"""The face-match provider as a step-up tool (``face``).

``begin`` issues a face-session nonce bound to the challenge, its
``txn_hash`` and the user, with the provider's URL; the app's vendor SDK
sends the selfie and the nonce to the provider, which hands the app a signed
verdict; ``complete`` verifies it with :mod:`auth_tools.face` against
``stepup.face_provider_key`` / ``face_issuer`` / ``face_min_score``. Nothing
is enrolled here: the provider matches against the reference photo the bank
holds. Without a configured provider key the tool answers
``409 tool_not_configured``.
"""

from __future__ import annotations

from auth_tools import face
from auth_tools.face import FacePolicy
from gateway.config import StepUpConfig
from gateway.errors import GatewayError
from gateway.services import Services
from gateway.stepup_replay import claim_once
from gateway.stepup_tools import (
    EnrolContext,
    Enrolled,
    FactorResult,
    NotEnrolledOnline,
    StepUpContext,
)

__all__ = ["FaceTool", "FaceToolNotConfigured", "face_policy"]


class FaceToolNotConfigured(GatewayError):
    status = 409
    code = "tool_not_configured"
    message = "face verification is not available: no face-match provider is configured"


def face_policy(cfg: StepUpConfig) -> FacePolicy | None:
    """The provider trust from configuration (validated at load), or None when not configured."""
    if not cfg.face_provider_key:
        return None
    return FacePolicy(cfg.face_issuer.strip(), face.load_provider_keys(cfg.face_provider_key_text()),
                      cfg.face_min_score)


class FaceTool:
    name = "face"
    keeps_state_on_failure = False  # one nonce, one selfie
    enrol_tier = None

    def __init__(self) -> None:
        self._policy: tuple[StepUpConfig, FacePolicy | None] | None = None

    @staticmethod
    def offered(svc: Services) -> bool:
        """Only with a configured provider."""
        return bool(svc.config.stepup.face_provider_key)

    def _policy_for(self, svc: Services) -> FacePolicy:
        cfg = svc.config.stepup
        if self._policy is None or self._policy[0] is not cfg:
            self._policy = (cfg, face_policy(cfg))
        policy = self._policy[1]
        if policy is None:
            raise FaceToolNotConfigured()
        return policy

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        self._policy_for(ctx.services)
        challenge = ctx.challenge
        return face.begin(challenge.challenge_id, challenge.txn, ctx.user_id, ctx.now,
                          provider_url=ctx.services.config.stepup.face_provider_url,
                          ttl=max(1.0, min(300.0, challenge.expires_at - ctx.now)))

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        policy = self._policy_for(ctx.services)
        challenge = ctx.challenge
        result = face.complete(state, body.get("token"), policy, ctx.now, challenge_id=challenge.challenge_id,
                               txn=challenge.txn, user_id=ctx.user_id)
        # The state is single use already; this also closes the race of two completes.
        await claim_once(ctx.services.redis, ctx.user_id, self.name, str(state["nonce"]).encode(),
                         challenge.expires_at - ctx.now)
        return FactorResult(self.name, result.amr, detail={"score": result.score})

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        raise NotEnrolledOnline("the face match uses the reference photo the bank holds; nothing is enrolled")

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        raise NotEnrolledOnline("the face match uses the reference photo the bank holds; nothing is enrolled")

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id}

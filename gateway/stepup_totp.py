"""TOTP tokens (RFC 6238, pyotp) as a step-up tool: enrol with a QR code, then
approve a transaction by typing the code after checking it on screen.

The seed is sealed in the credential store. A code is accepted once: the
timecode is claimed with SET NX, so two concurrent requests with the same code
cannot both pass.
"""

from __future__ import annotations

import secrets

from auth_tools import totp
from auth_tools.errors import AuthToolError, BadToolInput, NotEnrolled, Replayed
from device_fingerprint.registry import user_tag
from gateway.stepup_tools import EnrolContext, Enrolled, FactorResult, StepUpContext

__all__ = ["TotpTool"]


class TotpTool:
    name = "totp"
    keeps_state_on_failure = True
    enrol_tier = 2

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        if not await ctx.services.credentials.all(ctx.user_id, self.name):
            raise NotEnrolled("no OTP token is enrolled")
        return totp.begin(ctx.challenge.challenge_id, ctx.challenge.txn, ctx.now,
                          ttl=max(1.0, ctx.challenge.expires_at - ctx.now))

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        code = body.get("code")
        if not isinstance(code, str):
            raise BadToolInput("code is required")
        svc = ctx.services
        creds = await svc.credentials.all(ctx.user_id, self.name)
        if not creds:
            raise NotEnrolled("no OTP token is enrolled")
        last_error: Exception | None = None
        for cred_id, doc in creds.items():
            cred = totp.TotpCredential.from_dict(doc)
            try:
                result = totp.complete(state, code, cred.seed_b32, cred.last_timecode, ctx.now,
                                       challenge_id=ctx.challenge.challenge_id, txn=ctx.challenge.txn)
            except AuthToolError as exc:  # try the user's next token
                last_error = exc
                continue
            claim = f"{user_tag(ctx.user_id)}:totp-used:{cred_id}:{result.timecode}"
            if not await svc.redis.set(claim, b"1", nx=True, ex=10 * cred.params.step):
                raise Replayed("this code has already been used")
            await svc.credentials.put(ctx.user_id, self.name, cred_id,
                                      {**doc, "last_timecode": result.timecode})
            return FactorResult(self.name, ("otp",), detail={"credential": cred_id})
        assert last_error is not None
        raise last_error

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        provisioning, state = totp.enroll(ctx.user_id, ctx.services.config.stepup.totp_issuer, ctx.now)
        return provisioning.as_options(), state

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        code = body.get("code")
        if not isinstance(code, str):
            raise BadToolInput("code is required")
        cred = totp.confirm_enrollment(state, code, ctx.now)
        label = body.get("label")
        doc = {**cred.as_dict(), "label": label if isinstance(label, str) else "OTP token"}
        cred_id = "totp_" + secrets.token_urlsafe(6)
        return Enrolled(cred_id, doc, self.describe(cred_id, doc))

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id, "label": doc.get("label", "OTP token"), "enrolled_at": doc.get("enrolled_at")}

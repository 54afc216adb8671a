"""SMS codes as step-up tools: ``sms`` (code only, T2 with the password) and
``sms_armor`` (the text shows amount and masked payee, T3 on its own).

The number is the customer's reserved phone, set by the bank (admin API) and
kept sealed in the credential store under tool ``phone``. Neither the code
nor the number is kept in the challenge: only the code's HMAC. The code's
length and lifetime are ``svc.sms_policy`` (configuration, or the operations
parameters in force); a code keeps the length it was sent with.
"""

from __future__ import annotations

from auth_tools import sms
from auth_tools.errors import NotEnrolled
from auth_tools.masking import mask_phone
from gateway.services import Services
from gateway.stepup_tools import (
    EnrolContext,
    Enrolled,
    FactorResult,
    NotEnrolledOnline,
    StepUpContext,
)

__all__ = ["PHONE_TOOL", "SmsTool", "reserved_phone", "set_reserved_phone"]

PHONE_TOOL = "phone"
_PHONE_ID = "reserved"


async def reserved_phone(svc: Services, user_id: str) -> str:
    doc = await svc.credentials.get(user_id, PHONE_TOOL, _PHONE_ID)
    if doc is None:
        raise NotEnrolled("no reserved phone number is on file; visit the bank to add one")
    return str(doc["phone"])


async def set_reserved_phone(svc: Services, user_id: str, phone: str, now: float) -> None:
    await svc.credentials.put(user_id, PHONE_TOOL, _PHONE_ID, {"phone": phone, "set_at": now})


class SmsTool:
    keeps_state_on_failure = True  # a mistyped code may be retyped (the lockout counts)
    enrol_tier = None  # the reserved phone is set by the bank

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = sms.SmsMode(name)

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        svc, challenge = ctx.services, ctx.challenge
        phone = await reserved_phone(svc, ctx.user_id)
        key, policy = svc.derived_keys["sms-code-mac"], svc.sms_policy
        previous = challenge.states.get(self.name)
        if previous is not None and body.get("resend"):
            message, state = sms.resend(previous, challenge.txn, phone, ctx.now, key=key, policy=policy)
        else:
            message, state = sms.begin(challenge.challenge_id, challenge.txn, phone, ctx.now,
                                       key=key, mode=self.mode, policy=policy)
        await svc.sms_sender.send(message.phone, message.text)
        return sms.options(state, ctx.now, policy=policy), state

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        key = ctx.services.derived_keys["sms-code-mac"]
        result = sms.complete(state, body.get("code"), ctx.now, key=key,
                              challenge_id=ctx.challenge.challenge_id, txn=ctx.challenge.txn)
        return FactorResult(self.name, result.amr)

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        raise NotEnrolledOnline("the reserved phone number is set by the bank")

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        raise NotEnrolledOnline("the reserved phone number is set by the bank")

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id, "phone": mask_phone(str(doc.get("phone", "")))}

"""SMS step-up tools refused after a SIM swap.

For ``device.sms_block_days`` after a carrier reports a SIM swap or number
port, whoever holds the new SIM reads the codes: ``sms`` and ``sms_armor``
must not count as a factor. The guard wraps those adapters and refuses both
``begin`` (no code is sent) and ``complete`` (a code sent just before the
report does not count either).
"""

from __future__ import annotations

from typing import Any

from gateway.device_errors import SmsBlockedBySimSwap
from gateway.services import Services
from gateway.stepup_tools import EnrolContext, Enrolled, FactorResult, StepUpContext

__all__ = ["SMS_TOOLS", "SimSwapGuard", "guard_sms_tools"]

SMS_TOOLS = ("sms", "sms_armor")


async def _refuse_after_swap(svc: Services, user_id: str, now: float) -> None:
    blocked = await svc.recognition.sim_swaps.sms_blocked_until(user_id, now)
    if blocked is not None:
        raise SmsBlockedBySimSwap(extra={"sms_blocked_until": blocked})


class SimSwapGuard:
    """A step-up tool adapter that first checks the user's SIM-swap reports."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name: str = inner.name
        self.keeps_state_on_failure: bool = inner.keeps_state_on_failure
        self.enrol_tier: int | None = inner.enrol_tier

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        await _refuse_after_swap(ctx.services, ctx.user_id, ctx.now)
        return await self._inner.begin(ctx, body)

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        await _refuse_after_swap(ctx.services, ctx.user_id, ctx.now)
        return await self._inner.complete(ctx, state, body)

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        return await self._inner.enrol_begin(ctx, body)

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        return await self._inner.enrol_complete(ctx, state, body)

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return self._inner.describe(cred_id, doc)


def guard_sms_tools(tools: dict[str, Any]) -> dict[str, Any]:
    """The tool table with ``sms`` and ``sms_armor`` wrapped in :class:`SimSwapGuard`."""
    return {name: SimSwapGuard(tool) if name in SMS_TOOLS else tool for name, tool in tools.items()}

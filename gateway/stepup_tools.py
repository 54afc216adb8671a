"""The step-up tools as the challenge API sees them.

Each adapter turns one ``auth_tools`` ceremony into ``begin(ctx, body)`` and
``complete(ctx, state, body)``; the libraries stay free of HTTP and Redis
layout, and this module is the only place that knows both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from auth_tools.dynamic_linking import format_amount
from auth_tools.errors import BadToolInput, VerificationFailed
from gateway.challenges import Challenge
from gateway.errors import GatewayError
from gateway.services import Services

__all__ = ["EnrolContext", "Enrolled", "FactorResult", "NotEnrolledOnline", "StepUpContext", "StepUpTool",
           "display_transaction", "mask_payee"]


@dataclass(frozen=True, slots=True)
class FactorResult:
    tool: str
    amr: tuple[str, ...]
    # The highest tier this factor may help reach (synced passkeys stop at T3).
    max_tier: int = 5
    detail: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class StepUpContext:
    services: Services
    challenge: Challenge
    now: float
    # The ASGI scope of the HTTP request (the mTLS client certificate lives there).
    scope: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def user_id(self) -> str:
        return self.challenge.user_id


@dataclass(frozen=True, slots=True)
class EnrolContext:
    """An enrolment by a user with a session on a bound device (step-up already passed)."""

    services: Services
    user_id: str
    device_id: str
    now: float


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A finished enrolment: stored sealed under ``credentials[tool][cred_id]``."""

    cred_id: str
    doc: dict[str, object]
    shown: dict[str, object]  # what the API returns (never secrets)


class StepUpTool(Protocol):
    """One step-up tool as the challenge and enrolment APIs see it.

    ``begin``/``complete`` run inside a challenge (ctx.challenge holds the
    transaction; everything is computed over challenge id and txn_hash).
    ``complete`` raises an ``auth_tools.errors.AuthToolError`` on failure;
    VerificationFailed counts towards the tool lockout. When
    ``keeps_state_on_failure`` is true the ceremony state survives a wrong
    answer (an SMS code may be retyped); otherwise it is single use.

    ``enrol_tier`` is the tier a user must reach to enrol the tool online
    (None: enrolment only through the admin API). ``enrol_begin`` /
    ``enrol_complete`` run the enrolment; ``describe`` says what the user
    sees of a stored credential in the tool list.
    """

    name: str
    keeps_state_on_failure: bool
    enrol_tier: int | None

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]: ...

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult: ...

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]: ...

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled: ...

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]: ...


def mask_payee(account: str) -> str:
    """What the user sees of a payee account: the last four digits."""
    return f"**** {account[-4:]}" if len(account) > 4 else "****"


def display_transaction(challenge: Challenge) -> dict[str, object]:
    txn = challenge.txn
    return {"action": txn.action, "amount": format_amount(txn.amount), "currency": txn.currency,
            "payee": mask_payee(txn.payee) if txn.payee else "", "txn_hash": challenge.txn_hash}


class PasswordTool:
    """Password re-entry, counted with the login lockout."""

    name = "pwd"
    keeps_state_on_failure = True
    enrol_tier = None

    async def begin(self, ctx: StepUpContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        return {"prompt": "Enter your password to approve", "transaction": display_transaction(ctx.challenge)}, {}

    async def complete(self, ctx: StepUpContext, state: dict[str, object],
                       body: dict[str, object]) -> FactorResult:
        password = body.get("password")
        if not isinstance(password, str):
            raise BadToolInput("password is required")
        try:
            await ctx.services.users.check_password(ctx.user_id, password)
        except GatewayError as exc:
            if exc.code == "invalid_credentials":
                raise VerificationFailed() from exc
            raise
        return FactorResult(self.name, ("pwd",))

    async def enrol_begin(self, ctx: EnrolContext, body: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
        raise NotEnrolledOnline("the password is set at enrolment (admin API), not as a step-up tool")

    async def enrol_complete(self, ctx: EnrolContext, state: dict[str, object],
                             body: dict[str, object]) -> Enrolled:
        raise NotEnrolledOnline("the password is set at enrolment (admin API), not as a step-up tool")

    def describe(self, cred_id: str, doc: dict[str, object]) -> dict[str, object]:
        return {"id": cred_id}


class NotEnrolledOnline(GatewayError):
    status = 409
    code = "enrolment_not_online"
    message = "this tool is enrolled through the bank, not in the app"

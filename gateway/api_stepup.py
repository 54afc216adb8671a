"""The step-up API: ``POST /auth/challenges/{id}/{tool}/begin`` and ``/complete``.

Both are device-signed and need the session the challenge was issued to.
Failures of a tool count towards that tool's lockout for the user; errors
never say which element of a credential was wrong. The operations parameters
in force (gateway.switches) apply to every call.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.requests import Request
from starlette.responses import Response

from auth_tools.errors import VerificationFailed
from gateway.api_auth import _json_body, _signed, json_response
from gateway.challenges import Challenge
from gateway.errors import NotFound, Unauthorized
from gateway.services import Services
from gateway.stepup_tools import FactorResult, StepUpContext, display_transaction
from gateway.switches_store import ops_settings
from risk_engine import LabelSource, RiskEngineError, submit_label

__all__ = ["begin_tool", "complete_tool"]

log = logging.getLogger("riskgate.stepup")


async def _session_and_challenge(request: Request, now: float) -> tuple[Services, Challenge, str]:
    svc: Services = request.app.state.services
    req = _signed(request)
    device = await svc.device_check.verify_registered(req, now)
    raw = request.scope["riskgate.headers"].get(b"authorization", b"").decode("latin-1")
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("session_required", "step-up needs the session the challenge was issued to")
    session = await svc.sessions.load(token.strip(), device_id=device.device_id, now=now)
    challenge = await svc.challenges.load(request.path_params["challenge_id"], sid=session.sid,
                                          device_id=device.device_id, now=now)
    tool = request.path_params["tool"]
    if tool not in svc.stepup_tools:
        raise NotFound("unknown_tool", f"no step-up tool named {tool!r}")
    # The tool parameters in force (lockout, SMS code length and lifetime), also on a
    # gateway that has served no /v1 call since they changed.
    await ops_settings(svc, now)
    return svc, challenge, tool


async def begin_tool(request: Request) -> Response:
    now = time.time()
    svc, challenge, tool = await _session_and_challenge(request, now)
    await svc.tool_lockout.check(challenge.user_id, tool, now)
    options, state = await svc.stepup_tools[tool].begin(
        StepUpContext(svc, challenge, now, request.scope), _json_body_or_empty(request))
    challenge.states[tool] = state
    await svc.challenges.save(challenge, now)
    return json_response({"challenge_id": challenge.challenge_id, "tool": tool, **options})


def _json_body_or_empty(request: Request) -> dict[str, object]:
    return _json_body(request) if request.scope["riskgate.body"] else {}


async def _failed_step_up(svc: Services, challenge: Challenge, tool: str, now: float) -> None:
    """A wrong answer: a risk feature (failed step-ups per hour and day), and when it
    locks the tool, a weak fraud label on the decision that asked for the step-up."""
    await svc.risk.history.record_stepup_failure(challenge.user_id,
                                                 f"{challenge.challenge_id}:{tool}:{now!r}", now)
    if (await svc.tool_lockout.status(challenge.user_id, tool)).locked_at(now):
        _weak_label(svc, challenge, fraud=True, now=now)


def _weak_label(svc: Services, challenge: Challenge, *, fraud: bool, now: float) -> None:
    """Step-up outcomes teach the model, weakly (weight ``risk.step_up_label_weight``)."""
    if not challenge.decision_id:
        return

    async def submit() -> None:
        try:
            await submit_label(svc.redis, challenge.decision_id, fraud=fraud, source=LabelSource.STEP_UP,
                               now=now, step_up_weight=svc.config.risk.step_up_label_weight)
        except RiskEngineError:  # the decision aged out of the stream index, say
            log.info("no weak label for decision %s", challenge.decision_id)

    task = asyncio.get_running_loop().create_task(submit())
    svc.background.add(task)
    task.add_done_callback(svc.background.discard)


async def complete_tool(request: Request) -> Response:
    now = time.time()
    svc, challenge, tool = await _session_and_challenge(request, now)
    adapter = svc.stepup_tools[tool]
    state = challenge.states.pop(tool, None)
    if state is None:
        raise NotFound("tool_not_begun", f"call /auth/challenges/{{id}}/{tool}/begin first")
    if not adapter.keeps_state_on_failure:
        # Single-use ceremony state: gone before it is verified.
        await svc.challenges.save(challenge, now)
    # Counted as a failure until it succeeds, so racing guesses cannot exceed the limit.
    await svc.tool_lockout.attempt(challenge.user_id, tool, now)
    try:
        result: FactorResult = await adapter.complete(StepUpContext(svc, challenge, now, request.scope), state,
                                                      _json_body_or_empty(request))
    except VerificationFailed as exc:
        svc.metrics.stepups.labels(tool, exc.code).inc()
        await _failed_step_up(svc, challenge, tool, now)
        raise
    svc.metrics.stepups.labels(tool, "ok").inc()
    await svc.tool_lockout.record_success(challenge.user_id, tool)

    challenge.completed[tool] = {"amr": list(result.amr), "max_tier": result.max_tier, "at": now,
                                 "detail": result.detail or {}}
    present = ("bound_device",) if challenge.bound_device else ()
    reached = svc.tier_policy.satisfied_tier(challenge.completed, present=present)
    if challenge.rows:  # online activation: only the named combinations approve
        done = set(challenge.completed)
        reached = challenge.required_tier if any(set(row) <= done for row in challenge.rows) else 0
    if reached >= challenge.required_tier:
        amr = svc.tier_policy.amr(challenge.completed)
        token = await svc.challenges.approve(challenge, acr=f"T{reached}", amr=amr,
                                             tools=tuple(challenge.completed), now=now)
        _weak_label(svc, challenge, fraud=False, now=now)
        return json_response({
            "status": "approved", "approval_token": token, "acr": f"T{reached}", "amr": list(amr),
            "expires_in": svc.challenges.approval_ttl, "transaction": display_transaction(challenge),
            "retry_with_header": "X-Approval-Token",
        })
    await svc.challenges.save(challenge, now)
    return json_response({
        "status": "pending", "completed": sorted(challenge.completed), "required_tier": f"T{challenge.required_tier}",
        "reached_tier": f"T{reached}",
        "acceptable": challenge.rows or svc.tier_policy.combinations(challenge.required_tier),
    })

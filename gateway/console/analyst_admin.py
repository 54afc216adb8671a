"""Managing analysts, shared by the console's analyst page and the session admin API:
invite (a one-time enrolment link), change a role, remove. Each appends an audit entry
with the signed-in admin as actor; the callers authorise (``manage_analysts``).

Nobody changes their own role or removes themselves: a last admin cannot lock the
console out by mistake (``riskgate admin create`` on the command line remains).
"""

from __future__ import annotations

from starlette.requests import Request

from gateway.analyst_actions import audit
from gateway.console.analysts import Analyst, AnalystNotFound, AnalystStore, Role, create_with_link
from gateway.errors import BadRequest, Forbidden
from gateway.services import Services

__all__ = ["change_role", "enrolment_link", "invite", "remove", "role_named"]


def role_named(name: object) -> Role:
    """The role called ``name``; 400 ``invalid_role`` otherwise."""
    try:
        return Role(name)
    except ValueError as exc:
        raise BadRequest("invalid_role", "role must be one of " + ", ".join(r.value for r in Role)) from exc


def enrolment_link(request: Request, token: str) -> str:
    """The console page where ``token``'s analyst registers a passkey, on this host."""
    return f"{request.url.scheme}://{request.url.netloc}/console/enrol?token={token}"


def _not_self(actor: str, name: str) -> None:
    if actor.strip().casefold() == name.strip().casefold():
        raise Forbidden("analyst_self_change",
                        "an analyst cannot change their own role or remove themselves; ask another admin")


async def invite(svc: Services, name: str, role: Role, *, actor: str, now: float) -> tuple[str, int]:
    """Create an analyst without passkeys: their one-time enrolment token and the audit
    entry's number. Raises AnalystExists or AnalystError (an invalid name)."""
    token = await create_with_link(AnalystStore(svc.redis), name, role, now=now)
    seq = await audit(svc, actor, "analyst.create", {"name": name, "role": role.value}, now)
    return token, seq


async def change_role(svc: Services, name: str, role: Role, *, actor: str,
                      now: float) -> tuple[Analyst, int]:
    """Give ``name`` another role, in force from their next request: the analyst as they were
    and the audit entry's number. Raises AnalystNotFound."""
    _not_self(actor, name)
    store = AnalystStore(svc.redis)
    before = await store.get(name)
    if before is None:
        raise AnalystNotFound()
    await store.set_role(before.name, role)
    seq = await audit(svc, actor, "analyst.role", {
        "name": before.name, "role": role.value, "previous": before.role.value}, now)
    return before, seq


async def remove(svc: Services, name: str, *, actor: str, now: float) -> tuple[Analyst, int]:
    """Delete an analyst and their passkeys (their sessions end at their next request): the
    removed analyst and the audit entry's number. Raises AnalystNotFound."""
    _not_self(actor, name)
    removed = await AnalystStore(svc.redis).remove(name)
    seq = await audit(svc, actor, "analyst.remove", {"name": removed.name, "role": removed.role.value}, now)
    return removed, seq

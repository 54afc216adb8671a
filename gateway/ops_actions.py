"""Changing the operations settings, shared by the admin API and the analyst console:
read the version in force, publish a new document, roll back to an earlier version,
each change appended to the audit trail with its author.

Both surfaces authenticate and authorise; these functions validate, act and record,
and raise the HTTP errors (gateway.errors.GatewayError) with stable codes:

    change_ops(svc, document, *, author, reason, base_version, now)  -> (OpsRecord, audit_seq)
    rollback_ops(svc, version, *, author, reason, now)               -> (OpsRecord, audit_seq)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auth_tools.dynamic_linking import format_amount
from gateway.analyst_actions import audit
from gateway.errors import GatewayError, NotFound
from gateway.services import Services
from gateway.switches import (
    TOOL_PARAMETERS,
    OpsDocumentInvalid,
    OpsError,
    OpsSettings,
    OpsVersionConflict,
    OpsVersionNotFound,
)
from gateway.switches_store import OpsRecord
from gateway.text_fields import MAX_REASON, required_text
from limits import Tier

__all__ = [
    "MAX_AUTHOR",
    "MAX_REASON",
    "OpsConflict",
    "OpsRefused",
    "OpsState",
    "OpsStateUnavailable",
    "change_ops",
    "in_force",
    "ops_state",
    "rollback_ops",
]

MAX_AUTHOR = 64


class OpsRefused(GatewayError):
    """422; ``extra["problems"]`` lists every ``{"field", "message"}``."""

    status = 422
    code = "ops_settings_invalid"
    message = "the operations settings do not validate"


class OpsConflict(GatewayError):
    status = 409
    code = "ops_version_conflict"
    message = "the operations settings changed meanwhile"


class OpsStateUnavailable(GatewayError):
    status = 503
    code = "state_unavailable"
    message = "the gateway cannot reach its state store; retry shortly"


def _http(exc: OpsError) -> GatewayError:
    if isinstance(exc, OpsDocumentInvalid):
        return OpsRefused(message=exc.message, extra={"problems": exc.problems})
    if isinstance(exc, OpsVersionNotFound):
        return NotFound(exc.code, exc.message)
    if isinstance(exc, OpsVersionConflict):
        return OpsConflict(exc.code, f"{exc.message}: the operations settings were changed meanwhile; "
                                     "read them again before changing them")
    return OpsStateUnavailable(message=exc.message)


@dataclass(frozen=True, slots=True)
class OpsState:
    """The stored version in force, the settings it gives, and the newest versions."""

    record: OpsRecord  # version 0 before the first change
    settings: OpsSettings
    ignored: OpsDocumentInvalid | None  # why its parameters are not applied, if they are not
    history: list[OpsRecord]


async def ops_state(svc: Services, *, history: int = 20) -> OpsState:
    """The current version as every gateway applies it, and the last ``history`` versions."""
    store = svc.switches.store
    try:
        record, versions = await store.current(), await store.history(history)
    except OpsError as exc:
        raise _http(exc) from exc
    if record is None:
        record = OpsRecord(0, OpsSettings().document(), "", "", 0.0)
    try:
        settings, ignored = svc.switches.stored(record)
    except OpsDocumentInvalid as exc:  # not even its switches read: gateways keep what they had
        settings, ignored = OpsSettings(version=record.version), exc
    return OpsState(record, settings, ignored, versions)


def in_force(svc: Services, settings: OpsSettings) -> dict[str, object]:
    """The limit table (CNY strings) and tool parameters once the settings' overrides apply."""
    switches = svc.switches
    limits = settings.parameters.limits(switches.base_limits)
    doc: dict[str, object] = {"tiers": {t.label: {
        "per_transaction": format_amount(limits.tier_limit(t).per_transaction),
        "daily": format_amount(limits.tier_limit(t).daily)} for t in Tier}}
    stepup = settings.parameters.stepup(switches.base_stepup)
    doc.update({name: getattr(stepup, name) for name in TOOL_PARAMETERS})
    return doc


async def _publish(svc: Services, settings: OpsSettings, *, author: str, reason: str, now: float,
                   base_version: int | None, rollback_of: int | None = None) -> OpsRecord:
    try:
        version = await svc.switches.store.publish(settings, author=author, reason=reason, now=now,
                                                   base_version=base_version, rollback_of=rollback_of)
    except OpsError as exc:
        raise _http(exc) from exc
    svc.switches.invalidate()  # this process: at its next request, not 0.5 s later
    return OpsRecord(version, settings.document(), author, reason, now, rollback_of)


async def change_ops(svc: Services, document: Mapping[str, Any], *, author: str, reason: str,
                     base_version: int | None, now: float) -> tuple[OpsRecord, int]:
    """Publish ``document`` (business, channels, parameters) as the next version.

    It replaces the current document whole. With ``base_version`` the change is
    refused (409 ``ops_version_conflict``) unless that is still the current
    version. A document that does not validate is refused with 422
    ``ops_settings_invalid`` and its ``problems``; nothing is written then.
    Returns the new version's record and its audit entry's number.
    """
    author = required_text(author, "author", what="who makes this change", limit=MAX_AUTHOR)
    reason = required_text(reason, "reason", what="why this change")
    try:
        settings = svc.switches.parse(document, now=now)
    except OpsDocumentInvalid as exc:
        raise _http(exc) from exc
    record = await _publish(svc, settings, author=author, reason=reason, now=now,
                            base_version=base_version)
    seq = await audit(svc, author, "ops.publish", {
        "version": record.version, "reason": reason, "document": record.document}, now)
    return record, seq


async def rollback_ops(svc: Services, version: int, *, author: str, reason: str, now: float,
                       base_version: int | None = None) -> tuple[OpsRecord, int]:
    """Publish stored ``version``'s document again as the next version (``rollback_of``).

    It is validated against the current configuration like a new document, but
    not against ``now``: an ``until`` that has passed only means that switch is
    on. 404 ``ops_version_not_found`` for an unknown version; ``base_version``
    as in :func:`change_ops`.
    """
    author = required_text(author, "author", what="who makes this change", limit=MAX_AUTHOR)
    reason = required_text(reason, "reason", what="why this change")
    try:
        stored = await svc.switches.store.get(version)
        settings = svc.switches.parse(stored.document)
    except OpsError as exc:
        raise _http(exc) from exc
    record = await _publish(svc, settings, author=author, reason=reason, now=now,
                            base_version=base_version, rollback_of=version)
    seq = await audit(svc, author, "ops.rollback", {
        "version": record.version, "rollback_of": version, "reason": reason,
        "document": record.document}, now)
    return record, seq

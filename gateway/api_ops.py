"""Admin API for the operations settings (admin token): business and channel
switches and live parameters, versioned and audited.

    GET  /admin/ops                      current version, its document, the values in force, history
    PUT  /admin/ops                      {"business", "channels", "parameters", "author", "reason",
                                          "base_version"?}  the new full document
    POST /admin/ops/rollback             {"version", "author", "reason"}

A document that does not validate is refused with 422 ``ops_settings_invalid``
and a ``problems`` list (field, message); nothing is written. Every change is
appended to the audit trail (gateway.audit_trail) with the author as actor; the
acting is gateway.ops_actions, shared with the analyst console.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api_admin import require_admin
from gateway.api_auth import _json_body, json_response
from gateway.errors import BadRequest
from gateway.ops_actions import OpsState, change_ops, in_force, ops_state, rollback_ops
from gateway.services import Services
from gateway.switches_store import OpsRecord

__all__ = ["ROUTES", "change_view", "changed_document", "state_view", "text_field", "version_field"]

_HISTORY = 20
_META = frozenset({"author", "reason", "base_version"})


def text_field(doc: dict[str, object], field: str) -> str:
    """A text field of the body ("" when missing or not text: the action refuses it)."""
    value = doc.get(field)
    return value if isinstance(value, str) else ""


def version_field(doc: dict[str, object], field: str, *, required: bool) -> int | None:
    value = doc.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"invalid_{field}", f"{field} must be a version number")
    return value


def changed_document(doc: dict[str, object]) -> dict[str, object]:
    """A PUT body without its author, reason and base version: the settings document."""
    return {k: v for k, v in doc.items() if k not in _META}


def state_view(svc: Services, state: OpsState) -> dict[str, object]:
    """What GET answers: the version in force, its document and values, the history."""
    doc = {**state.record.summary(), "document": state.record.document,
           "in_force": in_force(svc, state.settings), "history": [r.summary() for r in state.history]}
    if state.ignored is not None:
        doc["problems"] = state.ignored.problems
    return doc


def change_view(svc: Services, record: OpsRecord, seq: int) -> dict[str, object]:
    """What a change or a rollback answers: the new version, its document and values."""
    settings = svc.switches.parse(record.document)
    doc: dict[str, object] = {"version": record.version, "document": record.document,
                              "in_force": in_force(svc, settings), "audit_seq": seq}
    if record.rollback_of is not None:
        doc["rollback_of"] = record.rollback_of
    return doc


async def get_ops(request: Request) -> Response:
    svc = require_admin(request)
    return json_response(state_view(svc, await ops_state(svc, history=_HISTORY)))


async def put_ops(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    base_version = version_field(doc, "base_version", required=False)
    record, seq = await change_ops(svc, changed_document(doc),
                                   author=text_field(doc, "author"), reason=text_field(doc, "reason"),
                                   base_version=base_version, now=time.time())
    return json_response(change_view(svc, record, seq))


async def post_rollback(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    target = version_field(doc, "version", required=True)
    record, seq = await rollback_ops(svc, target, author=text_field(doc, "author"),  # type: ignore[arg-type]
                                     reason=text_field(doc, "reason"), now=time.time())
    return json_response(change_view(svc, record, seq))


ROUTES = [
    Route("/admin/ops", get_ops, methods=["GET"]),
    Route("/admin/ops", put_ops, methods=["PUT"]),
    Route("/admin/ops/rollback", post_rollback, methods=["POST"]),
]

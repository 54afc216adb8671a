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
from gateway.ops_actions import change_ops, in_force, ops_state, rollback_ops

__all__ = ["ROUTES"]

_HISTORY = 20
_META = frozenset({"author", "reason", "base_version"})


def _text(doc: dict[str, object], field: str) -> str:
    """A text field of the body ("" when missing or not text: the action refuses it)."""
    value = doc.get(field)
    return value if isinstance(value, str) else ""


def _version(doc: dict[str, object], field: str, *, required: bool) -> int | None:
    value = doc.get(field)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"invalid_{field}", f"{field} must be a version number")
    return value


async def get_ops(request: Request) -> Response:
    svc = require_admin(request)
    state = await ops_state(svc, history=_HISTORY)
    doc = {**state.record.summary(), "document": state.record.document,
           "in_force": in_force(svc, state.settings), "history": [r.summary() for r in state.history]}
    if state.ignored is not None:
        doc["problems"] = state.ignored.problems
    return json_response(doc)


async def put_ops(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    base_version = _version(doc, "base_version", required=False)
    record, seq = await change_ops(svc, {k: v for k, v in doc.items() if k not in _META},
                                   author=_text(doc, "author"), reason=_text(doc, "reason"),
                                   base_version=base_version, now=time.time())
    settings = svc.switches.parse(record.document)
    return json_response({"version": record.version, "document": record.document,
                          "in_force": in_force(svc, settings), "audit_seq": seq})


async def post_rollback(request: Request) -> Response:
    svc = require_admin(request)
    doc = _json_body(request)
    target = _version(doc, "version", required=True)
    record, seq = await rollback_ops(svc, target, author=_text(doc, "author"),  # type: ignore[arg-type]
                                     reason=_text(doc, "reason"), now=time.time())
    settings = svc.switches.parse(record.document)
    return json_response({"version": record.version, "rollback_of": target, "document": record.document,
                          "in_force": in_force(svc, settings), "audit_seq": seq})


ROUTES = [
    Route("/admin/ops", get_ops, methods=["GET"]),
    Route("/admin/ops", put_ops, methods=["PUT"]),
    Route("/admin/ops/rollback", post_rollback, methods=["POST"]),
]

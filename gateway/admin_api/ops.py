"""Operations settings over /admin/api: business and channel switches and live parameters.

Every role may read them (as on the console's page); changing and rolling back
need ``manage_ops`` and go through gateway.ops_actions with the signed-in analyst
as author. Bodies, validation and answers are those of the token API
(gateway.api_ops).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.auth import answer, json_body, operation
from gateway.api_ops import change_view, changed_document, state_view, text_field, version_field
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, services
from gateway.ops_actions import change_ops, ops_state, rollback_ops

__all__ = ["ROUTES"]

HISTORY = 20


@operation(Permission.VIEW)  # as on the console's page: everyone may look
async def get_ops(request: Request, who: SignedIn) -> Response:
    svc = services(request)
    return answer(state_view(svc, await ops_state(svc, history=HISTORY)))


@operation(Permission.MANAGE_OPS)
async def put_ops(request: Request, who: SignedIn) -> Response:
    """The whole new document (an ``author`` in the body is ignored: it is the session's)."""
    svc = services(request)
    doc = json_body(request)
    base_version = version_field(doc, "base_version", required=False)
    record, seq = await change_ops(svc, changed_document(doc), author=who.name,
                                   reason=text_field(doc, "reason"), base_version=base_version,
                                   now=time.time())
    return answer(change_view(svc, record, seq))


@operation(Permission.MANAGE_OPS)
async def post_rollback(request: Request, who: SignedIn) -> Response:
    svc = services(request)
    doc = json_body(request)
    target = version_field(doc, "version", required=True)
    record, seq = await rollback_ops(svc, target, author=who.name,  # type: ignore[arg-type]
                                     reason=text_field(doc, "reason"), now=time.time())
    return answer(change_view(svc, record, seq))


ROUTES = [
    Route("/ops", get_ops, methods=["GET"]),
    Route("/ops", put_ops, methods=["PUT"]),
    Route("/ops/rollback", post_rollback, methods=["POST"]),
]

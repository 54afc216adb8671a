"""Decisions over /admin/api: the filtered feed, one decision, labels, the review queue.

The same reads and labels as the console's decision pages (gateway.api_console,
gateway.decision_review, gateway.analyst_actions), as JSON.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.auth import answer, json_body, operation
from gateway.api_console import feed_cursor, feed_filter, query_count, read_feed
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, services
from gateway.decision_detail import model_contributions
from gateway.decision_review import (
    label_verdict,
    recorded_decision,
    review_queue,
    unsure_marks,
)
from risk_engine import Label, read_labels

__all__ = ["ROUTES"]


def _label(label: Label | None) -> dict[str, Any] | None:
    if label is None:
        return None
    return {"verdict": "fraud" if label.fraud else "legitimate", "source": label.source.value,
            "strong": label.source.strong, "author": label.author or None, "at": label.at}


async def _labels(redis: Redis, ids: list[str]) -> dict[str, Label]:
    return await read_labels(redis, ids)


@operation(Permission.VIEW)
async def feed(request: Request, who: SignedIn) -> Response:
    """Newest first, filtered; ``next_before`` continues the scan."""
    wanted, count = feed_filter(request), query_count(request)
    redis = services(request).redis
    page = await read_feed(redis, wanted, count=count, before=feed_cursor(request))
    labels = await _labels(redis, [d["decision_id"] for d in page.decisions])
    doc = page.to_dict(wanted)
    doc["decisions"] = [{**d, "label": _label(labels.get(d["decision_id"]))} for d in page.decisions]
    return answer(doc)


@operation(Permission.VIEW)
async def detail(request: Request, who: SignedIn) -> Response:
    """One decision with its label, the unsure mark and the model's feature contributions."""
    decision_id = request.path_params["decision_id"]
    svc = services(request)
    event = await recorded_decision(svc.redis, decision_id)
    label = (await _labels(svc.redis, [decision_id])).get(decision_id)
    unsure = (await unsure_marks(svc.redis, [decision_id])).get(decision_id)
    return answer({**asdict(event), "label": _label(label), "unsure": unsure,
                   "model": await model_contributions(svc.risk.model_store, event)})


@operation(Permission.LABEL)
async def label(request: Request, who: SignedIn) -> Response:
    """fraud / legitimate: an analyst label for the learner; unsure: kept for the review queue."""
    decision_id = request.path_params["decision_id"]
    verdict = json_body(request).get("verdict")
    status, seq = await label_verdict(services(request), decision_id, verdict, author=who.name,
                                      now=time.time())
    doc = {"decision_id": decision_id, "verdict": verdict, "audit_seq": seq}
    return answer(doc if status is None else {**doc, "status": status})


@operation(Permission.VIEW)
async def review(request: Request, who: SignedIn) -> Response:
    """Medium and high risk decisions without an analyst's (or the bank's) label, newest first."""
    queue = await review_queue(services(request).redis)
    return answer({"decisions": [{**asdict(e), "label": _label(queue.labels.get(e.decision_id)),
                                  "unsure": queue.unsure.get(e.decision_id)} for e in queue.decisions],
                   "scanned": queue.scanned})


ROUTES = [
    Route("/decisions", feed, methods=["GET"]),
    Route("/decisions/{decision_id}", detail, methods=["GET"]),
    Route("/decisions/{decision_id}/label", label, methods=["POST"]),
    Route("/review", review, methods=["GET"]),
]

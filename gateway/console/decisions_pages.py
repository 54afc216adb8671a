"""Console pages over recorded decisions: the filtered feed, one decision, labels, the review queue.

Labels go through ``risk_engine.submit_label`` (the learner's queue) as an
analyst label by the signed-in analyst; "unsure" is kept beside it for the
review queue and changes nothing for the learner (gateway.decision_review).
Every label is an audit entry.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.api_console import feed_filter, read_feed
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, action, done, page, services
from gateway.console.render import SECURITY_HEADERS, fragment, render
from gateway.decision_detail import model_contributions
from gateway.decision_review import (
    label_verdict,
    recorded_decision,
    review_queue,
    unsure_marks,
)
from gateway.errors import BadRequest
from risk_engine import (
    Outcome,
    RiskLevel,
    read_labels,
)

__all__ = ["ROUTES"]

_OUTCOMES = sorted(v for k, v in vars(Outcome).items() if k.isupper())


async def _label_texts(request: Request, ids: list[str]) -> dict[str, str]:
    labels = await read_labels(services(request).redis, ids)
    return {i: ("fraud" if lb.fraud else "legitimate") + (f" ({lb.author or lb.source.value})")
            for i, lb in labels.items()}


async def _unsure(request: Request, ids: list[str]) -> dict[str, str]:
    marks = await unsure_marks(services(request).redis, ids)
    return {i: f"unsure ({mark['by']})" for i, mark in marks.items()}


@page(Permission.VIEW)
async def feed(request: Request, who: SignedIn) -> Response:
    wanted = feed_filter(request)
    before = request.query_params.get("before") or None
    if before is not None and not all(p.isascii() and p.isdigit() and len(p) <= 19
                                      for p in before.split("-", 1)):
        raise BadRequest("invalid_cursor", "before must be a stream id from the feed")
    found = await read_feed(services(request).redis, wanted, count=50, before=before)
    decisions, next_before = found.decisions, found.next_before
    labels = await _label_texts(request, [d["decision_id"] for d in decisions])
    if request.query_params.get("partial") == "1":
        return HTMLResponse(fragment("_decision_rows.html", decisions=decisions, labels=labels),
                            headers=SECURITY_HEADERS)
    return render("decisions.html", who=who, decisions=decisions, labels=labels, filters=wanted,
                  outcomes=_OUTCOMES, levels=[lv.value for lv in RiskLevel],
                  poll_url="/console/decisions?" + urlencode({**wanted, "partial": "1"}),
                  next_before=next_before,
                  more_url="/console/decisions?" + urlencode({**wanted, "before": next_before or ""}))


@page(Permission.VIEW)
async def detail(request: Request, who: SignedIn) -> Response:
    decision_id = request.path_params["decision_id"]
    event = await recorded_decision(services(request).redis, decision_id)
    label = (await _label_texts(request, [decision_id])).get(decision_id) \
        or (await _unsure(request, [decision_id])).get(decision_id)
    model = await model_contributions(services(request).risk.model_store, event)
    return render("decision.html", who=who, d=asdict(event), label=label, model=model)


@action(Permission.LABEL)
async def label(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    decision_id = request.path_params["decision_id"]
    verdict = fields.get("verdict", "")
    status, seq = await label_verdict(services(request), decision_id, verdict, author=who.name,
                                      now=time.time())
    extra = {} if status is None else {"status": status}
    return done(request, f"/console/decisions/{decision_id}", verdict=verdict, audit_seq=seq, **extra)


@page(Permission.VIEW)
async def review(request: Request, who: SignedIn) -> Response:
    queue = await review_queue(services(request).redis)
    unsure = {i: f"unsure ({mark['by']})" for i, mark in queue.unsure.items()}
    return render("review.html", who=who, decisions=[asdict(e) for e in queue.decisions],
                  unsure=unsure, scanned=queue.scanned)


ROUTES = [
    Route("/decisions", feed, methods=["GET"]),
    Route("/decisions/{decision_id}", detail, methods=["GET"]),
    Route("/decisions/{decision_id}/label", label, methods=["POST"]),
    Route("/review", review, methods=["GET"]),
]

"""Console pages over recorded decisions: the filtered feed, one decision, labels, the review queue.

Labels go through ``risk_engine.submit_label`` (the learner's queue) as an
analyst label by the signed-in analyst; "unsure" is kept beside it for the
review queue and changes nothing for the learner. Every label is an audit entry.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.analyst_actions import StateUnavailable, audit, label_decision
from gateway.api_console import FEED_MAX_SCAN, FEED_PAGE, feed_filter, matches
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, action, done, page, services
from gateway.console.render import SECURITY_HEADERS, fragment, render
from gateway.decision_detail import model_contributions
from gateway.errors import BadRequest, NotFound
from risk_engine import (
    DecisionEvent,
    DecisionNotFound,
    Outcome,
    RiskLevel,
    RiskStateUnavailable,
    get_decision,
    read_decisions,
    read_labels,
)

__all__ = ["ROUTES"]

UNSURE_TAG = "{console:review}"
UNSURE_TTL = 400 * 86400
REVIEW_SCAN = 2000
REVIEW_LEVELS = frozenset({RiskLevel.MEDIUM.value, RiskLevel.HIGH.value})
_OUTCOMES = sorted(v for k, v in vars(Outcome).items() if k.isupper())
_VERDICTS = {"fraud": True, "legitimate": False, "unsure": None}


def _unsure_key(decision_id: str) -> str:
    return f"{UNSURE_TAG}:unsure:{decision_id}"


async def _label_texts(request: Request, ids: list[str]) -> dict[str, str]:
    labels = await read_labels(services(request).redis, ids)
    return {i: ("fraud" if lb.fraud else "legitimate") + (f" ({lb.author or lb.source.value})")
            for i, lb in labels.items()}


async def _unsure(request: Request, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    raws = await services(request).redis.mget([_unsure_key(i) for i in ids])
    return {i: f"unsure ({orjson.loads(raw)['by']})" for i, raw in zip(ids, raws, strict=True) if raw}


async def _scan(request: Request, wanted: dict[str, str], count: int, before: str | None
                ) -> tuple[list[dict[str, Any]], str | None]:
    end = f"({before}" if before else "+"
    found: list[dict[str, Any]] = []
    scanned, last_id, exhausted = 0, before, False
    while len(found) < count and scanned < FEED_MAX_SCAN:
        rows = await read_decisions(services(request).redis, end=end, count=FEED_PAGE,
                                    newest_first=True)
        consumed = 0
        for sid, event in rows:
            consumed, scanned, last_id = consumed + 1, scanned + 1, sid
            if matches(event, wanted):
                found.append(asdict(event))
                if len(found) >= count:
                    break
        exhausted = len(rows) < FEED_PAGE and consumed == len(rows)
        if exhausted:
            break
        end = f"({last_id}"
    return found, None if exhausted else last_id


@page(Permission.VIEW)
async def feed(request: Request, who: SignedIn) -> Response:
    wanted = feed_filter(request)
    before = request.query_params.get("before") or None
    if before is not None and not all(p.isascii() and p.isdigit() and len(p) <= 19
                                      for p in before.split("-", 1)):
        raise BadRequest("invalid_cursor", "before must be a stream id from the feed")
    try:
        decisions, next_before = await _scan(request, wanted, 50, before)
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    labels = await _label_texts(request, [d["decision_id"] for d in decisions])
    if request.query_params.get("partial") == "1":
        return HTMLResponse(fragment("_decision_rows.html", decisions=decisions, labels=labels),
                            headers=SECURITY_HEADERS)
    return render("decisions.html", who=who, decisions=decisions, labels=labels, filters=wanted,
                  outcomes=_OUTCOMES, levels=[lv.value for lv in RiskLevel],
                  poll_url="/console/decisions?" + urlencode({**wanted, "partial": "1"}),
                  next_before=next_before,
                  more_url="/console/decisions?" + urlencode({**wanted, "before": next_before or ""}))


async def _event(request: Request, decision_id: str) -> DecisionEvent:
    try:
        _sid, event = await get_decision(services(request).redis, decision_id)
    except DecisionNotFound as exc:
        raise NotFound("decision_not_found", "no recorded decision with that id") from exc
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    return event


async def _decision(request: Request, decision_id: str) -> dict[str, Any]:
    return asdict(await _event(request, decision_id))


@page(Permission.VIEW)
async def detail(request: Request, who: SignedIn) -> Response:
    decision_id = request.path_params["decision_id"]
    event = await _event(request, decision_id)
    label = (await _label_texts(request, [decision_id])).get(decision_id) \
        or (await _unsure(request, [decision_id])).get(decision_id)
    model = await model_contributions(services(request).risk.model_store, event)
    return render("decision.html", who=who, d=asdict(event), label=label, model=model)


@action(Permission.LABEL)
async def label(request: Request, who: SignedIn, fields: dict[str, str]) -> Response:
    decision_id = request.path_params["decision_id"]
    verdict = fields.get("verdict", "")
    if verdict not in _VERDICTS:
        raise BadRequest("invalid_verdict", "verdict must be fraud, legitimate or unsure")
    svc = services(request)
    now = time.time()
    fraud = _VERDICTS[verdict]
    if fraud is None:
        await _decision(request, decision_id)  # 404 for an unknown decision
        await svc.redis.set(_unsure_key(decision_id), orjson.dumps({"by": who.name, "at": now}),
                            ex=UNSURE_TTL)
        seq = await audit(svc, who.name, "decision.label_unsure", {"decision_id": decision_id}, now)
        return done(request, f"/console/decisions/{decision_id}", verdict=verdict, audit_seq=seq)
    status, seq = await label_decision(svc, decision_id, fraud=fraud, author=who.name, now=now)
    return done(request, f"/console/decisions/{decision_id}", verdict=verdict, status=status,
                audit_seq=seq)


@page(Permission.VIEW)
async def review(request: Request, who: SignedIn) -> Response:
    try:
        rows = await read_decisions(services(request).redis, count=REVIEW_SCAN, newest_first=True)
    except RiskStateUnavailable as exc:
        raise StateUnavailable(message=str(exc)) from exc
    risky = [asdict(e) for _sid, e in rows if e.level in REVIEW_LEVELS]
    labels = await read_labels(services(request).redis, [d["decision_id"] for d in risky])
    todo = [d for d in risky
            if d["decision_id"] not in labels or not labels[d["decision_id"]].source.strong][:100]
    unsure = await _unsure(request, [d["decision_id"] for d in todo])
    return render("review.html", who=who, decisions=todo, unsure=unsure, scanned=len(rows))


ROUTES = [
    Route("/decisions", feed, methods=["GET"]),
    Route("/decisions/{decision_id}", detail, methods=["GET"]),
    Route("/decisions/{decision_id}/label", label, methods=["POST"]),
    Route("/review", review, methods=["GET"]),
]

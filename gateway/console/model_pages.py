"""The console's Model page: the published champion and challenger, and plots over time
of their ROC AUC, precision and recall at the level thresholds, the step-up rate and
the champion's score distribution (gateway.model_report), drawn as server-side SVG."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, page, services
from gateway.console.render import render
from gateway.console.svg_chart import Series, bar_chart, line_chart, percent
from gateway.errors import BadRequest
from gateway.model_report import model_report

__all__ = ["ROUTES", "bucket_for", "window_days"]

DEFAULT_DAYS = 14
MAX_DAYS = 90
HOURLY_UP_TO_DAYS = 2  # shorter windows are plotted by the hour, longer ones by the day
LEVELS = ("medium", "high", "block")


def window_days(raw: str | None) -> int:
    """The ``days`` query parameter: 1..90, 14 when absent."""
    if raw is None or raw == "":
        return DEFAULT_DAYS
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2) or not 1 <= int(raw) <= MAX_DAYS:
        raise BadRequest("invalid_days", f"days must be a whole number from 1 to {MAX_DAYS}")
    return int(raw)


def bucket_for(days: int) -> int:
    """Short windows by the hour, longer ones by the day."""
    return 3600 if days <= HOURLY_UP_TO_DAYS else 86400


def _bucket_label(start: float, bucket_seconds: int) -> str:
    when = dt.datetime.fromtimestamp(start, dt.UTC)
    return when.strftime("%m-%d %H:00" if bucket_seconds < 86400 else "%m-%d")


def _auc(v: float) -> str:
    return f"{v:.3f}"


def charts(report: dict[str, Any]) -> dict[str, Markup]:
    """The page's SVG plots of one model report."""
    buckets = report["buckets"]
    x = [_bucket_label(b["start"], report["bucket_seconds"]) for b in buckets]
    thresholds = report["thresholds"]

    def at(metric: str) -> list[Series]:
        return [Series(f"{level} (score ≥ {thresholds[level]:g})",
                       [b["at_threshold"][level][metric] for b in buckets]) for level in LEVELS]

    edges = report["histogram_edges"]
    return {
        "roc_auc": line_chart(x, [Series("champion", [b["roc_auc"] for b in buckets]),
                                  Series("challenger", [b["challenger_roc_auc"] for b in buckets],
                                         dashed=True)],
                              title="ROC AUC over time, champion and challenger", y_format=_auc),
        "precision": line_chart(x, at("precision"), title="Precision at each threshold",
                                y_format=percent),
        "recall": line_chart(x, at("recall"), title="Recall at each threshold", y_format=percent),
        "step_up": line_chart(x, [Series("step-up rate", [b["step_up_rate"] for b in buckets])],
                              title="Step-up rate over time", y_max=None, y_format=percent),
        "scores": bar_chart([f"{lo:.1f}–{hi:.1f}" for lo, hi in zip(edges, edges[1:], strict=False)],
                            report["score_histogram"],
                            title="Champion score distribution over the window"),
    }


@page(Permission.VIEW)
async def model_page(request: Request, who: SignedIn) -> Response:
    days = window_days(request.query_params.get("days"))
    bucket_seconds = bucket_for(days)
    report = await model_report(services(request), now=time.time(), days=days,
                                bucket_seconds=bucket_seconds)
    rows = [dict(b, label=_bucket_label(b["start"], bucket_seconds)) for b in report["buckets"]]
    return render("model.html", who=who, report=report, charts=charts(report), rows=rows,
                  days=days, levels=LEVELS)


ROUTES = [Route("/model", model_page, methods=["GET"])]

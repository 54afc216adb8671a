"""The model over /admin/api: the published champion and challenger and, per time bucket,
ROC AUC, precision and recall at the level thresholds, step-up rate and score histogram
(gateway.model_report): the numbers behind the console's Model page."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.admin_api.auth import answer, operation
from gateway.console.analysts import Permission
from gateway.console.auth import SignedIn, services
from gateway.console.model_pages import bucket_for, window_days
from gateway.model_report import model_report

__all__ = ["ROUTES"]


@operation(Permission.VIEW)
async def report(request: Request, who: SignedIn) -> Response:
    """``days`` (1..90, 14 by default): by the hour up to two days, else by the day."""
    days = window_days(request.query_params.get("days"))
    doc = await model_report(services(request), now=time.time(), days=days,
                             bucket_seconds=bucket_for(days))
    return answer(doc)


ROUTES = [Route("/model", report, methods=["GET"])]

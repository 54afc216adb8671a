"""Server-side rendering of console pages (Jinja2, autoescaped) with strict headers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
from starlette.responses import HTMLResponse, Response

__all__ = ["STATIC", "fragment", "render"]

_HERE = Path(__file__).parent
STATIC = _HERE / "static"
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(_HERE / "templates"),
                          autoescape=jinja2.select_autoescape(default=True),
                          trim_blocks=True, lstrip_blocks=True)
_ENV.filters["when"] = lambda at: (dt.datetime.fromtimestamp(float(at), dt.UTC)
                                   .strftime("%Y-%m-%d %H:%M:%S UTC") if at else "")
_ENV.filters["isotime"] = lambda at: (dt.datetime.fromtimestamp(float(at), dt.UTC)
                                      .strftime("%Y-%m-%dT%H:%M:%S") if at else "")
_ENV.filters["cny"] = lambda fen: f"{int(fen) / 100:,.2f}"
_ENV.filters["pct"] = lambda x: "n/a" if x is None else f"{100 * float(x):.1f}%"

# Scripts and styles come only from /console/static: no inline code can run.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # enrolment links carry a token: never sent to another site (and "no-referrer"
    # would make the browser send "Origin: null" on our own form posts)
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def render(template: str, /, **context: object) -> Response:
    context.setdefault("who", None)
    return HTMLResponse(_ENV.get_template(template).render(**context),
                        headers=SECURITY_HEADERS)


def fragment(template: str, /, **context: object) -> str:
    """A template rendered to a string (parts of a page that scripts swap in)."""
    return _ENV.get_template(template).render(**context)

"""A bare pass-through reverse proxy: the baseline riskgate is measured against.

Starlette with one catch-all route and no middleware, forwarding over one pooled
aiohttp ClientSession with no checks at all. It does only what any reverse proxy
must: drop hop-by-hop headers both ways and let aiohttp set Host and framing.

Run: ``python -m bench.bare_proxy --upstream http://127.0.0.1:8001 --port 8002``
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from yarl import URL

__all__ = ["HOP_BY_HOP", "create_bare_proxy_app", "main"]

# RFC 9110 section 7.6.1, plus the framing headers aiohttp and uvicorn recompute.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _end_to_end(raw_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers minus hop-by-hop ones, including any the Connection header names."""
    named = {
        token.strip().lower()
        for name, value in raw_headers if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in raw_headers
            if (low := k.lower()) not in HOP_BY_HOP and low not in named]


def create_bare_proxy_app(upstream_url: str, *, pool_size: int = 100) -> Starlette:
    """A Starlette app forwarding every request to ``upstream_url`` unchanged."""
    base = upstream_url.rstrip("/")
    # One session for the app's lifetime; created in lifespan because it binds to the loop.
    holder: dict[str, aiohttp.ClientSession] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=30),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
        holder["session"] = session
        try:
            yield
        finally:
            await session.close()

    async def forward(request: Request) -> Response:
        # raw_path keeps the client's percent-encoding; encoded=True stops yarl re-quoting.
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        url = base + raw.decode("latin-1")
        if query := request.scope.get("query_string", b""):
            url += "?" + query.decode("latin-1")
        headers = _end_to_end([(k.decode("latin-1"), v.decode("latin-1"))
                               for k, v in request.scope["headers"]])
        body = await request.body()
        try:
            async with holder["session"].request(
                request.method, URL(url, encoded=True), headers=headers, data=body or None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                out = _end_to_end([(k.decode("latin-1"), v.decode("latin-1"))
                                   for k, v in upstream.raw_headers])
        except (aiohttp.ClientError, TimeoutError):
            return Response(b'{"error":"upstream_unavailable"}', status_code=502,
                            media_type="application/json")
        response = Response(payload, status_code=upstream.status)
        # Replace the defaults wholesale so repeated headers (Set-Cookie) survive.
        response.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
        # HEAD answers carry the length of the body they stand for, so pass it through.
        length = (upstream.headers.get("Content-Length", "0") if request.method == "HEAD"
                  else str(len(payload)))
        response.raw_headers.append((b"content-length", length.encode("latin-1")))
        return response

    return Starlette(
        routes=[Route("/{path:path}", forward, methods=_METHODS)], lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the bare proxy on uvicorn: one worker, httptools, uvloop, no access log."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.bare_proxy", description=__doc__)
    parser.add_argument("--upstream", required=True, help="upstream base URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_bare_proxy_app(args.upstream), host=args.host, port=args.port, workers=1,
        http="httptools", loop="uvloop", access_log=False, log_level="warning",
    )


if __name__ == "__main__":
    main()

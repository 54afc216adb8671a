"""``create_app(config)``: the riskgate gateway as a Starlette app."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from device_fingerprint.registry import DeviceRegistry
from gateway.api_admin import create_user
from gateway.api_auth import json_response, login, logout, register_device
from gateway.asgi_edge import EdgeMiddleware
from gateway.assertion import AssertionSigner
from gateway.config import Config
from gateway.device_check import DeviceCheck
from gateway.errors import MethodNotAllowed, NotFound
from gateway.pipeline import ProxyPipeline
from gateway.proxy import UpstreamClient
from gateway.redis_store import RedisRuntime
from gateway.route_policy import RoutePolicy
from gateway.sealing import Sealer, load_kek
from gateway.services import Services
from gateway.sessions import SessionStore
from gateway.signing_keys import SigningKeyStore
from gateway.users import UserStore

__all__ = ["build_services", "create_app"]

log = logging.getLogger("riskgate")


async def build_services(config: Config) -> Services:
    """Connect to (or start) Redis and build every long-lived part."""
    runtime = RedisRuntime.open(config.redis.url, config.data_path)
    redis = runtime.client
    sealer = Sealer(load_kek(config.assertion.kek, config.assertion.kek_file, config.data_path))
    keys = SigningKeyStore(redis, sealer, token_lifetime=config.assertion.lifetime,
                           refresh_interval=config.assertion.key_refresh_interval)
    try:
        await keys.ensure_key(time.time())
    except RedisError as exc:
        # Start anyway: /readyz reports it and requests fail closed until Redis is back.
        log.error("Redis is unreachable at startup (%s); failing closed until it returns", exc)
    upstream = UpstreamClient(config.upstream.url, connect_timeout=config.upstream.connect_timeout,
                              read_timeout=config.upstream.read_timeout,
                              pool_size=config.upstream.pool_size)
    await upstream.start()
    return Services(
        config=config,
        redis_runtime=runtime,
        keys=keys,
        signer=AssertionSigner(keys, issuer=config.assertion.issuer,
                               audience=config.upstream.audience, lifetime=config.assertion.lifetime),
        devices=DeviceRegistry(redis),
        device_check=DeviceCheck(redis, max_skew=config.device.max_skew,
                                 nonce_ttl=config.device.nonce_ttl),
        sessions=SessionStore(redis, idle_timeout=config.session.idle_timeout,
                              absolute_timeout=config.session.absolute_timeout),
        users=UserStore(redis, max_failures=config.login.max_failures,
                        lockout_seconds=config.login.lockout_seconds),
        policy=RoutePolicy.from_config(config.routes),
        upstream=upstream,
    )


async def close_services(svc: Services) -> None:
    await svc.upstream.close()
    await svc.redis_runtime.close()


async def jwks(request: Request) -> Response:
    svc: Services = request.app.state.services
    doc = await svc.keys.jwks(time.time())
    resp = json_response(doc)
    resp.headers["cache-control"] = "public, max-age=60"
    return resp


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc: Services = request.app.state.services
    ok = await svc.redis_runtime.ping()
    return json_response({"status": "ready" if ok else "redis_unavailable"}, status=200 if ok else 503)


async def _not_found(request: Request, exc: Exception) -> Response:
    raise NotFound("not_found", f"{request.url.path} is not a gateway route")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    raise MethodNotAllowed("method_not_allowed", f"{request.method} is not allowed on {request.url.path}")


def create_app(config: Config, *, services: Services | None = None) -> Starlette:
    """Build the gateway. With ``services`` given (tests), the caller owns their lifetime."""
    holder: dict[str, Services] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        svc = services or await build_services(config)
        holder["svc"] = svc
        app.state.services = svc
        log.info("riskgate gateway ready; state in %s", svc.redis_runtime.description)
        try:
            yield
        finally:
            if services is None:
                await close_services(svc)

    pipeline = ProxyPipeline(lambda: holder["svc"])
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/devices", register_device, methods=["POST"]),
        Route("/auth/login", login, methods=["POST"]),
        Route("/auth/logout", logout, methods=["POST"]),
        Route("/admin/users", create_user, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(EdgeMiddleware, pipeline=pipeline,
                               max_body_bytes=lambda: config.server.max_body_bytes)],
        exception_handlers={404: _not_found, 405: _method_not_allowed},
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
        holder["svc"] = services
    return app

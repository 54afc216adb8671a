"""``create_app(config)``: the riskgate gateway as a Starlette app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from auth_tools.lockout import LockoutPolicy, ToolLockout
from device_fingerprint.registry import DeviceRegistry
from gateway.accounts import AccountDirectory
from gateway.admin_api import ROUTES as ADMIN_API_ROUTES
from gateway.api_admin import create_user
from gateway.api_auth import json_response, login, logout, register_device
from gateway.api_carrier import ROUTES as CARRIER_ROUTES
from gateway.api_console import ROUTES as CONSOLE_ROUTES
from gateway.api_devices import ROUTES as DEVICE_ROUTES
from gateway.api_limits import ROUTES as LIMIT_ROUTES
from gateway.api_ops import ROUTES as OPS_ROUTES
from gateway.api_pki import ROUTES as PKI_ROUTES
from gateway.api_risk import ROUTES as RISK_ROUTES
from gateway.api_stepup import begin_tool, complete_tool
from gateway.api_tools import ROUTES as TOOL_ROUTES
from gateway.asgi_edge import EdgeMiddleware
from gateway.assertion import AssertionSigner
from gateway.challenges import ChallengeStore
from gateway.config import Config
from gateway.console import ROUTES as CONSOLE_UI_ROUTES
from gateway.credentials import CredentialStore
from gateway.data_keys import DataKeyError, open_keyring
from gateway.decision_writer import DecisionWriter
from gateway.device_binding import BindingAwareDeviceCheck
from gateway.device_recognition import DeviceRecognition
from gateway.encryption_keys import EncryptionKeyStore
from gateway.errors import Forbidden, MethodNotAllowed, NotFound, Unauthorized
from gateway.openapi import openapi
from gateway.payload_encryption import PayloadEncryption
from gateway.pipeline import ProxyPipeline
from gateway.proxy import UpstreamClient
from gateway.redis_store import RedisRuntime
from gateway.route_policy import RoutePolicy
from gateway.sealing import load_kek
from gateway.services import Services
from gateway.sessions import SessionStore
from gateway.signing_keys import SigningKeyStore
from gateway.sim_swap_guard import guard_sms_tools
from gateway.stepup_setup import (
    default_stepup_tools,
    load_tier_policy,
    sms_policy_for,
    sms_sender_for,
)
from gateway.switches_store import OpsStore, OpsSwitches
from gateway.tls_serving import HstsMiddleware
from gateway.users import UserStore
from limits import ReservationStore, UserLimitStore
from risk_engine import RiskEngine, RiskThresholds

__all__ = ["build_services", "create_app"]

log = logging.getLogger("riskgate")


async def build_services(config: Config) -> Services:
    """Connect to (or start) Redis and build every long-lived part."""
    runtime = RedisRuntime.open(config.redis.url, config.data_path, timeout=config.redis.timeout)
    redis = runtime.client
    limits_config = config.limits.load()
    kek = load_kek(config.assertion.kek, config.assertion.kek_file, config.data_path)
    try:
        sealer, derived_keys = await open_keyring(redis, kek)  # secrets are sealed under the data key
    except DataKeyError:  # this KEK does not unwrap the keyring: refuse to start
        await runtime.close()
        raise
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
    registry = DeviceRegistry(redis)
    svc = Services(
        config=config,
        redis_runtime=runtime,
        keys=keys,
        signer=AssertionSigner(keys, issuer=config.assertion.issuer,
                               audience=config.upstream.audience, lifetime=config.assertion.lifetime),
        devices=registry,
        device_check=BindingAwareDeviceCheck(redis, max_skew=config.device.max_skew,
                                             nonce_ttl=config.device.nonce_ttl),
        sessions=SessionStore(redis, idle_timeout=config.session.idle_timeout,
                              absolute_timeout=config.session.absolute_timeout),
        users=UserStore(redis, max_failures=config.login.max_failures,
                        lockout_seconds=config.login.lockout_seconds),
        policy=RoutePolicy.from_config(config.routes),
        upstream=upstream,
        sealer=sealer,
        enc_keys=EncryptionKeyStore(redis, sealer, grace_seconds=config.encryption.key_grace_seconds,
                                    refresh_interval=config.assertion.key_refresh_interval),
        credentials=CredentialStore(redis, sealer),
        challenges=ChallengeStore(redis, challenge_ttl=config.stepup.challenge_ttl,
                                  approval_ttl=config.stepup.approval_ttl),
        tier_policy=load_tier_policy(config.stepup),
        tool_lockout=ToolLockout(redis, LockoutPolicy(max_failures=config.stepup.tool_max_failures,
                                                      lock_seconds=config.stepup.tool_lockout_seconds)),
        sms_sender=sms_sender_for(config.stepup, redis),
        sms_policy=sms_policy_for(config.stepup),
        limits=limits_config,
        reservations=ReservationStore(redis, limits_config),
        user_limits=UserLimitStore(redis, limits_config),
        accounts=AccountDirectory(redis),
        risk=RiskEngine(redis, model_key=derived_keys.get("model-snapshot") or secrets.token_bytes(32),
                        thresholds=RiskThresholds(medium=config.risk.medium, high=config.risk.high,
                                                  block=config.risk.block,
                                                  min_labels=config.risk.min_labels)),
        derived_keys=derived_keys,
        stepup_tools=guard_sms_tools(default_stepup_tools()),
        recognition=DeviceRecognition(redis, registry, config.device, limits_config),
    )
    svc.decision_writer = DecisionWriter(redis, svc.background)
    svc.switches = OpsSwitches(OpsStore(redis), limits=limits_config, stepup=config.stepup)
    return svc


async def close_services(svc: Services) -> None:
    if svc.background:
        await asyncio.gather(*list(svc.background), return_exceptions=True)
    await svc.upstream.close()
    await svc.redis_runtime.close()


async def jwks(request: Request) -> Response:
    svc: Services = request.app.state.services
    doc = await svc.keys.jwks(time.time())
    await svc.enc_keys.current_kid(time.time())  # the first encryption key is made on first use
    doc["keys"] += (await svc.enc_keys.jwks(time.time()))["keys"]
    resp = json_response(doc)
    resp.headers["cache-control"] = "public, max-age=60"
    return resp


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc: Services = request.app.state.services
    redis_ok, upstream_ok = await asyncio.gather(svc.redis_runtime.ping(), svc.upstream.reachable())
    status = ("ready" if redis_ok and upstream_ok
              else "redis_unavailable" if not redis_ok else "upstream_unavailable")
    return json_response({"status": status, "redis": redis_ok, "upstream": upstream_ok},
                         status=200 if status == "ready" else 503)


async def metrics(request: Request) -> Response:
    svc: Services = request.app.state.services
    token = svc.config.server.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.encode()):
            raise Unauthorized("metrics_token_required", "GET /metrics needs the metrics bearer token")
    elif request.client is None or request.client.host not in ("127.0.0.1", "::1"):
        raise Forbidden("metrics_loopback_only",
                        "without server.metrics_token, /metrics answers loopback clients only")
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)


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
        # What startup built (compiled rules, the model, keys, modules) lives as long as the
        # process: take it out of the collector's reach, so a full collection does not
        # walk it in the middle of a request.
        gc.collect()
        gc.freeze()
        # Releases spend reservations a crashed request never settled.
        stop_reaper = asyncio.Event()
        reaper = asyncio.get_running_loop().create_task(
            svc.reservations.run_reaper(time.time, stop_reaper))
        try:
            yield
        finally:
            stop_reaper.set()
            await reaper
            if services is None:
                await close_services(svc)

    pipeline = ProxyPipeline(lambda: holder["svc"])
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/devices", register_device, methods=["POST"]),
        Route("/auth/login", login, methods=["POST"]),
        Route("/auth/logout", logout, methods=["POST"]),
        Route("/admin/users", create_user, methods=["POST"]),
        Route("/auth/challenges/{challenge_id}/{tool}/begin", begin_tool, methods=["POST"]),
        Route("/auth/challenges/{challenge_id}/{tool}/complete", complete_tool, methods=["POST"]),
        *TOOL_ROUTES,
        *LIMIT_ROUTES,
        *RISK_ROUTES,
        *PKI_ROUTES,
        *DEVICE_ROUTES,
        *CARRIER_ROUTES,
        *CONSOLE_ROUTES,
        Mount("/console", routes=CONSOLE_UI_ROUTES),
        Mount("/admin/api", routes=ADMIN_API_ROUTES),
        *OPS_ROUTES,
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(HstsMiddleware, max_age=config.tls.hsts_max_age),
                    Middleware(PayloadEncryption, services=lambda: holder["svc"],
                               max_body_bytes=lambda: config.server.max_body_bytes),
                    Middleware(EdgeMiddleware, pipeline=pipeline,
                               max_body_bytes=lambda: config.server.max_body_bytes,
                               metrics=lambda: holder["svc"].metrics if "svc" in holder else None)],
        exception_handlers={404: _not_found, 405: _method_not_allowed},
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
        holder["svc"] = services
    return app

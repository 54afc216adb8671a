"""The gateway's long-lived parts, built once at startup and passed down."""

from __future__ import annotations

from dataclasses import dataclass

from device_fingerprint.registry import DeviceRegistry
from gateway.assertion import AssertionSigner
from gateway.config import Config
from gateway.device_check import DeviceCheck
from gateway.proxy import UpstreamClient
from gateway.redis_store import RedisRuntime
from gateway.route_policy import RoutePolicy
from gateway.sessions import SessionStore
from gateway.signing_keys import SigningKeyStore
from gateway.users import UserStore

__all__ = ["Services"]


@dataclass(slots=True)
class Services:
    config: Config
    redis_runtime: RedisRuntime
    keys: SigningKeyStore
    signer: AssertionSigner
    devices: DeviceRegistry
    device_check: DeviceCheck
    sessions: SessionStore
    users: UserStore
    policy: RoutePolicy
    upstream: UpstreamClient

    @property
    def redis(self):  # noqa: ANN201 - redis.asyncio.Redis
        return self.redis_runtime.client

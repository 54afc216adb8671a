"""The gateway's long-lived parts, built once at startup and passed down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from auth_tools.lockout import ToolLockout
from auth_tools.sms import SmsPolicy
from auth_tools.sms_senders import SmsSender
from auth_tools.tier_policy import TierPolicy
from device_fingerprint.registry import DeviceRegistry
from gateway.accounts import AccountDirectory
from gateway.assertion import AssertionSigner
from gateway.challenges import ChallengeStore
from gateway.config import Config
from gateway.credentials import CredentialStore
from gateway.device_check import DeviceCheck
from gateway.device_recognition import DeviceRecognition
from gateway.metrics import GatewayMetrics
from gateway.proxy import UpstreamClient
from gateway.redis_store import RedisRuntime
from gateway.route_policy import RoutePolicy
from gateway.sealing import Sealer
from gateway.sessions import SessionStore
from gateway.signing_keys import SigningKeyStore
from gateway.users import UserStore
from limits import LimitsConfig, ReservationStore, UserLimitStore
from risk_engine import RiskEngine

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
    sealer: Sealer
    credentials: CredentialStore
    challenges: ChallengeStore
    tier_policy: TierPolicy
    tool_lockout: ToolLockout
    sms_sender: SmsSender
    sms_policy: SmsPolicy  # code length and lifetime; rebuilt by gateway.switches_store
    limits: LimitsConfig
    reservations: ReservationStore
    user_limits: UserLimitStore
    accounts: AccountDirectory
    risk: RiskEngine
    # Secret keys derived from the KEK for one purpose each (SMS code MACs, ...).
    derived_keys: dict[str, bytes] = field(default_factory=dict)
    # name -> step-up tool adapter (gateway.stepup_tools.StepUpTool)
    stepup_tools: dict[str, Any] = field(default_factory=dict)
    # Work finishing after a response (decision stream, history); awaited at shutdown.
    background: set[asyncio.Task[None]] = field(default_factory=set)
    decision_writer: Any = None  # gateway.decision_writer.DecisionWriter, set by build_services
    # Payload-encryption keys (gateway.encryption_keys.EncryptionKeyStore).
    enc_keys: Any = None
    # Device recognition, binding, SIM-swap reports, IP regions (gateway.device_recognition).
    recognition: DeviceRecognition | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    # Business and channel switches, live parameters (gateway.switches_store.OpsSwitches).
    switches: Any = None

    @property
    def redis(self):  # noqa: ANN201 - redis.asyncio.Redis
        return self.redis_runtime.client

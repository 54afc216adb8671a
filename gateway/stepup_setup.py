"""Building the step-up parts from configuration: tier table, SMS sender and
code policy, purpose-bound keys derived from the KEK, and the registry of tool adapters."""

from __future__ import annotations

import tomllib
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis

from auth_tools.errors import TierPolicyInvalid
from auth_tools.sms import SmsPolicy
from auth_tools.sms_senders import DevOutbox, SmsSender, WebhookSmsSender
from auth_tools.tier_policy import TierPolicy
from gateway.config import ConfigError, StepUpConfig

__all__ = ["DERIVED_KEY_PURPOSES", "derive_key", "load_tier_policy", "sms_policy_for",
           "sms_sender_for", "default_stepup_tools"]

DERIVED_KEY_PURPOSES = ("sms-code-mac", "model-snapshot")


def derive_key(kek: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose (HKDF-SHA256 over the KEK)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"riskgate-derived-v1",
                info=purpose.encode()).derive(kek)


def load_tier_policy(cfg: StepUpConfig) -> TierPolicy:
    """The DESIGN.md table, or the ``[tiers]`` table of ``stepup.tiers_file``."""
    if not cfg.tiers_file:
        return TierPolicy.default()
    try:
        with open(cfg.tiers_file, "rb") as fh:
            doc = tomllib.load(fh)
        policy = TierPolicy.from_dict(doc.get("tiers", doc))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, TierPolicyInvalid) as exc:
        raise ConfigError("stepup.tiers_file", str(exc)) from exc
    if not cfg.face_provider_key and any("face" in row for rows in policy.rows for row in rows):
        raise ConfigError("stepup.tiers_file", "a row names face but stepup.face_provider_key is empty")
    return policy


def sms_sender_for(cfg: StepUpConfig, redis: Redis) -> SmsSender:
    """A webhook to the SMS gateway, or (no URL: demo and tests) the dev outbox."""
    if cfg.sms_webhook_url:
        return WebhookSmsSender(cfg.sms_webhook_url)
    return DevOutbox(redis=redis)


def sms_policy_for(cfg: StepUpConfig) -> SmsPolicy:
    """The SMS code length and lifetime of ``stepup.sms_code_*`` (with the operations
    parameters' overrides: gateway.switches.Parameters.stepup)."""
    return SmsPolicy(ttl=float(cfg.sms_code_ttl), digits=cfg.sms_code_digits)


def default_stepup_tools() -> dict[str, Any]:
    """Tool name (as in the tier table) -> adapter."""
    from gateway.stepup_biometric import BiometricTool
    from gateway.stepup_cert import CloudCertTool, HardwareCertTool
    from gateway.stepup_face import FaceTool
    from gateway.stepup_fido import FidoTool
    from gateway.stepup_mtls import MtlsCertTool
    from gateway.stepup_sms import SmsTool
    from gateway.stepup_tools import PasswordTool
    from gateway.stepup_totp import TotpTool

    tools: list[Any] = [PasswordTool(), SmsTool("sms"), SmsTool("sms_armor"), TotpTool(),
                        BiometricTool(), FidoTool(), CloudCertTool(), HardwareCertTool(),
                        MtlsCertTool(), FaceTool()]
    return {tool.name: tool for tool in tools}

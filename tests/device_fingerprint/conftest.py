"""Fixtures for the device recognition tests: realistic phones and real stores."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from device_fingerprint.binding import BindingConfig, BindingStore
from device_fingerprint.registry import DeviceRegistry
from device_fingerprint.signature import public_key_to_jwk

APP_SIGNATURE = hashlib.sha256(b"riskgate bank app release certificate").hexdigest()


def sim_hash(iccid: str) -> str:
    return hashlib.sha256(iccid.encode()).hexdigest()


def phone(**overrides: str) -> dict[str, str]:
    """What a Xiaomi phone on China Mobile reports from a fresh installation."""
    attrs = {
        "model": "Xiaomi 23127PN0CC",
        "os": "Android",
        "os_version": "14",
        "app_version": "5.2.0",
        "app_signature_hash": APP_SIGNATURE,
        "screen": "1440x3200",
        "locale": "zh_CN",
        "timezone": "Asia/Shanghai",
        "carrier": "46000",
        "sim_hash": sim_hash("89860012345678901234"),
        "install_id": secrets.token_urlsafe(16),
    }
    attrs.update(overrides)
    return attrs


def new_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, str]]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, public_key_to_jwk(key.public_key())


NOW = 1_790_000_000.0  # a fixed instant; time is always passed explicitly


@pytest.fixture
def now() -> float:
    return NOW


@pytest.fixture(name="phone")
def phone_fixture():
    return phone


@pytest.fixture(name="new_key")
def new_key_fixture():
    return new_key


@pytest.fixture(name="sim_hash")
def sim_hash_fixture():
    return sim_hash


@pytest.fixture
def registry(redis) -> DeviceRegistry:
    return DeviceRegistry(redis)


@pytest.fixture
def binding_config() -> BindingConfig:
    return BindingConfig.from_dict({"max_devices": 2, "cool_off_daily_limit": "2000.00"})


@pytest.fixture
def bindings(redis, registry, binding_config) -> BindingStore:
    return BindingStore(redis, registry, binding_config)

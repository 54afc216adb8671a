"""Risk signals the app reports about its own runtime, and the tier cap they impose.

The app sends a JSON object of booleans (absent = false)::

    {"rooted": false, "emulator": false, "hooked": false, "debugger": false,
     "signature_mismatch": false, "vpn": false, "proxy": false}

``rooted`` covers Android root and iOS jailbreak; ``hooked`` a hooking
framework (Frida, Xposed, Substrate); ``signature_mismatch`` the app's own
integrity check. The gateway also compares the reported
``app_signature_hash`` with the hashes of the builds it ships: a repackaged
app fails that even if it lies about everything else.

These are self-reports: a tampered app can hide them. They only ever make
things stricter, never grant anything.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from device_fingerprint.errors import DeviceConfigInvalid, SignalsInvalid

__all__ = ["DeviceSignals", "RiskSignal", "SignalsConfig", "max_tier_allowed", "parse_signals"]

MAX_TIER = 5


class RiskSignal(StrEnum):
    ROOTED = "rooted"
    EMULATOR = "emulator"
    HOOKED = "hooked"
    DEBUGGER = "debugger"
    SIGNATURE_MISMATCH = "signature_mismatch"
    VPN = "vpn"
    PROXY = "proxy"


_HEX256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class SignalsConfig:
    """``[device.signals]``: trusted app signatures and which signals cap the tier.

    ``expected_app_signatures``: hex SHA-256 of the signing certificates of
    the genuine builds. Empty means the comparison is not made (development
    builds); production should always list them.
    ``cap_signals`` and ``capped_max_tier``: any of these signals limits the
    request to at most that tier (default: emulator, hooking or a signature
    mismatch can never reach T4 or T5).
    """

    expected_app_signatures: frozenset[str] = frozenset()
    cap_signals: frozenset[RiskSignal] = frozenset(
        {RiskSignal.EMULATOR, RiskSignal.HOOKED, RiskSignal.SIGNATURE_MISMATCH})
    capped_max_tier: int = 3

    def __post_init__(self) -> None:
        for value in self.expected_app_signatures:
            if not _HEX256_RE.match(value):
                raise DeviceConfigInvalid("device.signals.expected_app_signatures",
                                          "each must be a lowercase hex SHA-256")
        if not 0 <= self.capped_max_tier <= MAX_TIER:
            raise DeviceConfigInvalid("device.signals.capped_max_tier", f"must be in [0, {MAX_TIER}]")

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> SignalsConfig:
        prefix = "device.signals"
        table = table or {}
        if not isinstance(table, Mapping):
            raise DeviceConfigInvalid(prefix, "must be a table")
        values: dict[str, object] = {}
        for key, raw in table.items():
            k = f"{prefix}.{key}"
            if key == "expected_app_signatures":
                values[key] = frozenset(
                    s.replace(":", "").casefold() for s in _strings(k, raw))
            elif key == "cap_signals":
                try:
                    values[key] = frozenset(RiskSignal(s) for s in _strings(k, raw))
                except ValueError as exc:
                    raise DeviceConfigInvalid(
                        k, f"unknown signal (known: {', '.join(s.value for s in RiskSignal)})"
                    ) from exc
            elif key == "capped_max_tier":
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise DeviceConfigInvalid(k, "must be an integer tier 0-5")
                values[key] = raw
            else:
                raise DeviceConfigInvalid(
                    k, "unknown key (known: cap_signals, capped_max_tier, expected_app_signatures)")
        return replace(cls(), **values)


def _strings(key: str, raw: object) -> list[str]:
    if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
        raise DeviceConfigInvalid(key, "must be a list of strings")
    return list(raw)


@dataclass(frozen=True, slots=True)
class DeviceSignals:
    """The signals raised for one request, plus the tier cap they imply."""

    raised: frozenset[RiskSignal] = frozenset()
    max_tier: int = MAX_TIER
    signature_checked: bool = False

    def __contains__(self, signal: object) -> bool:
        return signal in self.raised

    def as_flags(self) -> dict[str, bool]:
        """Every signal name -> raised? (rooted, emulator, hooked ... as the risk engine names them)."""
        return {s.value: s in self.raised for s in RiskSignal}


def parse_signals(raw: object, *, app_signature_hash: str,
                  config: SignalsConfig) -> DeviceSignals:
    """Validate the reported signals and add the app-signature comparison.

    ``app_signature_hash`` is the normalised attribute (see attributes.py).
    Unknown keys are refused: a misspelt signal must not read as "clean".
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SignalsInvalid("signals", "must be a JSON object of booleans")
    raised = set()
    for key, value in raw.items():
        try:
            signal = RiskSignal(key)
        except ValueError as exc:
            raise SignalsInvalid(str(key)[:64], "unknown signal") from exc
        if not isinstance(value, bool):
            raise SignalsInvalid(signal.value, "must be true or false")
        if value:
            raised.add(signal)
    checked = bool(config.expected_app_signatures)
    if checked and not _known_signature(app_signature_hash, config.expected_app_signatures):
        raised.add(RiskSignal.SIGNATURE_MISMATCH)
    frozen = frozenset(raised)
    return DeviceSignals(frozen, _cap(frozen, config), checked)


def _known_signature(value: str, expected: Iterable[str]) -> bool:
    # Not a secret, but compare without early exit like everything else we check.
    found = False
    for candidate in expected:
        found |= hmac.compare_digest(value.encode(), candidate.encode())
    return found


def _cap(raised: frozenset[RiskSignal], config: SignalsConfig) -> int:
    return config.capped_max_tier if raised & config.cap_signals else MAX_TIER


def max_tier_allowed(signals: DeviceSignals) -> int:
    """Highest tier (0-5) this device may reach; 3 when emulator/hooking/tampering is seen."""
    return signals.max_tier

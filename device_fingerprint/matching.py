"""Which device is this? Bound key, the same phone re-installed, or a new phone.

A request signed by a bound device key *is* that device. A request signed by
a key the registry does not hold (first registration, or the app re-installed
so its key is gone) is compared with every bound device of the user: a
weighted similarity over the hardware-ish attributes. Re-installing the app
changes ``install_id`` and the key; model, OS, screen and the SIM stay, so the
same phone scores high and a different phone does not.

Empty attributes (no SIM, not reported) never count as agreement: two
wifi-only tablets of the same model must not look like one device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from device_fingerprint.attributes import ATTRIBUTE_NAMES, DeviceAttributes, parse_attributes
from device_fingerprint.errors import DeviceConfigInvalid, DeviceError
from device_fingerprint.registry import Device, DeviceStatus

__all__ = ["DeviceMatch", "MatchStatus", "MatchingConfig", "attribute_similarity", "match_device"]


class MatchStatus(StrEnum):
    BOUND = "bound"
    KNOWN_REINSTALLED = "known_reinstalled"
    NEW = "new"


# Sum to 1.0. install_id is 0: it changes on every re-install by design.
_DEFAULT_WEIGHTS = MappingProxyType({
    "sim_hash": 0.25,
    "model": 0.20,
    "screen": 0.10,
    "os": 0.10,
    "os_version": 0.10,
    "carrier": 0.05,
    "locale": 0.05,
    "timezone": 0.05,
    "app_version": 0.05,
    "app_signature_hash": 0.05,
    "install_id": 0.0,
})
_VERSIONED = frozenset({"os_version", "app_version"})


@dataclass(frozen=True, slots=True)
class MatchingConfig:
    """Weights per attribute, the re-install threshold and must-match attributes.

    ``[device.matching]`` keys: ``weights`` (table attribute -> weight >= 0),
    ``reinstall_threshold`` (0 < t <= 1), ``must_match`` (attributes whose
    difference means a different device whatever the score),
    ``same_major_credit`` (share of a version's weight when only the major
    version agrees: an OS update between installs).
    """

    weights: Mapping[str, float] = field(default_factory=lambda: _DEFAULT_WEIGHTS)
    reinstall_threshold: float = 0.85
    must_match: frozenset[str] = frozenset({"os", "model"})
    same_major_credit: float = 0.5

    def __post_init__(self) -> None:
        prefix = "device.matching"
        for name, weight in self.weights.items():
            if name not in ATTRIBUTE_NAMES:
                raise DeviceConfigInvalid(f"{prefix}.weights.{name}", "unknown attribute")
            if not weight >= 0:
                raise DeviceConfigInvalid(f"{prefix}.weights.{name}", "must not be negative")
        if not sum(self.weights.values()) > 0:
            raise DeviceConfigInvalid(f"{prefix}.weights", "at least one weight must be positive")
        if not 0 < self.reinstall_threshold <= 1:
            raise DeviceConfigInvalid(f"{prefix}.reinstall_threshold", "must be in (0, 1]")
        for name in self.must_match:
            if name not in ATTRIBUTE_NAMES:
                raise DeviceConfigInvalid(f"{prefix}.must_match", f"unknown attribute {name!r}")
        if not 0 <= self.same_major_credit <= 1:
            raise DeviceConfigInvalid(f"{prefix}.same_major_credit", "must be in [0, 1]")

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> MatchingConfig:
        """Build from the ``[device.matching]`` TOML table; every key is optional.

        Weights given in the table replace the defaults one by one; to switch
        an attribute off, give it weight 0.
        """
        prefix = "device.matching"
        table = table or {}
        if not isinstance(table, Mapping):
            raise DeviceConfigInvalid(prefix, "must be a table")
        values: dict[str, object] = {}
        for key, raw in table.items():
            k = f"{prefix}.{key}"
            if key == "weights":
                if not isinstance(raw, Mapping):
                    raise DeviceConfigInvalid(k, "must be a table of attribute = weight")
                weights = dict(_DEFAULT_WEIGHTS)
                for name, w in raw.items():
                    weights[name] = _number(f"{k}.{name}", w)
                values["weights"] = MappingProxyType(weights)
            elif key in ("reinstall_threshold", "same_major_credit"):
                values[key] = _number(k, raw)
            elif key == "must_match":
                if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
                    raise DeviceConfigInvalid(k, "must be a list of attribute names")
                values[key] = frozenset(raw)
            else:
                raise DeviceConfigInvalid(k, "unknown key (known: must_match, reinstall_threshold, "
                                             "same_major_credit, weights)")
        return replace(cls(), **values)


def _number(key: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise DeviceConfigInvalid(key, "must be a number")
    return float(raw)


@dataclass(frozen=True, slots=True)
class DeviceMatch:
    """The verdict of the device step.

    ``matched_device_id`` is the bound device (BOUND), the device this
    installation most resembles (KNOWN_REINSTALLED), or None (NEW).
    ``similarity`` is in [0, 1]; ``matched_attributes`` names the attributes
    that agreed, for the decision's reasons.
    """

    status: MatchStatus
    matched_device_id: str | None
    similarity: float
    matched_attributes: tuple[str, ...] = ()


def attribute_similarity(reported: DeviceAttributes, known: DeviceAttributes,
                         config: MatchingConfig) -> tuple[float, tuple[str, ...]]:
    """Weighted agreement in [0, 1] and the attributes that agreed."""
    for name in config.must_match:
        if not _same(getattr(reported, name), getattr(known, name)):
            return 0.0, ()
    total = score = 0.0
    agreed = []
    for name, weight in config.weights.items():
        if weight <= 0:
            continue
        total += weight
        a, b = str(getattr(reported, name)), str(getattr(known, name))
        if _same(a, b):
            score += weight
            agreed.append(name)
        elif name in _VERSIONED and a and b and a.split(".")[0] == b.split(".")[0]:
            score += weight * config.same_major_credit
    return round(score / total, 6), tuple(agreed)


def _same(a: object, b: object) -> bool:
    return a != "" and a == b


def _stored(device: Device) -> DeviceAttributes | None:
    # Devices registered before attributes were validated carry free-form
    # attributes; they can never be matched, only bound by their key.
    try:
        return parse_attributes(device.attributes)
    except DeviceError:
        return None


def match_device(*, reported: DeviceAttributes, signed_by: Device | None,
                 known: Iterable[Device], config: MatchingConfig) -> DeviceMatch:
    """Classify one request's device.

    Args:
        reported: the attributes this installation reports.
        signed_by: the registry device whose key verified the request's
            signature, or None when the request is signed by a key the
            registry does not hold (registration of a new key).
        known: the user's devices (``DeviceRegistry.list``); revoked devices
            are ignored, so an unbound (e.g. stolen) phone is never "known".
        config: weights and thresholds.
    """
    if signed_by is not None and signed_by.status is DeviceStatus.BOUND:
        stored = _stored(signed_by)
        similarity, agreed = (attribute_similarity(reported, stored, config)
                              if stored is not None else (0.0, ()))
        return DeviceMatch(MatchStatus.BOUND, signed_by.device_id, similarity, agreed)
    best: DeviceMatch | None = None
    for device in sorted(known, key=lambda d: d.device_id):
        if device.status is not DeviceStatus.BOUND:
            continue
        stored = _stored(device)
        if stored is None:
            continue
        similarity, agreed = attribute_similarity(reported, stored, config)
        if best is None or similarity > best.similarity:
            best = DeviceMatch(MatchStatus.KNOWN_REINSTALLED, device.device_id, similarity, agreed)
    if best is not None and best.similarity >= config.reinstall_threshold:
        return best
    return DeviceMatch(MatchStatus.NEW, None, best.similarity if best else 0.0,
                       best.matched_attributes if best else ())

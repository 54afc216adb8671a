"""The device attributes the app reports, validated and normalised.

The app sends one JSON object with these keys (all strings)::

    model               "Xiaomi 23127PN0CC"       required
    os                  "android" | "ios" | "harmonyos"   required
    os_version          "14" or "17.4.1"          required
    app_version         "5.2.0"                   required
    app_signature_hash  hex SHA-256 of the app's signing certificate   required
                        (colons and upper case accepted, as Android tools print it)
    screen              "1080x2400" (either order; stored short side first)   required
    locale              "zh-CN" (or "zh_CN")      required
    timezone            IANA name, "Asia/Shanghai"   required
    install_id          16-64 base64url characters, random per installation   required
    carrier             MCC+MNC, "46000"; "" when there is no SIM    optional
    sim_hash            hex SHA-256 the app computes over the SIM identity; "" when none   optional

Normalising makes the same phone report the same values across app versions
(case, separators, screen orientation), so matching compares like with like.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from device_fingerprint.errors import AttributeInvalid, AttributeMissing, AttributeUnknown

__all__ = ["ATTRIBUTE_NAMES", "DeviceAttributes", "DeviceOS", "parse_attributes"]


class DeviceOS(StrEnum):
    ANDROID = "android"
    IOS = "ios"
    HARMONYOS = "harmonyos"


_OS_ALIASES = {
    "android": DeviceOS.ANDROID,
    "ios": DeviceOS.IOS,
    "ipados": DeviceOS.IOS,
    "harmonyos": DeviceOS.HARMONYOS,
    "harmony": DeviceOS.HARMONYOS,
    "openharmony": DeviceOS.HARMONYOS,
}

_REQUIRED = ("model", "os", "os_version", "app_version", "app_signature_hash", "screen",
             "locale", "timezone", "install_id")
_OPTIONAL = ("carrier", "sim_hash")
ATTRIBUTE_NAMES = _REQUIRED + _OPTIONAL

_MAX_LEN = 128
_VERSION_RE = re.compile(r"^[0-9]{1,5}(\.[0-9]{1,5}){0,3}([-+][0-9A-Za-z.]{1,32})?$")
_HEX256_RE = re.compile(r"^[0-9a-f]{64}$")
_SCREEN_RE = re.compile(r"^([0-9]{2,5})\s*[x*×]\s*([0-9]{2,5})$")
_LOCALE_RE = re.compile(r"^([a-z]{2,3})(?:-([a-z]{4}))?(?:-([a-z]{2}|[0-9]{3}))?$")
_CARRIER_RE = re.compile(r"^[0-9]{5,6}$")
_INSTALL_ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_MODEL_RE = re.compile(r"^[\w .()+/,'-]{1,64}$")


@dataclass(frozen=True, slots=True)
class DeviceAttributes:
    """Normalised attributes of one installation. Empty string = not reported."""

    model: str
    os: DeviceOS
    os_version: str
    app_version: str
    app_signature_hash: str
    screen: str
    locale: str
    timezone: str
    install_id: str
    carrier: str = ""
    sim_hash: str = ""

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form; what the registry stores and ``parse_attributes`` reads back."""
        out = asdict(self)
        out["os"] = self.os.value
        return out


def parse_attributes(raw: object) -> DeviceAttributes:
    """Validate and normalise a reported attribute object.

    Raises :class:`AttributeUnknown` for a key that is not in the schema (a
    misspelt key must not silently weaken matching), :class:`AttributeMissing`
    and :class:`AttributeInvalid` naming the field.
    """
    if not isinstance(raw, Mapping):
        raise AttributeInvalid("attributes", "must be a JSON object")
    for key in raw:
        if key not in ATTRIBUTE_NAMES:
            raise AttributeUnknown(str(key)[:64], f"unknown attribute (known: {', '.join(ATTRIBUTE_NAMES)})")
    values: dict[str, str] = {}
    for name in ATTRIBUTE_NAMES:
        value = raw.get(name)
        if value is None or value == "":
            if name in _REQUIRED:
                raise AttributeMissing(name)
            values[name] = ""
            continue
        if not isinstance(value, str):
            raise AttributeInvalid(name, "must be a string")
        if len(value) > _MAX_LEN:
            raise AttributeInvalid(name, f"longer than {_MAX_LEN} characters")
        values[name] = _NORMALISERS[name](name, value.strip())
    return DeviceAttributes(**values)  # type: ignore[arg-type]


def _model(name: str, value: str) -> str:
    folded = " ".join(value.split()).casefold()
    if not _MODEL_RE.match(folded):
        raise AttributeInvalid(name, "must be 1-64 letters, digits, spaces or .()+/,'-")
    return folded


def _os(name: str, value: str) -> DeviceOS:
    key = value.casefold().replace(" ", "")
    if key not in _OS_ALIASES:
        raise AttributeInvalid(name, "must be android, ios or harmonyos")
    return _OS_ALIASES[key]


def _version(name: str, value: str) -> str:
    if not _VERSION_RE.match(value):
        raise AttributeInvalid(name, "must be a dotted version such as 14 or 17.4.1")
    return value.casefold()


def _hex256(name: str, value: str) -> str:
    folded = value.replace(":", "").casefold()
    if not _HEX256_RE.match(folded):
        raise AttributeInvalid(name, "must be a hex SHA-256 (64 hex digits, colons allowed)")
    return folded


def _screen(name: str, value: str) -> str:
    m = _SCREEN_RE.match(value.casefold())
    if not m:
        raise AttributeInvalid(name, "must be WIDTHxHEIGHT in pixels, such as 1080x2400")
    a, b = int(m.group(1)), int(m.group(2))
    if not a or not b:
        raise AttributeInvalid(name, "width and height must be positive")
    # Rotation must not make the same phone look different.
    return f"{min(a, b)}x{max(a, b)}"


def _locale(name: str, value: str) -> str:
    m = _LOCALE_RE.match(value.replace("_", "-").casefold())
    if not m:
        raise AttributeInvalid(name, "must be a language tag such as zh-CN or zh-Hans-CN")
    lang, script, region = m.groups()
    parts = [lang]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def _timezone(name: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AttributeInvalid(name, "must be an IANA time zone such as Asia/Shanghai") from exc
    return value


def _carrier(name: str, value: str) -> str:
    compact = value.replace("-", "")
    if not _CARRIER_RE.match(compact):
        raise AttributeInvalid(name, "must be MCC+MNC digits such as 46000")
    return compact


def _install_id(name: str, value: str) -> str:
    if not _INSTALL_ID_RE.match(value):
        raise AttributeInvalid(name, "must be 16-64 base64url characters")
    return value


_NORMALISERS = {
    "model": _model,
    "os": _os,
    "os_version": _version,
    "app_version": _version,
    "app_signature_hash": _hex256,
    "screen": _screen,
    "locale": _locale,
    "timezone": _timezone,
    "install_id": _install_id,
    "carrier": _carrier,
    "sim_hash": _hex256,
}

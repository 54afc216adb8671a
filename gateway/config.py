"""Configuration: one immutable, validated object.

Built from a TOML file (see ``riskgate.example.toml``) plus environment
overrides named ``RISKGATE_<SECTION>_<KEY>`` (``RISKGATE_REDIS_URL``,
``RISKGATE_SERVER_PORT``, ...). Any bad value stops startup with a
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from auth_tools.sms import MAX_DIGITS, MIN_DIGITS, SmsPolicy

__all__ = [
    "AdminConfig",
    "AssertionConfig",
    "Config",
    "ConfigError",
    "DeviceConfig",
    "EncryptionConfig",
    "LoginConfig",
    "RedisConfig",
    "RouteConfig",
    "ServerConfig",
    "SessionConfig",
    "TlsConfig",
    "UpstreamConfig",
    "load_config",
]

ENV_PREFIX = "RISKGATE_"


class ConfigError(Exception):
    """A configuration value is missing, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"configuration key {key!r}: {problem}")
        self.key = key


def _require(key: str, ok: bool, problem: str) -> None:
    if not ok:
        raise ConfigError(key, problem)


def _is_combinations(value: str) -> bool:
    """``"sms+face,sms+biometric"``: comma-separated rows of tool names joined by "+"."""
    return re.fullmatch(r"([a-z_]+(\+[a-z_]+)*(,[a-z_]+(\+[a-z_]+)*)*)?", value.replace(" ", "")) is not None


def combination_rows(value: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(t for t in row.split("+") if t) for row in value.replace(" ", "").split(",") if row)


def _is_file(value: str) -> bool:
    try:
        return Path(value).is_file()
    except (OSError, ValueError):  # a name too long, say
        return False


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./data"
    max_body_bytes: int = 1_048_576
    public_url: str = ""
    # Bearer token Prometheus sends to /metrics; empty: /metrics answers loopback clients only.
    metrics_token: str = ""

    def validate(self) -> None:
        _require("server.port", 0 <= self.port <= 65535, "must be a TCP port (0-65535)")
        _require("server.max_body_bytes", 1024 <= self.max_body_bytes <= 64 * 1_048_576,
                 "must be between 1 KiB and 64 MiB")
        _require("server.data_dir", bool(self.data_dir), "must not be empty")


@dataclass(frozen=True, slots=True)
class RedisConfig:
    url: str = ""
    timeout: float = 5.0

    def validate(self) -> None:
        _require("redis.timeout", 0.05 <= self.timeout <= 60, "must be in [0.05, 60] seconds")
        _require("redis.url", self.url == "" or re.match(r"^(redis|rediss|unix|redis\+cluster|rediss\+cluster)://",
                                                          self.url) is not None,
                 "must be empty (embedded Redis) or a redis://, rediss://, unix:// or "
                 "redis+cluster://host:port[,host:port...] URL")
        if self.url.startswith(("redis+cluster://", "rediss+cluster://")):
            from gateway.redis_cluster import seed_nodes

            try:
                seed_nodes(self.url)
            except ValueError as exc:
                raise ConfigError("redis.url", str(exc)) from None


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    url: str = "http://127.0.0.1:8081"
    audience: str = "riskgate-upstream"
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    pool_size: int = 100

    def validate(self) -> None:
        _require("upstream.url", re.match(r"^https?://[^/]+", self.url) is not None,
                 "must be an http:// or https:// URL")
        _require("upstream.audience", bool(self.audience), "must not be empty")
        _require("upstream.connect_timeout", 0 < self.connect_timeout <= 60, "must be in (0, 60] seconds")
        _require("upstream.read_timeout", 0 < self.read_timeout <= 300, "must be in (0, 300] seconds")
        _require("upstream.pool_size", 1 <= self.pool_size <= 10_000, "must be in [1, 10000]")


@dataclass(frozen=True, slots=True)
class AssertionConfig:
    issuer: str = "riskgate"
    lifetime: int = 30
    kek: str = ""
    kek_file: str = ""
    key_refresh_interval: float = 1.0
    # A rotated signing key is published this long before it signs: at least the
    # upstreams' minimum interval between JWKS refetches.
    key_publish_ahead: float = 15.0

    def validate(self) -> None:
        _require("assertion.issuer", bool(self.issuer), "must not be empty")
        _require("assertion.key_publish_ahead", 0 <= self.key_publish_ahead <= 3600,
                 "must be in [0, 3600] seconds")
        _require("assertion.lifetime", 1 <= self.lifetime <= 60,
                 "must be between 1 and 60 seconds (the upstream refuses longer)")
        _require("assertion.kek", self.kek == "" or _is_b64_key(self.kek),
                 "must be 32 bytes in base64url (generate with `riskgate keys kek`)")
        _require("assertion.key_refresh_interval", 0.1 <= self.key_refresh_interval <= 60,
                 "must be in [0.1, 60] seconds")


def _is_b64_key(value: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == 32
    except (binascii.Error, ValueError):
        return False


@dataclass(frozen=True, slots=True)
class SessionConfig:
    idle_timeout: int = 300
    absolute_timeout: int = 43_200
    recent_password_window: int = 300

    def validate(self) -> None:
        _require("session.idle_timeout", 30 <= self.idle_timeout <= 86_400, "must be in [30, 86400] seconds")
        _require("session.absolute_timeout", self.idle_timeout <= self.absolute_timeout <= 30 * 86_400,
                 "must be at least session.idle_timeout and at most 30 days")
        _require("session.recent_password_window", 10 <= self.recent_password_window <= 3600,
                 "must be in [10, 3600] seconds")


@dataclass(frozen=True, slots=True)
class LoginConfig:
    max_failures: int = 5
    lockout_seconds: int = 900

    def validate(self) -> None:
        _require("login.max_failures", 1 <= self.max_failures <= 100, "must be in [1, 100]")
        _require("login.lockout_seconds", 1 <= self.lockout_seconds <= 7 * 86_400, "must be in [1, 604800]")


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Device signatures, recognition and binding (see gateway.device_recognition).

    A new or re-installed device is registered *pending* and bound once the
    session passes one of ``new_device_combinations`` whose tools are all
    offered (default SMS to the reserved phone + face, with a face provider),
    else ``new_device_tier`` (default T2: password + SMS to the reserved
    phone, or any T3+ tool); risk above low always asks for the tier. Its
    cool-off is ``limits``'
    ``device_cooloff_*``. The user's first device is bound at registration
    while ``first_device_trusted`` (enrolment). ``carrier_token`` enables the
    SIM-swap report API; ``pin_session_ip`` pins sessions to their network.
    """

    max_skew: int = 120
    nonce_ttl: int = 300
    max_devices: int = 3
    reinstall_threshold: float = 0.85
    new_device_tier: int = 2
    new_device_combinations: str = "sms+face"
    unbind_tier: int = 2
    first_device_trusted: bool = True
    require_attributes: bool = False
    pending_ttl: int = 3600
    expected_app_signatures: str = ""
    capped_max_tier: int = 3
    sms_block_days: float = 7.0
    carrier_token: str = ""
    ip_regions_file: str = ""
    geo_max_radius_km: float = 300.0
    pin_session_ip: bool = False

    def validate(self) -> None:
        _require("device.max_skew", 1 <= self.max_skew <= 600, "must be in [1, 600] seconds")
        _require("device.nonce_ttl", self.nonce_ttl >= 2 * self.max_skew,
                 "must be at least twice device.max_skew, or a replay could outlive its nonce")
        _require("device.max_devices", 1 <= self.max_devices <= 100, "must be in [1, 100]")
        _require("device.reinstall_threshold", 0 < self.reinstall_threshold <= 1, "must be in (0, 1]")
        _require("device.new_device_tier", 1 <= self.new_device_tier <= 5, "must be a tier in [1, 5]")
        _require("device.new_device_combinations", _is_combinations(self.new_device_combinations),
                 'must be tool combinations like "sms+face", comma-separated, or empty')
        _require("device.unbind_tier", 1 <= self.unbind_tier <= 5, "must be a tier in [1, 5]")
        _require("device.pending_ttl", 60 <= self.pending_ttl <= 86_400, "must be in [60, 86400] seconds")
        _require("device.expected_app_signatures",
                 all(re.fullmatch(r"[0-9a-fA-F:]{64,95}", s.strip())
                     for s in self.expected_app_signatures.split(",") if s.strip()),
                 "must be a comma-separated list of hex SHA-256 app signing-certificate hashes")
        _require("device.capped_max_tier", 0 <= self.capped_max_tier <= 5, "must be a tier in [0, 5]")
        _require("device.sms_block_days", 0 <= self.sms_block_days <= 365, "must be in [0, 365] days")
        _require("device.carrier_token", self.carrier_token == "" or len(self.carrier_token) >= 24,
                 "must be empty (SIM-swap report API off) or at least 24 characters")
        if self.ip_regions_file:
            _require("device.ip_regions_file", _is_file(self.ip_regions_file), "no such file")
        _require("device.geo_max_radius_km", 0 <= self.geo_max_radius_km <= 20_000,
                 "must be in [0, 20000] km")


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The admin API (customer enrolment). Disabled while ``token`` is empty."""

    token: str = ""

    def validate(self) -> None:
        _require("admin.token", self.token == "" or len(self.token) >= 24,
                 "must be empty (admin API off) or at least 24 characters")


@dataclass(frozen=True, slots=True)
class StepUpConfig:
    """The challenge protocol and the step-up tools."""

    challenge_ttl: int = 300
    approval_ttl: int = 120
    tool_max_failures: int = 5
    tool_lockout_seconds: int = 900
    tiers_file: str = ""
    sms_webhook_url: str = ""
    sms_code_digits: int = 6
    sms_code_ttl: int = 300
    rp_id: str = "localhost"
    rp_name: str = "riskgate"
    origins: str = "http://localhost:8080"
    totp_issuer: str = "riskgate"
    # The face-match provider (docs/face-provider.md); no key: the face tool is not offered.
    face_provider_key: str = ""
    face_issuer: str = ""
    face_provider_url: str = ""
    face_min_score: float = 0.8
    # Online activation to the 1,000,000 level: enrolling one of these tools online needs
    # exactly this tool combination (default face + SMS to the reserved phone), whatever
    # the session holds. Applies only while every tool of the combination is offered
    # (face needs a provider); otherwise the tool's enrolment tier applies.
    online_activation: str = "face+sms"
    online_activation_tools: str = "cloud_cert,fido"

    def validate(self) -> None:
        _require("stepup.challenge_ttl", 30 <= self.challenge_ttl <= 1800, "must be in [30, 1800] seconds")
        _require("stepup.approval_ttl", 10 <= self.approval_ttl <= 600, "must be in [10, 600] seconds")
        _require("stepup.tool_max_failures", 1 <= self.tool_max_failures <= 100, "must be in [1, 100]")
        _require("stepup.tool_lockout_seconds", 1 <= self.tool_lockout_seconds <= 30 * 86_400,
                 "must be in [1, 2592000] seconds")
        _require("stepup.sms_code_digits", MIN_DIGITS <= self.sms_code_digits <= MAX_DIGITS,
                 f"must be in [{MIN_DIGITS}, {MAX_DIGITS}]")
        resend = SmsPolicy().resend_interval
        _require("stepup.sms_code_ttl", 30 <= self.sms_code_ttl <= 1800 and self.sms_code_ttl >= resend,
                 f"must be in [30, 1800] seconds and not shorter than the {resend:g} s between resends")
        _require("stepup.origins", all(o.strip().startswith(("http://", "https://"))
                                       for o in self.origins.split(",")),
                 "must be a comma-separated list of http(s) origins")
        if self.tiers_file:
            _require("stepup.tiers_file", _is_file(self.tiers_file), "no such file")
        _require("stepup.face_min_score", 0.0 < self.face_min_score <= 1.0, "must be in (0, 1]")
        _require("stepup.online_activation", _is_combinations(self.online_activation) and
                 "," not in self.online_activation, 'must be tool names joined by "+" (e.g. "face+sms"), or empty')
        _require("stepup.online_activation_tools",
                 re.fullmatch(r"([a-z_]+(,[a-z_]+)*)?", self.online_activation_tools.replace(" ", ""))
                 is not None, 'must be comma-separated tool names')
        if self.face_provider_key:
            self._validate_face_provider()

    @property
    def activation_combination(self) -> tuple[str, ...]:
        return tuple(t for t in self.online_activation.strip().split("+") if t)

    @property
    def activation_tools(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.online_activation_tools.split(",") if t.strip())

    def _validate_face_provider(self) -> None:
        from auth_tools.face import load_provider_keys

        _require("stepup.face_issuer", bool(self.face_issuer.strip()),
                 "is required with stepup.face_provider_key (the provider's iss claim)")
        if not self.face_provider_key.lstrip().startswith("{"):
            _require("stepup.face_provider_key", _is_file(self.face_provider_key),
                     "no such file (give a PEM or JWK file path, or inline JWK JSON)")
        try:
            load_provider_keys(self.face_provider_key_text())
        except (OSError, ValueError) as exc:
            raise ConfigError("stepup.face_provider_key", str(exc)) from exc

    def face_provider_key_text(self) -> str:
        """The face provider's public key: the inline JWK JSON, or the contents of the file named."""
        value = self.face_provider_key.strip()
        if not value or value.startswith("{"):
            return value
        return Path(value).read_text(encoding="utf-8")

    @property
    def origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.origins.split(",") if o.strip())


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Risk scoring: how much a step-up outcome teaches the model (a weak label), and
    the cap on money movement at high risk."""

    step_up_label_weight: float = 0.2
    # At high risk a money movement moves two tiers up and may not exceed this (CNY).
    high_risk_cap: str = "50000.00"
    # Score thresholds of the levels (rules' scores plus the model's probability).
    medium: float = 0.5
    high: float = 0.7
    block: float = 0.9
    min_labels: int = 500  # the model contributes nothing until it has learned this many

    def validate(self) -> None:
        _require("risk.step_up_label_weight", 0.0 < self.step_up_label_weight <= 1.0,
                 "must be in (0, 1]")
        _require("risk.medium", 0.0 < self.medium < self.high < self.block <= 1.0,
                 "thresholds must rise: 0 < medium < high < block <= 1")
        _require("risk.min_labels", self.min_labels >= 0, "must not be negative")
        from auth_tools.dynamic_linking import InvalidAmount, parse_amount

        try:
            parse_amount(self.high_risk_cap)
        except InvalidAmount as exc:
            raise ConfigError("risk.high_risk_cap", str(exc)) from exc

    @property
    def high_risk_cap_fen(self) -> int:
        from auth_tools.dynamic_linking import parse_amount

        return parse_amount(self.high_risk_cap)


@dataclass(frozen=True, slots=True)
class LimitsSection:
    """Where the ``[limits]`` table lives (tier limits, account classes): a TOML file.

    Empty: the DESIGN.md defaults (limits.config.LimitsConfig).
    """

    file: str = ""
    add_payee_tier: int = 2

    def validate(self) -> None:
        _require("limits.add_payee_tier", 0 <= self.add_payee_tier <= 5, "must be in [0, 5]")
        if self.file:
            _require("limits.file", _is_file(self.file), "no such file")
            self.load()

    def load(self):  # noqa: ANN201 - limits.LimitsConfig
        from limits.config import LimitsConfig
        from limits.errors import LimitsConfigInvalid

        if not self.file:
            return LimitsConfig()
        try:
            with open(self.file, "rb") as fh:
                doc = tomllib.load(fh)
            return LimitsConfig.from_dict(doc.get("limits", doc))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("limits.file", str(exc)) from exc
        except LimitsConfigInvalid as exc:
            raise ConfigError(getattr(exc, "key", "limits.file"), str(exc)) from exc


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One row of the route policy table (``[[routes]]``)."""

    method: str
    path: str
    action: str
    amount_field: str = ""
    currency_field: str = ""
    payee_field: str = ""
    source_field: str = ""


DEFAULT_ROUTES: tuple[RouteConfig, ...] = (
    RouteConfig("GET", "/v1/accounts", "view_accounts"),
    RouteConfig("GET", "/v1/accounts/{account_id}/balance", "view_accounts"),
    RouteConfig("GET", "/v1/accounts/{account_id}/history", "view_history"),
    RouteConfig("GET", "/v1/payees", "view_payees"),
    RouteConfig("POST", "/v1/payees", "add_payee", payee_field="account"),
    RouteConfig("POST", "/v1/transfers", "transfer", amount_field="amount",
                currency_field="currency", payee_field="payee_account", source_field="from_account"),
)


@dataclass(frozen=True, slots=True)
class EncryptionConfig:
    """End-to-end payload encryption (JWE); see gateway.payload_encryption."""

    require_for_money_and_auth: bool = False
    # How long a rotated-out encryption key still decrypts (clients cache the JWKS).
    key_grace_seconds: int = 3600

    def validate(self) -> None:
        _require("encryption.key_grace_seconds", 60 <= self.key_grace_seconds <= 30 * 86_400,
                 "must be in [60, 2592000] seconds")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """HTTPS serving; off while ``cert_file`` is empty. See gateway.tls_serving."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    client_cert_required: bool = False
    hsts_max_age: int = 31_536_000
    # Behind a TLS-terminating proxy: the header carrying the verified client
    # certificate (URL-encoded PEM), believed only from these comma-separated addresses.
    client_cert_header: str = ""
    trusted_proxies: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file)

    def validate(self) -> None:
        _require("tls.key_file", bool(self.key_file) == bool(self.cert_file),
                 "tls.cert_file and tls.key_file go together")
        for key, value in (("tls.cert_file", self.cert_file), ("tls.key_file", self.key_file),
                           ("tls.client_ca_file", self.client_ca_file)):
            if value:
                _require(key, _is_file(value), f"no such file: {value}")
        _require("tls.client_ca_file", self.enabled or not self.client_ca_file,
                 "client certificates need TLS (set tls.cert_file and tls.key_file)")
        _require("tls.client_cert_required", self.client_ca_file or not self.client_cert_required,
                 "requiring client certificates needs tls.client_ca_file")
        _require("tls.hsts_max_age", 0 <= self.hsts_max_age <= 2 * 31_536_000,
                 "must be in [0, 63072000] seconds (0 sends no HSTS)")


@dataclass(frozen=True, slots=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    assertion: AssertionConfig = field(default_factory=AssertionConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    login: LoginConfig = field(default_factory=LoginConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    stepup: StepUpConfig = field(default_factory=StepUpConfig)
    limits: LimitsSection = field(default_factory=LimitsSection)
    risk: RiskConfig = field(default_factory=RiskConfig)
    routes: tuple[RouteConfig, ...] = DEFAULT_ROUTES
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)

    def replace(self, **sections: object) -> Config:
        """Return a copy with whole sections replaced (used by the demo and tests)."""
        new = dataclasses.replace(self, **sections)
        new.validate()
        return new

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if hasattr(value, "validate"):
                value.validate()
        from gateway.route_policy import RoutePolicy

        RoutePolicy.from_config(self.routes)  # raises ConfigError on a bad table

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir)


_SECTIONS: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Config)
    if f.name != "routes"
}


def _coerce(key: str, raw: object, annotation: object) -> object:
    target = annotation
    if isinstance(annotation, str):
        target = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation, str)
    if isinstance(target, types.UnionType) or typing.get_origin(target) is typing.Union:
        target = str
    if target is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            return raw.lower() in {"1", "true", "yes", "on"}
        raise ConfigError(key, f"must be a boolean, got {raw!r}")
    if target is int:
        if isinstance(raw, bool):
            raise ConfigError(key, f"must be an integer, got {raw!r}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str) and re.fullmatch(r"-?[0-9]{1,100}", raw.strip()):
            return int(raw)
        raise ConfigError(key, f"must be an integer, got {raw!r}")
    if target is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise ConfigError(key, f"must be a number, got {raw!r}")
    if not isinstance(raw, str):
        raise ConfigError(key, f"must be a string, got {raw!r}")
    return raw


def _build_section(name: str, cls: type, values: Mapping[str, object]) -> object:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, object] = {}
    for key, raw in values.items():
        if key not in fields:
            raise ConfigError(f"{name}.{key}", f"unknown key (known: {', '.join(sorted(fields))})")
        kwargs[key] = _coerce(f"{name}.{key}", raw, fields[key].type)
    return cls(**kwargs)


def _build_routes(rows: object) -> tuple[RouteConfig, ...]:
    if not isinstance(rows, list) or not rows:
        raise ConfigError("routes", "must be a non-empty array of tables ([[routes]])")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(f"routes[{i}]", "must be a table")
        for required in ("method", "path", "action"):
            if required not in row:
                raise ConfigError(f"routes[{i}].{required}", "is required")
        out.append(_build_section(f"routes[{i}]", RouteConfig, row))
    return tuple(out)  # type: ignore[arg-type]


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Mapping[str, object]] | None = None) -> Config:
    """Read TOML (optional), apply ``RISKGATE_*`` variables, validate.

    ``overrides`` (section -> key -> value) are applied last; the demo and the
    tests use them for ports and directories.
    """
    env = os.environ if env is None else env
    data: dict[str, object] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError("--config", f"file {str(path)!r} not found") from exc
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from exc

    for name in data:
        if name not in _SECTIONS and name != "routes":
            raise ConfigError(name, f"unknown section (known: {', '.join(sorted([*_SECTIONS, 'routes']))})")

    for name in _SECTIONS:
        if not isinstance(data.get(name, {}), dict):
            raise ConfigError(name, "must be a table")
    sections: dict[str, dict[str, object]] = {
        name: dict(data.get(name, {})) for name in _SECTIONS  # type: ignore[arg-type]
    }
    for name, table in sections.items():
        fields = {f.name for f in dataclasses.fields(_SECTIONS[name])}
        for key in fields:
            var = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
            if var in env:
                table[key] = env[var]
    for name, table in (overrides or {}).items():
        if name not in sections:
            raise ConfigError(name, "unknown section")
        sections[name].update(table)

    built = {name: _build_section(name, cls, sections[name]) for name, cls in _SECTIONS.items()}
    routes = _build_routes(data["routes"]) if "routes" in data else DEFAULT_ROUTES
    config = Config(routes=routes, **built)  # type: ignore[arg-type]
    config.validate()
    return config

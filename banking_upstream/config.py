"""Configuration of the reference banking upstream."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UpstreamConfig"]


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """Where the ledger lives and how gateway assertions are checked.

    ``leeway`` is the clock skew (seconds) tolerated on ``iat``/``exp``;
    ``jwks_min_refetch_interval`` bounds how often an unknown ``kid`` may make
    the upstream fetch the gateway's JWKS again.
    """

    db_path: str
    jwks_url: str
    issuer: str = "riskgate"
    audience: str = "riskgate-upstream"
    max_assertion_lifetime: int = 60
    jwks_min_refetch_interval: float = 10.0
    leeway: int = 5
    # PEM CA bundle to verify an https:// JWKS URL with (empty: the system's trust store).
    jwks_ca_file: str = ""

    def __post_init__(self) -> None:
        if not self.db_path:
            raise ValueError("UpstreamConfig.db_path must not be empty")
        if not self.jwks_url.startswith(("http://", "https://")):
            raise ValueError("UpstreamConfig.jwks_url must be an http(s) URL")
        if not self.issuer or not self.audience:
            raise ValueError("UpstreamConfig.issuer and audience must not be empty")
        if not 1 <= self.max_assertion_lifetime <= 3600:
            raise ValueError("UpstreamConfig.max_assertion_lifetime must be 1..3600 seconds")
        if self.jwks_min_refetch_interval < 0 or not 0 <= self.leeway <= 60:
            raise ValueError("UpstreamConfig.jwks_min_refetch_interval >= 0 and leeway 0..60")

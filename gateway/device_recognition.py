"""Device recognition in the gateway: which device is this, what may it reach, where is it.

Built once (``Services.recognition``) from ``[device]`` and ``[limits]``. It
composes :mod:`device_fingerprint`: attributes and signals as the app reports
them, matching against the user's registry (bound key / same phone
re-installed / new), the tier cap of a tampered runtime, SIM-swap reports and
the IP-to-region table. The step-up and binding flows are in
:mod:`gateway.device_binding`.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from device_fingerprint.attributes import DeviceAttributes, parse_attributes
from device_fingerprint.binding import BindingConfig, BindingStore
from device_fingerprint.context import DeviceContext, build_device_context
from device_fingerprint.errors import DeviceError, IpAddressInvalid
from device_fingerprint.geo import GeoConfig, IpRegionTable, check_pinned, pin_network
from device_fingerprint.matching import DeviceMatch, MatchingConfig, MatchStatus, match_device
from device_fingerprint.registry import Device, DeviceRegistry, DeviceStatus
from device_fingerprint.signals import (
    MAX_TIER,
    DeviceSignals,
    RiskSignal,
    SignalsConfig,
    parse_signals,
)
from device_fingerprint.sim_swap import SimSwapConfig, SimSwapStore
from gateway.config import DeviceConfig
from gateway.device_errors import AttributesRequired
from gateway.errors import BadRequest
from gateway.sessions import Session
from limits import LimitsConfig

__all__ = ["DeviceRecognition", "Recognised"]

# Signals about the app itself (emulator, hooking, repackaging) stay on the
# device once seen: a tampered app can simply stop reporting them.
_STICKY = frozenset({RiskSignal.EMULATOR, RiskSignal.HOOKED, RiskSignal.SIGNATURE_MISMATCH})


@dataclass(frozen=True, slots=True)
class Recognised:
    """A registration's verdict: the match, the context and the user's devices."""

    attributes: DeviceAttributes | None
    match: DeviceMatch
    context: DeviceContext
    known: tuple[Device, ...]

    @property
    def bound_count(self) -> int:
        return sum(1 for d in self.known if d.status is DeviceStatus.BOUND)


class DeviceRecognition:
    def __init__(self, redis: Redis, registry: DeviceRegistry, config: DeviceConfig,
                 limits: LimitsConfig) -> None:
        self.config = config
        self.registry = registry
        self.matching = MatchingConfig(reinstall_threshold=config.reinstall_threshold)
        self.signals_config = SignalsConfig(
            expected_app_signatures=frozenset(
                s.strip().replace(":", "").casefold()
                for s in config.expected_app_signatures.split(",") if s.strip()),
            capped_max_tier=config.capped_max_tier)
        self.binding_config = BindingConfig(max_devices=config.max_devices,
                                            cool_off_seconds=limits.cooloff_seconds,
                                            cool_off_daily_limit=limits.cooloff_daily)
        self.sim_swap_config = SimSwapConfig(sms_block_days=config.sms_block_days)
        self.geo_config = GeoConfig()
        self.binding = BindingStore(redis, registry, self.binding_config)
        self.sim_swaps = SimSwapStore(redis, self.sim_swap_config)
        self.ip_regions = (IpRegionTable.from_path(config.ip_regions_file) if config.ip_regions_file
                           else IpRegionTable.bundled())
        self._redis = redis

    # -- what the app reports ------------------------------------------------
    def parse_report(self, raw_attributes: object, raw_signals: object,
                     ) -> tuple[DeviceAttributes | None, DeviceSignals]:
        """Validate attributes and signals; ``{}`` attributes mean "not reported".

        A device that reports no attributes can only ever be recognised by its
        key, so it is always "new" on re-registration (never weaker).
        """
        try:
            if raw_attributes in (None, {}):
                if self.config.require_attributes:
                    raise AttributesRequired()
                attributes = None
            else:
                attributes = parse_attributes(raw_attributes)
            signals = parse_signals(raw_signals, config=self.signals_config,
                                    app_signature_hash=attributes.app_signature_hash if attributes else "")
        except DeviceError as exc:
            raise BadRequest(exc.code, exc.message) from exc
        return attributes, signals

    async def recognise(self, user_id: str, attributes: DeviceAttributes | None,
                        signals: DeviceSignals, now: float) -> Recognised:
        """Match a new key's attributes against the user's devices (bound key never applies here)."""
        known = tuple(await self.registry.list(user_id))
        if attributes is None:
            match = DeviceMatch(MatchStatus.NEW, None, 0.0)
        else:
            match = match_device(reported=attributes, signed_by=None, known=known, config=self.matching)
        sim_swapped_at = await self.sim_swaps.latest(user_id)
        context = build_device_context(user_id=user_id, match=match, signed_by=None, known=known,
                                       signals=signals, sim_swapped_at=sim_swapped_at,
                                       binding=self.binding_config, sim_swap=self.sim_swap_config,
                                       now=now)
        return Recognised(attributes, match, context, known)

    def merged_signals(self, device: Device | None, reported: DeviceSignals) -> tuple[str, ...]:
        """What to store after a report: the new report plus the sticky signals seen before."""
        raised = {s.value for s in reported.raised}
        if device is not None:
            raised |= {s for s in device.signals if s in _STICKY}
        return tuple(sorted(raised))

    # -- what a device may do ------------------------------------------------
    def tier_cap(self, device: Device) -> int:
        """Highest tier this device may reach (T3 once emulator, hooking or tampering was seen)."""
        if set(device.signals) & {s.value for s in self.signals_config.cap_signals}:
            return self.signals_config.capped_max_tier
        return MAX_TIER

    @staticmethod
    def risk_flags(device: Device) -> dict[str, bool]:
        """``RequestFacts.device_signals``: every signal name -> raised?"""
        raised = set(device.signals)
        return {s.value: s.value in raised for s in RiskSignal}

    def device_since(self, device: Device) -> float | None:
        """The start of the device's cool-off for the limits (None: none applies)."""
        return device.bound_at

    # -- where the request comes from ----------------------------------------
    def geo(self, ip: str) -> tuple[float, float] | None:
        """(lat, lon) of the client's region, when the table places it precisely enough.

        A country-level row (radius of thousands of km) is no location: two
        requests "from China" must not look like travel between two points.
        """
        try:
            region = self.ip_regions.region_of(ip) if ip else None
        except IpAddressInvalid:
            return None
        if region is None or not region.located or region.radius_km > self.config.geo_max_radius_km:
            return None
        return (region.lat, region.lon)  # type: ignore[return-value]

    def region_code(self, ip: str) -> str | None:
        try:
            region = self.ip_regions.region_of(ip) if ip else None
        except IpAddressInvalid:
            return None
        return region.code if region is not None else None

    @staticmethod
    def _pin_key(session: Session) -> str:
        return f"{session.key}:ippin"

    async def pin_session(self, session: Session, ip: str, ttl: int) -> None:
        """Pin the session to the network it logged in from (when the policy is on)."""
        if not self.config.pin_session_ip or not ip:
            return
        try:
            network = pin_network(ip, self.geo_config)
        except IpAddressInvalid:
            return
        await self._redis.set(self._pin_key(session), network, ex=ttl)

    async def check_pin(self, session: Session, ip: str) -> None:
        """Raise ``IpOutsidePinnedRange`` when a pinned session comes from elsewhere."""
        if not self.config.pin_session_ip:
            return
        pinned = await self._redis.get(self._pin_key(session))
        if pinned is not None:
            check_pinned(pinned.decode(), ip)


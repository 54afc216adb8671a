"""DeviceContext: everything later steps need to know about the request's device."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from device_fingerprint.binding import BindingConfig, cool_off_until
from device_fingerprint.matching import DeviceMatch, MatchStatus
from device_fingerprint.registry import Device
from device_fingerprint.signals import DeviceSignals
from device_fingerprint.sim_swap import SimSwapConfig, sms_blocked_until

__all__ = ["DeviceContext", "build_device_context"]

# MatchStatus -> the risk engine's device_status vocabulary (bound / known / new).
_RISK_STATUS = {
    MatchStatus.BOUND: "bound",
    MatchStatus.KNOWN_REINSTALLED: "known",
    MatchStatus.NEW: "new",
}


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """The device step's verdict for one request.

    ``device_id`` is the registry device whose key signed the request (None
    while a new key is being registered). ``device_age_seconds`` is the age
    of the physical device as far as we know it: the bound record, or for a
    re-install the record it matched; 0 for a new device.
    ``cool_off_until``/``cool_off_daily_limit`` (fen) apply while the device
    is newly bound; for a device not yet bound they are what binding it now
    would start. ``max_tier`` caps the tier whatever the user proves.
    """

    user_id: str
    device_id: str | None
    status: MatchStatus
    matched_device_id: str | None
    similarity: float
    device_age_seconds: float
    signals: DeviceSignals
    max_tier: int
    cool_off_until: float | None
    cool_off_daily_limit: int | None
    sms_allowed: bool
    sms_blocked_until: float | None
    sim_swapped_at: float | None

    @property
    def step_up_required(self) -> bool:
        """A new or re-installed device must pass step-up before login or binding."""
        return self.status is not MatchStatus.BOUND

    @property
    def in_cool_off(self) -> bool:
        return self.cool_off_until is not None

    @property
    def risk_status(self) -> str:
        return _RISK_STATUS[self.status]

    def risk_signals(self) -> dict[str, bool]:
        """Named booleans for the risk engine (``RequestFacts.device_signals``)."""
        flags = self.signals.as_flags()
        flags["reinstalled"] = self.status is MatchStatus.KNOWN_REINSTALLED
        return flags


def build_device_context(*, user_id: str, match: DeviceMatch, signed_by: Device | None,
                         known: Iterable[Device], signals: DeviceSignals,
                         sim_swapped_at: float | None, binding: BindingConfig,
                         sim_swap: SimSwapConfig, now: float) -> DeviceContext:
    """Assemble the context from the match, the signals and the SIM-swap time. Pure.

    ``known`` is the user's device list (to date a re-installed phone by the
    record it matched); ``sim_swapped_at`` comes from ``SimSwapStore.latest``.
    """
    if match.status is MatchStatus.BOUND and signed_by is not None:
        age = max(now - signed_by.created, 0.0)
        cool_off = cool_off_until(signed_by.created, now, binding)
    else:
        age = 0.0
        if match.status is MatchStatus.KNOWN_REINSTALLED:
            first = next((d for d in known if d.device_id == match.matched_device_id), None)
            age = max(now - first.created, 0.0) if first is not None else 0.0
        cool_off = cool_off_until(now, now, binding)
    blocked = sms_blocked_until(sim_swapped_at, now, sim_swap)
    return DeviceContext(
        user_id=user_id,
        device_id=signed_by.device_id if signed_by is not None else None,
        status=match.status,
        matched_device_id=match.matched_device_id,
        similarity=match.similarity,
        device_age_seconds=age,
        signals=signals,
        max_tier=signals.max_tier,
        cool_off_until=cool_off,
        cool_off_daily_limit=binding.cool_off_daily_limit if cool_off is not None else None,
        sms_allowed=blocked is None,
        sms_blocked_until=blocked,
        sim_swapped_at=sim_swapped_at,
    )

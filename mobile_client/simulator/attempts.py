"""The simulator's output: one frozen value per transfer attempt, as plain data.

An attempt carries the request facts the risk engine needs (what the gateway
would know at that moment), the ground truth (legitimate or which fraud
scenario) and the authentication tools the acting party really holds, so a
driver can tell whether a step-up would stop it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Scenario", "TransferAttempt"]


class Scenario(StrEnum):
    LEGIT = "legit"
    ATO_SIM_SWAP = "ato_sim_swap"  # SIM swapped, password phished, thief on a new device
    SOCIAL_ENGINEERING = "social_engineering"  # the victim pays a scammer from their own phone
    MULE_FAN_OUT = "mule_fan_out"  # a mule account spreads received money to many new payees
    CREDENTIAL_STUFFING = "credential_stuffing"  # leaked passwords tried from scripted devices
    EMULATOR_FARM = "emulator_farm"  # phished accounts driven from emulators, OTPs relayed
    MALWARE_PAYEE_SWAP = "malware_payee_swap"  # malware on the victim's phone rewrites the payee

    @property
    def fraud(self) -> bool:
        return self is not Scenario.LEGIT


@dataclass(frozen=True, slots=True)
class TransferAttempt:
    """One transfer request as the gateway would see it, plus the ground truth.

    ``device_status`` is the device step's verdict (bound / known / new);
    ``device_signals`` names the signals that are on (rooted, emulator, hooked,
    reinstalled); ``sim_changed_at`` is the last SIM change the carrier has
    reported for the user by now (None if never). ``tools`` are the tier-policy
    elements the actor can complete (``auth_tools.tier_policy`` names: pwd, sms,
    sms_armor, totp, biometric, bound_device, pin, cloud_cert, fido_uv,
    fido_uv_not_synced, hardware_cert).
    """

    attempt_id: str
    at: float
    user_id: str
    amount_fen: int
    payee: str
    device_id: str
    device_status: str
    device_created: float | None
    device_similarity: float
    device_signals: frozenset[str]
    ip: str
    geo: tuple[float, float]
    account_created: float
    account_class: str
    sim_changed_at: float | None
    scenario: Scenario
    tools: frozenset[str]
    action: str = "transfer"
    utc_offset_hours: float = 8.0
    campaign: str = ""  # attempts of one fraud campaign share it

    @property
    def fraud(self) -> bool:
        return self.scenario.fraud

    def signals(self) -> dict[str, bool]:
        return {name: True for name in self.device_signals}

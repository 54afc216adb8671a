"""Gateway refusals of device recognition, binding and SIM-swap checks.

Each carries its HTTP status and a stable ``code``; :mod:`gateway.asgi_edge`
turns them into the usual JSON body.
"""

from __future__ import annotations

from gateway.errors import GatewayError

__all__ = [
    "AttributesRequired",
    "DeviceLimitReached",
    "DeviceNotBound",
    "DeviceTierCapped",
    "SmsBlockedBySimSwap",
    "UnknownUser",
]


class DeviceNotBound(GatewayError):
    status = 403
    code = "device_not_bound"
    message = "this device is not bound yet: pass the device-change step-up first (POST /devices/bind)"


class DeviceLimitReached(GatewayError):
    status = 409
    code = "device_limit_reached"
    message = "the maximum number of bound devices is reached; unbind one first"


class DeviceTierCapped(GatewayError):
    """The device reported emulator, hooking or a repackaged app: it stops below this tier."""

    status = 403
    code = "device_tier_capped"
    message = "this request needs a higher authentication tier than this device may reach"


class SmsBlockedBySimSwap(GatewayError):
    status = 403
    code = "sms_blocked_sim_swap"
    message = ("a SIM swap or number port was reported for this customer: SMS codes do not count "
               "for now; use another tool or visit the bank")


class AttributesRequired(GatewayError):
    status = 400
    code = "device_attributes_required"
    message = "the device attributes are required (model, os, os_version, ...)"


class UnknownUser(GatewayError):
    status = 404
    code = "unknown_user"
    message = "no such customer"

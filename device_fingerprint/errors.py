"""Failures of device recognition and device-key request signatures.

    DeviceError
     +-- SignatureMissing / SignatureMalformed / SignatureInvalid
     +-- SignatureStale / NonceReplayed
     +-- DeviceUnknown / DeviceRevoked / BadDeviceKey
"""

from __future__ import annotations


class DeviceError(Exception):
    code = "device_error"
    message = "device check failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class SignatureMissing(DeviceError):
    code = "device_signature_missing"
    message = "the request is not signed with a device key"


class SignatureMalformed(DeviceError):
    code = "device_signature_malformed"
    message = "the device signature header is malformed"


class SignatureInvalid(DeviceError):
    code = "device_signature_invalid"
    message = "the device signature does not verify"


class SignatureStale(DeviceError):
    code = "device_signature_stale"
    message = "the signed timestamp is outside the allowed clock skew"


class NonceReplayed(DeviceError):
    code = "device_nonce_replayed"
    message = "this signed request has already been seen"


class DeviceUnknown(DeviceError):
    code = "device_unknown"
    message = "the device is not registered"


class DeviceRevoked(DeviceError):
    code = "device_revoked"
    message = "the device has been removed"


class BadDeviceKey(DeviceError):
    code = "bad_device_key"
    message = "the device public key is not a valid P-256 key"

# Fingerprint and binding classes are appended below.


# -- fingerprint attributes, signals and configuration ---------------------

class _FieldError(DeviceError):
    """A failure about one named field or configuration key (``field``)."""

    def __init__(self, field: str, problem: str | None = None) -> None:
        super().__init__(f"{field}: {problem or self.message}")
        self.field = field


class AttributeMissing(_FieldError):
    code = "device_attribute_missing"
    message = "a required device attribute is missing"


class AttributeInvalid(_FieldError):
    code = "device_attribute_invalid"
    message = "a device attribute has the wrong type or format"


class AttributeUnknown(_FieldError):
    code = "device_attribute_unknown"
    message = "the client reported a device attribute that does not exist"


class SignalsInvalid(_FieldError):
    code = "device_signals_invalid"
    message = "the device risk signals are malformed"


class DeviceConfigInvalid(_FieldError):
    code = "device_config_invalid"
    message = "invalid device configuration"


# -- binding ---------------------------------------------------------------

class TooManyDevices(DeviceError):
    code = "device_limit_reached"
    message = "the maximum number of bound devices is reached; unbind one first"


class BindingInProgress(DeviceError):
    code = "device_binding_in_progress"
    message = "another device change for this user is in progress; retry shortly"


class DeviceStateUnavailable(DeviceError):
    code = "device_state_unavailable"
    message = "device state is unavailable"


# -- SIM swap and location ---------------------------------------------------

class SimSwapReportInvalid(_FieldError):
    code = "sim_swap_report_invalid"
    message = "the SIM swap report is malformed"


class IpAddressInvalid(DeviceError):
    code = "ip_address_invalid"
    message = "not an IPv4 or IPv6 address"


class IpRegionTableInvalid(_FieldError):
    code = "ip_region_table_invalid"
    message = "the IP region table has a bad row"


class IpOutsidePinnedRange(DeviceError):
    code = "session_ip_outside_pinned_range"
    message = "the request comes from outside the network this session is pinned to"

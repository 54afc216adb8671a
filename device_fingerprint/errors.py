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

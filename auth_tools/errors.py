"""Failures of the authentication tools.

Every class carries a stable ``code`` that the gateway turns into the JSON
``error`` field. Messages never say which element of a credential was wrong.

    AuthToolError
     +-- VerificationFailed      wrong code, signature or assertion
     +-- ChallengeExpired        the ceremony state is too old
     +-- Replayed                a code, timecode or signature already used
     +-- ToolLocked              too many consecutive failures
     +-- NotEnrolled             the user has no such credential
     +-- CredentialRevoked       removed, revoked or invalidated credential
     +-- Throttled               asked again too soon (resend)
     +-- BadToolInput            malformed input from the client
"""

from __future__ import annotations


class AuthToolError(Exception):
    code = "auth_tool_error"
    message = "authentication failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class VerificationFailed(AuthToolError):
    code = "verification_failed"
    message = "the authentication did not verify"


class ChallengeExpired(AuthToolError):
    code = "challenge_expired"
    message = "the challenge has expired"


class Replayed(AuthToolError):
    code = "replayed"
    message = "this code or signature has already been used"


class ToolLocked(AuthToolError):
    code = "tool_locked"
    message = "too many failed attempts; this tool is locked for a while"


class NotEnrolled(AuthToolError):
    code = "not_enrolled"
    message = "no such credential is enrolled"


class CredentialRevoked(AuthToolError):
    code = "credential_revoked"
    message = "the credential has been revoked or invalidated"


class Throttled(AuthToolError):
    code = "throttled"
    message = "too many requests; try again later"


class BadToolInput(AuthToolError):
    code = "bad_tool_input"
    message = "the request is malformed"

# Tool-specific classes are appended below (one class per failure).


# --- certificate (auth_tools/certificate*.py) -------------------------------


class CsrInvalid(BadToolInput):
    code = "csr_invalid"
    message = "the certificate request is malformed or its signature does not verify"


class CsrKeyUnsupported(BadToolInput):
    code = "csr_key_unsupported"
    message = "the certificate request key must be ECDSA P-256 or RSA of at least 2048 bits"


class CertificateMalformed(BadToolInput):
    code = "certificate_malformed"
    message = "the certificate could not be read"


class CertificateUntrusted(VerificationFailed):
    code = "certificate_untrusted"
    message = "the certificate was not issued by this gateway's CA"


class CertificateExpired(VerificationFailed):
    code = "certificate_expired"
    message = "the certificate has expired"


class CertificateNotYetValid(VerificationFailed):
    code = "certificate_not_yet_valid"
    message = "the certificate is not valid yet"


class CertificateKeyUsage(VerificationFailed):
    code = "certificate_key_usage"
    message = "the certificate may not be used for signing or client authentication"


class CertificatePolicyMissing(VerificationFailed):
    code = "certificate_policy_missing"
    message = "the certificate carries no riskgate certificate policy"


class CertificateWrongUser(VerificationFailed):
    code = "certificate_wrong_user"
    message = "the certificate belongs to another user"


class CertificateRevoked(CredentialRevoked):
    code = "certificate_revoked"
    message = "the certificate has been revoked"


class TransactionSignatureInvalid(VerificationFailed):
    code = "transaction_signature_invalid"
    message = "the transaction signature does not verify"


class CaKeyUnavailable(AuthToolError):
    code = "ca_key_unavailable"
    message = "the CA private key is needed to issue or sign and was not supplied"


class CrlInvalid(AuthToolError):
    code = "crl_invalid"
    message = "the revocation list is malformed or not signed by this CA"


# --- totp (auth_tools/totp.py) ----------------------------------------------


class TotpConfigInvalid(AuthToolError):
    code = "totp_config_invalid"
    message = "TOTP parameters must be 6 or 8 digits, a 30 or 60 second step, SHA1 or SHA256"


class TotpCodeInvalid(VerificationFailed):
    code = "totp_code_invalid"
    message = "the code is not valid"


class TotpCodeReused(Replayed):
    code = "totp_code_reused"
    message = "this code has already been used; wait for the next one"


class TotpStateMismatch(VerificationFailed):
    code = "totp_state_mismatch"
    message = "the code was requested for another challenge or transaction"


# --- biometric (auth_tools/biometric.py) ------------------------------------


class BiometricKeyUnsupported(BadToolInput):
    code = "biometric_key_unsupported"
    message = "the device key must be an ECDSA P-256 public key (JWK or SPKI PEM)"


class BiometricSignatureInvalid(VerificationFailed):
    code = "biometric_signature_invalid"
    message = "the device signature does not verify"


class BiometricStateMismatch(VerificationFailed):
    code = "biometric_state_mismatch"
    message = "the signature was requested for another challenge, transaction or key"


class BiometricSetChanged(CredentialRevoked):
    code = "biometric_set_changed"
    message = "the fingerprints or faces enrolled on the device changed; enrol the biometric key again"


# --- fido (auth_tools/fido.py, auth_tools/fido_metadata.py) ------------------


class FidoConfigInvalid(AuthToolError):
    code = "fido_config_invalid"
    message = "the WebAuthn relying party configuration is invalid"


class FidoResponseMalformed(BadToolInput):
    code = "fido_response_malformed"
    message = "the WebAuthn response could not be read"


class FidoAttestationInvalid(VerificationFailed):
    code = "fido_attestation_invalid"
    message = "the authenticator's registration did not verify"


class FidoAssertionInvalid(VerificationFailed):
    code = "fido_assertion_invalid"
    message = "the authenticator's assertion did not verify"


class FidoChallengeMismatch(VerificationFailed):
    code = "fido_challenge_mismatch"
    message = "the assertion was made for another challenge or transaction"


class FidoCredentialUnknown(NotEnrolled):
    code = "fido_credential_unknown"
    message = "the authenticator used is not registered for this challenge"


class FidoCredentialAlreadyRegistered(BadToolInput):
    code = "fido_credential_already_registered"
    message = "this authenticator is already registered"


class FidoUserVerificationMissing(VerificationFailed):
    code = "fido_user_verification_missing"
    message = "the authenticator did not verify the user (PIN or biometric required)"


class FidoBackupEligibilityChanged(VerificationFailed):
    code = "fido_backup_eligibility_changed"
    message = "the authenticator reports a different backup eligibility than at registration"


class FidoCredentialFlagged(CredentialRevoked):
    code = "fido_credential_flagged"
    message = "this authenticator has been flagged as possibly cloned; register it again"


class FidoSignCountRegression(CredentialRevoked):
    """The signature counter went backwards: a cloned authenticator or a replay.

    ``credential`` is the credential marked flagged; the caller persists it.
    """

    code = "fido_sign_count_regression"
    message = "the authenticator's signature counter went backwards; it may be cloned"

    def __init__(self, credential: object, message: str | None = None) -> None:
        super().__init__(message)
        self.credential = credential


class FidoAuthenticatorCompromised(CredentialRevoked):
    code = "fido_authenticator_compromised"
    message = "the FIDO Metadata Service reports this authenticator model as compromised"


class FidoMetadataInvalid(AuthToolError):
    code = "fido_metadata_invalid"
    message = "the FIDO metadata BLOB did not verify under the configured root"


class FidoMetadataStale(AuthToolError):
    code = "fido_metadata_stale"
    message = "the FIDO metadata BLOB is past its next update; load a newer one"


# --- password, sms, lockout, tier policy (auth_tools/password.py, sms*.py,
# lockout.py, tier_policy.py) --------------------------------------------------


class PasswordInvalid(VerificationFailed):
    code = "password_invalid"
    message = "the authentication did not verify"


class PasswordStateMismatch(VerificationFailed):
    code = "password_state_mismatch"
    message = "the password was requested for another challenge or transaction"


class SmsCodeInvalid(VerificationFailed):
    # Also raised for a code sent for another challenge, amount or payee: the
    # answer never says which part did not match.
    code = "sms_code_invalid"
    message = "the code is not valid"


class SmsCodeExpired(ChallengeExpired):
    code = "sms_code_expired"
    message = "the code has expired; ask for a new one"


class SmsCodeReused(Replayed):
    code = "sms_code_reused"
    message = "this code has already been used"


class SmsResendTooSoon(Throttled):
    code = "sms_resend_too_soon"
    message = "a code was sent moments ago; wait before asking for another"

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SmsResendLimit(Throttled):
    code = "sms_resend_limit"
    message = "too many codes were sent for this approval; start again"


class SmsDeliveryFailed(AuthToolError):
    code = "sms_delivery_failed"
    message = "the text message could not be sent"

    def __init__(self, message: str | None = None, *, status: int | None = None,
                 attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class ToolLockedUntil(ToolLocked):
    """``tool_locked`` with the time the lock ends (for a ``Retry-After`` header)."""

    def __init__(self, locked_until: float, message: str | None = None) -> None:
        super().__init__(message)
        self.locked_until = locked_until


class LockoutPolicyInvalid(AuthToolError):
    code = "lockout_policy_invalid"
    message = "the lockout policy is invalid"


class TierPolicyInvalid(AuthToolError):
    code = "tier_policy_invalid"
    message = "the tier policy configuration is invalid"


class SmsConfigInvalid(AuthToolError):
    code = "sms_config_invalid"
    message = "the SMS settings are invalid"

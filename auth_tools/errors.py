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

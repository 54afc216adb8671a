"""Free-text fields people give with a change (a reason, a name): required, trimmed, bounded."""

from __future__ import annotations

from gateway.errors import BadRequest

__all__ = ["MAX_REASON", "required_text"]

MAX_REASON = 1000


def required_text(value: object, field: str, *, what: str, limit: int = MAX_REASON) -> str:
    """``value`` trimmed; 400 ``<field>_required`` when it is not text, blank or too long."""
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > limit:
        raise BadRequest(f"{field}_required", f"{field} ({what}, up to {limit} characters) is required")
    return text

"""Redis key names.

Every key of one user carries the hash tag ``{u:<user_id>}``, so one Lua
script can touch all of them on Redis Cluster. Pending reservations are
indexed per cluster slot in a sorted set whose own hash tag is chosen to fall
in that same slot: the reserve script adds to it atomically, and the reaper
walks the 16384 slot indexes instead of scanning the keyspace.
"""

from __future__ import annotations

import functools
from binascii import crc_hqx

from limits.errors import LimitsBadInput

__all__ = ["SLOTS", "UserKeys", "pending_key", "slot_of"]

SLOTS = 16384
_MAX_ID = 200


def slot_of(tag: str) -> int:
    """Redis Cluster slot of a hash tag (CRC16/XMODEM mod 16384)."""
    return crc_hqx(tag.encode(), 0) % SLOTS


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    # A short tag for every slot, found once by trying "lp0", "lp1", ...
    tags: list[str | None] = [None] * SLOTS
    missing, n = SLOTS, 0
    while missing:
        tag = f"lp{n}"
        slot = slot_of(tag)
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def pending_key(slot: int) -> str:
    """The sorted set of pending reservations (score = expiry) living in ``slot``."""
    return f"{{{_slot_tags()[slot]}}}:lim:pending"


def _check(name: str, value: object, *, tag: bool = False) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        raise LimitsBadInput(f"{name} must be a non-empty string of at most {_MAX_ID} characters")
    # A brace inside the user id would end the hash tag early.
    if tag and ("{" in value or "}" in value):
        raise LimitsBadInput(f"{name} must not contain braces")
    return value


class UserKeys:
    """The keys of one user's limit state."""

    __slots__ = ("user_id", "tag", "slot")

    def __init__(self, user_id: str) -> None:
        self.user_id = _check("user id", user_id, tag=True)
        self.tag = f"u:{user_id}"
        self.slot = slot_of(self.tag)

    def record(self, idempotency_key: str) -> str:
        return f"{{{self.tag}}}:lim:r:{_check('idempotency key', idempotency_key)}"

    def day(self, day: str) -> str:
        return f"{{{self.tag}}}:lim:d:{day}"

    def year(self, year: str) -> str:
        return f"{{{self.tag}}}:lim:y:{year}"

    def day_to_others(self, day: str) -> str:
        return f"{{{self.tag}}}:lim:o:{day}"

    def settings(self) -> str:
        return f"{{{self.tag}}}:lim:settings"

    def pending(self) -> str:
        return pending_key(self.slot)

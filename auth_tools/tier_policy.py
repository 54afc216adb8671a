"""Which tool combinations satisfy which authentication tier, and their ``amr`` names.

The table is configuration (a TOML table) with the DESIGN.md defaults::

    [tiers]
    T1 = ["pwd", "biometric"]
    T2 = ["pwd+sms", "biometric+bound_device", "mtls_cert+pwd"]
    T3 = ["sms_armor", "totp", "fido_uv"]
    T4 = ["cloud_cert+pin", "cloud_cert+biometric", "device_tee_key+biometric", "fido_uv_not_synced"]
    T5 = ["hardware_cert+pin"]

Each row is a set of *elements*, all needed. A completed tool contributes its
own name plus what its result proves:

* ``pin`` when its ``amr`` holds ``pin`` (a certificate key unlocked by PIN);
  ``biometric`` when it holds ``fpt`` or ``face`` (but not for the ``face``
  tool: a provider's server-side face match is not the device biometric, and
  counts only where a row names ``face``);
* ``sms_armor`` also counts as ``sms``;
* ``fido`` with user verification (``user`` in ``amr``) counts as
  ``fido_uv``, and as ``fido_uv_not_synced`` too when the key is device-bound
  (``hwk``, i.e. backup-eligible flag BE=0).

``bound_device`` comes from the session, not from a ceremony: the caller
passes it in ``present``. A result's ``max_tier`` caps the tiers it helps
reach (a synced passkey stops at T3). Tiers are cumulative: the reached tier
is the highest one any row of which is satisfied.

``device_tee_key`` is for a device key whose hardware residency is proven by
key attestation; no tool in this package proves that yet, so by default a
``biometric`` device key counts for T1 and T2 only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from auth_tools.errors import TierPolicyInvalid

__all__ = [
    "Tool",
    "MAX_TIER",
    "DEFAULT_TIERS",
    "DEFAULT_AMR",
    "TierPolicy",
    "amr_for",
    "amr_claim",
    "elements_of",
]

MAX_TIER = 5


class Tool(enum.StrEnum):
    """Names used in tier rows: step-up tools and the elements they prove."""

    PWD = "pwd"
    SMS = "sms"
    SMS_ARMOR = "sms_armor"
    TOTP = "totp"
    BIOMETRIC = "biometric"
    BOUND_DEVICE = "bound_device"
    PIN = "pin"
    FIDO = "fido"
    FIDO_UV = "fido_uv"
    FIDO_UV_NOT_SYNCED = "fido_uv_not_synced"
    CLOUD_CERT = "cloud_cert"
    DEVICE_TEE_KEY = "device_tee_key"
    HARDWARE_CERT = "hardware_cert"
    MTLS_CERT = "mtls_cert"  # a verified TLS client certificate: possession, no transaction signed
    FACE = "face"  # a face-match provider's signed verdict: inherence only


DEFAULT_TIERS: dict[str, list[str]] = {
    "T1": ["pwd", "biometric"],
    "T2": ["pwd+sms", "biometric+bound_device", "mtls_cert+pwd"],
    "T3": ["sms_armor", "totp", "fido_uv"],
    "T4": ["cloud_cert+pin", "cloud_cert+biometric", "device_tee_key+biometric", "fido_uv_not_synced"],
    "T5": ["hardware_cert+pin"],
}

# RFC 8176 method names a tool stands for when its result does not say more
# (a FIDO or biometric result reports its own: hwk/swk, fpt/face, user).
DEFAULT_AMR: dict[Tool, tuple[str, ...]] = {
    Tool.PWD: ("pwd",),
    Tool.SMS: ("sms",),
    Tool.SMS_ARMOR: ("sms",),
    Tool.TOTP: ("otp",),
    Tool.BIOMETRIC: ("hwk", "user"),
    Tool.BOUND_DEVICE: ("swk",),
    Tool.PIN: ("pin",),
    Tool.FIDO: ("hwk",),
    Tool.FIDO_UV: ("swk", "user"),
    Tool.FIDO_UV_NOT_SYNCED: ("hwk", "user"),
    Tool.CLOUD_CERT: ("swk", "pin"),
    Tool.DEVICE_TEE_KEY: ("hwk",),
    Tool.HARDWARE_CERT: ("hwk", "pin"),
    Tool.MTLS_CERT: ("swk",),
    Tool.FACE: ("face",),
}

# RFC 8176 methods by authentication factor, for the "mfa" value.
_KNOWLEDGE = frozenset({"pwd", "pin", "kba"})
_POSSESSION = frozenset({"sms", "tel", "otp", "hwk", "swk", "sc"})
_INHERENCE = frozenset({"fpt", "face", "iris", "retina", "vbm"})


def amr_for(tool: str) -> tuple[str, ...]:
    """The default RFC 8176 ``amr`` values of a tool (empty for an unknown name)."""
    try:
        return DEFAULT_AMR[Tool(tool)]
    except ValueError:
        return ()


def amr_claim(values: Iterable[str]) -> tuple[str, ...]:
    """The ``amr`` claim for a set of methods: sorted, unique, plus ``mfa``
    when they span at least two factors (knowledge, possession, inherence)."""
    methods = {v for v in values if v != "mfa"}
    factors = sum(bool(methods & group) for group in (_KNOWLEDGE, _POSSESSION, _INHERENCE))
    return tuple(sorted(methods | ({"mfa"} if factors >= 2 else set())))


def elements_of(tool: str, amr: Iterable[str]) -> frozenset[str]:
    """The elements a completed ``tool`` with these ``amr`` values proves (see module doc)."""
    methods = set(amr)
    out = {tool}
    if "pin" in methods:
        out.add(Tool.PIN.value)
    if methods & {"fpt", "face"} and tool != Tool.FACE:
        out.add(Tool.BIOMETRIC.value)
    if tool == Tool.SMS_ARMOR:
        out.add(Tool.SMS.value)
    if tool in (Tool.FIDO, Tool.FIDO_UV, Tool.FIDO_UV_NOT_SYNCED) and "user" in methods:
        out.add(Tool.FIDO_UV.value)
        if "hwk" in methods:
            out.add(Tool.FIDO_UV_NOT_SYNCED.value)
    return frozenset(out)


def _factors(completed: object) -> list[tuple[frozenset[str], int]]:
    """(elements, max_tier) per completed factor, whatever shape ``completed`` has."""
    out: list[tuple[frozenset[str], int]] = []
    if isinstance(completed, Mapping):
        # The gateway's challenge.completed: {tool: {"amr": [...], "max_tier": n, ...}}
        for name, done in completed.items():
            done = done if isinstance(done, Mapping) else {}
            tool = str(done.get("tool", name))
            amr = done.get("amr")
            amr = amr_for(tool) if amr is None else tuple(amr)  # type: ignore[arg-type]
            out.append((elements_of(tool, amr), int(done.get("max_tier", MAX_TIER))))  # type: ignore[call-overload]
        return out
    for item in completed:  # type: ignore[attr-defined]
        if isinstance(item, str):
            out.append((elements_of(item, amr_for(item)), MAX_TIER))
        else:
            tool = str(item.tool)
            amr = getattr(item, "amr", None)
            amr = amr_for(tool) if amr is None else tuple(amr)
            out.append((elements_of(tool, amr), int(getattr(item, "max_tier", MAX_TIER))))
    return out


def _parse_row(where: str, row: object) -> tuple[str, ...]:
    if isinstance(row, str):
        names = [part.strip() for part in row.split("+")]
    elif isinstance(row, list | tuple):
        names = list(row)
    else:
        raise TierPolicyInvalid(f"{where}: a row is a string like \"pwd+sms\" or a list of tool names")
    if not names:
        raise TierPolicyInvalid(f"{where}: a row needs at least one tool")
    known = ", ".join(t.value for t in Tool)
    for name in names:
        if not isinstance(name, str) or name not in Tool._value2member_map_:
            raise TierPolicyInvalid(f"{where}: unknown tool {name!r} (known: {known})")
    return tuple(dict.fromkeys(names))


def _parse_tier(key: object) -> int:
    text = str(key)
    digits = text[1:] if text[:1] in ("T", "t") else text
    if not digits.isascii() or not digits.isdigit() or not 1 <= int(digits) <= MAX_TIER:  # not "²"
        raise TierPolicyInvalid(f"tiers.{key}: tiers are T1 to T{MAX_TIER}")
    return int(digits)


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """The validated tier table: ``rows[t - 1]`` are the combinations for tier ``t``."""

    rows: tuple[tuple[tuple[str, ...], ...], ...]

    @classmethod
    def default(cls) -> TierPolicy:
        return cls.from_dict({})

    @classmethod
    def from_dict(cls, doc: Mapping[str, object], *, section: str = "tiers") -> TierPolicy:
        """Build from a TOML table; tiers it leaves out keep their defaults.

        Errors name the bad key, e.g. ``tiers.T3[1]: unknown tool 'totpp'``.
        """
        if not isinstance(doc, Mapping):
            raise TierPolicyInvalid(f"{section}: must be a table of T1..T{MAX_TIER}")
        table: dict[int, object] = {_parse_tier(k): v for k, v in DEFAULT_TIERS.items()}
        for key, value in doc.items():
            table[_parse_tier(key)] = value
        rows: list[tuple[tuple[str, ...], ...]] = []
        for tier in range(1, MAX_TIER + 1):
            value = table[tier]
            where = f"{section}.T{tier}"
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise TierPolicyInvalid(f"{where}: must be a list of rows such as [\"pwd+sms\", \"totp\"]")
            parsed = tuple(_parse_row(f"{where}[{i}]", row) for i, row in enumerate(value))
            unique = {frozenset(row): row for row in reversed(parsed)}  # first spelling wins
            rows.append(tuple(row for row in parsed if unique[frozenset(row)] is row))
        return cls(tuple(rows))

    def as_dict(self) -> dict[str, list[str]]:
        """The table in the ``from_dict`` shape (rows as ``"a+b"``)."""
        return {f"T{t}": ["+".join(row) for row in self.rows[t - 1]]
                for t in range(1, MAX_TIER + 1)}

    def acceptable_combinations(self, tier: int, *, exact: bool = False) -> list[list[str]]:
        """The rows that reach ``tier``: its own, then (unless ``exact``) those of higher tiers.

        Tier 0 needs nothing: ``[[]]``.
        """
        if not 0 <= tier <= MAX_TIER:
            raise TierPolicyInvalid(f"tier {tier} is not between 0 and {MAX_TIER}")
        if tier == 0:
            return [[]]
        last = tier if exact else MAX_TIER
        seen: dict[frozenset[str], list[str]] = {}
        for t in range(tier, last + 1):
            for row in self.rows[t - 1]:
                seen.setdefault(frozenset(row), list(row))
        return list(seen.values())

    # The name the gateway's challenge API calls.
    combinations = acceptable_combinations

    def satisfied_tier(self, completed: object, *, present: Iterable[str] = ()) -> int:
        """The highest tier the completed factors reach (0 when none).

        ``completed`` is the gateway's ``{tool: {"amr": [...], "max_tier": n}}``
        mapping, an iterable of results with ``tool``, ``amr`` and optionally
        ``max_tier`` attributes, or an iterable of tool names. ``present`` adds
        elements known from the session (``bound_device``).
        """
        factors = _factors(completed)
        context = frozenset(present)
        for tier in range(MAX_TIER, 0, -1):
            have = context.union(*(elements for elements, cap in factors if cap >= tier))
            if any(have.issuperset(row) for row in self.rows[tier - 1]):
                return tier
        return 0

    def amr(self, completed: object) -> tuple[str, ...]:
        """The ``amr`` claim for the completed factors (RFC 8176, with ``mfa``)."""
        values: list[str] = []
        if isinstance(completed, Mapping):
            for name, done in completed.items():
                got = done.get("amr") if isinstance(done, Mapping) else None
                values.extend(amr_for(str(name)) if got is None else got)  # type: ignore[arg-type]
        else:
            for item in completed:  # type: ignore[attr-defined]
                tool = item if isinstance(item, str) else str(item.tool)
                got = None if isinstance(item, str) else getattr(item, "amr", None)
                values.extend(amr_for(tool) if got is None else got)
        return amr_claim(values)

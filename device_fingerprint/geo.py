"""IP regions, IP change, impossible travel and session pinning, as pure functions.

The region table is a CSV (``cidr,region,lat,lon,radius_km``, ``#`` comments),
looked up by longest prefix. The project ships a small demo table in
``device_fingerprint/data/ip_regions.csv``; it is approximate and only meant
for the demo and tests. Load a real one with :meth:`IpRegionTable.from_path`.

Distances between two sightings subtract both rows' ``radius_km``, so a
country-level row (large radius) never produces "impossible travel".
"""

from __future__ import annotations

import csv
import io
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from device_fingerprint.errors import (
    DeviceConfigInvalid,
    IpAddressInvalid,
    IpOutsidePinnedRange,
    IpRegionTableInvalid,
)

__all__ = [
    "GeoConfig",
    "IpRegionTable",
    "Region",
    "Sighting",
    "Travel",
    "check_pinned",
    "distance_km",
    "ip_changed",
    "network_features",
    "parse_ip",
    "pin_network",
    "region_of",
    "travel_between",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
EARTH_RADIUS_KM = 6371.0
_REGION_RE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_HEADER = ["cidr", "region", "lat", "lon", "radius_km"]


@dataclass(frozen=True, slots=True)
class GeoConfig:
    """``[device.geo]``.

    ``max_speed_kmh``: faster than this between two requests is impossible
    travel (default: an airliner). ``min_distance_km``: shorter hops are
    geolocation noise. ``min_elapsed_seconds``: floor on the elapsed time so
    two requests in the same second do not divide by zero.
    ``pin_ipv4_prefix`` / ``pin_ipv6_prefix``: the network a pinned session
    must stay in.
    """

    max_speed_kmh: float = 900.0
    min_distance_km: float = 100.0
    min_elapsed_seconds: float = 60.0
    pin_ipv4_prefix: int = 24
    pin_ipv6_prefix: int = 48

    def __post_init__(self) -> None:
        p = "device.geo"
        if not self.max_speed_kmh > 0:
            raise DeviceConfigInvalid(f"{p}.max_speed_kmh", "must be more than zero")
        if not self.min_distance_km >= 0:
            raise DeviceConfigInvalid(f"{p}.min_distance_km", "must not be negative")
        if not self.min_elapsed_seconds > 0:
            raise DeviceConfigInvalid(f"{p}.min_elapsed_seconds", "must be more than zero")
        if not 8 <= self.pin_ipv4_prefix <= 32:
            raise DeviceConfigInvalid(f"{p}.pin_ipv4_prefix", "must be in [8, 32]")
        if not 16 <= self.pin_ipv6_prefix <= 128:
            raise DeviceConfigInvalid(f"{p}.pin_ipv6_prefix", "must be in [16, 128]")

    @classmethod
    def from_dict(cls, table: Mapping[str, object] | None) -> GeoConfig:
        p = "device.geo"
        table = table or {}
        if not isinstance(table, Mapping):
            raise DeviceConfigInvalid(p, "must be a table")
        values: dict[str, object] = {}
        for key, raw in table.items():
            k = f"{p}.{key}"
            if key in ("max_speed_kmh", "min_distance_km", "min_elapsed_seconds"):
                if isinstance(raw, bool) or not isinstance(raw, int | float):
                    raise DeviceConfigInvalid(k, "must be a number")
                values[key] = float(raw)
            elif key in ("pin_ipv4_prefix", "pin_ipv6_prefix"):
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise DeviceConfigInvalid(k, "must be a prefix length")
                values[key] = raw
            else:
                raise DeviceConfigInvalid(k, "unknown key (known: max_speed_kmh, min_distance_km, "
                                             "min_elapsed_seconds, pin_ipv4_prefix, pin_ipv6_prefix)")
        return replace(cls(), **values)


@dataclass(frozen=True, slots=True)
class Region:
    """One table row: region code, a representative point (or none) and its radius."""

    code: str
    network: str
    lat: float | None = None
    lon: float | None = None
    radius_km: float = 0.0

    @property
    def located(self) -> bool:
        return self.lat is not None and self.lon is not None


def parse_ip(value: str) -> IPAddress:
    """Parse an IPv4 or IPv6 address; IPv4-mapped IPv6 becomes the IPv4 address."""
    if not isinstance(value, str):
        raise IpAddressInvalid()
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError as exc:
        raise IpAddressInvalid(f"not an IPv4 or IPv6 address: {value[:64]!r}") from exc
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class IpRegionTable:
    """Longest-prefix lookup from IP address to :class:`Region`."""

    def __init__(self, rows: Iterable[tuple[IPNetwork, Region]]) -> None:
        # (version, prefix length) -> {network int: region}; probed longest prefix first.
        self._by_prefix: dict[tuple[int, int], dict[int, Region]] = {}
        count = 0
        for network, region in rows:
            bucket = self._by_prefix.setdefault((network.version, network.prefixlen), {})
            bucket[int(network.network_address)] = region
            count += 1
        self._len = count
        self._order = sorted(self._by_prefix, key=lambda vp: -vp[1])

    def __len__(self) -> int:
        return self._len

    @classmethod
    def from_csv(cls, text: str, source: str = "ip_regions.csv") -> IpRegionTable:
        """Parse the CSV format; raises :class:`IpRegionTableInvalid` naming ``source:line``."""
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
                 if line.strip() and not line.lstrip().startswith("#")]
        if not lines or [c.strip() for c in lines[0][1].split(",")] != _HEADER:
            raise IpRegionTableInvalid(f"{source}:1", f"the header must be {','.join(_HEADER)}")
        rows: list[tuple[IPNetwork, Region]] = []
        seen: set[IPNetwork] = set()
        for lineno, line in lines[1:]:
            where = f"{source}:{lineno}"
            fields = next(csv.reader(io.StringIO(line)))
            if len(fields) != len(_HEADER):
                raise IpRegionTableInvalid(where, f"needs {len(_HEADER)} columns")
            cidr, code, lat, lon, radius = (f.strip() for f in fields)
            try:
                network = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise IpRegionTableInvalid(where, f"bad CIDR {cidr!r} ({exc})") from exc
            if network in seen:
                raise IpRegionTableInvalid(where, f"{cidr} is listed twice")
            seen.add(network)
            if not _REGION_RE.match(code):
                raise IpRegionTableInvalid(where, f"bad region code {code!r}")
            rows.append((network, Region(code, str(network), *_point(where, lat, lon, radius))))
        return cls(rows)

    @classmethod
    def from_path(cls, path: str | Path) -> IpRegionTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IpRegionTableInvalid(str(path), f"cannot read ({exc})") from exc
        return cls.from_csv(text, source=path.name)

    @classmethod
    def bundled(cls) -> IpRegionTable:
        """The small demo table shipped in the package."""
        ref = resources.files("device_fingerprint") / "data" / "ip_regions.csv"
        return cls.from_csv(ref.read_text(encoding="utf-8"), source="ip_regions.csv")

    def region_of(self, ip: str | IPAddress) -> Region | None:
        addr = parse_ip(ip) if isinstance(ip, str) else ip
        value = int(addr)
        bits = addr.max_prefixlen
        for version, prefix in self._order:
            if version != addr.version:
                continue
            key = (value >> (bits - prefix)) << (bits - prefix) if prefix else 0
            region = self._by_prefix[(version, prefix)].get(key)
            if region is not None:
                return region
        return None


def _point(where: str, lat: str, lon: str, radius: str) -> tuple[float | None, float | None, float]:
    if not lat and not lon:
        return None, None, 0.0
    try:
        la, lo, r = float(lat), float(lon), float(radius or 0)
    except ValueError as exc:
        raise IpRegionTableInvalid(where, "lat, lon and radius_km must be numbers") from exc
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise IpRegionTableInvalid(where, "lat must be in [-90, 90] and lon in [-180, 180]")
    if not 0 <= r <= 20_000:
        raise IpRegionTableInvalid(where, "radius_km must be in [0, 20000]")
    return la, lo, r


def region_of(ip: str, table: IpRegionTable) -> Region | None:
    """The table row covering ``ip``, or None when no row does."""
    return table.region_of(ip)


def ip_changed(previous: str | None, current: str) -> bool:
    """True when both are known and differ (``::ffff:a.b.c.d`` equals ``a.b.c.d``)."""
    if not previous:
        return False
    return parse_ip(previous) != parse_ip(current)


def distance_km(a: Region, b: Region) -> float:
    """Great-circle distance less both rows' uncertainty; 0 when either has no location."""
    if not (a.located and b.located):
        return 0.0
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))  # type: ignore[arg-type]
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    great_circle = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
    return max(0.0, great_circle - a.radius_km - b.radius_km)


@dataclass(frozen=True, slots=True)
class Sighting:
    """Where and when a request was seen."""

    ip: str
    at: float


@dataclass(frozen=True, slots=True)
class Travel:
    distance_km: float
    elapsed_seconds: float
    speed_kmh: float
    impossible: bool
    from_region: str | None
    to_region: str | None


def travel_between(previous: Sighting, current: Sighting, table: IpRegionTable,
                   config: GeoConfig) -> Travel:
    """Distance and speed between two consecutive requests of one user."""
    a, b = table.region_of(previous.ip), table.region_of(current.ip)
    elapsed = abs(current.at - previous.at)
    distance = distance_km(a, b) if a is not None and b is not None else 0.0
    speed = distance / (max(elapsed, config.min_elapsed_seconds) / 3600.0)
    impossible = distance >= config.min_distance_km and speed > config.max_speed_kmh
    return Travel(round(distance, 3), elapsed, round(speed, 3), impossible,
                  a.code if a else None, b.code if b else None)


def network_features(previous: Sighting | None, current: Sighting, table: IpRegionTable,
                     config: GeoConfig) -> dict[str, float | bool]:
    """The risk engine's network features, named as in its feature schema."""
    if previous is None:
        parse_ip(current.ip)
        return {"ip_changed": False, "geo_distance_km": 0.0, "travel_speed_kmh": 0.0,
                "impossible_travel": False}
    travel = travel_between(previous, current, table, config)
    return {
        "ip_changed": ip_changed(previous.ip, current.ip),
        "geo_distance_km": travel.distance_km,
        "travel_speed_kmh": travel.speed_kmh,
        "impossible_travel": travel.impossible,
    }


def pin_network(ip: str, config: GeoConfig) -> str:
    """The network (``/24`` or ``/48`` by default) a session started from ``ip`` is pinned to."""
    addr = parse_ip(ip)
    prefix = config.pin_ipv4_prefix if addr.version == 4 else config.pin_ipv6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def check_pinned(pinned: str, ip: str) -> None:
    """Raise :class:`IpOutsidePinnedRange` unless ``ip`` lies in the pinned network."""
    try:
        network = ipaddress.ip_network(pinned, strict=True)
    except ValueError as exc:
        raise IpOutsidePinnedRange(f"the stored pin {pinned[:64]!r} is not a network") from exc
    addr = parse_ip(ip)
    if addr.version != network.version or addr not in network:
        raise IpOutsidePinnedRange()

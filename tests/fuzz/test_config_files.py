"""Files named by the configuration: the tier table and the IP region table parse or are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from device_fingerprint.errors import IpRegionTableInvalid
from device_fingerprint.geo import IpRegionTable
from gateway.config import ConfigError, StepUpConfig
from gateway.stepup_setup import load_tier_policy
from tests.fuzz.fuzzing import FUZZ

tier_keys = st.sampled_from(["T1", "T3", "t5", "T0", "T9", "T\u00b2", "3", "x", '"T\u0663"'])
tier_values = st.sampled_from(['["pwd+sms", "totp"]', '["fido"]', '"pwd"', "[]", "[[]]", '[["pwd", 1]]',
                               "[{a = 1}]", '["pwd+nope"]', "1", '[["fido", "totp"]]'])
region_rows = st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(["10.0.0.0/8", "10.0.0.1/8", "::/0", "2001:db8::/32", "x", "10.0.0.0/33"]),
              st.sampled_from(["CN-31", "cn", "", "CN-31-X"]),
              st.sampled_from(["31.2", "", "nan", "inf", "91", "x"]),
              st.sampled_from(["121.5", "", "-181", "1e400"]),
              st.sampled_from(["50", "", "-1", "20001", "nan"])).map(",".join),
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config-files")


@FUZZ
@given(data=st.one_of(st.binary(max_size=120), st.lists(st.tuples(tier_keys, tier_values), max_size=4).map(
    lambda rows: ("[tiers]\n" + "\n".join(dict.fromkeys(f"{k} = {v}" for k, v in rows)) + "\n").encode())))
@example(data=b'[tiers]\n"T\xc2\xb2" = ["pwd"]\n')
@example(data=b"\xff")
def test_any_tier_table_loads_or_names_its_key(files: Path, data: bytes) -> None:
    path = files / "tiers.toml"
    path.write_bytes(data)
    try:
        load_tier_policy(StepUpConfig(tiers_file=str(path)))
    except ConfigError as exc:
        assert exc.key == "stepup.tiers_file"


@FUZZ
@given(rows=st.lists(region_rows, max_size=4), header=st.booleans(), raw=st.none() | st.binary(max_size=80))
@example(rows=["10.0.0.0/8,CN-31,31.2,121.5,50\x00"], header=True, raw=None)
def test_any_ip_region_table_loads_or_names_its_line(files: Path, rows: list[str], header: bool,
                                                     raw: bytes | None) -> None:
    path = files / "ip_regions.csv"
    text = "\n".join((["cidr,region,lat,lon,radius_km"] if header else []) + rows)
    path.write_bytes(raw if raw is not None else text.encode("utf-8", "surrogatepass"))
    try:
        IpRegionTable.from_path(path)
    except IpRegionTableInvalid as exc:
        assert exc.field.startswith((str(path), "ip_regions.csv"))  # the file, or the file:line

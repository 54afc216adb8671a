"""Configuration: any TOML file or RISKGATE_* override loads or raises ConfigError naming a key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.config import _SECTIONS, ENV_PREFIX, Config, ConfigError, load_config
from tests.fuzz.fuzzing import FUZZ

KEYS = sorted((name, f.name) for name, cls in _SECTIONS.items() for f in dataclasses.fields(cls))
KNOWN = {f"{s}.{k}" for s, k in KEYS} | set(_SECTIONS) | {"routes", "--config"}

env_values = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["", " ", "0", "-1", "1e309", "nan", "inf", "-inf", "true", "off", "x", "9" * 5000,
                     "65536", "0x10", "1_000", "\u0661\u0662", "redis://", "http://h", "/nonexistent"]),
    st.integers(-(2**70), 2**70).map(str), st.floats().map(repr),
)
toml_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str), st.floats(allow_nan=True).map(
        lambda f: "nan" if f != f else ("inf" if f == float("inf") else "-inf" if f == -float("inf") else repr(f))),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters='"\\\x7f', min_codepoint=32),
            max_size=20).map(lambda t: f'"{t}"'),
    st.sampled_from(["[]", "[1, 2]", '["a"]', "{}", "{ a = 1 }", "1979-05-27", "07:32:00",
                     "1979-05-27T07:32:00Z"]),
)


def _known_key(exc: ConfigError, *, unknown_sections: tuple[str, ...] = ()) -> str:
    """The key the error names: a real key (or the unknown section the file wrote)."""
    base = exc.key.split("[", 1)[0]
    assert (exc.key in KNOWN or base == "routes" or exc.key.startswith("limits.")
            or exc.key in unknown_sections), exc.key
    return exc.key


@FUZZ
@given(key=st.sampled_from(KEYS), value=env_values)
@example(key=("server", "port"), value="9" * 5000)
@example(key=("limits", "add_payee_tier"), value="\u0661")
def test_any_environment_override_loads_or_names_its_key(tmp_path_factory, key, value: str) -> None:  # noqa: ANN001
    section, name = key
    env = {f"{ENV_PREFIX}{section.upper()}_{name.upper()}": value}
    try:
        config = load_config(None, env=env)
    except ConfigError as exc:
        assert _known_key(exc).startswith(section), (exc.key, key)
        return
    assert isinstance(config, Config)


@FUZZ
@given(lines=st.lists(st.tuples(st.sampled_from(KEYS), toml_scalars), max_size=4),
       extra=st.sampled_from(["", "server = 5\n", 'redis = "x"\n', "routes = 1\n", "[[routes]]\n",
                              '[[routes]]\nmethod = "POST"\npath = "/v1/{a}/{a}"\naction = "view_payees"\n',
                              '[[routes]]\nmethod = "GET"\npath = "/v1/x{2,1}"\naction = "view_payees"\n',
                              "[nope]\n", "[[server]]\n"]))
def test_any_toml_table_loads_or_names_its_key(tmp_path_factory, lines, extra: str) -> None:  # noqa: ANN001
    by_section: dict[str, list[str]] = {}
    for (section, name), value in lines:
        by_section.setdefault(section, []).append(f"{name} = {value}")
    text = extra + "".join(f"[{s}]\n" + "\n".join(dict.fromkeys(rows)) + "\n"
                           for s, rows in by_section.items())
    path = tmp_path_factory.mktemp("config") / "riskgate.toml"
    path.write_text(text)
    try:
        load_config(path, env={})
    except ConfigError as exc:
        _known_key(exc, unknown_sections=("nope",))


@FUZZ
@given(data=st.binary(max_size=200))
@example(data=b"\xff\xfe")
def test_any_config_file_bytes_load_or_are_refused(tmp_path_factory, data: bytes) -> None:  # noqa: ANN001
    path = tmp_path_factory.mktemp("config") / "riskgate.toml"
    path.write_bytes(data)
    try:
        load_config(path, env={})
    except ConfigError as exc:
        _known_key(exc)


@FUZZ
@given(body=st.one_of(st.binary(max_size=120), st.lists(st.tuples(
    st.sampled_from(["timezone", "t2_user_max", "device_cooloff_seconds", "tiers", "account_classes",
                     "tiers.T2", "account_classes.II", "bogus"]), toml_scalars), max_size=3).map(
    lambda kv: "[limits]\n" + "\n".join(dict.fromkeys(f"{k} = {v}" for k, v in kv)) + "\n")))
@example(body='[limits]\ntimezone = "Asia"\n')
def test_any_limits_file_loads_or_names_its_key(tmp_path_factory, body) -> None:  # noqa: ANN001
    path: Path = tmp_path_factory.mktemp("limits") / "limits.toml"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    try:
        load_config(None, env={f"{ENV_PREFIX}LIMITS_FILE": str(path)})
    except ConfigError as exc:
        assert _known_key(exc).startswith("limits")


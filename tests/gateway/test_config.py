"""Configuration: TOML + RISKGATE_* overrides, one immutable validated object."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "riskgate.example.toml"


def test_example_file_loads_and_equals_the_defaults():
    assert load_config(EXAMPLE, env={}) == load_config(None, env={})


def test_environment_overrides_the_file(tmp_path):
    cfg = tmp_path / "rg.toml"
    cfg.write_text('[server]\nport = 9000\n[redis]\nurl = "redis://10.0.0.1:6379/0"\n')
    config = load_config(cfg, env={"RISKGATE_SERVER_PORT": "9100", "RISKGATE_SESSION_IDLE_TIMEOUT": "120"})
    assert config.server.port == 9100
    assert config.session.idle_timeout == 120
    assert config.redis.url == "redis://10.0.0.1:6379/0"


def test_config_is_immutable():
    config = load_config(None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("toml,key", [
    ("[server]\nport = 70000\n", "server.port"),
    ("[server]\nport = \"eighty\"\n", "server.port"),
    ("[server]\nprot = 80\n", "server.prot"),
    ("[assertion]\nlifetime = 120\n", "assertion.lifetime"),
    ("[assertion]\nkek = \"short\"\n", "assertion.kek"),
    ("[redis]\nurl = \"http://x\"\n", "redis.url"),
    ("[device]\nmax_skew = 300\nnonce_ttl = 300\n", "device.nonce_ttl"),
    ("[stepup]\norigins = \"localhost:8080\"\n", "stepup.origins"),
    ("[stepup]\nsms_code_digits = 5\n", "stepup.sms_code_digits"),
    ("[stepup]\nsms_code_digits = 9\n", "stepup.sms_code_digits"),
    ("[stepup]\nsms_code_ttl = 45\n", "stepup.sms_code_ttl"),  # shorter than the 60 s between resends
    ("[stepup]\nsms_code_ttl = 3600\n", "stepup.sms_code_ttl"),
    ("[nonsense]\nx = 1\n", "nonsense"),
    ("[[routes]]\nmethod = \"GET\"\npath = \"/v1/x\"\naction = \"launch_rockets\"\n", "routes[0].action"),
    ("[[routes]]\nmethod = \"POST\"\npath = \"/v1/t\"\naction = \"transfer\"\n", "routes[0].amount_field"),
    ("[[routes]]\nmethod = \"GET\"\npath = \"/admin\"\naction = \"view_accounts\"\n", "routes[0].path"),
])
def test_bad_values_name_the_key(tmp_path, toml, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert err.value.key == key
    assert repr(key) in str(err.value)


def test_bad_environment_value_names_the_key():
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"RISKGATE_UPSTREAM_READ_TIMEOUT": "soon"})
    assert err.value.key == "upstream.read_timeout"


def test_cli_stops_with_a_message_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[login]\nmax_failures = 0\n")
    assert main(["keys", "rotate", "--config", str(cfg)]) == 2
    assert "'login.max_failures'" in capsys.readouterr().err

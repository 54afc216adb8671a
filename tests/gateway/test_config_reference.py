"""The configuration reference is generated from the config object and cannot drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.config import load_config
from gateway.config_reference import EXAMPLE_TOML, reference_keys, render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_key_is_in_the_annotated_example_with_a_comment():
    undocumented = [f"{d.section}.{d.key}" for d in reference_keys() if not d.description]
    assert undocumented == []


def test_the_example_is_a_valid_configuration_of_the_defaults():
    example = load_config(EXAMPLE_TOML, env={})
    defaults = load_config(None, env={})
    for doc in reference_keys():
        assert getattr(getattr(example, doc.section), doc.key) == \
            getattr(getattr(defaults, doc.section), doc.key), f"{doc.section}.{doc.key}"


def test_docs_configuration_md_is_the_generated_reference():
    assert DOC.read_text() == render_markdown(), (
        "docs/configuration.md is stale: run .venv/bin/python -m gateway.config_reference > docs/configuration.md")


def test_every_environment_variable_named_in_the_reference_is_honoured():
    for doc in reference_keys():
        value = doc.default
        if isinstance(value, bool):
            raw, expected = ("false", False) if value else ("true", True)
        elif isinstance(value, int):
            raw, expected = str(value + 1), value + 1
        elif isinstance(value, float):
            raw, expected = str(value), value
        else:
            continue  # strings are paths, URLs and keys that validation checks against the world
        try:
            config = load_config(None, env={doc.env: raw})
        except Exception as exc:  # a value one past the default may be out of range: then it names the key
            assert f"{doc.section}.{doc.key}" in str(exc), (doc.env, exc)
            continue
        assert getattr(getattr(config, doc.section), doc.key) == expected, doc.env


def test_the_reference_lists_each_section_of_the_config_object():
    text = render_markdown()
    from gateway.config import Config

    for section in dataclasses.fields(Config):
        if section.name != "routes":
            assert f"## [{section.name}]" in text

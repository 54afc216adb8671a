"""The configuration reference, generated from the config object.

Keys, types and defaults come from the dataclasses in :mod:`gateway.config`;
the description of each key is its comment in ``riskgate.example.toml``, so
the annotated example and the reference cannot drift apart (a test checks
that every key is in the example with a comment, and that
``docs/configuration.md`` is this module's output)::

    .venv/bin/python -m gateway.config_reference > docs/configuration.md
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config

__all__ = ["EXAMPLE_TOML", "KeyDoc", "example_comments", "reference_keys", "render_markdown"]

EXAMPLE_TOML = Path(__file__).resolve().parents[1] / "riskgate.example.toml"

_SECTION = re.compile(r"^\[([a-z_]+)\]\s*(?:#\s*(.*))?$")
_KEY = re.compile(r"^([a-z_]+)\s*=\s*(.*?)\s*(?:#\s*(.*))?$")
_CONTINUATION = re.compile(r"^\s+#\s*(.*)$")


@dataclass(frozen=True, slots=True)
class KeyDoc:
    section: str
    key: str
    type: str
    default: object
    description: str

    @property
    def env(self) -> str:
        return f"RISKGATE_{self.section.upper()}_{self.key.upper()}"


def example_comments(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Section and key comments of the annotated example TOML.

    A comment line indented under a key continues that key's comment. Keys
    inside ``[[routes]]`` tables are not configuration keys and are skipped.
    """
    sections: dict[str, str] = {}
    keys: dict[tuple[str, str], str] = {}
    section, last = "", None
    for line in text.splitlines():
        if line.startswith("[["):
            section, last = "", None
            continue
        if m := _SECTION.match(line):
            section, last = m.group(1), None
            sections[section] = (m.group(2) or "").strip()
            continue
        if section and (m := _KEY.match(line)):
            last = (section, m.group(1))
            keys[last] = (m.group(3) or "").strip()
            continue
        if last is not None and (m := _CONTINUATION.match(line)):
            keys[last] = f"{keys[last]} {m.group(1).strip()}".strip()
            continue
        last = None
    return sections, keys


def _type_name(annotation: object) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def reference_keys(example: str | None = None) -> list[KeyDoc]:
    """Every configuration key, in the order of the config object."""
    _, comments = example_comments(EXAMPLE_TOML.read_text() if example is None else example)
    out = []
    for section in dataclasses.fields(Config):
        if section.name == "routes":
            continue
        cls = section.default_factory  # type: ignore[misc]
        for f in dataclasses.fields(cls):
            out.append(KeyDoc(section.name, f.name, _type_name(f.type), f.default,
                              comments.get((section.name, f.name), "")))
    return out


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def render_markdown(example: str | None = None) -> str:
    text = EXAMPLE_TOML.read_text() if example is None else example
    section_notes, _ = example_comments(text)
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config object (`gateway/config.py`) and the comments of",
        "[riskgate.example.toml](../riskgate.example.toml) by",
        "`.venv/bin/python -m gateway.config_reference > docs/configuration.md`; do not edit by hand.",
        "",
        "Every key is optional. Values come from the TOML file given with `--config`,",
        "then from the environment variable shown (`RISKGATE_<SECTION>_<KEY>`), which wins.",
        "A bad value stops startup with a message naming the key. The `[[routes]]` table",
        "(the route policy) is documented in riskgate.example.toml and docs/client-protocol.md.",
    ]
    current = ""
    for doc in reference_keys(text):
        if doc.section != current:
            current = doc.section
            note = section_notes.get(current, "")
            lines += ["", f"## [{current}]", ""]
            if note:
                lines += [note[0].upper() + note[1:] + ".", ""]
            lines += ["| key | type | default | environment | meaning |", "|---|---|---|---|---|"]
        desc = doc.description.replace("|", "\\|")
        lines.append(f"| `{doc.key}` | {doc.type} | `{_toml_value(doc.default)}` | `{doc.env}` | {desc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())

"""The rule editor's text: a JSON list of rules, validated with problems placed in the text.

A JSON syntax error is placed where the parser stopped; a rule problem
(unknown feature, CEL syntax or type error) carries the rule id and the line
and column inside its expression, and is also placed at the matching spot in
the whole text (``text_line``/``text_column``), so the editor can point at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from risk_engine import RuleSet, RuleSetInvalid, compile_rule_set

__all__ = ["ParsedRules", "parse_rule_text", "rule_text"]

MAX_TEXT = 200_000


@dataclass(frozen=True, slots=True)
class ParsedRules:
    rule_set: RuleSet | None
    problems: tuple[dict[str, Any], ...]

    @property
    def ok(self) -> bool:
        return self.rule_set is not None and not self.problems


def rule_text(rules: list[dict[str, Any]]) -> str:
    """How a rule set appears in the editor."""
    return json.dumps(rules, indent=2, ensure_ascii=False)


def _line_col(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def _place(text: str, doc: list[Any], rule_id: str, line: int, column: int) -> tuple[int, int]:
    """Where in ``text`` a (line, column) of rule ``rule_id``'s expression falls; (0, 0) if unknown."""
    rule = next((r for r in doc if isinstance(r, dict) and r.get("id") == rule_id), None)
    expression = rule.get("expression") if rule else None
    if not isinstance(expression, str):
        return 0, 0
    id_at = text.find(json.dumps(rule_id, ensure_ascii=False))
    at = text.find(json.dumps(expression, ensure_ascii=False), max(id_at, 0))
    if at < 0:
        return 0, 0
    if line < 1:
        return _line_col(text, at + 1)
    lines = expression.split("\n")
    prefix = "\n".join(lines[:line - 1] + [lines[min(line, len(lines)) - 1][:max(column - 1, 0)]])
    encoded = json.dumps(prefix, ensure_ascii=False)[1:-1]
    return _line_col(text, at + 1 + len(encoded))


def parse_rule_text(text: str) -> ParsedRules:
    """Parse and validate the editor text (a JSON list of rules, or ``{"rules": [...]}``)."""
    if len(text) > MAX_TEXT:
        return ParsedRules(None, ({"rule": "", "kind": "size", "message": "the rule set is too long",
                                   "line": 0, "column": 0, "text_line": 0, "text_column": 0},))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        return ParsedRules(None, ({"rule": "", "kind": "json", "message": exc.msg, "line": exc.lineno,
                                   "column": exc.colno, "text_line": exc.lineno,
                                   "text_column": exc.colno},))
    rules = doc.get("rules") if isinstance(doc, dict) else doc
    if not isinstance(rules, list):
        return ParsedRules(None, ({"rule": "", "kind": "definition",
                                   "message": "the text must be a JSON list of rules",
                                   "line": 1, "column": 1, "text_line": 1, "text_column": 1},))
    try:
        rule_set = RuleSet.from_document({"rules": rules})
        compile_rule_set(rule_set)
    except RuleSetInvalid as exc:
        problems = []
        for p in exc.problems:
            text_line, text_column = _place(text, rules, p.rule_id, p.line, p.column)
            problems.append({"rule": p.rule_id, "kind": p.kind, "message": p.message,
                             "line": p.line, "column": p.column,
                             "text_line": text_line, "text_column": text_column})
        return ParsedRules(None, tuple(problems))
    return ParsedRules(rule_set, ())

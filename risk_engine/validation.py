"""Validate a rule set against the feature schema before it can be published.

The CEL package parses and evaluates but has no static type checker, so type
checking is done by probing: each rule runs against every combination of
typed sample values for the features it reads (all combinations up to 2^8,
a seeded sample beyond), which exercises both sides of every boolean branch
that depends on a feature. Syntax errors and unknown names come with a
line:column position; type errors carry CEL's message and the probe that
triggered them.
"""

from __future__ import annotations

import difflib
import itertools
import random
import re
from collections.abc import Mapping

import cel

from risk_engine.errors import RuleProblem, RuleSetInvalid
from risk_engine.rules import CompiledRuleSet, RuleSet
from risk_engine.schema import FEATURE_SCHEMA, FeatureType, probe_values

__all__ = ["compile_rule_set", "validate_rule_set"]

_SYNTAX_RE = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_COMPREHENSION_RE = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")
_STRING_RE = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")
_ALLOWED_FUNCTIONS = frozenset({
    "size", "contains", "startsWith", "endsWith", "matches", "has", "int", "uint", "double",
    "string", "bool", "bytes", "type", "max", "min", "all", "exists", "exists_one", "map",
    "filter", "lowerAscii", "upperAscii", "trim", "abs",
})
_MAX_EXHAUSTIVE = 8
_SAMPLES = 256


def _position(source: str, name: str) -> tuple[int, int]:
    """1-based line/column of the first use of ``name`` outside string literals."""
    blanked = _STRING_RE.sub(lambda m: " " * len(m.group(0)), source)
    m = re.search(rf"(?<![A-Za-z0-9_.]){re.escape(name)}(?![A-Za-z0-9_])", blanked)
    if not m:
        return 0, 0
    before = source[: m.start()]
    return before.count("\n") + 1, m.start() - (before.rfind("\n") + 1) + 1


def _syntax_problems(rule_id: str, message: str) -> list[RuleProblem]:
    found = [RuleProblem(rule_id, "syntax", m.group(3).strip(), int(m.group(1)), int(m.group(2)))
             for m in _SYNTAX_RE.finditer(message)]
    return found or [RuleProblem(rule_id, "syntax", message)]


def _probes(names: list[str], schema: Mapping[str, FeatureType], seed: str):
    choices = [probe_values(schema[n]) for n in names]
    if len(names) <= _MAX_EXHAUSTIVE:
        yield from itertools.product(*choices)
        return
    rng = random.Random(seed)
    yield tuple(c[0] for c in choices)
    yield tuple(c[1] for c in choices)
    for _ in range(_SAMPLES):
        yield tuple(rng.choice(c) for c in choices)


def _cel_type(value: object) -> str:
    return {float: "double", str: "string", int: "int"}.get(type(value), type(value).__name__)


def _check_rule(rule, schema: Mapping[str, FeatureType]) -> tuple[list[RuleProblem], object]:
    try:
        program = cel.compile(rule.expression)
    except ValueError as exc:
        return _syntax_problems(rule.id, str(exc)), None
    bound = set(_COMPREHENSION_RE.findall(rule.expression))
    problems = []
    for name in program.variables():
        if name in schema or name in bound:
            continue
        line, col = _position(rule.expression, name)
        close = difflib.get_close_matches(name, list(schema), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(RuleProblem(rule.id, "unknown_name", f"unknown feature {name!r}{hint}",
                                    line, col))
    for fn in program.functions():
        if fn[0] in "_@!-" or fn in _ALLOWED_FUNCTIONS:
            continue
        line, col = _position(rule.expression, fn)
        problems.append(RuleProblem(rule.id, "unknown_function", f"unknown function {fn!r}",
                                    line, col))
    if problems:
        return problems, None
    names = sorted(n for n in program.variables() if n in schema)
    for values in _probes(names, schema, rule.id):
        probe = dict(zip(names, values, strict=True))
        try:
            result = program.execute(cel.Context(variables=probe))
        except TypeError as exc:
            return [RuleProblem(rule.id, "type", f"{exc} (with {probe})")], None
        except (RuntimeError, ValueError, ArithmeticError, LookupError) as exc:
            return [RuleProblem(rule.id, "evaluation", f"{exc} (with {probe})")], None
        if not isinstance(result, bool):
            return [RuleProblem(rule.id, "result_type",
                                f"a rule must evaluate to bool, got {_cel_type(result)}")], None
    return [], program


def validate_rule_set(rule_set: RuleSet,
                      schema: Mapping[str, FeatureType] = FEATURE_SCHEMA) -> list[RuleProblem]:
    """Every problem in the rule set (empty when it can be published)."""
    problems, _ = _validate(rule_set, schema)
    return problems


def compile_rule_set(rule_set: RuleSet,
                     schema: Mapping[str, FeatureType] = FEATURE_SCHEMA) -> CompiledRuleSet:
    """Validate and compile; raises RuleSetInvalid listing every problem."""
    problems, programs = _validate(rule_set, schema)
    if problems:
        raise RuleSetInvalid(problems)
    return CompiledRuleSet(rule_set, programs)


def _validate(rule_set: RuleSet, schema: Mapping[str, FeatureType]):
    problems: list[RuleProblem] = []
    programs = []
    seen: set[str] = set()
    if not rule_set.rules:
        problems.append(RuleProblem("-", "definition", "a rule set needs at least one rule"))
    for rule in rule_set.rules:
        if rule.id in seen:
            problems.append(RuleProblem(rule.id, "definition", "duplicate rule id"))
        seen.add(rule.id)
        found = rule.definition_problems()
        rule_problems, program = _check_rule(rule, schema)
        found += rule_problems
        problems += found
        if not found:
            programs.append((rule, program))
    return problems, programs

"""Analyst rules: CEL expressions over the feature dict, with an effect and a mode."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cel
import orjson

from risk_engine.errors import RuleEvaluationFailed, RuleProblem, RuleSetInvalid
from risk_engine.levels import RiskLevel

__all__ = [
    "CompiledRuleSet",
    "Rule",
    "RuleEffect",
    "RuleMode",
    "RuleOutcome",
    "RuleSet",
    "load_rule_file",
]

RULE_ID_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


class RuleEffect(StrEnum):
    ADD_SCORE = "add_score"  # add ``score`` (may be negative) to the risk score
    MIN_LEVEL = "min_level"  # the level is at least ``level``
    BLOCK = "block"  # refuse the request
    ALLOW = "allow"  # allow-list: level low unless a block rule also hits
    TAG = "tag"  # record ``tag`` on the decision, no effect on the outcome


class RuleMode(StrEnum):
    ACTIVE = "active"
    SHADOW = "shadow"  # evaluated and recorded, never changes the outcome


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    expression: str
    effect: RuleEffect
    description: str = ""
    mode: RuleMode = RuleMode.ACTIVE
    version: int = 1
    score: float = 0.0
    level: RiskLevel | None = None
    tag: str = ""

    def __post_init__(self) -> None:
        # accept plain strings for the enums (rules are often written by hand)
        object.__setattr__(self, "effect", RuleEffect(self.effect))
        object.__setattr__(self, "mode", RuleMode(self.mode))
        if self.level is not None:
            object.__setattr__(self, "level", RiskLevel(self.level))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "description": self.description, "expression": self.expression,
            "effect": self.effect.value, "mode": self.mode.value, "version": self.version,
        }
        if self.effect is RuleEffect.ADD_SCORE:
            out["score"] = self.score
        if self.effect is RuleEffect.MIN_LEVEL and self.level is not None:
            out["level"] = self.level.value
        if self.effect is RuleEffect.TAG:
            out["tag"] = self.tag
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Rule:
        """Parse one rule; a malformed definition raises RuleSetInvalid naming the rule."""
        rid = str(raw.get("id", "?"))
        try:
            level = raw.get("level")
            return cls(
                id=rid,
                expression=str(raw["expression"]),
                effect=RuleEffect(raw["effect"]),
                description=str(raw.get("description", "")),
                mode=RuleMode(raw.get("mode", "active")),
                version=int(raw.get("version", 1)),
                score=float(raw.get("score", 0.0)),
                level=RiskLevel(level) if level is not None else None,
                tag=str(raw.get("tag", "")),
            )
        except (KeyError, ValueError, TypeError, OverflowError) as exc:
            raise RuleSetInvalid([RuleProblem(rid, "definition", f"bad rule definition: {exc!r}")]) from exc

    def definition_problems(self) -> list[RuleProblem]:
        out = []
        if not RULE_ID_RE.match(self.id):
            out.append(RuleProblem(self.id, "definition", "id must match [a-z][a-z0-9_.-]{0,63}"))
        if self.effect is RuleEffect.MIN_LEVEL and self.level is None:
            out.append(RuleProblem(self.id, "definition", "min_level rules need a level"))
        if self.effect is RuleEffect.MIN_LEVEL and self.level is RiskLevel.BLOCK:
            out.append(RuleProblem(self.id, "definition", "use effect 'block' to block"))
        if self.effect is RuleEffect.TAG and not self.tag:
            out.append(RuleProblem(self.id, "definition", "tag rules need a tag"))
        if self.effect is RuleEffect.ADD_SCORE and not -1.0 <= self.score <= 1.0:
            out.append(RuleProblem(self.id, "definition", "score must be within -1.0..1.0"))
        if self.version < 1:
            out.append(RuleProblem(self.id, "definition", "version must be >= 1"))
        return out


@dataclass(frozen=True, slots=True)
class RuleSet:
    """An ordered list of rules; ``version`` is 0 until the set is published."""

    rules: tuple[Rule, ...]
    version: int = 0
    author: str = ""
    reason: str = ""
    published_at: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps({
            "version": self.version, "author": self.author, "reason": self.reason,
            "published_at": self.published_at, "rules": [r.to_dict() for r in self.rules],
        })

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> RuleSet:
        raw_rules = doc.get("rules")
        if not isinstance(raw_rules, list):
            raise RuleSetInvalid([RuleProblem("-", "definition", "expected a list under 'rules'")])
        problems: list[RuleProblem] = []
        rules = []
        for raw in raw_rules:
            if not isinstance(raw, Mapping):
                problems.append(RuleProblem("-", "definition", "each rule must be a table/object"))
                continue
            try:
                rules.append(Rule.from_dict(raw))
            except RuleSetInvalid as exc:
                problems.extend(exc.problems)
        if problems:
            raise RuleSetInvalid(problems)
        try:
            return cls(tuple(rules), int(doc.get("version", 0)), str(doc.get("author", "")),
                       str(doc.get("reason", "")), float(doc.get("published_at", 0.0)))
        except (ValueError, TypeError, OverflowError) as exc:
            raise RuleSetInvalid([RuleProblem("-", "definition", f"bad rule set header: {exc!r}")]) from exc

    @classmethod
    def from_json(cls, raw: bytes | str) -> RuleSet:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RuleSetInvalid([RuleProblem("-", "syntax", f"not JSON: {exc}")]) from exc
        if not isinstance(doc, dict):
            raise RuleSetInvalid([RuleProblem("-", "definition", "expected a JSON object")])
        return cls.from_document(doc)


def load_rule_file(path: str) -> RuleSet:
    """Read a rule set from a ``.toml`` (``[[rules]]`` tables) or ``.json`` file."""
    with open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".toml"):
        try:
            doc = tomllib.loads(data.decode())
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RuleSetInvalid([RuleProblem("-", "syntax", f"not TOML: {exc}")]) from exc
        return RuleSet.from_document(doc)
    return RuleSet.from_json(data)


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What the rules said about one request."""

    hits: tuple[str, ...] = ()  # active rules that matched, in rule-set order
    shadow_hits: tuple[str, ...] = ()
    score_delta: float = 0.0
    min_level: RiskLevel = RiskLevel.LOW
    blocked: bool = False
    allowed: bool = False
    tags: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # rule ids that raised at runtime (see _fails_closed)


# What a CEL program raises at run time: a wrong type, an overflow, a missing map key
# or list index ({"a": 1}[x], [1][i]) ...
EVAL_ERRORS = (RuntimeError, TypeError, ValueError, ArithmeticError, LookupError)


def _fails_closed(rule: Rule) -> bool:
    """Whether a rule that errors counts as hit: yes when hitting makes the outcome stricter."""
    if rule.effect is RuleEffect.ALLOW or rule.effect is RuleEffect.TAG:
        return False
    return not (rule.effect is RuleEffect.ADD_SCORE and rule.score < 0)


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    program: Any


class CompiledRuleSet:
    """A validated rule set, compiled once, evaluated per request."""

    __slots__ = ("rule_set", "_active", "_shadow", "_variables")

    def __init__(self, rule_set: RuleSet, programs: Iterable[tuple[Rule, Any]]) -> None:
        self.rule_set = rule_set
        compiled = [_Compiled(r, p) for r, p in programs]
        self._active = [c for c in compiled if c.rule.mode is RuleMode.ACTIVE]
        self._shadow = [c for c in compiled if c.rule.mode is RuleMode.SHADOW]
        names: set[str] = set()
        for c in compiled:
            names.update(c.program.variables())
        self._variables = tuple(sorted(names))

    @property
    def version(self) -> int:
        return self.rule_set.version

    def context(self, features: Mapping[str, object]) -> Any:
        """One CEL context per request holding only the features some rule reads."""
        return cel.Context(variables={k: features[k] for k in self._variables if k in features})

    def evaluate(self, features: Mapping[str, object], *, shadow: bool = True) -> RuleOutcome:
        """Run every rule. A rule that fails at runtime is reported in ``errors`` and counts
        as hit when that is the stricter choice (a broken block rule must not let traffic
        through; a broken allow rule must not allow-list it)."""
        ctx = self.context(features)
        hits: list[str] = []
        tags: list[str] = []
        errors: list[str] = []
        delta = 0.0
        level = RiskLevel.LOW
        blocked = allowed = False
        for c in self._active:
            try:
                matched = c.program.execute(ctx) is True
            except EVAL_ERRORS:
                errors.append(c.rule.id)
                matched = _fails_closed(c.rule)
            if not matched:
                continue
            rule = c.rule
            hits.append(rule.id)
            if rule.effect is RuleEffect.ADD_SCORE:
                delta += rule.score
            elif rule.effect is RuleEffect.MIN_LEVEL and rule.level is not None:
                level = level.at_least(rule.level)
            elif rule.effect is RuleEffect.BLOCK:
                blocked = True
            elif rule.effect is RuleEffect.ALLOW:
                allowed = True
            elif rule.effect is RuleEffect.TAG:
                tags.append(rule.tag)
        shadow_hits: list[str] = []
        if shadow:
            for c in self._shadow:
                try:
                    if c.program.execute(ctx) is True:
                        shadow_hits.append(c.rule.id)
                except EVAL_ERRORS:
                    shadow_hits.append(c.rule.id)
                    errors.append(c.rule.id)
        return RuleOutcome(tuple(hits), tuple(shadow_hits), delta, level, blocked, allowed,
                           tuple(tags), tuple(errors))

    def evaluate_one(self, rule_id: str, features: Mapping[str, object]) -> bool:
        for c in self._active + self._shadow:
            if c.rule.id == rule_id:
                try:
                    return c.program.execute(self.context(features)) is True
                except EVAL_ERRORS as exc:
                    raise RuleEvaluationFailed(f"rule {rule_id!r}: {exc}") from exc
        raise KeyError(rule_id)

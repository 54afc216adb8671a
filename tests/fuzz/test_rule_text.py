"""Analyst rules: any rule document or CEL text compiles or is refused as RuleSetInvalid."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from risk_engine import Rule, RuleEffect, RuleSet
from risk_engine.errors import RuleSetInvalid
from risk_engine.rules import CompiledRuleSet, load_rule_file
from risk_engine.schema import FEATURE_SCHEMA, FeatureType, probe_values
from risk_engine.validation import compile_rule_set
from tests.fuzz.fuzzing import FUZZ, json_values
from tests.fuzz.rule_strategies import rule_docs, rule_text


def _sample_features() -> dict[str, object]:
    return {name: probe_values(kind)[-1] for name, kind in FEATURE_SCHEMA.items()}


@FUZZ
@given(expression=rule_text)
@example(expression="amount_fen / 0 > 1")
@example(expression="'a'.matches('[')")
def test_any_rule_expression_compiles_or_is_refused(expression: str) -> None:
    rule = Rule("fuzzed", expression, RuleEffect.TAG, tag="fuzz")
    try:
        compiled = compile_rule_set(RuleSet((rule,)))
    except RuleSetInvalid as exc:
        assert exc.problems and all(p.rule_id == "fuzzed" for p in exc.problems)
        return
    assert isinstance(compiled, CompiledRuleSet)
    compiled.evaluate(_sample_features())  # a rule that fails at run time fails closed, quietly


def _feature_values(kind: FeatureType) -> st.SearchStrategy[object]:
    if kind is FeatureType.BOOL:
        return st.booleans()
    if kind is FeatureType.NUMBER:
        return st.floats(allow_nan=False, allow_infinity=False)
    return st.text(max_size=12) | st.sampled_from(["transfer", "bound", "I", "new", ""])


features = st.fixed_dictionaries({name: _feature_values(kind) for name, kind in FEATURE_SCHEMA.items()})


@FUZZ
@given(expression=rule_text, values=features, effect=st.sampled_from([RuleEffect.BLOCK, RuleEffect.ALLOW]))
@example(expression="{'': true, 'new': false}[action]", values={**_sample_features(), "action": "transfer"},
         effect=RuleEffect.BLOCK)
@example(expression="[true, false][int(hour_of_day) % 3]", values={**_sample_features(), "hour_of_day": 2.0},
         effect=RuleEffect.BLOCK)
def test_a_published_rule_never_raises_at_run_time(expression: str, values: dict[str, object],
                                                   effect: RuleEffect) -> None:
    rule = Rule("fuzzed", expression, effect)
    try:
        compiled = compile_rule_set(RuleSet((rule,)))
    except RuleSetInvalid:
        return
    outcome = compiled.evaluate(values)  # a failing rule is reported, and fails closed
    if outcome.errors:
        assert outcome.blocked is (effect is RuleEffect.BLOCK) and not outcome.allowed


@FUZZ
@given(doc=st.one_of(json_values, st.fixed_dictionaries({"rules": st.lists(rule_docs, max_size=3)}),
                     st.fixed_dictionaries({"rules": st.lists(rule_docs, max_size=2)},
                                           optional={"version": json_values, "author": json_values,
                                                     "published_at": json_values})))
def test_any_rule_document_compiles_or_is_refused(doc: object) -> None:
    try:
        compile_rule_set(RuleSet.from_json(orjson.dumps(doc)))
    except RuleSetInvalid as exc:
        assert exc.problems


@pytest.fixture(scope="module")
def rule_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rules")


@FUZZ
@given(data=st.one_of(st.binary(max_size=200),
                      st.text(max_size=200).map(str.encode),
                      st.tuples(st.sampled_from(["version", "score", "level", "effect", "expression"]),
                                st.sampled_from(["inf", "nan", "-inf", "1e400", "1979-05-27", "[1]",
                                                 "{a=1}", "'x'", "9223372036854775807", "true"])
                                ).map(lambda kv: (
                                    "[[rules]]\nid = \"r\"\nexpression = \"true\"\neffect = \"block\"\n"
                                    f"{kv[0]} = {kv[1]}\n").encode())),
       suffix=st.sampled_from([".toml", ".json"]))
@example(data=b"\xff", suffix=".toml")
@example(data=b'[[rules]]\nid="r"\nexpression="true"\neffect="block"\nversion=inf\n', suffix=".toml")
@example(data=b'version = "x"\nrules = []\n', suffix=".toml")
def test_any_rule_file_loads_or_is_refused(rule_dir: Path, data: bytes, suffix: str) -> None:
    path = rule_dir / f"rules{suffix}"
    path.write_bytes(data)
    try:
        compile_rule_set(load_rule_file(str(path)))
    except RuleSetInvalid as exc:
        assert exc.problems


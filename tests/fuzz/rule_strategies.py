"""Hypothesis strategies for analyst rules: CEL-shaped expressions and rule documents."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from risk_engine import RuleEffect
from risk_engine.schema import FEATURE_SCHEMA
from tests.fuzz.fuzzing import json_values

NAMES = sorted(FEATURE_SCHEMA)
atoms = st.one_of(
    st.sampled_from(NAMES), st.sampled_from(["unknown_feature", "x", "true", "null", "[]", "{}"]),
    st.integers(-(2**70), 2**70).map(str), st.floats().map(repr),
    st.text(string.printable, max_size=8).map(lambda t: repr(t)),
)
expressions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["&&", "||", "==", "!=", "<", ">=", "+", "-", "*", "/", "%",
                                          " in ", "."]), inner).map(" ".join),
        st.tuples(st.sampled_from(["!", "-", "size(", "int(", "double(", "string(", "matches(",
                                   "has(", "max(", "unknownfn(", "["]), inner).map("".join),
        st.tuples(inner, st.sampled_from([")", "]", ".exists(x, x)", ".contains('a')", "?1:2"])).map("".join),
    ),
    max_leaves=6,
)
# Rule expressions as typed: grammar-shaped fragments, then anything at all.
rule_text = st.one_of(expressions, st.text(max_size=80))
rule_docs = st.fixed_dictionaries(
    {"id": st.one_of(st.from_regex(r"[a-z][a-z0-9_.-]{0,10}", fullmatch=True), st.text(max_size=10)),
     "expression": st.one_of(rule_text, json_values),
     "effect": st.one_of(st.sampled_from([e.value for e in RuleEffect]), json_values)},
    optional={"mode": json_values | st.sampled_from(["active", "shadow"]), "version": json_values,
              "score": json_values, "level": json_values | st.sampled_from(["low", "high", "block"]),
              "tag": json_values, "description": json_values},
)

from __future__ import annotations

import pytest

from risk_engine import (
    FEATURE_SCHEMA,
    RiskLevel,
    Rule,
    RuleEffect,
    RuleMode,
    RuleSet,
    RuleSetInvalid,
    compile_rule_set,
    default_rule_set,
    load_rule_file,
    validate_rule_set,
)


def _features(**kw):
    x = {name: (False if t.value == "bool" else 0.0 if t.value == "double" else "")
         for name, t in FEATURE_SCHEMA.items()}
    x.update(action="transfer", moves_money=True, device_status="bound", account_class="I",
             account_age_days=1000.0, device_similarity=1.0, sim_swap_hours=1e6)
    x.update(kw)
    return x


def _problems(*exprs):
    rs = RuleSet(tuple(Rule(f"r{i}", e, RuleEffect.BLOCK) for i, e in enumerate(exprs)))
    return validate_rule_set(rs)


def test_default_pack_validates():
    compiled = compile_rule_set(default_rule_set())
    assert len(compiled.rule_set.rules) >= 15


def test_syntax_error_has_position():
    [p] = _problems("amount_cny >")
    assert p.kind == "syntax" and (p.line, p.column) == (1, 13)


def test_unknown_feature_has_position_and_suggestion():
    [p] = _problems("moves_money && amout_cny > 5000")
    assert p.kind == "unknown_name" and (p.line, p.column) == (1, 16)
    assert "amount_cny" in p.message


def test_type_errors_are_found_behind_short_circuits():
    [p] = _problems("payee_new && amount_cny * 2 > 10.0")  # double * int only on one branch
    assert p.kind == "type"
    [p] = _problems("device_status > 3")
    assert p.kind == "type"


def test_rule_must_be_boolean_and_functions_known():
    [p] = _problems("amount_cny + 1.0")
    assert p.kind == "result_type" and "double" in p.message
    [p] = _problems("exfiltrate(amount_cny)")
    assert p.kind == "unknown_function"


def test_comprehension_variables_are_not_unknown_names():
    assert _problems("[1000.0, 5000.0].exists(t, amount_cny == t)") == []


def test_invalid_set_lists_every_problem():
    with pytest.raises(RuleSetInvalid) as info:
        compile_rule_set(RuleSet((Rule("ok", "payee_new", RuleEffect.BLOCK),
                                  Rule("ok", "night", RuleEffect.BLOCK),
                                  Rule("Bad id", "nope", RuleEffect.BLOCK),
                                  Rule("lvl", "night", RuleEffect.MIN_LEVEL))))
    kinds = sorted(p.kind for p in info.value.problems)
    assert kinds == ["definition", "definition", "definition", "unknown_name"]
    assert info.value.code == "rule_set_invalid"


def test_effects_and_shadow_mode():
    rs = compile_rule_set(RuleSet((
        Rule("score", "amount_cny >= 5000", RuleEffect.ADD_SCORE, score=0.3),
        Rule("level", "payee_new", RuleEffect.MIN_LEVEL, level=RiskLevel.HIGH),
        Rule("tag", "night", RuleEffect.TAG, tag="night"),
        Rule("shadow_block", "amount_cny >= 1", RuleEffect.BLOCK, mode=RuleMode.SHADOW),
        Rule("salary", "payee_age_hours > 1000.0", RuleEffect.ALLOW),
    )))
    out = rs.evaluate(_features(amount_cny=6000.0, payee_new=True, night=True))
    assert out.hits == ("score", "level", "tag")
    assert out.shadow_hits == ("shadow_block",) and out.blocked is False
    assert out.score_delta == 0.3 and out.min_level is RiskLevel.HIGH and out.tags == ("night",)
    assert rs.evaluate(_features(payee_age_hours=5000.0)).allowed is True


def test_a_rule_failing_at_runtime_fails_closed_for_block_not_for_allow():
    # int() overflows only for values beyond the probes, so validation passes it
    rs = compile_rule_set(RuleSet((
        Rule("block_int", "int(amount_cny) > 5000", RuleEffect.BLOCK),
        Rule("allow_int", "int(amount_cny) < 100", RuleEffect.ALLOW),
    )))
    out = rs.evaluate(_features(amount_cny=1e30))
    assert out.blocked is True and out.allowed is False
    assert set(out.errors) == {"block_int", "allow_int"}


def test_possible_division_by_zero_is_refused_at_validation():
    [p] = _problems("int(amount_cny) / int(txn_count_1h) > 1")
    assert p.kind == "evaluation" and "division by zero" in p.message


def test_rule_file_toml(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text('[[rules]]\nid = "big"\nexpression = "amount_cny >= 100000"\n'
                    'effect = "min_level"\nlevel = "high"\ndescription = "large"\n')
    rs = load_rule_file(str(path))
    assert rs.rules[0].level is RiskLevel.HIGH
    path.write_text('[[rules]]\nid = "big"\nexpression = "x"\neffect = "explode"\n')
    with pytest.raises(RuleSetInvalid) as info:
        load_rule_file(str(path))
    assert info.value.problems[0].rule_id == "big"


def test_default_pack_blocks_a_hooked_app_but_only_scores_a_rooted_phone():
    rs = compile_rule_set(default_rule_set())
    trojan = rs.evaluate(_features(amount_cny=800.0, device_hooked=True))
    assert trojan.blocked and "hooked_money" in trojan.hits
    rooted = rs.evaluate(_features(amount_cny=8000.0, device_rooted=True))
    assert not rooted.blocked and rooted.min_level is RiskLevel.LOW
    assert rooted.score_delta == 0.15


def test_added_scores_raise_to_high_but_only_a_rule_or_the_model_blocks():
    from risk_engine import RiskThresholds, combine
    from risk_engine.rules import RuleOutcome

    th = RiskThresholds()
    heuristics = RuleOutcome(hits=("a", "b"), score_delta=0.7)
    assert combine(heuristics, 0.6, th)[1] is RiskLevel.HIGH  # 1.3 -> capped at high
    assert combine(heuristics, th.block, th)[1] is RiskLevel.BLOCK  # the model is sure
    assert combine(RuleOutcome(blocked=True), None, th)[1] is RiskLevel.BLOCK
    assert combine(RuleOutcome(), 0.55, th)[1] is RiskLevel.MEDIUM

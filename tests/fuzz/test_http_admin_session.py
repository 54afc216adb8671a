"""The session admin API (/admin/api): any body, path parameter or query from a signed-in
admin (every permission, a valid CSRF token) gets a 2xx or a 4xx JSON error, never a 5xx.

Analysts are trusted less than the code they drive: a malformed rule set, ops document
or name must be refused, not crash.
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.admin_api import OPENAPI
from gateway.console.analysts import Role
from tests.console.conftest import console  # noqa: F401 - the fixture, re-used here
from tests.fuzz.fuzzing import FUZZ, assert_refused_as_json, json_values
from tests.fuzz.rule_strategies import rule_docs
from tests.gateway.conftest import gateway_factory  # noqa: F401 - needed by the console fixture

API = "/admin/api"
OPERATIONS = sorted((method.upper(), path) for path, ops in OPENAPI["paths"].items() for method in ops
                    if (method, path) != ("delete", "/session"))  # signing out ends the run
UNSAFE = [(m, p) for m, p in OPERATIONS if m != "GET"]
segments = st.one_of(st.sampled_from(["root", "ok0", "p_1", "1", "0", "-1", "99999999999999999999",
                                      "\u00b2", "ROOT", "a.b", "x" * 300]),
                     st.text(st.characters(blacklist_characters="/?#%", blacklist_categories=("Cs", "Cc")),
                             min_size=1, max_size=20))
fields = st.fixed_dictionaries({}, optional={
    "verdict": st.sampled_from(["fraud", "legitimate", "unsure"]) | json_values,
    "text": st.text(max_size=200) | json_values,
    "rules": st.lists(rule_docs, max_size=2) | json_values,
    "reason": st.just("fuzz") | json_values,
    "version": st.integers(-1, 3) | json_values,
    "base_version": st.integers(-1, 3) | json_values,
    "business": json_values, "channels": json_values, "parameters": json_values,
    "name": segments | json_values, "role": st.sampled_from([r.value for r in Role]) | json_values,
})


@pytest.fixture
async def admin(console):  # noqa: ANN001, ANN201, F811 - (client, csrf)
    root = await console.analyst("root", Role.ADMIN)
    return root.http, (await root.http.get(f"{API}/session")).json()["csrf"]


def _path(template: str, values: list[str]) -> str:
    names = re.findall(r"{(\w+)}", template)
    return template.format(**dict(zip(names, values, strict=False)))


@FUZZ
@given(op=st.sampled_from(UNSAFE), params=st.lists(segments, min_size=1, max_size=1),
       body=st.one_of(st.binary(max_size=100), json_values.map(orjson.dumps), fields.map(orjson.dumps)))
async def test_any_admin_api_body_is_answered_in_json(admin, op, params, body: bytes) -> None:  # noqa: ANN001
    http, csrf = admin
    method, template = op
    resp = await http.request(method, API + _path(template, params), content=body,
                              headers={"x-csrf-token": csrf, "content-type": "application/json"})
    assert resp.status_code not in (401, 403) or resp.json()["error"] in (
        "maker_checker_same_person", "analyst_self_change"), resp.text
    assert_refused_as_json(resp)


@FUZZ
@given(op=st.sampled_from([(m, p) for m, p in OPERATIONS if m == "GET"]),
       params=st.lists(segments, min_size=1, max_size=1),
       query=st.dictionaries(st.sampled_from(["count", "before", "status", "outcome", "level", "user",
                                              "rule", "action", "from", "to"]),
                             st.text(max_size=20) | st.sampled_from(["\u00b2", "9" * 5000, "-1", "0",
                                                                     "1-1", "pending", "high"]),
                             max_size=3))
async def test_any_admin_api_query_is_answered_in_json(admin, op, params, query) -> None:  # noqa: ANN001
    http, _csrf = admin
    resp = await http.get(API + _path(op[1], params), params=query)
    assert_refused_as_json(resp)

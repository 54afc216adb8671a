"""Route policy: any [[routes]] row compiles or raises ConfigError; any body or path is matched or refused."""

from __future__ import annotations

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from auth_tools.dynamic_linking import Transaction
from gateway.config import DEFAULT_ROUTES, ConfigError, RouteConfig
from gateway.errors import BadRequest
from gateway.route_policy import Action, RoutePolicy
from tests.fuzz.fuzzing import FUZZ, json_values

POLICY = RoutePolicy.from_config(DEFAULT_ROUTES)
TRANSFER = POLICY.match("POST", "/v1/transfers").route  # type: ignore[union-attr]
templates = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.from_regex(r"[a-z0-9._\-]{0,8}", fullmatch=True),
                       st.from_regex(r"\{[a-z_][a-z0-9_]{0,6}\}", fullmatch=True),
                       st.sampled_from(["{", "}", "{2,1}", "{A}", "(", "[", "\\", "*", "?", "$"])),
             max_size=5).map(lambda parts: "/v1/" + "/".join(parts)),
)
rows = st.builds(RouteConfig, method=st.sampled_from(["GET", "post", "PUT", "TRACE", ""]) | st.text(max_size=6),
                 path=templates, action=st.sampled_from([a.value for a in Action]) | st.text(max_size=10),
                 amount_field=st.sampled_from(["", "amount"]), payee_field=st.sampled_from(["", "payee"]))


@FUZZ
@given(routes=st.lists(rows, min_size=1, max_size=3))
@example(routes=[RouteConfig("GET", "/v1/x{2,1}", "view_payees")])
@example(routes=[RouteConfig("GET", "/v1/{a}/{a}", "view_payees")])
def test_any_route_row_compiles_or_names_its_key(routes: list[RouteConfig]) -> None:
    try:
        policy = RoutePolicy.from_config(routes)
    except ConfigError as exc:
        assert exc.key.startswith("routes[")
        return
    for row in routes:
        # a parameter-free template matches itself; any other path matches or not, quietly
        matched = policy.match(row.method.upper(), row.path)
        assert matched is not None or "{" in row.path


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "DELETE"]), path=st.text(max_size=60))
def test_any_path_matches_a_route_or_none(method: str, path: str) -> None:
    matched = POLICY.match(method, path)
    if matched is not None:
        assert all(v not in (".", "..") and "/" not in v for v in matched.params.values())


@FUZZ
@given(body=st.one_of(st.binary(max_size=100), json_values.map(orjson.dumps),
                      st.fixed_dictionaries({}, optional={
                          "amount": json_values | st.from_regex(r"[0-9]{0,16}(\.[0-9]{0,3})?", fullmatch=True),
                          "currency": json_values | st.just("CNY"), "payee_account": json_values,
                          "from_account": json_values}).map(orjson.dumps)))
def test_any_transfer_body_is_a_transaction_or_a_bad_request(body: bytes) -> None:
    try:
        txn = TRANSFER.transaction(body)
    except BadRequest as exc:
        assert exc.status == 400 and exc.code
        return
    assert isinstance(txn, Transaction) and txn.amount > 0 and txn.currency == "CNY"

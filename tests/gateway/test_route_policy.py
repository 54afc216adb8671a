"""Route policy: templates, actions and the canonical transaction from the body."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auth_tools.dynamic_linking import Transaction, format_amount
from gateway.config import DEFAULT_ROUTES
from gateway.errors import BadRequest
from gateway.route_policy import Action, RoutePolicy

POLICY = RoutePolicy.from_config(DEFAULT_ROUTES)


@pytest.mark.parametrize("method,path,action", [
    ("GET", "/v1/accounts", Action.VIEW_ACCOUNTS),
    ("GET", "/v1/accounts/6222020000000001/balance", Action.VIEW_ACCOUNTS),
    ("GET", "/v1/accounts/6222020000000001/history", Action.VIEW_HISTORY),
    ("POST", "/v1/transfers", Action.TRANSFER),
    ("POST", "/v1/payees", Action.ADD_PAYEE),
])
def test_known_routes_match(method, path, action):
    matched = POLICY.match(method, path)
    assert matched is not None and matched.route.action is action


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/v1/accounts"), ("GET", "/v1/accounts/"), ("GET", "/v1/accounts/a/b/balance"),
    ("GET", "/v1/accounts/../balance/x"), ("GET", "/v1/transfers"), ("GET", "/v1/accounts/../balance"), ("GET", "/v1/accounts/./balance"),
])
def test_unknown_routes_do_not_match(method, path):
    assert POLICY.match(method, path) is None


@given(fen=st.integers(min_value=1, max_value=10**12),
       payee=st.from_regex(r"[0-9]{16}", fullmatch=True))
def test_transaction_read_from_body(fen, payee):
    route = POLICY.match("POST", "/v1/transfers").route
    body = orjson.dumps({"from_account": "6222020000000001", "payee_account": payee,
                         "amount": format_amount(fen), "currency": "CNY"})
    assert route.transaction(body) == Transaction("transfer", fen, "CNY", "6222020000000001", payee)


def test_view_has_no_transaction():
    assert POLICY.match("GET", "/v1/accounts").route.transaction(b"") is None


def test_float_amounts_are_refused():
    route = POLICY.match("POST", "/v1/transfers").route
    with pytest.raises(BadRequest) as err:
        route.transaction(b'{"from_account":"a","payee_account":"b","amount":0.1}')
    assert err.value.code == "invalid_amount"

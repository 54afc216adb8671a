"""Request bodies of the upstream API, parsed once at the edge into values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from auth_tools.dynamic_linking import InvalidAmount, Transaction, parse_amount
from banking_upstream.errors import BadRequest
from banking_upstream.ledger import TransferRequest

__all__ = ["PayeeRequest", "parse_transfer", "parse_payee", "transfer_transaction",
           "payee_transaction"]

ACCOUNT_NUMBER = re.compile(r"^[0-9]{10,19}$")
MAX_MEMO = 140
MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class PayeeRequest:
    name: str
    account: str


def parse_transfer(body: bytes) -> TransferRequest:
    """``{"from_account","payee_account","amount","currency"?,"memo"?}`` -> TransferRequest."""
    doc = _object(body)
    source = _string(doc, "from_account", max_length=64)
    payee = _account_number(doc, "payee_account")
    if "amount" not in doc:
        raise BadRequest("missing_field", "'amount' is required")
    try:
        amount = parse_amount(doc["amount"])
    except InvalidAmount as exc:
        raise BadRequest("invalid_amount", f"'amount': {exc}") from exc
    if amount == 0:
        raise BadRequest("invalid_amount", "'amount' must be more than zero")
    currency = doc.get("currency", "CNY")
    if not isinstance(currency, str):
        raise BadRequest("invalid_field", "'currency' must be a string")
    if currency != "CNY":
        raise BadRequest("unsupported_currency", "only CNY is supported")
    memo = doc.get("memo", "")
    if not isinstance(memo, str) or len(memo) > MAX_MEMO:
        raise BadRequest("invalid_field", f"'memo' must be a string of at most {MAX_MEMO} characters")
    return TransferRequest(from_account=source, payee_account=payee, amount=amount,
                           currency=currency, memo=memo)


def parse_payee(body: bytes) -> PayeeRequest:
    """``{"name","account"}`` -> PayeeRequest."""
    doc = _object(body)
    name = _string(doc, "name", max_length=MAX_NAME).strip()
    if not name:
        raise BadRequest("invalid_field", "'name' must not be blank")
    return PayeeRequest(name=name, account=_account_number(doc, "account"))


def transfer_transaction(request: TransferRequest) -> Transaction:
    """The canonical transaction a transfer body stands for (see docs/assertion.md)."""
    return Transaction(action="transfer", amount=request.amount, currency=request.currency,
                       source=request.from_account, payee=request.payee_account)


def payee_transaction(request: PayeeRequest) -> Transaction:
    """The canonical transaction of adding a payee."""
    return Transaction(action="add_payee", amount=0, currency="CNY", source="",
                       payee=request.account)


def _object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("invalid_json", "the request body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BadRequest("invalid_json", "the request body must be a JSON object")
    return doc


def _string(doc: dict[str, Any], name: str, *, max_length: int) -> str:
    if name not in doc:
        raise BadRequest("missing_field", f"{name!r} is required")
    value = doc[name]
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise BadRequest("invalid_field", f"{name!r} must be a string of 1-{max_length} characters")
    return value


def _account_number(doc: dict[str, Any], name: str) -> str:
    value = _string(doc, name, max_length=19)
    if not ACCOUNT_NUMBER.match(value):
        raise BadRequest("invalid_field", f"{name!r} must be an account number of 10-19 digits")
    return value

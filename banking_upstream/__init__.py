"""The reference banking upstream: a SQLite double-entry ledger behind an HTTP
API that trusts only the gateway's signed assertions (docs/assertion.md)."""

from banking_upstream.app import create_upstream_app
from banking_upstream.assertion import (
    AssertionHeader,
    TxnClaim,
    VerifiedAssertion,
    check_transaction,
    read_header,
    verify_assertion,
)
from banking_upstream.bodies import (
    PayeeRequest,
    parse_payee,
    parse_transfer,
    payee_transaction,
    transfer_transaction,
)
from banking_upstream.config import UpstreamConfig
from banking_upstream.errors import *  # noqa: F403 - the exception tree is public
from banking_upstream.errors import __all__ as _errors_all
from banking_upstream.jwks import JwksCache, parse_jwks
from banking_upstream.ledger import (
    CLEARING_ACCOUNT,
    OPENING_ACCOUNT,
    Account,
    AccountClass,
    HistoryItem,
    HistoryPage,
    Ledger,
    Payee,
    TransferReceipt,
    TransferRequest,
)
from banking_upstream.seeding import DEMO_CUSTOMERS, seed_customer, seed_demo

__all__ = [
    "UpstreamConfig",
    "create_upstream_app",
    "Ledger",
    "AccountClass",
    "Account",
    "Payee",
    "TransferRequest",
    "TransferReceipt",
    "HistoryItem",
    "HistoryPage",
    "OPENING_ACCOUNT",
    "CLEARING_ACCOUNT",
    "seed_demo",
    "seed_customer",
    "DEMO_CUSTOMERS",
    "JwksCache",
    "parse_jwks",
    "AssertionHeader",
    "TxnClaim",
    "VerifiedAssertion",
    "read_header",
    "verify_assertion",
    "check_transaction",
    "PayeeRequest",
    "parse_transfer",
    "parse_payee",
    "transfer_transaction",
    "payee_transaction",
    *_errors_all,
]

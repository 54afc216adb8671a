"""Demo and test customers for the reference upstream (idempotent)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from banking_upstream.errors import PayeeExists
from banking_upstream.ledger import AccountClass, Ledger

__all__ = ["DEMO_CUSTOMERS", "seed_customer", "seed_demo"]

# user -> [(account, class, opening balance in fen)], payees [(name, account)]
DEMO_CUSTOMERS: dict[str, tuple[list[tuple[str, str, int]], list[tuple[str, str]]]] = {
    "alice": (
        [("6222020000000001", "I", 10_000_000_00), ("6222020000000002", "II", 20_000_00)],
        [("Bob", "6222020000000003"), ("Utility Co", "6217000000000099")],
    ),
    "bob": ([("6222020000000003", "I", 1_000_00)], []),
    "carol": ([("6222020000000004", "III", 3_000_00)], []),
}


def seed_customer(ledger: Ledger, user_id: str,
                  accounts: Iterable[tuple[str, str | AccountClass, int]] = (),
                  payees: Iterable[tuple[str, str]] = (), *, now: float | None = None) -> None:
    """Create ``user_id`` with ``accounts`` ``(account_id, class, opening balance in fen)``
    and ``payees`` ``(name, account)``. Existing accounts and payees are left as they are."""
    at = time.time() if now is None else now
    ledger.ensure_customer(user_id, at)
    for account_id, account_class, opening in accounts:
        ledger.open_account(user_id, account_id, AccountClass(account_class), opening, at)
    existing = {p.account for p in ledger.payees(user_id)}
    for name, account in payees:
        if account not in existing:
            try:
                ledger.add_payee(user_id, name, account, at)
            except PayeeExists:  # pragma: no cover - raced with another seeder
                pass


def seed_demo(ledger: Ledger, *, now: float | None = None) -> None:
    """Seed alice, bob and carol (see DEMO_CUSTOMERS); running it again changes nothing."""
    for user_id, (accounts, payees) in DEMO_CUSTOMERS.items():
        seed_customer(ledger, user_id, accounts, payees, now=now)

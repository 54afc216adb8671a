"""The SQLite ledger: customers, accounts, payees, transfers and double entry.

Every movement of money is a transfer with exactly two entries, a debit
(negative) and a credit (positive) of the same amount, so the entries of each
transfer and the balances of all accounts sum to zero. Opening deposits are
transfers from the internal opening-balances account (the bank's side of a
deposit, the only account allowed below zero); money sent to an account the
ledger does not hold is credited to the internal external-clearing account.

One connection, WAL, synchronous=NORMAL. Calls are short and synchronous; an
async caller runs them inline (no awaits inside a database transaction, so two
requests never interleave inside one).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import orjson

from banking_upstream.errors import (
    AssertionReplayed,
    AssertionSubjectMismatch,
    BadRequest,
    IdempotencyKeyReused,
    InsufficientFunds,
    LedgerIntegrityError,
    PayeeExists,
    SameAccount,
    UpstreamError,
)

__all__ = [
    "AccountClass",
    "Account",
    "Payee",
    "TransferRequest",
    "TransferReceipt",
    "HistoryItem",
    "HistoryPage",
    "Ledger",
    "OPENING_ACCOUNT",
    "CLEARING_ACCOUNT",
]

OPENING_ACCOUNT = "internal:opening-balances"
CLEARING_ACCOUNT = "internal:external-clearing"
_JTI_PURGE_INTERVAL = 60.0

T = TypeVar("T")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    created_at  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS accounts (
    account_id  TEXT PRIMARY KEY,
    customer_id TEXT REFERENCES customers(customer_id),
    kind        TEXT NOT NULL CHECK (kind IN ('customer', 'internal')),
    class       INTEGER CHECK (class IN (1, 2, 3)),
    currency    TEXT NOT NULL CHECK (currency = 'CNY'),
    balance     INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    CHECK (balance >= 0 OR account_id = '{OPENING_ACCOUNT}'),
    CHECK (kind = 'internal' OR (customer_id IS NOT NULL AND class IS NOT NULL)),
    CHECK (kind = 'customer' OR (customer_id IS NULL AND class IS NULL))
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS accounts_by_customer ON accounts(customer_id);

CREATE TABLE IF NOT EXISTS payees (
    payee_id    INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(customer_id),
    name        TEXT NOT NULL,
    account     TEXT NOT NULL,
    created_at  REAL NOT NULL,
    UNIQUE (customer_id, account)
);

CREATE TABLE IF NOT EXISTS transfers (
    transfer_id   TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('transfer', 'opening')),
    customer_id   TEXT REFERENCES customers(customer_id),
    from_account  TEXT NOT NULL REFERENCES accounts(account_id),
    to_account    TEXT NOT NULL REFERENCES accounts(account_id),
    payee_account TEXT NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    currency      TEXT NOT NULL,
    memo          TEXT NOT NULL DEFAULT '',
    decision_id   TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    CHECK (from_account <> to_account)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS entries (
    entry_id      INTEGER PRIMARY KEY,
    transfer_id   TEXT NOT NULL REFERENCES transfers(transfer_id),
    account_id    TEXT NOT NULL REFERENCES accounts(account_id),
    amount        INTEGER NOT NULL CHECK (amount <> 0),
    balance_after INTEGER NOT NULL,
    created_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_account ON entries(account_id, entry_id);
CREATE INDEX IF NOT EXISTS entries_by_transfer ON entries(transfer_id);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    customer_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    transfer_id TEXT NOT NULL REFERENCES transfers(transfer_id),
    created_at  REAL NOT NULL,
    PRIMARY KEY (customer_id, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS used_jti (
    jti        TEXT PRIMARY KEY,
    keep_until REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS used_jti_by_expiry ON used_jti(keep_until);
"""


class AccountClass(enum.Enum):
    """PBoC account classes: I (full), II and III (capped online accounts)."""

    I = "I"  # noqa: E741 - the class is called I
    II = "II"
    III = "III"

    @property
    def level(self) -> int:
        return len(self.value)

    @classmethod
    def from_level(cls, level: int) -> AccountClass:
        return {1: cls.I, 2: cls.II, 3: cls.III}[level]


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    customer_id: str
    account_class: AccountClass
    currency: str
    balance: int


@dataclass(frozen=True, slots=True)
class Payee:
    payee_id: int
    name: str
    account: str


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """A customer's transfer, amount in fen."""

    from_account: str
    payee_account: str
    amount: int
    currency: str = "CNY"
    memo: str = ""

    def fingerprint(self) -> str:
        """What an Idempotency-Key is bound to: SHA-256 of the request's fields."""
        doc = {"from": self.from_account, "payee": self.payee_account, "amount": self.amount,
               "currency": self.currency, "memo": self.memo}
        return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class TransferReceipt:
    transfer_id: str
    from_account: str
    payee_account: str
    amount: int
    currency: str
    balance_after: int
    memo: str
    created_at: float
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class HistoryItem:
    entry_id: int
    transfer_id: str
    kind: str
    direction: str  # "debit" or "credit"
    amount: int
    balance_after: int
    counterparty: str
    memo: str
    created_at: float


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: tuple[HistoryItem, ...]
    next_before: int | None  # pass as ``before`` to get the next page


class Ledger:
    """The upstream's books. Open with :meth:`open`; close with :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._last_jti_purge = 0.0

    @classmethod
    def open(cls, path: str) -> Ledger:
        """Open (creating if needed) the ledger at ``path``."""
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        ledger = cls(conn)
        ledger.create_schema()
        return ledger

    def close(self) -> None:
        self._conn.close()

    def create_schema(self) -> None:
        """Create tables and the two internal accounts (idempotent)."""
        self._conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        for account_id in (OPENING_ACCOUNT, CLEARING_ACCOUNT):
            self._conn.execute(
                "INSERT INTO accounts (account_id, kind, currency, created_at) "
                "VALUES (?, 'internal', 'CNY', 0) ON CONFLICT DO NOTHING", (account_id,))

    # -- setup (seeding, tests) -------------------------------------------------

    def ensure_customer(self, customer_id: str, now: float) -> None:
        self._conn.execute("INSERT INTO customers VALUES (?, ?) ON CONFLICT DO NOTHING",
                           (customer_id, now))

    def open_account(self, customer_id: str, account_id: str, account_class: AccountClass,
                     opening_balance: int, now: float) -> bool:
        """Open an account funded with ``opening_balance`` fen; False if it already exists."""
        if opening_balance < 0:
            raise ValueError("opening_balance must not be negative")

        def work() -> bool:
            self.ensure_customer(customer_id, now)
            cur = self._conn.execute(
                "INSERT INTO accounts (account_id, customer_id, kind, class, currency, created_at) "
                "VALUES (?, ?, 'customer', ?, 'CNY', ?) ON CONFLICT DO NOTHING",
                (account_id, customer_id, account_class.level, now))
            if cur.rowcount == 0:
                return False
            if opening_balance:
                self._move(kind="opening", customer_id=None, source=OPENING_ACCOUNT,
                           target=account_id, payee_account=account_id, amount=opening_balance,
                           currency="CNY", memo="opening balance", decision_id="", now=now)
            return True

        return self._run(None, 0.0, now, work)

    # -- reads --------------------------------------------------------------------

    def customer_exists(self, customer_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM customers WHERE customer_id = ?",
                                 (customer_id,)).fetchone()
        return row is not None

    def account(self, account_id: str) -> Account | None:
        row = self._conn.execute(
            "SELECT account_id, customer_id, class, currency, balance FROM accounts "
            "WHERE account_id = ? AND kind = 'customer'", (account_id,)).fetchone()
        return _account(row) if row else None

    def accounts(self, customer_id: str) -> list[Account]:
        rows = self._conn.execute(
            "SELECT account_id, customer_id, class, currency, balance FROM accounts "
            "WHERE customer_id = ? ORDER BY account_id", (customer_id,)).fetchall()
        return [_account(row) for row in rows]

    def owns(self, customer_id: str, account_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM accounts WHERE account_id = ? AND customer_id = ?",
            (account_id, customer_id)).fetchone()
        return row is not None

    def balance(self, account_id: str) -> int:
        """Balance in fen of any account, internal ones included."""
        row = self._conn.execute("SELECT balance FROM accounts WHERE account_id = ?",
                                 (account_id,)).fetchone()
        if row is None:
            raise KeyError(account_id)
        return row[0]

    def payees(self, customer_id: str) -> list[Payee]:
        rows = self._conn.execute(
            "SELECT payee_id, name, account FROM payees WHERE customer_id = ? ORDER BY payee_id",
            (customer_id,)).fetchall()
        return [Payee(*row) for row in rows]

    def history(self, account_id: str, *, limit: int, before: int | None = None) -> HistoryPage:
        """Entries of ``account_id``, newest first, ``limit`` per page."""
        rows = self._conn.execute(
            "SELECT e.entry_id, e.transfer_id, t.kind, e.amount, e.balance_after, "
            "t.from_account, t.payee_account, t.memo, e.created_at "
            "FROM entries e JOIN transfers t ON t.transfer_id = e.transfer_id "
            "WHERE e.account_id = ? AND e.entry_id < ? ORDER BY e.entry_id DESC LIMIT ?",
            (account_id, before if before is not None else 2**63 - 1, limit + 1)).fetchall()
        items = []
        for entry_id, transfer_id, kind, amount, after, source, payee, memo, created in rows[:limit]:
            if amount < 0:
                direction, counterparty = "debit", payee
            else:
                direction, counterparty = "credit", "" if kind == "opening" else source
            items.append(HistoryItem(entry_id, transfer_id, kind, direction, abs(amount), after,
                                     counterparty, memo, created))
        next_before = items[-1].entry_id if len(rows) > limit else None
        return HistoryPage(tuple(items), next_before)

    def transfer_count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM transfers").fetchone()[0]

    def total_balance(self) -> int:
        """Sum of every account's balance: zero while double entry holds."""
        return self._conn.execute("SELECT coalesce(sum(balance), 0) FROM accounts").fetchone()[0]

    def unbalanced_transfers(self) -> list[str]:
        """Transfers whose entries do not sum to zero or are not exactly two (should be none)."""
        rows = self._conn.execute(
            "SELECT t.transfer_id FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.transfer_id "
            "GROUP BY t.transfer_id HAVING count(e.entry_id) <> 2 OR coalesce(sum(e.amount), 1) <> 0"
        ).fetchall()
        return [row[0] for row in rows]

    def balances_match_entries(self) -> bool:
        """Whether every account's balance equals the sum of its entries."""
        row = self._conn.execute(
            "SELECT count(*) FROM accounts a WHERE a.balance <> "
            "(SELECT coalesce(sum(amount), 0) FROM entries e WHERE e.account_id = a.account_id)"
        ).fetchone()
        return row[0] == 0

    # -- authorised writes ----------------------------------------------------------

    def consume_jti(self, jti: str, keep_until: float, now: float) -> None:
        """Mark an assertion id used (for reads). Raises AssertionReplayed."""
        self._run(jti, keep_until, now, lambda: None)

    def add_payee(self, customer_id: str, name: str, account: str, now: float, *,
                  jti: str | None = None, keep_until: float = 0.0) -> Payee:
        """Add a payee; the assertion id is burnt in the same transaction."""

        def work() -> Payee:
            if not self.customer_exists(customer_id):
                raise AssertionSubjectMismatch("the assertion's subject is not a customer")
            try:
                cur = self._conn.execute(
                    "INSERT INTO payees (customer_id, name, account, created_at) VALUES (?, ?, ?, ?)",
                    (customer_id, name, account, now))
            except sqlite3.IntegrityError as exc:
                raise PayeeExists() from exc
            return Payee(cur.lastrowid or 0, name, account)

        return self._run(jti, keep_until, now, work)

    def transfer(self, customer_id: str, request: TransferRequest, *, idempotency_key: str,
                 now: float, jti: str | None = None, keep_until: float = 0.0,
                 decision_id: str = "") -> TransferReceipt:
        """Move ``request.amount`` fen from the customer's account to the payee.

        The same ``idempotency_key`` with the same request returns the first
        receipt (``replayed=True``); with another request it raises
        IdempotencyKeyReused. Raises InsufficientFunds, SameAccount,
        AssertionSubjectMismatch, AssertionReplayed; on any failure nothing but
        the burnt ``jti`` is written.
        """
        fingerprint = request.fingerprint()

        def work() -> TransferReceipt:
            row = self._conn.execute(
                "SELECT fingerprint, transfer_id FROM idempotency_keys WHERE customer_id = ? AND key = ?",
                (customer_id, idempotency_key)).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise IdempotencyKeyReused()
                return self._receipt(row[1])
            if not self.owns(customer_id, request.from_account):
                raise AssertionSubjectMismatch()
            if request.payee_account == request.from_account:
                raise SameAccount()
            if request.currency != "CNY":
                raise BadRequest("unsupported_currency", "only CNY is supported")
            target = self._credit_target(request.payee_account)
            transfer_id = self._move(kind="transfer", customer_id=customer_id,
                                     source=request.from_account, target=target,
                                     payee_account=request.payee_account, amount=request.amount,
                                     currency=request.currency, memo=request.memo,
                                     decision_id=decision_id, now=now)
            self._conn.execute("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                               (customer_id, idempotency_key, fingerprint, transfer_id, now))
            return self._receipt(transfer_id, replayed=False)

        return self._run(jti, keep_until, now, work)

    # -- internals ------------------------------------------------------------------

    def _run(self, jti: str | None, keep_until: float, now: float, work: Callable[[], T]) -> T:
        """Run ``work`` in one transaction, burning ``jti`` first.

        A business failure rolls the work back but still commits the jti: an
        approved request that failed must not be replayable later (the gateway
        has already released its limit reservation for it).
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if jti is not None:
                self._burn_jti(jti, keep_until, now)
            conn.execute("SAVEPOINT work")
            try:
                result = work()
            except (UpstreamError, sqlite3.IntegrityError) as exc:
                conn.execute("ROLLBACK TO work")
                conn.execute("COMMIT")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise LedgerIntegrityError() from exc
                raise
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _burn_jti(self, jti: str, keep_until: float, now: float) -> None:
        if now - self._last_jti_purge >= _JTI_PURGE_INTERVAL:
            self._conn.execute("DELETE FROM used_jti WHERE keep_until < ?", (now,))
            self._last_jti_purge = now
        cur = self._conn.execute("INSERT INTO used_jti VALUES (?, ?) ON CONFLICT DO NOTHING",
                                 (jti, keep_until))
        if cur.rowcount == 0:
            raise AssertionReplayed()

    def _credit_target(self, payee_account: str) -> str:
        row = self._conn.execute("SELECT kind FROM accounts WHERE account_id = ?",
                                 (payee_account,)).fetchone()
        if row is None:
            return CLEARING_ACCOUNT
        if row[0] != "customer":
            raise BadRequest("invalid_field", "payee_account is not a customer account")
        return payee_account

    def _move(self, *, kind: str, customer_id: str | None, source: str, target: str,
              payee_account: str, amount: int, currency: str, memo: str, decision_id: str,
              now: float) -> str:
        if amount <= 0:
            raise BadRequest("invalid_amount", "amount must be more than zero")
        # The conditional UPDATE is the check; the CHECK constraint is the backstop.
        debited = self._conn.execute(
            "UPDATE accounts SET balance = balance - ? WHERE account_id = ? "
            "AND (balance >= ? OR account_id = ?) RETURNING balance",
            (amount, source, amount, OPENING_ACCOUNT)).fetchone()
        if debited is None:
            raise InsufficientFunds()
        credited = self._conn.execute(
            "UPDATE accounts SET balance = balance + ? WHERE account_id = ? RETURNING balance",
            (amount, target)).fetchone()
        if credited is None:
            raise LedgerIntegrityError("the account to credit does not exist")
        transfer_id = "tr_" + secrets.token_hex(10)
        self._conn.execute(
            "INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (transfer_id, kind, customer_id, source, target, payee_account, amount, currency,
             memo, decision_id, now))
        self._conn.executemany(
            "INSERT INTO entries (transfer_id, account_id, amount, balance_after, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(transfer_id, source, -amount, debited[0], now),
             (transfer_id, target, amount, credited[0], now)])
        return transfer_id

    def _receipt(self, transfer_id: str, *, replayed: bool = True) -> TransferReceipt:
        row = self._conn.execute(
            "SELECT t.from_account, t.payee_account, t.amount, t.currency, e.balance_after, "
            "t.memo, t.created_at FROM transfers t JOIN entries e ON e.transfer_id = t.transfer_id "
            "AND e.account_id = t.from_account WHERE t.transfer_id = ?", (transfer_id,)).fetchone()
        return TransferReceipt(transfer_id, *row, replayed=replayed)


def _account(row: tuple) -> Account:
    account_id, customer_id, level, currency, balance = row
    return Account(account_id, customer_id, AccountClass.from_level(level), currency, balance)

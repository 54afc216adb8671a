"""The upstream API as the gateway uses it: reads, transfers, payees, idempotency, errors."""

from __future__ import annotations

import orjson

from auth_tools.dynamic_linking import Transaction
from banking_upstream import CLEARING_ACCOUNT
from tests.banking_upstream.upstream_kit import (
    ALICE_II,
    ALICE_MAIN,
    BOB,
    CAROL,
    UTILITY,
    transfer_txn,
)


async def test_healthz_needs_no_assertion(upstream):
    resp = await upstream.client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


async def test_accounts_and_balances_of_the_subject(upstream):
    resp = await upstream.get("/v1/accounts")
    assert resp.status_code == 200
    assert resp.json() == {"accounts": [
        {"account_id": ALICE_MAIN, "class": "I", "currency": "CNY", "balance": "10000000.00"},
        {"account_id": ALICE_II, "class": "II", "currency": "CNY", "balance": "20000.00"},
    ]}
    carol = await upstream.get(f"/v1/accounts/{CAROL}/balance", sub="carol")
    assert carol.json() == {"account_id": CAROL, "class": "III", "currency": "CNY",
                            "balance": "3000.00"}


async def test_transfer_moves_money_between_customers(upstream):
    body = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "500.00", "currency": "CNY"}
    resp = await upstream.transfer(body)
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    assert doc["transfer_id"].startswith("tr_")
    assert {k: v for k, v in doc.items() if k != "transfer_id"} == {
        "status": "completed", "from_account": ALICE_MAIN, "payee_account": BOB,
        "amount": "500.00", "currency": "CNY", "balance_after": "9999500.00"}
    bob = await upstream.get(f"/v1/accounts/{BOB}/balance", sub="bob")
    assert bob.json()["balance"] == "1500.00"


async def test_five_million_transfer_from_class_one(upstream):
    body = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "5000000.00"}
    resp = await upstream.transfer(body)
    assert resp.status_code == 201
    assert resp.json()["balance_after"] == "5000000.00"


async def test_transfer_to_external_account_credits_clearing(upstream):
    before = upstream.ledger.balance(CLEARING_ACCOUNT)
    body = {"from_account": ALICE_MAIN, "payee_account": UTILITY, "amount": "123.45",
            "memo": "electricity"}
    assert (await upstream.transfer(body)).status_code == 201
    assert upstream.ledger.balance(CLEARING_ACCOUNT) == before + 12345
    assert upstream.ledger.total_balance() == 0


async def test_double_entry_holds_after_transfers(upstream):
    for amount, payee in (("1.00", BOB), ("250.50", UTILITY), ("999.99", BOB)):
        body = {"from_account": ALICE_MAIN, "payee_account": payee, "amount": amount}
        assert (await upstream.transfer(body)).status_code == 201
    assert upstream.ledger.total_balance() == 0
    assert upstream.ledger.unbalanced_transfers() == []
    assert upstream.ledger.balances_match_entries()


async def test_insufficient_funds_is_422_and_writes_nothing(upstream):
    before = upstream.snapshot()
    body = {"from_account": CAROL, "payee_account": BOB, "amount": "3000.01"}
    resp = await upstream.transfer(body, sub="carol")
    assert (resp.status_code, resp.json()["error"]) == (422, "insufficient_funds")
    assert upstream.snapshot() == before
    # The whole balance is allowed: it ends at exactly zero, never below.
    body["amount"] = "3000.00"
    assert (await upstream.transfer(body, sub="carol")).status_code == 201
    assert upstream.ledger.balance(CAROL) == 0


async def test_same_key_same_body_returns_the_first_result(upstream):
    body = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "10.00"}
    first = await upstream.transfer(body, key="k-1")
    again = await upstream.transfer(body, key="k-1")  # a fresh assertion, as a gateway retry has
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert upstream.ledger.balance(BOB) == 1_010_00


async def test_same_key_other_body_is_409_and_writes_nothing(upstream):
    body = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "10.00"}
    assert (await upstream.transfer(body, key="k-2")).status_code == 201
    before = upstream.snapshot()
    resp = await upstream.transfer({**body, "amount": "11.00"}, key="k-2")
    assert (resp.status_code, resp.json()["error"]) == (409, "idempotency_key_reused")
    assert upstream.snapshot() == before


async def test_idempotency_keys_are_per_customer(upstream):
    alice = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "10.00"}
    bob = {"from_account": BOB, "payee_account": ALICE_MAIN, "amount": "10.00"}
    first = await upstream.transfer(alice, key="shared")
    other = await upstream.transfer(bob, key="shared", sub="bob")
    assert other.status_code == 201 and other.json()["transfer_id"] != first.json()["transfer_id"]


async def test_missing_idempotency_key_is_400(upstream):
    body = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "10.00"}
    token = upstream.minter.token("alice", transfer_txn(body))
    resp = await upstream.client.post("/v1/transfers", content=orjson.dumps(body),
                                      headers={"X-Riskgate-Assertion": token})
    assert (resp.status_code, resp.json()["error"]) == (400, "idempotency_key_missing")


async def test_history_is_paginated_newest_first(upstream):
    for cents in range(1, 6):
        body = {"from_account": ALICE_MAIN, "payee_account": BOB, "amount": f"0.0{cents}"}
        assert (await upstream.transfer(body)).status_code == 201
    seen, cursor, pages = [], None, 0
    while True:
        path = f"/v1/accounts/{ALICE_MAIN}/history?limit=2" + (f"&cursor={cursor}" if cursor else "")
        doc = (await upstream.get(path)).json()
        seen += doc["items"]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    # five debits and the opening credit, newest first, no duplicates
    assert pages == 3 and len(seen) == 6
    assert [i["amount"] for i in seen] == ["0.05", "0.04", "0.03", "0.02", "0.01", "10000000.00"]
    assert [i["direction"] for i in seen] == ["debit"] * 5 + ["credit"]
    assert seen[0]["counterparty"] == BOB and seen[0]["balance_after"] == "9999999.85"
    assert len({i["entry_id"] for i in seen}) == 6


async def test_payees_list_and_add(upstream):
    listed = (await upstream.get("/v1/payees")).json()["payees"]
    assert [(p["name"], p["account"]) for p in listed] == [("Bob", BOB), ("Utility Co", UTILITY)]
    body = {"name": "Carol", "account": CAROL}
    token = upstream.minter.token("alice", Transaction("add_payee", 0, "CNY", "", CAROL))
    resp = await upstream.client.post("/v1/payees", content=orjson.dumps(body),
                                      headers={"X-Riskgate-Assertion": token})
    assert resp.status_code == 201 and resp.json()["account"] == CAROL
    token = upstream.minter.token("alice", Transaction("add_payee", 0, "CNY", "", CAROL))
    dup = await upstream.client.post("/v1/payees", content=orjson.dumps(body),
                                     headers={"X-Riskgate-Assertion": token})
    assert (dup.status_code, dup.json()["error"]) == (409, "payee_exists")


async def test_bad_input_is_a_json_4xx(upstream):
    async def post(raw: bytes, txn_body: dict | None = None):
        txn = transfer_txn(txn_body) if txn_body else None
        headers = {"X-Riskgate-Assertion": upstream.minter.token("alice", txn), "Idempotency-Key": "x"}
        return await upstream.client.post("/v1/transfers", content=raw, headers=headers)

    cases = [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "1.234"}),
         "invalid_amount"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": BOB, "amount": 1.5}),
         "invalid_amount"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "-1.00"}),
         "invalid_amount"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "0.00"}),
         "invalid_amount"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": "x", "amount": "1.00"}),
         "invalid_field"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": BOB}), "missing_field"),
        (orjson.dumps({"from_account": ALICE_MAIN, "payee_account": BOB, "amount": "1.00",
                       "currency": "USD"}), "unsupported_currency"),
        (b"x" * 70_000, "payload_too_large"),
    ]
    before = upstream.snapshot()
    for raw, code in cases:
        resp = await post(raw)
        assert 400 <= resp.status_code < 500, (raw[:40], resp.text)
        assert resp.json()["error"] == code, raw[:40]
    self_transfer = {"from_account": ALICE_MAIN, "payee_account": ALICE_MAIN, "amount": "1.00"}
    resp = await post(orjson.dumps(self_transfer), self_transfer)
    assert (resp.status_code, resp.json()["error"]) == (422, "same_account")
    assert upstream.snapshot() == before


async def test_bad_query_and_unknown_routes_are_json_4xx(upstream):
    for path, status, code in (
        (f"/v1/accounts/{ALICE_MAIN}/history?limit=0", 400, "invalid_limit"),
        (f"/v1/accounts/{ALICE_MAIN}/history?limit=abc", 400, "invalid_limit"),
        (f"/v1/accounts/{ALICE_MAIN}/history?cursor=!!", 400, "invalid_cursor"),
        (f"/v1/accounts/{ALICE_MAIN}/history?cursor=Zm9v", 400, "invalid_cursor"),
        ("/v1/nothing-here", 404, "not_found"),
    ):
        resp = await upstream.get(path)
        assert (resp.status_code, resp.json()["error"]) == (status, code), path
    resp = await upstream.client.delete("/v1/transfers")
    assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")

"""`verify_ledger`: a clean ledger verifies, and every kind of corruption is found and named."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from adledger.service import credits, expiry, refunds, verify
from adledger.service.spend import SpendEvent, post_spend
from adledger.storage.tables import accounts, entries, lots, transactions
from adledger.storage.tables import refunds as refunds_table
from conftest import T0
from factories import deposit, grant, make_account

DAY = timedelta(days=1)


def realistic_ledger(db, clock):
    """Deposits, grants, spend across credit, cash and overdelivery, a void, refunds, expiry."""
    usd = make_account(db, cash=10_000)
    jpy = make_account(db, currency="JPY", cash=50_000)
    poor = make_account(db, cash=100)
    grant(db, usd["id"], amount=3_000, expires_at=T0 + DAY)
    grant(db, usd["id"], amount=2_000, days=30, campaign_id="cmp-1")
    voided = grant(db, usd["id"], amount=1_000, days=30, priority=90)
    grant(db, jpy["id"], amount=5_000, days=10)
    pending = db.run(refunds.request_refund, usd["id"], amount=500, requested_by="key_a")
    approved = db.run(refunds.request_refund, usd["id"], amount=400, requested_by="key_a")
    db.run(refunds.approve_refund, approved["id"], actor_key_id="key_b")
    paid = db.run(refunds.request_refund, jpy["id"], amount=1_000, requested_by="key_a")
    db.run(refunds.approve_refund, paid["id"], actor_key_id="key_b")
    db.run(refunds.settle_refund, paid["id"], actor_key_id="key_b")
    canceled = db.run(refunds.request_refund, jpy["id"], amount=2_000, requested_by="key_a")
    db.run(refunds.cancel_refund, canceled["id"], actor_key_id="key_a")
    db.run(credits.void_credit, voided["id"], reason="mistake")
    db.run(
        post_spend,
        [
            SpendEvent("ev-1", usd["id"], 4_000, T0, campaign_id="cmp-1"),
            SpendEvent("ev-2", usd["id"], 2_500, T0),
            SpendEvent("ev-3", jpy["id"], 4_000, T0),
            SpendEvent("ev-4", poor["id"], 300, T0),
        ],
    )
    deposit(db, poor["id"], amount=1_000)
    clock.advance(days=2)
    db.run(expiry.run_expiry)
    return {"usd": usd, "jpy": jpy, "poor": poor, "pending": pending}


def execute(db, statement, params=None):
    with db.engine.begin() as conn:
        conn.execute(text(statement) if isinstance(statement, str) else statement, params or {})


def found(db):
    return db.read(verify.verify_ledger)


def checks_of(violations):
    return {v.check for v in violations}


# --- a clean ledger ------------------------------------------------------------------------------


def test_an_empty_ledger_verifies(db):
    assert found(db) == []


def test_a_ledger_built_by_the_services_verifies(db, clock):
    realistic_ledger(db, clock)
    assert found(db) == []


def test_every_check_runs_once_in_order_for_a_progress_display(db, clock):
    realistic_ledger(db, clock)
    seen = []

    db.read(verify.verify_ledger, on_check=lambda check, v: seen.append((check.name, v)))

    assert [name for name, _ in seen] == [c.name for c in verify.CHECKS]
    assert all(v == [] for _, v in seen)
    assert len({c.name for c in verify.CHECKS}) == len(verify.CHECKS)
    assert all(c.title for c in verify.CHECKS)


def test_a_violation_is_an_immutable_value(db):
    v = verify.Violation("account_balances", "account acct_1: ...")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.message = "changed"  # type: ignore[misc]


# --- corruption is found and named --------------------------------------------------------------


@pytest.mark.corrupts_ledger
def test_cash_changed_behind_the_ledgers_back_is_found(db, clock):
    acct = realistic_ledger(db, clock)["usd"]
    execute(
        db,
        update(accounts)
        .where(accounts.c.id == acct["id"])
        .values(cash_available=accounts.c.cash_available + 1),
    )

    violations = found(db)

    assert checks_of(violations) == {"account_balances"}
    [v] = violations
    assert acct["id"] in v.message and "cash_available" in v.message


@pytest.mark.corrupts_ledger
def test_a_held_amount_that_no_refund_explains_is_found(db, clock):
    acct = realistic_ledger(db, clock)["usd"]
    execute(
        db,
        update(accounts)
        .where(accounts.c.id == acct["id"])
        .values(cash_held=accounts.c.cash_held + 7),
    )

    violations = found(db)

    assert checks_of(violations) == {"account_balances", "held_matches_refunds"}
    assert all(acct["id"] in v.message for v in violations)
    assert any("cash_held is 907" in v.message for v in violations)


@pytest.mark.corrupts_ledger
def test_a_pending_refund_without_a_hold_is_found(db, clock):
    acct = realistic_ledger(db, clock)["poor"]
    execute(
        db,
        refunds_table.insert().values(
            id="rf_forged",
            account_id=acct["id"],
            amount=50,
            status="pending",
            requested_at=T0,
            requested_by="key_x",
        ),
    )

    [v] = found(db)

    assert v.check == "held_matches_refunds"
    assert acct["id"] in v.message and "50" in v.message


@pytest.mark.corrupts_ledger
def test_a_lot_whose_remaining_was_changed_is_found(db, clock):
    acct = realistic_ledger(db, clock)["jpy"]
    with db.engine.connect() as conn:
        lot_id = conn.execute(
            select(lots.c.id).where(lots.c.account_id == acct["id"], lots.c.status == "active")
        ).scalar_one()
    execute(db, update(lots).where(lots.c.id == lot_id).values(remaining=lots.c.remaining - 1))

    [v] = found(db)

    assert v.check == "lot_balances"
    assert lot_id in v.message and "remaining" in v.message


@pytest.mark.corrupts_ledger
def test_a_closed_lot_that_still_holds_credit_is_found(db, clock):
    acct = realistic_ledger(db, clock)["jpy"]
    with db.engine.connect() as conn:
        lot_id = conn.execute(
            select(lots.c.id).where(lots.c.account_id == acct["id"], lots.c.status == "active")
        ).scalar_one()
    execute(db, update(lots).where(lots.c.id == lot_id).values(status="expired"))

    [v] = found(db)

    assert v.check == "closed_lots_empty"
    assert lot_id in v.message and "expired" in v.message


@pytest.mark.corrupts_ledger
def test_an_unbalanced_entry_is_found(db, clock):
    acct = realistic_ledger(db, clock)["usd"]
    txn_id = _first_txn(db, acct["id"], "deposit")
    execute(
        db,
        entries.insert().values(
            txn_id=txn_id, account_id=acct["id"], book="platform:revenue", amount=5
        ),
    )

    [v] = found(db)

    assert v.check == "transactions_balanced"
    assert txn_id in v.message and "sum to 5" in v.message


@pytest.mark.corrupts_ledger
def test_a_balanced_but_wrong_pair_of_entries_is_found_by_the_summary_and_the_balance(db, clock):
    acct = realistic_ledger(db, clock)["usd"]
    txn_id = _first_txn(db, acct["id"], "deposit")
    execute(
        db,
        entries.insert(),
        [
            {"txn_id": txn_id, "account_id": acct["id"], "book": "cash", "amount": 5},
            {"txn_id": txn_id, "account_id": acct["id"], "book": "platform:payments", "amount": -5},
        ],
    )

    violations = found(db)

    assert checks_of(violations) == {"transaction_summaries", "account_balances"}
    summary = next(v for v in violations if v.check == "transaction_summaries")
    assert txn_id in summary.message and "cash_delta" in summary.message


@pytest.mark.corrupts_ledger
def test_a_transaction_without_entries_is_found(db, clock):
    acct = realistic_ledger(db, clock)["usd"]
    execute(
        db,
        transactions.insert().values(
            id="txn_empty",
            account_id=acct["id"],
            kind="deposit",
            currency="USD",
            created_at=T0,
            cash_delta=0,
            credit_delta=0,
            description="forged",
        ),
    )

    [v] = found(db)

    assert (v.check, v.message) == ("transactions_balanced", "transaction txn_empty has no entries")


@pytest.mark.corrupts_ledger
def test_a_transaction_in_the_wrong_currency_is_found(db, clock):
    acct = realistic_ledger(db, clock)["usd"]
    execute(
        db,
        transactions.insert().values(
            id="txn_eur",
            account_id=acct["id"],
            kind="deposit",
            currency="EUR",
            created_at=T0,
            cash_delta=0,
            credit_delta=0,
            description="forged",
        ),
    )
    execute(
        db,
        entries.insert(),
        [
            {"txn_id": "txn_eur", "account_id": acct["id"], "book": "platform:tax", "amount": 1},
            {
                "txn_id": "txn_eur",
                "account_id": acct["id"],
                "book": "platform:payments",
                "amount": -1,
            },
        ],
    )

    [v] = found(db)

    assert v.check == "transaction_currency"
    assert "txn_eur" in v.message and "EUR" in v.message and "USD" in v.message


@pytest.mark.corrupts_ledger
def test_an_entry_on_another_account_is_found(db, clock):
    ledger = realistic_ledger(db, clock)
    usd, poor = ledger["usd"]["id"], ledger["poor"]["id"]
    txn_id = _first_txn(db, usd, "deposit")
    execute(
        db,
        entries.insert(),
        [
            {"txn_id": txn_id, "account_id": poor, "book": "platform:tax", "amount": 3},
            {"txn_id": txn_id, "account_id": poor, "book": "platform:payments", "amount": -3},
        ],
    )

    violations = found(db)

    assert checks_of(violations) == {"entries_belong"}
    assert all(txn_id in v.message and poor in v.message for v in violations)


@pytest.mark.corrupts_ledger
def test_many_violations_are_listed_up_to_the_limit(db):
    for _ in range(4):
        make_account(db, cash=100)
    execute(db, update(accounts).values(cash_available=accounts.c.cash_available + 1))

    violations = db.read(verify.verify_ledger, limit=2)

    assert [v.check for v in violations] == ["account_balances"] * 3
    assert "more than 2" in violations[-1].message


@pytest.mark.corrupts_ledger
def test_a_single_check_can_be_run_on_its_own(db):
    acct = make_account(db, cash=100)
    execute(db, update(accounts).values(cash_available=0))
    check = next(c for c in verify.CHECKS if c.name == "account_balances")

    [v] = db.read(verify.run_check, check)

    assert v.message == (
        f"account {acct['id']}: cash_available is 0 but its cash entries sum to 100"
    )


def _first_txn(db, account_id, kind):
    with db.engine.connect() as conn:
        return conn.execute(
            select(transactions.c.id)
            .where(transactions.c.account_id == account_id, transactions.c.kind == kind)
            .order_by(transactions.c.id)
            .limit(1)
        ).scalar_one()

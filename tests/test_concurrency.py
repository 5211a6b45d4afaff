"""Concurrent spend on one account: nothing overspent, nothing applied twice, on both backends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from adledger.service import spend
from adledger.storage.tables import transactions
from factories import grant, make_account
from tests_support import DEFAULT_OCCURRED, balances

THREADS = 16


def test_16_threads_spending_on_one_account_never_overspend(db):
    acct = make_account(db, cash=50_000)["id"]
    lot = grant(db, acct, amount=20_000)["id"]
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> list[dict]:
        barrier.wait()
        out = []
        for batch in range(5):
            events = [
                spend.SpendEvent(f"t{n}-b{batch}-e{i}", acct, 150, DEFAULT_OCCURRED)
                for i in range(10)
            ]
            # Every thread also resends the previous batch: repeats must stay duplicates.
            if batch:
                events += [
                    spend.SpendEvent(f"t{n}-b{batch - 1}-e{i}", acct, 150, DEFAULT_OCCURRED)
                    for i in range(10)
                ]
            out += db.run(spend.post_spend, events)
        return out

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for rs in pool.map(worker, range(THREADS)) for r in rs]

    applied = [r for r in results if r["status"] == "applied"]
    assert len(applied) == THREADS * 5 * 10
    assert all(r["status"] in ("applied", "duplicate") for r in results)
    total = 150 * len(applied)
    credit = sum(r["credit_used"] for r in applied)
    cash = sum(r["cash_used"] for r in applied)
    unfunded = sum(r["unfunded"] for r in applied)
    assert credit + cash + unfunded == total
    assert credit == 20_000 and cash == 50_000 and unfunded == total - 70_000
    after = balances(db, acct)
    assert after["cash"] == 0 and after["lots"][lot] == (0, "used")
    with db.engine.connect() as conn:
        count = conn.execute(
            select(func.count()).select_from(transactions).where(transactions.c.kind == "spend")
        ).scalar()
    assert count == len(applied)


def test_the_same_new_event_sent_by_many_threads_at_once_is_applied_once(db):
    acct = make_account(db, cash=1_000)["id"]
    other = make_account(db, cash=1_000)["id"]
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> list[dict]:
        barrier.wait()
        # Half the threads also touch another account, so the batches lock different sets.
        events = [spend.SpendEvent("shared", acct, 100, DEFAULT_OCCURRED)]
        if n % 2:
            events.insert(0, spend.SpendEvent(f"own-{n}", other, 10, DEFAULT_OCCURRED))
        return db.run(spend.post_spend, events)

    with ThreadPoolExecutor(THREADS) as pool:
        results = [
            r for rs in pool.map(worker, range(THREADS)) for r in rs if r["event_id"] == "shared"
        ]
    assert sorted(r["status"] for r in results) == ["applied"] + ["duplicate"] * (THREADS - 1)
    assert balances(db, acct)["cash"] == 900
    assert balances(db, other)["cash"] == 1_000 - 10 * (THREADS // 2)

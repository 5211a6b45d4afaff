"""The service reads added for the pages (service/statements.py, service/console.py), on SQLite
and PostgreSQL: spend per local day by funding, transactions by date, liabilities over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adledger.service import console, expiry, refunds, statements
from factories import grant, make_account
from web_support import post_spend


def test_spend_is_put_in_the_accounts_local_days(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=10_000, timezone="America/Los_Angeles")
    # 1 Dec 12:00 UTC is 04:00 in Los Angeles; 07:59 UTC is still 30 Nov there.
    post_spend(db, acct["id"], 300, datetime(2026, 12, 1, 7, 59, tzinfo=UTC), 1)
    post_spend(db, acct["id"], 200, datetime(2026, 12, 1, 8, 0, tzinfo=UTC), 2)
    days = db.read(statements.daily_spend, acct["id"], days=30)
    assert len(days) == 30 and days[-1].day.isoformat() == "2026-12-01"
    assert (days[-1].cash, days[-2].cash) == (200, 300)
    assert sum(d.total for d in days) == 500


def test_spend_older_than_the_period_is_left_out_and_unfunded_is_counted(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=100)
    grant(db, acct["id"], amount=50, days=9, effective_at=clock.now() - timedelta(days=40))
    post_spend(db, acct["id"], 30, clock.now() - timedelta(days=31), 1)  # outside: credit
    post_spend(db, acct["id"], 500, clock.now() - timedelta(hours=1), 2)
    (today,) = [d for d in db.read(statements.daily_spend, acct["id"]) if d.total]
    assert (today.credit, today.cash, today.unfunded) == (20, 100, 380)


def test_transactions_are_searched_by_recorded_time(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=100)  # a deposit at T0
    clock.advance(days=1)
    post_spend(db, acct["id"], 10, clock.now(), 1)
    since = clock.now() - timedelta(hours=1)
    page = db.read(statements.search_transactions, acct["id"], since=since)
    assert [t["kind"] for t in page["data"]] == ["spend"]
    page = db.read(statements.search_transactions, acct["id"], until=since)
    assert [t["kind"] for t in page["data"]] == ["deposit"]
    assert len(db.read(statements.export_transactions, acct["id"])) == 2


def test_liabilities_over_time_follow_the_ledger(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=10_000)
    grant(db, acct["id"], amount=2_000, days=1)
    clock.advance(days=3)
    db.run(expiry.run_expiry)
    db.run(refunds.request_refund, acct["id"], amount=1_000, requested_by="key_x")
    history = db.read(console.liabilities_history, "USD", days=10)
    assert len(history) == 10 and history[-1].day == clock.now().date()
    first_day = next(d for d in history if d.day.isoformat() == "2026-12-01")
    assert (first_day.cash, first_day.credit_outstanding, first_day.breakage) == (10_000, 2_000, 0)
    assert (history[-1].cash, history[-1].credit_outstanding, history[-1].breakage) == (
        10_000,
        0,
        2_000,
    )
    assert history[0].cash == 0


def test_the_refund_queue_carries_each_accounts_context(db, clock):  # type: ignore[no-untyped-def]
    acct = make_account(db, cash=5_000, name="Ctx")
    made = db.run(refunds.request_refund, acct["id"], amount=700, requested_by="key_x")
    clock.advance(days=3)
    queue = db.read(console.refund_queue)
    (item,) = queue["data"]
    assert item["id"] == made["id"]
    ctx = item["context"]
    assert (ctx["cash_available"], ctx["cash_held"], ctx["age_days"]) == (4_300, 700, 3)
    assert ctx["refunds"] == {"pending": {"count": 1, "amount": 700}}
    assert ctx["account"]["business_name"] == "Acme Ads"
